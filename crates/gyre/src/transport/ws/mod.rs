//! WebSocket transport.
