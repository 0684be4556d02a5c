//! [`RedisMapBroker`]: map channels (keyed state + change stream) in Redis, laid out as
//! upstream centrifuge's `RedisMapBroker` lays them out, so a Gyre node and a Centrifugo
//! node sharing one Redis serve the same map channels.
//!
//! Every write runs `lua/map_add.lua` (state, stream, meta, idempotency result and the
//! PUB/SUB message in one step); reads run `map_read_state.lua` / `map_read_stream.lua`. A
//! cleanup task on every node removes keys past their TTL through
//! `map_find_expired.lua` + `map_batch_remove.lua`, each removal being a publication at a
//! new offset; the batch script re-checks every key's expiry score, so nodes cleaning up
//! concurrently (Gyre or Centrifugo) never remove a key twice.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Weak};
use std::time::Duration;

use bytes::Bytes;
use gyre::{
    BoxFuture, BrokerError, BrokerEventHandler, EngineError, HistoryResult, MapBroker,
    MapChannelOptions, MapPublishOptions, MapPublishResult, MapReadStateOptions,
    MapReadStreamOptions, MapStateResult, StreamPosition, SuppressReason,
};
use gyre_protocol::proto;
use prost::Message;
use redis::{Script, Value};
use tokio_util::sync::CancellationToken;

use crate::broker::{
    bad_reply, decode_stream_entries, new_epoch, unix_millis, value_bytes, value_string, value_u64,
};
use crate::config::{RedisConfig, RedisEngineError};
use crate::keys::{MapKeys, consistent_index, partition_index};
use crate::payload::{info_to_proto, parse_map_state_value};
use crate::pubsub::{Dispatcher, Partition, read_loop};
use crate::shard::Shard;
use crate::stats::PubSubStats;

static ADD_SCRIPT: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("lua/map_add.lua")));
static READ_STATE_SCRIPT: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("lua/map_read_state.lua")));
static READ_STREAM_SCRIPT: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("lua/map_read_stream.lua")));
static FIND_EXPIRED_SCRIPT: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("lua/map_find_expired.lua")));
static BATCH_REMOVE_SCRIPT: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("lua/map_batch_remove.lua")));

/// Channels taken from the cleanup registration per round (upstream's batch).
const CLEANUP_CHANNEL_BATCH: usize = 100;
/// Batches of expired keys removed per channel per round (upstream: 10).
const CLEANUP_MAX_BATCHES: usize = 10;

/// Finds the options of a map channel by name (the server resolves its namespace). The
/// cleanup task needs them for channels this node did not write to since it started.
pub type MapChannelResolver = Arc<dyn Fn(&str) -> Option<MapChannelOptions> + Send + Sync>;

/// Map-specific settings of [`RedisMapBroker`] (Centrifugo's `map_broker.redis.*` besides
/// the connection).
#[derive(Clone)]
#[non_exhaustive]
pub struct RedisMapOptions {
    /// How often expired keys are looked for; `None` turns the cleanup off (upstream
    /// `cleanup_interval: -1`). Default 1s.
    pub cleanup_interval: Option<Duration>,
    /// Expired keys removed per channel per batch. Default 100.
    pub cleanup_batch_size: usize,
    /// How long an idempotency key is remembered when the publish gives no TTL. Default 5m.
    pub idempotent_result_ttl: Duration,
    /// Keep data only: no PUB/SUB publishing or subscribing.
    pub skip_pubsub: bool,
    /// Options of channels by name, for the cleanup task.
    pub channel_options: Option<MapChannelResolver>,
}

impl Default for RedisMapOptions {
    fn default() -> Self {
        RedisMapOptions {
            cleanup_interval: Some(Duration::from_secs(1)),
            cleanup_batch_size: 100,
            idempotent_result_ttl: Duration::from_secs(5 * 60),
            skip_pubsub: false,
            channel_options: None,
        }
    }
}

impl std::fmt::Debug for RedisMapOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisMapOptions")
            .field("cleanup_interval", &self.cleanup_interval)
            .field("cleanup_batch_size", &self.cleanup_batch_size)
            .field("idempotent_result_ttl", &self.idempotent_result_ttl)
            .field("skip_pubsub", &self.skip_pubsub)
            .field("channel_options", &self.channel_options.is_some())
            .finish()
    }
}

impl RedisMapOptions {
    /// Sets the resolver of channel options used by the cleanup task.
    pub fn channel_options(
        mut self,
        resolve: impl Fn(&str) -> Option<MapChannelOptions> + Send + Sync + 'static,
    ) -> Self {
        self.channel_options = Some(Arc::new(resolve));
        self
    }

    /// Sets the cleanup interval (`None` = no cleanup).
    pub fn cleanup_interval(mut self, every: Option<Duration>) -> Self {
        self.cleanup_interval = every;
        self
    }
}

/// Map broker over one Redis instance, several sharded instances or a sentinel-managed
/// master, with upstream's key layout and Lua semantics (see the module docs). Redis
/// Cluster is refused for now: upstream's cluster layout needs sharded PUB/SUB partitions.
///
/// Cheap to clone; clones share connections. The PUB/SUB readers and the cleanup task
/// stop when the last clone is dropped or [`RedisMapBroker::close`] is called.
#[derive(Debug, Clone)]
pub struct RedisMapBroker {
    inner: Arc<Inner>,
}

struct Inner {
    config: RedisConfig,
    options: RedisMapOptions,
    keys: MapKeys,
    shards: Vec<Arc<Shard>>,
    partitions: Vec<Vec<Arc<Partition>>>,
    dispatcher: Arc<Dispatcher>,
    started: tokio::sync::Mutex<bool>,
    cancel: CancellationToken,
    /// Without a resolver: options of the channels written through this node, for the
    /// cleanup task and for reads.
    written: parking_lot::Mutex<HashMap<String, MapChannelOptions>>,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisMapBroker")
            .field("shards", &self.shards)
            .field("prefix", &self.config.prefix)
            .field("options", &self.options)
            .finish()
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

fn millis(d: Duration) -> String {
    d.as_millis().to_string()
}

fn flag(on: bool) -> &'static str {
    if on { "1" } else { "0" }
}

fn suppress_reason(name: &str) -> Result<Option<SuppressReason>, BrokerError> {
    Ok(Some(match name {
        "" => return Ok(None),
        "idempotency" => SuppressReason::Idempotency,
        "version" => SuppressReason::Version,
        "key_exists" => SuppressReason::KeyExists,
        "key_not_found" => SuppressReason::KeyNotFound,
        "position_mismatch" => SuppressReason::PositionMismatch,
        _ => return Err(bad_reply("suppress reason")),
    }))
}

/// `{offset, epoch, reason[, current state value]}` of `map_add.lua`.
fn parse_add_reply(reply: Value) -> Result<MapPublishResult, BrokerError> {
    let Value::Array(mut parts) = reply else {
        return Err(bad_reply("map publish"));
    };
    if parts.len() < 3 {
        return Err(bad_reply("map publish arity"));
    }
    let current = if parts.len() > 3 {
        parts.pop().and_then(value_bytes)
    } else {
        None
    };
    let offset = value_u64(&parts[0]).ok_or_else(|| bad_reply("offset"))?;
    let epoch = value_string(&parts[1]).ok_or_else(|| bad_reply("epoch"))?;
    let suppressed = suppress_reason(&value_string(&parts[2]).unwrap_or_default())?;
    let current = current
        .filter(|c| !c.is_empty())
        .and_then(|c| parse_map_state_value(&c).ok());
    let mut result = MapPublishResult::default();
    result.position = StreamPosition::new(offset, epoch);
    result.suppressed = suppressed;
    result.current = current;
    Ok(result)
}

impl RedisMapBroker {
    /// Connects the command connections of every shard. PUB/SUB connections and the
    /// cleanup task start in [`MapBroker::run`]. `config.prefix` is the map broker's own
    /// prefix (Centrifugo: `map_broker.redis.prefix`, default `centrifugo`).
    pub async fn new(
        config: RedisConfig,
        options: RedisMapOptions,
    ) -> Result<Self, RedisEngineError> {
        if config.is_cluster() {
            return Err(RedisEngineError::Config(
                "the Redis map broker does not support Redis Cluster yet".into(),
            ));
        }
        if config.pubsub_partitions == 0 {
            return Err(RedisEngineError::Config(
                "pubsub_partitions must be > 0".into(),
            ));
        }
        if options.cleanup_batch_size == 0 {
            return Err(RedisEngineError::Config(
                "cleanup_batch_size must be > 0".into(),
            ));
        }
        let shards = Shard::connect_all(&config).await?;
        let keys = MapKeys::new(&config.prefix);
        let stats = Arc::new(PubSubStats::default());
        let partitions = shards
            .iter()
            .map(|s| {
                (0..config.pubsub_partitions)
                    .map(|_| Arc::new(Partition::new(s.clone(), stats.clone())))
                    .collect()
            })
            .collect();
        Ok(RedisMapBroker {
            inner: Arc::new(Inner {
                dispatcher: Arc::new(Dispatcher::for_map(keys.pubsub(), stats)),
                keys,
                shards,
                partitions,
                started: tokio::sync::Mutex::new(false),
                cancel: CancellationToken::new(),
                written: parking_lot::Mutex::new(HashMap::new()),
                options,
                config,
            }),
        })
    }

    /// Stops the PUB/SUB readers and the cleanup task; commands keep working.
    pub fn close(&self) {
        self.inner.cancel.cancel();
    }
}

impl Inner {
    fn shard(&self, channel: &str) -> &Arc<Shard> {
        &self.shards[consistent_index(channel, self.shards.len())]
    }

    fn partition(&self, channel: &str) -> &Arc<Partition> {
        let parts = &self.partitions[consistent_index(channel, self.shards.len())];
        &parts[partition_index(channel, parts.len())]
    }

    fn pubsub_channel(&self, channel: &str) -> String {
        if self.options.skip_pubsub {
            String::new()
        } else {
            self.keys.pubsub().client_channel(channel)
        }
    }

    fn publish_command(&self) -> &'static str {
        if self.options.skip_pubsub {
            ""
        } else {
            "PUBLISH"
        }
    }

    async fn start(self: &Arc<Self>) -> Result<(), BrokerError> {
        {
            let mut started = self.started.lock().await;
            if !*started {
                if !self.options.skip_pubsub {
                    for part in self.partitions.iter().flatten() {
                        tokio::spawn(read_loop(
                            part.clone(),
                            self.dispatcher.clone(),
                            self.cancel.clone(),
                        ));
                    }
                }
                if let Some(every) = self.options.cleanup_interval {
                    tokio::spawn(cleanup_loop(
                        Arc::downgrade(self),
                        every,
                        self.cancel.clone(),
                    ));
                }
                *started = true;
            }
        }
        if self.options.skip_pubsub {
            return Ok(());
        }
        let within = self.config.connect_timeout + self.config.io_timeout;
        for part in self.partitions.iter().flatten() {
            if !part.wait_connected(within).await {
                return Err(EngineError::msg("Redis PUB/SUB connection not established").into());
            }
        }
        Ok(())
    }

    /// Publish (`data` set) or remove (`data` none) through `map_add.lua`.
    async fn write(
        &self,
        channel: &str,
        key: &str,
        data: Option<Bytes>,
        options: MapPublishOptions,
    ) -> Result<MapPublishResult, BrokerError> {
        let opts = &options.channel;
        let streamless = !opts.mode.has_stream();
        let removing = data.is_none();
        if streamless && (options.expected_position.is_some() || (options.version > 0 && !removing))
        {
            return Err(BrokerError::BadRequest(
                "ephemeral maps take no version and no expected position".into(),
            ));
        }
        let shard = self.shard(channel);
        let mut conn = shard.conn();
        let now = unix_millis();
        if key.is_empty() {
            // A keyless ephemeral publish is a plain broadcast: no state, no offset.
            if !streamless || removing || options.idempotency_key.is_some() {
                return Err(BrokerError::BadRequest("map key required".into()));
            }
            if self.options.skip_pubsub {
                return Ok(MapPublishResult::default());
            }
            let body = proto::Publication {
                data: data.unwrap_or_default(),
                info: options.client_info.as_ref().map(info_to_proto),
                tags: options.tags,
                time: now,
                ..Default::default()
            };
            let mut msg = b"0::".to_vec();
            body.encode(&mut msg).expect("Vec grows as needed");
            let cmd = redis::cmd("PUBLISH")
                .arg(self.pubsub_channel(channel))
                .arg(msg)
                .to_owned();
            shard.exec(cmd.query_async::<Value>(&mut conn)).await?;
            return Ok(MapPublishResult::default());
        }
        if self.options.channel_options.is_none() {
            self.written.lock().insert(channel.to_owned(), opts.clone());
        }
        let body = if removing {
            proto::Publication {
                key: key.to_owned(),
                removed: true,
                time: now,
                tags: options.tags.clone(),
                ..Default::default()
            }
        } else {
            proto::Publication {
                data: data.unwrap_or_default(),
                info: options.client_info.as_ref().map(info_to_proto),
                tags: options.tags.clone(),
                time: now,
                key: key.to_owned(),
                ..Default::default()
            }
        }
        .encode_to_vec();
        let k = &self.keys;
        let (stream, meta) = if streamless {
            (String::new(), String::new())
        } else {
            (k.stream(channel), k.meta(channel))
        };
        let (result, result_ttl) = match &options.idempotency_key {
            Some(idem) => (
                k.result(channel, idem),
                millis(
                    options
                        .idempotent_result_ttl
                        .filter(|t| !t.is_zero())
                        .unwrap_or(self.options.idempotent_result_ttl),
                ),
            ),
            None => (String::new(), String::new()),
        };
        let state_meta = if streamless {
            String::new()
        } else {
            k.state_meta(channel)
        };
        // Removals re-point the cleanup registration too, so a channel whose last
        // expiring key was removed leaves the registration at once.
        let cleanup = if !opts.key_ttl.is_zero() {
            k.cleanup()
        } else {
            String::new()
        };
        let (version, v_field, ve_field) = if options.version > 0 || removing {
            (
                if removing {
                    "0".to_owned()
                } else {
                    options.version.to_string()
                },
                format!("v:{key}"),
                format!("ve:{key}"),
            )
        } else {
            ("0".to_owned(), String::new(), String::new())
        };
        let (want_offset, want_epoch) = match &options.expected_position {
            Some(p) => (p.offset.to_string(), p.epoch.clone()),
            None => (String::new(), String::new()),
        };
        let key_ttl = if removing {
            "0".to_owned()
        } else {
            millis(opts.key_ttl)
        };
        let mut invocation = ADD_SCRIPT.key(stream);
        invocation
            .key(meta)
            .key(result)
            .key(k.state(channel))
            .key("")
            .key(k.state_expire(channel))
            .key(state_meta)
            .key(&cleanup)
            .arg(key)
            .arg(body)
            .arg(opts.stream_size)
            .arg(millis(opts.stream_ttl))
            .arg(self.pubsub_channel(channel))
            .arg(millis(opts.meta_ttl))
            .arg(new_epoch())
            .arg(self.publish_command())
            .arg(result_ttl)
            .arg(flag(false))
            .arg(version)
            .arg(if removing {
                ""
            } else {
                options.version_epoch.as_str()
            })
            .arg(flag(removing))
            .arg("0")
            .arg(key_ttl)
            .arg("0")
            .arg(if cleanup.is_empty() { "" } else { channel })
            .arg(match options.key_mode {
                gyre::KeyMode::IfNew if !removing => "if_new",
                gyre::KeyMode::IfExists if !removing => "if_exists",
                _ => "",
            })
            .arg(flag(options.refresh_ttl_on_suppress))
            .arg(want_offset)
            .arg(want_epoch)
            .arg("")
            .arg("")
            .arg(v_field)
            .arg(ve_field)
            .arg(now);
        let reply: Value = shard.exec(invocation.invoke_async(&mut conn)).await?;
        parse_add_reply(reply)
    }

    async fn read_state(
        &self,
        channel: &str,
        options: MapReadStateOptions,
    ) -> Result<MapStateResult, BrokerError> {
        if let Some(key) = &options.key {
            return self.read_key(channel, key, &options).await;
        }
        if options.limit == 0 {
            let mut read = MapReadStreamOptions::default();
            read.meta_ttl = options.meta_ttl;
            let top = self.read_stream(channel, read).await?;
            if let Some(rev) = &options.revision
                && rev.epoch != top.position.epoch
            {
                return Err(BrokerError::UnrecoverablePosition);
            }
            let mut result = MapStateResult::default();
            result.position = top.position;
            return Ok(result);
        }
        let shard = self.shard(channel);
        let mut conn = shard.conn();
        let k = &self.keys;
        let streamless = options.revision.is_none() && self.is_streamless(channel);
        let cursor = if options.cursor.is_empty() {
            "0"
        } else {
            options.cursor.as_str()
        };
        let mut invocation = READ_STATE_SCRIPT.key(k.state(channel));
        invocation
            .key(k.state_expire(channel))
            .key(k.meta(channel))
            .key(k.state_meta(channel))
            .arg(cursor)
            .arg(options.limit.max(0))
            .arg(unix_millis())
            .arg(millis(options.meta_ttl))
            .arg(millis(options.meta_ttl))
            .arg(flag(streamless));
        let reply: Value = shard.exec(invocation.invoke_async(&mut conn)).await?;
        let Value::Array(mut parts) = reply else {
            return Err(bad_reply("map state"));
        };
        if parts.len() != 4 {
            return Err(bad_reply("map state arity"));
        }
        let fields = parts.pop();
        let offset = value_u64(&parts[0]).ok_or_else(|| bad_reply("offset"))?;
        let epoch = value_string(&parts[1]).unwrap_or_default();
        let mut cursor = value_string(&parts[2]).unwrap_or_default();
        if cursor == "0" {
            cursor.clear();
        }
        if let Some(rev) = &options.revision
            && rev.epoch != epoch
        {
            return Err(BrokerError::UnrecoverablePosition);
        }
        let Some(Value::Array(fields)) = fields else {
            return Err(bad_reply("map state entries"));
        };
        let mut entries = Vec::with_capacity(fields.len() / 2);
        let mut it = fields.into_iter();
        while let (Some(name), Some(value)) = (it.next(), it.next()) {
            let (Some(name), Some(value)) = (value_string(&name), value_bytes(value)) else {
                continue;
            };
            // A value that does not parse is skipped, as upstream does.
            let Ok(mut p) = parse_map_state_value(&value) else {
                continue;
            };
            // Changed after the revision: the stream catch-up delivers it.
            if options
                .revision
                .as_ref()
                .is_some_and(|r| p.offset > r.offset)
            {
                continue;
            }
            p.key = name;
            entries.push(p);
        }
        let mut result = MapStateResult::default();
        result.position = StreamPosition::new(offset, epoch);
        result.entries = entries;
        result.cursor = cursor;
        Ok(result)
    }

    /// Whether this node knows `channel` as ephemeral (no stream, no meta).
    fn is_streamless(&self, channel: &str) -> bool {
        self.channel_options(channel)
            .is_some_and(|o| !o.mode.has_stream())
    }

    fn channel_options(&self, channel: &str) -> Option<MapChannelOptions> {
        match &self.options.channel_options {
            Some(resolve) => resolve(channel),
            None => self.written.lock().get(channel).cloned(),
        }
    }

    async fn read_key(
        &self,
        channel: &str,
        key: &str,
        options: &MapReadStateOptions,
    ) -> Result<MapStateResult, BrokerError> {
        let shard = self.shard(channel);
        let mut conn = shard.conn();
        let mut pipe = redis::pipe();
        pipe.cmd("HGET")
            .arg(self.keys.state(channel))
            .arg(key)
            .cmd("HMGET")
            .arg(self.keys.meta(channel))
            .arg("s")
            .arg("e");
        let (value, meta): (Option<Vec<u8>>, Vec<Option<String>>) =
            shard.exec(pipe.query_async(&mut conn)).await?;
        let position = StreamPosition::new(
            meta.first()
                .cloned()
                .flatten()
                .and_then(|s| s.parse().ok())
                .unwrap_or(0),
            meta.get(1).cloned().flatten().unwrap_or_default(),
        );
        if let Some(rev) = &options.revision
            && rev.epoch != position.epoch
        {
            return Err(BrokerError::UnrecoverablePosition);
        }
        let mut result = MapStateResult::default();
        result.position = position;
        if let Some(value) = value.filter(|v| !v.is_empty()) {
            let mut p = parse_map_state_value(&value)
                .map_err(|e| EngineError::with_context("bad map state value", e))?;
            p.key = key.to_owned();
            result.entries.push(p);
        }
        Ok(result)
    }

    async fn read_stream(
        &self,
        channel: &str,
        options: MapReadStreamOptions,
    ) -> Result<HistoryResult, BrokerError> {
        let mut include = options.limit != 0;
        let start = match &options.since {
            Some(since) if options.reverse => {
                if since.offset == 0 {
                    include = false;
                    String::new()
                } else {
                    (since.offset - 1).to_string()
                }
            }
            Some(since) => (since.offset + 1).to_string(),
            None if options.reverse => "+".to_owned(),
            None => "-".to_owned(),
        };
        let shard = self.shard(channel);
        let mut conn = shard.conn();
        let mut invocation = READ_STREAM_SCRIPT.key(self.keys.stream(channel));
        invocation
            .key(self.keys.meta(channel))
            .arg(flag(include))
            .arg(start)
            .arg(options.limit.max(0))
            .arg(flag(options.reverse))
            .arg(millis(options.meta_ttl))
            .arg(new_epoch());
        let reply: Value = shard.exec(invocation.invoke_async(&mut conn)).await?;
        let Value::Array(mut parts) = reply else {
            return Err(bad_reply("map stream"));
        };
        if parts.len() != 3 {
            return Err(bad_reply("map stream arity"));
        }
        let entries = parts.pop().unwrap_or(Value::Nil);
        let offset = value_u64(&parts[0]).ok_or_else(|| bad_reply("offset"))?;
        let epoch = value_string(&parts[1]).ok_or_else(|| bad_reply("epoch"))?;
        if let Some(since) = &options.since
            && !since.epoch.is_empty()
            && since.epoch != epoch
        {
            return Err(BrokerError::UnrecoverablePosition);
        }
        let publications = if include {
            decode_stream_entries(entries)?
        } else {
            Vec::new()
        };
        Ok(HistoryResult {
            position: StreamPosition::new(offset, epoch),
            publications,
        })
    }

    async fn stats(&self, channel: &str) -> Result<usize, BrokerError> {
        let shard = self.shard(channel);
        let mut conn = shard.conn();
        let cmd = redis::cmd("HLEN").arg(self.keys.state(channel)).to_owned();
        let n: usize = shard.exec(cmd.query_async(&mut conn)).await?;
        Ok(n)
    }

    async fn clear(&self, channel: &str) -> Result<(), BrokerError> {
        let shard = self.shard(channel);
        let mut conn = shard.conn();
        let k = &self.keys;
        let mut pipe = redis::pipe();
        pipe.cmd("DEL")
            .arg(k.stream(channel))
            .arg(k.meta(channel))
            .arg(k.state(channel))
            .arg(k.state_order(channel))
            .arg(k.state_expire(channel))
            .arg(k.state_meta(channel))
            .ignore()
            .cmd("ZREM")
            .arg(k.cleanup())
            .arg(channel)
            .ignore();
        shard.exec(pipe.query_async::<()>(&mut conn)).await?;
        Ok(())
    }

    /// One cleanup round over every shard.
    async fn cleanup_round(&self) {
        for shard in &self.shards {
            if let Err(e) = self.cleanup_shard(shard).await {
                tracing::warn!(shard = %shard.name, error = %e, "map broker cleanup failed");
            }
        }
    }

    async fn cleanup_shard(&self, shard: &Shard) -> Result<(), BrokerError> {
        let now = unix_millis();
        let mut conn = shard.conn();
        let cmd = redis::cmd("ZRANGEBYSCORE")
            .arg(self.keys.cleanup())
            .arg(0)
            .arg(now)
            .arg("LIMIT")
            .arg(0)
            .arg(CLEANUP_CHANNEL_BATCH)
            .to_owned();
        let channels: Vec<String> = shard.exec(cmd.query_async(&mut conn)).await?;
        for channel in channels {
            // Channels this node cannot resolve are left to the nodes that can.
            let Some(options) = self.channel_options(&channel) else {
                tracing::debug!(channel, "map cleanup: unknown channel options, skipped");
                continue;
            };
            if let Err(e) = self.cleanup_channel(shard, &channel, &options, now).await {
                tracing::warn!(channel, error = %e, "map cleanup of a channel failed");
            }
        }
        Ok(())
    }

    async fn cleanup_channel(
        &self,
        shard: &Shard,
        channel: &str,
        options: &MapChannelOptions,
        now: i64,
    ) -> Result<(), BrokerError> {
        let k = &self.keys;
        let batch = self.options.cleanup_batch_size;
        for _ in 0..CLEANUP_MAX_BATCHES {
            let mut conn = shard.conn();
            let mut invocation = FIND_EXPIRED_SCRIPT.key(k.state(channel));
            invocation.key(k.state_expire(channel)).arg(now).arg(batch);
            let found: Vec<Value> = shard.exec(invocation.invoke_async(&mut conn)).await?;
            let mut removals = Vec::with_capacity(found.len());
            let mut it = found.into_iter();
            while let (Some(key), Some(value), Some(score)) = (it.next(), it.next(), it.next()) {
                let (Some(key), Some(score)) = (value_string(&key), value_string(&score)) else {
                    continue;
                };
                // The removal carries the entry's last tags (server-side tag filters).
                let tags = value_bytes(value)
                    .and_then(|v| parse_map_state_value(&v).ok())
                    .map(|p| p.tags)
                    .unwrap_or_default();
                let body = proto::Publication {
                    key: key.clone(),
                    removed: true,
                    time: now,
                    tags,
                    ..Default::default()
                }
                .encode_to_vec();
                removals.push((key, body, score));
            }
            let found_all = removals.len() >= batch;
            let mut invocation = BATCH_REMOVE_SCRIPT.key(k.state(channel));
            invocation
                .key(k.state_expire(channel))
                .key(k.stream(channel))
                .key(k.meta(channel))
                .key(k.cleanup())
                .key(k.state_order(channel))
                .key(k.state_meta(channel))
                .arg(removals.len())
                .arg(self.pubsub_channel(channel))
                .arg(self.publish_command())
                .arg(options.stream_size)
                .arg(millis(options.stream_ttl))
                .arg(millis(options.meta_ttl))
                .arg(new_epoch())
                .arg(channel)
                .arg(flag(!options.mode.has_stream()));
            for (key, body, score) in removals {
                invocation.arg(key).arg(body).arg(score);
            }
            let _: Value = shard.exec(invocation.invoke_async(&mut conn)).await?;
            if !found_all {
                return Ok(());
            }
        }
        Ok(())
    }
}

async fn cleanup_loop(inner: Weak<Inner>, every: Duration, cancel: CancellationToken) {
    let mut interval = tokio::time::interval(every);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = cancel.cancelled() => return,
            _ = interval.tick() => {}
        }
        let Some(inner) = inner.upgrade() else {
            return;
        };
        inner.cleanup_round().await;
    }
}

impl MapBroker for RedisMapBroker {
    fn run(&self, handler: Arc<dyn BrokerEventHandler>) -> BoxFuture<'_, Result<(), BrokerError>> {
        Box::pin(async move {
            self.inner.dispatcher.broker.set(handler).map_err(|_| {
                BrokerError::BadRequest("Redis map broker is already running".into())
            })?;
            self.inner.start().await
        })
    }

    fn subscribe(&self, channel: &str) -> BoxFuture<'_, Result<(), BrokerError>> {
        let name = self.inner.keys.pubsub().client_channel(channel);
        let part = self.inner.partition(channel).clone();
        let skip = self.inner.options.skip_pubsub;
        Box::pin(async move {
            if skip {
                return Ok(());
            }
            part.subscribe(vec![name]).await
        })
    }

    fn unsubscribe(&self, channel: &str) -> BoxFuture<'_, Result<(), BrokerError>> {
        let name = self.inner.keys.pubsub().client_channel(channel);
        let part = self.inner.partition(channel).clone();
        Box::pin(async move { part.unsubscribe(&name).await })
    }

    fn publish(
        &self,
        channel: &str,
        key: &str,
        data: Bytes,
        options: MapPublishOptions,
    ) -> BoxFuture<'_, Result<MapPublishResult, BrokerError>> {
        let (channel, key) = (channel.to_owned(), key.to_owned());
        Box::pin(async move { self.inner.write(&channel, &key, Some(data), options).await })
    }

    fn remove(
        &self,
        channel: &str,
        key: &str,
        options: MapPublishOptions,
    ) -> BoxFuture<'_, Result<MapPublishResult, BrokerError>> {
        let (channel, key) = (channel.to_owned(), key.to_owned());
        Box::pin(async move {
            if key.is_empty() {
                return Err(BrokerError::BadRequest("map key required".into()));
            }
            self.inner.write(&channel, &key, None, options).await
        })
    }

    fn read_state(
        &self,
        channel: &str,
        options: MapReadStateOptions,
    ) -> BoxFuture<'_, Result<MapStateResult, BrokerError>> {
        let channel = channel.to_owned();
        Box::pin(async move { self.inner.read_state(&channel, options).await })
    }

    fn read_stream(
        &self,
        channel: &str,
        options: MapReadStreamOptions,
    ) -> BoxFuture<'_, Result<HistoryResult, BrokerError>> {
        let channel = channel.to_owned();
        Box::pin(async move { self.inner.read_stream(&channel, options).await })
    }

    fn stats(&self, channel: &str) -> BoxFuture<'_, Result<usize, BrokerError>> {
        let channel = channel.to_owned();
        Box::pin(async move { self.inner.stats(&channel).await })
    }

    fn clear(&self, channel: &str) -> BoxFuture<'_, Result<(), BrokerError>> {
        let channel = channel.to_owned();
        Box::pin(async move { self.inner.clear(&channel).await })
    }
}
