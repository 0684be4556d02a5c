//! Settings of the unidirectional transports. Defaults follow Centrifugo's
//! `uni_websocket.*`, `uni_sse.*` and `uni_http_stream.*`.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::transport::ws::OriginCheck;

/// Settings of the `uni_websocket` endpoint.
///
/// ```
/// use gyre::UniWebSocketConfig;
/// let mut config = UniWebSocketConfig::default().check_origin(|_request| true);
/// config.join_push_messages = true;
/// assert_eq!(config.message_size_limit, 65536);
/// ```
#[derive(Clone)]
#[non_exhaustive]
pub struct UniWebSocketConfig {
    /// Largest inbound message (the connect request) in bytes; exceeding it closes with
    /// 1009. With compression it counts the compressed bytes received.
    pub message_size_limit: usize,
    /// Negotiate permessage-deflate (RFC 7692, without context takeover) with clients
    /// that offer it.
    pub compression: bool,
    /// Compression level, 0 (stored) to 9 (best).
    pub compression_level: u32,
    /// Frames with a payload of at most this many bytes are sent uncompressed (0 =
    /// compress every frame).
    pub compression_min_size: usize,
    /// Largest inbound message once decompressed (0 = ten times `message_size_limit`);
    /// exceeding it closes with 1009.
    pub decompressed_message_size_limit: usize,
    /// How long one write may take before the client is dropped (3009).
    pub write_timeout: Duration,
    /// Put everything queued into one text frame, pushes separated by `\n`, instead of
    /// one frame per push.
    pub join_push_messages: bool,
    /// Close the TCP connection at once instead of sending a close frame and waiting for
    /// the client's.
    pub disable_closing_handshake: bool,
    /// Send no `disconnect` push before closing (the close frame still carries it).
    pub disable_disconnect_push: bool,
    /// Interval of WebSocket pings (the protocol's `{}` pings come in addition).
    pub ping_interval: Duration,
    /// How long after a ping the client may stay silent: the read deadline is
    /// `ping_interval + pong_timeout` after the last pong.
    pub pong_timeout: Duration,
    pub(crate) check_origin: Option<OriginCheck>,
}

impl Default for UniWebSocketConfig {
    fn default() -> Self {
        UniWebSocketConfig {
            message_size_limit: 65536,
            compression: false,
            compression_level: 1,
            compression_min_size: 0,
            decompressed_message_size_limit: 0,
            write_timeout: Duration::from_secs(1),
            join_push_messages: false,
            disable_closing_handshake: false,
            disable_disconnect_push: false,
            ping_interval: Duration::from_secs(25),
            pong_timeout: Duration::from_secs(10),
            check_origin: None,
        }
    }
}

impl UniWebSocketConfig {
    /// Decide which handshakes are allowed by their request (e.g. the `Origin` header).
    /// By default a request without `Origin`, or whose origin host equals `Host`, passes.
    pub fn check_origin(
        mut self,
        check: impl Fn(&http::request::Parts) -> bool + Send + Sync + 'static,
    ) -> Self {
        self.check_origin = Some(Arc::new(check));
        self
    }
}

impl fmt::Debug for UniWebSocketConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UniWebSocketConfig")
            .field("message_size_limit", &self.message_size_limit)
            .field("compression", &self.compression)
            .field("compression_level", &self.compression_level)
            .field("compression_min_size", &self.compression_min_size)
            .field(
                "decompressed_message_size_limit",
                &self.decompressed_message_size_limit,
            )
            .field("write_timeout", &self.write_timeout)
            .field("join_push_messages", &self.join_push_messages)
            .field("disable_closing_handshake", &self.disable_closing_handshake)
            .field("disable_disconnect_push", &self.disable_disconnect_push)
            .field("ping_interval", &self.ping_interval)
            .field("pong_timeout", &self.pong_timeout)
            .field(
                "check_origin",
                &self.check_origin.as_ref().map(|_| "custom"),
            )
            .finish()
    }
}

/// Settings of the `uni_sse` and `uni_http_stream` endpoints.
///
/// ```
/// use http::StatusCode;
/// use gyre::{ConnectErrorResponse, UniStreamConfig};
/// let mut config = UniStreamConfig::default();
/// // Refused connects answer an HTTP status instead of a `disconnect` push.
/// config.connect_error_responses =
///     Some(vec![ConnectErrorResponse::new(101, StatusCode::UNAUTHORIZED, "")]);
/// assert_eq!(config.max_request_body_size, 65536);
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct UniStreamConfig {
    /// Largest connect request body in bytes; a larger one is answered 413.
    pub max_request_body_size: usize,
    /// How long one write may wait for the client before it is dropped (3009).
    pub write_timeout: Duration,
    /// `None`: a refused connect still answers 200, with a `disconnect` push as the only
    /// message. `Some`: it answers the response whose `code` matches the refusal's error
    /// or disconnect code, or 500 when none does (Centrifugo's
    /// `connect_code_to_http_response`).
    pub connect_error_responses: Option<Vec<ConnectErrorResponse>>,
}

impl Default for UniStreamConfig {
    fn default() -> Self {
        UniStreamConfig {
            max_request_body_size: 65536,
            write_timeout: Duration::from_secs(1),
            connect_error_responses: None,
        }
    }
}

/// The HTTP answer to a connect refused with `code`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConnectErrorResponse {
    /// Error code (e.g. 101 unauthorized) or disconnect code of the refusal.
    pub code: u32,
    /// Status of the answer.
    pub status: http::StatusCode,
    /// Body of the answer; empty means the refusal's message or reason.
    pub body: String,
}

impl ConnectErrorResponse {
    /// Answer a refusal with `code` by `status` and `body`.
    pub fn new(code: u32, status: http::StatusCode, body: impl Into<String>) -> Self {
        ConnectErrorResponse {
            code,
            status,
            body: body.into(),
        }
    }
}
