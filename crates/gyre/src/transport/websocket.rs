//! The public face of the WebSocket transport.

use std::convert::Infallible;
use std::fmt;
use std::future::Ready;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;

use super::ws::deflate::DeflateConfig;
use super::ws::{OriginCheck, WsConfig, WsHandler};
use crate::Node;

/// Settings of the WebSocket endpoint. Defaults follow Centrifugo's `websocket.*`.
///
/// ```
/// use gyre::WebSocketConfig;
/// let mut config = WebSocketConfig::default().check_origin(|_request| true);
/// assert_eq!(config.message_size_limit, 65536);
/// // Offer permessage-deflate; messages of 256 bytes or less go out as they are.
/// config.compression = true;
/// config.compression_min_size = 256;
/// ```
#[derive(Clone)]
#[non_exhaustive]
pub struct WebSocketConfig {
    /// Largest inbound message in bytes (0 = no limit); exceeding it closes with 1009.
    /// With compression it counts the compressed bytes received.
    pub message_size_limit: usize,
    /// How long one write may take before the client is dropped (3009).
    pub write_timeout: Duration,
    /// How many queued messages go into one frame (0 = everything queued).
    pub max_messages_in_frame: usize,
    /// Hold a connection's first queued message this long so that messages following it
    /// share its frame and its write (as upstream's `write_delay`). Zero writes at once;
    /// a millisecond or two trades that much latency for far fewer syscalls under load.
    pub write_delay: Duration,
    /// Negotiate permessage-deflate (RFC 7692) with clients that offer it, always without
    /// context takeover. Costs CPU; saves bandwidth on compressible messages.
    pub compression: bool,
    /// Compression level, 0 (stored) to 9 (best); 1 is the fastest that compresses.
    pub compression_level: u32,
    /// Frames with a payload of at most this many bytes are sent uncompressed (0 =
    /// compress every frame).
    pub compression_min_size: usize,
    /// Largest inbound message once decompressed, against decompression bombs (0 = ten
    /// times `message_size_limit`); exceeding it closes with 1009.
    pub decompressed_message_size_limit: usize,
    /// Keep the compressed form of recent messages per thread so that a publication is
    /// compressed once per thread rather than once per subscriber (on by default). Off
    /// only to measure what the cache saves.
    #[doc(hidden)]
    pub compression_cache: bool,
    /// Let the thread broadcasting a publication write it to a quiet connection's socket
    /// itself instead of waking the connection's task (on by default; plain TCP without
    /// compression or write delay). Off only to measure what it saves.
    #[doc(hidden)]
    pub direct_writes: bool,
    check_origin: Option<OriginCheck>,
}

impl Default for WebSocketConfig {
    fn default() -> Self {
        let ws = WsConfig::default();
        WebSocketConfig {
            message_size_limit: ws.message_size_limit,
            write_timeout: ws.write_timeout,
            max_messages_in_frame: ws.max_messages_in_frame,
            write_delay: ws.write_delay,
            compression: false,
            compression_level: 1,
            compression_min_size: 0,
            decompressed_message_size_limit: 0,
            compression_cache: true,
            direct_writes: ws.direct_writes,
            check_origin: None,
        }
    }
}

impl fmt::Debug for WebSocketConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebSocketConfig")
            .field("message_size_limit", &self.message_size_limit)
            .field("write_timeout", &self.write_timeout)
            .field("max_messages_in_frame", &self.max_messages_in_frame)
            .field("write_delay", &self.write_delay)
            .field("compression", &self.compression)
            .field("compression_level", &self.compression_level)
            .field("compression_min_size", &self.compression_min_size)
            .field(
                "decompressed_message_size_limit",
                &self.decompressed_message_size_limit,
            )
            .field(
                "check_origin",
                &self.check_origin.as_ref().map(|_| "custom"),
            )
            .finish()
    }
}

impl WebSocketConfig {
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

/// The bidirectional WebSocket endpoint (`/connection/websocket`) as a tower `Service`.
///
/// Mount it in axum with `Router::route_service`, or serve it with hyper's HTTP/1
/// connection `.with_upgrades()` (the leanest path: the connection then owns the raw TCP
/// socket).
///
/// ```no_run
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// use gyre::{Node, WebSocketConfig, WebSocketHandler};
/// let node = Node::builder().build();
/// node.run().await?;
/// let ws = WebSocketHandler::new(node.clone(), WebSocketConfig::default());
/// // axum::Router::new().route_service("/connection/websocket", ws)
/// # let _ = ws; Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct WebSocketHandler {
    inner: WsHandler<Node>,
}

impl WebSocketHandler {
    /// A handler feeding connections to `node`.
    pub fn new(node: Node, config: WebSocketConfig) -> Self {
        let ws = WsConfig {
            message_size_limit: config.message_size_limit,
            write_timeout: config.write_timeout,
            max_messages_in_frame: config.max_messages_in_frame,
            write_delay: config.write_delay,
            compression: config.compression.then(|| DeflateConfig {
                cache: config.compression_cache,
                ..DeflateConfig::new(
                    config.compression_level,
                    config.compression_min_size,
                    config.decompressed_message_size_limit,
                    config.message_size_limit,
                )
            }),
            check_origin: config.check_origin,
            direct_writes: config.direct_writes,
            ..WsConfig::default()
        };
        WebSocketHandler {
            inner: WsHandler::new(Arc::new(node), ws),
        }
    }
}

impl<B> tower_service::Service<http::Request<B>> for WebSocketHandler {
    type Response = http::Response<Full<Bytes>>;
    type Error = Infallible;
    type Future = Ready<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        std::future::ready(Ok(self.inner.handle(request)))
    }
}
