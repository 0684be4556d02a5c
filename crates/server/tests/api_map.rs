//! The map methods of the server API (`map_publish`, `map_remove`, `map_read_state`,
//! `map_read_stream`, `map_stats`, `map_clear`) against the real binary on the memory map
//! broker, and a client that sees the changes live.

mod api_support;

use api_support::Server;
use serde_json::{Value, json};

fn server() -> Server {
    Server::start(json!({"channel": {"namespaces": [
        {"name": "board", "subscription_type": "map", "allow_subscribe_for_client": true,
         "map": {"mode": "recoverable", "key_ttl": "60s", "stream_size": 5}},
        {"name": "eph", "subscription_type": "map",
         "map": {"mode": "ephemeral", "key_ttl": "60s"}},
        {"name": "plain"}
    ]}}))
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
async fn publish_read_remove_stats_clear() {
    let server = server();
    let first = server
        .result(
            "map_publish",
            json!({"channel": "board:1", "key": "b", "data": {"v": 1}}),
        )
        .await;
    let epoch = first["epoch"].as_str().unwrap().to_owned();
    assert_eq!(first, json!({"offset": 1, "epoch": epoch}));
    for (key, v) in [("a", 2), ("c", 3)] {
        server
            .result(
                "map_publish",
                json!({"channel": "board:1", "key": key, "data": {"v": v}}),
            )
            .await;
    }
    let suppressed = server
        .result(
            "map_publish",
            json!({"channel": "board:1", "key": "a", "data": {}, "key_mode": "if_new"}),
        )
        .await;
    assert_eq!(
        suppressed,
        json!({"offset": 3, "epoch": epoch, "suppressed": true, "suppress_reason": "key_exists"})
    );

    let page = server
        .result("map_read_state", json!({"channel": "board:1", "limit": 2}))
        .await;
    assert_eq!(keys(&page["entries"]), ["a", "b"]);
    assert_eq!(page["cursor"], "b");
    assert_eq!(page["offset"], 3);
    assert_eq!(page["entries"][0]["data"], json!({"v": 2}));
    assert_eq!(page["entries"][0]["offset"], 2);
    let rest = server
        .result(
            "map_read_state",
            json!({"channel": "board:1", "limit": 2, "cursor": "b"}),
        )
        .await;
    assert_eq!(keys(&rest["entries"]), ["c"]);
    assert!(rest.get("cursor").is_none(), "{rest}");
    let one = server
        .result("map_read_state", json!({"channel": "board:1", "key": "c"}))
        .await;
    assert_eq!(keys(&one["entries"]), ["c"]);
    let position_only = server
        .result("map_read_state", json!({"channel": "board:1"}))
        .await;
    assert_eq!(position_only["entries"], json!([]));

    let removed = server
        .result("map_remove", json!({"channel": "board:1", "key": "a"}))
        .await;
    assert_eq!(removed, json!({"offset": 4, "epoch": epoch}));
    let missing = server
        .result("map_remove", json!({"channel": "board:1", "key": "zzz"}))
        .await;
    assert_eq!(missing["suppress_reason"], "key_not_found");

    let stream = server
        .result(
            "map_read_stream",
            json!({"channel": "board:1", "since_offset": 2, "since_epoch": epoch, "limit": 10}),
        )
        .await;
    assert_eq!(keys(&stream["entries"]), ["c", "a"]);
    assert_eq!(stream["entries"][1]["removed"], true);
    assert_eq!(stream["offset"], 4);
    let stale = server
        .api(
            "map_read_stream",
            json!({"channel": "board:1", "since_offset": 2, "since_epoch": "other", "limit": 10}),
        )
        .await;
    assert_eq!(stale["error"]["code"], 112, "{stale}");

    let stats = server
        .result("map_stats", json!({"channel": "board:1"}))
        .await;
    assert_eq!(stats, json!({"num_keys": 2}));
    assert_eq!(
        server
            .result("map_clear", json!({"channel": "board:1"}))
            .await,
        json!({})
    );
    assert_eq!(
        server
            .result("map_stats", json!({"channel": "board:1"}))
            .await,
        json!({})
    );
    // Ephemeral maps keep state without a stream: no offsets.
    let eph = server
        .result(
            "map_publish",
            json!({"channel": "eph:1", "key": "k", "data": 1}),
        )
        .await;
    assert!(eph.get("offset").is_none(), "{eph}");
}

#[tokio::test]
async fn bad_map_calls() {
    let server = server();
    for (method, body, code) in [
        (
            "map_publish",
            json!({"channel": "board:1", "data": {}}),
            107,
        ),
        (
            "map_publish",
            json!({"channel": "", "key": "k", "data": {}}),
            107,
        ),
        (
            "map_publish",
            json!({"channel": "nope:1", "key": "k", "data": {}}),
            102,
        ),
        (
            "map_publish",
            json!({"channel": "plain:1", "key": "k", "data": {}}),
            107,
        ),
        (
            "map_publish",
            json!({"channel": "board:1", "key": "k", "data": {}, "key_mode": "bogus"}),
            107,
        ),
        ("map_remove", json!({"channel": "board:1"}), 107),
        ("map_read_state", json!({"channel": "plain:1"}), 107),
        ("map_stats", json!({"channel": "nope:1"}), 102),
        ("publish", json!({"channel": "board:1", "data": {}}), 107),
    ] {
        let reply = server.api(method, body.clone()).await;
        assert_eq!(reply["error"]["code"], code, "{method} {body}: {reply}");
    }
}

#[tokio::test]
async fn a_subscriber_sees_api_changes_live() {
    let server = server();
    server
        .result(
            "map_publish",
            json!({"channel": "board:live", "key": "x", "data": 1}),
        )
        .await;
    let mut ws = server.connect().await;
    let sub = ws
        .call(json!({"subscribe": {"channel": "board:live", "type": 1, "phase": 2}}))
        .await;
    let result = &sub["subscribe"];
    assert_eq!(result["type"], 1, "{sub}");
    assert!(result.get("phase").is_none(), "live at once: {sub}");
    assert_eq!(keys(&result["state"]), ["x"]);
    server
        .result("map_remove", json!({"channel": "board:live", "key": "x"}))
        .await;
    let push = ws.next_push().await;
    assert_eq!(push["pub"]["key"], "x", "{push}");
    assert_eq!(push["pub"]["removed"], true, "{push}");
    assert_eq!(push["pub"]["offset"], 2, "{push}");
}
