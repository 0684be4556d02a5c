//! `gyre-bench`: load and benchmark tool for Gyre and any Centrifugo v6 compatible
//! server, with a reference "limit" server so that every figure can be quoted as a
//! ratio to what a trivial coalescing broadcast server achieves in the same run.
//!
//! Scenarios: `fanout`, `latency`, `many-channels` (publish/subscribe through
//! [`load`], publishing over the HTTP API ([`api`]), the gRPC API ([`grpc`]) or client
//! connections), `idle` and `connect` ([`conns`]); servers: `reference` ([`reference`](mod@reference))
//! and `gyre-server` ([`gyre_server`]); `connect-proxy-backend` answers a server's
//! connect proxy ([`proxy_backend`]); `compare` runs a scenario against two servers
//! alternately ([`compare`]); `chaos` checks for lost publications under injected
//! faults on a cluster it starts itself ([`chaos`]).
//!
//! The bench clients are bare WebSocket connections ([`ws`]) using `gyre-protocol` for
//! encoding, one task per connection ([`client`]); subscribers may use HTTP-streaming or
//! SSE instead ([`emulated`]). Every inbound frame is split into
//! its messages ([`frame::split`]) so batched deliveries are counted exactly once.

pub mod api;
pub mod chaos;
pub mod cli;
pub mod client;
pub mod compare;
pub mod conns;
pub mod emulated;
pub mod frame;
pub mod grpc;
pub mod gyre_server;
pub mod load;
pub mod plot;
pub mod proxy_backend;
pub mod reference;
pub mod stats;
pub mod ws;

/// Entry points for the fuzz targets (not part of the tool's interface).
#[doc(hidden)]
pub mod __fuzz {
    use bytes::Bytes;
    use gyre_protocol::Protocol;

    use crate::ws::{Event, FrameReader};

    /// Server bytes as the bench client reads them: cut into WebSocket frames (fed in
    /// two pieces, split where the first byte says), and every message read as a JSON and
    /// as a Protobuf frame of replies and pushes.
    pub fn server_bytes(data: &[u8]) {
        let split = usize::from(data.first().copied().unwrap_or(0)).min(data.len());
        let mut reader = FrameReader::default();
        reader.feed(&data[..split]);
        let mut fed_all = false;
        loop {
            match reader.parse() {
                Ok(Some(Event::Data(payload))) => scan_both(&payload),
                Ok(Some(Event::Close(..))) | Err(_) => return,
                Ok(None) if reader.take_pong().is_some() => {}
                Ok(None) if !fed_all => {
                    reader.feed(&data[split..]);
                    fed_all = true;
                }
                Ok(None) => return,
            }
        }
    }

    fn scan_both(payload: &Bytes) {
        for protocol in [Protocol::Json, Protocol::Protobuf] {
            let _ = crate::frame::scan(protocol, payload, |_| {});
        }
    }
}
