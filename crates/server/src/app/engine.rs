//! Which engines carry publications, presence, map channels and node-to-node control,
//! from `engine.*`, `broker.*`, `presence_manager.*` and `map_broker.*` as Centrifugo
//! reads them.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use gyre::{Broker, Controller, MapBroker, PresenceManager};
use gyre_nats::{NatsBroker, NatsConfig, RawMode};
use gyre_postgres::controller::{PgController, PgControllerConfig};
use gyre_postgres::stream::{PgStreamBroker, PgStreamConfig};
use gyre_redis::{RedisBroker, RedisConfig, RedisMapBroker, RedisMapOptions};

use crate::config::{self, Config, RedisPrefixed};

/// The engines of a node; `None` = the library's in-memory default.
#[derive(Default)]
pub(crate) struct Engines {
    pub(crate) broker: Option<Arc<dyn Broker>>,
    pub(crate) presence: Option<Arc<dyn PresenceManager>>,
    pub(crate) controller: Option<Arc<dyn Controller>>,
    /// The map broker (`map_broker.type`).
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

/// The Redis map broker of `map_broker.redis` (its own prefix, default `centrifugo`).
/// The cleanup task resolves a channel's map options from the namespaces of the
/// configuration the node started with.
async fn redis_map_broker(config: &Config) -> anyhow::Result<RedisMapBroker> {
    let m = &config.map_broker.redis;
    let rc = redis_config(
        &m.redis_prefixed,
        false,
        config::Duration::default(),
        config.channel.history_meta_ttl,
    );
    let common = &m.redis_map_broker_common;
    let mut options = RedisMapOptions::default();
    // Upstream: zero means the default (1s), negative turns the cleanup off.
    options.cleanup_interval = match common.cleanup_interval.as_nanos() {
        n if n < 0 => None,
        0 => Some(Duration::from_secs(1)),
        _ => common.cleanup_interval.to_std(),
    };
    if common.cleanup_batch_size > 0 {
        options.cleanup_batch_size = usize::try_from(common.cleanup_batch_size).unwrap_or(100);
    }
    options.idempotent_result_ttl =
        std_or(common.idempotent_result_ttl, Duration::from_secs(5 * 60));
    options.skip_pubsub = common.skip_pub_sub;
    let snapshot = Arc::new(config.clone());
    let options = options.channel_options(move |channel| {
        let (_, ns) = snapshot.channel_options(channel).ok()?;
        if !crate::config::channels::is_map_type(&ns.subscription_type) {
            return None;
        }
        crate::config::channels::map_options(ns).ok()
    });
    RedisMapBroker::new(rc, options)
        .await
        .context("connecting the map broker to Redis")
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

fn positive_u32(v: i64, default: u32) -> u32 {
    u32::try_from(v).ok().filter(|v| *v > 0).unwrap_or(default)
}

fn positive_u16(v: i64, default: u16) -> u16 {
    u16::try_from(v).ok().filter(|v| *v > 0).unwrap_or(default)
}

/// `broker.postgres.*` (experimental, as upstream).
async fn pg_stream_broker(config: &Config) -> anyhow::Result<PgStreamBroker> {
    let p = &config.broker.postgres;
    let mut c = PgStreamConfig::new(p.dsn.clone());
    c.pool_size = positive_u32(p.pool_size, 16) as usize;
    c.num_shards = positive_u16(p.num_shards, 8);
    c.cleanup_interval = std_or(p.cleanup_interval, Duration::from_secs(60));
    c.idempotent_result_ttl = std_or(p.idempotent_result_ttl, Duration::from_secs(300));
    c.binary_data = p.binary_data;
    c.stream_retention = std_or(p.stream_retention, Duration::from_secs(24 * 3600));
    c.history_meta_ttl = config
        .channel
        .history_meta_ttl
        .to_std()
        .filter(|d| !d.is_zero());
    c.use_notify = p.use_notify;
    c.notify_dsn = (!p.notify_dsn.is_empty()).then(|| p.notify_dsn.clone());
    c.table_prefix = p.table_prefix.clone();
    c.skip_schema_init = p.skip_schema_init;
    c.poll_interval = std_or(p.outbox.poll_interval, Duration::from_millis(100));
    c.batch_size = if p.outbox.batch_size > 0 {
        p.outbox.batch_size
    } else {
        1000
    };
    c.partition_lookahead_days = positive_u32(p.partition_lookahead_days, 2);
    c.partition_retention_days = u32::try_from(p.partition_retention_days).unwrap_or(7);
    let broker = PgStreamBroker::connect(c)
        .await
        .context("starting the PostgreSQL stream broker (broker.postgres)")?;
    tracing::warn!(
        table = broker.stream_table(),
        "broker.type postgres is experimental (as in Centrifugo)"
    );
    Ok(broker)
}

/// `controller.postgres.*` (experimental, as upstream).
async fn pg_controller(config: &Config) -> anyhow::Result<PgController> {
    let p = &config.controller.postgres;
    let mut c = PgControllerConfig::new(p.dsn.clone());
    c.pool_size = positive_u32(p.pool_size, 8) as usize;
    c.num_shards = positive_u16(p.num_shards, 1);
    c.table_prefix = p.table_prefix.clone();
    c.poll_interval = std_or(p.poll_interval, Duration::from_millis(50));
    c.use_notify = p.use_notify;
    c.notify_dsn = (!p.notify_dsn.is_empty()).then(|| p.notify_dsn.clone());
    c.partition_retention_days = u32::try_from(p.partition_retention_days).unwrap_or(1);
    c.partition_lookahead_days = positive_u32(p.partition_lookahead_days, 2);
    c.partition_cleanup_interval = std_or(p.partition_cleanup_interval, Duration::from_secs(60));
    c.batch_size = if p.batch_size > 0 { p.batch_size } else { 1000 };
    c.skip_schema_init = p.skip_schema_init;
    let controller = PgController::connect(c)
        .await
        .context("starting the PostgreSQL controller (controller.postgres)")?;
    tracing::warn!("controller.type postgres is experimental (as in Centrifugo)");
    Ok(controller)
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
            "postgres" => {
                let broker = Arc::new(pg_stream_broker(config).await?);
                // Upstream's PostgreSQL broker is no controller: without
                // `controller.type: postgres` the nodes do not see each other.
                engines.redis_broker = None;
                engines.controller = None;
                engines.broker = Some(broker);
            }
            other => {
                bail!("broker.type {other:?} is not supported (memory, redis, nats, postgres)")
            }
        }
    }
    if config.controller.enabled {
        // `validate` accepted only `postgres`.
        engines.controller = Some(Arc::new(pg_controller(config).await?));
    } else if engines.controller.is_none()
        && config.broker.enabled
        && config.broker.r#type == "postgres"
    {
        tracing::warn!(
            "broker.type postgres carries no node-to-node control: enable controller.type \
             postgres for several nodes to see each other"
        );
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
        "" | "memory" => Ok(None),
        "redis" => Ok(Some(Arc::new(redis_map_broker(config).await?))),
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
