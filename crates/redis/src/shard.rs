//! One Redis deployment unit: a standalone instance (or a sentinel-managed master), or a
//! whole Redis Cluster. Holds the command connection and knows how to open dedicated
//! PUB/SUB connections.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use gyre::{BrokerError, EngineError};
use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterClientBuilder;
use redis::cluster_async::ClusterConnection;
use redis::sentinel::{SentinelClient, SentinelNodeConnectionInfo, SentinelServerType};
use redis::{Client, Cmd, ConnectionInfo, IntoConnectionInfo, Pipeline, RedisFuture, Value};

use crate::config::{RedisConfig, RedisEngineError};

/// The command connection. Every variant reconnects on its own and is cheap to clone
/// (clones share one multiplexed connection).
#[derive(Clone)]
pub(crate) enum Conn {
    Single(ConnectionManager),
    Sentinel(Arc<SentinelConn>),
    Cluster(ClusterConnection),
}

/// The command connection to a sentinel-managed master. A `ConnectionManager`
/// reconnects to the address it was built with, which after a failover is a replica
/// (every write fails with READONLY) or a dead server; so a failure that says the
/// master moved makes the Sentinels be asked again and the connection replaced.
pub(crate) struct SentinelConn {
    current: parking_lot::Mutex<ConnectionManager>,
    sentinel: Arc<tokio::sync::Mutex<SentinelClient>>,
    config: RedisConfig,
    name: String,
    rediscovering: AtomicBool,
}

impl SentinelConn {
    fn manager(&self) -> ConnectionManager {
        self.current.lock().clone()
    }

    /// Asks the Sentinels for the master in the background (once at a time) and swaps
    /// the connection; the failed command itself stays failed, so its caller sees an
    /// error rather than a silent drop.
    fn rediscover(self: &Arc<Self>) {
        if self.rediscovering.swap(true, Ordering::AcqRel) {
            return;
        }
        let this = self.clone();
        tokio::spawn(async move {
            let found = async {
                let client = tokio::time::timeout(
                    this.config.connect_timeout,
                    this.sentinel.lock().await.async_get_client(),
                )
                .await
                .map_err(|_| "sentinel timeout".to_owned())?
                .map_err(|e| e.to_string())?;
                manager(client, &this.name, &this.config)
                    .await
                    .map_err(|e| e.to_string())
            }
            .await;
            match found {
                Ok(m) => {
                    tracing::info!(shard = %this.name, "Redis master rediscovered through Sentinel");
                    *this.current.lock() = m;
                }
                Err(e) => {
                    tracing::warn!(shard = %this.name, error = %e, "asking Sentinel for the master failed");
                }
            }
            // At most a few rediscoveries a second while the failover settles.
            tokio::time::sleep(Duration::from_millis(200)).await;
            this.rediscovering.store(false, Ordering::Release);
        });
    }
}

/// The error says this connection no longer reaches a writable master.
fn master_moved(e: &redis::RedisError) -> bool {
    e.code() == Some("READONLY")
        || e.is_io_error()
        || e.is_connection_dropped()
        || e.is_connection_refusal()
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Conn::Single(c) => c.req_packed_command(cmd),
            Conn::Sentinel(s) => {
                let s = s.clone();
                Box::pin(async move {
                    let mut m = s.manager();
                    let r = m.req_packed_command(cmd).await;
                    if let Err(e) = &r
                        && master_moved(e)
                    {
                        s.rediscover();
                    }
                    r
                })
            }
            Conn::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Conn::Single(c) => c.req_packed_commands(pipeline, offset, count),
            Conn::Sentinel(s) => {
                let s = s.clone();
                Box::pin(async move {
                    let mut m = s.manager();
                    let r = m.req_packed_commands(pipeline, offset, count).await;
                    if let Err(e) = &r
                        && master_moved(e)
                    {
                        s.rediscover();
                    }
                    r
                })
            }
            Conn::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Single(c) => c.get_db(),
            Conn::Sentinel(s) => s.manager().get_db(),
            Conn::Cluster(c) => c.get_db(),
        }
    }
}

/// Where dedicated PUB/SUB connections go.
// One per shard: the size of the variants does not matter.
#[allow(clippy::large_enum_variant)]
enum Target {
    Single(Client),
    /// Asked for the current master on every (re)connect, so PUB/SUB follows failovers.
    Sentinel(Arc<tokio::sync::Mutex<SentinelClient>>),
    /// Any node: a classic PUBLISH reaches subscribers on every node of a cluster, so the
    /// PUB/SUB connection rotates over the seeds when one is down.
    Cluster(Vec<Client>),
}

pub(crate) struct Shard {
    /// For logs and errors.
    pub(crate) name: String,
    conn: Conn,
    target: Target,
    rotation: AtomicUsize,
    pub(crate) io_timeout: Duration,
    pub(crate) connect_timeout: Duration,
}

impl std::fmt::Debug for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shard").field("name", &self.name).finish()
    }
}

fn connect_error(address: &str, reason: impl std::fmt::Display) -> RedisEngineError {
    RedisEngineError::Connect {
        address: address.to_owned(),
        reason: reason.to_string(),
    }
}

/// A command that failed on shard `name`; the Redis error stays the source.
fn command_failed(name: &str, e: redis::RedisError) -> BrokerError {
    EngineError::with_context(name, e).into()
}

/// Parses `url` and applies the config's db/user/password overrides.
fn connection_info(url: &str, config: &RedisConfig) -> Result<ConnectionInfo, RedisEngineError> {
    let info = url
        .into_connection_info()
        .map_err(|e| RedisEngineError::Config(format!("{url}: {e}")))?;
    let mut redis = info.redis_settings().clone();
    if let Some(db) = config.db {
        redis = redis.set_db(db);
    }
    if let Some(user) = &config.user {
        redis = redis.set_username(user);
    }
    if let Some(password) = &config.password {
        redis = redis.set_password(password);
    }
    Ok(info.set_redis_settings(redis))
}

fn manager_config(config: &RedisConfig) -> ConnectionManagerConfig {
    // Few, quick retries: a command must fail within `io_timeout` during an outage (it is
    // bounded by our own timeout too), and the next command triggers a new attempt anyway.
    ConnectionManagerConfig::new()
        .set_connection_timeout(Some(config.connect_timeout))
        .set_response_timeout(Some(config.io_timeout))
        .set_number_of_retries(2)
        .set_min_delay(Duration::from_millis(50))
        .set_max_delay(Duration::from_millis(500))
}

async fn manager(
    client: Client,
    address: &str,
    config: &RedisConfig,
) -> Result<ConnectionManager, RedisEngineError> {
    let connect = ConnectionManager::new_with_config(client, manager_config(config));
    match tokio::time::timeout(config.connect_timeout + config.io_timeout, connect).await {
        Ok(Ok(m)) => Ok(m),
        Ok(Err(e)) => Err(connect_error(address, e)),
        Err(_) => Err(connect_error(address, "timeout")),
    }
}

impl Shard {
    /// Connects every shard the config describes (one per address, or one for a
    /// sentinel-managed master, or one for a whole cluster).
    pub(crate) async fn connect_all(
        config: &RedisConfig,
    ) -> Result<Vec<Arc<Shard>>, RedisEngineError> {
        if config.is_cluster() {
            return Ok(vec![Arc::new(Self::connect_cluster(config).await?)]);
        }
        if !config.sentinel_addresses.is_empty() {
            return Ok(vec![Arc::new(Self::connect_sentinel(config).await?)]);
        }
        if config.addresses.is_empty() {
            return Err(RedisEngineError::Config("no Redis address".into()));
        }
        let mut shards = Vec::with_capacity(config.addresses.len());
        for address in &config.addresses {
            let client = Client::open(connection_info(address, config)?)
                .map_err(|e| RedisEngineError::Config(format!("{address}: {e}")))?;
            let conn = manager(client.clone(), address, config).await?;
            shards.push(Arc::new(Shard {
                name: address.clone(),
                conn: Conn::Single(conn),
                target: Target::Single(client),
                rotation: AtomicUsize::new(0),
                io_timeout: config.io_timeout,
                connect_timeout: config.connect_timeout,
            }));
        }
        Ok(shards)
    }

    async fn connect_sentinel(config: &RedisConfig) -> Result<Shard, RedisEngineError> {
        let name = format!("sentinel:{}", config.sentinel_master_name);
        let mut sentinels = Vec::with_capacity(config.sentinel_addresses.len());
        for address in &config.sentinel_addresses {
            let info = address
                .as_str()
                .into_connection_info()
                .map_err(|e| RedisEngineError::Config(format!("{address}: {e}")))?;
            let info = match &config.sentinel_password {
                Some(p) => {
                    let redis = info.redis_settings().clone().set_password(p);
                    info.set_redis_settings(redis)
                }
                None => info,
            };
            sentinels.push(info);
        }
        // The master's own settings (db, user, password) come from the config overrides.
        let master = connection_info("redis://placeholder", config)?;
        let node_info = SentinelNodeConnectionInfo::default()
            .set_redis_connection_info(master.redis_settings().clone());
        let mut sentinel = SentinelClient::build(
            sentinels,
            config.sentinel_master_name.clone(),
            Some(node_info),
            SentinelServerType::Master,
        )
        .map_err(|e| RedisEngineError::Config(format!("sentinel: {e}")))?;
        let client = tokio::time::timeout(config.connect_timeout, sentinel.async_get_client())
            .await
            .map_err(|_| connect_error(&name, "timeout"))?
            .map_err(|e| connect_error(&name, e))?;
        let conn = manager(client, &name, config).await?;
        let sentinel = Arc::new(tokio::sync::Mutex::new(sentinel));
        let conn = Arc::new(SentinelConn {
            current: parking_lot::Mutex::new(conn),
            sentinel: sentinel.clone(),
            config: config.clone(),
            name: name.clone(),
            rediscovering: AtomicBool::new(false),
        });
        Ok(Shard {
            name,
            conn: Conn::Sentinel(conn),
            target: Target::Sentinel(sentinel),
            rotation: AtomicUsize::new(0),
            io_timeout: config.io_timeout,
            connect_timeout: config.connect_timeout,
        })
    }

    async fn connect_cluster(config: &RedisConfig) -> Result<Shard, RedisEngineError> {
        let name = format!("cluster:{}", config.cluster_addresses.join(","));
        let mut infos = Vec::with_capacity(config.cluster_addresses.len());
        let mut clients = Vec::with_capacity(config.cluster_addresses.len());
        for address in &config.cluster_addresses {
            let info = connection_info(address, config)?;
            clients.push(
                Client::open(info.clone())
                    .map_err(|e| RedisEngineError::Config(format!("{address}: {e}")))?,
            );
            infos.push(info);
        }
        let mut builder = ClusterClientBuilder::new(infos)
            .connection_timeout(config.connect_timeout)
            .response_timeout(config.io_timeout)
            .retries(2);
        if let Some(user) = &config.user {
            builder = builder.username(user);
        }
        if let Some(password) = &config.password {
            builder = builder.password(password);
        }
        let client = builder
            .build()
            .map_err(|e| RedisEngineError::Config(format!("cluster: {e}")))?;
        let conn = tokio::time::timeout(
            config.connect_timeout + config.io_timeout,
            client.get_async_connection(),
        )
        .await
        .map_err(|_| connect_error(&name, "timeout"))?
        .map_err(|e| connect_error(&name, e))?;
        Ok(Shard {
            name,
            conn: Conn::Cluster(conn),
            target: Target::Cluster(clients),
            rotation: AtomicUsize::new(0),
            io_timeout: config.io_timeout,
            connect_timeout: config.connect_timeout,
        })
    }

    /// A handle on the command connection.
    pub(crate) fn conn(&self) -> Conn {
        self.conn.clone()
    }

    /// Opens a dedicated PUB/SUB connection.
    pub(crate) async fn pubsub(&self) -> Result<redis::aio::PubSub, String> {
        let client = match &self.target {
            Target::Single(client) => client.clone(),
            Target::Sentinel(sentinel) => sentinel
                .lock()
                .await
                .async_get_client()
                .await
                .map_err(|e| e.to_string())?,
            Target::Cluster(clients) => {
                let i = self.rotation.fetch_add(1, Ordering::Relaxed);
                clients[i % clients.len()].clone()
            }
        };
        match tokio::time::timeout(self.connect_timeout, client.get_async_pubsub()).await {
            Ok(result) => result.map_err(|e| e.to_string()),
            Err(_) => Err("connect timeout".to_owned()),
        }
    }

    /// Runs a command future bounded by `io_timeout`, mapping failures to `Unavailable`.
    pub(crate) async fn exec<T>(
        &self,
        fut: impl Future<Output = redis::RedisResult<T>>,
    ) -> Result<T, BrokerError> {
        match tokio::time::timeout(self.io_timeout, fut).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(command_failed(&self.name, e)),
            Err(_) => Err(EngineError::msg(format!(
                "{}: no reply within {:?}",
                self.name, self.io_timeout
            ))
            .into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use gyre::PresenceError;

    use super::*;

    /// A Redis error from a port nothing listens on.
    async fn refused() -> redis::RedisError {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let client = Client::open(format!("redis://127.0.0.1:{port}")).unwrap();
        client
            .get_multiplexed_async_connection()
            .await
            .map(drop)
            .unwrap_err()
    }

    /// Shows as before the source was kept, and the source is the refused connection.
    fn assert_refused(err: &dyn std::error::Error, shown: &str) {
        assert_eq!(
            err.to_string(),
            format!("engine unavailable: 127.0.0.1:6379: {shown}")
        );
        let source = err
            .source()
            .and_then(|s| s.downcast_ref::<redis::RedisError>())
            .expect("the Redis error is the source");
        assert!(source.is_connection_refusal(), "{source:?}");
    }

    #[tokio::test]
    async fn a_failed_command_keeps_the_redis_error_as_source() {
        let e = refused().await;
        let shown = e.to_string();
        let err = command_failed("127.0.0.1:6379", e);
        assert!(matches!(err, BrokerError::Unavailable(_)), "{err:?}");
        assert_refused(&err, &shown);

        // The presence manager runs its commands through the same shards.
        let err =
            crate::presence::presence_error(command_failed("127.0.0.1:6379", refused().await));
        assert!(matches!(err, PresenceError::Unavailable(_)), "{err:?}");
        assert_refused(&err, &shown);
    }
}
