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
    if config.uni_websocket.enabled {
        external = external.route(&config.uni_websocket.handler_prefix, uni_websocket(app));
    }
    if config.uni_sse.enabled {
        let c = &config.uni_sse;
        let handler = gyre::UniSseHandler::new(
            app.node.clone(),
            uni_stream_config(c.max_request_body_size, &c.connect_code_to_http_response),
        );
        external = external.route(&c.handler_prefix, limited(app, handler));
    }
    if config.uni_http_stream.enabled {
        let c = &config.uni_http_stream;
        let handler = gyre::UniHttpStreamHandler::new(
            app.node.clone(),
            uni_stream_config(c.max_request_body_size, &c.connect_code_to_http_response),
        );
        external = external.route(&c.handler_prefix, limited(app, handler));
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
    limited(app, handler)
}

/// Serves `handler` behind the node-wide connection limit (503 before anything else, as
/// Centrifugo's connection middleware answers).
fn limited<H, B>(app: &App, handler: H) -> axum::routing::MethodRouter
where
    H: tower_service::Service<
            http::Request<Body>,
            Response = http::Response<B>,
            Error = std::convert::Infallible,
        > + Clone
        + Send
        + Sync
        + 'static,
    H::Future: Send,
    B: axum::body::HttpBody<Data = bytes::Bytes> + Send + 'static,
    B::Error: Into<axum::BoxError>,
{
    let limit = app.config().client.connection_limit.max(0) as usize;
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
                Ok(response) => response.map(Body::new),
                Err(never) => match never {},
            }
        }
    })
}

/// `/connection/uni_websocket` with the same origin check as the WebSocket endpoint.
fn uni_websocket(app: &App) -> axum::routing::MethodRouter {
    let config = app.config();
    let c = &config.uni_websocket;
    let origins = OriginCheck::new(&config.client.allowed_origins);
    let mut uni = gyre::UniWebSocketConfig::default().check_origin(move |request| {
        let origin = request
            .headers
            .get(http::header::ORIGIN)
            .and_then(|o| o.to_str().ok());
        origins.allows(origin)
    });
    if c.message_size_limit > 0 {
        uni.message_size_limit = c.message_size_limit as usize;
    }
    if let Some(timeout) = c.write_timeout.to_std().filter(|t| !t.is_zero()) {
        uni.write_timeout = timeout;
    }
    uni.join_push_messages = c.join_push_messages;
    uni.disable_closing_handshake = c.disable_closing_handshake;
    uni.disable_disconnect_push = c.disable_disconnect_push;
    // WebSocket pings follow `client.ping_pong`, with upstream's 25 s / 10 s when it
    // disables them: a unidirectional WebSocket always pings.
    let ping_pong = &config.client.ping_pong;
    if let Some(d) = ping_pong.ping_interval.to_std().filter(|d| !d.is_zero()) {
        uni.ping_interval = d;
    }
    if let Some(d) = ping_pong.pong_timeout.to_std().filter(|d| !d.is_zero()) {
        uni.pong_timeout = d;
    }
    limited(app, gyre::UniWebSocketHandler::new(app.node.clone(), uni))
}

/// Settings of `uni_sse` / `uni_http_stream`.
fn uni_stream_config(
    max_request_body_size: i64,
    responses: &crate::config::ConnectCodeToHttpResponse,
) -> gyre::UniStreamConfig {
    let mut c = gyre::UniStreamConfig::default();
    c.max_request_body_size = max_request_body_size.max(0) as usize;
    if responses.enabled {
        c.connect_error_responses = Some(
            responses
                .transforms
                .iter()
                .map(|t| {
                    let status = u16::try_from(t.to.status_code)
                        .ok()
                        .and_then(|s| StatusCode::from_u16(s).ok())
                        .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                    gyre::ConnectErrorResponse::new(t.code, status, t.to.body.clone())
                })
                .collect(),
        );
    }
    c
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
