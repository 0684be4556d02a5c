//! Client policy, connection side: credentials, server-side subscriptions, refresh.
//! Runs the real `gyre` binary and speaks the JSON protocol over WebSocket.

mod support;

use serde_json::json;
use support::policy::{SECRET, config, config_with, connect_token, connected};
use support::{Reply, Server, WsClient, hs256, now};

#[tokio::test]
async fn connect_without_token_needs_anonymous_access() {
    let server = Server::start(config());
    let (_c, reply) = WsClient::connect(&server.ws_url(), json!({})).await;
    assert_eq!(reply.closed(), Some(3501), "{reply:?}");

    let server = Server::start(config_with(|c| {
        c["client"]["allow_anonymous_connect_without_token"] = json!(true);
    }));
    let (mut c, reply) = WsClient::connect(&server.ws_url(), json!({})).await;
    let result = reply.ok();
    assert!(!result["client"].as_str().unwrap().is_empty());
    assert!(result.get("expires").is_none(), "{result}");
    // Anonymous: allowed where `_for_anonymous` is set, not elsewhere.
    c.call("subscribe", json!({"channel": "public:a"}))
        .await
        .ok();
    assert_eq!(
        c.call("subscribe", json!({"channel": "news"}))
            .await
            .error(),
        Some(103)
    );
    assert_eq!(
        c.call("subscribe", json!({"channel": "history:a"}))
            .await
            .error(),
        Some(103)
    );
}

#[tokio::test]
async fn token_verdicts() {
    let server = Server::start(config_with(|c| {
        c["client"]["disallow_anonymous_connection_tokens"] = json!(true);
    }));
    let url = server.ws_url();

    let expired = hs256(SECRET, json!({"sub": "42", "exp": now() - 10}));
    let (mut c, reply) = WsClient::connect(&url, json!({"token": expired})).await;
    assert_eq!(reply.error(), Some(109), "{reply:?}");
    // The connection stays open for the SDK to retry with a fresh token: the next
    // connect goes unanswered instead of closing.
    assert!(c.quiet_for(std::time::Duration::from_millis(200)).await);

    let forged = hs256("other-secret", json!({"sub": "42"}));
    let (_c, reply) = WsClient::connect(&url, json!({"token": forged})).await;
    assert_eq!(reply.closed(), Some(3500), "{reply:?}");

    let garbage = "not.a.jwt".to_owned();
    let (_c, reply) = WsClient::connect(&url, json!({"token": garbage})).await;
    assert_eq!(reply.closed(), Some(3500), "{reply:?}");

    let anonymous = connect_token("", json!({}));
    let (_c, reply) = WsClient::connect(&url, json!({"token": anonymous})).await;
    assert_eq!(reply.closed(), Some(3507), "{reply:?}");

    let with_channel_claim = connect_token("42", json!({"channel": "public:a"}));
    let (_c, reply) = WsClient::connect(&url, json!({"token": with_channel_claim})).await;
    assert_eq!(reply.closed(), Some(3500), "{reply:?}");

    let unknown_ns = connect_token("42", json!({"channels": ["nope:a"]}));
    let (_c, reply) = WsClient::connect(&url, json!({"token": unknown_ns})).await;
    assert_eq!(reply.error(), Some(102), "{reply:?}");

    // Without the option an anonymous token is fine.
    let server = Server::start(config());
    let anonymous = connect_token("", json!({}));
    let (_c, reply) = WsClient::connect(&server.ws_url(), json!({"token": anonymous})).await;
    reply.ok();
}

#[tokio::test]
async fn token_channels_are_server_side_subscriptions() {
    let server = Server::start(config());
    let url = server.ws_url();

    // `channels` only; namespace options apply (`forced` forces recovery).
    let token = connect_token(
        "42",
        json!({"channels": ["public:a", "forced:b", "private:c"]}),
    );
    let (mut c, reply) = WsClient::connect(&url, json!({"token": token})).await;
    let result = reply.ok();
    let subs = result["subs"]
        .as_object()
        .expect("subs in the connect result");
    assert_eq!(subs.len(), 3, "{result}");
    assert_eq!(subs["forced:b"]["recoverable"], json!(true), "{result}");
    assert!(subs["public:a"].get("recoverable").is_none(), "{result}");

    // A publication reaches the server-side subscription.
    let mut publisher = connected(&url, "7").await;
    publisher
        .call("publish", json!({"channel": "public:a", "data": {"n": 1}}))
        .await
        .ok();
    let publication = c.publication("public:a").await.expect("publication");
    assert_eq!(publication["data"], json!({"n": 1}));
    assert_eq!(publication["info"]["user"], json!("7"));
    // Already subscribed server-side.
    assert_eq!(
        c.call("subscribe", json!({"channel": "public:a"}))
            .await
            .error(),
        Some(105)
    );

    // `subs` takes precedence over `channels` and carries data, info and overrides.
    let token = connect_token(
        "42",
        json!({
            "channels": ["public:ignored"],
            "subs": {
                "history:d": {
                    "data": {"welcome": true},
                    "info": {"role": "x"},
                    "override": {"force_recovery": {"value": true}}
                }
            }
        }),
    );
    let (_c, reply) = WsClient::connect(&url, json!({"token": token})).await;
    let result = reply.ok();
    let subs = result["subs"].as_object().unwrap();
    assert_eq!(subs.keys().collect::<Vec<_>>(), ["history:d"], "{result}");
    assert_eq!(subs["history:d"]["data"], json!({"welcome": true}));
    assert_eq!(subs["history:d"]["recoverable"], json!(true));
}

#[tokio::test]
async fn personal_channel_and_single_connection() {
    let server = Server::start(config_with(|c| {
        c["client"]["subscribe_to_user_personal_channel"] = json!({
            "enabled": true,
            "personal_channel_namespace": "personal",
            "single_connection": true
        });
        c["client"]["allow_anonymous_connect_without_token"] = json!(true);
    }));
    let url = server.ws_url();
    let (mut first, reply) =
        WsClient::connect(&url, json!({"token": connect_token("42", json!({}))})).await;
    let result = reply.ok();
    assert!(result["subs"].get("personal:#42").is_some(), "{result}");

    // Anonymous users have no personal channel.
    let (_anon, reply) = WsClient::connect(&url, json!({})).await;
    assert!(reply.ok().get("subs").is_none());

    // A second connection of the same user closes the first one.
    let (_second, reply) =
        WsClient::connect(&url, json!({"token": connect_token("42", json!({}))})).await;
    reply.ok();
    assert_eq!(first.closed().await.0, 3504);
}

#[tokio::test]
async fn user_id_header_authenticates() {
    let server = Server::start(config_with(|c| {
        c["client"]["user_id_http_header"] = json!("X-User-Id");
    }));
    let url = server.ws_url();
    let mut c = WsClient::open_with_headers(&url, &[("X-User-Id", "alice")]).await;
    c.call("connect", json!({})).await.ok();
    c.call("subscribe", json!({"channel": "public:h"}))
        .await
        .ok();
    let presence = c
        .call("presence", json!({"channel": "public:h"}))
        .await
        .ok();
    let users: Vec<_> = presence["presence"]
        .as_object()
        .unwrap()
        .values()
        .map(|i| i["user"].clone())
        .collect();
    assert_eq!(users, [json!("alice")]);

    // No header and no token: no credentials.
    let (_c, reply) = WsClient::connect(&url, json!({})).await;
    assert_eq!(reply.closed(), Some(3501));
}

#[tokio::test]
async fn connect_subs_are_resubscribed_only_when_permitted() {
    let server = Server::start(config());
    let url = server.ws_url();
    let token = connect_token("42", json!({}));
    let (_c, reply) = WsClient::connect(
        &url,
        json!({"token": token, "subs": {
            "public:r": {},
            "private:r": {},
            "$public:r": {},
            "dialog:#42": {},
            "dialog:#43": {},
            "strict:UPPER": {}
        }}),
    )
    .await;
    let result = reply.ok();
    let mut subs: Vec<_> = result["subs"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    subs.sort();
    assert_eq!(subs, ["dialog:#42", "public:r"], "{result}");

    // A channel of an unknown namespace in connect.subs is a bad request.
    let (_c, reply) = WsClient::connect(
        &url,
        json!({"token": token_for("42"), "subs": {"nope:x": {}}}),
    )
    .await;
    assert_eq!(reply.closed(), Some(3501), "{reply:?}");
}

fn token_for(user: &str) -> String {
    connect_token(user, json!({}))
}

#[tokio::test]
async fn client_side_refresh() {
    let server = Server::start(config());
    let url = server.ws_url();
    let token = connect_token("42", json!({"exp": now() + 120, "channels": ["public:t"]}));
    let (mut c, reply) = WsClient::connect(&url, json!({"token": token})).await;
    let result = reply.ok();
    assert_eq!(result["expires"], json!(true), "{result}");
    let ttl = result["ttl"].as_u64().unwrap();
    assert!((100..=120).contains(&ttl), "{result}");

    let fresh = connect_token("42", json!({"exp": now() + 600, "channels": ["public:t"]}));
    let refreshed = c.call("refresh", json!({"token": fresh})).await.ok();
    assert_eq!(refreshed["expires"], json!(true), "{refreshed}");
    assert!(refreshed["ttl"].as_u64().unwrap() > 500, "{refreshed}");

    // Token of another user.
    let other = connect_token("43", json!({"channels": ["public:t"]}));
    assert_eq!(
        c.call("refresh", json!({"token": other})).await.closed(),
        Some(3500)
    );

    // Expired token: the connection expired.
    let (mut c, reply) = WsClient::connect(&url, json!({"token": token_for("42")})).await;
    reply.ok();
    let expired = hs256(SECRET, json!({"sub": "42", "exp": now() - 5}));
    assert_eq!(
        c.call("refresh", json!({"token": expired})).await.closed(),
        Some(3005)
    );

    // Server-side channels changed: reconnect to pick them up.
    let (mut c, reply) = WsClient::connect(
        &url,
        json!({"token": connect_token("42", json!({"channels": ["public:t"]}))}),
    )
    .await;
    reply.ok();
    let changed = connect_token("42", json!({"channels": ["public:u"]}));
    assert_eq!(
        c.call("refresh", json!({"token": changed})).await.closed(),
        Some(3010)
    );

    // Bad signature.
    let (mut c, reply) = WsClient::connect(&url, json!({"token": token_for("42")})).await;
    reply.ok();
    let forged = hs256("other", json!({"sub": "42"}));
    assert_eq!(
        c.call("refresh", json!({"token": forged})).await.closed(),
        Some(3500)
    );
}

#[tokio::test]
async fn send_without_handler_closes_3508() {
    let server = Server::start(config());
    let mut c = connected(&server.ws_url(), "42").await;
    c.send(json!({"send": {"data": {"x": 1}}})).await;
    assert_eq!(c.closed().await.0, 3508);
}

#[tokio::test]
async fn insecure_allows_everything() {
    let server = Server::start(config_with(|c| c["client"]["insecure"] = json!(true)));
    let (mut c, reply) = WsClient::connect(&server.ws_url(), json!({})).await;
    reply.ok();
    c.call("subscribe", json!({"channel": "private:x"}))
        .await
        .ok();
    c.call("publish", json!({"channel": "private:x", "data": {}}))
        .await
        .ok();
    // Insecure mode ignores token expiry for the connection.
    let token = connect_token("42", json!({"exp": now() + 60}));
    let (_c, reply) = WsClient::connect(&server.ws_url(), json!({"token": token})).await;
    assert!(reply.ok().get("expires").is_none());
    // But the namespace must still exist.
    assert_eq!(
        c.call("subscribe", json!({"channel": "nope:x"})).await,
        Reply::Error(102, "unknown channel".to_owned())
    );
}
