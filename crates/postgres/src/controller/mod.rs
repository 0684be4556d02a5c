//! [`PgController`]: node-to-node control messages through a PostgreSQL table
//! (experimental, as Centrifugo's `controller.type: postgres`).
//!
//! A message is a row of `<prefix>_controller_messages` inserted by
//! `<prefix>_controller_publish(data, node_id, num_shards)`: `node_id` empty for a
//! broadcast, else the one node it is for. Every node polls every shard's new rows in id
//! order and keeps broadcasts and its own messages. Tables and function are Centrifugo's,
//! so Gyre and Centrifugo nodes can share them (the payload is the node's encoded
//! control command in both).

mod schema;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::Bytes;
use gyre::{BoxFuture, BrokerError, ControlEventHandler, Controller};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use crate::pg::{self, Pool};

/// Settings of the PostgreSQL controller (`controller.postgres.*` in Centrifugo).
///
/// ```
/// use gyre_postgres::controller::PgControllerConfig;
/// let config = PgControllerConfig::new("postgres://postgres@127.0.0.1/test");
/// assert_eq!(config.num_shards, 1);
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct PgControllerConfig {
    /// Connection string (URL or `key=value` form).
    pub dsn: String,
    /// Connections in the pool (default 8).
    pub pool_size: usize,
    /// Shards of the message table, each polled on its own (default 1).
    pub num_shards: u16,
    /// Prefix of the tables and the function (default `cf`).
    pub table_prefix: String,
    /// How often each shard is polled (default 50ms).
    pub poll_interval: Duration,
    /// LISTEN on `<prefix>_controller_notify` to poll as soon as a message is sent.
    pub use_notify: bool,
    /// A separate connection string for LISTEN.
    pub notify_dsn: Option<String>,
    /// Daily partitions kept (default 1; 0 keeps them all).
    pub partition_retention_days: u32,
    /// Daily partitions created ahead (default 2).
    pub partition_lookahead_days: u32,
    /// How often partitions are maintained (default 1 minute).
    pub partition_cleanup_interval: Duration,
    /// Rows read per poll (default 1000).
    pub batch_size: i64,
    /// Do not create the tables and the function at start.
    pub skip_schema_init: bool,
}

impl PgControllerConfig {
    /// Defaults for the database at `dsn`.
    pub fn new(dsn: impl Into<String>) -> Self {
        PgControllerConfig {
            dsn: dsn.into(),
            pool_size: 8,
            num_shards: 1,
            table_prefix: "cf".to_owned(),
            poll_interval: Duration::from_millis(50),
            use_notify: false,
            notify_dsn: None,
            partition_retention_days: 1,
            partition_lookahead_days: 2,
            partition_cleanup_interval: Duration::from_secs(60),
            batch_size: 1000,
            skip_schema_init: false,
        }
    }

    fn normalized(mut self) -> Self {
        let d = PgControllerConfig::new(String::new());
        if self.pool_size == 0 {
            self.pool_size = d.pool_size;
        }
        if self.num_shards == 0 {
            self.num_shards = d.num_shards;
        }
        self.table_prefix = self.table_prefix.trim_end_matches('_').to_owned();
        if self.table_prefix.is_empty() {
            self.table_prefix = d.table_prefix;
        }
        if self.poll_interval.is_zero() {
            self.poll_interval = d.poll_interval;
        }
        if self.partition_lookahead_days == 0 {
            self.partition_lookahead_days = d.partition_lookahead_days;
        }
        if self.partition_cleanup_interval.is_zero() {
            self.partition_cleanup_interval = d.partition_cleanup_interval;
        }
        if self.batch_size <= 0 {
            self.batch_size = d.batch_size;
        }
        self
    }
}

/// A [`Controller`] over a PostgreSQL table shared with Centrifugo's PostgreSQL
/// controller (experimental). Clones share the pool; dropping the last clone (or
/// [`close`](Self::close)) stops the pollers.
#[derive(Clone)]
pub struct PgController {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for PgController {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgController")
            .field("table", &self.inner.names.messages)
            .finish_non_exhaustive()
    }
}

struct Inner {
    pool: Arc<Pool>,
    config: PgControllerConfig,
    names: schema::Names,
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

/// What one shard's poller needs.
struct Poller {
    pool: Arc<Pool>,
    node_id: String,
    handler: Arc<dyn ControlEventHandler>,
    query: String,
    shard: i16,
    batch_size: i64,
}

impl PgController {
    /// Connects and creates the tables, the function (unless `skip_schema_init`) and
    /// the current partitions. Polling starts with [`Controller::run`].
    pub async fn connect(config: PgControllerConfig) -> Result<Self, BrokerError> {
        let config = config.normalized();
        pg::check_prefix(&config.table_prefix)?;
        let pool = Arc::new(Pool::open(pg::parse_dsn(&config.dsn)?, config.pool_size).await?);
        let names = schema::Names::new(&config.table_prefix);
        if !config.skip_schema_init {
            let ddl = schema::ddl(&names, config.num_shards);
            pg::run_ddl(&pool, &names.messages, &ddl).await?;
        }
        maintain(&pool, &names.messages, &config).await?;
        Ok(PgController {
            inner: Arc::new(Inner {
                pool,
                config,
                names,
                running: AtomicBool::new(false),
                tasks: parking_lot::Mutex::default(),
            }),
        })
    }

    /// Stops the pollers of every clone.
    pub fn close(&self) {
        for task in self.inner.tasks.lock().drain(..) {
            task.abort();
        }
    }

    async fn do_run(
        &self,
        node_id: String,
        handler: Arc<dyn ControlEventHandler>,
    ) -> Result<(), BrokerError> {
        if self.inner.running.swap(true, Ordering::SeqCst) {
            return Err(BrokerError::BadRequest(
                "PostgreSQL controller is already running".into(),
            ));
        }
        let inner = &self.inner;
        let client = inner.pool.get().await?;
        let cursor: i64 = client
            .query_one(
                &format!("SELECT COALESCE(MAX(id), 0) FROM {}", inner.names.messages),
                &[],
            )
            .await
            .map_err(|e| pg::pg_error("reading the control cursor", e))?
            .get(0);
        let query = format!(
            "SELECT id, node_id, data FROM {} WHERE shard_id = $1::SMALLINT AND id > $2::BIGINT \
             ORDER BY id LIMIT $3::BIGINT",
            inner.names.messages
        );
        let config = &inner.config;
        let mut tasks = inner.tasks.lock();
        let mut wakers = Vec::new();
        for shard in 0..config.num_shards {
            let wake = Arc::new(Notify::new());
            wakers.push(wake.clone());
            let poller = Poller {
                pool: inner.pool.clone(),
                node_id: node_id.clone(),
                handler: handler.clone(),
                query: query.clone(),
                shard: shard as i16,
                batch_size: config.batch_size,
            };
            tasks.push(tokio::spawn(poller.run(cursor, config.poll_interval, wake)));
        }
        if config.use_notify {
            let listen_config = match &config.notify_dsn {
                Some(dsn) if !dsn.is_empty() => pg::parse_dsn(dsn)?,
                _ => inner.pool.config().clone(),
            };
            tasks.push(tokio::spawn(pg::listen(
                listen_config,
                inner.names.notify_channel.clone(),
                wakers,
            )));
        }
        let (pool, table, config) = (
            inner.pool.clone(),
            inner.names.messages.clone(),
            config.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut ticker = tokio::time::interval(config.partition_cleanup_interval);
            ticker.tick().await;
            loop {
                ticker.tick().await;
                if let Err(e) = maintain(&pool, &table, &config).await {
                    tracing::warn!(error = %e, "PostgreSQL controller: partition maintenance failed");
                }
            }
        }));
        Ok(())
    }

    async fn do_publish(&self, data: Bytes, to: Option<String>) -> Result<(), BrokerError> {
        let inner = &self.inner;
        let client = inner.pool.get().await?;
        let num_shards = i32::from(inner.config.num_shards);
        client
            .query_one(
                &format!(
                    "SELECT {}($1::BYTEA, $2::TEXT, $3::INTEGER)",
                    inner.names.publish
                ),
                &[&&data[..], &to.unwrap_or_default(), &num_shards],
            )
            .await
            .map_err(|e| pg::pg_error("publishing a control message", e))?;
        Ok(())
    }
}

async fn maintain(
    pool: &Pool,
    table: &str,
    config: &PgControllerConfig,
) -> Result<(), BrokerError> {
    let client = pool.get().await?;
    let sql = pg::partitions_sql(
        table,
        config.partition_lookahead_days,
        config.partition_retention_days,
    );
    client
        .batch_execute(&sql)
        .await
        .map_err(|e| pg::pg_error("maintaining partitions", e))
}

impl Poller {
    async fn run(self, mut cursor: i64, interval: Duration, wake: Arc<Notify>) {
        loop {
            match self.fetch(cursor).await {
                Ok(rows) => {
                    let full = rows.len() as i64 >= self.batch_size;
                    for row in &rows {
                        cursor = cursor.max(row.get::<_, i64>(0));
                        let to: &str = row.get(1);
                        if to.is_empty() || to == self.node_id {
                            let data: &[u8] = row.get(2);
                            self.handler.handle_control(Bytes::copy_from_slice(data));
                        }
                    }
                    if full {
                        continue;
                    }
                }
                Err(e) => {
                    tracing::warn!(shard = self.shard, error = %e, "PostgreSQL controller: poll failed");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
            pg::next_poll(interval, &wake).await;
        }
    }

    async fn fetch(&self, cursor: i64) -> Result<Vec<tokio_postgres::Row>, BrokerError> {
        let client = self.pool.get().await?;
        client
            .query(&self.query, &[&self.shard, &cursor, &self.batch_size])
            .await
            .map_err(|e| pg::pg_error("control poll", e))
    }
}

impl Controller for PgController {
    fn run(
        &self,
        node_id: &str,
        handler: Arc<dyn ControlEventHandler>,
    ) -> BoxFuture<'_, Result<(), BrokerError>> {
        let node_id = node_id.to_owned();
        Box::pin(self.do_run(node_id, handler))
    }

    fn publish_control(
        &self,
        data: Bytes,
        to: Option<&str>,
    ) -> BoxFuture<'_, Result<(), BrokerError>> {
        let to = to.map(str::to_owned);
        Box::pin(self.do_publish(data, to))
    }
}
