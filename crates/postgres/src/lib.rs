//! PostgreSQL engines for [Gyre](gyre): the map broker ([`map::PgMapBroker`]).
//!
//! The tables, functions and notification channels are Centrifugo v6's (same names,
//! columns and semantics), so Gyre and Centrifugo nodes can share one database. Every
//! node polls the stream table (the outbox) to deliver changes, optionally woken early
//! by `LISTEN`/`NOTIFY`.

mod error;
pub mod map;
mod partition;
mod pool;
mod schema;

pub use error::PgError;
