//! `POST /emulation`: commands for a connection of an emulated transport.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::{Method, StatusCode};
use hyper::body::Body;

use super::config::{EmulationConfig, body_limit};
use super::request;
use super::stream::ResponseBody;
use crate::Node;
use crate::transport::{Protocol, Session};

/// The endpoint (`/emulation`) through which clients of [`HttpStreamHandler`] and
/// [`SseHandler`] send their commands after the first ones, as a tower `Service`.
///
/// The body is an `EmulationRequest`: JSON `{"node","session","data"}` with `data` the
/// newline-joined commands as a JSON string, or Protobuf with
/// `Content-Type: application/octet-stream`, `data` holding varint-delimited commands.
/// `node` and `session` come from the connect reply. Answers:
///
/// * 204 once the commands were handled (their replies go out on the connection's
///   stream); also when the session is not (or no longer) on this node, as upstream
///   does;
/// * 404 when `node` names another node: the request must reach the node that holds the
///   stream;
/// * 400 for a body that does not decode, 413 for one over the limit, 405 for a method
///   other than `POST` (and `OPTIONS`, answered for browsers' pre-flight).
///
/// [`HttpStreamHandler`]: crate::HttpStreamHandler
/// [`SseHandler`]: crate::SseHandler
#[derive(Clone, Debug)]
pub struct EmulationHandler {
    node: Node,
    config: Arc<EmulationConfig>,
}

impl EmulationHandler {
    /// A handler for the connections of `node`.
    pub fn new(node: Node, config: EmulationConfig) -> Self {
        EmulationHandler {
            node,
            config: Arc::new(config),
        }
    }

    /// Answers one request.
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
        let body =
            match request::read_body(body, body_limit(self.config.max_request_body_size)).await {
                Ok(b) => b,
                Err(response) => return response,
            };
        let protocol = if request::is_protobuf(&parts) {
            Protocol::Protobuf
        } else {
            Protocol::Json
        };
        let req = match gyre_protocol::decode_emulation_request(protocol, body) {
            Ok(r) => r,
            Err(e) => {
                tracing::debug!(error = %e, "can't decode emulation request");
                return request::status(StatusCode::BAD_REQUEST);
            }
        };
        if req.node != self.node.id() {
            tracing::debug!(node = %req.node, "emulation request for another node");
            return request::status(StatusCode::NOT_FOUND);
        }
        let Some(session) = self.node.emulation_session(&req.session) else {
            // Upstream answers the same: the client learns of a lost session from its
            // stream, not from here.
            tracing::debug!("emulation request for an unknown session");
            return request::status(StatusCode::NO_CONTENT);
        };
        if session.protocol() != protocol {
            return request::status(StatusCode::BAD_REQUEST);
        }
        if !req.data.is_empty()
            && let Err(d) = session.handle_message(req.data).await
        {
            session.outbound().close(d);
        }
        request::status(StatusCode::NO_CONTENT)
    }
}

impl<B> tower_service::Service<http::Request<B>> for EmulationHandler
where
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Response = http::Response<ResponseBody>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let this = self.clone();
        Box::pin(async move { Ok(this.handle(request).await) })
    }
}
