//! The HTTP server API (`/api/<method>` and the legacy `/api`).

use crate::app::App;

/// Routes of the server API, relative to `http_api.handler_prefix`.
pub(crate) fn router(app: App) -> axum::Router {
    let _ = app;
    axum::Router::new()
}
