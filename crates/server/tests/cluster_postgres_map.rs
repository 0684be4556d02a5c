//! Two `gyre` nodes sharing the PostgreSQL map broker (`map_broker.type: postgres`) act
//! as one for map channels: a client on one node gets live what the API of the other
//! publishes and removes, and either node reads the same state. Runs on the shared
//! PostgreSQL (127.0.0.1:5432, db `test`) in a schema of its own, dropped at the end.

mod api_support;

use std::time::Duration;

use api_support::Server;
use rand::Rng;
use serde_json::{Value, json};
use tokio_postgres::NoTls;

fn base_dsn() -> String {
    std::env::var("GYRE_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgresql://postgres:postgres@127.0.0.1:5432/test".to_owned())
}

async fn sql(dsn: &str, statement: &str) {
    let (client, connection) = tokio_postgres::connect(dsn, NoTls)
        .await
        .expect("postgresql on 127.0.0.1:5432");
    tokio::spawn(connection);
    client.batch_execute(statement).await.expect(statement);
}

/// A schema of the test's own, dropped on drop (also when the test fails).
struct Schema(String);

impl Schema {
    async fn new() -> Schema {
        let suffix: u64 = rand::rng().random();
        let name = format!("gyre_srv_pgmap_{suffix:016x}");
        sql(&base_dsn(), &format!("CREATE SCHEMA {name}")).await;
        Schema(name)
    }

    fn dsn(&self) -> String {
        format!("{}?options=-csearch_path%3D{}", base_dsn(), self.0)
    }
}

impl Drop for Schema {
    fn drop(&mut self) {
        let statement = format!("DROP SCHEMA IF EXISTS {} CASCADE", self.0);
        let _ = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(sql(&base_dsn(), &statement));
        })
        .join();
    }
}

fn node(dsn: &str) -> Server {
    Server::start(json!({
        "map_broker": {"type": "postgres", "postgres": {
            "dsn": dsn, "num_shards": 2, "pool_size": 4, "use_notify": true,
            "ttl_check_interval": "200ms", "outbox": {"poll_interval": "50ms"}
        }},
        "channel": {"namespaces": [
            {"name": "board", "subscription_type": "map", "allow_subscribe_for_client": true,
             "map": {"mode": "recoverable", "key_ttl": "60s"}},
            {"name": "ttl", "subscription_type": "map", "allow_subscribe_for_client": true,
             "map": {"mode": "ephemeral", "key_ttl": "1s"}}
        ]}
    }))
}

fn keys(entries: &Value) -> Vec<&str> {
    entries
        .as_array()
        .unwrap_or_else(|| panic!("{entries}"))
        .iter()
        .map(|e| e["key"].as_str().unwrap())
        .collect()
}

#[tokio::test]
async fn two_nodes_share_map_channels() {
    let schema = Schema::new().await;
    let dsn = schema.dsn();
    let a = node(&dsn);
    let b = node(&dsn);

    // State written through A, read by a client of B.
    let first = a
        .result(
            "map_publish",
            json!({"channel": "board:1", "key": "x", "data": {"v": 1}}),
        )
        .await;
    let epoch = first["epoch"].as_str().unwrap().to_owned();
    assert_eq!(first, json!({"offset": 1, "epoch": epoch}));
    let mut ws = b.connect().await;
    let sub = ws
        .call(json!({"subscribe": {"channel": "board:1", "type": 1, "phase": 2}}))
        .await;
    let result = &sub["subscribe"];
    assert!(result.get("phase").is_none(), "live at once: {sub}");
    assert_eq!(keys(&result["state"]), ["x"], "{sub}");
    assert_eq!(result["epoch"], epoch.as_str(), "{sub}");
    assert_eq!(result["state"][0]["data"], json!({"v": 1}));

    // Changes through A's API arrive live on B, in order, with their offsets.
    a.result(
        "map_publish",
        json!({"channel": "board:1", "key": "y", "data": {"v": 2}}),
    )
    .await;
    a.result("map_remove", json!({"channel": "board:1", "key": "x"}))
        .await;
    let push = tokio::time::timeout(Duration::from_secs(5), ws.next_push())
        .await
        .expect("B gets A's publication");
    assert_eq!(push["channel"], "board:1", "{push}");
    assert_eq!(push["pub"]["key"], "y", "{push}");
    assert_eq!(push["pub"]["data"], json!({"v": 2}), "{push}");
    assert_eq!(push["pub"]["offset"], 2, "{push}");
    let push = tokio::time::timeout(Duration::from_secs(5), ws.next_push())
        .await
        .expect("B gets A's removal");
    assert_eq!(push["pub"]["key"], "x", "{push}");
    assert_eq!(push["pub"]["removed"], true, "{push}");
    assert_eq!(push["pub"]["offset"], 3, "{push}");

    // Both nodes read the same state and stream.
    for node in [&a, &b] {
        let state = node
            .result("map_read_state", json!({"channel": "board:1", "limit": 10}))
            .await;
        assert_eq!(keys(&state["entries"]), ["y"], "{state}");
        assert_eq!(state["offset"], 3);
        assert_eq!(state["epoch"], epoch.as_str());
        let stats = node
            .result("map_stats", json!({"channel": "board:1"}))
            .await;
        assert_eq!(stats, json!({"num_keys": 1}));
    }
    let stream = b
        .result(
            "map_read_stream",
            json!({"channel": "board:1", "since_offset": 1, "since_epoch": epoch, "limit": 10}),
        )
        .await;
    assert_eq!(keys(&stream["entries"]), ["y", "x"], "{stream}");

    // A key written on B expires by TTL; the removal reaches the client too (whichever
    // node's worker expires it).
    let mut ttl_ws = b.connect().await;
    let sub = ttl_ws
        .call(json!({"subscribe": {"channel": "ttl:1", "type": 1, "phase": 2}}))
        .await;
    assert!(sub.get("error").is_none(), "{sub}");
    a.result(
        "map_publish",
        json!({"channel": "ttl:1", "key": "gone", "data": 1}),
    )
    .await;
    let set = tokio::time::timeout(Duration::from_secs(5), ttl_ws.next_push())
        .await
        .expect("the publication");
    assert_eq!(set["pub"]["key"], "gone", "{set}");
    let removal = tokio::time::timeout(Duration::from_secs(5), ttl_ws.next_push())
        .await
        .expect("the expiry removal");
    assert_eq!(removal["pub"]["key"], "gone", "{removal}");
    assert_eq!(removal["pub"]["removed"], true, "{removal}");
    drop((a, b));
}
