//! What the stream broker and the controller share: a small connection pool, error
//! mapping, the LISTEN connection that wakes the pollers, and daily partitions.

use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures_util::StreamExt;
use gyre::{BrokerError, EngineError};
use tokio::sync::Notify;
use tokio_postgres::error::SqlState;
use tokio_postgres::{AsyncMessage, Client, Config, NoTls};

/// How long connecting may take when the DSN does not say (`connect_timeout`).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Pause before a failed LISTEN connection is tried again.
const RELISTEN_DELAY: Duration = Duration::from_secs(1);

/// Parses a DSN (URL or `key=value` form), with a connect timeout when it has none.
pub(crate) fn parse_dsn(dsn: &str) -> Result<Config, BrokerError> {
    let mut config = Config::from_str(dsn)
        .map_err(|e| BrokerError::BadRequest(format!("invalid PostgreSQL DSN: {e}")))?;
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(CONNECT_TIMEOUT);
    }
    Ok(config)
}

/// Table prefixes are spliced into SQL, so only plain identifiers are accepted.
pub(crate) fn check_prefix(prefix: &str) -> Result<(), BrokerError> {
    let mut chars = prefix.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    if first_ok && chars.all(|c| c.is_ascii_alphanumeric() || c == '_') && prefix.len() <= 40 {
        Ok(())
    } else {
        Err(BrokerError::BadRequest(format!(
            "table_prefix {prefix:?} must be a plain SQL identifier (letters, digits, _)"
        )))
    }
}

async fn connect(config: &Config) -> Result<Client, BrokerError> {
    let (client, connection) = config
        .connect(NoTls)
        .await
        .map_err(|e| EngineError::with_context("connecting to PostgreSQL", e))?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::warn!(error = %e, "PostgreSQL connection lost");
        }
    });
    Ok(client)
}

/// Maps a driver error: bad data (SQLSTATE class 22, e.g. invalid JSON) is the caller's
/// fault, anything else an engine failure.
pub(crate) fn pg_error(context: &str, e: tokio_postgres::Error) -> BrokerError {
    if let Some(code) = e.code()
        && (code.code().starts_with("22") || *code == SqlState::CHECK_VIOLATION)
    {
        return BrokerError::BadRequest(format!("{context}: {e}"));
    }
    EngineError::with_context(context.to_owned(), e).into()
}

struct Slot {
    client: parking_lot::Mutex<Option<Arc<Client>>>,
    /// Held while (re)connecting, so one failure makes one new connection.
    connecting: tokio::sync::Mutex<()>,
}

/// A fixed number of pipelined connections, used round-robin and reopened when closed.
pub(crate) struct Pool {
    config: Config,
    slots: Vec<Slot>,
    next: AtomicUsize,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("size", &self.slots.len())
            .finish_non_exhaustive()
    }
}

impl Pool {
    /// A pool of `size` connections (at least one); the first is opened now so that a
    /// wrong DSN fails at start.
    pub(crate) async fn open(config: Config, size: usize) -> Result<Self, BrokerError> {
        let slots = (0..size.max(1))
            .map(|_| Slot {
                client: parking_lot::Mutex::new(None),
                connecting: tokio::sync::Mutex::new(()),
            })
            .collect();
        let pool = Pool {
            config,
            slots,
            next: AtomicUsize::new(0),
        };
        pool.get().await?;
        Ok(pool)
    }

    fn ready(slot: &Slot) -> Option<Arc<Client>> {
        slot.client
            .lock()
            .as_ref()
            .filter(|c| !c.is_closed())
            .cloned()
    }

    /// A live connection.
    pub(crate) async fn get(&self) -> Result<Arc<Client>, BrokerError> {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.slots.len();
        let slot = &self.slots[i];
        if let Some(client) = Self::ready(slot) {
            return Ok(client);
        }
        let _connecting = slot.connecting.lock().await;
        if let Some(client) = Self::ready(slot) {
            return Ok(client);
        }
        let client = Arc::new(connect(&self.config).await?);
        *slot.client.lock() = Some(client.clone());
        Ok(client)
    }

    /// The pool's connection settings (for the LISTEN connection).
    pub(crate) fn config(&self) -> &Config {
        &self.config
    }
}

/// Listens on `channel` and wakes every poller at each notification, for ever
/// (reconnecting after a failure). Pollers poll on their interval as well, so a lost
/// notification only delays a delivery.
pub(crate) async fn listen(config: Config, channel: String, wakers: Vec<Arc<Notify>>) {
    loop {
        if let Err(e) = listen_once(&config, &channel, &wakers).await {
            tracing::warn!(channel, error = %e, "PostgreSQL LISTEN failed; retrying");
        }
        tokio::time::sleep(RELISTEN_DELAY).await;
    }
}

async fn listen_once(
    config: &Config,
    channel: &str,
    wakers: &[Arc<Notify>],
) -> Result<(), tokio_postgres::Error> {
    let (client, mut connection) = config.connect(NoTls).await?;
    let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
    // The channel name is a checked identifier (see `check_prefix`).
    let statement = format!("LISTEN {channel}");
    let listen = client.batch_execute(&statement);
    tokio::pin!(listen);
    let mut listening = false;
    loop {
        tokio::select! {
            r = &mut listen, if !listening => {
                r?;
                listening = true;
                // Anything committed while we were not listening is found by a poll now.
                wakers.iter().for_each(|w| w.notify_one());
            }
            message = messages.next() => match message {
                Some(Ok(AsyncMessage::Notification(_))) => {
                    wakers.iter().for_each(|w| w.notify_one());
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(e),
                None => return Ok(()),
            },
        }
    }
}

/// Waits for the next poll: the interval or a notification, whichever comes first.
pub(crate) async fn next_poll(interval: Duration, wake: &Notify) {
    tokio::select! {
        _ = tokio::time::sleep(interval) => {}
        _ = wake.notified() => {}
    }
}

/// SQL that creates the daily partitions of `table` from yesterday to `lookahead` days
/// ahead (UTC days, named `<table>_YYYY_MM_DD` as upstream) and drops those older than
/// `retention` days (never when `retention` is 0). Serialized between nodes by an
/// advisory lock, since concurrent `CREATE TABLE IF NOT EXISTS` can still collide.
pub(crate) fn partitions_sql(table: &str, lookahead: u32, retention: u32) -> String {
    format!(
        r#"DO $gyre$
DECLARE
    today DATE := (now() AT TIME ZONE 'UTC')::date;
    day DATE;
    part RECORD;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext(current_schema() || '.{table}'));
    FOR day IN SELECT g::date FROM generate_series(today - 1, today + {lookahead}, interval '1 day') AS g LOOP
        EXECUTE format(
            'CREATE TABLE IF NOT EXISTS %I PARTITION OF %I FOR VALUES FROM (%L) TO (%L)',
            '{table}_' || to_char(day, 'YYYY_MM_DD'), '{table}',
            to_char(day, 'YYYY-MM-DD') || ' 00:00:00+00',
            to_char(day + 1, 'YYYY-MM-DD') || ' 00:00:00+00');
    END LOOP;
    IF {retention} > 0 THEN
        FOR part IN
            SELECT child.relname AS name
              FROM pg_inherits inh
              JOIN pg_class child ON child.oid = inh.inhrelid
              JOIN pg_class parent ON parent.oid = inh.inhparent
              JOIN pg_namespace ns ON ns.oid = parent.relnamespace
             WHERE parent.relname = '{table}' AND ns.nspname = current_schema()
        LOOP
            IF part.name ~ '_[0-9]{{4}}_[0-9]{{2}}_[0-9]{{2}}$'
               AND to_date(right(part.name, 10), 'YYYY_MM_DD') < today - {retention} THEN
                EXECUTE format('DROP TABLE IF EXISTS %I', part.name);
            END IF;
        END LOOP;
    END IF;
END
$gyre$;"#
    )
}

/// Runs schema DDL in one transaction, serialized with other nodes doing the same.
pub(crate) async fn run_ddl(pool: &Pool, lock_name: &str, ddl: &str) -> Result<(), BrokerError> {
    let client = pool.get().await?;
    let sql = format!(
        "BEGIN;\nSELECT pg_advisory_xact_lock(hashtext(current_schema() || '.{lock_name}'));\n{ddl}\nCOMMIT;"
    );
    let result = client.batch_execute(&sql).await;
    if result.is_err() {
        // Leave the connection usable for the pool.
        let _ = client.batch_execute("ROLLBACK").await;
    }
    result.map_err(|e| EngineError::with_context(format!("creating the {lock_name} schema"), e))?;
    Ok(())
}

/// An SQL expression making a new epoch: 8 random lowercase letters (upstream epochs are
/// 8 letters; clients only compare them).
pub(crate) const NEW_EPOCH_SQL: &str =
    "(SELECT string_agg(chr(97 + floor(random() * 26)::INTEGER), '') FROM generate_series(1, 8))";

/// Milliseconds as an SQL interval parameter: `$n::BIGINT * interval '1 millisecond'`.
pub(crate) fn ms_interval(n: usize) -> String {
    format!("(${n}::BIGINT * interval '1 millisecond')")
}

/// A duration in whole milliseconds (at least 1 for a non-zero duration, as upstream).
pub(crate) fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX).max(1)
}
