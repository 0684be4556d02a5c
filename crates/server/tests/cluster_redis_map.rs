//! Two `gyre` nodes with `map_broker.type: redis` on the shared Redis serve one map: a
//! client on node B sees live the changes the server API makes on node A, both nodes read
//! the same state, and the keys are Centrifugo's (`<prefix>:state:<channel>`, …).

mod support;

use std::time::Duration;

use gyre_testkit::redis_server::redis_cli;
use serde_json::{Value, json};
use support::cluster::{api, connect_as, node_config, start_nodes, unique_prefix};

/// Deletes every key under the prefix when dropped (also on a panic).
struct MapCleanup(String);

impl Drop for MapCleanup {
    fn drop(&mut self) {
        let keys =
            redis_cli(6379, &["--scan", "--pattern", &format!("{}*", self.0)]).unwrap_or_default();
        for key in keys.lines().filter(|l| !l.is_empty()) {
            let _ = redis_cli(6379, &["DEL", key]);
        }
    }
}

fn keys_of(entries: &Value) -> Vec<String> {
    let mut keys: Vec<String> = entries
        .as_array()
        .map(|a| {
            a.iter()
                .map(|e| e["key"].as_str().unwrap_or_default().to_owned())
                .collect()
        })
        .unwrap_or_default();
    keys.sort();
    keys
}

#[tokio::test]
async fn map_changes_published_on_one_node_reach_clients_of_another() {
    let prefix = unique_prefix("map");
    let _cleanup = MapCleanup(prefix.clone());
    let config = node_config(json!({
        "map_broker": {"type": "redis", "redis": {
            "address": ["redis://127.0.0.1:6379"], "prefix": prefix,
            "cleanup_interval": "200ms"
        }},
        "channel": {"namespaces": [
            {"name": "board", "subscription_type": "map", "allow_subscribe_for_client": true,
             "map": {"mode": "recoverable", "key_ttl": "2s"}}
        ]}
    }));
    let nodes = start_nodes(&config, 2);
    let (a, b) = (&nodes[0], &nodes[1]);

    let first = api(
        a,
        "map_publish",
        json!({"channel": "board:1", "key": "x", "data": {"v": 1}}),
    )
    .await;
    assert_eq!(first["offset"], 1, "{first}");
    let epoch = first["epoch"].as_str().unwrap().to_owned();

    // A client on B gets A's state and goes live.
    let (mut client, _) = connect_as(&b.ws_url(), "bob").await;
    let sub = client
        .call(
            "subscribe",
            json!({"channel": "board:1", "type": 1, "phase": 2}),
        )
        .await
        .ok();
    assert_eq!(sub["type"], 1, "{sub}");
    assert!(sub.get("phase").is_none(), "live at once: {sub}");
    assert_eq!(keys_of(&sub["state"]), ["x"]);
    assert_eq!(sub["epoch"], epoch.as_str());

    // A live update published by the API on A reaches the client on B.
    let second = api(
        a,
        "map_publish",
        json!({"channel": "board:1", "key": "y", "data": {"v": 2}}),
    )
    .await;
    assert_eq!(second["offset"], 2);
    let push = client.publication("board:1").await.expect("a live update");
    assert_eq!(push["key"], "y", "{push}");
    assert_eq!(push["data"], json!({"v": 2}), "{push}");
    assert_eq!(push["offset"], 2, "{push}");

    // A removal on A too.
    api(a, "map_remove", json!({"channel": "board:1", "key": "x"})).await;
    let push = client.publication("board:1").await.expect("a removal");
    assert_eq!(
        (push["key"].as_str(), push["removed"].as_bool()),
        (Some("x"), Some(true)),
        "{push}"
    );
    assert_eq!(push["offset"], 3, "{push}");

    // B reads the same state and stats.
    let state = api(
        b,
        "map_read_state",
        json!({"channel": "board:1", "limit": -1}),
    )
    .await;
    assert_eq!(keys_of(&state["entries"]), ["y"]);
    assert_eq!(state["offset"], 3);
    let stats = api(b, "map_stats", json!({"channel": "board:1"})).await;
    assert_eq!(stats["num_keys"], 1);

    // Centrifugo's keys, under the map broker's own prefix.
    let value = redis_cli(6379, &["HGET", &format!("{prefix}:state:board:1"), "y"]).unwrap();
    assert!(value.starts_with(&format!("2:{epoch}:")), "{value}");
    let meta = redis_cli(6379, &["HGET", &format!("{prefix}:meta:board:1"), "s"]).unwrap();
    assert_eq!(meta.trim(), "3");

    // The key TTL (2s) passes: the cleanup (run by either node) emits a removal.
    let expired = tokio::time::timeout(Duration::from_secs(8), async {
        loop {
            let push = client
                .publication("board:1")
                .await
                .expect("still connected");
            if push["key"] == "y" && push["removed"] == true {
                return push;
            }
        }
    })
    .await
    .expect("expiry removal");
    assert_eq!(expired["offset"], 4, "{expired}");
}
