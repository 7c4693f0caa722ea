//! `/api/v1`: JSON with the camelCase names of the config file (Stalwart's names), errors as
//! `{"error": {"code", "message"}}` with a 4xx status for anything the caller can fix.
//! Objects from the config file are read-only here (409 naming the file).

use axum::extract::{DefaultBodyLimit, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router, middleware};
use mailzone_engine::{ApiChange, ApiObjectKind};
use serde_json::{Value, json};

use crate::state::AppState;

mod dns_server_test;
pub(crate) mod dns_servers;
pub(crate) mod domains;
mod error;
pub mod paging;
pub(crate) mod tasks;
mod tokens;

use dns_server_test::*;
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
        .route("/dnsServers/{name}/test", post(test_dns_server_route))
        .route("/dkimSignatures", get(list_dkim_signatures))
        .route("/tasks", get(list_tasks).post(create_task))
        .route("/tasks/{id}", get(get_task))
        .route("/tasks/{id}/retry", post(retry_task))
        .route("/tasks/{id}/cancel", post(cancel_task))
        .route("/tasks/{id}/reschedule", post(reschedule_task))
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

/// Validates, stores and swaps in a change to an API object (`None` removes it): the
/// engine's use case, with the new config made the service's current one.
pub(crate) async fn apply_api_change(
    state: &AppState,
    kind: ApiObjectKind,
    name: &str,
    definition: Option<&Value>,
) -> Result<std::sync::Arc<mailzone_engine::LoadedConfig>, ApiError> {
    let change = ApiChange {
        kind,
        name,
        definition,
    };
    let loaded =
        mailzone_engine::apply_api_change(&state.config_path, &state.store, change).await?;
    Ok(state.swap(loaded))
}
