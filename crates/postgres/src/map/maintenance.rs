//! Background work every node does (each step is safe to run on several nodes at once):
//! removing keys past their TTL with a removal publication each, and deleting expired
//! channel meta, expired idempotency results and old stream partitions.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::Shared;
use super::rows::col;
use crate::{PgError, partition};

/// Most keys one expiry call removes.
const EXPIRE_BATCH: i32 = 1000;

/// Runs `step` every `every` until `stop`, logging failures once per failing streak.
async fn every<F, Fut>(what: &'static str, every: Duration, stop: CancellationToken, mut step: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(), PgError>>,
{
    let mut failing = false;
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
        match step().await {
            Ok(()) => failing = false,
            Err(e) => {
                if !failing {
                    tracing::warn!(error = %e, "postgresql map broker: {what} failed");
                }
                failing = true;
            }
        }
    }
}

/// The key expiry worker.
pub(crate) async fn expire_keys_loop(shared: Arc<Shared>, stop: CancellationToken) {
    let period = shared
        .config
        .ttl_check_interval
        .max(Duration::from_millis(10));
    every("key expiry", period, stop, || expire_keys(&shared)).await;
}

/// Removes the keys past their TTL. One call per channel, each its own transaction, so
/// that nodes expiring at once take shard locks one at a time (never two in opposite
/// orders). The removals reach subscribers through the stream like any change.
pub(crate) async fn expire_keys(shared: &Shared) -> Result<(), PgError> {
    let mut conn = shared.pool.get().await?;
    let statement = conn.prepared(&shared.statements.expired_channels).await?;
    let channels = conn.client().query(&statement, &[]).await?;
    let expire = conn.prepared(&shared.statements.expire).await?;
    let shards = i32::from(shared.config.num_shards);
    for row in channels {
        let channel: String = col(&row, 0)?;
        loop {
            let removed = conn
                .client()
                .query(&expire, &[&EXPIRE_BATCH, &shards, &channel])
                .await?;
            if removed.len() < EXPIRE_BATCH as usize {
                break;
            }
        }
    }
    Ok(())
}

/// The cleanup worker.
pub(crate) async fn cleanup_loop(shared: Arc<Shared>, stop: CancellationToken) {
    let period = shared
        .config
        .cleanup_interval
        .max(Duration::from_millis(10));
    every("cleanup", period, stop, || cleanup(&shared)).await;
}

/// Deletes expired meta and idempotency rows in batches, keeps partitions ahead and drops
/// the ones past retention.
pub(crate) async fn cleanup(shared: &Shared) -> Result<(), PgError> {
    let batch = shared.config.cleanup_batch_size.max(1);
    let limit = i64::try_from(batch).unwrap_or(i64::MAX);
    let mut conn = shared.pool.get().await?;
    for sql in [
        &shared.statements.cleanup_meta,
        &shared.statements.cleanup_idempotency,
    ] {
        let statement = conn.prepared(sql).await?;
        while conn.client().execute(&statement, &[&limit]).await? >= batch as u64 {
            // Give autovacuum and writers room between big deletes.
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    partition::ensure_daily(
        conn.client(),
        &shared.names.stream,
        shared.config.partition_lookahead_days,
    )
    .await?;
    let dropped = partition::drop_older(
        conn.client(),
        &shared.names.stream,
        shared.config.partition_retention_days,
    )
    .await?;
    for name in dropped {
        tracing::info!(partition = %name, "dropped an old map stream partition");
    }
    Ok(())
}
