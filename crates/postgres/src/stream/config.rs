//! Settings of [`PgStreamBroker`](super::PgStreamBroker): Centrifugo's
//! `broker.postgres.*` keys with their defaults.

use std::time::Duration;

/// Settings of the PostgreSQL stream broker (`broker.postgres.*` in Centrifugo).
///
/// ```
/// use gyre_postgres::stream::PgStreamConfig;
/// let mut config = PgStreamConfig::new("postgres://postgres@127.0.0.1/test");
/// config.num_shards = 2;
/// assert_eq!(config.table_prefix, "cf");
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct PgStreamConfig {
    /// Connection string (URL or `key=value` form).
    pub dsn: String,
    /// Connections in the pool (default 16).
    pub pool_size: usize,
    /// Shards: channels hash to one, and each is polled on its own (default 8). Every
    /// node sharing the tables must use the same number.
    pub num_shards: u16,
    /// How often expired meta and idempotency rows are deleted and partitions are
    /// maintained (default 1 minute).
    pub cleanup_interval: Duration,
    /// How long an idempotency key is remembered when the publish does not say
    /// (default 5 minutes).
    pub idempotent_result_ttl: Duration,
    /// Payloads as BYTEA (`<prefix>_binary_stream`) instead of JSONB (`<prefix>_stream`,
    /// the default, which accepts only JSON payloads).
    pub binary_data: bool,
    /// Stream meta TTL when neither the publish nor [`history_meta_ttl`](Self::history_meta_ttl)
    /// gives one (default 24 hours).
    pub stream_retention: Duration,
    /// The node-wide history meta TTL (`channel.history_meta_ttl`); `None` falls back
    /// to [`stream_retention`](Self::stream_retention).
    pub history_meta_ttl: Option<Duration>,
    /// LISTEN on the notify channel to poll as soon as something is published
    /// (default false: poll on the interval only).
    pub use_notify: bool,
    /// A separate connection string for LISTEN (e.g. bypassing a transaction pooler).
    pub notify_dsn: Option<String>,
    /// Prefix of every table and function (default `cf`).
    pub table_prefix: String,
    /// Do not create the tables and functions at start.
    pub skip_schema_init: bool,
    /// How often each shard is polled (default 100ms).
    pub poll_interval: Duration,
    /// Rows read per poll (default 1000).
    pub batch_size: i64,
    /// Daily partitions created ahead (default 2).
    pub partition_lookahead_days: u32,
    /// Daily partitions kept before they are dropped (default 7; 0 keeps them all).
    pub partition_retention_days: u32,
}

impl PgStreamConfig {
    /// Defaults for the database at `dsn`.
    pub fn new(dsn: impl Into<String>) -> Self {
        PgStreamConfig {
            dsn: dsn.into(),
            pool_size: 16,
            num_shards: 8,
            cleanup_interval: Duration::from_secs(60),
            idempotent_result_ttl: Duration::from_secs(300),
            binary_data: false,
            stream_retention: Duration::from_secs(24 * 3600),
            history_meta_ttl: None,
            use_notify: false,
            notify_dsn: None,
            table_prefix: "cf".to_owned(),
            skip_schema_init: false,
            poll_interval: Duration::from_millis(100),
            batch_size: 1000,
            partition_lookahead_days: 2,
            partition_retention_days: 7,
        }
    }

    /// Zero and empty values mean "the default", as in Centrifugo's configuration.
    pub(crate) fn normalized(mut self) -> Self {
        let d = PgStreamConfig::new(String::new());
        if self.pool_size == 0 {
            self.pool_size = d.pool_size;
        }
        if self.num_shards == 0 {
            self.num_shards = d.num_shards;
        }
        if self.cleanup_interval.is_zero() {
            self.cleanup_interval = d.cleanup_interval;
        }
        if self.idempotent_result_ttl.is_zero() {
            self.idempotent_result_ttl = d.idempotent_result_ttl;
        }
        if self.stream_retention.is_zero() {
            self.stream_retention = d.stream_retention;
        }
        self.table_prefix = self.table_prefix.trim_end_matches('_').to_owned();
        if self.table_prefix.is_empty() {
            self.table_prefix = d.table_prefix;
        }
        if self.poll_interval.is_zero() {
            self.poll_interval = d.poll_interval;
        }
        if self.batch_size <= 0 {
            self.batch_size = d.batch_size;
        }
        if self.partition_lookahead_days == 0 {
            self.partition_lookahead_days = d.partition_lookahead_days;
        }
        self
    }
}
