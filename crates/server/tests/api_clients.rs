//! Server API effects on live WebSocket clients (anonymous connections through
//! `client.insecure`): presence, publications, server-side subscribe/unsubscribe,
//! disconnect, refresh, channels and info counters.

mod api_support;

use api_support::{Closed, Server, Ws};
use serde_json::{Value, json};

fn server() -> Server {
    Server::start(json!({"channel": {
        "without_namespace": {"presence": true},
        "namespaces": [
            {"name": "room", "presence": true, "history_size": 10, "history_ttl": "300s"},
            {"name": "plain"}
        ]
    }}))
}

async fn subscribe(ws: &mut Ws, channel: &str) -> Value {
    let reply = ws.call(json!({"subscribe": {"channel": channel}})).await;
    assert!(reply.get("error").is_none(), "subscribe {channel}: {reply}");
    reply
}

#[tokio::test]
async fn presence_of_a_subscribed_client() {
    let server = server();
    let mut ws = server.connect().await;
    subscribe(&mut ws, "room:1").await;

    let presence = server
        .result("presence", json!({"channel": "room:1"}))
        .await;
    // Anonymous: `user` is empty but always written; no conn/chan info.
    assert_eq!(
        presence,
        json!({"presence": {ws.client.clone(): {"client": ws.client, "user": ""}}})
    );
    let stats = server
        .result("presence_stats", json!({"channel": "room:1"}))
        .await;
    assert_eq!(stats, json!({"num_clients": 1, "num_users": 1}));

    let mut other = server.connect().await;
    subscribe(&mut other, "room:1").await;
    let stats = server
        .result("presence_stats", json!({"channel": "room:1"}))
        .await;
    assert_eq!(stats, json!({"num_clients": 2, "num_users": 1}));
}

#[tokio::test]
async fn api_publish_reaches_subscribers() {
    let server = server();
    let mut ws = server.connect().await;
    subscribe(&mut ws, "room:pub").await;
    let published = server
        .result(
            "publish",
            json!({"channel": "room:pub", "data": {"text": "hi"}, "tags": {"t": "1"}}),
        )
        .await;
    let push = ws.next_push().await;
    assert_eq!(push["channel"], "room:pub");
    assert_eq!(push["pub"]["data"], json!({"text": "hi"}));
    assert_eq!(push["pub"]["offset"], published["offset"]);
    assert_eq!(push["pub"]["tags"], json!({"t": "1"}));

    server
        .result(
            "broadcast",
            json!({"channels": ["plain:none", "room:pub"], "data": [1]}),
        )
        .await;
    let push = ws.next_push().await;
    assert_eq!(push["pub"]["data"], json!([1]));
}

#[tokio::test]
async fn channels_and_info_count_clients() {
    let server = server();
    let mut a = server.connect().await;
    let mut b = server.connect().await;
    subscribe(&mut a, "room:x").await;
    subscribe(&mut b, "room:x").await;
    subscribe(&mut b, "plain:y").await;

    let all = server.result("channels", json!({})).await;
    assert_eq!(
        all,
        json!({"channels": {"room:x": {"num_clients": 2}, "plain:y": {"num_clients": 1}}})
    );
    let filtered = server
        .result("channels", json!({"pattern": "room:*"}))
        .await;
    assert_eq!(
        filtered,
        json!({"channels": {"room:x": {"num_clients": 2}}})
    );
    let none = server.result("channels", json!({"pattern": "z*"})).await;
    assert_eq!(none, json!({"channels": {}}));

    let info = server.result("info", json!({})).await;
    let node = &info["nodes"][0];
    assert_eq!(node["num_clients"], 2);
    assert_eq!(node["num_users"], 1);
    assert_eq!(node["num_channels"], 2);
    assert_eq!(node["num_subs"], 3);
}

#[tokio::test]
async fn server_side_subscribe_and_unsubscribe() {
    let server = server();
    let mut ws = server.connect().await;
    let mut bystander = server.connect().await;
    let result = server
        .api(
            "subscribe",
            json!({"user": "", "client": ws.client, "channel": "room:s", "data": {"welcome": true}, "info": {"role": "x"}}),
        )
        .await;
    assert_eq!(result, json!({"result": {}}));
    let push = ws.next_push().await;
    assert_eq!(push["channel"], "room:s");
    let subscribe = &push["subscribe"];
    assert!(subscribe.is_object(), "{push}");
    assert_eq!(subscribe["data"], json!({"welcome": true}));

    // The subscription is live: publications arrive, presence shows the channel info.
    server
        .result("publish", json!({"channel": "room:s", "data": {"n": 1}}))
        .await;
    let push = ws.next_push().await;
    assert_eq!(push["pub"]["data"], json!({"n": 1}));
    let presence = server
        .result("presence", json!({"channel": "room:s"}))
        .await;
    assert_eq!(
        presence["presence"][&ws.client]["chan_info"],
        json!({"role": "x"})
    );
    assert_eq!(presence["presence"].as_object().unwrap().len(), 1);

    server
        .result(
            "unsubscribe",
            json!({"user": "", "client": ws.client, "channel": "room:s"}),
        )
        .await;
    let push = ws.next_push().await;
    assert_eq!(push["channel"], "room:s");
    assert_eq!(push["unsubscribe"]["code"], 2000);
    let stats = server
        .result("presence_stats", json!({"channel": "room:s"}))
        .await;
    assert_eq!(stats, json!({"num_clients": 0, "num_users": 0}));

    // The bystander saw nothing and is still connected.
    let reply = bystander
        .call(json!({"presence_stats": {"channel": "room:s"}}))
        .await;
    assert!(reply.get("id").is_some(), "{reply}");
}

#[tokio::test]
async fn server_side_subscribe_recovers_since_a_position() {
    let server = server();
    let first = server
        .result("publish", json!({"channel": "room:r", "data": {"n": 1}}))
        .await;
    server
        .result("publish", json!({"channel": "room:r", "data": {"n": 2}}))
        .await;
    let mut ws = server.connect().await;
    server
        .result(
            "subscribe",
            json!({
                "user": "", "channel": "room:r",
                "override": {"force_recovery": {"value": true}},
                "recover_since": {"offset": first["offset"], "epoch": first["epoch"]}
            }),
        )
        .await;
    // As in Centrifugo: the push starts the subscription at the requested position
    // (without `recover_since` it would be the top, offset 2).
    let push = ws.next_push().await;
    let subscribe = &push["subscribe"];
    assert_eq!(subscribe["recoverable"], true, "{push}");
    assert_eq!(subscribe["epoch"], first["epoch"]);
    assert_eq!(subscribe["offset"], 1, "{push}");
}

#[tokio::test]
async fn disconnect_closes_with_the_given_code() {
    let server = server();
    let mut ws = server.connect().await;
    server
        .result("disconnect", json!({"user": "", "client": ws.client}))
        .await;
    assert_eq!(
        ws.closed().await,
        Closed {
            code: 3503,
            reason: "force disconnect".into()
        }
    );

    let mut custom = server.connect().await;
    server
        .result(
            "disconnect",
            json!({"user": "", "disconnect": {"code": 4501, "reason": "go away"}}),
        )
        .await;
    assert_eq!(
        custom.closed().await,
        Closed {
            code: 4501,
            reason: "go away".into()
        }
    );
}

#[tokio::test]
async fn disconnect_spares_the_whitelist() {
    let server = server();
    let mut kept = server.connect().await;
    let mut dropped = server.connect().await;
    server
        .result(
            "disconnect",
            json!({"user": "", "whitelist": [kept.client.clone()]}),
        )
        .await;
    assert_eq!(dropped.closed().await.code, 3503);
    subscribe(&mut kept, "room:alive").await;
    let stats = server
        .result("presence_stats", json!({"channel": "room:alive"}))
        .await;
    assert_eq!(stats["num_clients"], 1);
}

#[tokio::test]
async fn refresh_extends_or_expires_a_connection() {
    let server = server();
    let mut ws = server.connect().await;
    let expire_at = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 600;
    server
        .result(
            "refresh",
            json!({"user": "", "client": ws.client, "expire_at": expire_at}),
        )
        .await;
    let push = ws.next_push().await;
    let refresh = &push["refresh"];
    assert_eq!(refresh["expires"], true, "{push}");
    let ttl = refresh["ttl"].as_u64().unwrap();
    assert!((590..=600).contains(&ttl), "{push}");

    server
        .result(
            "refresh",
            json!({"user": "", "client": ws.client, "expired": true}),
        )
        .await;
    assert_eq!(ws.closed().await.code, 3005);
}
