//! Which engines carry publications, presence and node-to-node control, from
//! `engine.*`, `broker.*` and `presence_manager.*` as Centrifugo reads them.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use gyre::{Broker, Controller, MapBroker, PresenceManager};
use gyre_nats::{NatsBroker, NatsConfig, RawMode};
use gyre_redis::{RedisBroker, RedisConfig, RedisMapBroker, RedisMapOptions};

use crate::config::{self, Config, RedisPrefixed};

/// The engines of a node; `None` = the library's in-memory default.
#[derive(Default)]
pub(crate) struct Engines {
    pub(crate) broker: Option<Arc<dyn Broker>>,
    pub(crate) presence: Option<Arc<dyn PresenceManager>>,
    pub(crate) controller: Option<Arc<dyn Controller>>,
    /// The broker when it is Redis, for its PUB/SUB families in `/metrics`.
    pub(crate) redis_broker: Option<Arc<RedisBroker>>,
    /// The map broker (`map_broker.type`).
    pub(crate) map_broker: Option<Arc<dyn MapBroker>>,
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
    match config.map_broker.r#type.as_str() {
        "" | "memory" => {}
        "redis" => engines.map_broker = Some(Arc::new(redis_map_broker(config).await?)),
        // Refused at start by `config::unsupported` until the PostgreSQL map broker lands.
        other => bail!("map_broker.type {other:?} is not supported (memory, redis)"),
    }
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
