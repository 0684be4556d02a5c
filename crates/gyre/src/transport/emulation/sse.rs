//! `GET`/`POST /connection/sse`.

use std::sync::Arc;

use bytes::Bytes;
use http::{Method, StatusCode};
use hyper::body::Body;

use super::config::{StreamConfig, body_limit};
use super::request::{self, Framing};
use super::stream::{self, ResponseBody, StreamParams};
use crate::Node;
use crate::transport::{Protocol, SessionFactory, TransportInfo};

/// Query parameter of a `GET` that carries the first commands (browsers' `EventSource`
/// cannot send a body).
pub(super) const CONNECT_PARAM: &str = "cf_connect";

/// The line written as soon as the stream opens, so that proxies and clients see the
/// response start before the first event.
const PRELUDE: &[u8] = b"\r\n";

/// The bidirectional server-sent events endpoint (`/connection/sse`, JSON only) as a
/// tower `Service`. Commands after the first ones reach the connection through an
/// [`EmulationHandler`](crate::EmulationHandler) on any node of the cluster.
///
/// `GET` takes the first commands (connect) from the `cf_connect` query parameter,
/// `POST` from its body; each reply or push is one `data:` event.
///
/// ```no_run
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// use gyre::{Node, SseHandler, StreamConfig};
/// let node = Node::builder().build();
/// node.run().await?;
/// let sse = SseHandler::new(node.clone(), StreamConfig::default());
/// // axum::Router::new().route_service("/connection/sse", sse)
/// # let _ = sse; Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct SseHandler {
    node: Node,
    config: Arc<StreamConfig>,
}

impl SseHandler {
    /// A handler feeding connections to `node`.
    pub fn new(node: Node, config: StreamConfig) -> Self {
        SseHandler {
            node,
            config: Arc::new(config),
        }
    }

    /// Answers one request: the event stream of a new connection, or an error status.
    pub async fn handle<B>(&self, request: http::Request<B>) -> http::Response<ResponseBody>
    where
        B: Body,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let (parts, body) = request.into_parts();
        let first = if parts.method == Method::GET {
            drop(body);
            let value = parts
                .uri
                .query()
                .and_then(|q| request::query_param(q, CONNECT_PARAM))
                .filter(|v| !v.is_empty());
            match value {
                Some(v) => Bytes::from(v),
                None => return request::status(StatusCode::BAD_REQUEST),
            }
        } else if parts.method == Method::POST {
            match request::read_body(body, body_limit(self.config.max_request_body_size)).await {
                Ok(b) => b,
                Err(response) => return response,
            }
        } else {
            return request::status(StatusCode::METHOD_NOT_ALLOWED);
        };
        let params = StreamParams {
            protocol: Protocol::Json,
            framing: Framing::Sse,
            write_timeout: self.config.write_timeout,
        };
        let info = TransportInfo {
            name: "sse",
            protocol: Protocol::Json,
            emulation: true,
            unidirectional: false,
            native_ping_pong: false,
        };
        let prelude = Some(Bytes::from_static(PRELUDE));
        let body = match self.node.new_session(info, &parts) {
            Ok(session) => stream::open(session, first, prelude, params),
            Err(d) => stream::refused(&d, prelude, params),
        };
        request::stream_response("text/event-stream; charset=utf-8", body)
    }
}

super::service_via_handle!(SseHandler);
