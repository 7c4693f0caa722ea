//! The DNS servers pages: the list, one server's page (its settings as the API shows them,
//! the domains using it, "Test connection"), and the forms that create, edit and delete
//! the servers defined through the API. Saving goes through the API's own use cases
//! (`api::dns_servers::{add,replace,remove}_dns_server`), so the UI can do nothing the API
//! refuses: no `zonefile` server, nothing naming a file, an environment variable or a
//! command. Secrets are write-only: no page holds one, not even masked.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use mailzone_engine::EngineError;
use mailzone_engine::connect::{ConnectionTest, default_zone, test_dns_server};
use mailzone_records::config::{DNS_UPDATE_PROVIDERS, NATIVE_PROVIDERS, ProviderKind};
use mailzone_records::{DnsProvider, DnsServer, Name, Setting};
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::Value;

use super::layout::{self, Nav, error_page};
use super::session::{Session, csrf_field};
use crate::api::ApiError;
use crate::api::dns_servers::{
    add_dns_server, dns_server_json, dns_server_name, domains_using, remove_dns_server,
    replace_dns_server, stored_dns_server,
};
use crate::state::AppState;

/// The routes of this page group, relative to `/ui`, behind the session check.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/dns-servers", get(list))
        .route("/dns-servers/new", get(new_form).post(create))
        .route("/dns-servers/{name}", get(show))
        .route("/dns-servers/{name}/edit", get(edit_form).post(save))
        .route("/dns-servers/{name}/delete", post(delete))
        .route("/dns-servers/{name}/test", post(test_connection))
}

/// The keys every kind takes, shown under "More settings": (key, help).
const COMMON_SETTINGS: [(&str, &str); 8] = [
    (
        "ttl",
        "TTL of the records published through this server, in seconds",
    ),
    (
        "timeout",
        "how long one request may take, e.g. 10s (default)",
    ),
    (
        "propagationDelay",
        "wait this long after a change before polling, e.g. 0s (default)",
    ),
    (
        "pollingInterval",
        "how often the authoritative servers are polled, e.g. 2s (default)",
    ),
    (
        "propagationTimeout",
        "give up waiting for propagation after, e.g. 120s (default)",
    ),
    (
        "authoritativeServers",
        "IP or IP:PORT of each server to poll, separated by spaces or commas (default: the zone's NS)",
    ),
    (
        "maxRequestsPerSecond",
        "pace requests to this server (default: no limit)",
    ),
    (
        "maxConcurrentZones",
        "zones published at once through this server (1 to 256)",
    ),
];

/// Keys whose value is a whole number in the config.
const INTEGER_KEYS: [&str; 3] = ["port", "ttl", "maxConcurrentZones"];

/// The choices of the settings that take one of a few values.
fn choices(kind: &str, key: &str) -> Option<&'static [&'static str]> {
    match (kind, key) {
        ("rfc2136", "protocol") => Some(&["tcp", "udp"]),
        ("rfc2136", "algorithm") => Some(&["hmac-sha256", "hmac-sha384", "hmac-sha512"]),
        _ => None,
    }
}

/// The kinds a server can be created with here: every kind but `zonefile` (files and
/// commands belong to the config file only).
fn creatable_kind(kind: &str) -> Option<&'static ProviderKind> {
    NATIVE_PROVIDERS
        .iter()
        .chain(DNS_UPDATE_PROVIDERS)
        .find(|p| p.kind == kind && p.kind != "zonefile")
}

#[derive(Deserialize, Default)]
pub struct Notice {
    done: Option<String>,
}

/// The fixed sentence of a notice code (never text from the query).
fn notice_text(code: Option<&str>) -> Option<&'static str> {
    match code? {
        "created" => Some("The DNS server was created."),
        "saved" => Some("The DNS server was saved."),
        "deleted" => Some("The DNS server was deleted."),
        _ => None,
    }
}

async fn page(state: &AppState, session: &Session, title: &str, body: Markup) -> Response {
    layout::signed_in_page(state, session, Nav::DnsServers, title, body).await
}

/// `GET /ui/dns-servers`: every DNS server, from the config file and the API.
async fn list(
    State(state): State<AppState>,
    session: Session,
    Query(query): Query<Notice>,
) -> Response {
    let loaded = state.loaded();
    let body = html! {
        h1 { "DNS servers" }
        (layout::notice(notice_text(query.done.as_deref())))
        p.actions { a.button.primary #add-dns-server href="/ui/dns-servers/new" { "Add a DNS server" } }
        @if loaded.config.dns_servers.is_empty() {
            p #no-dns-servers { "No DNS server yet. Add one to publish the records of your domains." }
        } @else {
            div.table-wrap tabindex="0" role="region" aria-label="DNS servers" {
                table #dns-servers {
                    (layout::column_headers(&["Name", "Kind", "Endpoint", "Source", "Domains using it"]))
                    tbody {
                        @for server in &loaded.config.dns_servers {
                            @let users = domains_using(&loaded.config, &server.name);
                            tr data-dns-server=(server.name) {
                                td.name { a href=(server_href(&server.name)) { (server.name) } }
                                td.kind { (kind_label(server.provider.kind())) }
                                td.endpoint { (endpoint_text(server)) }
                                td.source {
                                    @if loaded.api_dns_servers.contains(&server.name) { "API" } @else { "Config file" }
                                }
                                td.domains { (domain_links(&users)) }
                            }
                        }
                    }
                }
            }
        }
    };
    page(&state, &session, "DNS servers", body).await
}

fn server_href(name: &str) -> String {
    format!("/ui/dns-servers/{name}")
}

fn domain_links(domains: &[String]) -> Markup {
    html! {
        @if domains.is_empty() {
            span.muted { "None" }
        } @else {
            @for (i, domain) in domains.iter().enumerate() {
                @if i > 0 { ", " }
                a href=(format!("/ui/domains/{domain}")) { (domain) }
            }
        }
    }
}

/// "RFC 2136 (rfc2136)": the kind for people, with its config name.
fn kind_label(kind: &str) -> String {
    match mailzone_records::config::provider_kind(kind) {
        Some(known) if kind == "rfc2136" => format!("RFC 2136 ({})", known.kind),
        Some(known) if kind == "powerdns" => format!("PowerDNS ({})", known.kind),
        Some(known) => format!("{} ({})", known.title, known.kind),
        None => kind.to_string(),
    }
}

/// Where the server is reached: host and port, the API's URL, or the provider's address
/// (its name when it has no address setting). Never a secret.
fn endpoint_text(server: &DnsServer) -> String {
    match &server.provider {
        DnsProvider::Rfc2136 {
            host,
            port,
            key_name,
            ..
        } => match key_name {
            Some(key) => format!("{host} port {port}, TSIG key {key}"),
            None => format!("{host} port {port}, no TSIG key"),
        },
        DnsProvider::PowerDns { url, .. } => url.clone(),
        DnsProvider::ZoneFile { path, .. } => path.clone(),
        DnsProvider::DnsUpdate { kind, settings } => {
            let address = ["endpoint", "baseUrl", "serverUrl", "host", "url"]
                .iter()
                .find_map(|key| match settings.get(*key) {
                    Some(Setting::Plain(value)) => Some(value.clone()),
                    _ => None,
                });
            address.unwrap_or_else(|| {
                mailzone_records::config::provider_kind(kind)
                    .map_or_else(|| kind.clone(), |k| k.title.to_string())
            })
        }
    }
}

/// What `show` adds under the test form, and what it says above the page.
#[derive(Default)]
struct ShowExtras {
    /// The zone typed in the test form.
    zone: Option<String>,
    /// The test's outcome.
    outcome: Option<Result<ConnectionTest, String>>,
    /// An action refused (a delete while domains use the server).
    problem: Option<String>,
    notice: Option<String>,
}

/// `GET /ui/dns-servers/<name>`: the server's settings, the domains using it, Test
/// connection, and (API-defined) Edit and Delete.
async fn show(
    State(state): State<AppState>,
    session: Session,
    Path(name): Path<String>,
    Query(query): Query<Notice>,
) -> Response {
    let extras = ShowExtras {
        notice: query.done,
        ..ShowExtras::default()
    };
    show_page(&state, &session, &name, extras, StatusCode::OK).await
}

async fn show_page(
    state: &AppState,
    session: &Session,
    name: &str,
    extras: ShowExtras,
    status: StatusCode,
) -> Response {
    let loaded = state.loaded();
    let Some(server) = loaded.config.dns_server(name) else {
        return error_page(
            StatusCode::NOT_FOUND,
            &format!("There is no DNS server named {name}."),
        );
    };
    let from_api = loaded.api_dns_servers.contains(name);
    let users = domains_using(&loaded.config, name);
    // The API's view: the settings without any secret (which ones are set, at most).
    let shown = dns_server_json(server, &loaded);
    let zone = extras.zone.clone().unwrap_or_else(|| {
        default_zone(&loaded.config, name)
            .map(|z| z.as_str().trim_end_matches('.').to_string())
            .unwrap_or_default()
    });
    let base = server_href(name);
    let body = html! {
        p.muted { a href="/ui/dns-servers" { "DNS servers" } " ›" }
        h1 { "DNS server " (name) }
        (layout::notice(notice_text(extras.notice.as_deref())))
        @if let Some(problem) = &extras.problem {
            p.alert.error #action-error role="alert" { (problem) }
        }
        p #dns-server-kind-line {
            "Kind: " strong { (kind_label(server.provider.kind())) }
            " · Endpoint: " span.endpoint { (endpoint_text(server)) }
        }
        section #source {
            @if from_api {
                p { "Defined through the API or this web UI." }
                div.actions {
                    a.button #edit-dns-server href=(format!("{base}/edit")) { "Edit" }
                    form.inline method="post" action=(format!("{base}/delete"))
                        data-confirm=(format!("Delete the DNS server {name}?")) {
                        (csrf_field(session))
                        button.danger #delete-dns-server type="submit" { "Delete" }
                    }
                }
            } @else {
                p #read-only {
                    "Defined in the config file " code { (loaded.path.display().to_string()) }
                    ": read-only here. Change it in that file and reload the service (SIGHUP)."
                }
            }
        }
        section #settings {
            h2 { "Settings" }
            div.table-wrap tabindex="0" role="region" aria-label="Settings" {
                table #dns-server-settings {
                    tbody {
                        @if let Value::Object(fields) = &shown {
                            @for (key, value) in fields {
                                @if key != "name" && !value.is_null() {
                                    tr { th scope="row" { (key) } td { (value_text(value)) } }
                                }
                            }
                        }
                    }
                }
            }
            p.hint { "Secrets (TSIG keys, API keys and tokens) are write-only: they are never shown." }
        }
        section #users {
            h2 { "Domains using it" }
            p { (domain_links(&users)) }
        }
        section #test-connection-section {
            h2 { "Test connection" }
            p.hint { "Reads the zone's SOA serial and the zone with this server's settings, as a publication would. Nothing is changed." }
            form #test-connection-form method="post" action=(format!("{base}/test")) {
                (csrf_field(session))
                label for="test-zone" { "Zone" }
                input #test-zone type="text" name="zone" value=(zone) required
                    autocomplete="off" spellcheck="false" aria-describedby="test-zone-hint";
                p.hint #test-zone-hint { "Default: the zone of a domain using this server." }
                div.actions { button.primary #test-connection type="submit" { "Test connection" } }
            }
            @if let Some(outcome) = &extras.outcome {
                (connection_result(outcome))
            }
        }
    };
    let mut response = page(state, session, &format!("DNS server {name}"), body).await;
    *response.status_mut() = status;
    response
}

/// A JSON value for people: text as is, lists joined, the rest as JSON.
fn value_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Array(items) => items.iter().map(value_text).collect::<Vec<_>>().join(", "),
        other => other.to_string(),
    }
}

/// The test's outcome: `ok` with the serial, endpoint and time, or `error` with what
/// failed as the engine worded it (never a secret).
fn connection_result(outcome: &Result<ConnectionTest, String>) -> Markup {
    match outcome {
        Ok(test) => html! {
            div.alert.ok #connection-result role="status" {
                strong { "Connected." }
                " Zone " code { (test.zone.as_str()) } ": "
                @match test.serial {
                    Some(serial) => { "SOA serial " span.serial { (serial) } }
                    None => { "read (this provider gives no serial)" }
                }
                ", from " span.endpoint { (test.endpoint) }
                ", read by " (test.read_by)
                ", in " span.elapsed { (test.elapsed.as_millis()) " ms" } "."
                @if test.authenticated { " The credentials were accepted." }
            }
        },
        Err(message) => html! {
            div.alert.error #connection-result role="alert" {
                strong { "Failed:" } " " span.reason { (message) }
            }
        },
    }
}

#[derive(Deserialize)]
pub struct TestForm {
    #[serde(default)]
    zone: String,
}

/// `POST /ui/dns-servers/<name>/test`: the engine's connection test, its outcome shown on
/// the server's page (a read: nothing is stored).
async fn test_connection(
    State(state): State<AppState>,
    session: Session,
    Path(name): Path<String>,
    Form(form): Form<TestForm>,
) -> Response {
    let loaded = state.loaded();
    if loaded.config.dns_server(&name).is_none() {
        return error_page(
            StatusCode::NOT_FOUND,
            &format!("There is no DNS server named {name}."),
        );
    }
    let typed = form.zone.trim().to_string();
    let outcome = match Name::owner(&typed) {
        _ if typed.is_empty() => Err("Name the zone to test.".to_string()),
        Err(e) => Err(format!("`{typed}` is not a domain name: {e}")),
        Ok(zone) => test_dns_server(&loaded, &name, Some(&zone), &state.state_dir)
            .await
            .map_err(|e: EngineError| e.to_string()),
    };
    tracing::info!(dns_server = %name, ok = outcome.is_ok(), "connection test from the web UI");
    let extras = ShowExtras {
        zone: Some(typed),
        outcome: Some(outcome),
        ..ShowExtras::default()
    };
    show_page(&state, &session, &name, extras, StatusCode::OK).await
}

/// `POST /ui/dns-servers/<name>/delete`: refused, with the reason on the server's page,
/// while domains use it.
async fn delete(
    State(state): State<AppState>,
    session: Session,
    Path(name): Path<String>,
) -> Response {
    match remove_dns_server(&state, &name).await {
        Ok(()) => Redirect::to("/ui/dns-servers?done=deleted").into_response(),
        Err(e) => {
            let extras = ShowExtras {
                problem: Some(e.message().to_string()),
                ..ShowExtras::default()
            };
            show_page(&state, &session, &name, extras, e.status()).await
        }
    }
}

#[derive(Deserialize, Default)]
pub struct NewQuery {
    kind: Option<String>,
}

/// `GET /ui/dns-servers/new`: the kind first (a GET form, so it works without scripts),
/// then `?kind=<kind>`: that kind's fields.
async fn new_form(
    State(state): State<AppState>,
    session: Session,
    Query(query): Query<NewQuery>,
) -> Response {
    let kind = query.kind.as_deref().map(str::trim).unwrap_or("");
    if kind.is_empty() {
        return kind_picker(&state, &session, None).await;
    }
    let Some(known) = creatable_kind(kind) else {
        return kind_picker(&state, &session, Some(kind_problem(kind))).await;
    };
    let form = ServerForm {
        kind: known,
        name: None,
        values: HashMap::new(),
        stored_secrets: false,
        problem: None,
    };
    page(&state, &session, "Add a DNS server", form.render(&session)).await
}

fn kind_problem(kind: &str) -> String {
    if kind == "zonefile" {
        "Zone-file DNS servers write files and run a reload command: define them in the config file.".to_string()
    } else {
        format!("`{kind}` is not a DNS server kind: choose one from the list.")
    }
}

async fn kind_picker(state: &AppState, session: &Session, problem: Option<String>) -> Response {
    let body = html! {
        p.muted { a href="/ui/dns-servers" { "DNS servers" } " ›" }
        h1 { "Add a DNS server" }
        @if let Some(problem) = &problem {
            p.alert.error #form-error role="alert" { (problem) }
        }
        form #dns-server-kind method="get" action="/ui/dns-servers/new" {
            label for="kind" { "Kind" }
            select #kind name="kind" required aria-describedby="kind-hint" {
                optgroup label="Published by mailzone itself" {
                    @for p in NATIVE_PROVIDERS.iter().filter(|p| p.kind != "zonefile") {
                        option value=(p.kind) { (p.title) " (" (p.kind) ")" }
                    }
                }
                optgroup label="HTTP DNS providers" {
                    @for p in DNS_UPDATE_PROVIDERS {
                        option value=(p.kind) { (p.title) " (" (p.kind) ")" }
                    }
                }
            }
            p.hint #kind-hint { "Zone-file servers are defined in the config file only." }
            div.actions { button.primary #choose-kind type="submit" { "Continue" } }
        }
    };
    let status = if problem.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    let mut response = page(state, session, "Add a DNS server", body).await;
    *response.status_mut() = status;
    response
}

/// The create or edit form of one kind.
struct ServerForm {
    kind: &'static ProviderKind,
    /// `Some` when editing that server (its name is fixed).
    name: Option<String>,
    /// The values to show in the non-secret fields.
    values: HashMap<String, String>,
    /// Editing a server: an empty secret field keeps the stored value.
    stored_secrets: bool,
    problem: Option<String>,
}

impl ServerForm {
    fn render(&self, session: &Session) -> Markup {
        let editing = self.name.is_some();
        let action = match &self.name {
            Some(name) => format!("{}/edit", server_href(name)),
            None => "/ui/dns-servers/new".to_string(),
        };
        let title = match &self.name {
            Some(name) => format!("Edit DNS server {name}"),
            None => "Add a DNS server".to_string(),
        };
        let value = |key: &str| self.values.get(key).cloned().unwrap_or_default();
        html! {
            p.muted { a href="/ui/dns-servers" { "DNS servers" } " ›" }
            h1 { (title) }
            @if let Some(problem) = &self.problem {
                p.alert.error #form-error role="alert" { (problem) }
            }
            p { "Kind: " strong { (self.kind.title) } " (" code { (self.kind.kind) } ")"
                @if !editing { " · " a href="/ui/dns-servers/new" { "choose another kind" } } }
            form #dns-server-form method="post" action=(action) {
                (csrf_field(session))
                input type="hidden" name="kind" value=(self.kind.kind);
                @if !editing {
                    label for="f-name" { "Name" }
                    input #f-name type="text" name="name" value=(value("name")) required
                        pattern="[A-Za-z0-9_-]{1,63}" autocomplete="off" spellcheck="false"
                        aria-describedby="f-name-hint";
                    p.hint #f-name-hint { "How domains refer to it (dnsServer): 1 to 63 letters, digits, - and _." }
                }
                @for setting in self.kind.settings {
                    (self.field(setting.key, setting.help, setting.secret, setting.required, &value(setting.key)))
                }
                details #more-settings open[self.common_given()] {
                    summary { "More settings" }
                    @for (key, help) in COMMON_SETTINGS {
                        (self.field(key, help, false, false, &value(key)))
                    }
                }
                div.actions { button.primary #save-dns-server type="submit" { "Save" } }
            }
        }
    }

    /// Whether a common setting has a value (then "More settings" starts open).
    fn common_given(&self) -> bool {
        COMMON_SETTINGS
            .iter()
            .any(|(key, _)| self.values.get(*key).is_some_and(|v| !v.is_empty()))
    }

    /// One labelled input named like its config key. A secret input is always empty.
    fn field(&self, key: &str, help: &str, secret: bool, required: bool, value: &str) -> Markup {
        let id = format!("f-{key}");
        let hint_id = format!("{id}-hint");
        let secret_hint = if self.stored_secrets {
            "Write-only, never shown. Leave empty to keep the stored value."
        } else {
            "Write-only: it is stored sealed and never shown again."
        };
        // On edit, an empty secret keeps the stored one, so it is not required there.
        let required_input = required && !(secret && self.stored_secrets);
        html! {
            label for=(id) {
                (key)
                @if required { " " span.muted { "(required)" } }
            }
            @if secret {
                @if key.ends_with("Pem") {
                    textarea id=(id) name=(key) required[required_input] autocomplete="off"
                        spellcheck="false" aria-describedby=(hint_id) {}
                } @else {
                    input id=(id) type="password" name=(key) value="" required[required_input]
                        autocomplete="new-password" spellcheck="false" aria-describedby=(hint_id);
                }
                p.hint id=(hint_id) { (help) ". " (secret_hint) }
            } @else if let Some(options) = choices(self.kind.kind, key) {
                select id=(id) name=(key) aria-describedby=(hint_id) {
                    option value="" selected[value.is_empty()] { "Default" }
                    @for option in options {
                        option value=(option) selected[value == *option] { (option) }
                    }
                }
                p.hint id=(hint_id) { (help) }
            } @else {
                input id=(id) type="text" name=(key) value=(value) required[required]
                    inputmode=[INTEGER_KEYS.contains(&key).then_some("numeric")]
                    autocomplete="off" spellcheck="false" aria-describedby=(hint_id);
                p.hint id=(hint_id) { (help) }
            }
        }
    }
}

/// The definition (the config table as JSON) a submitted form describes: the kind's
/// settings and the common keys only, each typed as the config file types it; empty
/// fields left out (an empty secret on edit then keeps the stored one).
fn definition_from_form(
    kind: &ProviderKind,
    form: &HashMap<String, String>,
) -> Result<serde_json::Map<String, Value>, String> {
    let mut out = serde_json::Map::new();
    out.insert("kind".into(), Value::String(kind.kind.to_string()));
    let keys = kind
        .settings
        .iter()
        .map(|s| (s.key, s.secret))
        .chain(COMMON_SETTINGS.iter().map(|(key, _)| (*key, false)));
    for (key, secret) in keys {
        let Some(raw) = form.get(key) else { continue };
        let text = raw.trim();
        if text.is_empty() {
            continue;
        }
        let value = if secret {
            Value::String(text.to_string())
        } else if INTEGER_KEYS.contains(&key) {
            let n: u64 = text
                .parse()
                .map_err(|_| format!("{key}: a whole number is needed, not `{text}`"))?;
            Value::from(n)
        } else if key == "maxRequestsPerSecond" {
            let n: f64 = text
                .parse()
                .map_err(|_| format!("{key}: a number is needed, not `{text}`"))?;
            Value::from(n)
        } else if key == "authoritativeServers" {
            Value::Array(
                text.split(|c: char| c == ',' || c.is_whitespace())
                    .filter(|s| !s.is_empty())
                    .map(|s| Value::String(s.to_string()))
                    .collect(),
            )
        } else {
            Value::String(text.to_string())
        };
        out.insert(key.to_string(), value);
    }
    Ok(out)
}

/// The non-secret values of a submitted form, to show again with an error (secrets are
/// never shown back).
fn kept_values(kind: &ProviderKind, form: &HashMap<String, String>) -> HashMap<String, String> {
    form.iter()
        .filter(|(key, _)| !kind.setting(key).is_some_and(|s| s.secret) && *key != "csrf")
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// The non-secret values of a stored definition, for the edit form.
fn stored_values(kind: &ProviderKind, definition: &Value) -> HashMap<String, String> {
    let Value::Object(fields) = definition else {
        return HashMap::new();
    };
    fields
        .iter()
        .filter(|(key, _)| {
            let secret = kind.setting(key).is_some_and(|s| s.secret) || *key == "key";
            !secret && *key != "kind"
        })
        .map(|(k, v)| (k.clone(), value_text(v)))
        .collect()
}

/// `POST /ui/dns-servers/new`: creates the server through the API's use case; errors are
/// shown above the form with the other values kept.
async fn create(
    State(state): State<AppState>,
    session: Session,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let kind = form.get("kind").map(|k| k.trim()).unwrap_or("");
    let Some(known) = creatable_kind(kind) else {
        return kind_picker(&state, &session, Some(kind_problem(kind))).await;
    };
    let name = form.get("name").map(|n| n.trim()).unwrap_or("");
    let outcome = async {
        let name = dns_server_name(name)?;
        let definition = definition_from_form(known, &form).map_err(ApiError::invalid)?;
        add_dns_server(&state, &name, definition).await?;
        Ok::<_, ApiError>(name)
    }
    .await;
    match outcome {
        Ok(name) => Redirect::to(&format!("{}?done=created", server_href(&name))).into_response(),
        Err(e) => {
            let form = ServerForm {
                kind: known,
                name: None,
                values: kept_values(known, &form),
                stored_secrets: false,
                problem: Some(e.message().to_string()),
            };
            let mut response =
                page(&state, &session, "Add a DNS server", form.render(&session)).await;
            *response.status_mut() = e.status();
            response
        }
    }
}

/// The kind of an API-defined server, and its stored definition; an error page for a
/// server that is missing or defined in the config file.
async fn editable(
    state: &AppState,
    name: &str,
) -> Result<(&'static ProviderKind, Value), Response> {
    let loaded = state.loaded();
    let Some(server) = loaded.config.dns_server(name) else {
        return Err(error_page(
            StatusCode::NOT_FOUND,
            &format!("There is no DNS server named {name}."),
        ));
    };
    if !loaded.api_dns_servers.contains(name) {
        return Err(error_page(
            StatusCode::CONFLICT,
            &format!(
                "DNS server {name} is defined in the config file {}: change it there and reload the service (SIGHUP).",
                loaded.path.display()
            ),
        ));
    }
    let kind = creatable_kind(server.provider.kind())
        .ok_or_else(|| error_page(StatusCode::CONFLICT, &kind_problem(server.provider.kind())))?;
    let stored = stored_dns_server(state, name)
        .await
        .map_err(|e| error_page(e.status(), e.message()))?
        .unwrap_or(Value::Null);
    Ok((kind, stored))
}

/// `GET /ui/dns-servers/<name>/edit`: the form with the stored values, secrets empty.
async fn edit_form(
    State(state): State<AppState>,
    session: Session,
    Path(name): Path<String>,
) -> Response {
    let (kind, stored) = match editable(&state, &name).await {
        Ok(found) => found,
        Err(page) => return page,
    };
    let form = ServerForm {
        kind,
        values: stored_values(kind, &stored),
        name: Some(name.clone()),
        stored_secrets: true,
        problem: None,
    };
    let title = format!("Edit DNS server {name}");
    page(&state, &session, &title, form.render(&session)).await
}

/// `POST /ui/dns-servers/<name>/edit`: replaces the definition through the API's use
/// case; an empty secret field keeps the stored secret.
async fn save(
    State(state): State<AppState>,
    session: Session,
    Path(name): Path<String>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let (kind, _) = match editable(&state, &name).await {
        Ok(found) => found,
        Err(page) => return page,
    };
    let outcome = async {
        let definition = definition_from_form(kind, &form).map_err(ApiError::invalid)?;
        replace_dns_server(&state, &name, definition, true).await
    }
    .await;
    match outcome {
        Ok(_) => Redirect::to(&format!("{}?done=saved", server_href(&name))).into_response(),
        Err(e) => {
            let form = ServerForm {
                kind,
                values: kept_values(kind, &form),
                name: Some(name.clone()),
                stored_secrets: true,
                problem: Some(e.message().to_string()),
            };
            let title = format!("Edit DNS server {name}");
            let mut response = page(&state, &session, &title, form.render(&session)).await;
            *response.status_mut() = e.status();
            response
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rfc2136() -> &'static ProviderKind {
        creatable_kind("rfc2136").unwrap()
    }

    #[test]
    fn zonefile_cannot_be_created_here() {
        assert!(creatable_kind("zonefile").is_none());
        assert!(creatable_kind("powerdns").is_some());
        assert!(creatable_kind("cloudflare").is_some());
    }

    #[test]
    fn a_form_becomes_the_config_table_with_its_types() {
        let form: HashMap<String, String> = [
            ("kind", "rfc2136"),
            ("host", " 127.0.0.1 "),
            ("port", "5353"),
            ("keyName", "update-key"),
            ("key", ""),
            ("authoritativeServers", "192.0.2.1:53, 192.0.2.2"),
            ("keyFile", "/etc/shadow"),
            ("csrf", "x"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let definition = definition_from_form(rfc2136(), &form).unwrap();
        assert_eq!(
            Value::Object(definition),
            serde_json::json!({
                "kind": "rfc2136",
                "host": "127.0.0.1",
                "port": 5353,
                "keyName": "update-key",
                "authoritativeServers": ["192.0.2.1:53", "192.0.2.2"],
            }),
            "an empty secret is left out, and no key outside the kind's is taken"
        );
        let bad: HashMap<String, String> = [("port".to_string(), "fifty".to_string())].into();
        assert!(
            definition_from_form(rfc2136(), &bad)
                .unwrap_err()
                .contains("port")
        );
    }

    #[test]
    fn secrets_are_never_kept_for_display() {
        let form: HashMap<String, String> = [
            ("host".to_string(), "h".to_string()),
            ("key".to_string(), "c2VjcmV0".to_string()),
        ]
        .into();
        let kept = kept_values(rfc2136(), &form);
        assert_eq!(kept.get("host").map(String::as_str), Some("h"));
        assert!(!kept.contains_key("key"));
        let stored = serde_json::json!({"kind": "rfc2136", "host": "h", "key": "c2VjcmV0"});
        let values = stored_values(rfc2136(), &stored);
        assert!(!values.values().any(|v| v.contains("c2VjcmV0")));
    }

    #[test]
    fn a_secret_input_is_rendered_empty() {
        let form = ServerForm {
            kind: rfc2136(),
            name: Some("primary".into()),
            values: [("key".to_string(), "c2VjcmV0".to_string())].into(),
            stored_secrets: true,
            problem: None,
        };
        let session = Session {
            subject: "admin".into(),
            label: "admin".into(),
            csrf: "t".into(),
        };
        let html = form.render(&session).into_string();
        assert!(!html.contains("c2VjcmV0"), "{html}");
        assert!(html.contains("Leave empty to keep the stored value"));
    }
}
