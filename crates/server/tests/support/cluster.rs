//! Several `gyre` nodes sharing an engine: node configuration, the server HTTP API,
//! and disposable `redis-server` processes (standalone or a three-master cluster)
//! started on spare loopback ports and killed by PID when dropped.

use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::{Server, WsClient, policy};

/// `http_api.key` of [`node_config`].
pub const API_KEY: &str = "cluster-test-api-key";

/// A prefix (Redis keys, NATS subjects) no other test or run uses.
pub fn unique_prefix(test: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("gyrecluster.{test}.{}.{nanos}", std::process::id())
}

/// Merges `overlay` into `base` (objects key by key, anything else replaced).
pub fn merge(base: &mut Value, overlay: Value) {
    match (base, overlay) {
        (Value::Object(b), Value::Object(o)) => {
            for (k, v) in o {
                merge(b.entry(k).or_insert(Value::Null), v);
            }
        }
        (b, o) => *b = o,
    }
}

/// A node configuration with `engine` (engine/broker/presence_manager sections) merged
/// over it. Connection tokens are [`policy::connect_token`]s; the API key is [`API_KEY`].
///
/// * `rec`: history 1000 × 300 s, recovery allowed, presence;
/// * `plain`: presence, no history (what an at-most-once broker such as NATS can carry).
pub fn node_config(engine: Value) -> Value {
    let mut config = json!({
        "log": {"level": "info"},
        "http_api": {"key": API_KEY},
        "client": {
            "token": {"hmac_secret_key": policy::SECRET},
            "allowed_origins": ["*"]
        },
        "channel": {
            "history_meta_ttl": "600s",
            "namespaces": [
                {
                    "name": "rec",
                    "allow_subscribe_for_client": true,
                    "presence": true,
                    "history_size": 1000,
                    "history_ttl": "300s",
                    "allow_recovery": true
                },
                {
                    "name": "plain",
                    "allow_subscribe_for_client": true,
                    "presence": true
                }
            ]
        }
    });
    merge(&mut config, engine);
    config
}

/// Starts `n` nodes with the same configuration.
pub fn start_nodes(config: &Value, n: usize) -> Vec<Server> {
    (0..n).map(|_| Server::start(config.clone())).collect()
}

/// POSTs `params` to `/api/<method>` of `server`; returns the HTTP status and the body.
pub async fn api_raw(server: &Server, method: &str, params: &Value) -> (u16, Value) {
    api_at(&server.http_url(), method, params).await
}

/// [`api_raw`] by the node's `http://host:port` (for tasks that outlive a borrow).
pub async fn api_at(base: &str, method: &str, params: &Value) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(format!("{base}/api/{method}"))
        .header("X-API-Key", API_KEY)
        .header("Content-Type", "application/json")
        .timeout(Duration::from_secs(15))
        .body(params.to_string())
        .send()
        .await
        .unwrap_or_else(|e| panic!("API {method} on {base}: {e}"));
    let status = response.status().as_u16();
    let body = response.text().await.expect("API body");
    let value = serde_json::from_str(&body)
        .unwrap_or_else(|e| panic!("API {method}: not JSON ({e}): {body}"));
    (status, value)
}

/// The `result` of a server API call; panics on an error.
#[track_caller]
pub fn result_of(method: &str, (status, body): (u16, Value)) -> Value {
    assert_eq!(status, 200, "API {method}: {body}");
    assert!(body.get("error").is_none(), "API {method}: {body}");
    body.get("result").cloned().unwrap_or(json!({}))
}

/// Calls `method` and returns its `result`; panics on an error.
pub async fn api(server: &Server, method: &str, params: Value) -> Value {
    let reply = api_raw(server, method, &params).await;
    result_of(method, reply)
}

/// Polls `cond` every 50 ms until it returns `Some` or `within` passed.
pub async fn eventually<T, F: Future<Output = Option<T>>>(
    within: Duration,
    mut cond: impl FnMut() -> F,
) -> Option<T> {
    let deadline = Instant::now() + within;
    loop {
        if let Some(v) = cond().await {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The node ids `/api/info` of `server` lists, sorted.
pub async fn node_ids(server: &Server) -> Vec<String> {
    let info = api(server, "info", json!({})).await;
    let mut ids: Vec<String> = info["nodes"]
        .as_array()
        .expect("info.nodes")
        .iter()
        .map(|n| n["uid"].as_str().expect("node uid").to_owned())
        .collect();
    ids.sort();
    ids
}

/// Waits (heartbeats go every 3 s) until `/api/info` of every node lists all `nodes`
/// with the same ids; returns those ids.
pub async fn wait_for_cluster(nodes: &[Server]) -> Vec<String> {
    let seen = eventually(Duration::from_secs(8), || async {
        let first = node_ids(&nodes[0]).await;
        if first.len() != nodes.len() {
            return None;
        }
        for node in &nodes[1..] {
            if node_ids(node).await != first {
                return None;
            }
        }
        Some(first)
    })
    .await;
    match seen {
        Some(ids) => ids,
        None => {
            let mut lists = Vec::new();
            for node in nodes {
                lists.push(node_ids(node).await);
            }
            panic!(
                "/api/info does not list {} nodes everywhere: {lists:?}",
                nodes.len()
            )
        }
    }
}

/// A client connected to `url` as `user`; returns it with its client id.
pub async fn connect_as(url: &str, user: &str) -> (WsClient, String) {
    let (client, reply) = WsClient::connect(
        url,
        json!({"token": policy::connect_token(user, json!({}))}),
    )
    .await;
    let reply = reply.ok();
    let id = reply["client"].as_str().expect("connect.client").to_owned();
    (client, id)
}

/// A free loopback port whose Redis cluster bus port (+10000) is free too.
pub fn free_redis_port() -> u16 {
    loop {
        let l = TcpListener::bind("127.0.0.1:0").expect("free port");
        let port = l.local_addr().expect("local addr").port();
        if port < 55000 && TcpListener::bind(("127.0.0.1", port + 10000)).is_ok() {
            return port;
        }
    }
}

/// Runs `redis-cli -p <port> <args>`; its stdout, `None` when it failed.
pub fn redis_cli(port: u16, args: &[&str]) -> Option<String> {
    let out = Command::new("redis-cli")
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(args)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    (out.status.success() && !text.starts_with("ERR") && !text.contains("Could not connect"))
        .then_some(text)
}

/// The keys under `prefix` on the Redis at `port`.
pub fn redis_keys(port: u16, prefix: &str) -> Vec<String> {
    redis_cli(port, &["--scan", "--pattern", &format!("{prefix}.*")])
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .filter(|l| !l.is_empty())
        .collect()
}

/// Deletes the keys under `prefix` on the Redis at `port` when dropped (also on a panic),
/// for tests that use the shared Redis.
pub struct RedisCleanup {
    pub port: u16,
    pub prefix: String,
}

impl Drop for RedisCleanup {
    fn drop(&mut self) {
        for key in redis_keys(self.port, &self.prefix) {
            let _ = redis_cli(self.port, &["DEL", &key]);
        }
    }
}

/// A `redis-server` child process without persistence, killed (by PID) on drop.
pub struct RedisServer {
    pub port: u16,
    cluster: bool,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

impl RedisServer {
    /// Starts a server on a spare port and waits until it answers PING.
    pub fn start(cluster: bool) -> RedisServer {
        let mut server = RedisServer {
            port: free_redis_port(),
            cluster,
            dir: tempfile::tempdir().expect("temp dir"),
            child: None,
        };
        server.spawn();
        server
    }

    /// `redis://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// `127.0.0.1:<port>`.
    pub fn host_port(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn spawn(&mut self) {
        let mut cmd = Command::new("redis-server");
        cmd.args(["--port", &self.port.to_string()])
            .args(["--bind", "127.0.0.1"])
            .args(["--save", ""])
            .args(["--appendonly", "no"])
            .arg("--dir")
            .arg(self.dir.path());
        if self.cluster {
            cmd.args(["--cluster-enabled", "yes"])
                .args(["--cluster-config-file", "nodes.conf"]);
        }
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server starts");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(5);
        while redis_cli(self.port, &["PING"]).as_deref() != Some("PONG") {
            assert!(
                Instant::now() < deadline,
                "redis-server on {} did not answer PING",
                self.port
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `kill -9`: the server vanishes without a goodbye (and, without persistence, with
    /// all its data).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-9", &child.id().to_string()])
                .status();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port (empty).
    pub fn restart(&mut self) {
        self.kill();
        // The port is free once the process is gone; wait until nothing listens.
        let deadline = Instant::now() + Duration::from_secs(5);
        while TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
            assert!(Instant::now() < deadline, "port {} still in use", self.port);
            std::thread::sleep(Duration::from_millis(20));
        }
        self.spawn();
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Three cluster-enabled masters joined into one Redis Cluster with all slots covered.
pub fn start_redis_cluster() -> Vec<RedisServer> {
    let servers: Vec<RedisServer> = (0..3).map(|_| RedisServer::start(true)).collect();
    let mut cmd = Command::new("redis-cli");
    cmd.args(["--cluster", "create"]);
    for s in &servers {
        cmd.arg(s.host_port());
    }
    let out = cmd
        .args(["--cluster-replicas", "0", "--cluster-yes"])
        .stdin(Stdio::null())
        .output()
        .expect("redis-cli runs");
    assert!(
        out.status.success(),
        "redis-cli --cluster create failed: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while !servers.iter().all(|s| {
        redis_cli(s.port, &["CLUSTER", "INFO"]).is_some_and(|i| i.contains("cluster_state:ok"))
    }) {
        assert!(
            Instant::now() < deadline,
            "the cluster did not reach state ok"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    servers
}
