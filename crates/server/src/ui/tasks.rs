//! The tasks pages: the list (filtered by domain, type and status, newest first, a page
//! at a time from the database), one task's page with everything the API shows, and the
//! actions Retry, Reschedule and Cancel, each the API's own use case
//! (`api::tasks::{retry, reschedule, cancel}`).

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use mailzone_engine::clock;
use mailzone_engine::tasks::TASK_KINDS;
use mailzone_store::{Task, TaskFilter, TaskStatus};
use maud::{Markup, html};
use serde::Deserialize;

use super::layout::{self, Nav, error_page, time};
use super::session::{Session, csrf_field};
use crate::api::ApiError;
use crate::api::tasks::{cancel, parse_due_at, reschedule, retry};
use crate::state::AppState;

/// Tasks on one page of the list.
const PAGE_SIZE: u32 = 50;

/// The routes of this page group, relative to `/ui`, behind the session check.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/tasks", get(list))
        .route("/tasks/{id}", get(show))
        .route("/tasks/{id}/retry", post(retry_action))
        .route("/tasks/{id}/cancel", post(cancel_action))
        .route("/tasks/{id}/reschedule", post(reschedule_action))
}

/// The status filter's choices: (value, label). `Scheduled` includes `Retry` (both wait).
const STATUS_CHOICES: [(&str, &str); 7] = [
    ("", "Any status"),
    ("Scheduled", "Scheduled (incl. Retry)"),
    ("Retry", "Retry"),
    ("Running", "Running"),
    ("Failed", "Failed"),
    ("Succeeded", "Succeeded"),
    ("Cancelled", "Cancelled"),
];

#[derive(Deserialize, Default)]
pub struct ListQuery {
    domain: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    status: Option<String>,
    page: Option<String>,
    done: Option<String>,
}

/// The filter as understood: unknown values are ignored (and said so).
struct Filter {
    domain: String,
    kind: String,
    status: String,
    page: u32,
    ignored: Vec<&'static str>,
}

impl Filter {
    fn from_query(query: &ListQuery) -> Filter {
        let mut ignored = Vec::new();
        let domain = query
            .domain
            .as_deref()
            .unwrap_or("")
            .trim()
            .trim_end_matches('.')
            .to_ascii_lowercase();
        let mut kind = query.kind.as_deref().unwrap_or("").trim().to_string();
        if !kind.is_empty() && !TASK_KINDS.contains(&kind.as_str()) {
            ignored.push("type");
            kind.clear();
        }
        let mut status = query.status.as_deref().unwrap_or("").trim().to_string();
        if !STATUS_CHOICES.iter().any(|(value, _)| *value == status) {
            ignored.push("status");
            status.clear();
        }
        let page = match query.page.as_deref().map(str::trim) {
            None | Some("") => 1,
            Some(text) => text
                .parse::<u32>()
                .ok()
                .filter(|p| *p >= 1)
                .unwrap_or_else(|| {
                    ignored.push("page");
                    1
                }),
        };
        Filter {
            domain,
            kind,
            status,
            page,
            ignored,
        }
    }

    fn store_filter(&self) -> TaskFilter {
        let statuses = match TaskStatus::parse(&self.status) {
            Some(TaskStatus::Scheduled) => vec![TaskStatus::Scheduled, TaskStatus::Retry],
            Some(status) => vec![status],
            None => Vec::new(),
        };
        TaskFilter {
            domain: (!self.domain.is_empty()).then(|| self.domain.clone()),
            kind: (!self.kind.is_empty()).then(|| self.kind.clone()),
            statuses,
        }
    }

    /// The list's URL with this filter on page `page`.
    fn href(&self, page: u32) -> String {
        let mut query = form_urlencoded::Serializer::new(String::new());
        for (key, value) in [
            ("domain", &self.domain),
            ("type", &self.kind),
            ("status", &self.status),
        ] {
            if !value.is_empty() {
                query.append_pair(key, value);
            }
        }
        if page > 1 {
            query.append_pair("page", &page.to_string());
        }
        let query = query.finish();
        if query.is_empty() {
            "/ui/tasks".to_string()
        } else {
            format!("/ui/tasks?{query}")
        }
    }
}

/// The fixed sentence of a notice code (never text from the query).
fn notice_text(code: Option<&str>) -> Option<&'static str> {
    match code? {
        "retried" => Some("The task was scheduled to run again now."),
        "rescheduled" => Some("The task was rescheduled."),
        "cancelled" => Some("The task was cancelled: it will not run."),
        _ => None,
    }
}

/// `GET /ui/tasks`: a page of tasks, newest first; the table refreshes itself while
/// tasks wait or run.
async fn list(
    State(state): State<AppState>,
    session: Session,
    Query(query): Query<ListQuery>,
) -> Response {
    let filter = Filter::from_query(&query);
    let offset = u64::from(filter.page - 1) * u64::from(PAGE_SIZE);
    let mut tasks = match state
        .store
        .task_page(&filter.store_filter(), PAGE_SIZE + 1, offset)
        .await
    {
        Ok(tasks) => tasks,
        Err(e) => return error_page(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    };
    let more = tasks.len() > PAGE_SIZE as usize;
    tasks.truncate(PAGE_SIZE as usize);
    let counts = state.store.task_counts().await.unwrap_or_default();
    let now = clock::unix_now();
    let loaded = state.loaded();
    let body = html! {
        h1 { "Tasks" }
        (layout::notice(notice_text(query.done.as_deref())))
        @if !filter.ignored.is_empty() {
            p.alert.warning role="status" { "Ignored an unknown value of: " (filter.ignored.join(", ")) "." }
        }
        p #task-counts {
            @for (i, status) in TaskStatus::ALL.iter().enumerate() {
                @if i > 0 { " · " }
                @let n = counts.iter().find(|(s, _)| s == status).map_or(0, |(_, n)| *n);
                a href=(format!("/ui/tasks?status={}", status.as_str())) { (status.as_str()) } ": " (n)
            }
        }
        form.filters #task-filter method="get" action="/ui/tasks" role="search" {
            div {
                label for="filter-domain" { "Domain" }
                input #filter-domain type="search" name="domain" value=(filter.domain)
                    list="task-domains" autocomplete="off" spellcheck="false";
                datalist #task-domains {
                    @for domain in &loaded.config.domains { option value=(domain.name.as_str().trim_end_matches('.')) {} }
                }
            }
            div {
                label for="filter-type" { "Type" }
                select #filter-type name="type" {
                    option value="" selected[filter.kind.is_empty()] { "Any type" }
                    @for kind in TASK_KINDS {
                        option value=(kind) selected[filter.kind == kind] { (kind) }
                    }
                }
            }
            div {
                label for="filter-status" { "Status" }
                select #filter-status name="status" {
                    @for (value, label) in STATUS_CHOICES {
                        option value=(value) selected[filter.status == value] { (label) }
                    }
                }
            }
            div { button type="submit" { "Filter" } }
        }
        div.table-wrap tabindex="0" role="region" aria-label="Tasks" #task-list data-live="5" aria-live="off" {
            @if tasks.is_empty() {
                p #no-tasks { "No task matches." }
            } @else {
                (task_table(&session, &tasks, now))
            }
        }
        nav.pages aria-label="Pages" {
            @if filter.page > 1 {
                a #newer-tasks rel="prev" href=(filter.href(filter.page - 1)) { "← Newer" }
            }
            " Page " (filter.page) " "
            @if more {
                a #older-tasks rel="next" href=(filter.href(filter.page + 1)) { "Older →" }
            }
        }
    };
    layout::signed_in_page(&state, &session, Nav::Tasks, "Tasks", body).await
}

fn task_href(id: &str) -> String {
    format!("/ui/tasks/{id}")
}

fn task_table(session: &Session, tasks: &[Task], now: i64) -> Markup {
    html! {
        table #tasks {
            (layout::column_headers(&["Task", "Domain", "Status", "Progress", "Attempts", "Due / next retry", "Failure reason", "Created", "Actions"]))
            tbody {
                @for task in tasks {
                    tr data-task-id=(task.id) data-status=(task.status.as_str()) {
                        td.task { a href=(task_href(&task.id)) { (task.kind) } br; code.muted { (short_id(&task.id)) } }
                        td.domain { (task.domain) }
                        td.status { (status_badge(task.status)) }
                        td.progress { (task.progress.as_deref().unwrap_or("")) }
                        td.attempts { (task.attempts) }
                        td.due {
                            @if waits(task.status) || task.status == TaskStatus::Running { (time(task.due_at, now)) }
                        }
                        td.failure-reason { (task.failure_reason.as_deref().unwrap_or("")) }
                        td.created { (time(task.created_at, now)) }
                        td.actions { (actions(session, task, "list")) }
                    }
                }
            }
        }
    }
}

/// The first 8 hex digits: enough to tell tasks apart on a page.
fn short_id(id: &str) -> &str {
    id.get(..8).unwrap_or(id)
}

/// Scheduled or Retry: the task waits for its time.
fn waits(status: TaskStatus) -> bool {
    matches!(status, TaskStatus::Scheduled | TaskStatus::Retry)
}

/// The status as text, in a badge whose colour repeats it.
fn status_badge(status: TaskStatus) -> Markup {
    let class = match status {
        TaskStatus::Succeeded => "badge ok",
        TaskStatus::Failed => "badge error",
        TaskStatus::Retry | TaskStatus::Running => "badge warning",
        TaskStatus::Scheduled | TaskStatus::Cancelled => "badge",
    };
    html! { span class=(class) { (status.as_str()) } }
}

/// The buttons a task's status allows; `from` says where to come back to.
fn actions(session: &Session, task: &Task, from: &str) -> Markup {
    let base = task_href(&task.id);
    let button = |action: &str, label: &str, class: &str, confirm: Option<String>| {
        html! {
            form.inline method="post" action=(format!("{base}/{action}")) data-confirm=[confirm] {
                (csrf_field(session))
                input type="hidden" name="from" value=(from);
                button type="submit" class=(class) { (label) }
            }
        }
    };
    html! {
        @match task.status {
            TaskStatus::Failed => {
                (button("retry", "Retry", "retry", None))
                " "
                (button("reschedule", "Run now", "reschedule", None))
            }
            TaskStatus::Scheduled | TaskStatus::Retry => {
                (button("reschedule", "Run now", "reschedule", None))
                " "
                (button("cancel", "Cancel", "cancel danger",
                    Some(format!("Cancel this {} task of {}? It will not run.", task.kind, task.domain))))
            }
            TaskStatus::Running => {
                span.muted.not-cancellable { "Running: cannot be cancelled" }
            }
            TaskStatus::Succeeded | TaskStatus::Cancelled => {}
        }
    }
}

#[derive(Deserialize, Default)]
pub struct ShowQuery {
    done: Option<String>,
}

/// `GET /ui/tasks/<id>`: everything the API shows of the task (no secret is in a task).
async fn show(
    State(state): State<AppState>,
    session: Session,
    Path(id): Path<String>,
    Query(query): Query<ShowQuery>,
) -> Response {
    show_page(&state, &session, &id, query.done.as_deref(), None).await
}

async fn show_page(
    state: &AppState,
    session: &Session,
    id: &str,
    done: Option<&str>,
    problem: Option<ApiError>,
) -> Response {
    let task = match state.store.task(id).await {
        Ok(Some(task)) => task,
        Ok(None) => {
            return error_page(StatusCode::NOT_FOUND, &format!("There is no task {id}."));
        }
        Err(e) => return error_page(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    };
    let now = clock::unix_now();
    let status = problem.as_ref().map_or(StatusCode::OK, ApiError::status);
    let optional_time = |t: Option<i64>| html! { @if let Some(t) = t { (time(t, now)) } @else { span.muted { "—" } } };
    let text = |t: Option<&str>| html! { @if let Some(t) = t { (t) } @else { span.muted { "—" } } };
    let body = html! {
        p.muted { a href="/ui/tasks" { "Tasks" } " ›" }
        h1 { (task.kind) " task for " (task.domain) }
        (layout::notice(notice_text(done)))
        @if let Some(problem) = &problem {
            p.alert.error #action-error role="alert" { (problem.message()) }
        }
        div #task-detail data-live="3" {
            div.table-wrap tabindex="0" role="region" aria-label="Task" {
                table #task data-task-id=(task.id) data-status=(task.status.as_str()) {
                    tbody {
                        tr { th scope="row" { "ID" } td { code { (task.id) } } }
                        tr { th scope="row" { "Type" } td { (task.kind) } }
                        tr { th scope="row" { "Domain" } td { a href=(format!("/ui/domains/{}", task.domain)) { (task.domain) } } }
                        tr { th scope="row" { "Status" } td.status { (status_badge(task.status)) } }
                        tr { th scope="row" { "Progress" } td.progress { (text(task.progress.as_deref())) } }
                        tr { th scope="row" { "Attempts" } td.attempts { (task.attempts) } }
                        tr { th scope="row" { "Due" } td.due { (time(task.due_at, now)) } }
                        tr { th scope="row" { "Update records" } td {
                            @if task.update_records.is_empty() { "All the domain publishes" } @else { (task.update_records.join(", ")) }
                        } }
                        tr { th scope="row" { "Renew the certificate after" } td { @if task.on_success_renew_certificate { "Yes" } @else { "No" } } }
                        tr { th scope="row" { "Lease owner" } td { (text(task.lease_owner.as_deref())) } }
                        tr { th scope="row" { "Lease until" } td { (optional_time(task.lease_until)) } }
                        tr { th scope="row" { "Failure reason" } td.failure-reason { (text(task.failure_reason.as_deref())) } }
                        tr { th scope="row" { "Result" } td.result { (text(task.result.as_deref())) } }
                        tr { th scope="row" { "Created" } td { (time(task.created_at, now)) } }
                        tr { th scope="row" { "Updated" } td { (time(task.updated_at, now)) } }
                    }
                }
            }
            div.actions { (actions(session, &task, "task")) }
            @if waits(task.status) || task.status == TaskStatus::Failed {
                form #reschedule-form method="post" action=(format!("{}/reschedule", task_href(&task.id))) {
                    (csrf_field(session))
                    input type="hidden" name="from" value="task";
                    label for="due-at" { "Run at (UTC)" }
                    input #due-at type="datetime-local" name="dueAt" step="1" required aria-describedby="due-at-hint";
                    p.hint #due-at-hint { "Date and time in UTC, e.g. 2030-01-31T12:00. A time in the past runs it now." }
                    button.reschedule type="submit" { "Reschedule" }
                }
            }
        }
    };
    let title = format!("{} task for {}", task.kind, task.domain);
    let mut response = layout::signed_in_page(state, session, Nav::Tasks, &title, body).await;
    *response.status_mut() = status;
    response
}

#[derive(Deserialize, Default)]
pub struct ActionForm {
    /// `list` to come back to the list, else the task's page.
    #[serde(default)]
    from: String,
    /// Reschedule: the time (a `datetime-local` value, UTC, or RFC 3339); empty = now.
    #[serde(default, rename = "dueAt")]
    due_at: String,
}

/// After an action: 303 to where it was asked from with the notice, or the task's page
/// with what was refused.
async fn after_action(
    state: &AppState,
    session: &Session,
    id: &str,
    from: &str,
    outcome: Result<Task, ApiError>,
    done: &str,
) -> Response {
    match outcome {
        Ok(_) if from == "list" => Redirect::to(&format!("/ui/tasks?done={done}")).into_response(),
        Ok(_) => Redirect::to(&format!("{}?done={done}", task_href(id))).into_response(),
        Err(e) => show_page(state, session, id, None, Some(e)).await,
    }
}

/// `POST /ui/tasks/<id>/retry`: a Failed task Scheduled now (the API's retry).
async fn retry_action(
    State(state): State<AppState>,
    session: Session,
    Path(id): Path<String>,
    Form(form): Form<ActionForm>,
) -> Response {
    let outcome = retry(&state, &id).await;
    after_action(&state, &session, &id, &form.from, outcome, "retried").await
}

/// `POST /ui/tasks/<id>/cancel`: a waiting task will not run; a Running one is refused.
async fn cancel_action(
    State(state): State<AppState>,
    session: Session,
    Path(id): Path<String>,
    Form(form): Form<ActionForm>,
) -> Response {
    let outcome = cancel(&state, &id).await;
    after_action(&state, &session, &id, &form.from, outcome, "cancelled").await
}

/// `POST /ui/tasks/<id>/reschedule`: run now, or at the given time (UTC).
async fn reschedule_action(
    State(state): State<AppState>,
    session: Session,
    Path(id): Path<String>,
    Form(form): Form<ActionForm>,
) -> Response {
    let outcome = match parse_form_time(&form.due_at) {
        Ok(due_at) => reschedule(&state, &id, due_at).await,
        Err(e) => Err(e),
    };
    after_action(&state, &session, &id, &form.from, outcome, "rescheduled").await
}

/// A `datetime-local` value (`2030-01-31T12:00`, seconds optional) read as UTC, or an
/// RFC 3339 time; empty is now (`None`).
fn parse_form_time(text: &str) -> Result<Option<i64>, ApiError> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    let rfc3339 = if text.ends_with('Z') || text.contains('+') || text.len() > 19 {
        text.to_string()
    } else if text.len() == 16 {
        format!("{text}:00Z")
    } else {
        format!("{text}Z")
    };
    parse_due_at(&rfc3339).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_times_are_utc() {
        assert_eq!(parse_form_time("").unwrap(), None);
        assert_eq!(
            parse_form_time("2030-01-31T12:00").unwrap(),
            Some(1_896_091_200)
        );
        assert_eq!(
            parse_form_time("2030-01-31T12:00:30").unwrap(),
            Some(1_896_091_230)
        );
        assert_eq!(
            parse_form_time("2030-01-31T12:00:00Z").unwrap(),
            Some(1_896_091_200)
        );
        assert!(parse_form_time("tomorrow").is_err());
    }

    #[test]
    fn the_filter_keeps_known_values_and_pages_with_them() {
        let query = ListQuery {
            domain: Some(" Example.TEST. ".into()),
            kind: Some("DkimRotation".into()),
            status: Some("Scheduled".into()),
            page: Some("2".into()),
            done: None,
        };
        let filter = Filter::from_query(&query);
        assert!(filter.ignored.is_empty());
        let store = filter.store_filter();
        assert_eq!(store.domain.as_deref(), Some("example.test"));
        assert_eq!(store.statuses, [TaskStatus::Scheduled, TaskStatus::Retry]);
        assert_eq!(
            filter.href(3),
            "/ui/tasks?domain=example.test&type=DkimRotation&status=Scheduled&page=3"
        );
        let odd = ListQuery {
            kind: Some("Nope".into()),
            status: Some("<b>".into()),
            page: Some("0".into()),
            ..ListQuery::default()
        };
        let filter = Filter::from_query(&odd);
        assert_eq!(filter.ignored, ["type", "status", "page"]);
        assert_eq!(filter.store_filter(), TaskFilter::default());
        assert_eq!(filter.href(1), "/ui/tasks");
    }
}
