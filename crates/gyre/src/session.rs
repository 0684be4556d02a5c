//! The contract between a transport and the session it carries.
//!
//! Transports (WebSocket, SSE, …) sit above the node and the client; the client only
//! knows this contract, so it never imports a transport. The node implements
//! [`SessionFactory`], the client's session implements [`Session`].

use std::future::Future;
use std::sync::Arc;

use bytes::Bytes;
use gyre_protocol::{Disconnect, Protocol, proto};

use crate::queue::Outbound;

/// What a session needs to know about the transport that carries it.
#[derive(Debug, Clone)]
pub(crate) struct TransportInfo {
    /// `"websocket"`, `"sse"`, `"http_stream"`, …
    pub(crate) name: &'static str,
    /// Encoding of this connection, fixed for its life.
    pub(crate) protocol: Protocol,
    /// Emulated bidirectional transport (SSE / HTTP-streaming + `/emulation`).
    pub(crate) emulation: bool,
    /// Server-to-client only.
    pub(crate) unidirectional: bool,
    /// The transport itself pings (WebSocket `cf_ws_frame_ping_pong=true`): the session
    /// must not send protocol-level pings nor expect pongs.
    pub(crate) native_ping_pong: bool,
}

/// The session side of a connection, as a transport drives it.
///
/// Cloning is cheap (an `Arc`); futures returned here are `'static` so a transport can
/// keep one in flight while it goes on writing.
pub(crate) trait Session: Clone + Send + Sync + 'static {
    /// Where replies and pushes for this connection are queued.
    fn outbound(&self) -> &Arc<Outbound>;

    /// Handles one inbound transport message (it may hold several commands, handled in
    /// order). `Err` means: close the connection with this disconnect.
    fn handle_message(
        &self,
        data: Bytes,
    ) -> impl Future<Output = Result<(), Disconnect>> + Send + 'static;

    /// Handles the connect request of a unidirectional connection (which sends no
    /// commands): on success the `connect` push is queued first.
    fn connect_unidirectional(
        &self,
        request: proto::ConnectRequest,
    ) -> impl Future<Output = Result<(), ConnectRefused>> + Send + 'static;

    /// When [`Session::on_timer`] should run next (ping, pong check, stale check,
    /// expiry). `None` = no timer. Re-read after every event: it changes.
    fn next_deadline(&self) -> Option<tokio::time::Instant>;

    /// Runs the timer actions that are due. `Err` = close with this disconnect.
    fn on_timer(&self) -> impl Future<Output = Result<(), Disconnect>> + Send + 'static;

    /// Called exactly once when the connection is gone, with why it went.
    fn finish(self, disconnect: Disconnect) -> impl Future<Output = ()> + Send + 'static;
}

/// Why a unidirectional connect was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ConnectRefused {
    /// The refusal as the application gave it: an error code or a disconnect code (what
    /// `connect_code_to_http_response` matches on).
    pub(crate) code: u32,
    /// The error message or the disconnect reason.
    pub(crate) message: String,
    /// How the connection closes (errors mapped to disconnect codes, as upstream).
    pub(crate) disconnect: Disconnect,
}

/// Makes sessions for new connections (implemented by the node).
pub(crate) trait SessionFactory: Send + Sync + 'static {
    /// The session type.
    type Session: Session;

    /// A session for a connection that has just been accepted. `Err` = refuse it (the
    /// transport still completes the handshake and closes with the disconnect, e.g. 3001
    /// while the node shuts down).
    fn new_session(
        &self,
        info: TransportInfo,
        request: &http::request::Parts,
    ) -> Result<Self::Session, Disconnect>;
}
