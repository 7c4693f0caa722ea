//! `/api/v1`: JSON with the camelCase names of the config file (Stalwart's names), errors as
//! `{"error": {"code", "message"}}` with a 4xx status for anything the caller can fix.
//! Objects from the config file are read-only here (409 naming the file).

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, JsonRejection};
use axum::extract::{DefaultBodyLimit, FromRequest, Path, Query, Request, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router, middleware};
use mailzone_engine::error::FailureClass;
use mailzone_engine::tasks::{ACME_RENEWAL, DKIM_ROTATION, DNS_MANAGEMENT, TLSA_SYNC, TaskKind};
use mailzone_engine::{CheckRequest, EngineError, RecordsRequest, clock};
use mailzone_records::{DkimManagement, DnsManagement, DnsProvider, DnsRecordType, Domain, Name};
use mailzone_store::{NewTask, Task, TaskStatus};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::state::AppState;

/// Request bodies larger than this are refused with 413 (the biggest legitimate body, a
/// task, is well under 1 KiB).
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// The API routes (behind the token check) plus `/healthz` and `/metrics`.
pub fn router(state: AppState) -> Router {
    let api = Router::new()
        .route("/openapi.json", get(crate::openapi::document))
        .route("/domains", get(list_domains).post(create_domain))
        .route(
            "/domains/{name}",
            get(get_domain)
                .put(write_domain)
                .patch(write_domain)
                .delete(write_domain),
        )
        .route("/domains/{name}/records", get(domain_records))
        .route("/domains/{name}/plan", post(plan_domain))
        .route("/domains/{name}/check", post(check_domain))
        .route("/dnsServers", get(list_dns_servers).post(create_dns_server))
        .route(
            "/dnsServers/{name}",
            get(get_dns_server)
                .put(put_dns_server)
                .patch(patch_dns_server)
                .delete(delete_dns_server),
        )
        .route("/dkimSignatures", get(list_dkim_signatures))
        .route("/tasks", get(list_tasks).post(create_task))
        .route("/tasks/{id}", get(get_task))
        .route("/tasks/{id}/retry", post(retry_task))
        .route("/apiTokens", get(list_api_tokens).post(create_api_token))
        .route("/apiTokens/{id}", axum::routing::delete(revoke_api_token))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(
            state.clone(),
            crate::auth::require_token,
        ))
        .layer(middleware::from_fn(json_errors));
    Router::new()
        .nest("/api/v1", api)
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}

/// An error answer.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }

    fn not_found(what: &str) -> ApiError {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("{what} not found"),
        )
    }

    fn invalid(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid", message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({ "error": { "code": self.code, "message": self.message } });
        (self.status, Json(body)).into_response()
    }
}

impl From<EngineError> for ApiError {
    /// The status says what happened (the error's class): a DNS server that cannot be
    /// reached now is `503` (try again later), one that answered with an error `502`, a
    /// zone changed meanwhile `409`, a config or request that cannot work `422`.
    fn from(e: EngineError) -> ApiError {
        let (status, code) = match e.class() {
            FailureClass::Store => (StatusCode::INTERNAL_SERVER_ERROR, "store"),
            FailureClass::Unreachable => (StatusCode::SERVICE_UNAVAILABLE, "dns"),
            FailureClass::Unavailable
            | FailureClass::Refused
            | FailureClass::Auth
            | FailureClass::Protocol => (StatusCode::BAD_GATEWAY, "dns"),
            FailureClass::Conflict => (StatusCode::CONFLICT, "dns_conflict"),
            FailureClass::InvalidConfig | FailureClass::Other => {
                (StatusCode::UNPROCESSABLE_ENTITY, "invalid")
            }
        };
        ApiError::new(status, code, e.to_string())
    }
}

#[cfg(test)]
mod error_status_tests {
    use super::*;
    use mailzone_engine::error::ZoneFailure;

    fn status(e: EngineError) -> (StatusCode, &'static str) {
        let e = ApiError::from(e);
        (e.status, e.code)
    }

    fn unresolvable() -> EngineError {
        EngineError::Unreachable {
            file: "mailzone.toml".into(),
            dns_server: "primary".into(),
            host: "nonexistent.invalid".into(),
            reason: "no address".into(),
        }
    }

    /// The DNS errors' classes are tested in the engine; here, that the class decides.
    #[test]
    fn the_status_follows_the_failure_class() {
        assert_eq!(
            status(unresolvable()),
            (StatusCode::SERVICE_UNAVAILABLE, "dns")
        );
        let lagging = EngineError::Propagation {
            zone: "example.test".into(),
            server: "127.0.0.1:5300".parse().unwrap(),
            timeout: std::time::Duration::from_secs(2),
            reason: "serial 1".into(),
            others: 0,
        };
        assert_eq!(status(lagging), (StatusCode::BAD_GATEWAY, "dns"));
        let zones = EngineError::Zones(vec![
            ZoneFailure {
                zone: Name::host("a.test").unwrap(),
                dns_server: "one".into(),
                error: EngineError::InvalidConfig("unreadable secret".into()),
            },
            ZoneFailure {
                zone: Name::host("b.test").unwrap(),
                dns_server: "two".into(),
                error: unresolvable(),
            },
        ]);
        assert_eq!(status(zones), (StatusCode::SERVICE_UNAVAILABLE, "dns"));
        assert_eq!(
            status(EngineError::Usage("manual".into())),
            (StatusCode::UNPROCESSABLE_ENTITY, "invalid")
        );
    }
}

impl From<mailzone_store::StoreError> for ApiError {
    fn from(e: mailzone_store::StoreError) -> ApiError {
        ApiError::from(EngineError::from(e))
    }
}

/// `Json<T>` whose rejections (malformed JSON, unknown fields, wrong content type, body
/// too large) are answered in the API's error shape.
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    Json<T>: FromRequest<S, Rejection = JsonRejection>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        match Json::<T>::from_request(request, state).await {
            Ok(Json(value)) => Ok(ApiJson(value)),
            Err(rejection) => {
                let status = rejection.status();
                let code = match status {
                    StatusCode::PAYLOAD_TOO_LARGE => "too_large",
                    StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
                    _ => "bad_request",
                };
                Err(ApiError::new(status, code, rejection.body_text()))
            }
        }
    }
}

async fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

async fn metrics(State(state): State<AppState>) -> Response {
    let text = state.metrics.render(&state.store).await;
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
}

async fn not_found(uri: Uri) -> ApiError {
    ApiError::not_found(&format!("route {}", uri.path()))
}

/// A known path asked with a method it does not have; axum adds the `Allow` header.
async fn method_not_allowed(method: Method, uri: Uri) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!("{} does not take {method}", uri.path()),
    )
}

/// Every error answer under `/api/v1` in the API's shape: a rejection that axum answers by
/// itself before a handler runs (a path parameter that is not UTF-8, a body over the
/// limit) is plain text otherwise. Its headers (`Allow`, `WWW-Authenticate`) are kept.
async fn json_errors(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(is_json_media_type);
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let (parts, body) = response.into_parts();
    // axum's rejection texts are one short line; anything longer is cut, not buffered.
    let text = axum::body::to_bytes(body, 4096)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_string())
        .unwrap_or_default();
    let message = if text.is_empty() {
        status.canonical_reason().unwrap_or("error").to_string()
    } else {
        text
    };
    let mut answer = ApiError::new(status, status_code_name(status), message).into_response();
    for (name, value) in parts.headers.iter() {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            answer.headers_mut().insert(name.clone(), value.clone());
        }
    }
    answer
}

/// The `code` of an error answer made from a bare status.
fn status_code_name(status: StatusCode) -> &'static str {
    match status {
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::PAYLOAD_TOO_LARGE => "too_large",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        s if s.is_server_error() => "internal",
        _ => "bad_request",
    }
}

/// `application/json` or a `+json` type such as `application/merge-patch+json` (RFC 7396
/// §4), with or without parameters (`; charset=utf-8`); media types are case-insensitive
/// (RFC 9110 §8.3.1).
fn is_json_media_type(value: &str) -> bool {
    let essence = value
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// A body that must be JSON: 415 for another `Content-Type` or none.
fn require_json(headers: &HeaderMap) -> Result<(), ApiError> {
    let given = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    if given.is_some_and(is_json_media_type) {
        return Ok(());
    }
    Err(ApiError::new(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
        format!(
            "the body must be JSON (`Content-Type: application/json`), not {}",
            given.map_or("a body without Content-Type".to_string(), |t| format!(
                "`{t}`"
            ))
        ),
    ))
}

/// A buffered request body: over [`MAX_BODY_BYTES`] a 413 in the API's shape.
fn body_bytes(body: Result<Bytes, BytesRejection>) -> Result<Bytes, ApiError> {
    body.map_err(|rejection| {
        let status = rejection.status();
        ApiError::new(status, status_code_name(status), rejection.body_text())
    })
}

/// A JSON object body of a write: 415 when not JSON, 400 when malformed, 422 when not an
/// object.
fn object_body(
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<serde_json::Map<String, Value>, ApiError> {
    require_json(headers)?;
    let body = body_bytes(body)?;
    let value: Value = serde_json::from_slice(&body).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_request",
            format!("invalid JSON body: {e}"),
        )
    })?;
    match value {
        Value::Object(map) => Ok(map),
        _ => Err(ApiError::invalid("the body must be a JSON object")),
    }
}

/// JSON merge patch (RFC 7396 §2): a `null` member removes the key, an object member is
/// merged into the object there, any other value replaces what was there.
fn merge_patch(target: &mut Value, patch: Value) {
    let Value::Object(patch) = patch else {
        *target = patch;
        return;
    };
    if !target.is_object() {
        *target = Value::Object(serde_json::Map::new());
    }
    let Value::Object(map) = target else {
        unreachable!("made an object above")
    };
    for (key, value) in patch {
        if value.is_null() {
            map.remove(&key);
        } else {
            merge_patch(map.entry(key).or_insert(Value::Null), value);
        }
    }
}

/// A domain name from the path: Unicode accepted (converted to A-labels), anything else a
/// 400 naming the problem.
fn domain_name(raw: &str) -> Result<Name, ApiError> {
    Name::owner(raw).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_name",
            format!("`{raw}` is not a valid domain name: {e}"),
        )
    })
}

fn find_domain<'a>(
    loaded: &'a mailzone_engine::LoadedConfig,
    raw: &str,
) -> Result<&'a Domain, ApiError> {
    let name = domain_name(raw)?;
    loaded
        .config
        .domain(&name)
        .ok_or_else(|| ApiError::not_found(&format!("domain {name}")))
}

fn domain_json(domain: &Domain, loaded: &mailzone_engine::LoadedConfig) -> Value {
    let from_api = loaded.api_domains.contains(&domain.name);
    let dns_management = match &domain.dns_management {
        DnsManagement::Manual => json!({ "manual": {} }),
        DnsManagement::Automatic {
            dns_server,
            publish_records,
        } => json!({ "automatic": {
            "dnsServer": dns_server,
            "origin": domain.zone.as_str(),
            "publishRecords": publish_records.iter().map(|t| t.name()).collect::<Vec<_>>(),
        }}),
    };
    let dkim_management = match &domain.dkim_management {
        DkimManagement::Manual { keys } => json!({ "manual": {
            "selectors": keys.iter().map(|k| k.selector.clone()).collect::<Vec<_>>(),
        }}),
        DkimManagement::Automatic {
            algorithms,
            rsa_bits,
            ..
        } => json!({ "automatic": {
            "algorithms": algorithms,
            "rsaBits": rsa_bits,
        }}),
    };
    json!({
        "name": domain.name.as_str(),
        "origin": domain.zone.as_str(),
        "dnsManagement": dns_management,
        "dkimManagement": dkim_management,
        "source": if from_api { "api" } else { "config" },
        "configFile": if from_api { Value::Null } else { Value::String(loaded.path.display().to_string()) },
    })
}

async fn list_domains(State(state): State<AppState>) -> Json<Value> {
    let loaded = state.loaded();
    Json(Value::Array(
        loaded
            .config
            .domains
            .iter()
            .map(|d| domain_json(d, &loaded))
            .collect(),
    ))
}

async fn get_domain(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let loaded = state.loaded();
    let domain = find_domain(&loaded, &name)?;
    Ok(Json(domain_json(domain, &loaded)))
}

/// Which kind of API object a change is about.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Domain,
    DnsServer,
}

/// Everything the API defined, with `replace` applied to the object (`kind`, `name`):
/// `Some(definition)` sets its table, `None` removes it.
async fn api_objects_with(
    state: &AppState,
    kind: Kind,
    name: &str,
    replace: Option<&Value>,
) -> Result<mailzone_engine::ApiObjects, ApiError> {
    let mut api = mailzone_engine::ApiObjects::default();
    for (stored, definition) in state.store.api_domains().await? {
        if kind == Kind::Domain && stored == name {
            continue;
        }
        let definition = serde_json::from_str(&definition)
            .map_err(|e| ApiError::invalid(format!("stored domain {stored} is unreadable: {e}")))?;
        api.domains.push(mailzone_engine::ApiObject {
            name: stored,
            definition,
        });
    }
    for (stored, definition) in state.store.api_dns_servers().await? {
        if kind == Kind::DnsServer && stored == name {
            continue;
        }
        api.dns_servers.push(mailzone_engine::ApiObject {
            name: stored,
            definition,
        });
    }
    if let Some(definition) = replace {
        let object = mailzone_engine::ApiObject {
            name: name.to_string(),
            definition: definition.clone(),
        };
        match kind {
            Kind::Domain => api.domains.push(object),
            Kind::DnsServer => api.dns_servers.push(object),
        }
    }
    Ok(api)
}

/// Validates the config with this change, stores it, swaps it in, and schedules a
/// `DnsManagement` task when the domain is (now) under automatic management.
async fn apply_domain_change(
    state: &AppState,
    name: &Name,
    definition: Option<&Value>,
) -> Result<(std::sync::Arc<mailzone_engine::LoadedConfig>, Option<Task>), ApiError> {
    let loaded = apply_api_change(state, Kind::Domain, name.as_str(), definition).await?;
    let now = clock::unix_now();
    let automatic = loaded
        .config
        .domain(name)
        .is_some_and(|d| matches!(d.dns_management, DnsManagement::Automatic { .. }));
    let task = if automatic {
        let new = TaskKind::DnsManagement.task(name.as_str(), now);
        Some(state.store.create_task(&new, now).await?)
    } else {
        None
    };
    Ok((loaded, task))
}

fn with_task(mut domain: Value, task: Option<&Task>) -> Value {
    if let Value::Object(map) = &mut domain {
        map.insert("task".into(), task.map_or(Value::Null, task_json));
    }
    domain
}

/// Creates a domain from its config table as JSON (`{"name": …, "dnsManagement": …}`,
/// the file's camelCase keys). A domain under automatic management gets a
/// `DnsManagement` task at once (returned as `task`); the call does not wait for it.
async fn create_domain(
    State(state): State<AppState>,
    ApiJson(mut body): ApiJson<serde_json::Map<String, Value>>,
) -> Result<Response, ApiError> {
    let raw_name = match body.remove("name") {
        Some(Value::String(name)) => name,
        _ => {
            return Err(ApiError::invalid("`name` (a string) is required"));
        }
    };
    let name = domain_name(&raw_name)?;
    let _writing = state.config_writes.lock().await;
    let loaded = state.loaded();
    if loaded.config.domain(&name).is_some() {
        return Err(if loaded.api_domains.contains(&name) {
            ApiError::new(
                StatusCode::CONFLICT,
                "exists",
                format!("domain {name} exists: change it with PUT /api/v1/domains/{name}"),
            )
        } else {
            read_only(&name, &loaded.path)
        });
    }
    let (loaded, task) = apply_domain_change(&state, &name, Some(&Value::Object(body))).await?;
    let domain = loaded.config.domain(&name).expect("just added");
    Ok((
        StatusCode::CREATED,
        Json(with_task(domain_json(domain, &loaded), task.as_ref())),
    )
        .into_response())
}

/// PUT replaces an API-defined domain's table, PATCH merges keys into it, DELETE removes
/// it (its published records stay until a reconcile of another config removes them).
/// Domains of the config file answer 409.
async fn write_domain(
    State(state): State<AppState>,
    method: axum::http::Method,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let name = domain_name(&name)?;
    let _writing = state.config_writes.lock().await;
    let loaded = state.loaded();
    if loaded.config.domain(&name).is_none() {
        return Err(ApiError::not_found(&format!("domain {name}")));
    }
    if !loaded.api_domains.contains(&name) {
        return Err(read_only(&name, &loaded.path));
    }
    if method == axum::http::Method::DELETE {
        apply_domain_change(&state, &name, None).await?;
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    let mut given = object_body(&headers, body)?;
    match given.remove("name") {
        None => {}
        Some(Value::String(n)) if domain_name(&n)? == name => {}
        Some(_) => {
            return Err(ApiError::invalid(
                "`name` cannot be changed; create the new domain and delete this one",
            ));
        }
    }
    let definition = if method == axum::http::Method::PATCH {
        let mut current = state
            .store
            .api_domains()
            .await?
            .into_iter()
            .find(|(n, _)| n == name.as_str())
            .and_then(|(_, d)| serde_json::from_str::<Value>(&d).ok())
            .unwrap_or_else(|| Value::Object(serde_json::Map::new()));
        merge_patch(&mut current, Value::Object(given));
        current
    } else {
        Value::Object(given)
    };
    let (loaded, task) = apply_domain_change(&state, &name, Some(&definition)).await?;
    let domain = loaded.config.domain(&name).expect("just changed");
    Ok(Json(with_task(domain_json(domain, &loaded), task.as_ref())).into_response())
}

fn read_only(name: &Name, file: &std::path::Path) -> ApiError {
    ApiError::new(
        StatusCode::CONFLICT,
        "defined_in_config",
        format!(
            "domain {name} is defined in {}: change it there and send SIGHUP to reload",
            file.display()
        ),
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RecordsQuery {
    #[serde(default)]
    format: Option<String>,
    #[serde(default)]
    types: Option<String>,
}

/// `dnsZoneFile` (`format=zone`) or the JSON records (`format=json`, the default).
async fn domain_records(
    State(state): State<AppState>,
    Path(name): Path<String>,
    query: Result<Query<RecordsQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(query) =
        query.map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "bad_request", e.body_text()))?;
    let loaded = state.loaded();
    let domain = find_domain(&loaded, &name)?;
    let types = parse_types(query.types.as_deref().unwrap_or(""))?;
    let request = RecordsRequest {
        domains: vec![domain.name.as_str().to_string()],
        types,
        state_dir: state.state_dir.clone(),
        now_unix: clock::unix_now(),
        store: Some(state.store.clone()),
    };
    let planned = mailzone_engine::records(&loaded, &request).await?;
    let Some(records) = planned.first() else {
        return Err(ApiError::not_found(&format!("domain {}", domain.name)));
    };
    match query.format.as_deref().unwrap_or("json") {
        "zone" => Ok((
            [(header::CONTENT_TYPE, "text/dns; charset=utf-8")],
            mailzone_records::zonefile::render(
                &records.domain.name,
                &records.domain.zone,
                &records.records,
            ),
        )
            .into_response()),
        "json" => Ok(Json(mailzone_records::json::records(
            &records.domain.name,
            &records.records,
        ))
        .into_response()),
        other => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_request",
            format!("format `{other}` is not one of zone, json"),
        )),
    }
}

fn parse_types(list: &str) -> Result<Vec<DnsRecordType>, ApiError> {
    list.split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(|t| {
            t.parse::<DnsRecordType>()
                .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "bad_request", e.to_string()))
        })
        .collect()
}

/// What the next `DnsManagement` run would change, without changing it.
async fn plan_domain(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let loaded = state.loaded();
    let domain = find_domain(&loaded, &name)?;
    if matches!(domain.dns_management, DnsManagement::Manual) {
        return Err(ApiError::invalid(format!(
            "domain {} is under manual DNS management: there is no DNS server to plan against",
            domain.name
        )));
    }
    let request = mailzone_engine::ReconcileRequest {
        records: RecordsRequest {
            domains: vec![domain.name.as_str().to_string()],
            types: vec![],
            state_dir: state.state_dir.clone(),
            now_unix: clock::unix_now(),
            store: Some(state.store.clone()),
        },
        apply: false,
        force: false,
        delete_limit: mailzone_engine::reconcile::DEFAULT_DELETE_LIMIT,
        after_read: None,
        concurrency: mailzone_engine::reconcile::DEFAULT_CONCURRENCY,
    };
    let report = mailzone_engine::reconcile(&loaded, &request, &mailzone_engine::Silent).await?;
    Ok(Json(json!({
        "zones": report.zones.iter().map(mailzone_engine::reconcile::zone_json).collect::<Vec<_>>(),
        "dnsMessages": report.messages,
    })))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct CheckBody {
    /// `IP` or `IP:PORT` of the servers to ask instead of the zone's authoritative ones.
    #[serde(default)]
    nameservers: Vec<String>,
    /// Fetch the MTA-STS policy over HTTPS (default true).
    #[serde(default, rename = "fetchMtaSts")]
    fetch_mta_sts: Option<bool>,
}

async fn check_domain(
    State(state): State<AppState>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    // The body is optional, so it is parsed here rather than by the JSON extractor.
    let body = body_bytes(body)?;
    let body: CheckBody = if body.iter().all(u8::is_ascii_whitespace) {
        CheckBody::default()
    } else {
        require_json(&headers)?;
        serde_json::from_slice(&body).map_err(|e| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "bad_request",
                format!("invalid JSON body: {e}"),
            )
        })?
    };
    let loaded = state.loaded();
    let domain = find_domain(&loaded, &name)?;
    let nameservers = body
        .nameservers
        .iter()
        .map(|s| parse_nameserver(s))
        .collect::<Result<Vec<_>, _>>()?;
    let request = CheckRequest {
        domains: vec![domain.name.as_str().to_string()],
        nameservers,
        state_dir: state.state_dir.clone(),
        options: mailzone_check::CheckOptions {
            fetch_mta_sts: body.fetch_mta_sts.unwrap_or(true),
            ..mailzone_check::CheckOptions::default()
        },
        concurrency: mailzone_engine::reconcile::DEFAULT_CONCURRENCY,
        store: Some(state.store.clone()),
    };
    let report = mailzone_engine::check(&loaded, &request).await?;
    Ok(Json(mailzone_engine::check::report_json(&report)))
}

fn parse_nameserver(s: &str) -> Result<std::net::SocketAddr, ApiError> {
    if let Ok(addr) = s.parse::<std::net::SocketAddr>() {
        return Ok(addr);
    }
    s.parse::<std::net::IpAddr>()
        .map(|ip| std::net::SocketAddr::new(ip, 53))
        .map_err(|_| ApiError::invalid(format!("nameserver `{s}` is not IP or IP:PORT")))
}

/// DNS servers, without their secrets (the key is write-only: its source is named, never
/// its value).
fn dns_server_json(
    server: &mailzone_records::DnsServer,
    loaded: &mailzone_engine::LoadedConfig,
) -> Value {
    let DnsProvider::Rfc2136 {
        host,
        port,
        protocol,
        key_name,
        key,
        algorithm,
    } = &server.provider;
    json!({
        "name": server.name,
        "kind": "rfc2136",
        "host": host,
        "port": port,
        "protocol": protocol,
        "keyName": key_name,
        "keySet": key.is_some(),
        "algorithm": algorithm,
        "ttl": server.ttl,
        "propagationDelay": humantime::format_duration(server.propagation_delay).to_string(),
        "pollingInterval": humantime::format_duration(server.polling_interval).to_string(),
        "propagationTimeout": humantime::format_duration(server.propagation_timeout).to_string(),
        "authoritativeServers": server.authoritative_servers.iter().map(|a| a.to_string()).collect::<Vec<_>>(),
        "source": if loaded.api_dns_servers.contains(&server.name) { "api" } else { "config" },
    })
}

async fn list_dns_servers(State(state): State<AppState>) -> Json<Value> {
    let loaded = state.loaded();
    Json(Value::Array(
        loaded
            .config
            .dns_servers
            .iter()
            .map(|s| dns_server_json(s, &loaded))
            .collect(),
    ))
}

async fn get_dns_server(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let loaded = state.loaded();
    loaded
        .config
        .dns_server(&name)
        .map(|s| Json(dns_server_json(s, &loaded)))
        .ok_or_else(|| ApiError::not_found(&format!("dnsServer {name}")))
}

/// Every DKIM key with its public half; private keys are never returned.
async fn list_dkim_signatures(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let loaded = state.loaded();
    let mut out = Vec::new();
    for (domain, keys) in &loaded.manual_dkim_keys {
        for (selector, key) in keys {
            out.push(json!({
                "domain": domain.as_str(),
                "selector": selector,
                "algorithm": key.algorithm(),
                "stage": "Active",
                "source": "config",
                "publicKey": key.public_key().txt_value(),
            }));
        }
    }
    for domain in &loaded.config.domains {
        if !matches!(domain.dkim_management, DkimManagement::Automatic { .. }) {
            continue;
        }
        for stored in state.store.dkim_keys(domain.name.as_str()).await? {
            let public = mailzone_records::dkim::DkimPrivateKey::from_pem(&stored.private_key_pem)
                .map(|k| k.public_key().txt_value())
                .unwrap_or_else(|e| format!("unreadable key: {e}"));
            out.push(json!({
                "domain": stored.domain,
                "selector": stored.selector,
                "algorithm": stored.algorithm,
                "stage": format!("{:?}", stored.stage),
                "source": "database",
                "publicKey": public,
            }));
        }
    }
    Ok(Json(Value::Array(out)))
}

fn rfc3339(unix: i64) -> String {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(unix.max(0) as u64);
    humantime::format_rfc3339_seconds(t).to_string()
}

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
        "dueAt": rfc3339(task.due_at),
        "leaseOwner": task.lease_owner,
        "leaseUntil": task.lease_until.map(rfc3339),
        "failureReason": task.failure_reason,
        "result": task.result,
        "createdAt": rfc3339(task.created_at),
        "updatedAt": rfc3339(task.updated_at),
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TasksQuery {
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    limit: Option<u32>,
}

async fn list_tasks(
    State(state): State<AppState>,
    query: Result<Query<TasksQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(query) =
        query.map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "bad_request", e.body_text()))?;
    let status = match query.status.as_deref() {
        None => None,
        Some(s) => Some(
            serde_json::from_value::<TaskStatus>(Value::String(s.to_string())).map_err(|_| {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "bad_request",
                    format!(
                        "status `{s}` is not one of Scheduled, Running, Retry, Succeeded, Failed"
                    ),
                )
            })?,
        ),
    };
    let limit = query.limit.unwrap_or(100).clamp(1, 1000);
    let tasks = state.store.tasks(status, limit).await?;
    Ok(Json(Value::Array(tasks.iter().map(task_json).collect())))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct CreateTask {
    #[serde(rename = "type", default = "default_task_type")]
    kind: String,
    domain: String,
    #[serde(default)]
    update_records: Vec<String>,
    #[serde(default)]
    on_success_renew_certificate: bool,
}

fn default_task_type() -> String {
    DNS_MANAGEMENT.into()
}

/// Schedules a task and returns at once (202) with it.
async fn create_task(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<CreateTask>,
) -> Result<Response, ApiError> {
    match TaskKind::parse(&body.kind) {
        Some(TaskKind::DnsManagement) => {}
        Some(kind @ (TaskKind::DkimRotation | TaskKind::TlsaSync)) => {
            return create_upkeep_task(&state, kind, &body).await;
        }
        Some(TaskKind::AcmeRenewal) | None => return Err(ApiError::invalid(format!(
            "type `{}` is not a task that can be created here ({DNS_MANAGEMENT}, {DKIM_ROTATION} or {TLSA_SYNC}; {ACME_RENEWAL} follows a {DNS_MANAGEMENT} task with onSuccessRenewCertificate)",
            body.kind,
        ))),
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
        let t: DnsRecordType =
            raw.parse()
                .map_err(|e: mailzone_records::record::UnknownRecordType| {
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
async fn create_upkeep_task(
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

async fn get_task(
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
async fn retry_task(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let task = state
        .store
        .retry_task(&id, clock::unix_now())
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
    Ok((StatusCode::ACCEPTED, Json(task_json(&task))).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateToken {
    name: String,
}

/// A new token, shown in this answer only.
async fn create_api_token(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<CreateToken>,
) -> Result<Response, ApiError> {
    let name = body.name.trim();
    if name.is_empty() || name.len() > 100 || name.chars().any(char::is_control) {
        return Err(ApiError::invalid(
            "name must be 1 to 100 printable characters",
        ));
    }
    let token = crate::auth::new_token();
    let id = state
        .store
        .add_api_token(name, &crate::auth::token_hash(&token), clock::unix_now())
        .await?;
    let body: BTreeMap<&str, &str> = [
        ("id", id.as_str()),
        ("name", name),
        ("token", token.as_str()),
    ]
    .into_iter()
    .collect();
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

/// Every token's id, name and creation time; never a token or its hash.
async fn list_api_tokens(State(state): State<AppState>) -> Result<Response, ApiError> {
    let tokens: Vec<Value> = state
        .store
        .api_tokens()
        .await?
        .iter()
        .map(|t| json!({ "id": t.id, "name": t.name, "createdAt": clock::rfc3339(t.created_at) }))
        .collect();
    Ok(Json(json!({ "apiTokens": tokens })).into_response())
}

/// Revokes a token: it is refused from the next request on. The last token is kept (409),
/// so the API cannot lock every client out; `mailzone token revoke` on the state directory
/// can still remove it.
async fn revoke_api_token(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let tokens = state.store.api_tokens().await?;
    if !tokens.iter().any(|t| t.id == id) {
        return Err(ApiError::not_found("API token"));
    }
    if tokens.len() == 1 {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "last_token",
            "this is the only API token: create another one before revoking it",
        ));
    }
    if !state.store.revoke_api_token(&id).await? {
        return Err(ApiError::not_found("API token"));
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// A DNS server name: the `[dnsServer.<name>]` key.
fn dns_server_name(raw: &str) -> Result<String, ApiError> {
    let ok = !raw.is_empty()
        && raw.len() <= 63
        && raw
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if ok {
        Ok(raw.to_string())
    } else {
        Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_name",
            format!("`{raw}` is not a DNS server name (1 to 63 of A-Z, a-z, 0-9, - and _)"),
        ))
    }
}

/// Validates the config with a change to an API object (`None` removes it), stores the
/// change (a DNS server's `key` sealed) and swaps the new config in.
async fn apply_api_change(
    state: &AppState,
    kind: Kind,
    name: &str,
    definition: Option<&Value>,
) -> Result<std::sync::Arc<mailzone_engine::LoadedConfig>, ApiError> {
    // A secret of the wrong JSON type would be quoted back by the type error.
    if definition
        .and_then(|d| d.get("key"))
        .is_some_and(|k| !k.is_string())
    {
        return Err(ApiError::invalid(
            "key: the TSIG secret must be base64 text (the value is not shown)",
        ));
    }
    let api = api_objects_with(state, kind, name, definition).await?;
    let loaded = mailzone_engine::load_config_with(&state.config_path, &api)
        .map_err(|e| ApiError::invalid(e.to_string()))?;
    let now = clock::unix_now();
    match (kind, definition) {
        (Kind::Domain, Some(definition)) => {
            state
                .store
                .put_api_domain(name, &definition.to_string(), now)
                .await?;
        }
        (Kind::Domain, None) => {
            state.store.delete_api_domain(name).await?;
        }
        (Kind::DnsServer, Some(definition)) => {
            state
                .store
                .put_api_dns_server(name, definition, now)
                .await?;
        }
        (Kind::DnsServer, None) => {
            state.store.delete_api_dns_server(name).await?;
        }
    }
    Ok(state.swap(loaded))
}

/// Creates a DNS server from its config table as JSON; the TSIG secret (`key`, base64) is
/// write-only: stored sealed, never returned.
async fn create_dns_server(
    State(state): State<AppState>,
    ApiJson(mut body): ApiJson<serde_json::Map<String, Value>>,
) -> Result<Response, ApiError> {
    let name = match body.remove("name") {
        Some(Value::String(name)) => dns_server_name(&name)?,
        _ => return Err(ApiError::invalid("`name` (a string) is required")),
    };
    let _writing = state.config_writes.lock().await;
    let loaded = state.loaded();
    if loaded.config.dns_server(&name).is_some() {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "exists",
            if loaded.api_dns_servers.contains(&name) {
                format!("dnsServer {name} exists: change it with PUT /api/v1/dnsServers/{name}")
            } else {
                format!(
                    "dnsServer {name} is defined in {}: change it there and send SIGHUP to reload",
                    loaded.path.display()
                )
            },
        ));
    }
    let loaded =
        apply_api_change(&state, Kind::DnsServer, &name, Some(&Value::Object(body))).await?;
    let server = loaded.config.dns_server(&name).expect("just added");
    Ok((StatusCode::CREATED, Json(dns_server_json(server, &loaded))).into_response())
}

async fn put_dns_server(
    State(state): State<AppState>,
    Path(name): Path<String>,
    ApiJson(mut body): ApiJson<serde_json::Map<String, Value>>,
) -> Result<Response, ApiError> {
    let name = dns_server_name(&name)?;
    let _writing = state.config_writes.lock().await;
    let loaded = state.loaded();
    api_dns_server_only(&loaded, &name)?;
    match body.remove("name") {
        None => {}
        Some(Value::String(n)) if n == name => {}
        Some(_) => return Err(ApiError::invalid("`name` cannot be changed")),
    }
    let loaded =
        apply_api_change(&state, Kind::DnsServer, &name, Some(&Value::Object(body))).await?;
    let server = loaded.config.dns_server(&name).expect("just changed");
    Ok(Json(dns_server_json(server, &loaded)).into_response())
}

/// Changes keys of an API-defined DNS server as a JSON merge patch (RFC 7396): `null`
/// removes a key. The stored TSIG secret stays unless the patch gives `key`.
async fn patch_dns_server(
    State(state): State<AppState>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let name = dns_server_name(&name)?;
    let _writing = state.config_writes.lock().await;
    let loaded = state.loaded();
    api_dns_server_only(&loaded, &name)?;
    let mut given = object_body(&headers, body)?;
    match given.remove("name") {
        None => {}
        Some(Value::String(n)) if n == name => {}
        Some(_) => return Err(ApiError::invalid("`name` cannot be changed")),
    }
    let mut definition = state
        .store
        .api_dns_servers()
        .await?
        .into_iter()
        .find(|(n, _)| *n == name)
        .map(|(_, d)| d)
        .unwrap_or_else(|| Value::Object(serde_json::Map::new()));
    merge_patch(&mut definition, Value::Object(given));
    let loaded = apply_api_change(&state, Kind::DnsServer, &name, Some(&definition)).await?;
    let server = loaded.config.dns_server(&name).expect("just changed");
    Ok(Json(dns_server_json(server, &loaded)).into_response())
}

/// Removes an API-defined DNS server; refused (422) while a domain publishes through it.
async fn delete_dns_server(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let name = dns_server_name(&name)?;
    let _writing = state.config_writes.lock().await;
    let loaded = state.loaded();
    api_dns_server_only(&loaded, &name)?;
    apply_api_change(&state, Kind::DnsServer, &name, None).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

fn api_dns_server_only(loaded: &mailzone_engine::LoadedConfig, name: &str) -> Result<(), ApiError> {
    if loaded.config.dns_server(name).is_none() {
        return Err(ApiError::not_found(&format!("dnsServer {name}")));
    }
    if !loaded.api_dns_servers.contains(name) {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "defined_in_config",
            format!(
                "dnsServer {name} is defined in {}: change it there and send SIGHUP to reload",
                loaded.path.display()
            ),
        ));
    }
    Ok(())
}
