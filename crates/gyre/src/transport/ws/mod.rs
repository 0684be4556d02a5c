//! WebSocket transport: our own RFC 6455 server (handshake, framing, connection task).
//!
//! * `frame` — sans-IO parser and frame writer (fuzz entry point: `frame::parse_all`);
//! * `handshake` — upgrade validation, encoding and subprotocol selection, origin check;
//! * `deflate` — permessage-deflate negotiation and the per-thread (de)compressor;
//! * `conn` — the one task per connection that drives a [`Session`](super::Session);
//! * `direct` — the socket shared with producers that write single frames themselves;
//! * `handler` — [`WsHandler`], the tower `Service` mounted on the HTTP server.

mod config;
mod conn;
pub(crate) mod deflate;
mod direct;
pub(crate) mod frame;
mod handler;
pub(crate) mod handshake;
#[cfg(test)]
mod tests;

pub(crate) use config::{OriginCheck, WsConfig};
pub(crate) use handler::WsHandler;
