//! `/api/v1`: JSON with the camelCase names of the config file (Stalwart's names), errors as
//! `{"error": {"code", "message"}}` with a 4xx status for anything the caller can fix.
//! Objects from the config file are read-only here (409 naming the file).

use axum::extract::{DefaultBodyLimit, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router, middleware};
use mailzone_engine::clock;
use serde_json::{Value, json};

use crate::state::AppState;

mod dns_servers;
mod domains;
mod error;
mod tasks;
mod tokens;

use dns_servers::*;
use domains::*;
use error::*;
pub use error::{ApiError, ApiJson};
use tasks::*;
use tokens::*;

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

async fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

async fn metrics(State(state): State<AppState>) -> Response {
    let text = state.metrics.render(&state.store).await;
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
}

/// Which kind of API object a change is about.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Domain,
    DnsServer,
}

/// Everything the API defined, with `replace` applied to the object (`kind`, `name`):
/// `Some(definition)` sets its table, `None` removes it.
pub(crate) async fn api_objects_with(
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

pub(crate) fn rfc3339(unix: i64) -> String {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(unix.max(0) as u64);
    humantime::format_rfc3339_seconds(t).to_string()
}

/// The fields of a DNS server definition that hold secrets: the TSIG or API `key`, and
/// the secret settings of a `dns-update` provider.
fn secret_fields(definition: &Value) -> Vec<String> {
    let mut fields = vec!["key".to_string()];
    if let Some(known) = definition
        .get("kind")
        .and_then(Value::as_str)
        .and_then(|k| mailzone_records::config::dns_update_provider(&k.to_ascii_lowercase()))
    {
        fields.extend(
            known
                .settings
                .iter()
                .filter(|s| s.secret)
                .map(|s| s.key.to_string()),
        );
    }
    fields
}

/// Validates the config with a change to an API object (`None` removes it), stores the
/// change (a DNS server's `key` sealed) and swaps the new config in.
pub(crate) async fn apply_api_change(
    state: &AppState,
    kind: Kind,
    name: &str,
    definition: Option<&Value>,
) -> Result<std::sync::Arc<mailzone_engine::LoadedConfig>, ApiError> {
    // A secret of the wrong JSON type would be quoted back by the type error.
    if let Some(definition) = definition
        && let Some(field) = secret_fields(definition)
            .into_iter()
            .find(|f| definition.get(f).is_some_and(|v| !v.is_string()))
    {
        return Err(ApiError::invalid(format!(
            "{field}: a secret must be text (the value is not shown)"
        )));
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
                .put_api_dns_server(name, definition, &secret_fields(definition), now)
                .await?;
        }
        (Kind::DnsServer, None) => {
            state.store.delete_api_dns_server(name).await?;
        }
    }
    Ok(state.swap(loaded))
}
