//! `/ui/domains/<name>`: one domain's records (grouped by purpose, with copy buttons and
//! the zone-file and JSON downloads), its plan against the DNS server and "Publish now",
//! "Check now" and the last check's findings, its DKIM keys ("Generate", "Rotate now") and
//! the TLSA status. What asks a DNS server (the plan, the served TLSA digests) is a part
//! of its own, loaded after the page so a slow or dead server never holds the page up.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use mailzone_check::Severity;
use mailzone_engine::tasks::TaskKind;
use mailzone_engine::{LoadedConfig, RecordsRequest, clock};
use mailzone_records::diff::PlanEntry;
use mailzone_records::{DesiredRecord, DkimManagement, DnsManagement, Domain, RecordPurpose};
use mailzone_store::{NewTask, Task};
use maud::{Markup, html};
use serde::Deserialize;

use super::domains::{check_summary, sync_states, task_class};
use super::layout::{self, Nav, copyable, plural};
use super::session::{Session, csrf_field};
use crate::api::ApiError;
use crate::api::domains::{check_request, find_domain, plan_report, planned_records};
use crate::state::AppState;

/// How long the TLSA part waits for each DNS answer.
const TLSA_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3);

/// The routes of this page group, relative to `/ui`, behind the session check.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/domains/{name}", get(page))
        .route("/domains/{name}/zone", get(zone_file))
        .route("/domains/{name}/json", get(records_json))
        .route("/domains/{name}/plan", get(plan_part))
        .route("/domains/{name}/tlsa", get(tlsa_part))
        .route("/domains/{name}/publish", post(publish))
        .route("/domains/{name}/check", post(check_now))
        .route("/domains/{name}/dkim/generate", post(dkim_generate))
        .route("/domains/{name}/dkim/rotate", post(dkim_rotate))
}

/// `?done=<notice>&task=<id>` after an action.
#[derive(Deserialize, Default)]
pub struct PageQuery {
    done: Option<String>,
    task: Option<String>,
}

/// The fixed sentence of each notice code.
fn notice(code: &str) -> Option<&'static str> {
    Some(match code {
        "saved" => "The domain was saved.",
        "published" => "A DnsManagement task was scheduled: its status follows.",
        "checked" => "The domain was checked: the findings follow.",
        "dkim-generated" => "A new DKIM key was generated (Pending until its record is served).",
        "dkim-rotated" => "The DKIM keys were rotated.",
        _ => return None,
    })
}

/// The domain a `/ui/domains/<name>/…` path names, in the config loaded when the request
/// came; an invalid or unknown name is answered with the error page.
struct Named {
    loaded: Arc<LoadedConfig>,
    domain: Domain,
}

impl FromRequestParts<AppState> for Named {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Named, Response> {
        let Path(raw) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(IntoResponse::into_response)?;
        let loaded = state.loaded();
        let domain = find_domain(&loaded, &raw)
            .map_err(|e| api_error_page(&e))?
            .clone();
        Ok(Named { loaded, domain })
    }
}

fn api_error_page(e: &ApiError) -> Response {
    layout::error_page(e.status(), e.message())
}

fn href(domain: &Domain, rest: &str) -> String {
    format!("/ui/domains/{}{rest}", domain.name.as_str())
}

fn is_automatic(domain: &Domain) -> bool {
    matches!(domain.dns_management, DnsManagement::Automatic { .. })
}

async fn page(
    State(state): State<AppState>,
    session: Session,
    Named { loaded, domain }: Named,
    Query(query): Query<PageQuery>,
) -> Response {
    let records = match planned_records(&state, &loaded, &domain, vec![]).await {
        Ok(r) => r.records,
        Err(e) => return api_error_page(&e),
    };
    let task = match &query.task {
        Some(id) => match state.store.task(id).await {
            Ok(task) => task.filter(|t| t.domain == domain.name.as_str()),
            Err(e) => return layout::error_page(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
        },
        None => None,
    };
    let task = match task {
        Some(t) => Some(t),
        None => match state.store.newest_task_per_domain().await {
            Ok(tasks) => tasks.into_iter().find(|t| t.domain == domain.name.as_str()),
            Err(e) => return layout::error_page(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
        },
    };
    let sync = sync_states(&state, &loaded, &[&domain])
        .await
        .ok()
        .and_then(|s| s.get(domain.name.as_str()).copied());
    let dkim = dkim_keys(&state, &loaded, &domain).await;
    let now = clock::unix_now();
    let from_api = loaded.api_domains.contains(&domain.name);
    let name = domain.name.as_str();
    let body = html! {
        h1 { (name) }
        @if let Some(text) = query.done.as_deref().and_then(notice) {
            p.alert.ok role="status" { (text) }
        }
        dl.facts {
            dt { "Defined in" }
            dd {
                @if from_api {
                    "the API (stored in the state database) · "
                    a #edit-domain href=(href(&domain, "/edit")) { "Edit" }
                } @else {
                    "the file " span #defined-in { (loaded.path.display().to_string()) }
                    " (read-only here: change it in the file and reload)"
                }
            }
            dt { "DNS management" }
            dd {
                @match &domain.dns_management {
                    DnsManagement::Manual => "Manual: publish the records below at your DNS provider",
                    DnsManagement::Automatic { dns_server, .. } => {
                        "Automatic via " a href=(format!("/ui/dns-servers/{dns_server}")) { (dns_server) }
                        " (zone " (domain.zone.as_str()) ")"
                    }
                }
            }
            @if let Some(sync) = sync {
                dt { "Zone" }
                dd #sync-state { (sync.label()) }
            }
        }
        (task_part(task.as_ref(), now))
        (records_section(&domain, &records))
        (plan_section(&session, &domain))
        (check_section(&state, &session, &domain, now))
        (dkim_section(&session, &domain, dkim, now))
        (tlsa_section(&loaded, &domain))
    };
    layout::signed_in_page(&state, &session, Nav::Domains, name, body).await
}

/// The domain's last task, refreshed in place while it runs.
fn task_part(task: Option<&Task>, now: i64) -> Markup {
    html! {
        section #domain-task data-live="3" aria-live="polite" {
            h2 { "Last task" }
            @if let Some(task) = task {
                p {
                    span class=(task_class(task.status)) { (task.status.as_str()) }
                    " " (task.kind) " · updated " (layout::time(task.updated_at, now))
                    " · " a href=(format!("/ui/tasks/{}", task.id)) { "task " (task.id) }
                }
                @if let Some(progress) = &task.progress {
                    p.muted { (progress) }
                }
                @if let Some(reason) = &task.failure_reason {
                    p.error role="alert" { (reason) }
                }
            } @else {
                p.muted { "No task yet." }
            }
        }
    }
}

fn purpose_label(purpose: RecordPurpose) -> &'static str {
    match purpose {
        RecordPurpose::Mx => "MX: where mail is delivered",
        RecordPurpose::Address => "Addresses of the mail hosts",
        RecordPurpose::Spf => "SPF: who may send",
        RecordPurpose::Dkim => "DKIM: signing keys",
        RecordPurpose::Dmarc => "DMARC: policy and reports",
        RecordPurpose::TlsRpt => "TLS-RPT: TLS failure reports",
        RecordPurpose::MtaSts => "MTA-STS: TLS policy",
        RecordPurpose::Srv => "SRV: client services",
        RecordPurpose::AutoConfig => "Autoconfig (PACC)",
        RecordPurpose::AutoConfigLegacy => "Autoconfig (Thunderbird)",
        RecordPurpose::AutoDiscover => "Autodiscover (Outlook)",
        RecordPurpose::Caa => "CAA: certificate authorities",
        RecordPurpose::Tlsa => "TLSA: DANE",
    }
}

/// The value a user pastes into a provider's form: a TXT record's text unquoted and
/// unsplit, every other type in presentation form.
pub fn paste_value(record: &DesiredRecord) -> String {
    record.record.data.value()
}

fn records_section(domain: &Domain, records: &[DesiredRecord]) -> Markup {
    let mut groups: BTreeMap<usize, Vec<&DesiredRecord>> = BTreeMap::new();
    for record in records {
        let order = RecordPurpose::ALL
            .iter()
            .position(|p| *p == record.purpose)
            .unwrap_or(usize::MAX);
        groups.entry(order).or_default().push(record);
    }
    html! {
        section #records {
            h2 { "Records" }
            p {
                (plural(records.len(), "record")) " this domain needs. "
                a #download-zone href=(href(domain, "/zone")) download { "Download the zone file" }
                " · "
                a #download-json href=(href(domain, "/json")) download { "Download as JSON" }
            }
            @for group in groups.values() {
                @let purpose = group[0].purpose;
                h3 #(format!("records-{}", purpose.name())) { (purpose_label(purpose)) }
                div.table-wrap tabindex="0" role="region" aria-label=(purpose_label(purpose)) {
                    table.records data-purpose=(purpose.name()) {
                        (layout::column_headers(&["Name", "Type", "TTL", "Value"]))
                        tbody {
                            @for record in group {
                                tr.record {
                                    td.owner { (copyable(record.record.name.as_str(), "name")) }
                                    td.type { (record.record.data.rtype().to_string()) }
                                    td.ttl { (record.record.ttl) }
                                    td.value { (copyable(&paste_value(record), "value")) }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn plan_section(session: &Session, domain: &Domain) -> Markup {
    html! {
        section #plan {
            h2 { "Publication" }
            @if is_automatic(domain) {
                div #plan-result data-src=(href(domain, "/plan")) {
                    p #plan-loading .muted {
                        "The plan asks the DNS server. "
                        a href=(href(domain, "/plan")) { "Show the plan" }
                    }
                }
                (publish_form(session, domain))
            } @else {
                p.muted { "Manual DNS management: mailzone publishes nothing; publish the records above yourself." }
            }
        }
    }
}

fn publish_form(session: &Session, domain: &Domain) -> Markup {
    let DnsManagement::Automatic {
        publish_records, ..
    } = &domain.dns_management
    else {
        return html! {};
    };
    html! {
        form #publish-form method="post" action=(href(domain, "/publish")) {
            (csrf_field(session))
            fieldset {
                legend { "Publish only (none ticked: all)" }
                @for purpose in publish_records {
                    @let id = format!("update-{}", purpose.name());
                    span.choice {
                        input type="checkbox" id=(id) name="updateRecords" value=(purpose.name());
                        label.inline for=(id) { (purpose.name()) }
                    }
                }
            }
            button #publish-now .primary type="submit" { "Publish now" }
        }
    }
}

/// GET `/ui/domains/<name>/plan`: the plan as its own page; the domain page loads its
/// `#plan-result` in place.
async fn plan_part(
    State(state): State<AppState>,
    session: Session,
    Named { loaded, domain }: Named,
) -> Response {
    let result = if is_automatic(&domain) {
        plan_report(&state, &loaded, &domain).await
    } else {
        Err(ApiError::invalid(format!(
            "domain {} is under manual DNS management: there is no DNS server to plan against",
            domain.name.as_str()
        )))
    };
    let section = html! {
        section #plan {
            (plan_result(&result))
            (publish_form(&session, &domain))
        }
    };
    let title = format!("Plan for {}", domain.name.as_str());
    part_page(&state, &session, &domain, &title, section).await
}

/// A part of the domain page shown as a page of its own: `title` as its heading, then
/// `section` and the way back to the domain.
async fn part_page(
    state: &AppState,
    session: &Session,
    domain: &Domain,
    title: &str,
    section: Markup,
) -> Response {
    let body = html! {
        h1 { (title) }
        (section)
        p { a href=(href(domain, "")) { "Back to " (domain.name.as_str()) } }
    };
    layout::signed_in_page(state, session, Nav::Domains, title, body).await
}

fn plan_result(result: &Result<mailzone_engine::ReconcileReport, ApiError>) -> Markup {
    let report = match result {
        Ok(report) => report,
        Err(e) => {
            return html! {
                div #plan-result {
                    p #plan-summary .error role="alert" { "The plan failed: " (e.message()) }
                }
            };
        }
    };
    let entries: Vec<(String, PlanEntry)> = report
        .zones
        .iter()
        .flat_map(|z| {
            z.entries()
                .into_iter()
                .map(|e| (z.zone.as_str().to_string(), e))
        })
        .collect();
    let (mut adds, mut updates, mut deletes) = (0, 0, 0);
    for (_, entry) in &entries {
        match entry {
            PlanEntry::Add(_) => adds += 1,
            PlanEntry::Replace { .. } => updates += 1,
            PlanEntry::Delete(..) => deletes += 1,
        }
    }
    let summary = if entries.is_empty() {
        "In sync".to_string()
    } else {
        format!("{adds} to add, {updates} to update, {deletes} to delete")
    };
    let record_line = |r: &mailzone_records::Record| {
        format!(
            "{} {} {} {}",
            r.name.to_absolute(),
            r.ttl,
            r.data.rtype(),
            mailzone_records::zonefile::rdata_presentation(&r.data)
        )
    };
    html! {
        div #plan-result {
            p #plan-summary .badge.(if entries.is_empty() { "ok" } else { "warning" }) { (summary) }
            @for zone in &report.zones {
                p.muted { "Zone " (zone.zone.as_str()) " on " (zone.dns_server) ", serial " (zone.serial) }
            }
            @if !entries.is_empty() {
                div.table-wrap tabindex="0" role="region" aria-label="Planned changes" {
                    table #plan-changes {
                        (layout::column_headers(&["Change", "Purpose", "Records"]))
                        tbody {
                            @for (_, entry) in &entries {
                                @match entry {
                                    PlanEntry::Add(d) => tr.change.add {
                                        td { "Add" }
                                        td { (d.purpose.name()) }
                                        td { ins { code { "+ " (record_line(&d.record)) } } }
                                    },
                                    PlanEntry::Replace { purpose, old, new } => tr.change.update {
                                        td { "Update" }
                                        td { (purpose.name()) }
                                        td {
                                            @for r in old { del { code { "- " (record_line(r)) } } br; }
                                            @for r in new { ins { code { "+ " (record_line(r)) } } br; }
                                        }
                                    },
                                    PlanEntry::Delete(purpose, r) => tr.change.delete {
                                        td { "Delete" }
                                        td { (purpose.map_or("", |p| p.name())) }
                                        td { del { code { "- " (record_line(r)) } } }
                                    },
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The publish form as posted: the record types to update (all when none).
#[derive(Deserialize, Default)]
pub struct PublishForm {
    #[serde(default, rename = "updateRecords")]
    update_records: Vec<String>,
}

/// POST `/ui/domains/<name>/publish`: schedules a `DnsManagement` task, as the API's
/// `POST /tasks` does, then shows the domain with the task's live status.
async fn publish(
    State(state): State<AppState>,
    Named { domain, .. }: Named,
    body: axum::body::Bytes,
) -> Response {
    // Repeated `updateRecords` fields: read as pairs, since a plain `Form` keeps one.
    let form = PublishForm {
        update_records: form_values(&body, "updateRecords"),
    };
    let DnsManagement::Automatic {
        publish_records, ..
    } = &domain.dns_management
    else {
        return layout::error_page(
            StatusCode::UNPROCESSABLE_ENTITY,
            &format!(
                "Domain {} is under manual DNS management: mailzone publishes nothing for it.",
                domain.name.as_str()
            ),
        );
    };
    let mut types = Vec::new();
    for raw in &form.update_records {
        match raw.parse::<RecordPurpose>() {
            Ok(t) if publish_records.contains(&t) => types.push(t.name().to_string()),
            _ => {
                return layout::error_page(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "A record type to publish is not one this domain publishes.",
                );
            }
        }
    }
    let now = clock::unix_now();
    let new = NewTask {
        update_records: types,
        ..TaskKind::DnsManagement.task(domain.name.as_str(), now)
    };
    match state.store.create_task(&new, now).await {
        Ok(task) => Redirect::to(&format!(
            "/ui/domains/{}?done=published&task={}",
            domain.name.as_str(),
            task.id
        ))
        .into_response(),
        Err(e) => layout::error_page(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    }
}

/// Every value of the urlencoded field `name` in a form body.
fn form_values(body: &[u8], name: &str) -> Vec<String> {
    form_urlencoded::parse(body)
        .filter(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
        .collect()
}

fn check_section(state: &AppState, session: &Session, domain: &Domain, now: i64) -> Markup {
    let last = state.last_check(domain.name.as_str());
    html! {
        section #check {
            h2 { "Check" }
            p #check-summary {
                (check_summary(last.as_ref()))
                @if let Some(last) = &last { " · checked " (layout::time(last.at_unix, now)) }
            }
            form.inline method="post" action=(href(domain, "/check")) {
                (csrf_field(session))
                button #check-now type="submit" { "Check now" }
            }
            @if let Some(last) = &last {
                @if last.findings.is_empty() {
                    p.ok { "Nothing to report." }
                } @else {
                    div.table-wrap tabindex="0" role="region" aria-label="Findings" {
                        table #findings {
                            (layout::column_headers(&["Severity", "Finding", "Seen", "Expected", "Fix"]))
                            tbody {
                                @for f in &last.findings {
                                    tr.finding data-code=(f.code) {
                                        td.severity { span class=(severity_class(f.severity)) { (severity_label(f.severity)) } }
                                        td.message {
                                            (f.message)
                                            br;
                                            span.muted { code { (f.code) } " · " (f.name) }
                                        }
                                        td.seen { @if let Some(v) = &f.seen { code { (v) } } }
                                        td.expected { @if let Some(v) = &f.expected { code { (v) } } }
                                        td.fix { @if let Some(v) = &f.fix { (copyable(v, "fix")) } }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn severity_label(severity: Severity) -> &'static str {
    match severity {
        Severity::Error => "Error",
        Severity::Warning => "Warning",
        Severity::Info => "Info",
    }
}

fn severity_class(severity: Severity) -> &'static str {
    match severity {
        Severity::Error => "badge error",
        Severity::Warning => "badge warning",
        Severity::Info => "badge",
    }
}

/// POST `/ui/domains/<name>/check`: the API's check of this domain (asking the servers
/// `serve.checkNameservers` names, as the scheduled check does), kept as its last check.
async fn check_now(State(state): State<AppState>, Named { loaded, domain }: Named) -> Response {
    let request = check_request(&state, &domain, state.check_nameservers(&loaded), true);
    let checked_at = clock::unix_now();
    match mailzone_engine::check(&loaded, &request).await {
        Ok(report) => {
            state.record_checks(&report, checked_at);
            Redirect::to(&href(&domain, "?done=checked")).into_response()
        }
        Err(e) => api_error_page(&ApiError::from(e)),
    }
}

fn records_request(state: &AppState, domain: &Domain) -> RecordsRequest {
    RecordsRequest {
        domains: vec![domain.name.as_str().to_string()],
        types: vec![],
        state_dir: state.state_dir.clone(),
        now_unix: clock::unix_now(),
        store: Some(state.store.clone()),
    }
}

async fn dkim_keys(
    state: &AppState,
    loaded: &LoadedConfig,
    domain: &Domain,
) -> Result<Vec<mailzone_engine::dkim::DkimKeyInfo>, String> {
    mailzone_engine::dkim::list(loaded, &records_request(state, domain))
        .await
        .map_err(|e| e.to_string())
}

fn dkim_section(
    session: &Session,
    domain: &Domain,
    keys: Result<Vec<mailzone_engine::dkim::DkimKeyInfo>, String>,
    now: i64,
) -> Markup {
    let automatic = matches!(domain.dkim_management, DkimManagement::Automatic { .. });
    html! {
        section #dkim {
            h2 { "DKIM keys" }
            @match &keys {
                Err(e) => p.error role="alert" { (e) },
                Ok(keys) if keys.is_empty() => p.muted { "No key yet: the first publication or records view makes one." },
                Ok(keys) => div.table-wrap tabindex="0" role="region" aria-label="DKIM keys" {
                    table #dkim-keys {
                        (layout::column_headers(&["Selector", "Algorithm", "Stage", "Source", "Created", "Next transition"]))
                        tbody {
                            @for k in keys {
                                tr.dkim-key data-selector=(k.selector) {
                                    th scope="row" { code { (k.selector) } }
                                    td { (k.algorithm.as_str()) }
                                    td.stage { (k.stage) }
                                    td { (k.source) }
                                    td { @if let Some(t) = k.created_at { (layout::time(t, now)) } @else { "-" } }
                                    td { @if let Some(t) = k.next_transition { (layout::time(t, now)) } @else { "-" } }
                                }
                            }
                        }
                    }
                },
            }
            @if automatic {
                div.actions {
                    form.inline method="post" action=(href(domain, "/dkim/generate")) {
                        (csrf_field(session))
                        button #dkim-generate type="submit" { "Generate a new key" }
                    }
                    form.inline method="post" action=(href(domain, "/dkim/rotate"))
                        data-confirm="Rotate the DKIM keys now? A new key is made, published and activated; the current one retires." {
                        (csrf_field(session))
                        button #dkim-rotate type="submit" { "Rotate now" }
                    }
                }
            } @else {
                p.muted { "Manual DKIM keys (from files): mailzone does not make or rotate them." }
            }
        }
    }
}

/// POST `/ui/domains/<name>/dkim/generate`: `mailzone dkim generate <name>`.
async fn dkim_generate(State(state): State<AppState>, Named { loaded, domain }: Named) -> Response {
    let request = records_request(&state, &domain);
    match mailzone_engine::dkim::generate(&loaded, &request, None).await {
        Ok(_) => Redirect::to(&href(&domain, "?done=dkim-generated")).into_response(),
        Err(e) => api_error_page(&ApiError::from(e)),
    }
}

/// POST `/ui/domains/<name>/dkim/rotate`: `mailzone dkim rotate <name> --now`.
async fn dkim_rotate(State(state): State<AppState>, Named { loaded, domain }: Named) -> Response {
    let request = records_request(&state, &domain);
    match mailzone_engine::dkim::rotate(&loaded, &request, true, false, &mailzone_engine::Silent)
        .await
    {
        Ok(reports) => match reports.iter().find_map(|r| r.on_key_change_failed.as_ref()) {
            Some(failure) => layout::error_page(StatusCode::BAD_GATEWAY, failure),
            None => Redirect::to(&href(&domain, "?done=dkim-rotated")).into_response(),
        },
        Err(e) => api_error_page(&ApiError::from(e)),
    }
}

const NO_TLSA: &str = "No [server.tls] certificate is configured: there are no TLSA records.";

/// Whether the config names a certificate, so that there are TLSA records to show.
fn has_tlsa(loaded: &LoadedConfig) -> bool {
    loaded.tlsa.is_some() && loaded.config.server.tls.is_some()
}

fn tlsa_section(loaded: &LoadedConfig, domain: &Domain) -> Markup {
    html! {
        section #tlsa {
            h2 { "TLSA (DANE)" }
            @if has_tlsa(loaded) {
                div #tlsa-result data-src=(href(domain, "/tlsa")) {
                    p.muted {
                        "The served digests are read from the authoritative servers. "
                        a href=(href(domain, "/tlsa")) { "Show the TLSA status" }
                    }
                }
            } @else {
                p.muted { (NO_TLSA) }
            }
        }
    }
}

/// GET `/ui/domains/<name>/tlsa`: `mailzone tlsa status <name>` as its own page.
async fn tlsa_part(
    State(state): State<AppState>,
    session: Session,
    Named { loaded, domain }: Named,
) -> Response {
    // Without a certificate there is nothing to show: said plainly, not as an error.
    let status = if has_tlsa(&loaded) {
        let request = records_request(&state, &domain);
        Some(mailzone_engine::tlsa::status(&loaded, &request, TLSA_TIMEOUT).await)
    } else {
        None
    };
    let now = clock::unix_now();
    let yes = |b: bool| if b { "yes" } else { "no" };
    let section = html! {
        section #tlsa {
            div #tlsa-result {
                @match &status {
                    None => p.muted { (NO_TLSA) },
                    Some(Err(e)) => p.error role="alert" { (e.to_string()) },
                    Some(Ok(s)) => {
                        p { "Host " code { (s.host) } " · certificate " (s.certificate_subject) }
                        @if !s.managed {
                            p.muted { "Rollover state not kept: mailzone does not publish this domain's TLSA records." }
                        }
                        div.table-wrap tabindex="0" role="region" aria-label="TLSA digests" {
                            table #tlsa-digests {
                                (layout::column_headers(&["Record", "Role", "In certificate", "Next key", "Withdrawn at", "Served by"]))
                                tbody {
                                    @for d in &s.digests {
                                        tr {
                                            td { code { (d.usage) " 1 1 " (d.digest) } @if !d.planned { " (not planned)" } }
                                            td { (d.role) }
                                            td { (yes(d.in_certificate)) }
                                            td { (yes(d.next_key)) }
                                            td { @if let Some(t) = d.retire_at { (layout::time(t, now)) } @else { "-" } }
                                            td {
                                                @if s.servers.is_empty() { "(no server to ask)" }
                                                @else { (d.served_by.len()) " of " (s.servers.len()) }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                        @for e in &s.errors {
                            p.error role="alert" { (e) }
                        }
                    },
                }
            }
        }
    };
    let title = format!("TLSA status of {}", domain.name.as_str());
    part_page(&state, &session, &domain, &title, section).await
}

/// GET `/ui/domains/<name>/zone`: the zone file (`dnsZoneFile`), as `mailzone records`
/// prints it, as a download.
async fn zone_file(State(state): State<AppState>, Named { loaded, domain }: Named) -> Response {
    match planned_records(&state, &loaded, &domain, vec![]).await {
        Ok(records) => {
            let text = mailzone_records::zonefile::render(
                &records.domain.name,
                &records.domain.zone,
                &records.records,
            );
            attachment(
                "text/plain; charset=utf-8",
                &format!("{}.zone", domain.name.as_str()),
                text,
            )
        }
        Err(e) => api_error_page(&e),
    }
}

/// GET `/ui/domains/<name>/json`: the records as `mailzone records --format json`.
async fn records_json(State(state): State<AppState>, Named { loaded, domain }: Named) -> Response {
    match planned_records(&state, &loaded, &domain, vec![]).await {
        Ok(records) => {
            let json = mailzone_records::json::records(&records.domain.name, &records.records);
            let text = serde_json::to_string_pretty(&json).unwrap_or_default();
            attachment(
                "application/json",
                &format!("{}.records.json", domain.name.as_str()),
                text,
            )
        }
        Err(e) => api_error_page(&e),
    }
}

fn attachment(content_type: &'static str, filename: &str, body: String) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type.to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{filename}\""),
            ),
        ],
        body,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_form_fields_are_all_read() {
        assert_eq!(
            form_values(
                b"csrf=x&updateRecords=mx&updateRecords=spf",
                "updateRecords"
            ),
            ["mx", "spf"]
        );
    }

    #[test]
    fn a_long_txt_value_is_copied_unquoted_and_unsplit() {
        let long = "v=DKIM1; k=rsa; p=".to_string() + &"A".repeat(400);
        let record = DesiredRecord {
            purpose: RecordPurpose::Dkim,
            record: mailzone_records::Record {
                name: mailzone_records::Name::owner("s._domainkey.example.org").unwrap(),
                ttl: 3600,
                data: mailzone_records::RData::Txt(long.clone().into_bytes()),
            },
        };
        assert_eq!(paste_value(&record), long);
    }

    #[test]
    fn unknown_notice_codes_show_nothing() {
        assert!(notice("<script>").is_none());
        assert!(notice("published").is_some());
    }
}
