//! Settings of the PostgreSQL map broker (Centrifugo's `map_broker.postgres.*`).

use std::time::Duration;

/// Settings of a [`PgMapBroker`](super::PgMapBroker); [`PgMapBrokerConfig::new`] gives
/// Centrifugo's defaults.
///
/// ```
/// let mut config = gyre_postgres::map::PgMapBrokerConfig::new("postgres://localhost/app");
/// config.use_notify = true;
/// assert_eq!(config.num_shards, 8);
/// assert_eq!(config.table_prefix, "cf");
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct PgMapBrokerConfig {
    /// Connection string (`postgres://user:pass@host:port/db` or `key=value` form).
    pub dsn: String,
    /// A separate connection string for the `LISTEN` connection (e.g. past a
    /// transaction-pooling PgBouncer, which cannot `LISTEN`); `None` = `dsn`.
    pub notify_dsn: Option<String>,
    /// Most connections open at once (default 16).
    pub pool_size: usize,
    /// Channels are spread over this many shards, each polled by its own worker
    /// (default 8). Every node sharing the database must use the same number.
    pub num_shards: u16,
    /// How often keys past their TTL are looked for (default 1s).
    pub ttl_check_interval: Duration,
    /// How often expired channel meta, idempotency results and old partitions are
    /// removed (default 1 minute).
    pub cleanup_interval: Duration,
    /// How long idempotency results are kept when a publish sets none (default 5 minutes).
    pub idempotent_result_ttl: Duration,
    /// Keep data in BYTEA columns (the `<prefix>_binary_map_` tables) instead of JSONB
    /// (`<prefix>_map_`); needed for payloads that are not JSON.
    pub binary_data: bool,
    /// Wake the pollers with `LISTEN`/`NOTIFY` instead of waiting for the next poll.
    pub use_notify: bool,
    /// Prefix of every table, function and notification channel (default `cf`).
    pub table_prefix: String,
    /// Do not create or check the schema at start (it is managed elsewhere).
    pub skip_schema_init: bool,
    /// How often each shard is polled when idle (default 100ms).
    pub poll_interval: Duration,
    /// Most stream rows delivered per poll (default 1000).
    pub batch_size: usize,
    /// Daily stream partitions created ahead of today (default 2).
    pub partition_lookahead_days: u32,
    /// Stream partitions older than this many days are dropped; 0 keeps all (default 7).
    pub partition_retention_days: u32,
    /// Most rows deleted per statement by the cleanup (default 1000).
    pub cleanup_batch_size: usize,
}

impl PgMapBrokerConfig {
    /// Upstream defaults for a database.
    pub fn new(dsn: impl Into<String>) -> Self {
        PgMapBrokerConfig {
            dsn: dsn.into(),
            notify_dsn: None,
            pool_size: 16,
            num_shards: 8,
            ttl_check_interval: Duration::from_secs(1),
            cleanup_interval: Duration::from_secs(60),
            idempotent_result_ttl: Duration::from_secs(5 * 60),
            binary_data: false,
            use_notify: false,
            table_prefix: "cf".to_owned(),
            skip_schema_init: false,
            poll_interval: Duration::from_millis(100),
            batch_size: 1000,
            partition_lookahead_days: 2,
            partition_retention_days: 7,
            cleanup_batch_size: 1000,
        }
    }
}
