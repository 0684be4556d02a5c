//! The Redis Streams consumer (upstream `consuming/redis_stream.go` over
//! `internal/redisqueue`).
//!
//! Each stream is read through the consumer group `consumer_group` (created at `$` with
//! `MKSTREAM` when missing, so a new group starts with new entries) under this node's id as
//! consumer name: `XREADGROUP ... >` blocks up to 5 s for up to `num_workers` entries, which
//! run concurrently, and each is `XACK`ed once its command ran (or was skipped as unusable).
//! An entry whose command failed with a retryable error stays pending; entries pending
//! longer than `visibility_timeout` (on this consumer, or on a consumer that died, such as
//! this node before a restart) are taken over with `XAUTOCLAIM` and run again.
//!
//! An entry carries the command in its `payload_value` field, and the method in its
//! `method_value` field (without it, the payload is a `{method, payload}` envelope); in
//! publication data mode the payload is the data and the other fields name channels and
//! options.

use std::collections::HashMap;
use std::time::Duration;

use anyhow::Context as _;
use futures_util::StreamExt as _;
use redis::aio::MultiplexedConnection;
use redis::streams::{StreamAutoClaimReply, StreamId, StreamReadReply};
use redis::{AsyncConnectionConfig, IntoConnectionInfo, Value};

use super::{ConsumedPublication, Context, Retry, parse_bool, split_channels};
use crate::config::RedisStreamConsumerConfig;

/// How long one `XREADGROUP` blocks (upstream's `BlockingTimeout`).
const BLOCK: Duration = Duration::from_secs(5);
/// How often pending entries are looked at (upstream's `ReclaimInterval`), at most.
const RECLAIM_INTERVAL: Duration = Duration::from_secs(5);

pub(super) async fn start(ctx: Context, config: RedisStreamConsumerConfig) -> anyhow::Result<()> {
    let r = &config.redis;
    let address = r
        .address
        .first()
        .map_or("redis://127.0.0.1:6379", String::as_str);
    let url = if address.contains("://") {
        address.to_owned()
    } else {
        format!("redis://{address}")
    };
    let info = url
        .as_str()
        .into_connection_info()
        .with_context(|| format!("redis address {url}"))?;
    let mut settings = info.redis_settings().clone();
    if r.db > 0 {
        settings = settings.set_db(r.db);
    }
    if !r.user.is_empty() {
        settings = settings.set_username(&r.user);
    }
    if !r.password.is_empty() {
        settings = settings.set_password(&r.password);
    }
    let client = redis::Client::open(info.set_redis_settings(settings))?;
    let connect_timeout = r.connect_timeout.to_std().unwrap_or(Duration::from_secs(1));
    let io_timeout = r.io_timeout.to_std().unwrap_or(Duration::from_secs(4));
    let commands = client
        .get_multiplexed_async_connection_with_config(
            &AsyncConnectionConfig::new()
                .set_connection_timeout(Some(connect_timeout))
                .set_response_timeout(Some(io_timeout)),
        )
        .await
        .context("connecting to Redis")?;
    // Blocking reads get their own connection: on a shared one they would hold up acks.
    let reads = client
        .get_multiplexed_async_connection_with_config(
            &AsyncConnectionConfig::new()
                .set_connection_timeout(Some(connect_timeout))
                .set_response_timeout(Some(BLOCK + io_timeout)),
        )
        .await
        .context("connecting to Redis")?;
    let _: String = redis::cmd("PING")
        .query_async(&mut commands.clone())
        .await
        .context("failed to ping Redis")?;
    let stream_consumer = StreamConsumer {
        ctx,
        config,
        commands,
        reads,
    };
    for stream in &stream_consumer.config.streams {
        stream_consumer.create_group(stream).await?;
    }
    for stream in stream_consumer.config.streams.clone() {
        let c = stream_consumer.clone();
        let s = stream.clone();
        tokio::spawn(async move { c.poll(&s).await });
        let c = stream_consumer.clone();
        tokio::spawn(async move { c.reclaim(&stream).await });
    }
    Ok(())
}

#[derive(Clone)]
struct StreamConsumer {
    ctx: Context,
    config: RedisStreamConsumerConfig,
    commands: MultiplexedConnection,
    reads: MultiplexedConnection,
}

impl StreamConsumer {
    fn consumer_name(&self) -> &str {
        self.ctx.app.node.id()
    }

    fn workers(&self) -> usize {
        self.config.num_workers.max(1) as usize
    }

    async fn create_group(&self, stream: &str) -> anyhow::Result<()> {
        let created: redis::RedisResult<String> = redis::cmd("XGROUP")
            .arg("CREATE")
            .arg(stream)
            .arg(&self.config.consumer_group)
            .arg("$")
            .arg("MKSTREAM")
            .query_async(&mut self.commands.clone())
            .await;
        match created {
            Ok(_) => Ok(()),
            Err(e) if e.code() == Some("BUSYGROUP") => Ok(()),
            Err(e) => Err(e).with_context(|| format!("creating consumer group of stream {stream}")),
        }
    }

    /// Reads new entries until the server stops.
    async fn poll(&self, stream: &str) {
        let mut retries = 0;
        while !self.ctx.stop.is_cancelled() {
            let mut reads = self.reads.clone();
            let mut command = redis::cmd("XREADGROUP");
            command
                .arg("GROUP")
                .arg(&self.config.consumer_group)
                .arg(self.consumer_name())
                .arg("COUNT")
                .arg(self.workers())
                .arg("BLOCK")
                .arg(BLOCK.as_millis() as u64)
                .arg("STREAMS")
                .arg(stream)
                .arg(">");
            let read = command.query_async::<Option<StreamReadReply>>(&mut reads);
            let reply = tokio::select! {
                r = read => r,
                _ = self.ctx.stop.cancelled() => return,
            };
            match reply {
                Ok(reply) => {
                    retries = 0;
                    let entries = reply
                        .into_iter()
                        .flat_map(|r| r.keys)
                        .flat_map(|k| k.ids)
                        .collect();
                    self.run(stream, entries).await;
                }
                Err(e) => {
                    if e.code() == Some("NOGROUP") {
                        // The stream or its group was deleted: make them again.
                        if let Err(e) = self.create_group(stream).await {
                            tracing::error!(consumer = %self.ctx.name, stream, error = %e, "error creating consumer group");
                        }
                    }
                    retries += 1;
                    self.ctx.error();
                    tracing::error!(consumer = %self.ctx.name, stream, error = %e, "error reading redis stream");
                    if !self.ctx.sleep(super::backoff(retries)).await {
                        return;
                    }
                }
            }
        }
    }

    /// Takes over entries pending longer than the visibility timeout, right away and then
    /// periodically.
    async fn reclaim(&self, stream: &str) {
        let visibility = self
            .config
            .visibility_timeout
            .to_std()
            .filter(|d| !d.is_zero())
            .unwrap_or(Duration::from_secs(30));
        let interval = RECLAIM_INTERVAL.min(visibility);
        loop {
            let mut start = "0-0".to_owned();
            loop {
                let claim = redis::cmd("XAUTOCLAIM")
                    .arg(stream)
                    .arg(&self.config.consumer_group)
                    .arg(self.consumer_name())
                    .arg(visibility.as_millis() as u64)
                    .arg(&start)
                    .arg("COUNT")
                    .arg(self.workers())
                    .query_async::<StreamAutoClaimReply>(&mut self.commands.clone())
                    .await;
                match claim {
                    Ok(reply) => {
                        let done = reply.claimed.is_empty() || reply.next_stream_id == "0-0";
                        self.run(stream, reply.claimed).await;
                        if done {
                            break;
                        }
                        start = reply.next_stream_id;
                    }
                    Err(e) => {
                        self.ctx.error();
                        tracing::error!(consumer = %self.ctx.name, stream, error = %e, "error listing pending messages");
                        break;
                    }
                }
            }
            if !self.ctx.sleep(interval).await {
                return;
            }
        }
    }

    /// Runs entries, `num_workers` at a time, acknowledging each one done.
    async fn run(&self, stream: &str, entries: Vec<StreamId>) {
        futures_util::stream::iter(entries)
            .for_each_concurrent(self.workers(), |entry| async move {
                match self.process(&entry).await {
                    Ok(()) => {
                        let acked: redis::RedisResult<i64> = redis::cmd("XACK")
                            .arg(stream)
                            .arg(&self.config.consumer_group)
                            .arg(&entry.id)
                            .query_async(&mut self.commands.clone())
                            .await;
                        match acked {
                            Ok(_) => self.ctx.processed(1),
                            Err(e) => {
                                self.ctx.error();
                                tracing::error!(consumer = %self.ctx.name, stream, id = %entry.id, error = %e, "error acknowledging message");
                            }
                        }
                    }
                    Err(e) => {
                        self.ctx.error();
                        tracing::error!(consumer = %self.ctx.name, stream, id = %entry.id, error = %e, "error processing redis stream message");
                    }
                }
            })
            .await;
    }

    async fn process(&self, entry: &StreamId) -> Result<(), Retry> {
        let Some(payload) = field(&entry.map, &self.config.payload_value) else {
            tracing::error!(consumer = %self.ctx.name, expected_value = %self.config.payload_value, "payload value not found in redis stream message");
            return Ok(());
        };
        let mode = &self.config.publication_data_mode;
        if !mode.enabled {
            let method = text(&entry.map, &self.config.method_value);
            return self.ctx.dispatch_command(&method, &payload).await;
        }
        let delta = match parse_optional(&entry.map, &mode.delta_value, parse_bool) {
            Ok(d) => d.unwrap_or(false),
            Err(e) => {
                tracing::error!(consumer = %self.ctx.name, error = e, "skip message: bad delta value");
                return Ok(());
            }
        };
        let version = match parse_optional(&entry.map, &mode.version_value, |v| v.parse().ok()) {
            Ok(v) => v.unwrap_or(0),
            Err(e) => {
                tracing::error!(consumer = %self.ctx.name, error = e, "skip message: bad version value");
                return Ok(());
            }
        };
        let mut tags = HashMap::new();
        if !mode.tags_value_prefix.is_empty() {
            for (k, v) in &entry.map {
                if let Some(tag) = k.strip_prefix(&mode.tags_value_prefix)
                    && let Some(v) = value_bytes(v)
                {
                    tags.insert(tag.to_owned(), String::from_utf8_lossy(&v).into_owned());
                }
            }
        }
        let publication = ConsumedPublication {
            channels: split_channels(&text(&entry.map, &mode.channels_value)),
            data: payload.into(),
            idempotency_key: text(&entry.map, &mode.idempotency_key_value),
            delta,
            tags,
            version,
            version_epoch: text(&entry.map, &mode.version_epoch_value),
        };
        self.ctx.dispatch_publication(publication).await
    }
}

fn value_bytes(v: &Value) -> Option<Vec<u8>> {
    match v {
        Value::BulkString(b) => Some(b.clone()),
        Value::SimpleString(s) => Some(s.clone().into_bytes()),
        Value::Int(i) => Some(i.to_string().into_bytes()),
        _ => None,
    }
}

fn field(map: &HashMap<String, Value>, key: &str) -> Option<Vec<u8>> {
    if key.is_empty() {
        return None;
    }
    map.get(key).and_then(value_bytes)
}

/// A field as text; empty when absent (upstream's `getStringProperty`).
fn text(map: &HashMap<String, Value>, key: &str) -> String {
    field(map, key)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default()
}

/// An optional field parsed by `parse`: absent → `None`, unparsable → an error.
fn parse_optional<T>(
    map: &HashMap<String, Value>,
    key: &str,
    parse: impl Fn(&str) -> Option<T>,
) -> Result<Option<T>, &'static str> {
    match field(map, key) {
        None => Ok(None),
        Some(b) => {
            let s = String::from_utf8_lossy(&b);
            parse(&s).map(Some).ok_or("unparsable value")
        }
    }
}
