//! A small connection pool over `tokio-postgres`, with prepared statements cached per
//! connection.
//!
//! At most `size` connections exist; [`Pool::get`] waits for a free one. A connection is
//! opened on demand and dropped when it broke, so a restarted server is reconnected to by
//! the next [`Pool::get`].

use std::collections::HashMap;
use std::ops::{Deref, DerefMut};
use std::sync::Arc;

use parking_lot::Mutex;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_postgres::{Client, Config, NoTls, Statement};
use tokio_util::sync::CancellationToken;

use crate::PgError;

/// One connection and the statements prepared on it.
pub(crate) struct Conn {
    client: Client,
    statements: HashMap<String, Statement>,
}

impl std::fmt::Debug for Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conn")
            .field("closed", &self.client.is_closed())
            .field("statements", &self.statements.len())
            .finish()
    }
}

impl Conn {
    /// `sql` prepared on this connection (once; later calls reuse it).
    pub(crate) async fn prepared(&mut self, sql: &str) -> Result<Statement, PgError> {
        if let Some(statement) = self.statements.get(sql) {
            return Ok(statement.clone());
        }
        let statement = self.client.prepare(sql).await?;
        self.statements.insert(sql.to_owned(), statement.clone());
        Ok(statement)
    }

    pub(crate) fn client(&self) -> &Client {
        &self.client
    }

    pub(crate) fn client_mut(&mut self) -> &mut Client {
        &mut self.client
    }
}

struct Shared {
    config: Config,
    idle: Mutex<Vec<Conn>>,
    permits: Arc<Semaphore>,
    /// Ends the connections' driver tasks when the pool's owner shuts down.
    stop: CancellationToken,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("idle", &self.idle.lock().len())
            .field("free", &self.permits.available_permits())
            .finish_non_exhaustive()
    }
}

/// A bounded set of connections to one database.
#[derive(Debug, Clone)]
pub(crate) struct Pool {
    shared: Arc<Shared>,
}

impl Pool {
    /// A pool for `dsn` (a URL or `key=value` string); connects nothing yet.
    pub(crate) fn new(dsn: &str, size: usize, stop: CancellationToken) -> Result<Self, PgError> {
        let config: Config = dsn
            .parse()
            .map_err(|e: tokio_postgres::Error| PgError::Config(format!("dsn: {e}")))?;
        Ok(Pool {
            shared: Arc::new(Shared {
                config,
                idle: Mutex::new(Vec::new()),
                permits: Arc::new(Semaphore::new(size.max(1))),
                stop,
            }),
        })
    }

    /// A connection for the caller alone until the guard is dropped.
    pub(crate) async fn get(&self) -> Result<PooledConn, PgError> {
        let permit = self
            .shared
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| PgError::Closed)?;
        let idle = {
            let mut idle = self.shared.idle.lock();
            idle.retain(|c| !c.client.is_closed());
            idle.pop()
        };
        let conn = match idle {
            Some(conn) => conn,
            None => Conn {
                client: connect(&self.shared.config, &self.shared.stop).await?,
                statements: HashMap::new(),
            },
        };
        Ok(PooledConn {
            conn: Some(conn),
            pool: self.shared.clone(),
            _permit: permit,
        })
    }

    /// A connection outside the pool (for LISTEN), driven until `stop`; its notifications
    /// and notices go to `messages`.
    pub(crate) async fn dedicated(
        config: &Config,
        stop: &CancellationToken,
        messages: tokio::sync::mpsc::UnboundedSender<tokio_postgres::AsyncMessage>,
    ) -> Result<Client, PgError> {
        let (client, mut connection) = config.connect(NoTls).await?;
        let stop = stop.clone();
        tokio::spawn(async move {
            let mut stream = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
            loop {
                tokio::select! {
                    message = futures_util::StreamExt::next(&mut stream) => match message {
                        Some(Ok(m)) => {
                            if messages.send(m).is_err() {
                                return;
                            }
                        }
                        Some(Err(e)) => {
                            tracing::warn!(error = %e, "postgresql listen connection failed");
                            return;
                        }
                        None => return,
                    },
                    _ = stop.cancelled() => return,
                }
            }
        });
        Ok(client)
    }
}

async fn connect(config: &Config, stop: &CancellationToken) -> Result<Client, PgError> {
    let (client, connection) = config.connect(NoTls).await?;
    let stop = stop.clone();
    tokio::spawn(async move {
        tokio::select! {
            r = connection => if let Err(e) = r {
                tracing::warn!(error = %e, "postgresql connection closed");
            },
            _ = stop.cancelled() => {}
        }
    });
    Ok(client)
}

/// A connection taken from a [`Pool`]; it returns there when dropped (unless broken).
#[derive(Debug)]
pub(crate) struct PooledConn {
    conn: Option<Conn>,
    pool: Arc<Shared>,
    _permit: OwnedSemaphorePermit,
}

impl Deref for PooledConn {
    type Target = Conn;

    fn deref(&self) -> &Conn {
        self.conn.as_ref().expect("connection present until drop")
    }
}

impl DerefMut for PooledConn {
    fn deref_mut(&mut self) -> &mut Conn {
        self.conn.as_mut().expect("connection present until drop")
    }
}

impl Drop for PooledConn {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take()
            && !conn.client.is_closed()
        {
            self.pool.idle.lock().push(conn);
        }
    }
}
