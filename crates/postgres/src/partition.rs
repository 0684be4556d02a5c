//! Daily partitions of a `PARTITION BY RANGE (created_at)` table, named
//! `<parent>_YYYY_MM_DD` (UTC days), as upstream names them: created ahead of time and
//! dropped whole once older than the retention.

use tokio_postgres::Client;
use tokio_postgres::error::SqlState;

use crate::PgError;

/// Whether `parent` is a partitioned table; `None` when it does not exist.
pub(crate) async fn is_partitioned(client: &Client, parent: &str) -> Result<Option<bool>, PgError> {
    let row = client
        .query_one(
            "SELECT to_regclass($1::text) IS NOT NULL, \
             EXISTS (SELECT 1 FROM pg_partitioned_table WHERE partrelid = to_regclass($1::text))",
            &[&parent],
        )
        .await?;
    let exists: bool = row.get(0);
    Ok(exists.then(|| row.get(1)))
}

/// Creates today's partition of `parent` and the next `lookahead_days` ones (UTC).
pub(crate) async fn ensure_daily(
    client: &Client,
    parent: &str,
    lookahead_days: u32,
) -> Result<(), PgError> {
    // The bounds are written as UTC timestamps: a bare date would be read in the
    // session's time zone.
    let days = client
        .query(
            "SELECT to_char(d, 'YYYY_MM_DD'), to_char(d, 'YYYY-MM-DD'), to_char(d + 1, 'YYYY-MM-DD') \
             FROM (SELECT (now() AT TIME ZONE 'UTC')::date + i AS d \
                   FROM generate_series(0, $1::int) AS i) AS days",
            &[&i32::try_from(lookahead_days).unwrap_or(i32::MAX)],
        )
        .await?;
    for day in days {
        let (suffix, from, to): (String, String, String) = (day.get(0), day.get(1), day.get(2));
        let sql = format!(
            "CREATE TABLE IF NOT EXISTS {parent}_{suffix} PARTITION OF {parent} \
             FOR VALUES FROM ('{from} 00:00:00+00') TO ('{to} 00:00:00+00')"
        );
        match client.batch_execute(&sql).await {
            Ok(()) => {}
            // Another node created it at the same moment.
            Err(e)
                if e.code() == Some(&SqlState::DUPLICATE_TABLE)
                    || e.code() == Some(&SqlState::UNIQUE_VIOLATION) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// Drops the partitions of `parent` (in the current schema) whose day is more than
/// `retention_days` before today; 0 keeps everything. Returns the dropped names.
pub(crate) async fn drop_older(
    client: &Client,
    parent: &str,
    retention_days: u32,
) -> Result<Vec<String>, PgError> {
    if retention_days == 0 {
        return Ok(Vec::new());
    }
    let cutoff: String = client
        .query_one(
            "SELECT to_char((now() AT TIME ZONE 'UTC')::date - $1::int, 'YYYY_MM_DD')",
            &[&i32::try_from(retention_days).unwrap_or(i32::MAX)],
        )
        .await?
        .get(0);
    let children = client
        .query(
            "SELECT c.relname::text FROM pg_inherits i \
             JOIN pg_class c ON c.oid = i.inhrelid \
             JOIN pg_class p ON p.oid = i.inhparent \
             JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE p.relname = $1::text AND p.relnamespace = c.relnamespace \
               AND n.nspname = current_schema()",
            &[&parent],
        )
        .await?;
    let mut dropped = Vec::new();
    for child in children {
        let name: String = child.get(0);
        // Partitions named otherwise are someone else's: left alone.
        let Some(day) = day_suffix(&name, parent) else {
            continue;
        };
        if day < cutoff.as_str() {
            client
                .batch_execute(&format!("DROP TABLE IF EXISTS {name}"))
                .await?;
            dropped.push(name);
        }
    }
    Ok(dropped)
}

/// The `YYYY_MM_DD` of `<parent>_YYYY_MM_DD`.
fn day_suffix<'a>(name: &'a str, parent: &str) -> Option<&'a str> {
    let day = name.strip_prefix(parent)?.strip_prefix('_')?;
    let b = day.as_bytes();
    let shaped = b.len() == 10
        && b[4] == b'_'
        && b[7] == b'_'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit());
    shaped.then_some(day)
}

#[cfg(test)]
mod tests {
    use super::day_suffix;

    #[test]
    fn partition_names() {
        assert_eq!(
            day_suffix("cf_map_stream_2026_12_06", "cf_map_stream"),
            Some("2026_12_06")
        );
        assert_eq!(day_suffix("cf_map_stream_old", "cf_map_stream"), None);
        assert_eq!(day_suffix("cf_map_stream_2026_12_6", "cf_map_stream"), None);
        assert_eq!(day_suffix("other_2026_12_06", "cf_map_stream"), None);
    }
}
