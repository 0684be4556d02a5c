//! Creating (or checking) the map broker's schema at start, as upstream's EnsureSchema:
//! both data variants, the shard-lock rows, the schema version and today's partitions.

use super::sql::Names;
use crate::pool::Conn;
use crate::{PgError, partition, schema};

/// The schema version this code reads and writes (upstream's current one).
pub(crate) const SCHEMA_VERSION: i32 = 1;

const TEMPLATE: &str = include_str!("schema.sql");

/// Makes the database ready for a broker of `names` with `shards` shards.
pub(crate) async fn ensure_schema(
    conn: &mut Conn,
    names: &Names,
    shards: u16,
) -> Result<(), PgError> {
    let variants = [
        (names.jsonb_prefix.as_str(), "JSONB"),
        (names.binary_prefix.as_str(), "BYTEA"),
    ];
    let lock = format!("gyre:map-schema:{}", names.jsonb_prefix);
    let version = schema::read_version(conn.client(), &names.schema_version).await?;
    if let Some(v) = version
        && v > SCHEMA_VERSION
    {
        return Err(PgError::Schema(format!(
            "{} holds schema version {v}; this Gyre knows versions up to {SCHEMA_VERSION}",
            names.schema_version
        )));
    }
    let mut complete = version == Some(SCHEMA_VERSION);
    for (prefix, _) in variants {
        complete &= schema::table_exists(conn.client(), &format!("{prefix}stream")).await?;
    }
    let shard_rows: Vec<String> = variants
        .iter()
        .map(|(prefix, _)| schema::shard_rows_sql(&format!("{prefix}shard_lock"), shards))
        .collect();
    if complete {
        // Already set up (by Gyre or Centrifugo): only the shard count may have changed.
        schema::run_locked(conn.client_mut(), &lock, &shard_rows).await?;
    } else {
        for (prefix, _) in variants {
            let stream = format!("{prefix}stream");
            if partition::is_partitioned(conn.client(), &stream).await? == Some(false) {
                return Err(PgError::Schema(format!(
                    "{stream} exists but is not partitioned by created_at; drop the old map \
                     tables of this prefix to let them be created again"
                )));
            }
        }
        let rendered: Vec<String> = variants
            .iter()
            .map(|(prefix, data_type)| schema::render(TEMPLATE, prefix, data_type))
            .collect();
        let mut steps = Vec::new();
        for sql in &rendered {
            steps.push(schema::split_functions(sql).0.to_owned());
        }
        for sql in &rendered {
            steps.push(schema::split_functions(sql).1.to_owned());
        }
        steps.extend(shard_rows);
        for (prefix, _) in variants {
            steps.push(format!(
                "UPDATE {prefix}schema_version SET schema_version = {SCHEMA_VERSION} WHERE id = 1"
            ));
        }
        schema::run_locked(conn.client_mut(), &lock, &steps).await?;
    }
    Ok(())
}
