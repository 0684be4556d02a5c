//! Transports: how connections reach a client session: WebSocket (`ws/`), and the
//! bidirectional emulation over HTTP-streaming and SSE (`emulation/`).
//!
//! A transport owns the socket and one task per connection. It feeds every inbound
//! message to a [`Session`], writes what the session's [`Outbound`](crate::queue::Outbound) queue holds
//! (coalescing everything queued into one frame), fires the session's timers, and closes
//! with the [`Disconnect`](gyre_protocol::Disconnect) the session or the queue asks for.

mod emulation;
mod pump;
pub(crate) mod turns;
mod uni;
mod websocket;
pub(crate) mod ws;

pub(crate) use emulation::sse_connect_param;
pub use emulation::{
    EmulationConfig, EmulationHandler, HttpStreamHandler, ResponseBody, SseHandler, StreamConfig,
};
pub use uni::{
    ConnectErrorResponse, UniHttpStreamHandler, UniPushStream, UniPushStreamHandler, UniSseHandler,
    UniStreamConfig, UniWebSocketConfig, UniWebSocketHandler,
};
pub use websocket::{WebSocketConfig, WebSocketHandler};

/// Fuzz entry point of the unidirectional connect decoders.
pub(crate) fn uni_connect_fuzz(data: &[u8]) {
    uni::fuzz_connect(data);
}

pub(crate) use gyre_protocol::Protocol;

pub(crate) use crate::session::{Session, SessionFactory, TransportInfo};
