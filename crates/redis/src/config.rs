//! Configuration of the Redis engine.

use std::time::Duration;

/// Where Redis is and how to use it. Start from [`RedisConfig::new`] (one instance),
/// [`RedisConfig::sharded`], [`RedisConfig::sentinel`] or [`RedisConfig::cluster`] and
/// adjust fields; defaults follow Centrifugo (`engine.redis.*`).
///
/// ```
/// use gyre_redis::RedisConfig;
/// let mut config = RedisConfig::new("redis://127.0.0.1:6379");
/// config.prefix = "centrifugo".into();
/// assert_eq!(config.presence_ttl.as_secs(), 60);
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RedisConfig {
    /// `redis://` / `rediss://` URLs. Several URLs shard channels over independent
    /// instances with jump consistent hashing (same assignment as upstream).
    pub addresses: Vec<String>,
    /// Sentinel URLs; used (with [`sentinel_master_name`](Self::sentinel_master_name))
    /// instead of `addresses` when not empty.
    pub sentinel_addresses: Vec<String>,
    /// Name of the master the sentinels watch.
    pub sentinel_master_name: String,
    /// Password of the sentinels themselves.
    pub sentinel_password: Option<String>,
    /// Seed nodes of a Redis Cluster; cluster mode (hash-tagged keys) when not empty.
    pub cluster_addresses: Vec<String>,
    /// Prefix of every key and PUB/SUB channel (`centrifuge` as the Go library;
    /// Centrifugo uses `centrifugo`).
    pub prefix: String,
    /// Database index (standalone and sentinel only); `None` keeps the URL's.
    pub db: Option<i64>,
    /// ACL user; `None` keeps the URL's.
    pub user: Option<String>,
    /// Password; `None` keeps the URL's.
    pub password: Option<String>,
    /// Bound on establishing a connection.
    pub connect_timeout: Duration,
    /// Bound on every command; past it the operation fails with `Unavailable`.
    pub io_timeout: Duration,
    /// How long a presence entry lives without being refreshed.
    pub presence_ttl: Duration,
    /// Keep history in lists instead of streams (upstream `history_use_lists`).
    pub history_use_lists: bool,
    /// Stream meta lifetime when publish/history options give none.
    pub history_meta_ttl: Duration,
    /// Dedicated PUB/SUB connections per shard; channels are spread over them by hash.
    pub pubsub_partitions: usize,
}

impl Default for RedisConfig {
    fn default() -> Self {
        RedisConfig {
            addresses: vec!["redis://127.0.0.1:6379".to_owned()],
            sentinel_addresses: Vec::new(),
            sentinel_master_name: String::new(),
            sentinel_password: None,
            cluster_addresses: Vec::new(),
            prefix: "centrifuge".to_owned(),
            db: None,
            user: None,
            password: None,
            connect_timeout: Duration::from_secs(1),
            io_timeout: Duration::from_secs(4),
            presence_ttl: Duration::from_secs(60),
            history_use_lists: false,
            history_meta_ttl: Duration::from_secs(30 * 24 * 3600),
            pubsub_partitions: 1,
        }
    }
}

impl RedisConfig {
    /// One Redis instance.
    pub fn new(address: impl Into<String>) -> Self {
        RedisConfig {
            addresses: vec![address.into()],
            ..Self::default()
        }
    }

    /// Several independent instances, channels sharded over them.
    pub fn sharded<I, S>(addresses: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        RedisConfig {
            addresses: addresses.into_iter().map(Into::into).collect(),
            ..Self::default()
        }
    }

    /// A master found through sentinels.
    pub fn sentinel<I, S>(sentinels: I, master_name: impl Into<String>) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        RedisConfig {
            addresses: Vec::new(),
            sentinel_addresses: sentinels.into_iter().map(Into::into).collect(),
            sentinel_master_name: master_name.into(),
            ..Self::default()
        }
    }

    /// A Redis Cluster reached through these seed nodes.
    pub fn cluster<I, S>(seeds: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        RedisConfig {
            addresses: Vec::new(),
            cluster_addresses: seeds.into_iter().map(Into::into).collect(),
            ..Self::default()
        }
    }

    /// Sets the key prefix.
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    pub(crate) fn is_cluster(&self) -> bool {
        !self.cluster_addresses.is_empty()
    }
}

/// Failures building the engine.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RedisEngineError {
    /// The configuration cannot work.
    #[error("invalid Redis configuration: {0}")]
    Config(String),
    /// Redis could not be reached or refused the connection.
    #[error("cannot connect to Redis {address}: {reason}")]
    Connect {
        /// Which address failed.
        address: String,
        /// Why.
        reason: String,
    },
}
