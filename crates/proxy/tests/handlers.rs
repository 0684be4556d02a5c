//! `ProxyHandlers` on a node served over WebSocket, against real backends: every scenario
//! runs once with an HTTP backend and once with a gRPC backend, from the same script.

mod support;

use std::time::{Duration, Instant};

use gyre::{MapChannelOptions, MapMode, PublishOptions, SubscribeOptions};
use gyre_proxy::{ProxyHandlers, TlsOptions};
use serde_json::{Value, json};
use support::{Answer, Backend, Call, Flavour, Ws, closed_port, serve, unix_now};

/// Runs each scenario for both flavours: `http::<name>` and `grpc::<name>`.
macro_rules! both_flavours {
    ($($name:ident),* $(,)?) => {
        mod http {$(
            #[tokio::test]
            async fn $name() {
                super::$name(super::Flavour::Http).await
            }
        )*}
        mod grpc {$(
            #[tokio::test]
            async fn $name() {
                super::$name(super::Flavour::Grpc).await
            }
        )*}
    };
}

both_flavours!(
    connect_answer_reaches_the_client,
    connect_error_and_disconnect_reach_the_client,
    subscribe_allows_and_denies,
    publish_rewrites_and_rejects,
    rpc_returns_the_backend_data,
    sub_refresh_extends_then_expires_the_subscription,
    refresh_extends_then_expires_the_connection,
    backend_down_is_error_100,
    backend_timeout_is_error_100,
    request_headers_and_static_ones_are_forwarded,
    connection_meta_is_included_when_asked,
    backend_behind_tls_is_reached_with_its_ca,
    far_expiry_from_the_backend_keeps_the_connection,
    map_changes_are_decided_by_the_backend,
);

const INTERNAL: &str = r#"{"code":100,"message":"internal server error","temporary":true}"#;

fn internal() -> Value {
    serde_json::from_str(INTERNAL).unwrap()
}

/// The connect answer most scenarios start from.
fn alice() -> Answer {
    Answer::json(json!({"result": {"user": "alice"}}))
}

fn no_call(call: &Call) -> Answer {
    panic!("unexpected {} call", call.event)
}

async fn connect_answer_reaches_the_client(flavour: Flavour) {
    let backend = Backend::start(flavour, |call| match call.event.as_str() {
        "connect" => Answer::json(json!({"result": {
            "user": "alice",
            "info": {"role": "admin"},
            "data": {"welcome": true},
            "channels": ["news"],
            "subs": {"room": {
                "info": {"seat": 1},
                "data": {"hello": "room"},
                "override": {"presence": {"value": true}},
            }},
        }})),
        _ => no_call(call),
    })
    .await;
    let (node, url) = serve(ProxyHandlers::new().connect(backend.proxy("connect"))).await;
    let mut ws = Ws::open(&url, &[]).await;
    let reply = ws
        .connect(json!({"data": {"hi": 1}, "name": "tests", "version": "1.2.3"}))
        .await;

    let result = &reply["connect"];
    assert_eq!(result["data"], json!({"welcome": true}), "{reply}");
    assert!(result["subs"]["news"].is_object(), "{reply}");
    assert_eq!(result["subs"]["room"]["data"], json!({"hello": "room"}));
    let client = result["client"].as_str().unwrap();

    let call = backend.call("connect", 0).await;
    assert_eq!(call.body["client"], client);
    assert_eq!(call.body["transport"], "websocket");
    assert_eq!(call.body["protocol"], "json");
    assert_eq!(call.body["encoding"], "json");
    assert_eq!(call.body["data"], json!({"hi": 1}));
    assert_eq!(call.body["name"], "tests");
    assert_eq!(call.body["version"], "1.2.3");

    // The override turned presence on for `room` only, with the granted channel info.
    let presence = node.presence("room").await.unwrap();
    let me = &presence[client];
    assert_eq!(me.user, "alice");
    assert_eq!(&me.conn_info[..], br#"{"role":"admin"}"#);
    assert_eq!(&me.chan_info[..], br#"{"seat":1}"#);
    assert!(node.presence("news").await.unwrap().is_empty());

    for channel in ["news", "room"] {
        node.publish(channel, r#"{"n":1}"#, PublishOptions::new())
            .await
            .unwrap();
        let push = ws.push().await;
        assert_eq!(push["channel"], channel);
        assert_eq!(push["pub"]["data"], json!({"n": 1}));
    }
}

async fn connect_error_and_disconnect_reach_the_client(flavour: Flavour) {
    let backend = Backend::start(flavour, |call| {
        match call.body["data"]["answer"].as_str().unwrap() {
            "error" => Answer::json(
                json!({"error": {"code": 1000, "message": "custom", "temporary": true}}),
            ),
            "disconnect" => {
                Answer::json(json!({"disconnect": {"code": 4501, "reason": "go away"}}))
            }
            // Neither a result nor a refusal: no credentials.
            _ => Answer::json(json!({})),
        }
    })
    .await;
    let (_node, url) = serve(ProxyHandlers::new().connect(backend.proxy("connect"))).await;

    let mut ws = Ws::open(&url, &[]).await;
    let reply = ws.connect(json!({"data": {"answer": "error"}})).await;
    assert_eq!(
        reply["error"],
        json!({"code": 1000, "message": "custom", "temporary": true})
    );

    let mut ws = Ws::open(&url, &[]).await;
    ws.send(json!({"id": 1, "connect": {"data": {"answer": "disconnect"}}}))
        .await;
    assert_eq!(ws.closed().await, (4501, "go away".to_owned()));

    let mut ws = Ws::open(&url, &[]).await;
    ws.send(json!({"id": 1, "connect": {"data": {"answer": "nothing"}}}))
        .await;
    assert_eq!(ws.closed().await.0, 3501);
}

async fn subscribe_allows_and_denies(flavour: Flavour) {
    let backend = Backend::start(flavour, |call| match call.event.as_str() {
        "connect" => alice(),
        "subscribe" => match call.body["channel"].as_str().unwrap() {
            "open" => Answer::json(json!({"result": {
                "info": {"seat": 7},
                "data": {"welcome": "open"},
                "override": {"presence": {"value": true}},
            }})),
            "closed" => Answer::json(json!({"error": {"code": 1001, "message": "closed"}})),
            _ => Answer::json(json!({"disconnect": {"code": 4502, "reason": "banned"}})),
        },
        _ => no_call(call),
    })
    .await;
    let (node, url) = serve(
        ProxyHandlers::new()
            .connect(backend.proxy("connect"))
            .subscribe(backend.proxy("subscribe")),
    )
    .await;
    let mut ws = Ws::open(&url, &[]).await;
    let client = ws.connect(json!({})).await["connect"]["client"].clone();

    let reply = ws
        .command(
            2,
            json!({"subscribe": {"channel": "open", "data": {"seat": "any"}}}),
        )
        .await;
    assert_eq!(
        reply["subscribe"]["data"],
        json!({"welcome": "open"}),
        "{reply}"
    );
    let call = backend.call("subscribe", 0).await;
    assert_eq!(call.body["client"], client);
    assert_eq!(call.body["user"], "alice");
    assert_eq!(call.body["channel"], "open");
    assert_eq!(call.body["data"], json!({"seat": "any"}));
    let presence = node.presence("open").await.unwrap();
    let me = &presence[client.as_str().unwrap()];
    assert_eq!(&me.chan_info[..], br#"{"seat":7}"#);

    let reply = ws
        .command(3, json!({"subscribe": {"channel": "closed"}}))
        .await;
    assert_eq!(reply["error"], json!({"code": 1001, "message": "closed"}));

    ws.send(json!({"id": 4, "subscribe": {"channel": "forbidden"}}))
        .await;
    assert_eq!(ws.closed().await, (4502, "banned".to_owned()));
}

async fn publish_rewrites_and_rejects(flavour: Flavour) {
    let backend = Backend::start(flavour, |call| match call.event.as_str() {
        "connect" => Answer::json(json!({"result": {"user": "alice", "channels": ["chat"]}})),
        "publish" if call.body["data"]["bad"] == true => {
            Answer::json(json!({"error": {"code": 1002, "message": "rejected"}}))
        }
        "publish" => Answer::json(json!({"result": {"data": {"rewritten": call.body["data"]}}})),
        _ => no_call(call),
    })
    .await;
    let (_node, url) = serve(
        ProxyHandlers::new()
            .connect(backend.proxy("connect"))
            .publish(backend.proxy("publish")),
    )
    .await;
    let mut ws = Ws::open(&url, &[]).await;
    ws.connect(json!({})).await;

    let reply = ws
        .command(
            2,
            json!({"publish": {"channel": "chat", "data": {"bad": true}}}),
        )
        .await;
    assert_eq!(reply["error"], json!({"code": 1002, "message": "rejected"}));

    let reply = ws
        .command(
            3,
            json!({"publish": {"channel": "chat", "data": {"text": "hi"}}}),
        )
        .await;
    assert!(reply.get("error").is_none(), "{reply}");
    // The rejected publication never went out: the first push is the rewritten one.
    let push = ws.push().await;
    assert_eq!(push["channel"], "chat");
    assert_eq!(push["pub"]["data"], json!({"rewritten": {"text": "hi"}}));

    let call = backend.call("publish", 1).await;
    assert_eq!(call.body["channel"], "chat");
    assert_eq!(call.body["user"], "alice");
}

async fn rpc_returns_the_backend_data(flavour: Flavour) {
    let backend = Backend::start(flavour, |call| match call.event.as_str() {
        "connect" => alice(),
        "rpc" => match call.body["method"].as_str().unwrap() {
            "echo" => Answer::json(json!({"result": {"data": {
                "method": "echo",
                "got": call.body["data"],
                "user": call.body["user"],
            }}})),
            "fail" => Answer::json(json!({"error": {"code": 1003, "message": "failed"}})),
            _ => Answer::json(json!({"disconnect": {"code": 4503, "reason": "bye"}})),
        },
        _ => no_call(call),
    })
    .await;
    let (_node, url) = serve(
        ProxyHandlers::new()
            .connect(backend.proxy("connect"))
            .rpc(backend.proxy("rpc")),
    )
    .await;
    let mut ws = Ws::open(&url, &[]).await;
    ws.connect(json!({})).await;

    let reply = ws
        .command(2, json!({"rpc": {"method": "echo", "data": {"x": [1, 2]}}}))
        .await;
    assert_eq!(
        reply["rpc"]["data"],
        json!({"method": "echo", "got": {"x": [1, 2]}, "user": "alice"})
    );
    let reply = ws.command(3, json!({"rpc": {"method": "fail"}})).await;
    assert_eq!(reply["error"], json!({"code": 1003, "message": "failed"}));
    ws.send(json!({"id": 4, "rpc": {"method": "quit"}})).await;
    assert_eq!(ws.closed().await, (4503, "bye".to_owned()));
}

async fn sub_refresh_extends_then_expires_the_subscription(flavour: Flavour) {
    // Expiries two seconds ahead: with one, an answer that crosses a second boundary on a
    // busy machine is already expired when the library reads it.
    let backend = Backend::start(flavour, |call| match (call.event.as_str(), call.index) {
        ("connect", _) => alice(),
        ("subscribe", _) => Answer::json(json!({"result": {"expire_at": unix_now() + 2}})),
        ("sub_refresh", 0) => Answer::json(json!({"result": {"expire_at": unix_now() + 2}})),
        ("sub_refresh", _) => Answer::json(json!({"result": {"expired": true}})),
        _ => no_call(call),
    })
    .await;
    let (node, url) = serve(
        ProxyHandlers::new()
            .connect(backend.proxy("connect"))
            .subscribe(backend.proxy("subscribe"))
            .sub_refresh(backend.proxy("sub_refresh")),
    )
    .await;
    let mut ws = Ws::open(&url, &[]).await;
    ws.connect(json!({})).await;
    let reply = ws
        .command(2, json!({"subscribe": {"channel": "ticking"}}))
        .await;
    // The server refreshes: the client is not told to.
    assert!(reply["subscribe"].get("expires").is_none(), "{reply}");

    let first = backend.call("sub_refresh", 0).await;
    assert_eq!(first.body["channel"], "ticking");
    assert_eq!(first.body["user"], "alice");
    // Extended: publications still arrive.
    node.publish("ticking", r#"{"still":"here"}"#, PublishOptions::new())
        .await
        .unwrap();
    assert_eq!(ws.push().await["pub"]["data"], json!({"still": "here"}));

    backend.call("sub_refresh", 1).await;
    let push = ws.push().await;
    assert_eq!(push["channel"], "ticking");
    assert_eq!(
        push["unsubscribe"],
        json!({"code": 2501, "reason": "subscription expired"})
    );
    assert_eq!(backend.count("sub_refresh"), 2);
}

async fn refresh_extends_then_expires_the_connection(flavour: Flavour) {
    let backend = Backend::start(flavour, |call| match (call.event.as_str(), call.index) {
        ("connect", _) => Answer::json(json!({"result": {
            "user": "alice",
            "expire_at": unix_now() + 2,
            "channels": ["news"],
            "meta": {"round": 1},
        }})),
        ("refresh", 0) => Answer::json(json!({"result": {
            "expire_at": unix_now() + 2,
            "meta": {"round": 2},
        }})),
        ("refresh", _) => Answer::json(json!({"result": {"expired": true}})),
        _ => no_call(call),
    })
    .await;
    let (node, url) = serve(
        ProxyHandlers::new()
            .connect(backend.proxy("connect"))
            .refresh(
                gyre_proxy::Proxy::new(backend.config("refresh").include_connection_meta(true))
                    .unwrap(),
            ),
    )
    .await;
    let mut ws = Ws::open(&url, &[]).await;
    let reply = ws.connect(json!({})).await;
    // The server refreshes: the client is not told its connection expires.
    assert!(reply["connect"].get("expires").is_none(), "{reply}");

    let first = backend.call("refresh", 0).await;
    assert_eq!(first.body["user"], "alice");
    assert_eq!(first.body["meta"], json!({"round": 1}));
    node.publish("news", r#"{"still":"here"}"#, PublishOptions::new())
        .await
        .unwrap();
    assert_eq!(ws.push().await["pub"]["data"], json!({"still": "here"}));

    // The meta of the refresh answer replaced the connect one.
    let second = backend.call("refresh", 1).await;
    assert_eq!(second.body["meta"], json!({"round": 2}));
    assert_eq!(ws.closed().await, (3005, "connection expired".to_owned()));
}

async fn backend_down_is_error_100(flavour: Flavour) {
    let dead = match flavour {
        Flavour::Http => format!("http://{}/rpc", closed_port().await),
        Flavour::Grpc => format!("grpc://{}", closed_port().await),
    };
    let dead = gyre_proxy::Proxy::new(gyre_proxy::ProxyConfig::new(dead)).unwrap();
    let stats = dead.clone();

    let (_node, url) = serve(ProxyHandlers::new().connect(dead.clone())).await;
    let mut ws = Ws::open(&url, &[]).await;
    assert_eq!(ws.connect(json!({})).await["error"], internal());

    let backend = Backend::start(flavour, |call| match call.event.as_str() {
        "connect" => alice(),
        _ => no_call(call),
    })
    .await;
    let (_node, url) = serve(
        ProxyHandlers::new()
            .connect(backend.proxy("connect"))
            .subscribe(dead.clone())
            .publish(dead.clone())
            .rpc(dead),
    )
    .await;
    let mut ws = Ws::open(&url, &[]).await;
    ws.connect(json!({})).await;
    let commands = [
        json!({"subscribe": {"channel": "a"}}),
        json!({"publish": {"channel": "a", "data": {}}}),
        json!({"rpc": {"method": "m"}}),
    ];
    for (id, command) in (2..).zip(commands) {
        let reply = ws.command(id, command).await;
        assert_eq!(reply["error"], internal(), "{reply}");
    }
    // Every failed call is counted once, per event, and none is left in flight.
    for (event, s) in stats.stats().events() {
        let calls = u64::from(matches!(event, "connect" | "subscribe" | "publish" | "rpc"));
        assert_eq!(
            (s.duration.count(), s.errors.get(), s.inflight.get()),
            (calls, calls, 0),
            "{event}"
        );
    }
}

async fn backend_timeout_is_error_100(flavour: Flavour) {
    let slow = Duration::from_secs(3);
    let backend = Backend::start(flavour, move |call| match call.event.as_str() {
        "connect" => alice(),
        "rpc" => Answer::json(json!({"result": {"data": {"late": true}}})).after(slow),
        _ => no_call(call),
    })
    .await;
    let rpc = backend.config("rpc").timeout(Duration::from_millis(300));
    let (_node, url) = serve(
        ProxyHandlers::new()
            .connect(backend.proxy("connect"))
            .rpc(gyre_proxy::Proxy::new(rpc).unwrap()),
    )
    .await;
    let mut ws = Ws::open(&url, &[]).await;
    ws.connect(json!({})).await;
    let started = Instant::now();
    let reply = ws.command(2, json!({"rpc": {"method": "m"}})).await;
    assert_eq!(reply["error"], internal(), "{reply}");
    assert!(started.elapsed() < slow, "{:?}", started.elapsed());
    assert_eq!(backend.count("rpc"), 1);
}

async fn request_headers_and_static_ones_are_forwarded(flavour: Flavour) {
    let backend = Backend::start(flavour, |call| match call.event.as_str() {
        "connect" => alice(),
        "rpc" => Answer::json(json!({"result": {}})),
        _ => no_call(call),
    })
    .await;
    let config = |event| {
        backend
            .config(event)
            .http_headers(["Authorization", "X-Trace"])
            .emulated_headers(["x-app"])
            .static_header("x-static-http", "h")
            .static_metadata("x-static-grpc", "g")
    };
    let proxy = |event| gyre_proxy::Proxy::new(config(event)).unwrap();
    let (_node, url) = serve(
        ProxyHandlers::new()
            .connect(proxy("connect"))
            .rpc(proxy("rpc")),
    )
    .await;
    let mut ws = Ws::open(
        &url,
        &[
            ("authorization", "Bearer t0ken"),
            ("x-trace", "trace-1"),
            ("cookie", "secret=1"),
        ],
    )
    .await;
    ws.connect(json!({"headers": {"x-app": "web", "x-other": "no"}}))
        .await;
    ws.command(2, json!({"rpc": {"method": "m"}})).await;

    // At connect, and on later calls from what the connection kept.
    for call in [
        backend.call("connect", 0).await,
        backend.call("rpc", 0).await,
    ] {
        let event = &call.event;
        assert_eq!(
            call.header("authorization"),
            Some("Bearer t0ken"),
            "{event}"
        );
        assert_eq!(call.header("x-trace"), Some("trace-1"), "{event}");
        assert_eq!(call.header("x-app"), Some("web"), "{event}");
        assert_eq!(call.header("cookie"), None, "{event}");
        assert_eq!(call.header("x-other"), None, "{event}");
        let (own, other) = match flavour {
            Flavour::Http => (("x-static-http", "h"), "x-static-grpc"),
            Flavour::Grpc => (("x-static-grpc", "g"), "x-static-http"),
        };
        assert_eq!(call.header(own.0), Some(own.1), "{event}");
        assert_eq!(call.header(other), None, "{event}");
    }
}

async fn connection_meta_is_included_when_asked(flavour: Flavour) {
    let backend = Backend::start(flavour, |call| match call.event.as_str() {
        "connect" => Answer::json(json!({"result": {"user": "alice", "meta": {"plan": "pro"}}})),
        "rpc" => Answer::json(json!({"result": {}})),
        "subscribe" => Answer::json(json!({"result": {}})),
        _ => no_call(call),
    })
    .await;
    let rpc = backend.config("rpc").include_connection_meta(true);
    let (_node, url) = serve(
        ProxyHandlers::new()
            .connect(backend.proxy("connect"))
            .subscribe(backend.proxy("subscribe"))
            .rpc(gyre_proxy::Proxy::new(rpc).unwrap()),
    )
    .await;
    let mut ws = Ws::open(&url, &[]).await;
    ws.connect(json!({})).await;
    ws.command(2, json!({"rpc": {"method": "m"}})).await;
    ws.command(3, json!({"subscribe": {"channel": "c"}})).await;

    assert_eq!(
        backend.call("rpc", 0).await.body["meta"],
        json!({"plan": "pro"})
    );
    let subscribe = backend.call("subscribe", 0).await;
    assert_eq!(subscribe.body["channel"], "c");
    assert!(subscribe.body.get("meta").is_none(), "{}", subscribe.body);
}

async fn backend_behind_tls_is_reached_with_its_ca(flavour: Flavour) {
    let backend = Backend::start_tls(flavour, |call| match call.event.as_str() {
        "connect" => alice(),
        _ => no_call(call),
    })
    .await;
    let mut with_ca = TlsOptions::new();
    with_ca.server_ca_pem = support::test_ca_pem();
    let proxy = |tls| gyre_proxy::Proxy::new(backend.config("connect").tls(tls)).unwrap();

    let (_node, url) = serve(ProxyHandlers::new().connect(proxy(with_ca))).await;
    let mut ws = Ws::open(&url, &[]).await;
    let reply = ws.connect(json!({})).await;
    assert!(reply["connect"]["client"].is_string(), "{reply}");

    // The system roots do not know the test CA.
    let (_node, url) = serve(ProxyHandlers::new().connect(proxy(TlsOptions::new()))).await;
    let mut ws = Ws::open(&url, &[]).await;
    assert_eq!(ws.connect(json!({})).await["error"], internal());
    assert_eq!(backend.count("connect"), 1);
}

/// A backend may answer any expiry; one beyond what the clock can hold never comes.
async fn far_expiry_from_the_backend_keeps_the_connection(flavour: Flavour) {
    let backend = Backend::start(flavour, |call| match call.event.as_str() {
        "connect" => Answer::json(json!({"result": {"user": "alice", "expire_at": i64::MAX}})),
        "subscribe" => Answer::json(json!({"result": {"expire_at": i64::MAX}})),
        "refresh" | "sub_refresh" => Answer::json(json!({"result": {"expired": true}})),
        _ => no_call(call),
    })
    .await;
    let (node, url) = serve(
        ProxyHandlers::new()
            .connect(backend.proxy("connect"))
            .refresh(backend.proxy("refresh"))
            .subscribe(backend.proxy("subscribe"))
            .sub_refresh(backend.proxy("sub_refresh")),
    )
    .await;
    let mut ws = Ws::open(&url, &[]).await;
    let reply = ws.connect(json!({})).await;
    assert!(reply["connect"]["client"].is_string(), "{reply}");
    let reply = ws.command(2, json!({"subscribe": {"channel": "c"}})).await;
    assert!(reply["subscribe"].is_object(), "{reply}");
    node.publish("c", r#"{"n":1}"#, PublishOptions::new())
        .await
        .unwrap();
    assert_eq!(ws.push().await["pub"]["data"], json!({"n": 1}));
    assert_eq!(backend.count("refresh") + backend.count("sub_refresh"), 0);
}

async fn map_changes_are_decided_by_the_backend(flavour: Flavour) {
    let backend = Backend::start(flavour, |call| match call.event.as_str() {
        "connect" => alice(),
        "subscribe" => Answer::json(json!({"result": {}})),
        _ if call.body["key"] == "bad" => {
            Answer::json(json!({"error": {"code": 1001, "message": "rejected"}}))
        }
        _ if call.body["key"] == "kick" => {
            Answer::json(json!({"disconnect": {"code": 4501, "reason": "kicked"}}))
        }
        "map_publish" => Answer::json(json!({"result": {
            "key": format!("{}-renamed", call.body["key"].as_str().unwrap()),
            "data": {"wrapped": call.body["data"]},
        }})),
        "map_remove" => Answer::json(json!({"result": {"key": "k-renamed"}})),
        _ => no_call(call),
    })
    .await;
    let map = MapChannelOptions::new(MapMode::Recoverable, Duration::from_secs(60))
        .resolve()
        .unwrap();
    let mut subscribe_options = SubscribeOptions::new();
    subscribe_options.map = Some(map.clone());
    let (_node, url) = serve(
        ProxyHandlers::new()
            .connect(backend.proxy("connect"))
            .subscribe(backend.proxy("subscribe"))
            .map_publish(backend.proxy("map_publish"))
            .map_remove(backend.proxy("map_remove"))
            .subscribe_options(subscribe_options)
            .map_options(map),
    )
    .await;
    let mut ws = Ws::open(&url, &[]).await;
    ws.connect(json!({})).await;
    let reply = ws
        .command(
            2,
            json!({"subscribe": {"channel": "m", "type": 1, "phase": 0}}),
        )
        .await;
    assert!(reply.get("error").is_none(), "{reply}");

    let reply = ws
        .command(
            3,
            json!({"publish": {"channel": "m", "type": 1, "key": "bad", "data": {}}}),
        )
        .await;
    assert_eq!(reply["error"], json!({"code": 1001, "message": "rejected"}));
    let reply = ws
        .command(
            4,
            json!({"publish": {"channel": "m", "type": 1, "key": "k", "data": {"v": 1}}}),
        )
        .await;
    assert_eq!(reply["publish"], json!({}), "{reply}");
    let push = ws.push().await;
    assert_eq!(push["pub"]["key"], "k-renamed", "{push}");
    assert_eq!(push["pub"]["data"], json!({"wrapped": {"v": 1}}));
    let reply = ws
        .command(
            5,
            json!({"publish": {"channel": "m", "type": 1, "key": "k", "removed": true}}),
        )
        .await;
    assert_eq!(reply["publish"], json!({}), "{reply}");
    let push = ws.push().await;
    assert_eq!(push["pub"]["key"], "k-renamed", "{push}");
    assert_eq!(push["pub"]["removed"], true, "{push}");

    let call = backend.call("map_publish", 1).await;
    assert_eq!(call.body["channel"], "m");
    assert_eq!(call.body["key"], "k");
    assert_eq!(call.body["user"], "alice");
    assert_eq!(call.body["data"], json!({"v": 1}));
    let call = backend.call("map_remove", 0).await;
    assert_eq!(call.body["key"], "k");
    assert!(call.body.get("data").is_none(), "{}", call.body);

    ws.send(json!({"id": 6, "publish": {"channel": "m", "type": 1, "key": "kick", "data": {}}}))
        .await;
    assert_eq!(ws.closed().await, (4501, "kicked".to_owned()));
}
