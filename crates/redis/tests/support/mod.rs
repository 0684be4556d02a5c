//! Shared helpers of the Redis integration tests: unique prefixes, cleanup, and
//! `redis-server` processes started (and killed by PID) per test. Events are recorded with
//! `gyre_testkit::Recorder`.

#![allow(dead_code, unreachable_pub)]

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use std::sync::Arc;

use gyre::{BoxFuture, PresenceManager};
use gyre_redis::{RedisBroker, RedisConfig, RedisPresenceManager};
use gyre_testkit::conformance::{BrokerEngine, PresenceEngine, TestNode};
use gyre_testkit::eventually;

pub const MAIN_REDIS: &str = "redis://127.0.0.1:6379";

/// A prefix no other test (or run) uses, so tests can share the main Redis.
pub fn unique_prefix(test: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("gyretest.{test}.{}.{nanos}", std::process::id())
}

/// The conformance suite's view of Redis: every node and presence manager of one case
/// uses the case's own key prefix.
pub struct Redis {
    pub config: RedisConfig,
    /// Every server holding keys (each master of a cluster, each shard).
    servers: Vec<String>,
}

impl Redis {
    /// `config` with a prefix of its own for `test`; `servers` are where its keys may go.
    pub fn on(config: RedisConfig, servers: &[String], test: &str) -> Redis {
        Redis {
            config: config.prefix(unique_prefix(test)),
            servers: servers.to_vec(),
        }
    }

    async fn keys(&self) -> Vec<String> {
        let mut all = Vec::new();
        for url in &self.servers {
            all.extend(keys(url, &self.config.prefix).await);
        }
        all
    }

    async fn cleanup(&self) {
        for url in &self.servers {
            cleanup(url, &self.config.prefix).await;
        }
    }
}

/// Standalone Redis with the default (stream) history.
pub async fn redis(test: &str) -> Redis {
    Redis::on(RedisConfig::new(MAIN_REDIS), &[MAIN_REDIS.to_owned()], test)
}

/// Standalone Redis keeping history in lists instead of streams.
pub async fn redis_lists(test: &str) -> Redis {
    let mut engine = redis(test).await;
    engine.config.history_use_lists = true;
    engine
}

impl BrokerEngine for Redis {
    fn node(&self) -> BoxFuture<'_, Arc<TestNode>> {
        Box::pin(async {
            let broker = RedisBroker::new(self.config.clone()).await.unwrap();
            let closer = broker.clone();
            Arc::new(
                TestNode::start(Arc::new(broker))
                    .await
                    .on_drop(move || closer.close()),
            )
        })
    }

    fn assert_nothing_stored(&self) -> BoxFuture<'_, ()> {
        Box::pin(async {
            let keys = self.keys().await;
            assert!(keys.is_empty(), "{keys:?}");
        })
    }

    fn cleanup(&self) -> BoxFuture<'_, ()> {
        Box::pin(Redis::cleanup(self))
    }
}

impl PresenceEngine for Redis {
    fn presence(&self) -> BoxFuture<'_, Arc<dyn PresenceManager>> {
        self.presence_with_ttl(self.config.presence_ttl)
    }

    fn presence_with_ttl(&self, ttl: Duration) -> BoxFuture<'_, Arc<dyn PresenceManager>> {
        let mut config = self.config.clone();
        config.presence_ttl = ttl;
        Box::pin(async move {
            Arc::new(RedisPresenceManager::new(config).await.unwrap()) as Arc<dyn PresenceManager>
        })
    }

    fn cleanup(&self) -> BoxFuture<'_, ()> {
        Box::pin(Redis::cleanup(self))
    }
}

/// Every key under `prefix` on the server at `url` (none when it cannot be reached).
pub async fn keys(url: &str, prefix: &str) -> Vec<String> {
    let Ok(client) = redis::Client::open(url) else {
        return Vec::new();
    };
    let Ok(mut conn) = client.get_multiplexed_async_connection().await else {
        return Vec::new();
    };
    redis::cmd("KEYS")
        .arg(format!("{prefix}.*"))
        .query_async(&mut conn)
        .await
        .unwrap_or_default()
}

/// Deletes every key under `prefix` on the server at `url`.
pub async fn cleanup(url: &str, prefix: &str) {
    let Ok(client) = redis::Client::open(url) else {
        return;
    };
    let Ok(mut conn) = client.get_multiplexed_async_connection().await else {
        return;
    };
    for key in keys(url, prefix).await {
        let _: redis::RedisResult<i64> = redis::cmd("DEL").arg(key).query_async(&mut conn).await;
    }
}

/// A free loopback port whose cluster bus port (+10000) is valid and free too.
pub fn free_port() -> u16 {
    loop {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        if port < 55000 && TcpListener::bind(("127.0.0.1", port + 10000)).is_ok() {
            return port;
        }
    }
}

/// A `redis-server` child process, killed (by PID) on drop.
pub struct RedisServer {
    pub port: u16,
    child: Option<Child>,
    cluster: bool,
    dir: std::path::PathBuf,
}

impl RedisServer {
    pub async fn start(port: u16, cluster: bool, dir: &Path) -> RedisServer {
        let mut server = RedisServer {
            port,
            child: None,
            cluster,
            dir: dir.to_owned(),
        };
        server.spawn().await;
        server
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    async fn spawn(&mut self) {
        let mut cmd = Command::new("redis-server");
        cmd.args(["--port", &self.port.to_string()])
            .args(["--bind", "127.0.0.1"])
            .args(["--save", ""])
            .args(["--appendonly", "no"])
            .args(["--dir", self.dir.to_str().unwrap()]);
        if self.cluster {
            cmd.args(["--cluster-enabled", "yes"]).args([
                "--cluster-config-file",
                &format!("nodes-{}.conf", self.port),
            ]);
        }
        let child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server starts");
        self.child = Some(child);
        let url = self.url();
        let up = eventually(Duration::from_secs(5), || {
            redis::Client::open(url.as_str())
                .and_then(|c| c.get_connection())
                .and_then(|mut c| redis::cmd("PING").query::<String>(&mut c))
                .is_ok()
        })
        .await;
        assert!(up, "redis-server on port {} did not come up", self.port);
    }

    /// SIGKILL: the server vanishes without any goodbye.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-9", &child.id().to_string()])
                .status();
            let _ = child.wait();
        }
    }

    pub async fn restart(&mut self) {
        self.kill();
        self.spawn().await;
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Three cluster-enabled servers joined into a cluster (masters only).
pub async fn start_cluster(dir: &Path) -> Vec<RedisServer> {
    let mut servers = Vec::new();
    for _ in 0..3 {
        servers.push(RedisServer::start(free_port(), true, dir).await);
    }
    let mut cmd = Command::new("redis-cli");
    cmd.arg("--cluster").arg("create");
    for s in &servers {
        cmd.arg(format!("127.0.0.1:{}", s.port));
    }
    let status = cmd
        .args(["--cluster-replicas", "0", "--cluster-yes"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("redis-cli runs");
    assert!(status.success(), "cluster create failed");
    let urls: Vec<String> = servers.iter().map(RedisServer::url).collect();
    let ok = eventually(Duration::from_secs(8), || {
        urls.iter().all(|u| {
            redis::Client::open(u.as_str())
                .and_then(|c| c.get_connection())
                .and_then(|mut c| redis::cmd("CLUSTER").arg("INFO").query::<String>(&mut c))
                .is_ok_and(|info| info.contains("cluster_state:ok"))
        })
    })
    .await;
    assert!(ok, "cluster did not reach state ok");
    servers
}
