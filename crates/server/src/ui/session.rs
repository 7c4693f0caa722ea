//! Signing in to the web UI and the session that follows.
//!
//! - A session starts with the admin password (`mailzone admin set-password`, an Argon2id
//!   hash in the store) or any API token. Its cookie holds 256 random bits; the store keeps
//!   only their SHA-256. The cookie is `HttpOnly`, `SameSite=Strict`, and `Secure` when the
//!   service speaks HTTPS (RFC 6265 §4.1.2); a session unused for [`IDLE_EXPIRY`] ends.
//! - Every form carries a CSRF token, the SHA-256 of the session's cookie value under a
//!   label: a page of another site can neither read it nor compute it. A POST without the
//!   right one is refused before its handler runs. The sign-in form, posted before any
//!   session exists, is tied the same way to a short-lived sign-in cookie.

use std::net::IpAddr;

use axum::body::{Body, to_bytes};
use axum::extract::ConnectInfo;
use axum::extract::{FromRequestParts, Query, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Form};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use mailzone_engine::clock;
use mailzone_store::token_subject;
use maud::html;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::layout::{self, Page};
use super::limiter::ClientAddr;
use crate::auth::{TOKEN_PREFIX, token_hash};
use crate::state::AppState;

/// The session cookie.
pub const SESSION_COOKIE: &str = "mailzone_session";
/// The cookie that ties the sign-in form to the browser that loaded it.
pub const SIGN_IN_COOKIE: &str = "mailzone_sign_in";
/// A session unused for this long ends (OWASP suggests 15–30 minutes for admin pages).
pub const IDLE_EXPIRY: std::time::Duration = std::time::Duration::from_secs(30 * 60);
/// The name of the CSRF field of every form.
pub const CSRF_FIELD: &str = "csrf";
/// Form bodies larger than this are refused (the largest form, a domain's definition, is
/// far smaller).
const MAX_FORM_BYTES: usize = 256 * 1024;

/// The signed-in user, put in the request by [`require_session`]: who, and the CSRF token
/// the pages must put in their forms.
#[derive(Debug, Clone)]
pub struct Session {
    /// `admin`, or `token:<id>` for a session opened with an API token.
    pub subject: String,
    /// What the pages call the signed-in user: `admin` or `token <name>`.
    pub label: String,
    pub csrf: String,
}

impl<S: Send + Sync> FromRequestParts<S> for Session {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Session, Response> {
        parts
            .extensions
            .get::<Session>()
            .cloned()
            .ok_or_else(|| Redirect::to("/ui/sign-in").into_response())
    }
}

/// A new random cookie value (256 bits).
fn new_secret() -> String {
    let bytes: [u8; 32] = rand::random();
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The token a form must carry for the holder of the cookie value `secret`.
fn csrf_token(secret: &str) -> String {
    let digest = Sha256::new()
        .chain_update(b"mailzone-csrf\0")
        .chain_update(secret.as_bytes())
        .finalize();
    URL_SAFE_NO_PAD.encode(digest)
}

/// The value of cookie `name` in the request, if sent.
fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
}

/// A `Set-Cookie` value with the flags every UI cookie carries; `max_age` `Some(0)` deletes.
fn set_cookie(state: &AppState, name: &str, value: &str, max_age: Option<u64>) -> HeaderValue {
    let mut cookie = format!("{name}={value}; Path=/ui; HttpOnly; SameSite=Strict");
    if state.loaded().config.serve.tls.is_some() {
        cookie.push_str("; Secure");
    }
    if let Some(seconds) = max_age {
        cookie.push_str(&format!("; Max-Age={seconds}"));
    }
    HeaderValue::from_str(&cookie).expect("cookie values are base64url")
}

/// The session of the request's cookie, if it is still open.
async fn current_session(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<Option<Session>, Response> {
    let Some(secret) = cookie(headers, SESSION_COOKIE) else {
        return Ok(None);
    };
    let now = clock::unix_now();
    let idle_since = now - IDLE_EXPIRY.as_secs() as i64;
    let found = state
        .store
        .touch_web_session(&token_hash(secret), idle_since, now)
        .await
        .map_err(|e| layout::error_page(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()))?;
    Ok(found.map(|s| Session {
        subject: s.subject,
        label: s.label,
        csrf: csrf_token(secret),
    }))
}

/// The middleware in front of every page but sign-in: without an open session a request
/// goes to the sign-in page (a GET comes back where it was); a POST must carry the
/// session's CSRF token.
pub async fn require_session(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let session = match current_session(&state, request.headers()).await {
        Ok(Some(session)) => session,
        Ok(None) => return to_sign_in(&request),
        Err(page) => return page,
    };
    let mut request = if request.method() == Method::GET || request.method() == Method::HEAD {
        request
    } else {
        match checked_form(request, &session.csrf).await {
            Ok(request) => request,
            Err(refused) => return refused,
        }
    };
    request.extensions_mut().insert(session);
    next.run(request).await
}

/// 303 to the sign-in page, remembering a GET's page to come back to.
fn to_sign_in(request: &Request) -> Response {
    // Inside the nested router the URI has lost its `/ui` prefix; the original keeps it.
    let uri = match request.extensions().get::<axum::extract::OriginalUri>() {
        Some(original) => &original.0,
        None => request.uri(),
    };
    let path = uri.path_and_query().map(|p| p.as_str());
    match path.filter(|_| request.method() == Method::GET) {
        Some(path) if path != "/ui/" => {
            let next: String = form_urlencoded::byte_serialize(path.as_bytes()).collect();
            Redirect::to(&format!("/ui/sign-in?next={next}")).into_response()
        }
        _ => Redirect::to("/ui/sign-in").into_response(),
    }
}

/// The request with its form body read and put back, if the body's CSRF field is `expected`.
async fn checked_form(request: Request, expected: &str) -> Result<Request, Response> {
    let (parts, body) = request.into_parts();
    let bytes = to_bytes(body, MAX_FORM_BYTES)
        .await
        .map_err(|_| layout::error_page(StatusCode::PAYLOAD_TOO_LARGE, "The form is too large."))?;
    let presented = form_urlencoded::parse(&bytes)
        .find(|(key, _)| key == CSRF_FIELD)
        .map(|(_, value)| value.into_owned())
        .unwrap_or_default();
    if !same(&presented, expected) {
        return Err(layout::error_page(
            StatusCode::FORBIDDEN,
            "This form was not sent from a page of this session (its CSRF token is missing or \
             stale). Reload the page and send it again.",
        ));
    }
    Ok(Request::from_parts(parts, Body::from(bytes)))
}

/// Compares two secrets in time independent of where they differ.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

#[derive(Deserialize, Default)]
pub struct SignInQuery {
    next: Option<String>,
}

/// The page to go to after signing in: only a page of the UI (never another site).
fn safe_next(next: Option<&str>) -> &str {
    match next {
        Some(path) if path.starts_with("/ui/") && !path.contains("//") && !path.contains('\\') => {
            path
        }
        _ => "/ui/domains",
    }
}

/// `GET /ui/sign-in`.
pub async fn sign_in_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<SignInQuery>,
) -> Response {
    if let Ok(Some(_)) = current_session(&state, &headers).await {
        return Redirect::to(safe_next(query.next.as_deref())).into_response();
    }
    sign_in_form(
        &state,
        &headers,
        query.next.as_deref(),
        None,
        StatusCode::OK,
    )
}

/// The sign-in form (with `problem` shown above it), setting a sign-in cookie when the
/// browser has none.
fn sign_in_form(
    state: &AppState,
    headers: &HeaderMap,
    next: Option<&str>,
    problem: Option<&str>,
    status: StatusCode,
) -> Response {
    let existing = cookie(headers, SIGN_IN_COOKIE).map(str::to_string);
    let secret = existing.clone().unwrap_or_else(new_secret);
    let body = html! {
        section.sign-in {
            h1 { "Sign in to mailzone" }
            @if let Some(problem) = problem {
                p.alert.error role="alert" { (problem) }
            }
            form method="post" action="/ui/sign-in" {
                input type="hidden" name=(CSRF_FIELD) value=(csrf_token(&secret));
                input type="hidden" name="next" value=(safe_next(next));
                label for="secret" { "Admin password or API token" }
                input #secret type="password" name="secret" required autocomplete="current-password" autofocus;
                p.hint {
                    "The admin password is set with " code { "mailzone admin set-password" }
                    "; an API token starts with " code { (TOKEN_PREFIX) } "."
                }
                button.primary type="submit" { "Sign in" }
            }
        }
    };
    let mut response = (status, Page::bare("Sign in", body).render()).into_response();
    if existing.is_none() {
        let value = set_cookie(state, SIGN_IN_COOKIE, &secret, Some(3600));
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}

#[derive(Deserialize)]
pub struct SignInForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    secret: String,
    next: Option<String>,
}

/// `POST /ui/sign-in`: opens a session for the admin password or a known API token.
pub async fn sign_in(
    State(state): State<AppState>,
    connect: Option<Extension<ConnectInfo<ClientAddr>>>,
    headers: HeaderMap,
    Form(form): Form<SignInForm>,
) -> Response {
    let next = form.next.as_deref();
    let client = client_ip(&connect);
    let now = clock::unix_now();
    if let Some(wait) = state.sign_in_limiter.refused(client, now) {
        let problem = format!(
            "Too many failed sign-ins from your address. Try again in {} minutes.",
            (wait + 59) / 60
        );
        let mut refused = sign_in_form(
            &state,
            &headers,
            next,
            Some(&problem),
            StatusCode::TOO_MANY_REQUESTS,
        );
        if let Ok(value) = HeaderValue::from_str(&wait.to_string()) {
            refused.headers_mut().insert(header::RETRY_AFTER, value);
        }
        return refused;
    }
    let tied = cookie(&headers, SIGN_IN_COOKIE).is_some_and(|s| same(&form.csrf, &csrf_token(s)));
    if !tied {
        let problem = "This sign-in form has expired. Please sign in again.";
        return sign_in_form(&state, &headers, next, Some(problem), StatusCode::FORBIDDEN);
    }
    let (subject, label) = match subject_of(&state, &form.secret).await {
        Ok(Some(found)) => found,
        Ok(None) => {
            state.sign_in_limiter.failed(client, now);
            tracing::warn!(client = ?client, "web UI sign-in failed");
            let problem = "The password or token is not valid.";
            return sign_in_form(
                &state,
                &headers,
                next,
                Some(problem),
                StatusCode::UNAUTHORIZED,
            );
        }
        Err(e) => return layout::error_page(StatusCode::INTERNAL_SERVER_ERROR, &e),
    };
    state.sign_in_limiter.succeeded(client);
    let secret = new_secret();
    let store = &state.store;
    let opened = async {
        store
            .delete_idle_web_sessions(now - IDLE_EXPIRY.as_secs() as i64)
            .await?;
        store
            .add_web_session(&token_hash(&secret), &subject, &label, now)
            .await
    };
    if let Err(e) = opened.await {
        return layout::error_page(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string());
    }
    tracing::info!(subject, "web UI sign-in");
    let mut response = Redirect::to(safe_next(next)).into_response();
    let headers = response.headers_mut();
    headers.append(
        header::SET_COOKIE,
        set_cookie(&state, SESSION_COOKIE, &secret, None),
    );
    headers.append(
        header::SET_COOKIE,
        set_cookie(&state, SIGN_IN_COOKIE, "", Some(0)),
    );
    response
}

/// The client's IP address, when the listener recorded it (an in-process router in tests
/// has none: all its clients share one count).
fn client_ip(connect: &Option<Extension<ConnectInfo<ClientAddr>>>) -> Option<IpAddr> {
    connect.as_ref().map(|c| c.0.0.0.ip())
}

/// Who `secret` signs in as (subject and label): `token:<id>` for an API token, `admin` for
/// the admin password; `None` when it is neither.
async fn subject_of(state: &AppState, secret: &str) -> Result<Option<(String, String)>, String> {
    if secret.starts_with(TOKEN_PREFIX) {
        let token = state.store.api_token_by_hash(&token_hash(secret)).await;
        let token = token.map_err(|e| e.to_string())?;
        return Ok(token.map(|t| (token_subject(&t.id), format!("token {}", t.name))));
    }
    let Some(hash) = state
        .store
        .admin_password_hash()
        .await
        .map_err(|e| e.to_string())?
    else {
        return Ok(None);
    };
    let password = secret.to_string();
    // Argon2 takes tens of milliseconds of CPU on purpose: off the async workers.
    let verified = tokio::task::spawn_blocking(move || verify_password(&password, &hash))
        .await
        .map_err(|e| e.to_string())?;
    Ok(verified.then(|| ("admin".to_string(), "admin".to_string())))
}

/// `POST /ui/sign-out`: ends the session (when its CSRF token matches) and forgets the cookie.
pub async fn sign_out(State(state): State<AppState>, request: Request) -> Response {
    let headers = request.headers().clone();
    if let Ok(Some(session)) = current_session(&state, &headers).await
        && checked_form(request, &session.csrf).await.is_ok()
        && let Some(secret) = cookie(&headers, SESSION_COOKIE)
        && let Err(e) = state.store.delete_web_session(&token_hash(secret)).await
    {
        return layout::error_page(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string());
    }
    let mut response = Redirect::to("/ui/sign-in").into_response();
    response.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(&state, SESSION_COOKIE, "", Some(0)),
    );
    response
}

/// The hidden CSRF field every form of a signed-in page carries.
pub fn csrf_field(session: &Session) -> maud::Markup {
    html! { input type="hidden" name=(CSRF_FIELD) value=(session.csrf); }
}

/// The Argon2id PHC string of `password` (random salt, the crate's default parameters:
/// OWASP's minimum of 19 MiB, 2 passes).
pub fn hash_password(password: &str) -> Result<String, String> {
    use argon2::password_hash::PasswordHasher as _;
    argon2::Argon2::default()
        .hash_password(password.as_bytes())
        .map(|hash| hash.to_string())
        .map_err(|e| format!("cannot hash the password: {e}"))
}

/// Whether `password` matches the PHC string `hash`.
pub fn verify_password(password: &str, hash: &str) -> bool {
    use argon2::password_hash::PasswordVerifier as _;
    argon2::Argon2::default()
        .verify_password(password.as_bytes(), hash)
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_hash_with_a_salt_and_verify() {
        let a = hash_password("correct horse").unwrap();
        let b = hash_password("correct horse").unwrap();
        assert!(a.starts_with("$argon2id$"), "{a}");
        assert_ne!(a, b, "a random salt per hash");
        assert!(verify_password("correct horse", &a));
        assert!(!verify_password("correct horse!", &a));
        assert!(!verify_password("correct horse", "not a hash"));
    }

    #[test]
    fn the_csrf_token_depends_on_the_session_and_reveals_nothing() {
        let (s1, s2) = (new_secret(), new_secret());
        assert_ne!(csrf_token(&s1), csrf_token(&s2));
        assert_eq!(csrf_token(&s1), csrf_token(&s1));
        assert!(!csrf_token(&s1).contains(&s1));
    }

    #[test]
    fn only_ui_pages_are_followed_after_sign_in() {
        assert_eq!(
            safe_next(Some("/ui/tasks?status=Failed")),
            "/ui/tasks?status=Failed"
        );
        for hostile in [
            "https://evil.example/",
            "//evil.example/ui/",
            "/ui//evil.example",
            "/ui/\\evil",
            "/api/v1/tasks",
        ] {
            assert_eq!(safe_next(Some(hostile)), "/ui/domains", "{hostile}");
        }
        assert_eq!(safe_next(None), "/ui/domains");
    }

    #[test]
    fn cookies_are_found_by_exact_name() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; mailzone_session_x=2; mailzone_session=3"),
        );
        assert_eq!(cookie(&headers, SESSION_COOKIE), Some("3"));
        assert_eq!(cookie(&headers, SIGN_IN_COOKIE), None);
    }
}
