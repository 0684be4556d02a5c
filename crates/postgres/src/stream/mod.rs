//! [`PgStreamBroker`]: publications, joins, leaves and history streams kept in
//! PostgreSQL and delivered to every node by polling the stream table (an outbox).
//!
//! Experimental, as in Centrifugo v6 (`broker.type: postgres`). Every publish is one call
//! of `<prefix>_stream_publish`, which assigns the offset under the channel's shard lock
//! and inserts a row; every node polls each shard's new rows in id order and hands them
//! to its handler. With `use_notify` the publish's `pg_notify` wakes the pollers at once.
//! Presence is not provided (use the memory or Redis presence manager).

mod config;
mod outbox;
mod schema;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use gyre::{
    BoxFuture, Broker, BrokerError, BrokerEventHandler, ClientInfo, HistoryOptions, HistoryResult,
    Publication, PublishOptions, PublishResult, StreamPosition,
};
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_postgres::Row;

pub use config::PgStreamConfig;

use crate::pg::{self, Pool, millis, ms_interval};
use schema::Names;

/// Row kinds of the stream table (upstream's values).
const KIND_PUBLICATION: i16 = 0;
const KIND_JOIN: i16 = 1;
const KIND_LEAVE: i16 = 2;

/// A [`Broker`] on PostgreSQL tables shared with Centrifugo's stream broker
/// (experimental).
///
/// Clones share the pool and the pollers; dropping the last clone (or
/// [`close`](Self::close)) stops them.
#[derive(Clone)]
pub struct PgStreamBroker {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for PgStreamBroker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStreamBroker")
            .field("stream", &self.inner.shared.names.stream)
            .field("num_shards", &self.inner.config.num_shards)
            .finish_non_exhaustive()
    }
}

struct Inner {
    shared: Arc<Shared>,
    config: PgStreamConfig,
    running: AtomicBool,
    tasks: parking_lot::Mutex<Vec<JoinHandle<()>>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        for task in self.tasks.get_mut().drain(..) {
            task.abort();
        }
    }
}

/// What the pollers need; they never hold [`Inner`], so dropping the broker stops them.
struct Shared {
    pool: Pool,
    names: Names,
    sql: Sql,
    handler: OnceLock<Arc<dyn BrokerEventHandler>>,
    /// Channels this node subscribed to: rows of other channels are skipped.
    subs: parking_lot::Mutex<HashSet<String>>,
    batch_size: i64,
}

/// The statements, built once for the variant in use.
struct Sql {
    publish: String,
    join: String,
    leave: String,
    remove_history: String,
    read_meta: String,
    read_forward: String,
    read_reverse: String,
    outbox: String,
    max_id: String,
    cleanup: String,
}

/// A payload parameter: bytes in, the variant's column type in the database.
fn data_param(binary: bool, n: usize) -> String {
    if binary {
        format!("${n}::BYTEA")
    } else {
        // JSONB: empty means NULL, as upstream stores absent payloads.
        format!("convert_from(NULLIF(${n}::BYTEA, ''::BYTEA), 'UTF8')::JSONB")
    }
}

/// A payload column read back as bytes.
fn data_column(binary: bool, column: &str) -> String {
    if binary {
        column.to_owned()
    } else {
        format!("convert_to({column}::TEXT, 'UTF8')")
    }
}

const TIME_MS: &str = "floor(EXTRACT(EPOCH FROM created_at) * 1000)::BIGINT";

impl Sql {
    fn new(names: &Names, binary: bool) -> Self {
        let d = |n| data_param(binary, n);
        let c = |col| data_column(binary, col);
        let publish = format!(
            "SELECT out_result_id, out_channel_offset, out_epoch, out_suppressed, \
             out_suppress_reason FROM {f}($1::TEXT, {d2}, $3::TEXT::JSONB, {i4}, $5::INTEGER, \
             {i6}, $7::BIGINT, $8::TEXT, $9::TEXT, {i10}, $11::BOOLEAN, $12::TEXT, $13::TEXT, \
             {d14}, {d15}, $16::INTEGER)",
            f = names.function("publish"),
            d2 = d(2),
            i4 = ms_interval(4),
            i6 = ms_interval(6),
            i10 = ms_interval(10),
            d14 = d(14),
            d15 = d(15),
        );
        let presence = |name: &str| {
            format!(
                "SELECT {}($1::TEXT, $2::TEXT, $3::TEXT, {}, {}, $6::INTEGER)",
                names.function(name),
                d(4),
                d(5)
            )
        };
        let read_meta = format!(
            "INSERT INTO {meta} AS m (channel, top_offset, epoch, expires_at, updated_at) \
             VALUES ($1::TEXT, 0, {epoch}, now() + {i2}, now()) \
             ON CONFLICT (channel) DO UPDATE SET \
               top_offset = CASE WHEN m.expires_at <= now() THEN 0 ELSE m.top_offset END, \
               epoch = CASE WHEN m.expires_at <= now() THEN EXCLUDED.epoch ELSE m.epoch END, \
               top_version = CASE WHEN m.expires_at <= now() THEN 0 ELSE m.top_version END, \
               top_version_epoch = CASE WHEN m.expires_at <= now() THEN '' \
                                        ELSE m.top_version_epoch END, \
               expires_at = CASE WHEN m.expires_at <= now() THEN EXCLUDED.expires_at \
                                 WHEN $3::BOOLEAN THEN GREATEST(m.expires_at, EXCLUDED.expires_at) \
                                 ELSE m.expires_at END \
             RETURNING m.top_offset, m.epoch, \
               floor(EXTRACT(EPOCH FROM m.history_ttl) * 1000)::BIGINT, m.history_size",
            meta = names.meta(),
            epoch = pg::NEW_EPOCH_SQL,
            i2 = ms_interval(2),
        );
        let read = |order: &str| {
            format!(
                "SELECT channel_offset, {data}, tags::TEXT, client_id, user_id, {conn}, {chan}, \
                 {TIME_MS} FROM {stream} \
                 WHERE channel = $1::TEXT AND kind = 0 AND epoch = $2::TEXT \
                   AND channel_offset BETWEEN $3::BIGINT AND $4::BIGINT \
                   AND created_at > now() - {i5} \
                 ORDER BY channel_offset {order} LIMIT $6::BIGINT",
                data = c("data"),
                conn = c("conn_info"),
                chan = c("chan_info"),
                stream = names.stream,
                i5 = ms_interval(5),
            )
        };
        let outbox = format!(
            "SELECT id, channel, channel_offset, epoch, kind, {data}, tags::TEXT, client_id, \
             user_id, {conn}, {chan}, {prev}, use_delta, {TIME_MS} FROM {stream} \
             WHERE shard_id = $1::SMALLINT AND id > $2::BIGINT ORDER BY id LIMIT $3::BIGINT",
            data = c("data"),
            conn = c("conn_info"),
            chan = c("chan_info"),
            prev = c("prev_data"),
            stream = names.stream,
        );
        Sql {
            publish,
            join: presence("publish_join"),
            leave: presence("publish_leave"),
            remove_history: format!(
                "SELECT {}($1::TEXT, $2::INTEGER)",
                names.function("remove_history")
            ),
            read_meta,
            read_forward: read("ASC"),
            read_reverse: read("DESC"),
            outbox,
            max_id: format!("SELECT COALESCE(MAX(id), 0) FROM {}", names.stream),
            cleanup: format!(
                "DELETE FROM {} WHERE expires_at < now(); DELETE FROM {} WHERE expires_at < now();",
                names.meta(),
                names.idempotency()
            ),
        }
    }
}

fn tags_json(tags: &HashMap<String, String>) -> Option<String> {
    if tags.is_empty() {
        None
    } else {
        serde_json::to_string(tags).ok()
    }
}

fn tags_from(text: Option<&str>) -> HashMap<String, String> {
    text.and_then(|t| serde_json::from_str(t).ok())
        .unwrap_or_default()
}

fn bytes_at(row: &Row, i: usize) -> Bytes {
    row.get::<_, Option<&[u8]>>(i)
        .map(Bytes::copy_from_slice)
        .unwrap_or_default()
}

/// The publisher of a row: present when the row has a client id (as upstream).
fn info_at(row: &Row, client: usize) -> Option<ClientInfo> {
    let client_id: Option<&str> = row.get(client);
    client_id.map(|id| {
        let mut info = ClientInfo::new(row.get::<_, Option<&str>>(client + 1).unwrap_or(""), id);
        info.conn_info = bytes_at(row, client + 2);
        info.chan_info = bytes_at(row, client + 3);
        info
    })
}

fn non_empty(b: &Bytes) -> Option<&[u8]> {
    (!b.is_empty()).then_some(&b[..])
}

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

impl PgStreamBroker {
    /// Connects, creates the tables and functions (unless `skip_schema_init`) and the
    /// current partitions. Pollers start with [`Broker::run`].
    pub async fn connect(config: PgStreamConfig) -> Result<Self, BrokerError> {
        let config = config.normalized();
        pg::check_prefix(&config.table_prefix)?;
        let pool = Pool::open(pg::parse_dsn(&config.dsn)?, config.pool_size).await?;
        let names = Names::new(&config.table_prefix, config.binary_data);
        if !config.skip_schema_init {
            let mut ddl = schema::ddl(&config.table_prefix, false, config.num_shards);
            ddl.push_str(&schema::ddl(&config.table_prefix, true, config.num_shards));
            pg::run_ddl(&pool, &format!("{}_stream", config.table_prefix), &ddl).await?;
        }
        let shared = Arc::new(Shared {
            pool,
            sql: Sql::new(&names, config.binary_data),
            names,
            handler: OnceLock::new(),
            subs: parking_lot::Mutex::default(),
            batch_size: config.batch_size,
        });
        shared.maintain(&config).await?;
        Ok(PgStreamBroker {
            inner: Arc::new(Inner {
                shared,
                config,
                running: AtomicBool::new(false),
                tasks: parking_lot::Mutex::default(),
            }),
        })
    }

    /// Stops the pollers and background work of every clone.
    pub fn close(&self) {
        for task in self.inner.tasks.lock().drain(..) {
            task.abort();
        }
    }

    /// The stream table in use: `<prefix>_stream` or `<prefix>_binary_stream`.
    pub fn stream_table(&self) -> &str {
        &self.inner.shared.names.stream
    }

    fn meta_ttl(&self, publish: Option<Duration>) -> Duration {
        publish
            .or(self.inner.config.history_meta_ttl)
            .filter(|d| !d.is_zero())
            .unwrap_or(self.inner.config.stream_retention)
    }

    async fn do_run(&self, handler: Arc<dyn BrokerEventHandler>) -> Result<(), BrokerError> {
        if self.inner.running.swap(true, Ordering::SeqCst) {
            return Err(BrokerError::BadRequest(
                "PostgreSQL stream broker is already running".into(),
            ));
        }
        let shared = &self.inner.shared;
        let _ = shared.handler.set(handler);
        let client = shared.pool.get().await?;
        let cursor: i64 = client
            .query_one(&shared.sql.max_id, &[])
            .await
            .map_err(|e| pg::pg_error("reading the outbox cursor", e))?
            .get(0);
        let config = &self.inner.config;
        let mut tasks = self.inner.tasks.lock();
        let mut wakers = Vec::new();
        for shard in 0..config.num_shards {
            let wake = Arc::new(Notify::new());
            wakers.push(wake.clone());
            tasks.push(tokio::spawn(outbox::poll_shard(
                shared.clone(),
                shard as i16,
                cursor,
                config.poll_interval,
                wake,
            )));
        }
        if config.use_notify {
            let listen_config = match &config.notify_dsn {
                Some(dsn) if !dsn.is_empty() => pg::parse_dsn(dsn)?,
                _ => shared.pool.config().clone(),
            };
            tasks.push(tokio::spawn(pg::listen(
                listen_config,
                shared.names.notify_channel(),
                wakers,
            )));
        }
        tasks.push(tokio::spawn(cleanup(shared.clone(), config.clone())));
        Ok(())
    }

    async fn do_publish(
        &self,
        channel: &str,
        data: Bytes,
        opts: PublishOptions,
    ) -> Result<PublishResult, BrokerError> {
        let shared = &self.inner.shared;
        let keeps = opts.keeps_history();
        let tags = tags_json(&opts.tags);
        let history_ttl = keeps.then(|| millis(opts.history_ttl));
        let history_size = keeps.then(|| i32::try_from(opts.history_size).unwrap_or(i32::MAX));
        let meta_ttl = millis(self.meta_ttl(opts.history_meta_ttl));
        let version = (opts.version > 0).then(|| to_i64(opts.version));
        let version_epoch = (opts.version > 0 && !opts.version_epoch.is_empty())
            .then_some(opts.version_epoch.as_str());
        let idempotency_ttl = opts.idempotency_key.as_ref().map(|_| {
            millis(
                opts.idempotent_result_ttl
                    .filter(|d| !d.is_zero())
                    .unwrap_or(self.inner.config.idempotent_result_ttl),
            )
        });
        let info = opts.client_info.as_ref();
        let num_shards = i32::from(self.inner.config.num_shards);
        let client = shared.pool.get().await?;
        let row = client
            .query_one(
                &shared.sql.publish,
                &[
                    &channel,
                    &non_empty(&data),
                    &tags,
                    &history_ttl,
                    &history_size,
                    &meta_ttl,
                    &version,
                    &version_epoch,
                    &opts.idempotency_key,
                    &idempotency_ttl,
                    &opts.use_delta,
                    &info.map(|i| i.client.as_str()),
                    &info.map(|i| i.user.as_str()),
                    &info.and_then(|i| non_empty(&i.conn_info)),
                    &info.and_then(|i| non_empty(&i.chan_info)),
                    &num_shards,
                ],
            )
            .await
            .map_err(|e| pg::pg_error("publish", e))?;
        let offset: i64 = row.get(1);
        let epoch: String = row.get(2);
        let suppressed: bool = row.get(3);
        let position = if keeps {
            StreamPosition::new(u64::try_from(offset).unwrap_or(0), epoch)
        } else {
            StreamPosition::default()
        };
        Ok(PublishResult {
            position,
            suppressed,
        })
    }

    async fn do_presence_event(
        &self,
        join: bool,
        channel: &str,
        info: ClientInfo,
    ) -> Result<(), BrokerError> {
        let shared = &self.inner.shared;
        let sql = if join {
            &shared.sql.join
        } else {
            &shared.sql.leave
        };
        let num_shards = i32::from(self.inner.config.num_shards);
        let client = shared.pool.get().await?;
        client
            .query_one(
                sql,
                &[
                    &channel,
                    &info.client.as_str(),
                    &info.user.as_str(),
                    &non_empty(&info.conn_info),
                    &non_empty(&info.chan_info),
                    &num_shards,
                ],
            )
            .await
            .map_err(|e| pg::pg_error(if join { "join" } else { "leave" }, e))?;
        Ok(())
    }

    async fn do_history(
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
        let shared = &self.inner.shared;
        let client = shared.pool.get().await?;
        let meta_ttl = millis(self.meta_ttl(options.meta_ttl));
        let refresh = options.meta_ttl.is_some();
        let meta = client
            .query_one(&shared.sql.read_meta, &[&channel, &meta_ttl, &refresh])
            .await
            .map_err(|e| pg::pg_error("history meta", e))?;
        let top: i64 = meta.get(0);
        let epoch: String = meta.get(1);
        let history_ttl: i64 = meta.get(2);
        let history_size = i64::from(meta.get::<_, i32>(3));
        if let Some(since) = &filter.since
            && !since.epoch.is_empty()
            && since.epoch != epoch
        {
            return Err(BrokerError::UnrecoverablePosition);
        }
        let position = StreamPosition::new(u64::try_from(top).unwrap_or(0), epoch.clone());
        if filter.limit == 0 || top == 0 {
            return Ok(HistoryResult {
                position,
                publications: Vec::new(),
            });
        }
        // Only the newest `history_size` offsets are in the stream (older rows wait for
        // partition retention).
        let window_start = if history_size > 0 {
            (top - history_size + 1).max(1)
        } else {
            1
        };
        let since = filter.since.as_ref().map(|s| to_i64(s.offset));
        let (start, end) = if filter.reverse {
            (window_start, since.map_or(top, |s| (s - 1).min(top)))
        } else {
            (
                window_start.max(since.map_or(1, |s| s.saturating_add(1))),
                top,
            )
        };
        let mut limit = if filter.limit < 0 {
            i64::MAX
        } else {
            i64::from(filter.limit)
        };
        if history_size > 0 {
            limit = limit.min(history_size);
        }
        if start > end {
            return Ok(HistoryResult {
                position,
                publications: Vec::new(),
            });
        }
        let sql = if filter.reverse {
            &shared.sql.read_reverse
        } else {
            &shared.sql.read_forward
        };
        let rows = client
            .query(
                sql,
                &[&channel, &epoch, &start, &end, &history_ttl.max(1), &limit],
            )
            .await
            .map_err(|e| pg::pg_error("history", e))?;
        let publications = rows
            .iter()
            .map(|row| {
                let mut p = Publication::new(bytes_at(row, 1));
                p.offset = u64::try_from(row.get::<_, i64>(0)).unwrap_or(0);
                p.tags = tags_from(row.get(2));
                p.info = info_at(row, 3);
                p.time = row.get(7);
                p
            })
            .collect();
        Ok(HistoryResult {
            position,
            publications,
        })
    }

    async fn do_remove_history(&self, channel: &str) -> Result<(), BrokerError> {
        let shared = &self.inner.shared;
        let num_shards = i32::from(self.inner.config.num_shards);
        let client = shared.pool.get().await?;
        client
            .execute(&shared.sql.remove_history, &[&channel, &num_shards])
            .await
            .map_err(|e| pg::pg_error("remove history", e))?;
        Ok(())
    }
}

impl Shared {
    /// Creates the coming partitions and drops the expired ones.
    async fn maintain(&self, config: &PgStreamConfig) -> Result<(), BrokerError> {
        let client = self.pool.get().await?;
        let sql = pg::partitions_sql(
            &self.names.stream,
            config.partition_lookahead_days,
            config.partition_retention_days,
        );
        client
            .batch_execute(&sql)
            .await
            .map_err(|e| pg::pg_error("maintaining partitions", e))
    }

    async fn delete_expired(&self) -> Result<(), BrokerError> {
        let client = self.pool.get().await?;
        client
            .batch_execute(&self.sql.cleanup)
            .await
            .map_err(|e| pg::pg_error("cleanup", e))
    }
}

/// Deletes expired meta and idempotency rows and keeps partitions ahead, for ever.
async fn cleanup(shared: Arc<Shared>, config: PgStreamConfig) {
    let mut ticker = tokio::time::interval(config.cleanup_interval);
    ticker.tick().await;
    loop {
        ticker.tick().await;
        if let Err(e) = shared.delete_expired().await {
            tracing::warn!(error = %e, "PostgreSQL stream broker: cleanup failed");
        }
        if let Err(e) = shared.maintain(&config).await {
            tracing::warn!(error = %e, "PostgreSQL stream broker: partition maintenance failed");
        }
    }
}

impl Broker for PgStreamBroker {
    fn run(&self, handler: Arc<dyn BrokerEventHandler>) -> BoxFuture<'_, Result<(), BrokerError>> {
        Box::pin(self.do_run(handler))
    }

    fn subscribe(&self, channel: &str) -> BoxFuture<'_, Result<(), BrokerError>> {
        // Rows committed from now on are read by a later poll, which sees the channel.
        self.inner.shared.subs.lock().insert(channel.to_owned());
        Box::pin(async { Ok(()) })
    }

    fn unsubscribe(&self, channel: &str) -> BoxFuture<'_, Result<(), BrokerError>> {
        self.inner.shared.subs.lock().remove(channel);
        Box::pin(async { Ok(()) })
    }

    fn publish(
        &self,
        channel: &str,
        data: Bytes,
        options: PublishOptions,
    ) -> BoxFuture<'_, Result<PublishResult, BrokerError>> {
        let channel = channel.to_owned();
        Box::pin(async move { self.do_publish(&channel, data, options).await })
    }

    fn publish_join(
        &self,
        channel: &str,
        info: ClientInfo,
    ) -> BoxFuture<'_, Result<(), BrokerError>> {
        let channel = channel.to_owned();
        Box::pin(async move { self.do_presence_event(true, &channel, info).await })
    }

    fn publish_leave(
        &self,
        channel: &str,
        info: ClientInfo,
    ) -> BoxFuture<'_, Result<(), BrokerError>> {
        let channel = channel.to_owned();
        Box::pin(async move { self.do_presence_event(false, &channel, info).await })
    }

    fn history(
        &self,
        channel: &str,
        options: HistoryOptions,
    ) -> BoxFuture<'_, Result<HistoryResult, BrokerError>> {
        let channel = channel.to_owned();
        Box::pin(async move { self.do_history(&channel, options).await })
    }

    fn remove_history(&self, channel: &str) -> BoxFuture<'_, Result<(), BrokerError>> {
        let channel = channel.to_owned();
        Box::pin(async move { self.do_remove_history(&channel).await })
    }
}
