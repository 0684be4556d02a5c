//! Delivery: every node polls the stream table, one worker per shard, and hands each new
//! row to its node as a publication. Writes lock their shard's row while they insert, so
//! within a shard ids commit in order and "id > cursor" skips nothing. With `use_notify`
//! a `LISTEN` connection wakes the workers as soon as a row is written.

use std::sync::Arc;
use std::time::Duration;

use gyre::StreamPosition;
use tokio_postgres::AsyncMessage;
use tokio_util::sync::CancellationToken;

use super::Shared;
use super::rows::{col, stream_entry};
use crate::PgError;
use crate::pool::Pool;

/// The highest stream id now: delivery starts after it.
pub(crate) async fn start_cursor(shared: &Shared) -> Result<i64, PgError> {
    let mut conn = shared.pool.get().await?;
    let statement = conn.prepared(&shared.statements.max_id).await?;
    col(&conn.client().query_one(&statement, &[]).await?, 0)
}

/// Polls `shard` from `cursor` until `stop`.
pub(crate) async fn poll_shard(
    shared: Arc<Shared>,
    shard: u16,
    mut cursor: i64,
    stop: CancellationToken,
) {
    let mut failing = false;
    loop {
        match poll_once(&shared, shard, cursor).await {
            Ok((rows, last)) => {
                if failing {
                    tracing::info!(shard, "postgresql map broker delivers again");
                    failing = false;
                }
                cursor = cursor.max(last);
                if rows >= shared.config.batch_size.max(1) {
                    // A full batch: more may be waiting.
                    continue;
                }
            }
            Err(e) => {
                if !failing {
                    tracing::warn!(shard, error = %e, "postgresql map broker cannot poll its stream");
                    failing = true;
                }
            }
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = shared.wake[usize::from(shard)].notified() => {}
            _ = tokio::time::sleep(shared.config.poll_interval) => {}
        }
    }
}

/// Delivers the rows of `shard` after `cursor`: (rows read, last id).
async fn poll_once(shared: &Shared, shard: u16, cursor: i64) -> Result<(usize, i64), PgError> {
    let rows = {
        let mut conn = shared.pool.get().await?;
        let statement = conn.prepared(&shared.statements.outbox).await?;
        let limit = i64::try_from(shared.config.batch_size.max(1)).unwrap_or(i64::MAX);
        let shard = i16::try_from(shard).unwrap_or(i16::MAX);
        conn.client()
            .query(&statement, &[&shard, &cursor, &limit])
            .await?
    };
    let mut last = cursor;
    for row in &rows {
        last = col(row, 0)?;
        let channel: String = col(row, 1)?;
        if !shared.subscribed.read().contains(&channel) {
            continue;
        }
        let epoch: String = col(row, 2)?;
        let Some(publication) = stream_entry(shared.codec, row, 3)? else {
            continue;
        };
        let position = StreamPosition::new(publication.offset, epoch);
        if let Some(handler) = shared.handler.get() {
            // Per-key deltas (`prev_data`, written by upstream nodes publishing with
            // delta) are not used: subscribers get full payloads.
            handler.handle_publication(&channel, publication, position, false, None);
        }
    }
    Ok((rows.len(), last))
}

/// Keeps a `LISTEN` on the notification channel until `stop`, waking every poller on
/// each notification (and after each reconnect, in case one was missed meanwhile).
pub(crate) async fn listen(shared: Arc<Shared>, stop: CancellationToken) {
    loop {
        if let Err(e) = listen_once(&shared, &stop).await {
            tracing::warn!(error = %e, "postgresql map broker lost its LISTEN connection");
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
}

async fn listen_once(shared: &Shared, stop: &CancellationToken) -> Result<(), PgError> {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let client = Pool::dedicated(&shared.notify_config, stop, tx).await?;
    client
        .batch_execute(&format!("LISTEN \"{}\"", shared.names.notify_channel))
        .await?;
    shared.wake_all();
    loop {
        tokio::select! {
            _ = stop.cancelled() => return Ok(()),
            message = rx.recv() => match message {
                Some(AsyncMessage::Notification(_)) => shared.wake_all(),
                Some(_) => {}
                None => return Err(PgError::Closed),
            },
        }
    }
}
