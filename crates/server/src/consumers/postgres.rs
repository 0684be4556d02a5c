//! The PostgreSQL outbox consumer (upstream `consuming/postgresql.go`).
//!
//! The application inserts commands into an outbox table in the same transaction as its
//! own changes:
//!
//! ```sql
//! CREATE TABLE centrifugo_outbox (
//!     id BIGSERIAL PRIMARY KEY,
//!     method text NOT NULL,
//!     payload JSONB NOT NULL,
//!     partition INTEGER NOT NULL DEFAULT 0,
//!     created_at TIMESTAMP WITH TIME ZONE DEFAULT CURRENT_TIMESTAMP NOT NULL
//! );
//! ```
//!
//! One worker per partition (`0..num_partitions`) runs transactions that take the
//! partition's advisory lock (`pg_advisory_xact_lock(hashtext('centrifugo_partition_lock_'
//! || consumer name || partition))`, or the try variant with `use_try_lock`), so one node at
//! a time consumes a partition, in `id` order. It reads up to `partition_select_limit` rows,
//! executes them in order, deletes the executed ones and commits. A retryable failure stops
//! the batch there: the rows before it are deleted, the failed one is read again after a
//! backoff. A worker that read fewer rows than the limit waits `partition_poll_interval`,
//! or less when a `NOTIFY` on `partition_notification_channel` names its partition.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use futures_util::StreamExt as _;
use tokio::sync::Notify;
use tokio_postgres::{AsyncMessage, Client, NoTls};

use super::Context;
use crate::config::PostgresConsumerConfig;

const DEFAULT_POLL_INTERVAL: Duration = Duration::from_millis(300);

/// Checks the database is reachable (a failed start, as upstream) and spawns the workers.
pub(super) async fn start(ctx: Context, config: PostgresConsumerConfig) -> anyhow::Result<()> {
    let num_partitions = config.num_partitions.max(1);
    let config = Arc::new(config);
    // Reachable now, or the server does not start.
    let probe = connect(&ctx, &config.dsn).await?;
    drop(probe);
    let triggers: Arc<Vec<Notify>> = Arc::new((0..num_partitions).map(|_| Notify::new()).collect());
    if !config.partition_notification_channel.is_empty() {
        tokio::spawn(listen(ctx.clone(), config.clone(), triggers.clone()));
    }
    for partition in 0..num_partitions {
        tokio::spawn(worker(
            ctx.clone(),
            config.clone(),
            triggers.clone(),
            partition,
        ));
    }
    Ok(())
}

/// A connection whose driver task ends with the server.
async fn connect(ctx: &Context, dsn: &str) -> anyhow::Result<Client> {
    let (client, connection) = tokio_postgres::connect(dsn, NoTls)
        .await
        .context("connecting to PostgreSQL")?;
    let stop = ctx.stop.clone();
    let name = ctx.name.clone();
    tokio::spawn(async move {
        tokio::select! {
            r = connection => if let Err(e) = r {
                tracing::warn!(consumer = %name, error = %e, "postgresql connection closed");
            },
            _ = stop.cancelled() => {}
        }
    });
    Ok(client)
}

async fn worker(
    ctx: Context,
    config: Arc<PostgresConsumerConfig>,
    triggers: Arc<Vec<Notify>>,
    partition: i64,
) {
    let poll = config
        .partition_poll_interval
        .to_std()
        .filter(|d| !d.is_zero())
        .unwrap_or(DEFAULT_POLL_INTERVAL);
    let limit = if config.partition_select_limit > 0 {
        config.partition_select_limit
    } else {
        100
    };
    let lock_name = format!("centrifugo_partition_lock_{}{partition}", ctx.name);
    let trigger = &triggers[partition as usize];
    let mut client: Option<Client> = None;
    let mut retries = 0;
    while !ctx.stop.is_cancelled() {
        let result = match &mut client {
            Some(c) => process_once(&ctx, c, &config, &lock_name, partition, limit).await,
            None => match connect(&ctx, &config.dsn).await {
                Ok(c) => {
                    client = Some(c);
                    continue;
                }
                Err(e) => Err(Failure::Database(e)),
            },
        };
        match result {
            Ok(n) => {
                retries = 0;
                ctx.processed(n as u64);
                // A full batch: more rows may be waiting.
                if n < limit {
                    tokio::select! {
                        _ = tokio::time::sleep(poll) => {}
                        _ = trigger.notified() => {}
                        _ = ctx.stop.cancelled() => return,
                    }
                }
            }
            Err(Failure::LockBusy) => {
                // Another node holds the partition.
                tokio::select! {
                    _ = tokio::time::sleep(poll) => {}
                    _ = trigger.notified() => {}
                    _ = ctx.stop.cancelled() => return,
                }
            }
            Err(failure) => {
                if let Failure::Database(_) = failure {
                    if client.as_ref().is_some_and(Client::is_closed) {
                        client = None;
                    }
                } else if let Failure::Retry { processed, .. } = &failure {
                    ctx.processed(*processed as u64);
                }
                retries += 1;
                ctx.error();
                tracing::error!(consumer = %ctx.name, partition, error = %failure, "error processing postgresql outbox");
                if !ctx.sleep(super::backoff(retries)).await {
                    return;
                }
            }
        }
    }
}

#[derive(Debug, thiserror::Error)]
enum Failure {
    #[error("advisory lock not acquired")]
    LockBusy,
    #[error(transparent)]
    Database(#[from] anyhow::Error),
    #[error("{error} (after {processed} rows)")]
    Retry { processed: i64, error: super::Retry },
}

impl From<tokio_postgres::Error> for Failure {
    fn from(e: tokio_postgres::Error) -> Self {
        Failure::Database(e.into())
    }
}

/// One transaction over one partition: how many rows were executed and deleted.
async fn process_once(
    ctx: &Context,
    client: &mut Client,
    config: &PostgresConsumerConfig,
    lock_name: &str,
    partition: i64,
    limit: i64,
) -> Result<i64, Failure> {
    let tx = client
        .build_transaction()
        .isolation_level(tokio_postgres::IsolationLevel::ReadCommitted)
        .start()
        .await?;
    if config.use_try_lock {
        let row = tx
            .query_one(
                "SELECT pg_try_advisory_xact_lock(hashtext($1))",
                &[&lock_name],
            )
            .await?;
        if !row.get::<_, bool>(0) {
            return Err(Failure::LockBusy);
        }
    } else {
        tx.execute("SELECT pg_advisory_xact_lock(hashtext($1))", &[&lock_name])
            .await?;
    }
    let table = &config.outbox_table_name;
    // `payload::text` reads JSONB, JSON and text columns alike.
    let select = format!(
        "SELECT id, method, payload::text FROM {table} WHERE partition = $1 ORDER BY id ASC LIMIT $2"
    );
    let partition_param = partition as i32;
    let rows = tx.query(&select, &[&partition_param, &limit]).await?;
    let mut done: Vec<i64> = Vec::with_capacity(rows.len());
    let mut retry = None;
    for row in &rows {
        let id: i64 = row.try_get(0)?;
        let method: Option<String> = row.try_get(1)?;
        let payload: Option<String> = row.try_get(2)?;
        let result = ctx
            .dispatch_command(
                method.as_deref().unwrap_or(""),
                payload.as_deref().unwrap_or("null").as_bytes(),
            )
            .await;
        match result {
            Ok(()) => done.push(id),
            Err(e) => {
                // Stop here: the rows before are deleted, this one is read again.
                retry = Some(e);
                break;
            }
        }
    }
    if !done.is_empty() {
        let delete = format!("DELETE FROM {table} WHERE id = ANY($1)");
        tx.execute(&delete, &[&done]).await?;
    }
    tx.commit().await?;
    let processed = done.len() as i64;
    match retry {
        None => Ok(processed),
        Some(error) => Err(Failure::Retry { processed, error }),
    }
}

/// LISTEN on the notification channel: a notification's payload is a partition number,
/// whose worker then polls at once.
async fn listen(ctx: Context, config: Arc<PostgresConsumerConfig>, triggers: Arc<Vec<Notify>>) {
    let dsn = if config.partition_notification_dsn.is_empty() {
        &config.dsn
    } else {
        &config.partition_notification_dsn
    };
    while !ctx.stop.is_cancelled() {
        if let Err(e) =
            listen_once(&ctx, dsn, &config.partition_notification_channel, &triggers).await
        {
            tracing::error!(consumer = %ctx.name, error = %e, "error listening outbox notifications");
        }
        if !ctx.sleep(Duration::from_secs(1)).await {
            return;
        }
    }
}

async fn listen_once(
    ctx: &Context,
    dsn: &str,
    channel: &str,
    triggers: &[Notify],
) -> anyhow::Result<()> {
    let (client, mut connection) = tokio_postgres::connect(dsn, NoTls)
        .await
        .context("connecting to PostgreSQL for notifications")?;
    let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
    // The connection must be driven while the LISTEN runs.
    let quoted = format!("\"{}\"", channel.replace('"', "\"\""));
    let statement = format!("LISTEN {quoted}");
    let listen = client.batch_execute(&statement);
    tokio::pin!(listen);
    let mut listening = false;
    loop {
        tokio::select! {
            r = &mut listen, if !listening => {
                r.context("LISTEN")?;
                listening = true;
            }
            message = messages.next() => match message {
                Some(Ok(AsyncMessage::Notification(n))) => {
                    match n.payload().parse::<usize>() {
                        Ok(p) if p < triggers.len() => triggers[p].notify_one(),
                        Ok(p) => tracing::error!(consumer = %ctx.name, partition = p, "outbox partition is out of range"),
                        Err(e) => tracing::error!(consumer = %ctx.name, error = %e, "error converting postgresql notification"),
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(e).context("waiting for postgresql notifications"),
                None => anyhow::bail!("notification connection closed"),
            },
            _ = ctx.stop.cancelled() => return Ok(()),
        }
    }
}
