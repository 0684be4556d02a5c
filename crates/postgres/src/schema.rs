//! Schema set-up shared by the engines: table prefixes, template rendering, running DDL
//! once across nodes, schema versions and shard-lock rows.

use tokio_postgres::Client;
use tokio_postgres::error::SqlState;

use crate::PgError;

/// The user's `table_prefix`, as upstream normalizes it (trailing `_` trimmed, default
/// `cf`). It becomes part of table and function names, so only identifier characters are
/// accepted.
pub(crate) fn table_prefix(configured: &str) -> Result<String, PgError> {
    let prefix = configured.trim_end_matches('_');
    let prefix = if prefix.is_empty() { "cf" } else { prefix };
    let mut chars = prefix.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    if !first_ok || !chars.all(|c| c.is_ascii_alphanumeric() || c == '_') || prefix.len() > 32 {
        return Err(PgError::Config(format!(
            "table_prefix {configured:?}: use at most 32 letters, digits and underscores, \
             not starting with a digit"
        )));
    }
    Ok(prefix.to_owned())
}

/// `template` with `@P@` replaced by `prefix` and `@T@` by `data_type`.
pub(crate) fn render(template: &str, prefix: &str, data_type: &str) -> String {
    template.replace("@P@", prefix).replace("@T@", data_type)
}

/// Splits a rendered schema at its `-- FUNCTIONS` line: (tables and indexes, functions).
pub(crate) fn split_functions(sql: &str) -> (&str, &str) {
    const MARKER: &str = "\n-- FUNCTIONS\n";
    match sql.find(MARKER) {
        Some(at) => (&sql[..at], &sql[at + MARKER.len()..]),
        None => (sql, ""),
    }
}

/// The version in `table` (row id 1); `None` when the table or row does not exist yet.
pub(crate) async fn read_version(client: &Client, table: &str) -> Result<Option<i32>, PgError> {
    let sql = format!("SELECT schema_version FROM {table} WHERE id = 1");
    match client.query_opt(&sql, &[]).await {
        Ok(row) => Ok(row.map(|r| r.get(0))),
        Err(e) if e.code() == Some(&SqlState::UNDEFINED_TABLE) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Whether `table` exists (in the search path).
pub(crate) async fn table_exists(client: &Client, table: &str) -> Result<bool, PgError> {
    let row = client
        .query_one("SELECT to_regclass($1::text) IS NOT NULL", &[&table])
        .await?;
    Ok(row.get(0))
}

/// Runs `steps` in one transaction holding a transaction-level advisory lock named
/// `lock_name`, so that nodes starting together do not run the same DDL at once (which
/// fails on catalog unique indexes rather than waiting). A deadlock or a concurrent
/// catalog update from a node not taking the lock (a Centrifugo node) is retried.
pub(crate) async fn run_locked(
    client: &mut Client,
    lock_name: &str,
    steps: &[String],
) -> Result<(), PgError> {
    const ATTEMPTS: usize = 3;
    let mut attempt = 0;
    loop {
        attempt += 1;
        let outcome = async {
            let tx = client.transaction().await?;
            tx.execute(
                "SELECT pg_advisory_xact_lock(hashtext($1::text))",
                &[&lock_name],
            )
            .await?;
            for step in steps {
                tx.batch_execute(step).await?;
            }
            tx.commit().await
        }
        .await;
        match outcome {
            Ok(()) => return Ok(()),
            Err(e) if attempt < ATTEMPTS && retryable(&e) => {
                tracing::debug!(error = %e, "schema set-up raced another node; retrying");
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            }
            Err(e) => return Err(e.into()),
        }
    }
}

fn retryable(e: &tokio_postgres::Error) -> bool {
    let code = e.code();
    code == Some(&SqlState::T_R_DEADLOCK_DETECTED)
        || code == Some(&SqlState::INTERNAL_ERROR) // "tuple concurrently updated"
        || code == Some(&SqlState::UNIQUE_VIOLATION)
        || code == Some(&SqlState::DUPLICATE_TABLE)
        || code == Some(&SqlState::DUPLICATE_OBJECT)
}

/// SQL that makes `table` hold exactly the shard ids `0..shards`.
pub(crate) fn shard_rows_sql(table: &str, shards: u16) -> String {
    format!(
        "INSERT INTO {table} (shard_id) SELECT generate_series(0, {last}) \
         ON CONFLICT DO NOTHING; DELETE FROM {table} WHERE shard_id >= {shards};",
        last = i32::from(shards) - 1,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_is_normalized_and_checked() {
        assert_eq!(table_prefix("").unwrap(), "cf");
        assert_eq!(table_prefix("cf_").unwrap(), "cf");
        assert_eq!(table_prefix("prod_eu_cf").unwrap(), "prod_eu_cf");
        assert!(table_prefix("cf; DROP TABLE x").is_err());
        assert!(table_prefix("1cf").is_err());
        assert!(table_prefix("cf-map").is_err());
    }

    #[test]
    fn render_and_split() {
        let sql = render(
            "CREATE TABLE @P@state (d @T@);\n-- FUNCTIONS\nCREATE FUNCTION @P@f();",
            "cf_map_",
            "JSONB",
        );
        let (ddl, funcs) = split_functions(&sql);
        assert_eq!(ddl, "CREATE TABLE cf_map_state (d JSONB);");
        assert_eq!(funcs, "CREATE FUNCTION cf_map_f();");
    }
}
