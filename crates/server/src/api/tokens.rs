//! `/apiTokens`: API tokens, shown once at creation, stored hashed, revocable.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use mailzone_engine::clock;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::state::AppState;

use super::*;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateToken {
    name: String,
}

/// A new token, shown in this answer only.
pub(crate) async fn create_api_token(
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
pub(crate) async fn list_api_tokens(State(state): State<AppState>) -> Result<Response, ApiError> {
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
pub(crate) async fn revoke_api_token(
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
