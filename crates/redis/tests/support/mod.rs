//! Shared helpers of the Redis integration tests: a recording event handler, unique
//! prefixes, polling, and `redis-server` processes started (and killed by PID) per test.

#![allow(dead_code, unreachable_pub)]

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use gyre::{BrokerEventHandler, ClientInfo, ControlEventHandler, Publication, StreamPosition};
use parking_lot::Mutex;

pub const MAIN_REDIS: &str = "redis://127.0.0.1:6379";

/// A prefix no other test (or run) uses, so tests can share the main Redis.
pub fn unique_prefix(test: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("gyretest.{test}.{}.{nanos}", std::process::id())
}

/// Deletes every key under `prefix` on the server at `url`.
pub async fn cleanup(url: &str, prefix: &str) {
    let Ok(client) = redis::Client::open(url) else {
        return;
    };
    let Ok(mut conn) = client.get_multiplexed_async_connection().await else {
        return;
    };
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}.*"))
        .query_async(&mut conn)
        .await
        .unwrap_or_default();
    for key in keys {
        let _: redis::RedisResult<i64> = redis::cmd("DEL").arg(key).query_async(&mut conn).await;
    }
}

pub type Delivered = (
    String,
    Publication,
    StreamPosition,
    bool,
    Option<Publication>,
);

/// Records everything delivered to it.
#[derive(Default)]
pub struct Recorder {
    pub publications: Mutex<Vec<Delivered>>,
    pub joins: Mutex<Vec<(String, ClientInfo)>>,
    pub leaves: Mutex<Vec<(String, ClientInfo)>>,
    pub control: Mutex<Vec<Bytes>>,
    pub resubscribed: AtomicUsize,
}

impl BrokerEventHandler for Recorder {
    fn handle_publication(
        &self,
        channel: &str,
        publication: Publication,
        position: StreamPosition,
        use_delta: bool,
        prev: Option<Publication>,
    ) {
        self.publications
            .lock()
            .push((channel.to_owned(), publication, position, use_delta, prev));
    }
    fn handle_join(&self, channel: &str, info: ClientInfo) {
        self.joins.lock().push((channel.to_owned(), info));
    }
    fn handle_leave(&self, channel: &str, info: ClientInfo) {
        self.leaves.lock().push((channel.to_owned(), info));
    }
    fn handle_resubscribed(&self) {
        self.resubscribed.fetch_add(1, Ordering::SeqCst);
    }
}

impl ControlEventHandler for Recorder {
    fn handle_control(&self, data: Bytes) {
        self.control.lock().push(data);
    }
}

impl Recorder {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    pub fn offsets(&self, channel: &str) -> Vec<u64> {
        self.publications
            .lock()
            .iter()
            .filter(|d| d.0 == channel)
            .map(|d| d.1.offset)
            .collect()
    }

    pub fn datas(&self, channel: &str) -> Vec<Bytes> {
        self.publications
            .lock()
            .iter()
            .filter(|d| d.0 == channel)
            .map(|d| d.1.data.clone())
            .collect()
    }
}

/// Polls `cond` until true or `within` passed; returns the last value.
pub async fn eventually(within: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
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
