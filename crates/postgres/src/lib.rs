//! PostgreSQL engines for [Gyre](gyre), sharing Centrifugo v6's tables, functions and
//! notification channels (same names, columns and semantics), so Gyre and Centrifugo
//! nodes can share one database:
//!
//! - [`map::PgMapBroker`]: the map broker (`map_broker.type: postgres`); every node polls
//!   the stream table (the outbox) to deliver changes, optionally woken early by
//!   `LISTEN`/`NOTIFY`;
//! - [`stream::PgStreamBroker`] (experimental, as in Centrifugo): the stream broker
//!   (`broker.type: postgres`) — publications with offsets, epoch and history,
//!   idempotency, versions and deltas, joins and leaves, delivered through an outbox;
//! - [`controller::PgController`] (experimental): the controller
//!   (`controller.type: postgres`) — node info, surveys and cross-node commands through a
//!   message table.
//!
//! Connections are plain TCP (no TLS).

pub mod controller;
mod error;
pub mod map;
mod partition;
mod pg;
mod pool;
mod schema;
pub mod stream;

pub use error::PgError;
