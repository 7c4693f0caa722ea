//! `/ui/domains`: every domain (config file and API-defined) with its DNS management, last
//! check, last task and whether its zone is in sync; the add / edit / delete forms of
//! API-defined domains, which go through the API's own use case
//! ([`crate::api::domains::apply_domain_change`]).

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Form, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use mailzone_engine::LoadedConfig;
use mailzone_engine::clock;
use mailzone_engine::records::ZoneDigest;
use mailzone_records::{DnsManagement, Domain, Name};
use mailzone_store::{Task, TaskStatus, ZoneState};
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::layout::{self, Nav, Page, plural};
use super::session::{Session, csrf_field};
use crate::api::domains::{apply_domain_change, domain_name, read_only};
use crate::state::AppState;

/// Rows per page of the list.
pub const PAGE_SIZE: usize = 100;

/// A cached digest older than this is planned again, so that what depends on the clock
/// alone (a TLSA digest's retirement) shows within minutes.
const DIGEST_MAX_AGE_SECS: i64 = 600;

/// The routes of this page group, relative to `/ui`, behind the session check.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/domains", get(list))
        .route("/domains/new", get(new_form).post(create))
        .route("/domains/{name}/edit", get(edit_form).post(update))
        .route("/domains/{name}/delete", post(delete))
}

/// `?q=&status=&page=&done=` of the list.
#[derive(Deserialize, Default)]
pub struct ListQuery {
    q: Option<String>,
    status: Option<String>,
    page: Option<String>,
    done: Option<String>,
}

/// The `status` filter values and their labels.
const STATUS_FILTERS: [(&str, &str); 6] = [
    ("", "Any"),
    ("errors", "Check found errors"),
    ("warnings", "Check found warnings"),
    ("out-of-sync", "Out of sync"),
    ("failed", "Last task failed"),
    ("manual", "Manual DNS"),
];

/// Whether a domain's zone holds what mailzone would publish now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sync {
    Manual,
    NeverPublished,
    InSync,
    OutOfSync,
}

impl Sync {
    pub fn label(self) -> &'static str {
        match self {
            Sync::Manual => "Manual",
            Sync::NeverPublished => "Never published",
            Sync::InSync => "In sync",
            Sync::OutOfSync => "Out of sync",
        }
    }

    fn class(self) -> &'static str {
        match self {
            Sync::InSync => "badge ok",
            Sync::OutOfSync => "badge warning",
            Sync::NeverPublished | Sync::Manual => "badge",
        }
    }
}

/// Each domain's desired digests, planned once per config and DKIM keys: planning every
/// domain on each view of a list of thousands would cost seconds (DKIM keys are decoded),
/// while they change only with the config (a new `Arc`), a domain's keys, the TLSA state
/// or the clock.
///
/// The config is held weakly: a reloaded config frees the old one at once, not at the
/// next view of the list (two configs of 100,000 domains would be held otherwise).
#[derive(Default)]
struct DigestCache {
    config: std::sync::Weak<LoadedConfig>,
    tlsa: u64,
    entries: HashMap<String, CachedDigests>,
}

#[derive(Clone)]
struct CachedDigests {
    keys: u64,
    at: i64,
    digests: Option<Vec<ZoneDigest>>,
}

static DIGESTS: std::sync::LazyLock<Mutex<DigestCache>> =
    std::sync::LazyLock::new(|| Mutex::new(DigestCache::default()));

fn hash_of(value: &impl Hash) -> u64 {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    value.hash(&mut hasher);
    hasher.finish()
}

/// The sync state of `domains`, from the stored zone states (one query), the DKIM key
/// summaries (one query) and the cached digests (planned again where stale).
pub async fn sync_states(
    state: &AppState,
    loaded: &Arc<LoadedConfig>,
    domains: &[&Domain],
) -> Result<HashMap<String, Sync>, String> {
    let now = clock::unix_now();
    let zone_states = state.store.zone_states().await.map_err(|e| e.to_string())?;
    let mut key_rows: HashMap<String, Vec<_>> = HashMap::new();
    for row in state
        .store
        .dkim_key_summaries()
        .await
        .map_err(|e| e.to_string())?
    {
        key_rows.entry(row.0.clone()).or_default().push(row);
    }
    for rows in key_rows.values_mut() {
        rows.sort();
    }
    let tlsa = mailzone_engine::records::planning_tlsa_keys(loaded, &state.store, now)
        .await
        .map_err(|e| e.to_string())?;
    let tlsa_hash = hash_of(&format!("{tlsa:?}"));
    let cached = {
        let mut cache = DIGESTS.lock().unwrap_or_else(|p| p.into_inner());
        let same_config = std::ptr::eq(cache.config.as_ptr(), Arc::as_ptr(loaded));
        if !same_config || cache.tlsa != tlsa_hash {
            *cache = DigestCache {
                config: Arc::downgrade(loaded),
                tlsa: tlsa_hash,
                entries: HashMap::new(),
            };
        }
        // Only the entries of the domains asked about: a page of 100 must not copy the
        // cache of every domain.
        domains
            .iter()
            .filter_map(|d| {
                let name = d.name.as_str();
                cache
                    .entries
                    .get(name)
                    .map(|c| (name.to_string(), c.clone()))
            })
            .collect::<HashMap<_, _>>()
    };
    let mut fresh = Vec::new();
    let mut out = HashMap::with_capacity(domains.len());
    for domain in domains {
        let DnsManagement::Automatic { .. } = &domain.dns_management else {
            out.insert(domain.name.as_str().to_string(), Sync::Manual);
            continue;
        };
        let keys = hash_of(&key_rows.get(domain.name.as_str()));
        let digests = match cached.get(domain.name.as_str()) {
            Some(c) if c.keys == keys && now - c.at < DIGEST_MAX_AGE_SECS => c.digests.clone(),
            _ => {
                let digests = mailzone_engine::records::publication_digests(
                    loaded,
                    &state.store,
                    domain,
                    tlsa.as_ref(),
                )
                .await
                .map_err(|e| e.to_string())?;
                fresh.push((
                    domain.name.as_str().to_string(),
                    CachedDigests {
                        keys,
                        at: now,
                        digests: digests.clone(),
                    },
                ));
                digests
            }
        };
        out.insert(
            domain.name.as_str().to_string(),
            sync_of(domain, digests.as_deref(), &zone_states),
        );
    }
    let mut cache = DIGESTS.lock().unwrap_or_else(|p| p.into_inner());
    if std::ptr::eq(cache.config.as_ptr(), Arc::as_ptr(loaded)) {
        cache.entries.extend(fresh);
    }
    Ok(out)
}

/// In sync when every zone the domain's publication writes was last applied with the
/// records planned now; never published when none of them was ever applied.
fn sync_of(
    domain: &Domain,
    digests: Option<&[ZoneDigest]>,
    zone_states: &HashMap<(String, String), ZoneState>,
) -> Sync {
    let DnsManagement::Automatic { dns_server, .. } = &domain.dns_management else {
        return Sync::Manual;
    };
    let own = (domain.zone.as_str().to_string(), dns_server.clone());
    let Some(digests) = digests else {
        return if zone_states.contains_key(&own) {
            Sync::OutOfSync
        } else {
            Sync::NeverPublished
        };
    };
    let stored: Vec<Option<&ZoneState>> = digests
        .iter()
        .map(|d| zone_states.get(&(d.zone.clone(), d.dns_server.clone())))
        .collect();
    if stored.iter().all(Option::is_none) {
        return Sync::NeverPublished;
    }
    let all_same = digests
        .iter()
        .zip(&stored)
        .all(|(d, s)| s.is_some_and(|s| s.desired_digest == d.digest));
    if all_same {
        Sync::InSync
    } else {
        Sync::OutOfSync
    }
}

/// The check cell's text: "No errors", "2 errors, 1 warning", "Not checked yet".
pub fn check_summary(check: Option<&crate::state::LastCheck>) -> String {
    use mailzone_check::Severity;
    let Some(check) = check else {
        return "Not checked yet".to_string();
    };
    let (errors, warnings) = (check.count(Severity::Error), check.count(Severity::Warning));
    let first = if errors == 0 {
        "No errors".to_string()
    } else {
        plural(errors, "error")
    };
    if warnings == 0 {
        first
    } else {
        format!("{first}, {}", plural(warnings, "warning"))
    }
}

/// One row of the list, everything it shows gathered.
struct Row<'a> {
    domain: &'a Domain,
    from_api: bool,
    check: Option<crate::state::LastCheck>,
    task: Option<&'a Task>,
    sync: Sync,
}

async fn list(
    State(state): State<AppState>,
    session: Session,
    Query(query): Query<ListQuery>,
) -> Response {
    let loaded = state.loaded();
    let needle = query.q.as_deref().unwrap_or("").trim().to_lowercase();
    let status = query.status.as_deref().unwrap_or("");
    let tasks = match state.store.newest_task_per_domain().await {
        Ok(tasks) => tasks,
        Err(e) => return layout::error_page(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    };
    let tasks: HashMap<&str, &Task> = tasks.iter().map(|t| (t.domain.as_str(), t)).collect();
    let checks = match state.last_checks.read() {
        Ok(c) => c.clone(),
        Err(p) => p.into_inner().clone(),
    };
    let matching: Vec<&Domain> = loaded
        .config
        .domains
        .iter()
        .filter(|d| needle.is_empty() || d.name.as_str().contains(&needle))
        .filter(|d| match status {
            "errors" | "warnings" => {
                let severity = if status == "errors" {
                    mailzone_check::Severity::Error
                } else {
                    mailzone_check::Severity::Warning
                };
                checks
                    .get(d.name.as_str())
                    .is_some_and(|c| c.count(severity) > 0)
            }
            "failed" => tasks
                .get(d.name.as_str())
                .is_some_and(|t| t.status == TaskStatus::Failed),
            "manual" => matches!(d.dns_management, DnsManagement::Manual),
            _ => true,
        })
        .collect();
    // The sync state needs a plan per domain (cached): for the shown page only, unless
    // the filter is the sync state itself.
    let (matching, total) = if status == "out-of-sync" {
        let syncs = match sync_states(&state, &loaded, &matching).await {
            Ok(s) => s,
            Err(e) => return layout::error_page(StatusCode::INTERNAL_SERVER_ERROR, &e),
        };
        let kept: Vec<&Domain> = matching
            .into_iter()
            .filter(|d| syncs.get(d.name.as_str()) == Some(&Sync::OutOfSync))
            .collect();
        let total = kept.len();
        (kept, total)
    } else {
        let total = matching.len();
        (matching, total)
    };
    let pages = total.div_ceil(PAGE_SIZE).max(1);
    let page = query
        .page
        .as_deref()
        .and_then(|p| p.parse::<usize>().ok())
        .unwrap_or(1)
        .clamp(1, pages);
    let shown: Vec<&Domain> = matching
        .into_iter()
        .skip((page - 1) * PAGE_SIZE)
        .take(PAGE_SIZE)
        .collect();
    let syncs = match sync_states(&state, &loaded, &shown).await {
        Ok(s) => s,
        Err(e) => return layout::error_page(StatusCode::INTERNAL_SERVER_ERROR, &e),
    };
    let rows: Vec<Row<'_>> = shown
        .iter()
        .map(|d| Row {
            domain: d,
            from_api: loaded.api_domains.contains(&d.name),
            check: checks.get(d.name.as_str()).cloned(),
            task: tasks.get(d.name.as_str()).copied(),
            sync: syncs
                .get(d.name.as_str())
                .copied()
                .unwrap_or(Sync::NeverPublished),
        })
        .collect();
    let now = clock::unix_now();
    let notice = match query.done.as_deref() {
        Some("deleted") => {
            Some("The domain was deleted. Its published records stay until removed from its zone.")
        }
        _ => None,
    };
    let body = html! {
        h1 { "Domains" }
        @if let Some(notice) = notice {
            p.alert.ok role="status" { (notice) }
        }
        div.actions {
            a #add-domain .button.primary href="/ui/domains/new" { "Add a domain" }
        }
        (filter_form(query.q.as_deref().unwrap_or(""), status))
        p #domain-count {
            @if total == loaded.config.domains.len() {
                (plural(total, "domain"))
            } @else {
                (plural(total, "domain")) " of " (loaded.config.domains.len()) " match"
            }
            @if pages > 1 {
                " · page " (page) " of " (pages)
            }
        }
        div.table-wrap tabindex="0" role="region" aria-label="Domains" {
            table #domains {
                (layout::column_headers(&["Domain", "DNS", "Zone", "Last check", "Last task"]))
                tbody {
                    @for row in &rows { (row_markup(row, now)) }
                }
            }
        }
        @if rows.is_empty() {
            p.muted { "No domain matches." }
        }
        (pager(&query, page, pages))
    };
    Page::signed_in(&state, &session, Nav::Domains, "Domains", body)
        .await
        .render()
        .into_response()
}

fn filter_form(q: &str, status: &str) -> Markup {
    html! {
        form #domain-filter .filters method="get" action="/ui/domains" role="search" {
            div {
                label for="q" { "Name contains" }
                input #q type="search" name="q" value=(q);
            }
            div {
                label for="status" { "Status" }
                select #status name="status" {
                    @for (value, label) in STATUS_FILTERS {
                        option value=(value) selected[value == status] { (label) }
                    }
                }
            }
            button type="submit" { "Filter" }
        }
    }
}

fn row_markup(row: &Row<'_>, now: i64) -> Markup {
    let name = row.domain.name.as_str();
    html! {
        tr data-domain=(name) {
            th scope="row" {
                a href=(format!("/ui/domains/{name}")) { (name) }
                " "
                span.muted { @if row.from_api { "(API)" } @else { "(file)" } }
            }
            td.dns {
                @match &row.domain.dns_management {
                    DnsManagement::Manual => "Manual",
                    DnsManagement::Automatic { dns_server, .. } => {
                        "Automatic via " (dns_server)
                    }
                }
            }
            td.sync { span class=(row.sync.class()) { (row.sync.label()) } }
            td.check {
                (check_summary(row.check.as_ref()))
                @if let Some(check) = &row.check {
                    " · " (layout::time(check.at_unix, now))
                }
            }
            td.task {
                @if let Some(task) = row.task {
                    span class=(task_class(task.status)) { (task.status.as_str()) }
                    " " span.muted { (task.kind) " · " (layout::time(task.updated_at, now)) }
                } @else {
                    span.muted { "None" }
                }
            }
        }
    }
}

/// The badge class of a task status (the text says the status too).
pub fn task_class(status: TaskStatus) -> &'static str {
    match status {
        TaskStatus::Succeeded => "badge ok",
        TaskStatus::Failed => "badge error",
        TaskStatus::Retry => "badge warning",
        TaskStatus::Scheduled | TaskStatus::Running | TaskStatus::Cancelled => "badge",
    }
}

fn pager(query: &ListQuery, page: usize, pages: usize) -> Markup {
    let link = |p: usize| page_href(query, p);
    html! {
        @if pages > 1 {
            nav.pager aria-label="Pages" {
                @if page > 1 { a rel="prev" href=(link(page - 1)) { "Previous" } " " }
                span { "Page " (page) " of " (pages) }
                @if page < pages { " " a rel="next" href=(link(page + 1)) { "Next" } }
            }
        }
    }
}

/// The list's URL with the filter of `query` on page `page`.
fn page_href(query: &ListQuery, page: usize) -> String {
    let mut params = form_urlencoded::Serializer::new(String::new());
    for (key, value) in [("q", &query.q), ("status", &query.status)] {
        if let Some(value) = value.as_deref().filter(|v| !v.is_empty()) {
            params.append_pair(key, value);
        }
    }
    params.append_pair("page", &page.to_string());
    format!("/ui/domains?{}", params.finish())
}

/// The add / edit form as posted (and as shown again after a mistake).
#[derive(Deserialize, Default, Clone)]
pub struct DomainForm {
    #[serde(default)]
    name: String,
    #[serde(default, rename = "dnsManagement")]
    dns_management: String,
    #[serde(default, rename = "dnsServer")]
    dns_server: String,
    #[serde(default)]
    origin: String,
    #[serde(default, rename = "dmarcPolicy")]
    dmarc_policy: String,
    #[serde(default)]
    advanced: String,
}

impl DomainForm {
    /// The form of a stored API definition (for editing).
    fn from_definition(name: &str, definition: &Value) -> DomainForm {
        let automatic = &definition["dnsManagement"]["automatic"];
        let text = |v: &Value| v.as_str().unwrap_or("").to_string();
        DomainForm {
            name: name.to_string(),
            dns_management: if automatic.is_object() {
                "automatic".into()
            } else {
                "manual".into()
            },
            dns_server: text(&automatic["dnsServer"]),
            origin: text(&automatic["origin"]),
            dmarc_policy: text(&definition["dmarc"]["policy"]),
            advanced: serde_json::to_string_pretty(definition).unwrap_or_default(),
        }
    }

    /// The definition to store: the Advanced JSON with the common fields put over it.
    fn definition(&self) -> Result<Value, String> {
        let mut definition = if self.advanced.trim().is_empty() {
            Map::new()
        } else {
            match serde_json::from_str::<Value>(&self.advanced) {
                Ok(Value::Object(map)) => map,
                Ok(_) => return Err("Advanced: the definition must be a JSON object".into()),
                Err(e) => return Err(format!("Advanced: not valid JSON: {e}")),
            }
        };
        definition.remove("name");
        match self.dns_management.as_str() {
            "automatic" => {
                if self.dns_server.trim().is_empty() {
                    return Err("Choose the DNS server that publishes the records".into());
                }
                let mut automatic = match definition
                    .get("dnsManagement")
                    .and_then(|d| d.get("automatic"))
                {
                    Some(Value::Object(map)) => map.clone(),
                    _ => Map::new(),
                };
                automatic.insert("dnsServer".into(), json!(self.dns_server.trim()));
                if self.origin.trim().is_empty() {
                    automatic.remove("origin");
                } else {
                    automatic.insert("origin".into(), json!(self.origin.trim()));
                }
                definition.insert("dnsManagement".into(), json!({ "automatic": automatic }));
            }
            _ => {
                definition.insert("dnsManagement".into(), json!({ "manual": {} }));
            }
        }
        if !self.dmarc_policy.is_empty() {
            let mut dmarc = match definition.get("dmarc") {
                Some(Value::Object(map)) => map.clone(),
                _ => Map::new(),
            };
            dmarc.insert("policy".into(), json!(self.dmarc_policy));
            definition.insert("dmarc".into(), Value::Object(dmarc));
        }
        Ok(Value::Object(definition))
    }
}

async fn new_form(State(state): State<AppState>, session: Session) -> Response {
    let form = DomainForm {
        dns_management: "automatic".into(),
        ..DomainForm::default()
    };
    form_page(&state, &session, None, &form, None).await
}

async fn edit_form(
    State(state): State<AppState>,
    session: Session,
    Path(raw): Path<String>,
) -> Response {
    let loaded = state.loaded();
    let name = match domain_name(&raw) {
        Ok(n) => n,
        Err(e) => return layout::error_page(StatusCode::BAD_REQUEST, e.message()),
    };
    if loaded.config.domain(&name).is_none() {
        return layout::error_page(
            StatusCode::NOT_FOUND,
            &format!("No domain {}.", name.as_str()),
        );
    }
    if !loaded.api_domains.contains(&name) {
        return read_only_page(&state, &session, &name, &loaded).await;
    }
    let definition = match stored_definition(&state, &name).await {
        Ok(d) => d,
        Err(e) => return layout::error_page(StatusCode::INTERNAL_SERVER_ERROR, &e),
    };
    let form = DomainForm::from_definition(name.as_str(), &definition);
    form_page(&state, &session, Some(&name), &form, None).await
}

/// The stored API definition of `name` as JSON (an empty object when unreadable).
async fn stored_definition(state: &AppState, name: &Name) -> Result<Value, String> {
    let stored = state.store.api_domains().await.map_err(|e| e.to_string())?;
    Ok(stored
        .into_iter()
        .find(|(n, _)| n == name.as_str())
        .and_then(|(_, d)| serde_json::from_str::<Value>(&d).ok())
        .unwrap_or_else(|| json!({})))
}

/// A domain of the config file: its file is named, no form is shown.
async fn read_only_page(
    state: &AppState,
    session: &Session,
    name: &Name,
    loaded: &LoadedConfig,
) -> Response {
    let message = read_only(name, &loaded.path);
    let body = html! {
        h1 { "Edit " (name.as_str()) }
        p #read-only .alert role="status" { (message.message()) }
        p { a href=(format!("/ui/domains/{}", name.as_str())) { "Back to " (name.as_str()) } }
    };
    let title = format!("Edit {}", name.as_str());
    (
        StatusCode::CONFLICT,
        Page::signed_in(state, session, Nav::Domains, &title, body)
            .await
            .render(),
    )
        .into_response()
}

async fn create(
    State(state): State<AppState>,
    session: Session,
    Form(form): Form<DomainForm>,
) -> Response {
    let name = match domain_name(form.name.trim()) {
        Ok(n) => n,
        Err(e) => return form_page(&state, &session, None, &form, Some(e.message())).await,
    };
    let definition = match form.definition() {
        Ok(d) => d,
        Err(e) => return form_page(&state, &session, None, &form, Some(&e)).await,
    };
    let (writing, loaded) = state.lock_config_writes().await;
    if loaded.config.domain(&name).is_some() {
        drop(writing);
        let problem = if loaded.api_domains.contains(&name) {
            format!("Domain {} exists already: edit it instead.", name.as_str())
        } else {
            read_only(&name, &loaded.path).message().to_string()
        };
        return form_page(&state, &session, None, &form, Some(&problem)).await;
    }
    let result = apply_domain_change(&state, &name, Some(&definition)).await;
    drop(writing);
    match result {
        Ok(_) => Redirect::to(&format!("/ui/domains/{}?done=saved", name.as_str())).into_response(),
        Err(e) => form_page(&state, &session, None, &form, Some(e.message())).await,
    }
}

/// The API-defined domain `raw` names, with the config write lock held for its change;
/// otherwise the page to answer: a bad name, no such domain, or a file-defined one (read-only).
async fn api_domain_to_change<'a>(
    state: &'a AppState,
    session: &Session,
    raw: &str,
) -> Result<(Name, tokio::sync::MutexGuard<'a, ()>), Response> {
    let name =
        domain_name(raw).map_err(|e| layout::error_page(StatusCode::BAD_REQUEST, e.message()))?;
    let (writing, loaded) = state.lock_config_writes().await;
    if loaded.config.domain(&name).is_none() {
        let message = format!("No domain {}.", name.as_str());
        return Err(layout::error_page(StatusCode::NOT_FOUND, &message));
    }
    if !loaded.api_domains.contains(&name) {
        drop(writing);
        return Err(read_only_page(state, session, &name, &loaded).await);
    }
    Ok((name, writing))
}

async fn update(
    State(state): State<AppState>,
    session: Session,
    Path(raw): Path<String>,
    Form(form): Form<DomainForm>,
) -> Response {
    let (name, writing) = match api_domain_to_change(&state, &session, &raw).await {
        Ok(found) => found,
        Err(page) => return page,
    };
    let definition = match form.definition() {
        Ok(d) => d,
        Err(e) => {
            drop(writing);
            return form_page(&state, &session, Some(&name), &form, Some(&e)).await;
        }
    };
    let result = apply_domain_change(&state, &name, Some(&definition)).await;
    drop(writing);
    match result {
        Ok(_) => Redirect::to(&format!("/ui/domains/{}?done=saved", name.as_str())).into_response(),
        Err(e) => form_page(&state, &session, Some(&name), &form, Some(e.message())).await,
    }
}

async fn delete(
    State(state): State<AppState>,
    Path(raw): Path<String>,
    session: Session,
) -> Response {
    let (name, writing) = match api_domain_to_change(&state, &session, &raw).await {
        Ok(found) => found,
        Err(page) => return page,
    };
    let result = apply_domain_change(&state, &name, None).await;
    drop(writing);
    match result {
        Ok(_) => Redirect::to("/ui/domains?done=deleted").into_response(),
        Err(e) => layout::error_page(e.status(), e.message()),
    }
}

/// The add (`editing` None) or edit form, with `problem` above it and the given values.
async fn form_page(
    state: &AppState,
    session: &Session,
    editing: Option<&Name>,
    form: &DomainForm,
    problem: Option<&str>,
) -> Response {
    let loaded = state.loaded();
    let servers: Vec<&str> = loaded
        .config
        .dns_servers
        .iter()
        .map(|s| s.name.as_str())
        .collect();
    let (title, action) = match editing {
        Some(name) => (
            format!("Edit {}", name.as_str()),
            format!("/ui/domains/{}/edit", name.as_str()),
        ),
        None => ("Add a domain".to_string(), "/ui/domains/new".to_string()),
    };
    let body = html! {
        h1 { (title) }
        @if let Some(problem) = problem {
            div #form-error .alert.error role="alert" { p { (problem) } }
        }
        form #domain-form method="post" action=(action) {
            (csrf_field(session))
            label for="name" { "Domain name" }
            @if let Some(name) = editing {
                input #name type="text" name="name" value=(name.as_str()) readonly;
                p.hint { "The name cannot be changed: add the new domain and delete this one." }
            } @else {
                input #name type="text" name="name" value=(form.name) required autocomplete="off" placeholder="example.org";
            }
            label for="dnsManagement" { "DNS management" }
            select #dnsManagement name="dnsManagement" {
                option value="automatic" selected[form.dns_management == "automatic"] { "Automatic: mailzone publishes the records" }
                option value="manual" selected[form.dns_management == "manual"] { "Manual: you publish the records shown" }
            }
            label for="dnsServer" { "DNS server (automatic management)" }
            @if servers.is_empty() {
                p.hint #no-dns-server {
                    "No DNS server is defined yet. "
                    a #create-dns-server href="/ui/dns-servers/new" { "Create a DNS server" }
                    " first, or choose manual DNS management."
                }
                input #dnsServer type="text" name="dnsServer" value=(form.dns_server);
            } @else {
                select #dnsServer name="dnsServer" {
                    option value="" selected[form.dns_server.is_empty()] { "(none)" }
                    @for server in &servers {
                        option value=(server) selected[form.dns_server == *server] { (server) }
                    }
                }
            }
            label for="origin" { "Zone (origin)" }
            input #origin type="text" name="origin" value=(form.origin) placeholder="the domain itself";
            p.hint { "The zone the records live in, when the domain is inside a larger zone." }
            label for="dmarcPolicy" { "DMARC policy" }
            select #dmarcPolicy name="dmarcPolicy" {
                @for (value, label) in [("", "Default (reject) or as in Advanced"), ("reject", "reject"), ("quarantine", "quarantine"), ("none", "none")] {
                    option value=(value) selected[form.dmarc_policy == value] { (label) }
                }
            }
            details open[!form.advanced.trim().is_empty() && editing.is_none()] {
                summary { "Advanced" }
                label for="advanced" { "The full definition as JSON" }
                p.hint {
                    "The config file's camelCase keys of a " code { "[domain.\"<name>\"]" }
                    " table (spf, dmarc, tlsRpt, mtaSts, caa, dkimManagement, ttl, …). The fields above are put over it."
                }
                textarea #advanced name="advanced" rows="14" spellcheck="false" { (form.advanced) }
            }
            div.actions {
                button #save-domain .primary type="submit" { "Save" }
                @if let Some(name) = editing {
                    a.button href=(format!("/ui/domains/{}", name.as_str())) { "Cancel" }
                } @else {
                    a.button href="/ui/domains" { "Cancel" }
                }
            }
        }
        @if let Some(name) = editing {
            h2 { "Delete" }
            form #delete-domain-form method="post" action=(format!("/ui/domains/{}/delete", name.as_str()))
                data-confirm=(format!("Delete domain {}? Its published records stay in its zone.", name.as_str())) {
                (csrf_field(session))
                button #delete-domain .danger type="submit" { "Delete " (name.as_str()) }
            }
        }
    };
    let status = if problem.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    (
        status,
        Page::signed_in(state, session, Nav::Domains, &title, body)
            .await
            .render(),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_common_fields_go_over_the_advanced_json() {
        let form = DomainForm {
            name: "example.org".into(),
            dns_management: "automatic".into(),
            dns_server: "primary".into(),
            origin: String::new(),
            dmarc_policy: "quarantine".into(),
            advanced: r#"{"name": "x", "dnsManagement": {"automatic": {"dnsServer": "old", "publishRecords": ["mx"]}}, "dmarc": {"rua": ["mailto:a@b"]}}"#.into(),
        };
        assert_eq!(
            form.definition().unwrap(),
            json!({
                "dnsManagement": {"automatic": {"dnsServer": "primary", "publishRecords": ["mx"]}},
                "dmarc": {"rua": ["mailto:a@b"], "policy": "quarantine"},
            })
        );
        let manual = DomainForm {
            dns_management: "manual".into(),
            ..form.clone()
        };
        assert_eq!(
            manual.definition().unwrap()["dnsManagement"],
            json!({"manual": {}})
        );
        let broken = DomainForm {
            advanced: "[1]".into(),
            ..form
        };
        assert!(broken.definition().unwrap_err().contains("JSON object"));
    }

    #[test]
    fn check_summaries_count_errors_and_warnings() {
        assert_eq!(check_summary(None), "Not checked yet");
        let empty = crate::state::LastCheck {
            at_unix: 0,
            findings: vec![],
        };
        assert_eq!(check_summary(Some(&empty)), "No errors");
    }

    #[test]
    fn query_values_are_percent_encoded() {
        let query = ListQuery {
            q: Some("a b&c".into()),
            status: Some("errors".into()),
            ..ListQuery::default()
        };
        assert_eq!(
            page_href(&query, 2),
            "/ui/domains?q=a+b%26c&status=errors&page=2"
        );
    }
}
