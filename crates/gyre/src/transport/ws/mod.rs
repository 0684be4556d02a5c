//! WebSocket transport: our own RFC 6455 server (handshake, framing, connection task).

mod config;
mod conn;
mod frame;
mod handshake;

pub(crate) use config::{OriginCheck, WsConfig};
