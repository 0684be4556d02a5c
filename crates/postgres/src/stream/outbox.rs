//! Delivery: each shard's new rows, read in id order and handed to the node's handler.

use std::sync::Arc;
use std::time::Duration;

use gyre::{Publication, StreamPosition};
use tokio::sync::Notify;
use tokio_postgres::Row;

use super::{KIND_JOIN, KIND_LEAVE, KIND_PUBLICATION, Shared, bytes_at, info_at, tags_from};
use crate::pg;

/// Pause after a failed poll, so an unreachable database is not hammered.
const RETRY_DELAY: Duration = Duration::from_secs(1);

/// Polls one shard for ever, starting after `cursor`.
pub(super) async fn poll_shard(
    shared: Arc<Shared>,
    shard: i16,
    mut cursor: i64,
    interval: Duration,
    wake: Arc<Notify>,
) {
    loop {
        match fetch(&shared, shard, cursor).await {
            Ok(rows) => {
                let full = rows.len() as i64 >= shared.batch_size;
                for row in &rows {
                    cursor = cursor.max(row.get::<_, i64>(0));
                    deliver(&shared, row);
                }
                if full {
                    // More is waiting: read on without sleeping.
                    continue;
                }
            }
            Err(e) => {
                tracing::warn!(shard, error = %e, "PostgreSQL stream broker: outbox poll failed");
                tokio::time::sleep(RETRY_DELAY).await;
            }
        }
        pg::next_poll(interval, &wake).await;
    }
}

async fn fetch(shared: &Shared, shard: i16, cursor: i64) -> Result<Vec<Row>, gyre::BrokerError> {
    let client = shared.pool.get().await?;
    client
        .query(&shared.sql.outbox, &[&shard, &cursor, &shared.batch_size])
        .await
        .map_err(|e| pg::pg_error("outbox poll", e))
}

/// Hands one row to the handler, if this node subscribed to its channel.
fn deliver(shared: &Shared, row: &Row) {
    let Some(handler) = shared.handler.get() else {
        return;
    };
    let channel: &str = row.get(1);
    if !shared.subs.lock().contains(channel) {
        return;
    }
    let kind: i16 = row.get(4);
    match kind {
        KIND_PUBLICATION => {
            let offset = u64::try_from(row.get::<_, i64>(2)).unwrap_or(0);
            let epoch: &str = row.get(3);
            let mut publication = Publication::new(bytes_at(row, 5));
            publication.offset = offset;
            publication.tags = tags_from(row.get(6));
            publication.info = info_at(row, 7);
            publication.time = row.get(13);
            // Offset 0: a publication without history, outside any stream.
            let position = if offset > 0 {
                StreamPosition::new(offset, epoch)
            } else {
                StreamPosition::default()
            };
            let use_delta: bool = row.get(12);
            let prev = row
                .get::<_, Option<&[u8]>>(11)
                .filter(|_| use_delta && offset > 0)
                .map(|data| {
                    let mut prev = Publication::new(bytes::Bytes::copy_from_slice(data));
                    prev.offset = offset - 1;
                    prev
                });
            handler.handle_publication(channel, publication, position, use_delta, prev);
        }
        KIND_JOIN | KIND_LEAVE => {
            let Some(info) = info_at(row, 7) else {
                return;
            };
            if kind == KIND_JOIN {
                handler.handle_join(channel, info);
            } else {
                handler.handle_leave(channel, info);
            }
        }
        other => tracing::debug!(kind = other, "PostgreSQL stream broker: unknown row kind"),
    }
}
