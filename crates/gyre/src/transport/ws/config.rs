//! WebSocket transport settings.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use super::deflate::DeflateConfig;

/// Decides whether a handshake's `Origin` is acceptable.
pub(crate) type OriginCheck = Arc<dyn Fn(&http::request::Parts) -> bool + Send + Sync>;

/// Settings of the WebSocket transport. Defaults follow Centrifugo (`websocket.*`).
#[derive(Clone)]
pub(crate) struct WsConfig {
    /// Largest inbound message in bytes, after reassembly of fragments (0 = no limit).
    /// Exceeding it closes with 1009.
    pub(crate) message_size_limit: usize,
    /// How long one frame may take to reach the socket before the client is dropped with
    /// 3009 "write error".
    pub(crate) write_timeout: Duration,
    /// How many queued messages go into one frame (0 = everything queued).
    pub(crate) max_messages_in_frame: usize,
    /// Hold the first queued message this long before writing (zero = write at once).
    pub(crate) write_delay: Duration,
    /// Interval of transport-level pings for clients that ask for them with
    /// `cf_ws_frame_ping_pong=true`.
    pub(crate) native_ping_interval: Duration,
    /// How long after a missed pong such a client is dropped: the read deadline is
    /// `native_ping_interval + native_pong_timeout` after the last pong.
    pub(crate) native_pong_timeout: Duration,
    /// How long to wait for the client's close frame after the server sent its own.
    pub(crate) close_wait: Duration,
    /// Custom origin check; `None` = no `Origin` header, or its host equals `Host`.
    pub(crate) check_origin: Option<OriginCheck>,
    /// Offer permessage-deflate with these settings (`None` = never negotiate it).
    pub(crate) compression: Option<DeflateConfig>,
    /// Let the thread that broadcasts a publication write it to a quiet connection's
    /// socket itself (plain TCP, no compression, no write delay) instead of waking the
    /// connection's task.
    pub(crate) direct_writes: bool,
}

impl Default for WsConfig {
    fn default() -> Self {
        WsConfig {
            message_size_limit: 65536,
            write_timeout: Duration::from_secs(1),
            max_messages_in_frame: 0,
            write_delay: Duration::ZERO,
            native_ping_interval: Duration::from_secs(25),
            native_pong_timeout: Duration::from_secs(10),
            close_wait: Duration::from_secs(5),
            check_origin: None,
            compression: None,
            direct_writes: true,
        }
    }
}

impl fmt::Debug for WsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WsConfig")
            .field("message_size_limit", &self.message_size_limit)
            .field("write_timeout", &self.write_timeout)
            .field("max_messages_in_frame", &self.max_messages_in_frame)
            .field("write_delay", &self.write_delay)
            .field("native_ping_interval", &self.native_ping_interval)
            .field("native_pong_timeout", &self.native_pong_timeout)
            .field("close_wait", &self.close_wait)
            .field("compression", &self.compression)
            .field("direct_writes", &self.direct_writes)
            .field(
                "check_origin",
                &self.check_origin.as_ref().map(|_| "custom"),
            )
            .finish()
    }
}
