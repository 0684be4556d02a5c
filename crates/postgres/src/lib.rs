//! PostgreSQL engines for Gyre (experimental, as in Centrifugo v6).
//!
//! - [`stream::PgStreamBroker`]: the stream broker (`broker.type: postgres`) —
//!   publications with offsets, epoch and history, idempotency, versions and deltas,
//!   joins and leaves, delivered to every node through an outbox table;
//! - [`controller::PgController`]: the controller (`controller.type: postgres`) — node
//!   info, surveys and cross-node commands through a message table.
//!
//! Tables and functions carry Centrifugo's names (`cf_stream_*`, `cf_controller_*`), so
//! Gyre and Centrifugo can share a database. Connections are plain TCP (no TLS).

pub mod controller;
mod pg;
pub mod stream;
