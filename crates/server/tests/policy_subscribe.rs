//! Client policy, subscription side: the permission order of PROTOCOL.md §7.1,
//! subscription tokens, user-limited channels, names, extras and recovery.

mod support;

use std::time::Duration;

use serde_json::json;
use support::policy::{SECRET, config, config_with, connected, sub_token};
use support::{Server, WsClient, hs256, now};

#[tokio::test]
async fn subscribe_permissions_for_a_user() {
    let server = Server::start(config());
    let mut c = connected(&server.ws_url(), "42").await;
    let mut subscribe =
        async |channel: &str| c.call("subscribe", json!({"channel": channel})).await;

    subscribe("public:a").await.ok();
    subscribe("news").await.ok();
    assert_eq!(subscribe("public:a").await.error(), Some(105));
    assert_eq!(subscribe("nope:a").await.error(), Some(102));
    assert_eq!(subscribe("private:a").await.error(), Some(103));
    // The private prefix needs a token in every namespace, even an open one.
    assert_eq!(subscribe("$public:a").await.error(), Some(103));
    assert_eq!(subscribe("$news").await.error(), Some(103));
    // Namespace lookup comes before the private check: unknown namespace first.
    assert_eq!(subscribe("$nope:a").await.error(), Some(102));
    // Names: channel_regex on the part after the namespace, ASCII otherwise, max length.
    subscribe("strict:abc1").await.ok();
    assert_eq!(subscribe("strict:ABC").await.error(), Some(107));
    assert_eq!(subscribe("nëws").await.error(), Some(107));
    assert_eq!(subscribe(&"x".repeat(65)).await.error(), Some(107));
    subscribe(&"y".repeat(64)).await.ok();
    // The subscribe proxy's backend is down: error 100, as in Centrifugo.
    assert_eq!(subscribe("proxied:a").await.error(), Some(100));
}

#[tokio::test]
async fn subscribe_permissions_for_anonymous() {
    let server = Server::start(config_with(|c| {
        c["client"]["allow_anonymous_connect_without_token"] = json!(true);
    }));
    let (mut c, reply) = WsClient::connect(&server.ws_url(), json!({})).await;
    reply.ok();
    c.call("subscribe", json!({"channel": "public:a"}))
        .await
        .ok();
    for channel in ["news", "history:a", "sub:a", "private:a", "dialog:#42"] {
        let reply = c.call("subscribe", json!({"channel": channel})).await;
        assert_eq!(reply.error(), Some(103), "{channel}: {reply:?}");
    }
}

#[tokio::test]
async fn user_limited_channels() {
    let server = Server::start(config());
    let mut c = connected(&server.ws_url(), "42").await;
    for ok in ["dialog:#42", "dialog:#41,42,43", "dialog:a#b#42"] {
        c.call("subscribe", json!({"channel": ok})).await.ok();
    }
    for denied in ["dialog:#43", "dialog:#142", "dialog:#42#43", "dialog:x"] {
        let reply = c.call("subscribe", json!({"channel": denied})).await;
        assert_eq!(reply.error(), Some(103), "{denied}: {reply:?}");
    }
    // Without `allow_user_limited_channels` `#` is an ordinary character.
    c.call("subscribe", json!({"channel": "news#1"})).await.ok();
}

#[tokio::test]
async fn subscription_tokens() {
    let server = Server::start(config());
    let url = server.ws_url();
    let mut c = connected(&url, "42").await;

    let token = sub_token(
        "42",
        "$private:x",
        json!({"data": {"hello": 1}, "info": {"seat": 3}, "exp": now() + 300}),
    );
    let result = c
        .call(
            "subscribe",
            json!({"channel": "$private:x", "token": token}),
        )
        .await
        .ok();
    assert_eq!(result["data"], json!({"hello": 1}), "{result}");
    assert_eq!(result["expires"], json!(true), "{result}");
    let ttl = result["ttl"].as_u64().unwrap();
    assert!((280..=300).contains(&ttl), "{result}");

    // A valid token also opens a namespace that allows nothing.
    let token = hs256(
        SECRET,
        json!({"sub": "42", "channel": "private:y", "override": {"presence": {"value": true}}}),
    );
    let result = c
        .call("subscribe", json!({"channel": "private:y", "token": token}))
        .await
        .ok();
    assert!(result.get("expires").is_none(), "{result}");

    // Refresh the expiring subscription.
    let fresh = sub_token("42", "$private:x", json!({"exp": now() + 900}));
    let refreshed = c
        .call(
            "sub_refresh",
            json!({"channel": "$private:x", "token": fresh}),
        )
        .await
        .ok();
    assert!(refreshed["ttl"].as_u64().unwrap() > 800, "{refreshed}");
    let expired = hs256(
        SECRET,
        json!({"sub": "42", "channel": "$private:x", "exp": now() - 1}),
    );
    let reply = c
        .call(
            "sub_refresh",
            json!({"channel": "$private:x", "token": expired}),
        )
        .await;
    assert_eq!(reply.error(), Some(109), "{reply:?}");
    let other = sub_token("42", "$private:other", json!({}));
    let reply = c
        .call(
            "sub_refresh",
            json!({"channel": "$private:x", "token": other}),
        )
        .await;
    assert_eq!(reply.closed(), Some(3500), "{reply:?}");

    // Expired token → 109 (the SDK fetches a new one); forged → 103.
    let mut c = connected(&url, "42").await;
    let expired = hs256(
        SECRET,
        json!({"sub": "42", "channel": "$private:z", "exp": now() - 1}),
    );
    let reply = c
        .call(
            "subscribe",
            json!({"channel": "$private:z", "token": expired}),
        )
        .await;
    assert_eq!(reply.error(), Some(109), "{reply:?}");
    let forged = hs256("nope", json!({"sub": "42", "channel": "$private:z"}));
    let reply = c
        .call(
            "subscribe",
            json!({"channel": "$private:z", "token": forged}),
        )
        .await;
    assert_eq!(reply.error(), Some(103), "{reply:?}");
    let client_bound = sub_token("42", "$private:z", json!({"client": "someone-else"}));
    let reply = c
        .call(
            "subscribe",
            json!({"channel": "$private:z", "token": client_bound}),
        )
        .await;
    assert_eq!(reply.closed(), Some(3500), "{reply:?}");

    // A token for another channel or user closes the connection.
    let mut c = connected(&url, "42").await;
    let other_channel = sub_token("42", "$private:other", json!({}));
    let reply = c
        .call(
            "subscribe",
            json!({"channel": "$private:z", "token": other_channel}),
        )
        .await;
    assert_eq!(reply.closed(), Some(3500), "{reply:?}");
    let mut c = connected(&url, "42").await;
    let other_user = sub_token("43", "$private:z", json!({}));
    let reply = c
        .call(
            "subscribe",
            json!({"channel": "$private:z", "token": other_user}),
        )
        .await;
    assert_eq!(reply.closed(), Some(3500), "{reply:?}");
}

#[tokio::test]
async fn client_requested_extras_need_permission() {
    let server = Server::start(config());
    let mut c = connected(&server.ws_url(), "42").await;
    let ask = json!({"positioned": true, "recoverable": true});
    let with = |channel: &str| {
        let mut req = ask.clone();
        req["channel"] = json!(channel);
        req
    };
    // `history`: allow_recovery only (recovery implies positioning).
    let r = c.call("subscribe", with("history:e")).await.ok();
    assert_eq!(
        (r["recoverable"].clone(), r["positioned"].clone()),
        (json!(true), json!(true)),
        "{r}"
    );
    assert!(r["epoch"].as_str().is_some_and(|e| !e.is_empty()), "{r}");
    // `sub`: history for subscribers counts (all other checks passed).
    let r = c.call("subscribe", with("sub:e")).await.ok();
    assert_eq!(r["recoverable"], json!(true), "{r}");
    // Without namespace: no history permission, nothing granted.
    let r = c.call("subscribe", with("news")).await.ok();
    assert!(
        r.get("recoverable").is_none() && r.get("positioned").is_none(),
        "{r}"
    );
    // Forced by the namespace without asking.
    let r = c
        .call("subscribe", json!({"channel": "forced:e"}))
        .await
        .ok();
    assert_eq!(r["recoverable"], json!(true), "{r}");
}

#[tokio::test]
async fn join_leave_pushes() {
    let server = Server::start(config());
    let url = server.ws_url();
    let mut asked = connected(&url, "1").await;
    let mut silent = connected(&url, "2").await;
    asked
        .call(
            "subscribe",
            json!({"channel": "public:j", "join_leave": true}),
        )
        .await
        .ok();
    silent
        .call("subscribe", json!({"channel": "public:j"}))
        .await
        .ok();
    // `asked` sees its own join and the other one's.
    let mut joins = Vec::new();
    while joins.len() < 2 {
        let push = asked.push().await.expect("join push");
        if push.get("join").is_some() {
            joins.push(push["join"]["info"]["user"].clone());
        }
    }
    // The two joins are published from two connections: no order between them.
    joins.sort_by_key(|u| u.to_string());
    assert_eq!(joins, [json!("1"), json!("2")]);
    assert!(silent.quiet_for(Duration::from_millis(300)).await);

    // Forced by the namespace.
    let mut a = connected(&url, "3").await;
    a.call("subscribe", json!({"channel": "forced:j"}))
        .await
        .ok();
    let push = a.push().await.expect("own join");
    assert_eq!(push["join"]["info"]["user"], json!("3"), "{push}");
}

#[tokio::test]
async fn recovery_through_the_history_namespace() {
    let server = Server::start(config());
    let url = server.ws_url();
    let mut publisher = connected(&url, "p").await;
    publisher
        .call("subscribe", json!({"channel": "history:r"}))
        .await
        .ok();
    let mut reader = connected(&url, "r").await;
    let first = reader
        .call(
            "subscribe",
            json!({"channel": "history:r", "recoverable": true}),
        )
        .await
        .ok();
    let epoch = first["epoch"].as_str().unwrap().to_owned();

    publisher
        .call("publish", json!({"channel": "history:r", "data": {"n": 1}}))
        .await
        .ok();
    let p = reader.publication("history:r").await.unwrap();
    assert_eq!(p["offset"], json!(1), "{p}");
    drop(reader);

    for n in 2..=3 {
        publisher
            .call("publish", json!({"channel": "history:r", "data": {"n": n}}))
            .await
            .ok();
    }
    let mut reader = connected(&url, "r").await;
    let r = reader
        .call(
            "subscribe",
            json!({"channel": "history:r", "recoverable": true, "recover": true, "epoch": epoch, "offset": 1}),
        )
        .await
        .ok();
    assert_eq!(r["recovered"], json!(true), "{r}");
    assert_eq!(r["was_recovering"], json!(true), "{r}");
    let offsets: Vec<_> = r["publications"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["offset"].clone())
        .collect();
    assert_eq!(offsets, [json!(2), json!(3)], "{r}");

    // Server-side subscriptions recover through connect.subs.
    let token = support::policy::connect_token("r", json!({"channels": ["forced:s"]}));
    let (_c, reply) = WsClient::connect(&url, json!({"token": token.clone()})).await;
    let epoch = reply.ok()["subs"]["forced:s"]["epoch"]
        .as_str()
        .unwrap()
        .to_owned();
    for n in 1..=2 {
        publisher
            .call("publish", json!({"channel": "forced:s", "data": {"n": n}}))
            .await
            .ok();
    }
    let (_c, reply) = WsClient::connect(
        &url,
        json!({"token": token, "subs": {"forced:s": {"recover": true, "epoch": epoch, "offset": 0}}}),
    )
    .await;
    let sub = reply.ok()["subs"]["forced:s"].clone();
    assert_eq!(sub["recovered"], json!(true), "{sub}");
    assert_eq!(
        sub["publications"].as_array().map(Vec::len),
        Some(2),
        "{sub}"
    );
}

#[tokio::test]
async fn subscribe_proxy_and_subscription_type() {
    let server = Server::start(config_with(|c| {
        let namespaces = c["channel"]["namespaces"].as_array_mut().unwrap();
        namespaces.push(
            json!({"name": "maps", "allow_subscribe_for_client": true, "subscription_type": "map",
                "map": {"mode": "ephemeral", "key_ttl": "60s"}}),
        );
    }));
    let mut c = connected(&server.ws_url(), "42").await;
    assert_eq!(
        c.call("subscribe", json!({"channel": "maps:a"}))
            .await
            .error(),
        Some(103)
    );
    assert_eq!(
        c.call("subscribe", json!({"channel": "proxied:a"}))
            .await
            .error(),
        Some(100)
    );
}
