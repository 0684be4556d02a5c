//! `POST /emulation`: commands for a connection of an emulated transport.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use gyre_protocol::proto;
use http::{Method, StatusCode};
use hyper::body::Body;
use prost::Message as _;

use super::config::{EmulationConfig, body_limit};
use super::request;
use super::stream::ResponseBody;
use crate::Node;
use crate::node::SURVEY_EMULATION;
use crate::transport::{Protocol, Session};

/// How long the receiving node waits for the node holding the session to take a
/// forwarded request (upstream's survey timeout).
const FORWARD_TIMEOUT: Duration = Duration::from_secs(10);

/// The endpoint (`/emulation`) through which clients of [`HttpStreamHandler`] and
/// [`SseHandler`] send their commands after the first ones, as a tower `Service`.
///
/// The body is an `EmulationRequest`: JSON `{"node","session","data"}` with `data` the
/// newline-joined commands as a JSON string, or Protobuf with
/// `Content-Type: application/octet-stream`, `data` holding varint-delimited commands.
/// `node` and `session` come from the connect reply. Answers:
///
/// * 204 once the commands were handled (their replies go out on the connection's
///   stream); also when the session is not (or no longer) on its node, as upstream
///   does. A request naming another node of the cluster is forwarded to it over the
///   engine's control channel (a survey, as upstream) and answered once that node
///   handled the commands;
/// * 404 when `node` names no live node of the cluster; 500 when the forwarded request
///   could not be sent or was not answered within ten seconds;
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
            return request::status(forward(&self.node, req, protocol).await);
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

/// Hands `req` to the node it names and waits for that node's answer.
async fn forward(node: &Node, mut req: proto::EmulationRequest, protocol: Protocol) -> StatusCode {
    if !node.knows_node(&req.node) {
        tracing::debug!(node = %req.node, "emulation request for an unknown node");
        return StatusCode::NOT_FOUND;
    }
    if protocol == Protocol::Json {
        // Upstream carries JSON commands as the JSON string the client sent.
        let Ok(commands) = std::str::from_utf8(&req.data) else {
            return StatusCode::BAD_REQUEST;
        };
        match serde_json::to_vec(commands) {
            Ok(quoted) => req.data = Bytes::from(quoted),
            Err(_) => return StatusCode::BAD_REQUEST,
        }
    }
    let to = req.node.clone();
    let data = Bytes::from(req.encode_to_vec());
    match node
        .survey_node(&to, SURVEY_EMULATION, data, FORWARD_TIMEOUT)
        .await
    {
        // 204 whatever the code (non-zero: not taken), as upstream: the client learns of a
        // lost session from its stream.
        Ok(Some((code, _))) => {
            if code != 0 {
                tracing::debug!(node = %to, code, "forwarded emulation request not taken");
            }
            StatusCode::NO_CONTENT
        }
        Ok(None) => {
            tracing::warn!(node = %to, "no answer to a forwarded emulation request");
            StatusCode::INTERNAL_SERVER_ERROR
        }
        Err(e) => {
            tracing::warn!(node = %to, error = %e, "can't forward an emulation request");
            StatusCode::INTERNAL_SERVER_ERROR
        }
    }
}

super::service_via_handle!(EmulationHandler);
