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
    if config.http_stream.enabled {
        let stream = gyre::HttpStreamHandler::new(
            app.node.clone(),
            stream_config(config.http_stream.max_request_body_size),
        );
        let route = connection_route(app, move |r| {
            let stream = stream.clone();
            async move { stream.handle(r).await }
        });
        external = external.route(&config.http_stream.handler_prefix, route);
    }
    if config.sse.enabled {
        let sse = gyre::SseHandler::new(
            app.node.clone(),
            stream_config(config.sse.max_request_body_size),
        );
        let route = connection_route(app, move |r| {
            let sse = sse.clone();
            async move { sse.handle(r).await }
        });
        external = external.route(&config.sse.handler_prefix, route);
    }
    if config.http_stream.enabled || config.sse.enabled {
        let mut emulation_config = gyre::EmulationConfig::default();
        emulation_config.max_request_body_size =
            config.emulation.max_request_body_size.max(0) as usize;
        let emulation = gyre::EmulationHandler::new(app.node.clone(), emulation_config);
        let cors = OriginCheck::new(&config.client.allowed_origins);
        external = external.route(
            &config.emulation.handler_prefix,
            any(move |request: http::Request<Body>| {
                let emulation = emulation.clone();
                let cors = cors.clone();
                async move {
                    let headers = cors_headers(&cors, &request);
                    with_headers(emulation.handle(request).await, headers)
                }
            }),
        );
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
    if config.admin.enabled {
        let same_router = !separate_internal || config.admin.external == config.http_api.external;
        let api_at_root = !config.http_api.disabled
            && config
                .http_api
                .handler_prefix
                .trim_end_matches('/')
                .is_empty()
            && same_router;
        let admin = crate::admin::router(app, api_at_root);
        if config.admin.external {
            external = external.merge(admin);
        } else {
            internal = internal.merge(admin);
        }
    }
    if config.health.enabled {
        internal = internal.route(
            &config.health.handler_prefix,
            get(|| async { ([(http::header::CONTENT_TYPE, "application/json")], "{}") }),
        );
    }

    if config.prometheus.enabled {
        let app = app.clone();
        internal = internal.route(
            &config.prometheus.handler_prefix,
            get(move || {
                let app = app.clone();
                async move {
                    let out = crate::metrics::render(&app);
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

    let mut routers = if separate_internal {
        Routers {
            external,
            internal: Some(internal),
        }
    } else {
        Routers {
            external: external.merge(internal),
            internal: None,
        }
    };
    if config.prometheus.enabled && config.prometheus.instrument_http_handlers {
        // A route layer runs after routing, so the middleware sees the matched pattern;
        // the fallback goes in first so that unmatched requests are counted too.
        let instrument =
            axum::middleware::from_fn_with_state(app.clone(), crate::metrics::instrument);
        routers.external = std::mem::take(&mut routers.external)
            .fallback(not_found)
            .layer(instrument.clone());
        routers.internal = routers
            .internal
            .take()
            .map(|r| r.fallback(not_found).layer(instrument));
    }
    routers
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
    let c = &config.websocket;
    ws_config.compression = c.compression;
    ws_config.compression_level = compression_level(c.compression_level);
    ws_config.compression_min_size = c.compression_min_size.max(0) as usize;
    ws_config.decompressed_message_size_limit = c.decompressed_message_size_limit.max(0) as usize;
    // Measurement switch (BENCHMARKS.md): the same binary with and without broadcasts
    // writing to quiet sockets themselves. Not a setting: there is no reason to turn it off.
    if std::env::var_os("GYRE_NO_DIRECT_WRITES").is_some() {
        ws_config.direct_writes = false;
    }
    let handler = gyre::WebSocketHandler::new(app.node.clone(), ws_config);
    limited(app, handler)
}

/// Upstream's `compression_level` follows Go's `compress/flate` numbering (-1 the default
/// level 6, -2 Huffman only, closest to our level 1) as a zlib level 0–9.
fn compression_level(level: i64) -> u32 {
    match level {
        -1 => 6,
        i64::MIN..=-2 => 1,
        0..=9 => level as u32,
        _ => 9,
    }
}

/// The 503 for a connection attempt over `client.connection_rate_limit` or
/// `client.connection_limit`, checked in that order as upstream does; `None` admits it.
/// The limit is read from the configuration in force (a reload changes it).
fn admit(app: &App) -> Option<Response> {
    use super::connlimit::{Refusal, log_refusal};
    let client = &app.config().client;
    let refusal = if app.connection_rate.as_ref().is_some_and(|r| !r.allow()) {
        log_refusal(Refusal::Rate, client.connection_rate_limit);
        Refusal::Rate
    } else {
        let limit = client.connection_limit.max(0) as usize;
        if limit == 0 || app.node.info().num_clients < limit {
            return None;
        }
        app.http_metrics.connection_limit.inc();
        log_refusal(Refusal::Limit, client.connection_limit);
        Refusal::Limit
    };
    Some((StatusCode::SERVICE_UNAVAILABLE, refusal.reason()).into_response())
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
    let app = app.clone();
    any(move |request: http::Request<Body>| {
        let mut handler = handler.clone();
        let app = app.clone();
        async move {
            if let Some(refused) = admit(&app) {
                return refused;
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
    uni.compression = c.compression;
    uni.compression_level = compression_level(c.compression_level);
    uni.compression_min_size = c.compression_min_size.max(0) as usize;
    uni.decompressed_message_size_limit = c.decompressed_message_size_limit.max(0) as usize;
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

/// Settings of a streaming endpoint from its body limit; the write timeout stays the
/// library's one second, which is Centrifugo's fixed value for streams.
fn stream_config(max_request_body_size: i64) -> gyre::StreamConfig {
    let mut stream = gyre::StreamConfig::default();
    stream.max_request_body_size = max_request_body_size.max(0) as usize;
    stream
}

/// An HTTP-streaming or SSE endpoint behind the node-wide connection limit (503) and
/// Centrifugo's CORS answer for `client.allowed_origins`.
fn connection_route<F, Fut>(app: &App, handle: F) -> axum::routing::MethodRouter
where
    F: Fn(http::Request<Body>) -> Fut + Clone + Send + Sync + 'static,
    Fut: std::future::Future<Output = http::Response<gyre::ResponseBody>> + Send,
{
    let config = app.config();
    let cors = OriginCheck::new(&config.client.allowed_origins);
    let app = app.clone();
    any(move |request: http::Request<Body>| {
        let handle = handle.clone();
        let app = app.clone();
        let cors = cors.clone();
        async move {
            let headers = cors_headers(&cors, &request);
            if let Some(refused) = admit(&app) {
                return refused;
            }
            with_headers(handle(request).await, headers)
        }
    })
}

/// CORS headers for a request whose `Origin` is allowed, as Centrifugo's middleware sets
/// them: the origin itself, credentials allowed, and the requested headers echoed. A
/// request from an origin not allowed is still served, without them (the browser then
/// keeps the answer from the page).
fn cors_headers(check: &OriginCheck, request: &http::Request<Body>) -> http::HeaderMap {
    use http::header;
    let mut out = http::HeaderMap::new();
    let origin = request.headers().get(header::ORIGIN);
    let Some(origin) = origin else { return out };
    if !check.allows(origin.to_str().ok()) {
        return out;
    }
    out.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
    out.insert(
        header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
        http::HeaderValue::from_static("true"),
    );
    if let Some(requested) = request
        .headers()
        .get(header::ACCESS_CONTROL_REQUEST_HEADERS)
        .filter(|v| !v.is_empty() && v.as_bytes() != b"null")
    {
        out.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, requested.clone());
    }
    out
}

fn with_headers(
    response: http::Response<gyre::ResponseBody>,
    headers: http::HeaderMap,
) -> Response {
    let mut response = response.map(Body::new);
    response.headers_mut().extend(headers);
    response
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
