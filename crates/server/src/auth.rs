//! Bearer tokens (RFC 6750 §2.1). A token is 256 random bits; only its SHA-256 is stored,
//! so a copy of the database gives no usable token. A fast hash is enough for values that
//! cannot be guessed (unlike passwords, which would need a slow one).

use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use mailzone_engine::clock;
use mailzone_store::Store;
use sha2::{Digest, Sha256};

use crate::api::ApiError;
use crate::state::AppState;

/// Every token starts with this, so secret scanners and people recognise one.
pub const TOKEN_PREFIX: &str = "mzt_";

/// A new random token.
pub fn new_token() -> String {
    let bytes: [u8; 32] = rand::random();
    format!("{TOKEN_PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes))
}

/// The stored form of a token.
pub fn token_hash(token: &str) -> String {
    mailzone_records::zonefile::hex(&Sha256::digest(token.as_bytes()))
}

/// At the first start (no token stored), makes the admin token and prints it once on
/// stdout: it cannot be shown again.
pub async fn ensure_admin_token(store: &Store) -> anyhow::Result<()> {
    if store.api_token_count().await? > 0 {
        return Ok(());
    }
    let token = new_token();
    store
        .add_api_token("admin", &token_hash(&token), clock::unix_now())
        .await?;
    println!(
        "mailzone: admin API token (shown only now; only its hash is kept): {token}\n\
         mailzone: use it as `Authorization: Bearer <token>`; create more with POST /api/v1/apiTokens"
    );
    Ok(())
}

/// The middleware in front of `/api/v1`: 401 without a known token.
pub async fn require_token(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(bearer_token);
    let Some(token) = presented else {
        return unauthorized("this route needs `Authorization: Bearer <token>`");
    };
    match state.store.api_token_name(&token_hash(token)).await {
        Ok(Some(_)) => next.run(request).await,
        Ok(None) => unauthorized("the bearer token is not valid"),
        Err(e) => ApiError::from(mailzone_engine::EngineError::from(e)).into_response(),
    }
}

/// The token of an `Authorization: Bearer <token>` value. The scheme name is
/// case-insensitive (RFC 9110 §11.1), so `bearer` and `BEARER` are accepted too; the
/// token itself is compared exactly.
fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim_start().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

fn unauthorized(message: &str) -> Response {
    let mut response = ApiError::new(
        axum::http::StatusCode::UNAUTHORIZED,
        "unauthorized",
        message,
    )
    .into_response();
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        header::HeaderValue::from_static("Bearer realm=\"mailzone\""),
    );
    response
}

#[cfg(test)]
mod tests {
    #[test]
    fn tokens_are_random_and_hashes_are_hex() {
        let (a, b) = (super::new_token(), super::new_token());
        assert_ne!(a, b);
        assert!(
            a.starts_with(super::TOKEN_PREFIX) && a.len() == 4 + 43,
            "{a}"
        );
        let h = super::token_hash(&a);
        assert_eq!(h.len(), 64);
        assert!(!h.contains(&a[4..]));
    }

    #[test]
    fn the_bearer_scheme_is_case_insensitive() {
        for value in [
            "Bearer mzt_x",
            "bearer mzt_x",
            "BEARER  mzt_x ",
            "bEaReR mzt_x",
        ] {
            assert_eq!(super::bearer_token(value), Some("mzt_x"), "{value}");
        }
        for value in ["Basic mzt_x", "Bearer", "Bearer ", "Bearermzt_x", "mzt_x"] {
            assert_eq!(super::bearer_token(value), None, "{value}");
        }
    }
}
