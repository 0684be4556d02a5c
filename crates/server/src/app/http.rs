//! The HTTP endpoints and where they are served.
//!
//! Client transports always live on the external (main) port; the server API, health and
//! metrics on the internal port, which is the main port unless
//! `http_server.internal_port` is set (`http_api.external` moves the API outside).

use axum::Router;
use axum::body::Body;
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use http::StatusCode;
use tower_service::Service as _;

use super::App;
use super::origin::OriginCheck;

/// Routers of the external and (when separate) internal listeners.
pub(crate) struct Routers {
    pub(crate) external: Router,
    pub(crate) internal: Option<Router>,
}

pub(crate) fn routers(app: &App, separate_internal: bool) -> Routers {
    let config = app.config();
    let mut external = Router::new();
    let mut internal = Router::new();

    if !config.websocket.disabled {
        external = external.route(&config.websocket.handler_prefix, websocket(app));
    }
    if !config.http_api.disabled {
        let prefix = config.http_api.handler_prefix.trim_end_matches('/');
        let api = crate::api::router(app.clone());
        let target = if config.http_api.external {
            &mut external
        } else {
            &mut internal
        };
        // Centrifugo serves the API at the root for the prefix `/`; axum cannot nest there.
        *target = if prefix.is_empty() {
            std::mem::take(target).merge(api)
        } else {
            std::mem::take(target).nest(prefix, api)
        };
    }
    if config.health.enabled {
        internal = internal.route(
            &config.health.handler_prefix,
            get(|| async { ([(http::header::CONTENT_TYPE, "application/json")], "{}") }),
        );
    }

    if config.prometheus.enabled {
        let node = app.node.clone();
        internal = internal.route(
            &config.prometheus.handler_prefix,
            get(move || {
                let node = node.clone();
                async move {
                    let mut out = String::new();
                    node.write_metrics("centrifugo", &mut out);
                    (
                        [(
                            http::header::CONTENT_TYPE,
                            "text/plain; version=0.0.4; charset=utf-8",
                        )],
                        out,
                    )
                }
            }),
        );
    }

    if separate_internal {
        Routers {
            external,
            internal: Some(internal),
        }
    } else {
        Routers {
            external: external.merge(internal),
            internal: None,
        }
    }
}

/// `/connection/websocket` with the origin check and the node-wide connection limit
/// (503 before the upgrade, as Centrifugo answers).
fn websocket(app: &App) -> axum::routing::MethodRouter {
    let config = app.config();
    let origins = OriginCheck::new(&config.client.allowed_origins);
    let mut ws_config = gyre::WebSocketConfig::default().check_origin(move |request| {
        let origin = request
            .headers
            .get(http::header::ORIGIN)
            .and_then(|o| o.to_str().ok());
        origins.allows(origin)
    });
    if config.websocket.message_size_limit > 0 {
        ws_config.message_size_limit = config.websocket.message_size_limit as usize;
    }
    if let Some(timeout) = config.websocket.write_timeout.to_std() {
        ws_config.write_timeout = timeout;
    }
    let handler = gyre::WebSocketHandler::new(app.node.clone(), ws_config);
    let limit = config.client.connection_limit.max(0) as usize;
    let node = app.node.clone();
    any(move |request: http::Request<Body>| {
        let mut handler = handler.clone();
        let node = node.clone();
        async move {
            if limit > 0 && node.info().num_clients >= limit {
                return (StatusCode::SERVICE_UNAVAILABLE, "connection limit reached")
                    .into_response();
            }
            match handler.call(request).await {
                Ok(response) => response.into_response(),
                Err(never) => match never {},
            }
        }
    })
}

/// Answers 404 with a JSON body for unknown paths.
pub(crate) async fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        [(http::header::CONTENT_TYPE, "application/json")],
        r#"{"error":"not found"}"#,
    )
        .into_response()
}
