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
