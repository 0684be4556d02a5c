//! Which engines carry publications, presence, map channels and node-to-node control,
//! from `engine.*`, `broker.*`, `presence_manager.*` and `map_broker.*` as Centrifugo
//! reads them.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use gyre::{Broker, Controller, MapBroker, PresenceManager};
use gyre_nats::{NatsBroker, NatsConfig, RawMode};
use gyre_redis::{RedisBroker, RedisConfig};

use crate::config::{self, Config, RedisPrefixed};

/// The engines of a node; `None` = the library's in-memory default.
#[derive(Default)]
pub(crate) struct Engines {
    pub(crate) broker: Option<Arc<dyn Broker>>,
    pub(crate) presence: Option<Arc<dyn PresenceManager>>,
    pub(crate) controller: Option<Arc<dyn Controller>>,
    pub(crate) map_broker: Option<Arc<dyn MapBroker>>,
    /// The broker when it is Redis, for its PUB/SUB families in `/metrics`.
    pub(crate) redis_broker: Option<Arc<RedisBroker>>,
}

fn std_or(d: config::Duration, default: Duration) -> Duration {
    d.to_std().filter(|d| !d.is_zero()).unwrap_or(default)
}

fn redis_config(
    r: &RedisPrefixed,
    history_use_lists: bool,
    presence_ttl: config::Duration,
    meta_ttl: config::Duration,
) -> RedisConfig {
    let c = &r.redis;
    let mut rc = if !c.cluster_address.is_empty() {
        RedisConfig::cluster(c.cluster_address.iter().map(|a| normalize_redis_url(a)))
    } else if !c.sentinel_address.is_empty() {
        let mut rc = RedisConfig::sentinel(
            c.sentinel_address.iter().map(|a| normalize_redis_url(a)),
            c.sentinel_master_name.clone(),
        );
        if !c.sentinel_password.is_empty() {
            rc.sentinel_password = Some(c.sentinel_password.clone());
        }
        rc
    } else if c.address.is_empty() {
        RedisConfig::new("redis://127.0.0.1:6379")
    } else {
        // Several addresses shard channels over independent Redis servers.
        RedisConfig::sharded(c.address.iter().map(|a| normalize_redis_url(a)))
    };
    rc.prefix = if r.prefix.is_empty() {
        "centrifugo".to_owned()
    } else {
        r.prefix.clone()
    };
    if c.db > 0 {
        rc.db = Some(c.db);
    }
    if !c.user.is_empty() {
        rc.user = Some(c.user.clone());
    }
    if !c.password.is_empty() {
        rc.password = Some(c.password.clone());
    }
    rc.connect_timeout = std_or(c.connect_timeout, Duration::from_secs(1));
    rc.io_timeout = std_or(c.io_timeout, Duration::from_secs(4));
    rc.presence_ttl = std_or(presence_ttl, Duration::from_secs(60));
    rc.history_use_lists = history_use_lists;
    rc.history_meta_ttl = std_or(meta_ttl, Duration::from_secs(30 * 24 * 3600));
    rc
}

/// Centrifugo accepts `host:port` as well as `redis://host:port` (in `address`,
/// `cluster_address` and `sentinel_address`, whose documented form is `host:port`).
fn normalize_redis_url(address: &str) -> String {
    if address.contains("://") {
        address.to_owned()
    } else {
        format!("redis://{address}")
    }
}

async fn nats_broker(config: &Config) -> anyhow::Result<NatsBroker> {
    let n = &config.broker.nats;
    let common = &n.nats_prefixed.nats_common;
    let url = if common.url.is_empty() {
        "nats://localhost:4222"
    } else {
        &common.url
    };
    let prefix = if n.nats_prefixed.prefix.is_empty() {
        "centrifugo"
    } else {
        &n.nats_prefixed.prefix
    };
    let mut nc = NatsConfig::new(url)
        .prefix(prefix)
        .dial_timeout(std_or(common.dial_timeout, Duration::from_secs(1)))
        .write_timeout(std_or(common.write_timeout, Duration::from_secs(1)));
    if n.raw_mode.enabled {
        let mut raw = RawMode::new(n.raw_mode.prefix.clone());
        for (from, to) in &n.raw_mode.channel_replacements {
            raw = raw.channel_replacement(from.clone(), to.clone());
        }
        nc = nc.raw_mode(raw);
    }
    NatsBroker::connect(nc)
        .await
        .with_context(|| format!("connecting to NATS at {url}"))
}

/// Connects the configured engines.
pub(crate) async fn build(config: &Config) -> anyhow::Result<Engines> {
    let mut engines = Engines::default();
    let meta_ttl = config.channel.history_meta_ttl;
    match config.engine.r#type.as_str() {
        "" | "memory" => {}
        "redis" => {
            let r = &config.engine.redis;
            let rc = redis_config(
                &r.redis_prefixed,
                r.engine_redis_broker.redis_broker_common.history_use_lists,
                r.engine_redis_presence_manager
                    .redis_presence_manager_common
                    .presence_ttl,
                meta_ttl,
            );
            let broker = RedisBroker::new(rc).await.context("connecting to Redis")?;
            let presence: Arc<dyn PresenceManager> = Arc::new(broker.presence_manager());
            let broker = Arc::new(broker);
            engines.redis_broker = Some(broker.clone());
            engines.presence = Some(presence);
            engines.controller = Some(broker.clone());
            engines.broker = Some(broker);
        }
        other => bail!("engine.type {other:?} is not supported (memory, redis)"),
    }
    if config.broker.enabled {
        match config.broker.r#type.as_str() {
            "memory" => {
                engines.broker = None;
                engines.controller = None;
                engines.redis_broker = None;
            }
            "redis" => {
                let b = &config.broker.redis;
                let rc = redis_config(
                    &b.redis_prefixed,
                    b.redis_broker_common.history_use_lists,
                    config::Duration::default(),
                    meta_ttl,
                );
                let broker = Arc::new(RedisBroker::new(rc).await.context("connecting to Redis")?);
                engines.redis_broker = Some(broker.clone());
                engines.controller = Some(broker.clone());
                engines.broker = Some(broker);
            }
            "nats" => {
                let broker = Arc::new(nats_broker(config).await?);
                engines.redis_broker = None;
                engines.controller = Some(broker.clone());
                engines.broker = Some(broker);
            }
            other => bail!("broker.type {other:?} is not supported (memory, redis, nats)"),
        }
    }
    if config.presence_manager.enabled {
        match config.presence_manager.r#type.as_str() {
            "memory" => engines.presence = None,
            "redis" => {
                let p = &config.presence_manager.redis;
                let rc = redis_config(
                    &p.redis_prefixed,
                    false,
                    p.redis_presence_manager_common.presence_ttl,
                    meta_ttl,
                );
                let manager = gyre_redis::RedisPresenceManager::new(rc)
                    .await
                    .context("connecting to Redis")?;
                engines.presence = Some(Arc::new(manager));
            }
            other => bail!("presence_manager.type {other:?} is not supported (memory, redis)"),
        }
    }
    engines.map_broker = map_broker(config).await?;
    let disk = &config.engine.memory;
    if !disk.data_dir.is_empty() {
        if engines.broker.is_some() {
            tracing::warn!(
                data_dir = %disk.data_dir,
                "engine.memory.data_dir is ignored: history is not kept by the memory engine"
            );
        } else {
            engines.broker = Some(Arc::new(durable_memory_broker(disk)?));
        }
    }
    Ok(engines)
}

/// The map broker of `map_broker.type`; `None` = the library's memory map broker.
async fn map_broker(config: &Config) -> anyhow::Result<Option<Arc<dyn MapBroker>>> {
    match config.map_broker.r#type.as_str() {
        // `redis` is reported by `config::unsupported` (refused unless allowed): memory.
        "" | "memory" | "redis" => Ok(None),
        "postgres" => {
            let p = &config.map_broker.postgres;
            if p.tls.enabled {
                // The PostgreSQL connections of Gyre have no TLS yet: refusing beats
                // talking in clear to a server the operator wanted encrypted.
                bail!("map_broker.postgres.tls is not supported by Gyre yet");
            }
            if p.dsn.is_empty() {
                bail!("map_broker.postgres.dsn is required with map_broker.type postgres");
            }
            let mut c = gyre_postgres::map::PgMapBrokerConfig::new(p.dsn.clone());
            c.notify_dsn = Some(p.notify_dsn.clone()).filter(|d| !d.is_empty());
            c.pool_size = positive(p.pool_size, 16);
            c.num_shards = u16::try_from(positive(p.num_shards, 8))
                .context("map_broker.postgres.num_shards is too large")?;
            c.ttl_check_interval = std_or(p.ttl_check_interval, Duration::from_secs(1));
            c.cleanup_interval = std_or(p.cleanup_interval, Duration::from_secs(60));
            c.idempotent_result_ttl = std_or(p.idempotent_result_ttl, Duration::from_secs(300));
            c.binary_data = p.binary_data;
            c.use_notify = p.use_notify;
            c.table_prefix = p.table_prefix.clone();
            c.skip_schema_init = p.skip_schema_init;
            c.poll_interval = std_or(p.outbox.poll_interval, Duration::from_millis(100));
            c.batch_size = positive(p.outbox.batch_size, 1000);
            c.partition_lookahead_days =
                u32::try_from(positive(p.partition_lookahead_days, 2)).unwrap_or(u32::MAX);
            // 0 keeps every partition (upstream); negative is treated the same.
            c.partition_retention_days =
                u32::try_from(p.partition_retention_days.max(0)).unwrap_or(u32::MAX);
            let broker = gyre_postgres::map::PgMapBroker::connect(c)
                .await
                .context("map_broker.postgres: connecting and preparing the schema")?;
            Ok(Some(Arc::new(broker)))
        }
        other => bail!("map_broker.type {other:?} is not supported (memory, redis, postgres)"),
    }
}

/// A count from the configuration, or `default` when it is not positive.
fn positive(v: i64, default: usize) -> usize {
    usize::try_from(v)
        .ok()
        .filter(|v| *v > 0)
        .unwrap_or(default)
}

/// The memory broker on its on-disk store (`engine.memory.*`, a Gyre extension).
fn durable_memory_broker(disk: &config::MemoryEngine) -> anyhow::Result<gyre::MemoryBroker> {
    let sync = match disk.sync.as_str() {
        "always" => gyre::DiskSync::Always,
        _ => gyre::DiskSync::Interval(std_or(disk.sync_interval, Duration::from_millis(10))),
    };
    let started = std::time::Instant::now();
    // A store that cannot be opened or read is refused rather than replaced: starting
    // empty would silently give every stream a new epoch.
    let broker = gyre::MemoryBroker::open(&disk.data_dir, sync).with_context(|| {
        format!(
            "engine.memory.data_dir {:?}: cannot open the history store",
            disk.data_dir
        )
    })?;
    tracing::info!(
        data_dir = %disk.data_dir,
        sync = %disk.sync,
        load_ms = started.elapsed().as_millis() as u64,
        "memory engine keeps history on disk"
    );
    Ok(broker)
}
