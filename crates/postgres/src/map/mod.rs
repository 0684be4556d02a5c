//! The PostgreSQL map broker: map channels (keyed state plus change stream) kept in
//! Centrifugo v6's `<prefix>_map_*` tables and changed through its `<prefix>_map_publish`,
//! `_remove` and `_expire_keys` functions, so Gyre and Centrifugo nodes can share them.
//!
//! * **State** (`_state`): one row per key with its offset, TTL deadline, version.
//! * **Stream** (`_stream`): every change with its per-channel offset and epoch, in daily
//!   partitions dropped after `partition_retention_days`. It is also the outbox: every
//!   node polls it per shard and delivers new rows to its subscribers (see `outbox`).
//! * **Meta** (`_meta`): per channel the top offset and the epoch; a channel whose meta
//!   expired (`meta_ttl`) starts again with a new epoch and no keys.
//!
//! Differences from the memory broker, as upstream's PostgreSQL broker: the stream is not
//! cut at `stream_size` / `stream_ttl` (it is kept until its partition is dropped), and
//! changes of `ephemeral` channels carry their stream offset when delivered (publish
//! results still report offset 0 for them).

mod config;
mod maintenance;
mod outbox;
mod rows;
mod setup;
mod sql;

use std::collections::HashSet;
use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use gyre::{
    BoxFuture, BrokerError, BrokerEventHandler, HistoryResult, KeyMode, MapBroker,
    MapPublishOptions, MapPublishResult, MapReadStateOptions, MapReadStreamOptions, MapStateResult,
    Publication, StreamPosition, SuppressReason,
};
use parking_lot::RwLock;
use tokio::sync::Notify;
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;
use tokio_util::sync::CancellationToken;

pub use config::PgMapBrokerConfig;

use crate::pool::Pool;
use crate::{PgError, partition, schema};
use rows::{DataCodec, col, interval, offset, state_entry, stream_entry, tags_param};
use sql::{Names, Statements};

/// Map broker on PostgreSQL, compatible with Centrifugo v6's (`map_broker.type:
/// postgres`).
///
/// ```no_run
/// use std::sync::Arc;
/// use gyre_postgres::map::{PgMapBroker, PgMapBrokerConfig};
///
/// # async fn start() -> Result<(), Box<dyn std::error::Error>> {
/// let broker = PgMapBroker::connect(PgMapBrokerConfig::new("postgres://localhost/app")).await?;
/// let node = gyre::Node::builder().map_broker_arc(Arc::new(broker)).build();
/// node.run().await?;
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct PgMapBroker {
    inner: Arc<Inner>,
}

/// Stops the background work when the last handle goes.
#[derive(Debug)]
struct Inner {
    shared: Arc<Shared>,
    stop: CancellationToken,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// What the broker's calls and background tasks share.
pub(crate) struct Shared {
    config: PgMapBrokerConfig,
    names: Names,
    statements: Statements,
    codec: DataCodec,
    pool: Pool,
    notify_config: tokio_postgres::Config,
    handler: OnceLock<Arc<dyn BrokerEventHandler>>,
    /// Channels this node subscribed to: the only ones whose changes it delivers.
    subscribed: RwLock<HashSet<String>>,
    /// One per shard: wakes its poller early.
    wake: Vec<Notify>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgMapBroker")
            .field("prefix", &self.names.prefix)
            .field("shards", &self.config.num_shards)
            .field("running", &self.handler.get().is_some())
            .field("pool", &self.pool)
            .finish_non_exhaustive()
    }
}

impl Shared {
    fn wake_all(&self) {
        for w in &self.wake {
            w.notify_one();
        }
    }
}

impl PgMapBroker {
    /// Connects, creates the schema (unless `skip_schema_init`) and today's partitions.
    /// Changes are delivered once [`MapBroker::run`] was called.
    pub async fn connect(config: PgMapBrokerConfig) -> Result<Self, PgError> {
        if config.dsn.is_empty() {
            return Err(PgError::Config("dsn is required".into()));
        }
        if config.num_shards == 0 || config.num_shards > i16::MAX as u16 {
            return Err(PgError::Config(format!(
                "num_shards must be between 1 and {}",
                i16::MAX
            )));
        }
        let prefix = schema::table_prefix(&config.table_prefix)?;
        let names = Names::new(&prefix, config.binary_data);
        let statements = Statements::new(&names, config.binary_data);
        let stop = CancellationToken::new();
        let pool = Pool::new(&config.dsn, config.pool_size, stop.clone())?;
        let notify_config = config
            .notify_dsn
            .as_deref()
            .filter(|d| !d.is_empty())
            .unwrap_or(&config.dsn)
            .parse()
            .map_err(|e: tokio_postgres::Error| PgError::Config(format!("notify dsn: {e}")))?;
        {
            let mut conn = pool.get().await?;
            if !config.skip_schema_init {
                setup::ensure_schema(&mut conn, &names, config.num_shards).await?;
            }
            partition::ensure_daily(
                conn.client(),
                &names.stream,
                config.partition_lookahead_days,
            )
            .await?;
        }
        let shared = Arc::new(Shared {
            codec: DataCodec {
                binary: config.binary_data,
            },
            wake: (0..config.num_shards).map(|_| Notify::new()).collect(),
            config,
            names,
            statements,
            pool,
            notify_config,
            handler: OnceLock::new(),
            subscribed: RwLock::new(HashSet::new()),
        });
        Ok(PgMapBroker {
            inner: Arc::new(Inner { shared, stop }),
        })
    }

    /// Stops polling and the background work; calls made afterwards may still run.
    pub fn close(&self) {
        self.inner.stop.cancel();
    }

    fn shared(&self) -> &Shared {
        &self.inner.shared
    }

    /// Removes the keys past their TTL now (the background worker does this every
    /// `ttl_check_interval`).
    pub async fn expire_keys(&self) -> Result<(), BrokerError> {
        Ok(maintenance::expire_keys(self.shared()).await?)
    }

    /// Runs the cleanup now (the background worker does this every `cleanup_interval`).
    pub async fn cleanup(&self) -> Result<(), BrokerError> {
        Ok(maintenance::cleanup(self.shared()).await?)
    }

    async fn query(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Vec<Row>, PgError> {
        let mut conn = self.shared().pool.get().await?;
        let statement = conn.prepared(sql).await?;
        Ok(conn.client().query(&statement, params).await?)
    }

    async fn write(
        &self,
        channel: &str,
        key: &str,
        data: Option<Bytes>,
        options: MapPublishOptions,
    ) -> Result<MapPublishResult, BrokerError> {
        let s = self.shared();
        let has_stream = options.channel.mode.has_stream();
        if !has_stream && (options.version > 0 || options.expected_position.is_some()) {
            return Err(BrokerError::BadRequest(
                "ephemeral maps take no version and no expected position".into(),
            ));
        }
        if key.is_empty() {
            return match data {
                Some(data) if !has_stream && options.idempotency_key.is_none() => {
                    self.broadcast(channel, data, &options).await?;
                    Ok(MapPublishResult::default())
                }
                _ => Err(BrokerError::BadRequest("map key required".into())),
            };
        }
        let info = options.client_info.as_ref();
        let client_id = info.map(|i| i.client.as_str()).filter(|c| !c.is_empty());
        let user_id = info.map(|i| i.user.as_str()).filter(|u| !u.is_empty());
        let meta_ttl = interval(options.channel.meta_ttl);
        let (expected_offset, expected_epoch) = match &options.expected_position {
            Some(p) => (
                Some(to_i64(p.offset, "expected offset")?),
                Some(p.epoch.as_str()).filter(|e| !e.is_empty()),
            ),
            None => (None, None),
        };
        let idempotency_ttl = options.idempotency_key.as_ref().and_then(|_| {
            interval(
                options
                    .idempotent_result_ttl
                    .unwrap_or(s.config.idempotent_result_ttl),
            )
        });
        let shards = i32::from(s.config.num_shards);
        let rows = match &data {
            Some(data) => {
                let key_mode = match options.key_mode {
                    KeyMode::IfNew => Some("if_new"),
                    KeyMode::IfExists => Some("if_exists"),
                    _ => None,
                };
                let (version, version_epoch) = if options.version > 0 {
                    (
                        Some(to_i64(options.version, "version")?),
                        Some(options.version_epoch.as_str()).filter(|e| !e.is_empty()),
                    )
                } else {
                    (None, None)
                };
                let data = s.codec.param(data)?;
                let conn_info = s
                    .codec
                    .param(info.map(|i| &i.conn_info).unwrap_or(&Bytes::new()))?;
                let chan_info = s
                    .codec
                    .param(info.map(|i| &i.chan_info).unwrap_or(&Bytes::new()))?;
                let params: [&(dyn ToSql + Sync); 19] = [
                    &channel,
                    &key,
                    &*data,
                    &tags_param(&options.tags),
                    &interval(options.channel.key_ttl),
                    &meta_ttl,
                    &key_mode,
                    &expected_offset,
                    &expected_epoch,
                    &version,
                    &version_epoch,
                    &options.idempotency_key,
                    &idempotency_ttl,
                    &client_id,
                    &user_id,
                    &*conn_info,
                    &*chan_info,
                    &options.refresh_ttl_on_suppress,
                    &shards,
                ];
                self.query(&s.statements.publish, &params).await?
            }
            None => {
                let params: [&(dyn ToSql + Sync); 10] = [
                    &channel,
                    &key,
                    &meta_ttl,
                    &expected_offset,
                    &expected_epoch,
                    &options.idempotency_key,
                    &idempotency_ttl,
                    &client_id,
                    &user_id,
                    &shards,
                ];
                self.query(&s.statements.remove, &params).await?
            }
        };
        let row = rows
            .first()
            .ok_or_else(|| PgError::Schema("the map function returned no row".into()))?;
        let mut result = self.write_result(key, row)?;
        if !has_stream {
            // Without a stream a change has no position to report (as the memory broker).
            result.position.offset = 0;
        }
        Ok(result)
    }

    fn write_result(&self, key: &str, row: &Row) -> Result<MapPublishResult, PgError> {
        let position = StreamPosition::new(
            offset(col::<Option<i64>>(row, 1)?.unwrap_or_default()),
            col::<Option<String>>(row, 2)?.unwrap_or_default(),
        );
        let suppressed = col::<Option<bool>>(row, 3)?.unwrap_or(false);
        let reason: Option<String> = col(row, 4)?;
        let mut result = MapPublishResult::default();
        result.position = position;
        if !suppressed {
            return Ok(result);
        }
        result.suppressed = Some(match reason.as_deref() {
            Some("idempotency") => SuppressReason::Idempotency,
            Some("version") => SuppressReason::Version,
            Some("key_exists") => SuppressReason::KeyExists,
            Some("position_mismatch") => SuppressReason::PositionMismatch,
            _ => SuppressReason::KeyNotFound,
        });
        if result.suppressed == Some(SuppressReason::PositionMismatch)
            && let Some(at) = col::<Option<i64>>(row, 6)?
        {
            let mut current = Publication::new(self.shared().codec.get(row, 5)?);
            current.key = key.to_owned();
            current.offset = offset(at);
            result.current = Some(current);
        }
        Ok(result)
    }

    async fn broadcast(
        &self,
        channel: &str,
        data: Bytes,
        options: &MapPublishOptions,
    ) -> Result<(), BrokerError> {
        let s = self.shared();
        let info = options.client_info.as_ref();
        let client_id = info.map(|i| i.client.as_str()).filter(|c| !c.is_empty());
        let user_id = info.map(|i| i.user.as_str()).filter(|u| !u.is_empty());
        let data = s.codec.param(&data)?;
        let conn_info = s
            .codec
            .param(info.map(|i| &i.conn_info).unwrap_or(&Bytes::new()))?;
        let chan_info = s
            .codec
            .param(info.map(|i| &i.chan_info).unwrap_or(&Bytes::new()))?;
        let shards = i32::from(s.config.num_shards);
        let params: [&(dyn ToSql + Sync); 8] = [
            &channel,
            &shards,
            &*data,
            &tags_param(&options.tags),
            &client_id,
            &user_id,
            &*conn_info,
            &*chan_info,
        ];
        let sent = self.query(&s.statements.broadcast, &params).await?;
        if sent.is_empty() {
            return Err(PgError::Schema(format!(
                "{} has no row for this channel's shard",
                s.names.shard_lock
            ))
            .into());
        }
        Ok(())
    }

    /// Reads with `sql` (whose rows start with the channel's `top_offset, epoch`); a
    /// channel without meta is started first, as a write would start it.
    async fn read_channel(
        &self,
        channel: &str,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
        meta_ttl: std::time::Duration,
    ) -> Result<(StreamPosition, Vec<Row>), BrokerError> {
        for _ in 0..2 {
            let rows = self.query(sql, params).await?;
            if let Some(first) = rows.first() {
                let position =
                    StreamPosition::new(offset(col(first, 0)?), col::<String>(first, 1)?);
                return Ok((position, rows));
            }
            let ttl = interval(meta_ttl);
            let statements = &self.shared().statements;
            self.query(&statements.drop_dead_meta, &[&channel]).await?;
            self.query(&statements.create_meta, &[&channel, &ttl])
                .await?;
        }
        Err(PgError::Schema("the channel's meta vanished while it was read".into()).into())
    }

    async fn read_state_now(
        &self,
        channel: &str,
        options: MapReadStateOptions,
    ) -> Result<MapStateResult, BrokerError> {
        let s = self.shared();
        let codec = s.codec;
        // Paging reads one row more than the page to know whether another page follows.
        let page_limit = match options.limit {
            n if n < 0 => None,
            n => Some(i64::from(n) + 1),
        };
        let (position, rows) = match &options.key {
            Some(key) => {
                self.read_channel(
                    channel,
                    &s.statements.state_key,
                    &[&channel, key],
                    options.meta_ttl,
                )
                .await?
            }
            None if options.limit == 0 => {
                self.read_channel(
                    channel,
                    &s.statements.position,
                    &[&channel],
                    options.meta_ttl,
                )
                .await?
            }
            None => {
                self.read_channel(
                    channel,
                    &s.statements.state_page,
                    &[&channel, &options.cursor, &page_limit],
                    options.meta_ttl,
                )
                .await?
            }
        };
        if let Some(revision) = &options.revision
            && revision.epoch != position.epoch
        {
            return Err(BrokerError::UnrecoverablePosition);
        }
        let mut result = MapStateResult::default();
        result.position = position;
        if options.key.is_some() {
            for row in &rows {
                result.entries.extend(state_entry(codec, row, 2)?);
            }
            return Ok(result);
        }
        if options.limit == 0 {
            return Ok(result);
        }
        let page = usize::try_from(options.limit).unwrap_or(usize::MAX);
        let mut read = 0;
        let mut last_key = String::new();
        for row in &rows {
            let Some(entry) = state_entry(codec, row, 2)? else {
                continue;
            };
            read += 1;
            if read > page {
                // The row past the page: there is a next page, after the page's last key.
                result.cursor = last_key.clone();
                break;
            }
            last_key.clone_from(&entry.key);
            // Changed after the frozen position: the stream brings it to the reader.
            let newer = options
                .revision
                .as_ref()
                .is_some_and(|rev| entry.offset > rev.offset);
            if !newer {
                result.entries.push(entry);
            }
        }
        Ok(result)
    }

    async fn read_stream_now(
        &self,
        channel: &str,
        options: MapReadStreamOptions,
    ) -> Result<HistoryResult, BrokerError> {
        let s = self.shared();
        let limit = match options.limit {
            n if n < 0 => None,
            n => Some(i64::from(n)),
        };
        let (position, rows) = if options.limit == 0 {
            self.read_channel(
                channel,
                &s.statements.position,
                &[&channel],
                options.meta_ttl,
            )
            .await?
        } else if options.reverse {
            let before = match &options.since {
                Some(since) => to_i64(since.offset, "since offset")?,
                None => i64::MAX,
            };
            self.read_channel(
                channel,
                &s.statements.stream_reverse,
                &[&channel, &before, &limit],
                options.meta_ttl,
            )
            .await?
        } else {
            let after = match &options.since {
                Some(since) => to_i64(since.offset, "since offset")?,
                None => 0,
            };
            self.read_channel(
                channel,
                &s.statements.stream_forward,
                &[&channel, &after, &limit],
                options.meta_ttl,
            )
            .await?
        };
        if let Some(since) = &options.since
            && since.epoch != position.epoch
        {
            return Err(BrokerError::UnrecoverablePosition);
        }
        let mut publications = Vec::new();
        if options.limit != 0 {
            for row in &rows {
                publications.extend(stream_entry(s.codec, row, 2)?);
            }
        }
        Ok(HistoryResult {
            position,
            publications,
        })
    }

    async fn clear_now(&self, channel: &str) -> Result<(), PgError> {
        let mut conn = self.shared().pool.get().await?;
        let tx = conn.client_mut().transaction().await?;
        for sql in &self.shared().statements.clear {
            tx.execute(sql.as_str(), &[&channel]).await?;
        }
        tx.commit().await?;
        Ok(())
    }
}

fn to_i64(v: u64, what: &str) -> Result<i64, BrokerError> {
    i64::try_from(v).map_err(|_| BrokerError::BadRequest(format!("{what} out of range")))
}

impl MapBroker for PgMapBroker {
    fn run(&self, handler: Arc<dyn BrokerEventHandler>) -> BoxFuture<'_, Result<(), BrokerError>> {
        Box::pin(async move {
            let shared = &self.inner.shared;
            shared.handler.set(handler).map_err(|_| {
                BrokerError::BadRequest("postgresql map broker is already running".into())
            })?;
            // Taken before any worker starts: everything written after `run` returns is
            // delivered.
            let cursor = outbox::start_cursor(shared).await?;
            let stop = &self.inner.stop;
            for shard in 0..shared.config.num_shards {
                tokio::spawn(outbox::poll_shard(
                    shared.clone(),
                    shard,
                    cursor,
                    stop.clone(),
                ));
            }
            if shared.config.use_notify {
                tokio::spawn(outbox::listen(shared.clone(), stop.clone()));
            }
            tokio::spawn(maintenance::expire_keys_loop(shared.clone(), stop.clone()));
            tokio::spawn(maintenance::cleanup_loop(shared.clone(), stop.clone()));
            Ok(())
        })
    }

    fn subscribe(&self, channel: &str) -> BoxFuture<'_, Result<(), BrokerError>> {
        // Every node reads every shard's rows and keeps those of its channels.
        self.shared().subscribed.write().insert(channel.to_owned());
        Box::pin(async { Ok(()) })
    }

    fn unsubscribe(&self, channel: &str) -> BoxFuture<'_, Result<(), BrokerError>> {
        self.shared().subscribed.write().remove(channel);
        Box::pin(async { Ok(()) })
    }

    fn publish(
        &self,
        channel: &str,
        key: &str,
        data: Bytes,
        options: MapPublishOptions,
    ) -> BoxFuture<'_, Result<MapPublishResult, BrokerError>> {
        let (channel, key) = (channel.to_owned(), key.to_owned());
        Box::pin(async move { self.write(&channel, &key, Some(data), options).await })
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
            self.write(&channel, &key, None, options).await
        })
    }

    fn read_state(
        &self,
        channel: &str,
        options: MapReadStateOptions,
    ) -> BoxFuture<'_, Result<MapStateResult, BrokerError>> {
        let channel = channel.to_owned();
        Box::pin(async move { self.read_state_now(&channel, options).await })
    }

    fn read_stream(
        &self,
        channel: &str,
        options: MapReadStreamOptions,
    ) -> BoxFuture<'_, Result<HistoryResult, BrokerError>> {
        let channel = channel.to_owned();
        Box::pin(async move { self.read_stream_now(&channel, options).await })
    }

    fn stats(&self, channel: &str) -> BoxFuture<'_, Result<usize, BrokerError>> {
        let channel = channel.to_owned();
        Box::pin(async move {
            let rows = self
                .query(&self.shared().statements.stats, &[&channel])
                .await?;
            let n: i64 = match rows.first() {
                Some(row) => col(row, 0)?,
                None => 0,
            };
            Ok(usize::try_from(n).unwrap_or(0))
        })
    }

    fn clear(&self, channel: &str) -> BoxFuture<'_, Result<(), BrokerError>> {
        let channel = channel.to_owned();
        Box::pin(async move { Ok(self.clear_now(&channel).await?) })
    }
}
