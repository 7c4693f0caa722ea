//! The web UI of `mailzone serve`, under `/ui/`: pages rendered on the server (maud
//! templates, which escape every value) over the same engine calls as the API. Every page
//! works without JavaScript; `assets/app.js` only adds copy buttons and refreshes the parts
//! of a page marked `data-live` without a full reload.
//!
//! Layout: [`session`] (sign-in with the admin password or an API token, the session
//! cookie, CSRF tokens), [`layout`] (the page frame, header badge, shared bits), one module
//! per page group.

use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;

use crate::state::AppState;

pub mod dns_servers;
pub mod domain;
pub mod domains;
pub mod layout;
pub mod limiter;
pub mod session;
pub mod tasks;

pub use layout::{Nav, Page};
pub use session::Session;

/// Where the UI lives; `/` redirects here.
pub const PREFIX: &str = "/ui";

/// The page's own scripts and styles only: no inline script, no `eval`, no framing, forms
/// posted back to this origin only (OWASP's recommended CSP baseline).
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
     style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; \
     frame-ancestors 'none'; base-uri 'none'; object-src 'none'";

/// The UI's routes: the sign-in pages open to all, every other page behind a session.
pub fn router(state: AppState) -> Router {
    let signed_in = Router::new()
        .merge(domains::routes())
        .merge(domain::routes())
        .merge(dns_servers::routes())
        .merge(tasks::routes())
        .layer(middleware::from_fn_with_state(
            state.clone(),
            session::require_session,
        ));
    let open = Router::new()
        .route("/", get(to_domains))
        .route(
            "/sign-in",
            get(session::sign_in_page).post(session::sign_in),
        )
        .route("/sign-out", axum::routing::post(session::sign_out))
        .route("/assets/app.css", get(app_css))
        .route("/assets/app.js", get(app_js));
    let ui = open.merge(signed_in).fallback(not_found).with_state(state);
    // Nested, `/` is `/ui` but not `/ui/`: both (and `/`) lead to the domains list, which
    // sends a visitor without a session to sign in first.
    Router::new()
        .route("/", get(to_domains))
        .route("/ui/", get(to_domains))
        .nest(PREFIX, ui)
        .layer(middleware::from_fn(security_headers))
}

/// Sets the security headers on every UI answer.
async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    let set = [
        (
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CONTENT_SECURITY_POLICY),
        ),
        (
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ),
        (
            header::REFERRER_POLICY,
            HeaderValue::from_static("same-origin"),
        ),
        (header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
    ];
    for (name, value) in set {
        headers.insert(name, value);
    }
    // Pages hold live state and, after sign-out, must not come back from the cache.
    if !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

async fn to_domains() -> Redirect {
    Redirect::to("/ui/domains")
}

/// A page of the UI that does not exist, in the UI's own frame and headers.
async fn not_found() -> Response {
    layout::error_page(StatusCode::NOT_FOUND, "There is no such page.")
}

async fn app_css() -> Response {
    asset("text/css; charset=utf-8", include_str!("assets/app.css"))
}

async fn app_js() -> Response {
    asset(
        "text/javascript; charset=utf-8",
        include_str!("assets/app.js"),
    )
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        body,
    )
        .into_response()
}
