//! `POST /connection/http_stream`.

use std::sync::Arc;

use http::{Method, StatusCode};
use hyper::body::Body;

use super::config::{StreamConfig, body_limit};
use super::request::{self, Framing};
use super::stream::{self, ResponseBody, StreamParams};
use crate::Node;
use crate::transport::{Protocol, SessionFactory, TransportInfo};

/// The bidirectional HTTP-streaming endpoint (`/connection/http_stream`) as a tower
/// `Service`, for clients that cannot use WebSocket. Commands after the first ones reach
/// the connection through an [`EmulationHandler`](crate::EmulationHandler) on any node of
/// the cluster.
///
/// The request body holds the first commands (connect), JSON or, with
/// `Content-Type: application/octet-stream`, Protobuf; the response streams the replies
/// and pushes, each JSON message followed by `\n`, Protobuf messages with their varint
/// length prefix.
///
/// ```no_run
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// use gyre::{EmulationConfig, EmulationHandler, HttpStreamHandler, Node, StreamConfig};
/// let node = Node::builder().build();
/// node.run().await?;
/// let stream = HttpStreamHandler::new(node.clone(), StreamConfig::default());
/// let emulation = EmulationHandler::new(node.clone(), EmulationConfig::default());
/// // axum::Router::new()
/// //     .route_service("/connection/http_stream", stream)
/// //     .route_service("/emulation", emulation)
/// # let _ = (stream, emulation); Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct HttpStreamHandler {
    node: Node,
    config: Arc<StreamConfig>,
}

impl HttpStreamHandler {
    /// A handler feeding connections to `node`.
    pub fn new(node: Node, config: StreamConfig) -> Self {
        HttpStreamHandler {
            node,
            config: Arc::new(config),
        }
    }

    /// Answers one request: the stream of a new connection, or an error status.
    pub async fn handle<B>(&self, request: http::Request<B>) -> http::Response<ResponseBody>
    where
        B: Body,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let (parts, body) = request.into_parts();
        if parts.method == Method::OPTIONS {
            return request::preflight();
        }
        if parts.method != Method::POST {
            return request::status(StatusCode::METHOD_NOT_ALLOWED);
        }
        let (protocol, framing, content_type) = if request::is_protobuf(&parts) {
            (
                Protocol::Protobuf,
                Framing::Protobuf,
                "application/octet-stream",
            )
        } else {
            (
                Protocol::Json,
                Framing::JsonLines,
                "text/plain; charset=utf-8",
            )
        };
        let first =
            match request::read_body(body, body_limit(self.config.max_request_body_size)).await {
                Ok(b) => b,
                Err(response) => return response,
            };
        let params = StreamParams {
            protocol,
            framing,
            write_timeout: self.config.write_timeout,
        };
        let info = TransportInfo {
            name: "http_stream",
            protocol,
            emulation: true,
            unidirectional: false,
            native_ping_pong: false,
        };
        let body = match self.node.new_session(info, &parts) {
            Ok(session) => stream::open(session, first, None, params),
            Err(d) => stream::refused(&d, None, params),
        };
        request::stream_response(content_type, body)
    }
}

super::service_via_handle!(HttpStreamHandler);
