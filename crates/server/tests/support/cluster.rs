//! Several `gyre` nodes sharing an engine: node configuration, the server HTTP API, and
//! Redis helpers around the testkit's disposable `redis-server` processes.

use std::time::{Duration, Instant};

use gyre_testkit::merge_config;
use gyre_testkit::redis_server::redis_cli;
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
    merge_config(&mut config, engine);
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

/// The next `count` publications in `channel` as (offset, n of `{"n": n}` data).
pub async fn received(client: &mut WsClient, channel: &str, count: usize) -> Vec<(u64, u64)> {
    let mut out = Vec::new();
    while out.len() < count {
        let p = client
            .publication(channel)
            .await
            .unwrap_or_else(|| panic!("closed while waiting for {channel}; got {out:?}"));
        let n = p["data"]["n"]
            .as_u64()
            .unwrap_or_else(|| panic!("no data.n in {p}"));
        out.push((p["offset"].as_u64().unwrap_or(0), n));
    }
    out
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
