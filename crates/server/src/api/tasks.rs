//! `/tasks`: the service's tasks, created (202, run in the background), listed and retried.

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{OriginalUri, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use mailzone_engine::clock;
use mailzone_engine::tasks::{ACME_RENEWAL, DKIM_ROTATION, DNS_MANAGEMENT, TLSA_SYNC, TaskKind};
use mailzone_records::{DkimManagement, DnsManagement, RecordPurpose};
use mailzone_store::{NewTask, Task, TaskChange, TaskFilter, TaskStatus};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::state::AppState;

use super::*;

/// A task as the API shows it (Stalwart's fields: `updateRecords`,
/// `onSuccessRenewCertificate`, `failureReason`).
pub fn task_json(task: &Task) -> Value {
    json!({
        "id": task.id,
        "type": task.kind,
        "domain": task.domain,
        "updateRecords": task.update_records,
        "onSuccessRenewCertificate": task.on_success_renew_certificate,
        "status": task.status.as_str(),
        "progress": task.progress,
        "attempts": task.attempts,
        "dueAt": clock::rfc3339(task.due_at),
        "leaseOwner": task.lease_owner,
        "leaseUntil": task.lease_until.map(clock::rfc3339),
        "failureReason": task.failure_reason,
        "result": task.result,
        "createdAt": clock::rfc3339(task.created_at),
        "updatedAt": clock::rfc3339(task.updated_at),
    })
}

/// `?status=&domain=&type=&offset=&limit=` of the task list: newest first, at most
/// `limit` (default 100, at most 1000) from `offset` on, the number of matching tasks in
/// `X-Total-Count` and the next and previous pages in a `Link` header (RFC 8288).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TasksQuery {
    status: Option<String>,
    domain: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    offset: Option<u64>,
    limit: Option<u32>,
}

pub(crate) async fn list_tasks(
    State(state): State<AppState>,
    OriginalUri(uri): OriginalUri,
    ApiQuery(query): ApiQuery<TasksQuery>,
) -> Result<Response, ApiError> {
    let status = match query.status.as_deref() {
        None => None,
        Some(s) => Some(
            serde_json::from_value::<TaskStatus>(Value::String(s.to_string())).map_err(|_| {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "bad_request",
                    format!(
                        "status `{s}` is not one of Scheduled, Running, Retry, Succeeded, Failed, Cancelled"
                    ),
                )
            })?,
        ),
    };
    let domain = match query.domain.as_deref() {
        Some(raw) => Some(domain_name(raw)?.as_str().to_string()),
        None => None,
    };
    if let Some(kind) = query.kind.as_deref()
        && TaskKind::parse(kind).is_none()
    {
        return Err(bad_request(format!(
            "type `{kind}` is not one of {}",
            mailzone_engine::tasks::TASK_KINDS.join(", ")
        )));
    }
    let filter = TaskFilter {
        domain,
        kind: query.kind,
        statuses: status.into_iter().collect(),
    };
    let limit = query.limit.unwrap_or(100).clamp(1, 1000);
    let offset = query.offset.unwrap_or(0);
    let tasks = state.store.task_page(&filter, limit, offset).await?;
    let total = state.store.task_count(&filter).await?;
    let window = paging::Window {
        offset,
        limit: Some(u64::from(limit)),
    };
    Ok(paging::response(
        &uri,
        window,
        total,
        tasks.iter().map(task_json).collect(),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct CreateTask {
    #[serde(rename = "type", default = "default_task_type")]
    kind: String,
    domain: String,
    #[serde(default)]
    update_records: Vec<String>,
    #[serde(default)]
    on_success_renew_certificate: bool,
}

pub(crate) fn default_task_type() -> String {
    DNS_MANAGEMENT.into()
}

/// Schedules a task and returns at once (202) with it.
pub(crate) async fn create_task(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<CreateTask>,
) -> Result<Response, ApiError> {
    match TaskKind::parse(&body.kind) {
        Some(TaskKind::DnsManagement) => {}
        Some(kind @ (TaskKind::DkimRotation | TaskKind::TlsaSync)) => {
            return create_upkeep_task(&state, kind, &body).await;
        }
        Some(TaskKind::AcmeRenewal) | None => {
            return Err(ApiError::invalid(format!(
                "type `{}` is not a task that can be created here ({DNS_MANAGEMENT}, {DKIM_ROTATION} or {TLSA_SYNC}; {ACME_RENEWAL} follows a {DNS_MANAGEMENT} task with onSuccessRenewCertificate)",
                body.kind,
            )));
        }
    }
    let loaded = state.loaded();
    if body.on_success_renew_certificate && loaded.config.server.acme.is_none() {
        return Err(ApiError::invalid(format!(
            "onSuccessRenewCertificate needs a [server.acme] section in {} (the certificate to renew)",
            loaded.path.display()
        )));
    }
    let domain = find_domain(&loaded, &body.domain)?;
    let DnsManagement::Automatic {
        publish_records, ..
    } = &domain.dns_management
    else {
        return Err(ApiError::invalid(format!(
            "domain {} is under manual DNS management: switch it to automatic in {} first",
            domain.name,
            loaded.path.display()
        )));
    };
    let mut types = Vec::new();
    for raw in &body.update_records {
        let t: RecordPurpose =
            raw.parse()
                .map_err(|e: mailzone_records::record::UnknownRecordPurpose| {
                    ApiError::invalid(format!("updateRecords: {e}"))
                })?;
        if !publish_records.contains(&t) {
            return Err(ApiError::invalid(format!(
                "updateRecords: `{t}` is not in the publishRecords of domain {}",
                domain.name
            )));
        }
        types.push(t.name().to_string());
    }
    let now = clock::unix_now();
    let task = state
        .store
        .create_task(
            &NewTask {
                update_records: types,
                on_success_renew_certificate: body.on_success_renew_certificate,
                ..TaskKind::DnsManagement.task(domain.name.as_str(), now)
            },
            now,
        )
        .await?;
    Ok((StatusCode::ACCEPTED, Json(task_json(&task))).into_response())
}

/// A `DkimRotation` task (a domain with automatic DKIM keys) or a `TlsaSync` task (a
/// domain whose TLSA records mailzone publishes).
pub(crate) async fn create_upkeep_task(
    state: &AppState,
    kind: TaskKind,
    body: &CreateTask,
) -> Result<Response, ApiError> {
    if !body.update_records.is_empty() || body.on_success_renew_certificate {
        return Err(ApiError::invalid(format!(
            "a {} task takes no updateRecords or onSuccessRenewCertificate",
            body.kind
        )));
    }
    let loaded = state.loaded();
    let domain = find_domain(&loaded, &body.domain)?;
    if kind == TaskKind::DkimRotation
        && !matches!(domain.dkim_management, DkimManagement::Automatic { .. })
    {
        return Err(ApiError::invalid(format!(
            "domain {} has manual DKIM keys: mailzone does not rotate them",
            domain.name
        )));
    }
    if kind == TaskKind::TlsaSync && !mailzone_engine::tlsa::manages_tlsa(domain) {
        return Err(ApiError::invalid(format!(
            "mailzone does not publish the TLSA records of domain {}: it needs automatic DNS management with `tlsa` in publishRecords and a [server.tls] certificate",
            domain.name
        )));
    }
    let now = clock::unix_now();
    let task = state
        .store
        .create_task(&kind.task(domain.name.as_str(), now), now)
        .await?;
    Ok((StatusCode::ACCEPTED, Json(task_json(&task))).into_response())
}

pub(crate) async fn get_task(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    state
        .store
        .task(&id)
        .await?
        .map(|t| Json(task_json(&t)))
        .ok_or_else(|| ApiError::not_found(&format!("task {id}")))
}

/// Runs a Failed (or waiting) task again now; 409 for a Running or Succeeded one.
pub(crate) async fn retry_task(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let task = retry(&state, &id).await?;
    Ok((StatusCode::ACCEPTED, Json(task_json(&task))).into_response())
}

/// Takes a Scheduled or Retry task off the queue (200 with the task, now `Cancelled`);
/// 409 for a Running one (its publication cannot be taken back halfway) or an ended one.
pub(crate) async fn cancel_task(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(task_json(&cancel(&state, &id).await?)))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct RescheduleBody {
    /// RFC 3339; default: now.
    #[serde(default)]
    due_at: Option<String>,
}

/// Sets when a Scheduled, Retry or Failed task runs (`{"dueAt": "<RFC 3339>"}`, or now
/// without a body); a Failed task is Scheduled again with its attempts reset. 202 with
/// the task; 409 for a Running, Succeeded or Cancelled one.
pub(crate) async fn reschedule_task(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body: RescheduleBody = optional_json_body(&headers, body)?;
    let due_at = body.due_at.as_deref().map(parse_due_at).transpose()?;
    let task = reschedule(&state, &id, due_at).await?;
    Ok((StatusCode::ACCEPTED, Json(task_json(&task))).into_response())
}

/// An RFC 3339 time as Unix seconds (400 otherwise); a time before 1970 is refused too.
pub(crate) fn parse_due_at(text: &str) -> Result<i64, ApiError> {
    let bad = || {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_request",
            format!("dueAt `{text}` is not an RFC 3339 time such as 2030-01-31T12:00:00Z"),
        )
    };
    let time = humantime::parse_rfc3339(text.trim()).map_err(|_| bad())?;
    let since = time
        .duration_since(std::time::UNIX_EPOCH)
        .map_err(|_| bad())?;
    i64::try_from(since.as_secs()).map_err(|_| bad())
}

/// The use case behind the API's and the web UI's Retry: a Failed (or Retry) task
/// Scheduled now with its attempts reset.
pub(crate) async fn retry(state: &AppState, id: &str) -> Result<Task, ApiError> {
    let task = state
        .store
        .retry_task(id, clock::unix_now())
        .await?
        .ok_or_else(|| ApiError::not_found(&format!("task {id}")))?;
    if task.status != TaskStatus::Scheduled {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "not_retryable",
            format!(
                "task {id} is {}: only Failed and Retry tasks can be retried",
                task.status.as_str()
            ),
        ));
    }
    Ok(task)
}

/// The use case behind the API's and the web UI's Cancel.
pub(crate) async fn cancel(state: &AppState, id: &str) -> Result<Task, ApiError> {
    match state.store.cancel_task(id, clock::unix_now()).await? {
        TaskChange::Changed(task) => Ok(task),
        TaskChange::NotFound => Err(ApiError::not_found(&format!("task {id}"))),
        TaskChange::Refused(task) if task.status == TaskStatus::Running => Err(ApiError::new(
            StatusCode::CONFLICT,
            "running",
            format!(
                "task {id} is Running and cannot be cancelled: its worker is publishing now; wait for it to end"
            ),
        )),
        TaskChange::Refused(task) => Err(ApiError::new(
            StatusCode::CONFLICT,
            "not_cancellable",
            format!(
                "task {id} is {}: only Scheduled and Retry tasks can be cancelled",
                task.status.as_str()
            ),
        )),
    }
}

/// The use case behind the API's and the web UI's Reschedule: `due_at` (default now).
pub(crate) async fn reschedule(
    state: &AppState,
    id: &str,
    due_at: Option<i64>,
) -> Result<Task, ApiError> {
    let now = clock::unix_now();
    match state
        .store
        .reschedule_task(id, due_at.unwrap_or(now), now)
        .await?
    {
        TaskChange::Changed(task) => Ok(task),
        TaskChange::NotFound => Err(ApiError::not_found(&format!("task {id}"))),
        TaskChange::Refused(task) => Err(ApiError::new(
            StatusCode::CONFLICT,
            "not_reschedulable",
            format!(
                "task {id} is {}: only Scheduled, Retry and Failed tasks can be rescheduled",
                task.status.as_str()
            ),
        )),
    }
}
