//! Client policy for publish, presence, presence_stats, history and rpc; config reload.

mod support;

use std::time::{Duration, Instant};

use serde_json::json;
use support::policy::{config, config_with, connected};
use support::{Server, WsClient};

#[tokio::test]
async fn publish_permissions() {
    let server = Server::start(config());
    let url = server.ws_url();
    let mut c = connected(&url, "42").await;
    let data = json!({"text": "hi"});
    let mut publish = async |channel: &str| {
        c.call("publish", json!({"channel": channel, "data": data}))
            .await
    };
    publish("public:p").await.ok();
    assert_eq!(publish("nope:p").await.error(), Some(102));
    assert_eq!(publish("private:p").await.error(), Some(103));
    assert_eq!(publish("news").await.error(), Some(103));
    assert_eq!(publish("strict:BAD").await.error(), Some(107));
    // The publish proxy's backend is down: error 100, as in Centrifugo.
    assert_eq!(publish("proxied:p").await.error(), Some(100));
    // Subscribers only.
    assert_eq!(publish("sub:p").await.error(), Some(103));
    c.call("subscribe", json!({"channel": "sub:p"})).await.ok();
    c.call("publish", json!({"channel": "sub:p", "data": data}))
        .await
        .ok();
    // The publisher's own publication comes back with its info.
    let publication = c.publication("sub:p").await.unwrap();
    assert_eq!(publication["info"]["user"], json!("42"), "{publication}");

    // Anonymous users need `allow_publish_for_anonymous`.
    let server = Server::start(config_with(|c| {
        c["client"]["allow_anonymous_connect_without_token"] = json!(true);
    }));
    let (mut anon, reply) = WsClient::connect(&server.ws_url(), json!({})).await;
    reply.ok();
    anon.call("publish", json!({"channel": "public:p", "data": data}))
        .await
        .ok();
    let reply = anon
        .call("publish", json!({"channel": "obj:p", "data": data}))
        .await;
    assert_eq!(reply.error(), Some(103), "{reply:?}");
}

#[tokio::test]
async fn publication_data_format() {
    let server = Server::start(config_with(|c| {
        c["channel"]["publication_data_format"] = json!("json");
    }));
    let mut c = connected(&server.ws_url(), "42").await;
    // Without data (empty payload).
    let empty = |channel: &str| json!({"channel": channel});
    let with = |channel: &str, data: serde_json::Value| json!({"channel": channel, "data": data});
    // `public` falls back to the global `json`: empty is not JSON.
    assert_eq!(
        c.call("publish", empty("public:f")).await.error(),
        Some(107)
    );
    c.call("publish", with("public:f", json!([1, 2])))
        .await
        .ok();
    // `obj`: a JSON object only.
    assert_eq!(
        c.call("publish", with("obj:f", json!([1]))).await.error(),
        Some(107)
    );
    assert_eq!(
        c.call("publish", with("obj:f", json!("s"))).await.error(),
        Some(107)
    );
    c.call("publish", with("obj:f", json!({"a": 1}))).await.ok();
    // `binary`: anything, even nothing.
    c.call("publish", empty("bin:f")).await.ok();

    // Default format: only empty data is refused.
    let server = Server::start(config());
    let mut c = connected(&server.ws_url(), "42").await;
    assert_eq!(
        c.call("publish", empty("public:f")).await.error(),
        Some(107)
    );
    c.call("publish", with("public:f", json!(1))).await.ok();
}

#[tokio::test]
async fn presence_and_history_permissions() {
    let server = Server::start(config());
    let url = server.ws_url();
    let mut c = connected(&url, "42").await;
    for command in ["presence", "presence_stats", "history"] {
        let mut call = async |channel: &str| c.call(command, json!({"channel": channel})).await;
        assert_eq!(call("nope:h").await.error(), Some(102), "{command}");
        // Off in the namespace → 108, before permissions.
        assert_eq!(call("private:h").await.error(), Some(108), "{command}");
        assert_eq!(call("news").await.error(), Some(108), "{command}");
        assert_eq!(call("strict:BAD").await.error(), Some(107), "{command}");
        // For clients.
        call("public:h").await.ok();
        // For subscribers only.
        assert_eq!(call("sub:h").await.error(), Some(103), "{command}");
    }
    // `history` has history but no history permission (allow_recovery is not one),
    // and no presence.
    assert_eq!(
        c.call("history", json!({"channel": "history:h"}))
            .await
            .error(),
        Some(103)
    );
    assert_eq!(
        c.call("presence", json!({"channel": "history:h"}))
            .await
            .error(),
        Some(108)
    );

    c.call("subscribe", json!({"channel": "sub:h"})).await.ok();
    c.call("publish", json!({"channel": "sub:h", "data": {"n": 1}}))
        .await
        .ok();
    let presence = c.call("presence", json!({"channel": "sub:h"})).await.ok();
    assert_eq!(
        presence["presence"].as_object().unwrap().len(),
        1,
        "{presence}"
    );
    let stats = c
        .call("presence_stats", json!({"channel": "sub:h"}))
        .await
        .ok();
    assert_eq!(
        (stats["num_clients"].clone(), stats["num_users"].clone()),
        (json!(1), json!(1))
    );
    let history = c
        .call("history", json!({"channel": "sub:h", "limit": -1}))
        .await
        .ok();
    assert_eq!(
        history["publications"][0]["data"],
        json!({"n": 1}),
        "{history}"
    );

    // Anonymous users need the `_for_anonymous` flags.
    let server = Server::start(config_with(|c| {
        c["client"]["allow_anonymous_connect_without_token"] = json!(true);
        c["channel"]["namespaces"][0]["allow_history_for_anonymous"] = json!(false);
    }));
    let (mut anon, reply) = WsClient::connect(&server.ws_url(), json!({})).await;
    reply.ok();
    anon.call("presence", json!({"channel": "public:h"}))
        .await
        .ok();
    let reply = anon.call("history", json!({"channel": "public:h"})).await;
    assert_eq!(reply.error(), Some(103), "{reply:?}");
}

#[tokio::test]
async fn rpc_ping_and_unconfigured_methods() {
    let server = Server::start(config());
    let mut c = connected(&server.ws_url(), "42").await;
    let result = c.call("rpc", json!({"method": "ping"})).await.ok();
    assert!(result.get("data").is_none(), "{result}");
    assert_eq!(
        c.call("rpc", json!({"method": "other"})).await.error(),
        Some(104)
    );

    // No ping and no proxy: RPC is not available at all.
    let server = Server::start(config_with(|c| c["rpc"] = json!({})));
    let mut c = connected(&server.ws_url(), "42").await;
    assert_eq!(
        c.call("rpc", json!({"method": "ping"})).await.error(),
        Some(108)
    );

    // RPC proxies configured: unknown rpc namespace → 104, proxy off for the method's
    // namespace → 108, proxy on but its backend down → 100.
    let server = Server::start(config_with(|c| {
        c["rpc"] = json!({
            "proxy": {"endpoint": "http://127.0.0.1:9/rpc"},
            "namespaces": [{"name": "api", "proxy_enabled": true}, {"name": "off"}]
        });
    }));
    let mut c = connected(&server.ws_url(), "42").await;
    for (method, code) in [
        ("nope:x", 104),
        ("off:x", 108),
        ("plain", 108),
        ("api:x", 100),
    ] {
        let reply = c.call("rpc", json!({"method": method})).await;
        assert_eq!(reply.error(), Some(code), "{method}: {reply:?}");
    }
}

#[tokio::test]
async fn config_reload_applies_to_open_connections() {
    let server = Server::start(config());
    let mut c = connected(&server.ws_url(), "42").await;
    let subscribe = json!({"channel": "private:r"});
    assert_eq!(
        c.call("subscribe", subscribe.clone()).await.error(),
        Some(103)
    );

    server.reload(config_with(|c| {
        c["channel"]["namespaces"][1]["allow_subscribe_for_client"] = json!(true);
    }));
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let reply = c.call("subscribe", subscribe.clone()).await;
        if reply.error().is_none() {
            reply.ok();
            break;
        }
        assert_eq!(reply.error(), Some(103));
        assert!(
            Instant::now() < deadline,
            "reload not applied:\n{}",
            server.logs()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
