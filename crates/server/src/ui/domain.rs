//! TODO(web UI): this page group is being written.

use axum::Router;

use crate::state::AppState;

/// The routes of this page group, relative to `/ui`, behind the session check.
pub fn routes() -> Router<AppState> {
    Router::new()
}
