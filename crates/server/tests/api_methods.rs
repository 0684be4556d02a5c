//! Server API methods and their JSON shapes against the real binary (no client
//! connections needed).

mod api_support;

use std::collections::BTreeSet;

use api_support::Server;
use serde_json::{Value, json};

fn server() -> Server {
    Server::start(json!({"channel": {
        "without_namespace": {"presence": true},
        "namespaces": [
            {"name": "hist", "history_size": 10, "history_ttl": "300s"},
            {"name": "small", "history_size": 2, "history_ttl": "300s"},
            {"name": "plain"},
            {"name": "obj", "publication_data_format": "json_object"},
            {"name": "bin", "publication_data_format": "binary", "history_size": 10, "history_ttl": "300s"}
        ]
    }}))
}

fn error(code: u32, message: &str) -> Value {
    json!({"error": {"code": code, "message": message}})
}

#[tokio::test]
async fn publish_returns_stream_position() {
    let server = server();
    let first = server
        .result(
            "publish",
            json!({"channel": "hist:a", "data": {"text": "1"}}),
        )
        .await;
    let epoch = first["epoch"].as_str().expect("epoch").to_owned();
    assert!(!epoch.is_empty());
    assert_eq!(first, json!({"offset": 1, "epoch": epoch}));
    let second = server
        .result("publish", json!({"channel": "hist:a", "data": "text"}))
        .await;
    assert_eq!(second, json!({"offset": 2, "epoch": epoch}));

    // No history: no position, `{}`.
    let none = server
        .result("publish", json!({"channel": "plain:a", "data": {}}))
        .await;
    assert_eq!(none, json!({}));
    let skipped = server
        .result(
            "publish",
            json!({"channel": "hist:a", "data": {}, "skip_history": true}),
        )
        .await;
    assert_eq!(skipped, json!({}));
    let history = server
        .result("history", json!({"channel": "hist:a", "limit": -1}))
        .await;
    assert_eq!(history["publications"].as_array().unwrap().len(), 2);
    assert_eq!(history["offset"], 2);
}

#[tokio::test]
async fn publish_errors() {
    let server = server();
    for (request, expected) in [
        (
            json!({"channel": "nope:a", "data": {}}),
            error(102, "unknown channel"),
        ),
        (json!({"data": {}}), error(107, "bad request")),
        (json!({"channel": "plain:a"}), error(107, "bad request")),
        (
            json!({"channel": "plain:a", "b64data": "!!"}),
            error(107, "bad request"),
        ),
        (
            json!({"channel": "obj:a", "data": [1]}),
            error(107, "bad request"),
        ),
        (
            json!({"channel": "obj:a", "data": "str"}),
            error(107, "bad request"),
        ),
    ] {
        assert_eq!(
            server.api("publish", request.clone()).await,
            expected,
            "{request}"
        );
    }
    assert_eq!(
        server
            .api("publish", json!({"channel": "obj:a", "data": {"a": 1}}))
            .await,
        json!({"result": {}})
    );
    // `binary` accepts empty data.
    let empty = server.result("publish", json!({"channel": "bin:a"})).await;
    assert_eq!(empty["offset"], 1);
}

#[tokio::test]
async fn data_and_b64data_round_trip_through_history() {
    let server = server();
    let publish = |request: Value| server.result("publish", request);
    publish(json!({"channel": "bin:x", "data": {"nested": [1, {"b": null}]}, "tags": {"k": "v"}}))
        .await;
    // base64 of `{"a":1}`: JSON bytes come back as JSON.
    publish(json!({"channel": "bin:x", "b64data": "eyJhIjoxfQ=="})).await;
    // Not JSON: written back as a JSON string.
    publish(json!({"channel": "bin:x", "b64data": "aGk="})).await;
    let history = server
        .result("history", json!({"channel": "bin:x", "limit": -1}))
        .await;
    let publications = history["publications"].as_array().unwrap();
    assert_eq!(
        publications[0],
        json!({"data": {"nested": [1, {"b": null}]}, "offset": 1, "tags": {"k": "v"}})
    );
    assert_eq!(publications[1], json!({"data": {"a": 1}, "offset": 2}));
    assert_eq!(publications[2], json!({"data": "hi", "offset": 3}));
}

#[tokio::test]
async fn idempotent_publish_is_stored_once() {
    let server = server();
    let request = json!({"channel": "hist:i", "data": {"n": 1}, "idempotency_key": "key-1"});
    let first = server.result("publish", request.clone()).await;
    let again = server.result("publish", request).await;
    assert_eq!(first["offset"], 1);
    assert_eq!(again, first);
    let other = server
        .result(
            "publish",
            json!({"channel": "hist:i", "data": {"n": 2}, "idempotency_key": "key-2"}),
        )
        .await;
    assert_eq!(other["offset"], 2);
    let history = server
        .result("history", json!({"channel": "hist:i", "limit": -1}))
        .await;
    assert_eq!(history["publications"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn history_limit_since_reverse_and_epoch() {
    let server = server();
    let mut epoch = String::new();
    for n in 1..=3 {
        let r = server
            .result("publish", json!({"channel": "hist:h", "data": {"n": n}}))
            .await;
        epoch = r["epoch"].as_str().unwrap().to_owned();
    }
    // Default limit 0: only the position.
    let position = server.result("history", json!({"channel": "hist:h"})).await;
    assert_eq!(
        position,
        json!({"publications": [], "epoch": epoch, "offset": 3})
    );

    let data = |result: &Value| -> Vec<i64> {
        result["publications"]
            .as_array()
            .map(|p| p.iter().map(|p| p["data"]["n"].as_i64().unwrap()).collect())
            .unwrap_or_default()
    };
    let all = server
        .result("history", json!({"channel": "hist:h", "limit": -1}))
        .await;
    assert_eq!(data(&all), [1, 2, 3]);
    let offsets: Vec<_> = all["publications"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["offset"].as_u64().unwrap())
        .collect();
    assert_eq!(offsets, [1, 2, 3]);
    let two = server
        .result("history", json!({"channel": "hist:h", "limit": 2}))
        .await;
    assert_eq!(data(&two), [1, 2]);
    let since = server
        .result(
            "history",
            json!({"channel": "hist:h", "limit": -1, "since": {"offset": 1, "epoch": epoch}}),
        )
        .await;
    assert_eq!(data(&since), [2, 3]);
    let reverse = server
        .result(
            "history",
            json!({"channel": "hist:h", "limit": -1, "reverse": true}),
        )
        .await;
    assert_eq!(data(&reverse), [3, 2, 1]);
    let reverse_two = server
        .result(
            "history",
            json!({"channel": "hist:h", "limit": 2, "reverse": true}),
        )
        .await;
    assert_eq!(data(&reverse_two), [3, 2]);

    let mismatch = server
        .api(
            "history",
            json!({"channel": "hist:h", "limit": -1, "since": {"offset": 1, "epoch": "other"}}),
        )
        .await;
    assert_eq!(mismatch, error(112, "unrecoverable position"));

    // The stream keeps only history_size publications.
    for n in 1..=3 {
        server
            .result("publish", json!({"channel": "small:s", "data": {"n": n}}))
            .await;
    }
    let small = server
        .result("history", json!({"channel": "small:s", "limit": -1}))
        .await;
    assert_eq!(data(&small), [2, 3]);
}

#[tokio::test]
async fn history_remove_keeps_the_position() {
    let server = server();
    let published = server
        .result("publish", json!({"channel": "hist:r", "data": 1}))
        .await;
    let removed = server
        .api("history_remove", json!({"channel": "hist:r"}))
        .await;
    assert_eq!(removed, json!({"result": {}}));
    let after = server
        .result("history", json!({"channel": "hist:r", "limit": -1}))
        .await;
    assert_eq!(
        after,
        json!({"publications": [], "epoch": published["epoch"], "offset": 1})
    );

    for method in ["history", "history_remove"] {
        assert_eq!(
            server.api(method, json!({"channel": "plain:r"})).await,
            error(108, "not available"),
            "{method}"
        );
        assert_eq!(
            server.api(method, json!({"channel": "nope:r"})).await,
            error(102, "unknown channel"),
            "{method}"
        );
        assert_eq!(
            server.api(method, json!({})).await,
            error(107, "bad request"),
            "{method}"
        );
    }
}

#[tokio::test]
async fn broadcast_answers_per_channel() {
    let server = server();
    let value = server
        .api(
            "broadcast",
            json!({"channels": ["hist:b1", "", "nope:x", "plain:b", "hist:b1"], "data": {"x": 1}}),
        )
        .await;
    let responses = value["result"]["responses"].as_array().unwrap();
    assert_eq!(responses.len(), 5);
    let epoch = responses[0]["result"]["epoch"].clone();
    let mut offsets = BTreeSet::new();
    for i in [0, 4] {
        assert_eq!(responses[i]["result"]["epoch"], epoch);
        offsets.insert(responses[i]["result"]["offset"].as_u64().unwrap());
    }
    assert_eq!(offsets, BTreeSet::from([1, 2]));
    assert_eq!(responses[1], error(107, "bad request"));
    assert_eq!(responses[2], error(102, "unknown channel"));
    assert_eq!(responses[3], json!({"result": {}}));

    assert_eq!(
        server
            .api("broadcast", json!({"channels": [], "data": 1}))
            .await,
        error(107, "bad request")
    );
    assert_eq!(
        server
            .api(
                "broadcast",
                json!({"channels": ["plain:x"], "b64data": "%"})
            )
            .await,
        error(107, "bad request")
    );
}

#[tokio::test]
async fn batch_sequential_and_parallel() {
    let server = server();
    let value = server
        .api(
            "batch",
            json!({"commands": [
                {"publish": {"channel": "hist:q", "data": {"n": 1}}},
                {"history": {"channel": "hist:q", "limit": -1}},
                {"presence_stats": {"channel": "plain:q"}},
                {},
                null,
                {"info": {}},
                {"subscribe": {"channel": "hist:q", "user": "nobody"}},
                {"history_remove": {"channel": "hist:q"}}
            ]}),
        )
        .await;
    let replies = value["replies"].as_array().unwrap();
    assert_eq!(replies.len(), 8);
    assert_eq!(replies[0]["publish"]["offset"], 1);
    let epoch = replies[0]["publish"]["epoch"].clone();
    assert_eq!(
        replies[1],
        json!({"history": {"publications": [{"data": {"n": 1}, "offset": 1}], "epoch": epoch, "offset": 1}})
    );
    assert_eq!(replies[2], error(108, "not available"));
    assert_eq!(replies[3], error(104, "not found"));
    assert_eq!(replies[4], error(107, "bad request"));
    assert!(replies[5]["info"]["nodes"].is_array());
    assert_eq!(replies[6], json!({"subscribe": {}}));
    assert_eq!(replies[7], json!({"history_remove": {}}));

    let commands: Vec<Value> = (0..20)
        .map(|n| json!({"publish": {"channel": "hist:p", "data": {"n": n}}}))
        .collect();
    let value = server
        .api("batch", json!({"commands": commands, "parallel": true}))
        .await;
    let offsets: BTreeSet<u64> = value["replies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["publish"]["offset"].as_u64().unwrap())
        .collect();
    assert_eq!(offsets, (1..=20).collect());

    assert_eq!(server.api("batch", json!({})).await, json!({}));
}

#[tokio::test]
async fn presence_channels_info_rpc_shapes_without_clients() {
    let server = server();
    assert_eq!(
        server.api("presence", json!({"channel": "room"})).await,
        json!({"result": {"presence": {}}})
    );
    assert_eq!(
        server
            .api("presence_stats", json!({"channel": "room"}))
            .await,
        json!({"result": {"num_clients": 0, "num_users": 0}})
    );
    for method in ["presence", "presence_stats"] {
        assert_eq!(
            server.api(method, json!({"channel": "plain:room"})).await,
            error(108, "not available")
        );
        assert_eq!(
            server.api(method, json!({"channel": ""})).await,
            error(107, "bad request")
        );
    }
    // Centrifugo always writes these fields, empty or not (cent requires them).
    assert_eq!(
        server.api("channels", json!({})).await,
        json!({"result": {"channels": {}}})
    );
    assert_eq!(
        server.api("channels", json!({"pattern": "[broken"})).await,
        error(100, "internal server error")
    );

    let info = server.result("info", json!({})).await;
    let nodes = info["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 1);
    let node = nodes[0].as_object().unwrap();
    assert!(!node["uid"].as_str().unwrap().is_empty());
    assert!(!node["name"].as_str().unwrap().is_empty());
    assert!(!node["version"].as_str().unwrap().is_empty());
    // Counters are always written, zero included, as Centrifugo's API does.
    for key in ["num_clients", "num_users", "num_channels", "num_subs"] {
        assert_eq!(node[key], 0, "{key}: {info}");
    }

    assert_eq!(
        server
            .api("rpc", json!({"method": "m", "params": {}}))
            .await,
        error(104, "not found")
    );
    assert_eq!(
        server.api("rpc", json!({})).await,
        error(107, "bad request")
    );
}

#[tokio::test]
async fn connection_methods_without_connections() {
    let server = server();
    let empty = json!({"result": {}});
    for (method, request) in [
        ("subscribe", json!({"user": "u", "channel": "hist:x"})),
        ("unsubscribe", json!({"user": "u", "channel": "hist:x"})),
        ("unsubscribe", json!({"user": "u"})),
        ("disconnect", json!({"user": "u"})),
        (
            "disconnect",
            json!({"user": "u", "disconnect": {"code": 4000, "reason": "x"}, "whitelist": ["a"]}),
        ),
        ("refresh", json!({"user": "u", "expire_at": 1})),
        ("refresh", json!({"user": "u", "expired": true})),
    ] {
        assert_eq!(
            server.api(method, request.clone()).await,
            empty,
            "{method} {request}"
        );
    }
    assert_eq!(
        server
            .api("subscribe", json!({"user": "u", "channel": "nope:x"}))
            .await,
        error(102, "unknown channel")
    );
    assert_eq!(
        server
            .api("unsubscribe", json!({"user": "u", "channel": "nope:x"}))
            .await,
        error(102, "unknown channel")
    );
    assert_eq!(
        server.api("subscribe", json!({"user": "u"})).await,
        error(107, "bad request")
    );
    assert_eq!(
        server
            .api(
                "subscribe",
                json!({"user": "u", "channel": "hist:x", "b64info": "*"})
            )
            .await,
        error(107, "bad request")
    );
}
