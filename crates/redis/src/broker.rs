//! [`RedisBroker`]: PUB/SUB, history streams and control messages over Redis.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use gyre::{
    BoxFuture, Broker, BrokerError, BrokerEventHandler, ClientInfo, ControlEventHandler,
    Controller, EngineError, HistoryFilter, HistoryOptions, HistoryResult, Publication,
    PublishOptions, PublishResult, StreamPosition,
};
use gyre_protocol::proto;
use prost::Message;
use rand::distr::{Alphabetic, SampleString};
use redis::Value;
use tokio_util::sync::CancellationToken;

use crate::config::{RedisConfig, RedisEngineError};
use crate::keys::{Keys, consistent_index, partition_index};
use crate::payload::{self, Push, encode_join_leave, info_to_proto, publication_from_proto};
use crate::presence::RedisPresenceManager;
use crate::pubsub::{Dispatcher, Partition, read_loop};
use crate::scripts::{
    HISTORY_LIST_SCRIPT, HISTORY_STREAM_SCRIPT, PUBLISH_IDEMPOTENT_SCRIPT, PUBLISH_LIST_SCRIPT,
    PUBLISH_STREAM_SCRIPT,
};
use crate::shard::Shard;
use crate::stats::PubSubStats;

/// How long an idempotent publish result is remembered when the options give no TTL
/// (upstream default).
const DEFAULT_IDEMPOTENT_RESULT_TTL: Duration = Duration::from_secs(5 * 60);
/// Length of a stream epoch: 8 random letters, as upstream.
const EPOCH_LEN: usize = 8;

/// Broker, and controller, over one or several Redis instances, a sentinel-managed master
/// or a Redis Cluster. Keys, scripts' effects and PUB/SUB payloads are those of upstream
/// centrifuge (FEATURES §11.1), so Gyre and Centrifugo v6 nodes can share a Redis.
///
/// Cheap to clone; clones share connections. Background readers stop when the last
/// clone is dropped or [`RedisBroker::close`] is called.
#[derive(Debug, Clone)]
pub struct RedisBroker {
    inner: Arc<Inner>,
}

struct Inner {
    config: RedisConfig,
    keys: Keys,
    shards: Vec<Arc<Shard>>,
    /// `partitions[shard][i]`: the dedicated PUB/SUB connections of each shard.
    partitions: Vec<Vec<Arc<Partition>>>,
    dispatcher: Arc<Dispatcher>,
    started: tokio::sync::Mutex<bool>,
    cancel: CancellationToken,
    /// Spreads control publishes over shards, as upstream.
    control_round: AtomicUsize,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisBroker")
            .field("shards", &self.shards)
            .field("prefix", &self.config.prefix)
            .finish()
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

/// Whole seconds for an `EXPIRE`, rounded up and at least 1: rounding a sub-second TTL
/// down to 0 would make Redis delete the key at once.
pub(crate) fn ttl_secs(d: Duration) -> u64 {
    let s = d.as_secs() + u64::from(d.subsec_nanos() > 0);
    s.max(1)
}

pub(crate) fn unix_millis() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

pub(crate) fn new_epoch() -> String {
    Alphabetic.sample_string(&mut rand::rng(), EPOCH_LEN)
}

pub(crate) fn bad_reply(what: &str) -> BrokerError {
    EngineError::msg(format!("unexpected Redis reply: {what}")).into()
}

pub(crate) fn value_u64(v: &Value) -> Option<u64> {
    match v {
        Value::Int(i) => u64::try_from(*i).ok(),
        Value::BulkString(b) => std::str::from_utf8(b).ok()?.parse().ok(),
        Value::SimpleString(s) => s.parse().ok(),
        Value::Nil => Some(0),
        _ => None,
    }
}

pub(crate) fn value_string(v: &Value) -> Option<String> {
    match v {
        Value::BulkString(b) => String::from_utf8(b.clone()).ok(),
        Value::SimpleString(s) => Some(s.clone()),
        Value::Int(i) => Some(i.to_string()),
        _ => None,
    }
}

pub(crate) fn value_bytes(v: Value) -> Option<Bytes> {
    match v {
        Value::BulkString(b) => Some(Bytes::from(b)),
        Value::SimpleString(s) => Some(Bytes::from(s)),
        _ => None,
    }
}

/// Decodes XRANGE/XREVRANGE entries: `[[id, [field, value, …]], …]` with id `<offset>-0`
/// and the publication in field `d`.
pub(crate) fn decode_stream_entries(entries: Value) -> Result<Vec<Publication>, BrokerError> {
    let Value::Array(entries) = entries else {
        return Err(bad_reply("stream entries"));
    };
    let mut out = Vec::with_capacity(entries.len());
    for entry in entries {
        let Value::Array(mut parts) = entry else {
            return Err(bad_reply("stream entry"));
        };
        if parts.len() != 2 {
            return Err(bad_reply("stream entry size"));
        }
        let fields = parts.pop();
        let id = parts
            .pop()
            .as_ref()
            .and_then(value_string)
            .ok_or_else(|| bad_reply("id"))?;
        let offset: u64 = id
            .split_once('-')
            .and_then(|(o, _)| o.parse().ok())
            .ok_or_else(|| bad_reply("stream id"))?;
        let Some(Value::Array(fields)) = fields else {
            return Err(bad_reply("stream fields"));
        };
        let mut data = None;
        let mut it = fields.into_iter();
        while let (Some(k), Some(v)) = (it.next(), it.next()) {
            if value_string(&k).as_deref() == Some("d") {
                data = value_bytes(v);
                break;
            }
        }
        let data = data.ok_or_else(|| bad_reply("stream entry without d"))?;
        let mut p = proto::Publication::decode(data)
            .map_err(|e| EngineError::with_context("bad publication in stream", e))?;
        p.offset = offset;
        out.push(publication_from_proto(p));
    }
    Ok(out)
}

/// Applies since/limit/reverse to a list-mode history (oldest first, contiguous).
fn filter_list(mut pubs: Vec<Publication>, filter: &HistoryFilter) -> Vec<Publication> {
    if let Some(since) = &filter.since {
        if filter.reverse {
            pubs.retain(|p| p.offset < since.offset);
        } else {
            pubs.retain(|p| p.offset > since.offset);
        }
    }
    if filter.reverse {
        pubs.reverse();
    }
    if let Ok(limit) = usize::try_from(filter.limit) {
        pubs.truncate(limit);
    }
    pubs
}

impl RedisBroker {
    /// Connects the command connections of every shard. PUB/SUB connections open in
    /// [`Broker::run`] / [`Controller::run`].
    pub async fn new(config: RedisConfig) -> Result<Self, RedisEngineError> {
        if config.pubsub_partitions == 0 {
            return Err(RedisEngineError::Config(
                "pubsub_partitions must be > 0".into(),
            ));
        }
        let shards = Shard::connect_all(&config).await?;
        let keys = Keys::new(&config.prefix, config.is_cluster());
        let stats = Arc::new(PubSubStats::default());
        let partitions = shards
            .iter()
            .map(|s| {
                (0..config.pubsub_partitions)
                    .map(|_| Arc::new(Partition::new(s.clone(), stats.clone())))
                    .collect()
            })
            .collect();
        Ok(RedisBroker {
            inner: Arc::new(Inner {
                dispatcher: Arc::new(Dispatcher::new(keys.clone(), stats)),
                keys,
                shards,
                partitions,
                started: tokio::sync::Mutex::new(false),
                cancel: CancellationToken::new(),
                control_round: AtomicUsize::new(0),
                config,
            }),
        })
    }

    /// A presence manager sharing this broker's connections.
    pub fn presence_manager(&self) -> RedisPresenceManager {
        RedisPresenceManager::from_parts(
            self.inner.shards.clone(),
            self.inner.keys.clone(),
            self.inner.config.presence_ttl,
        )
    }

    /// Writes Centrifugo's `broker_redis_pub_sub_errors` and
    /// `broker_redis_pub_sub_buffered_messages` families for this broker's PUB/SUB
    /// connections (the exposition's namespace prefixes the names).
    pub fn write_metrics(&self, e: &mut gyre::metrics::Exposition<'_>) {
        self.inner.dispatcher.stats.write(e);
    }

    /// Stops the PUB/SUB readers; commands keep working until the broker is dropped.
    pub fn close(&self) {
        self.inner.cancel.cancel();
    }
}

impl Inner {
    fn shard_index(&self, channel: &str) -> usize {
        consistent_index(channel, self.shards.len())
    }

    fn partition(&self, channel: &str) -> &Arc<Partition> {
        let parts = &self.partitions[self.shard_index(channel)];
        &parts[partition_index(channel, parts.len())]
    }

    fn meta_ttl(&self, ttl: Option<Duration>) -> u64 {
        ttl_secs(
            ttl.filter(|t| !t.is_zero())
                .unwrap_or(self.config.history_meta_ttl),
        )
    }

    /// Spawns the PUB/SUB readers once and waits until they are connected.
    async fn start(&self) -> Result<(), BrokerError> {
        {
            let mut started = self.started.lock().await;
            if !*started {
                for part in self.partitions.iter().flatten() {
                    tokio::spawn(read_loop(
                        part.clone(),
                        self.dispatcher.clone(),
                        self.cancel.clone(),
                    ));
                }
                *started = true;
            }
        }
        let within = self.config.connect_timeout + self.config.io_timeout;
        for part in self.partitions.iter().flatten() {
            if !part.wait_connected(within).await {
                // The readers keep retrying; this reports that the engine is down now.
                return Err(EngineError::msg("Redis PUB/SUB connection not established").into());
            }
        }
        Ok(())
    }

    async fn publish(
        &self,
        channel: &str,
        data: Bytes,
        options: PublishOptions,
    ) -> Result<PublishResult, BrokerError> {
        let shard = &self.shards[self.shard_index(channel)];
        let keeps_history = options.keeps_history();
        let body = proto::Publication {
            data,
            info: options.client_info.as_ref().map(info_to_proto),
            tags: options.tags,
            time: unix_millis(),
            // Without history the delta flag travels inside the publication (upstream).
            delta: !keeps_history && options.use_delta,
            ..Default::default()
        }
        .encode_to_vec();
        let pubsub_channel = self.keys.client_channel(channel);
        let result_ttl = options.idempotency_key.as_ref().map(|_| {
            ttl_secs(
                options
                    .idempotent_result_ttl
                    .unwrap_or(DEFAULT_IDEMPOTENT_RESULT_TTL),
            )
        });
        // Without an idempotency key the script never touches this key, but it is still
        // named after the channel: in a cluster every key of a script must share a slot.
        let result_key = self.keys.result(
            channel,
            options.idempotency_key.as_deref().unwrap_or_default(),
        );
        let mut conn = shard.conn();

        if !keeps_history {
            let Some(result_ttl) = result_ttl else {
                let cmd = redis::cmd("PUBLISH")
                    .arg(&pubsub_channel)
                    .arg(body)
                    .to_owned();
                shard.exec(cmd.query_async::<Value>(&mut conn)).await?;
                return Ok(PublishResult::default());
            };
            let mut invocation = PUBLISH_IDEMPOTENT_SCRIPT.key(&result_key);
            invocation
                .arg(body)
                .arg(&pubsub_channel)
                .arg("publish")
                .arg(result_ttl);
            let suppressed: i64 = shard.exec(invocation.invoke_async(&mut conn)).await?;
            return Ok(PublishResult {
                suppressed: suppressed == 1,
                ..Default::default()
            });
        }

        let use_lists = self.config.history_use_lists;
        let (script, stream_key, meta_key, size) = if use_lists {
            (
                &*PUBLISH_LIST_SCRIPT,
                self.keys.list(channel),
                self.keys.list_meta(channel),
                options.history_size.saturating_sub(1),
            )
        } else {
            (
                &*PUBLISH_STREAM_SCRIPT,
                self.keys.stream(channel),
                self.keys.stream_meta(channel),
                options.history_size,
            )
        };
        let mut invocation = script.key(&stream_key);
        invocation
            .key(&meta_key)
            .key(&result_key)
            .arg(body)
            .arg(size)
            .arg(ttl_secs(options.history_ttl))
            .arg(&pubsub_channel)
            .arg(self.meta_ttl(options.history_meta_ttl))
            .arg(new_epoch())
            .arg("publish")
            .arg(result_ttl.map(|t| t.to_string()).unwrap_or_default())
            .arg(if options.use_delta { "1" } else { "0" })
            .arg(options.version)
            .arg(&options.version_epoch);
        let reply: Value = shard.exec(invocation.invoke_async(&mut conn)).await?;
        let Value::Array(parts) = reply else {
            return Err(bad_reply("publish"));
        };
        if parts.len() != 4 {
            return Err(bad_reply("publish arity"));
        }
        let offset = value_u64(&parts[0]).ok_or_else(|| bad_reply("offset"))?;
        let epoch = value_string(&parts[1]).ok_or_else(|| bad_reply("epoch"))?;
        let flag = |v: &Value| value_string(v).as_deref() == Some("1");
        Ok(PublishResult {
            position: StreamPosition::new(offset, epoch),
            suppressed: flag(&parts[2]) || flag(&parts[3]),
        })
    }

    async fn publish_join_leave(
        &self,
        channel: &str,
        join: bool,
        info: &ClientInfo,
    ) -> Result<(), BrokerError> {
        let shard = &self.shards[self.shard_index(channel)];
        let cmd = redis::cmd("PUBLISH")
            .arg(self.keys.client_channel(channel))
            .arg(encode_join_leave(join, info))
            .to_owned();
        let mut conn = shard.conn();
        shard.exec(cmd.query_async::<Value>(&mut conn)).await?;
        Ok(())
    }

    async fn history(
        &self,
        channel: &str,
        options: HistoryOptions,
    ) -> Result<HistoryResult, BrokerError> {
        let filter = options.filter;
        if filter.reverse && filter.since.as_ref().is_some_and(|s| s.offset == 0) {
            return Err(BrokerError::BadRequest(
                "reverse history since offset 0".into(),
            ));
        }
        let shard = &self.shards[self.shard_index(channel)];
        let mut conn = shard.conn();
        let meta_ttl = self.meta_ttl(options.meta_ttl);
        let mut include = filter.limit != 0;

        let reply: Value = if self.config.history_use_lists {
            let mut invocation = HISTORY_LIST_SCRIPT.key(self.keys.list(channel));
            invocation
                .key(self.keys.list_meta(channel))
                .arg(if include { "1" } else { "0" })
                .arg(meta_ttl)
                .arg(new_epoch());
            shard.exec(invocation.invoke_async(&mut conn)).await?
        } else {
            // XRANGE bounds are inclusive: forward starts right after `since`, reverse
            // right before it; a reverse read before offset 1 has nothing to return.
            let start = match &filter.since {
                None => 0,
                Some(since) if filter.reverse => {
                    let start = since.offset - 1;
                    if start == 0 {
                        include = false;
                    }
                    start
                }
                Some(since) => since.offset.saturating_add(1),
            };
            let count = u64::try_from(filter.limit).unwrap_or(0);
            let mut invocation = HISTORY_STREAM_SCRIPT.key(self.keys.stream(channel));
            invocation
                .key(self.keys.stream_meta(channel))
                .arg(if include { "1" } else { "0" })
                .arg(start)
                .arg(count)
                .arg(if filter.reverse { "1" } else { "0" })
                .arg(meta_ttl)
                .arg(new_epoch());
            shard.exec(invocation.invoke_async(&mut conn)).await?
        };

        let Value::Array(mut parts) = reply else {
            return Err(bad_reply("history"));
        };
        if parts.len() < 2 {
            return Err(bad_reply("history arity"));
        }
        let entries = (parts.len() > 2).then(|| parts.swap_remove(2));
        let top = value_u64(&parts[0]).ok_or_else(|| bad_reply("top offset"))?;
        let epoch = value_string(&parts[1]).ok_or_else(|| bad_reply("epoch"))?;
        if let Some(since) = &filter.since
            && !since.epoch.is_empty()
            && since.epoch != epoch
        {
            return Err(BrokerError::UnrecoverablePosition);
        }
        let publications = match entries {
            Some(entries) if include => {
                if self.config.history_use_lists {
                    let Value::Array(items) = entries else {
                        return Err(bad_reply("list items"));
                    };
                    let mut pubs = Vec::with_capacity(items.len());
                    // Newest first in Redis; oldest first for filtering.
                    for item in items.into_iter().rev() {
                        let item = value_bytes(item).ok_or_else(|| bad_reply("list item"))?;
                        match payload::parse(&item) {
                            Ok(Push::Publication { publication, .. }) => pubs.push(publication),
                            _ => return Err(bad_reply("list item payload")),
                        }
                    }
                    filter_list(pubs, &filter)
                } else {
                    decode_stream_entries(entries)?
                }
            }
            _ => Vec::new(),
        };
        Ok(HistoryResult {
            position: StreamPosition::new(top, epoch),
            publications,
        })
    }

    async fn remove_history(&self, channel: &str) -> Result<(), BrokerError> {
        let shard = &self.shards[self.shard_index(channel)];
        let key = if self.config.history_use_lists {
            self.keys.list(channel)
        } else {
            self.keys.stream(channel)
        };
        let cmd = redis::cmd("DEL").arg(key).to_owned();
        let mut conn = shard.conn();
        shard.exec(cmd.query_async::<Value>(&mut conn)).await?;
        Ok(())
    }

    async fn publish_control(&self, data: Bytes, to: Option<&str>) -> Result<(), BrokerError> {
        let i = self.control_round.fetch_add(1, Ordering::Relaxed) % self.shards.len();
        let shard = &self.shards[i];
        let channel = match to {
            Some(node) => self.keys.node(node),
            None => self.keys.control(),
        };
        let cmd = redis::cmd("PUBLISH").arg(channel).arg(&data[..]).to_owned();
        let mut conn = shard.conn();
        shard.exec(cmd.query_async::<Value>(&mut conn)).await?;
        Ok(())
    }

    async fn run_control(
        &self,
        node_id: &str,
        handler: Arc<dyn ControlEventHandler>,
    ) -> Result<(), BrokerError> {
        let node_channel = self.keys.node(node_id);
        if !self.dispatcher.set_control(node_channel.clone(), handler) {
            return Err(BrokerError::BadRequest(
                "Redis controller is already running".into(),
            ));
        }
        self.start().await?;
        // Control publishes are spread over shards, so listen on every shard.
        for parts in &self.partitions {
            parts[0]
                .subscribe(vec![self.keys.control(), node_channel.clone()])
                .await?;
        }
        Ok(())
    }
}

impl Broker for RedisBroker {
    fn run(&self, handler: Arc<dyn BrokerEventHandler>) -> BoxFuture<'_, Result<(), BrokerError>> {
        Box::pin(async move {
            self.inner
                .dispatcher
                .broker
                .set(handler)
                .map_err(|_| BrokerError::BadRequest("Redis broker is already running".into()))?;
            self.inner.start().await
        })
    }

    fn subscribe(&self, channel: &str) -> BoxFuture<'_, Result<(), BrokerError>> {
        let name = self.inner.keys.client_channel(channel);
        let part = self.inner.partition(channel).clone();
        Box::pin(async move { part.subscribe(vec![name]).await })
    }

    fn unsubscribe(&self, channel: &str) -> BoxFuture<'_, Result<(), BrokerError>> {
        let name = self.inner.keys.client_channel(channel);
        let part = self.inner.partition(channel).clone();
        Box::pin(async move { part.unsubscribe(&name).await })
    }

    fn publish(
        &self,
        channel: &str,
        data: Bytes,
        options: PublishOptions,
    ) -> BoxFuture<'_, Result<PublishResult, BrokerError>> {
        let channel = channel.to_owned();
        Box::pin(async move { self.inner.publish(&channel, data, options).await })
    }

    fn publish_join(
        &self,
        channel: &str,
        info: ClientInfo,
    ) -> BoxFuture<'_, Result<(), BrokerError>> {
        let channel = channel.to_owned();
        Box::pin(async move { self.inner.publish_join_leave(&channel, true, &info).await })
    }

    fn publish_leave(
        &self,
        channel: &str,
        info: ClientInfo,
    ) -> BoxFuture<'_, Result<(), BrokerError>> {
        let channel = channel.to_owned();
        Box::pin(async move { self.inner.publish_join_leave(&channel, false, &info).await })
    }

    fn history(
        &self,
        channel: &str,
        options: HistoryOptions,
    ) -> BoxFuture<'_, Result<HistoryResult, BrokerError>> {
        let channel = channel.to_owned();
        Box::pin(async move { self.inner.history(&channel, options).await })
    }

    fn remove_history(&self, channel: &str) -> BoxFuture<'_, Result<(), BrokerError>> {
        let channel = channel.to_owned();
        Box::pin(async move { self.inner.remove_history(&channel).await })
    }
}

impl Controller for RedisBroker {
    fn run(
        &self,
        node_id: &str,
        handler: Arc<dyn ControlEventHandler>,
    ) -> BoxFuture<'_, Result<(), BrokerError>> {
        let node_id = node_id.to_owned();
        Box::pin(async move { self.inner.run_control(&node_id, handler).await })
    }

    fn publish_control(
        &self,
        data: Bytes,
        to: Option<&str>,
    ) -> BoxFuture<'_, Result<(), BrokerError>> {
        let to = to.map(str::to_owned);
        Box::pin(async move { self.inner.publish_control(data, to.as_deref()).await })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttl_rounds_up() {
        assert_eq!(ttl_secs(Duration::ZERO), 1);
        assert_eq!(ttl_secs(Duration::from_millis(1500)), 2);
        assert_eq!(ttl_secs(Duration::from_secs(60)), 60);
    }

    #[test]
    fn list_filter_matches_stream_semantics() {
        let pubs: Vec<Publication> = (3..=6)
            .map(|o| {
                let mut p = Publication::new(Bytes::new());
                p.offset = o;
                p
            })
            .collect();
        let offs = |f: HistoryFilter| -> Vec<u64> {
            filter_list(pubs.clone(), &f)
                .iter()
                .map(|p| p.offset)
                .collect()
        };
        let f = |since: Option<u64>, limit: i32, reverse: bool| {
            let mut f = HistoryFilter::default();
            f.since = since.map(|o| StreamPosition::new(o, ""));
            f.limit = limit;
            f.reverse = reverse;
            f
        };
        assert_eq!(offs(f(None, -1, false)), vec![3, 4, 5, 6]);
        assert_eq!(offs(f(Some(4), 1, false)), vec![5]);
        assert_eq!(offs(f(Some(5), -1, true)), vec![4, 3]);
        assert_eq!(offs(f(None, 2, true)), vec![6, 5]);
    }
}
