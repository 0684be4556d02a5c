//! Errors of connecting and of schema set-up. Broker operations report
//! [`gyre::BrokerError`]s.

use gyre::{BrokerError, EngineError};

/// Why a PostgreSQL engine could not start or an operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PgError {
    /// The configuration cannot work (a bad DSN, table prefix, shard count).
    #[error("bad configuration: {0}")]
    Config(String),
    /// The database refused or failed.
    #[error("postgresql: {0}")]
    Db(#[from] tokio_postgres::Error),
    /// The database holds a schema this version cannot use.
    #[error("schema: {0}")]
    Schema(String),
    /// The engine was shut down.
    #[error("closed")]
    Closed,
}

impl From<PgError> for BrokerError {
    fn from(e: PgError) -> Self {
        match e {
            PgError::Closed => BrokerError::Closed,
            PgError::Config(m) => BrokerError::BadRequest(m),
            // Data the database refuses (not JSON in a JSONB column, a TTL combination the
            // functions reject) is the caller's mistake, not an outage.
            PgError::Db(e) if refused_input(&e) => BrokerError::BadRequest(
                e.as_db_error()
                    .map_or_else(|| e.to_string(), |d| d.message().to_owned()),
            ),
            e => BrokerError::Unavailable(EngineError::with_context("postgresql", e)),
        }
    }
}

fn refused_input(e: &tokio_postgres::Error) -> bool {
    e.code().is_some_and(|c| {
        c.code().starts_with("22") || *c == tokio_postgres::error::SqlState::RAISE_EXCEPTION
    })
}
