//! Client map changes against the real binary on the memory map broker: the
//! `map_publish` and `map_remove` proxies (an HTTP backend started here) allow, rewrite
//! and refuse them, and `map.remove_client_on_unsubscribe` removes a client's own key when
//! its subscription ends.

mod api_support;

use std::sync::{Arc, Mutex};

use api_support::{Server, Ws};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::Uri;
use serde_json::{Value, json};

/// Answers one proxy request (path, body) with a JSON body.
type Script = dyn Fn(&str, &Value) -> Value + Send + Sync;

/// The application backend: answers from a script and records every request.
#[derive(Clone)]
struct Backend {
    script: Arc<Script>,
    requests: Arc<Mutex<Vec<(String, Value)>>>,
}

impl Backend {
    /// Starts the backend; returns it and its base URL.
    async fn start(
        script: impl Fn(&str, &Value) -> Value + Send + Sync + 'static,
    ) -> (Self, String) {
        let backend = Backend {
            script: Arc::new(script),
            requests: Arc::default(),
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = axum::Router::new()
            .fallback(answer)
            .with_state(backend.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        (backend, format!("http://{addr}"))
    }

    fn requests(&self, path: &str) -> Vec<Value> {
        let requests = self.requests.lock().unwrap();
        requests
            .iter()
            .filter(|(p, _)| p == path)
            .map(|(_, body)| body.clone())
            .collect()
    }
}

async fn answer(State(backend): State<Backend>, uri: Uri, body: Bytes) -> String {
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let path = uri.path().to_owned();
    let answer = (backend.script)(&path, &body);
    backend.requests.lock().unwrap().push((path, body));
    answer.to_string()
}

fn namespaces(base: &str) -> Value {
    json!({
        "channel": {
            "proxy": {
                "map_publish": {"endpoint": format!("{base}/map_publish"), "timeout": "2s"},
                "map_remove": {"endpoint": format!("{base}/map_remove"), "timeout": "2s"},
            },
            "namespaces": [
                {"name": "px", "subscription_type": "map", "allow_subscribe_for_client": true,
                 "map": {"mode": "recoverable", "key_ttl": "60s",
                         "publish_proxy_enabled": true, "remove_proxy_enabled": true}},
                {"name": "onlypub", "subscription_type": "map", "allow_subscribe_for_client": true,
                 "map": {"mode": "ephemeral", "key_ttl": "60s", "publish_proxy_enabled": true}},
                {"name": "cur", "subscription_type": "map", "allow_subscribe_for_client": true,
                 "presence": true, "join_leave": true, "force_push_join_leave": true,
                 "map": {"mode": "ephemeral", "key_ttl": "60s", "client_key": "client_id",
                         "remove_client_on_unsubscribe": true}},
                {"name": "keep", "subscription_type": "map", "allow_subscribe_for_client": true,
                 "map": {"mode": "ephemeral", "key_ttl": "60s", "client_key": "client_id"}},
            ],
        },
    })
}

fn script(path: &str, body: &Value) -> Value {
    let key = body["key"].as_str().unwrap_or_default();
    match (path, key) {
        (_, "bad") => json!({"error": {"code": 1001, "message": "rejected", "temporary": true}}),
        (_, "kick") => json!({"disconnect": {"code": 4501, "reason": "kicked"}}),
        ("/map_publish", "rename") => json!({"result": {
            "key": "renamed",
            "data": {"by": "backend", "from": body["data"]},
            "tags": {"source": "proxy"},
        }}),
        ("/map_publish", "once") => json!({"result": {"key_mode": "if_new"}}),
        ("/map_publish", "b64") => json!({"result": {"b64data": "eyJiIjo2NH0="}}),
        ("/map_publish", "unnamed") => json!({"result": {"key": "named"}}),
        ("/map_remove", "alias") => json!({"result": {"key": "renamed"}}),
        _ => json!({"result": {}}),
    }
}

async fn subscribe(ws: &mut Ws, channel: &str) {
    let reply = ws
        .call(json!({"subscribe": {"channel": channel, "type": 1, "phase": 0}}))
        .await;
    assert!(reply.get("error").is_none(), "{reply}");
}

async fn change(ws: &mut Ws, channel: &str, key: &str, data: Option<Value>) -> Value {
    let mut publish = json!({"channel": channel, "type": 1, "key": key});
    match data {
        Some(data) => publish["data"] = data,
        None => publish["removed"] = json!(true),
    }
    ws.call(json!({"publish": publish})).await
}

/// The next publication push of `channel`: (key, removed, data).
async fn next_change(ws: &mut Ws, channel: &str) -> (String, bool, Value) {
    loop {
        let push = ws.next_push().await;
        if push["channel"] == channel
            && let Some(p) = push.get("pub")
        {
            return (
                p["key"].as_str().unwrap_or_default().to_owned(),
                p["removed"] == true,
                p.get("data").cloned().unwrap_or(Value::Null),
            );
        }
    }
}

fn keys(state: &Value) -> Vec<String> {
    state["entries"]
        .as_array()
        .map(|entries| {
            entries
                .iter()
                .map(|e| e["key"].as_str().unwrap().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn map_proxies_allow_rewrite_and_refuse_client_changes() {
    let (backend, base) = Backend::start(script).await;
    let server = Server::start(namespaces(&base));
    let ch = "px:board";
    let mut watcher = server.connect().await;
    subscribe(&mut watcher, ch).await;
    let mut writer = server.connect().await;

    let ok = change(&mut writer, ch, "k1", Some(json!({"v": 1}))).await;
    assert_eq!(ok["publish"], json!({}), "{ok}");
    assert_eq!(
        next_change(&mut watcher, ch).await,
        ("k1".into(), false, json!({"v": 1}))
    );

    let refused = change(&mut writer, ch, "bad", Some(json!({}))).await;
    assert_eq!(
        refused["error"],
        json!({"code": 1001, "message": "rejected", "temporary": true})
    );

    change(&mut writer, ch, "rename", Some(json!({"v": 2}))).await;
    let (key, removed, data) = next_change(&mut watcher, ch).await;
    assert_eq!((key.as_str(), removed), ("renamed", false));
    assert_eq!(data, json!({"by": "backend", "from": {"v": 2}}));

    change(&mut writer, ch, "b64", Some(json!({}))).await;
    assert_eq!(
        next_change(&mut watcher, ch).await,
        ("b64".into(), false, json!({"b": 64}))
    );

    // `key_mode: if_new` from the backend: the second write of the key changes nothing.
    change(&mut writer, ch, "once", Some(json!({"n": 1}))).await;
    let second = change(&mut writer, ch, "once", Some(json!({"n": 2}))).await;
    assert_eq!(
        second["publish"],
        json!({}),
        "suppressed is not an error: {second}"
    );
    assert_eq!(
        next_change(&mut watcher, ch).await,
        ("once".into(), false, json!({"n": 1}))
    );

    let refused = change(&mut writer, ch, "bad", None).await;
    assert_eq!(refused["error"]["code"], 1001, "{refused}");
    change(&mut writer, ch, "alias", None).await;
    assert_eq!(
        next_change(&mut watcher, ch).await,
        ("renamed".into(), true, Value::Null)
    );
    change(&mut writer, ch, "k1", None).await;
    assert_eq!(
        next_change(&mut watcher, ch).await,
        ("k1".into(), true, Value::Null)
    );

    let state = server
        .result("map_read_state", json!({"channel": ch, "limit": -1}))
        .await;
    assert_eq!(keys(&state), ["b64", "once"], "{state}");

    let published = backend.requests("/map_publish");
    let sent: Vec<&str> = published
        .iter()
        .map(|b| b["key"].as_str().unwrap())
        .collect();
    assert_eq!(sent, ["k1", "bad", "rename", "b64", "once", "once"]);
    let first = &published[0];
    assert_eq!(first["client"], json!(writer.client), "{first}");
    assert_eq!(first["channel"], ch);
    assert_eq!(first["data"], json!({"v": 1}));
    assert_eq!(first["transport"], "websocket");
    assert_eq!(first["protocol"], "json");
    assert_eq!(first["encoding"], "json");
    let removed: Vec<Value> = backend.requests("/map_remove");
    let sent: Vec<&str> = removed.iter().map(|b| b["key"].as_str().unwrap()).collect();
    assert_eq!(sent, ["bad", "alias", "k1"]);
    assert!(removed[0].get("data").is_none(), "{}", removed[0]);

    // A disconnect from the backend closes the connection; nothing was written.
    writer
        .send(json!({"id": 100, "publish": {"channel": ch, "type": 1, "key": "kick", "data": {}}}))
        .await;
    let closed = writer.closed().await;
    assert_eq!((closed.code, closed.reason.as_str()), (4501, "kicked"));
    let state = server
        .result("map_read_state", json!({"channel": ch, "limit": -1}))
        .await;
    assert_eq!(keys(&state), ["b64", "once"], "{state}");
}

#[tokio::test]
async fn only_the_enabled_map_proxy_is_asked() {
    let (backend, base) = Backend::start(script).await;
    let server = Server::start(namespaces(&base));

    // A namespace with only the publish proxy.
    let mut ws = server.connect().await;
    let reply = change(&mut ws, "onlypub:1", "unnamed", Some(json!({"x": 1}))).await;
    assert_eq!(reply["publish"], json!({}), "{reply}");
    let state = server
        .result(
            "map_read_state",
            json!({"channel": "onlypub:1", "limit": -1}),
        )
        .await;
    assert_eq!(
        keys(&state),
        ["named"],
        "the backend named the key: {state}"
    );
    // Removals there go by the namespace's permissions (`client.insecure` here).
    let reply = change(&mut ws, "onlypub:1", "named", None).await;
    assert_eq!(reply["publish"], json!({}), "{reply}");
    let state = server
        .result(
            "map_read_state",
            json!({"channel": "onlypub:1", "limit": -1}),
        )
        .await;
    assert!(keys(&state).is_empty(), "{state}");
    assert!(backend.requests("/map_remove").is_empty());
    assert_eq!(backend.requests("/map_publish").len(), 1);
}

#[tokio::test]
async fn the_client_key_goes_when_its_subscription_ends() {
    let (_backend, base) = Backend::start(script).await;
    let server = Server::start(namespaces(&base));
    let ch = "cur:doc";
    let mut watcher = server.connect().await;
    subscribe(&mut watcher, ch).await;
    let mut mover = server.connect().await;
    subscribe(&mut mover, ch).await;
    // `client_key: client_id`: the entry is the client's id, whatever key it names.
    change(&mut mover, ch, "whatever", Some(json!({"x": 1}))).await;
    let id = mover.client.clone();
    assert_eq!(
        next_change(&mut watcher, ch).await,
        (id.clone(), false, json!({"x": 1}))
    );
    // Presence works on a map namespace too.
    let presence = watcher.call(json!({"presence": {"channel": ch}})).await;
    let clients = presence["presence"]["presence"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    assert!(clients.contains_key(&id), "{presence}");

    let reply = mover.call(json!({"unsubscribe": {"channel": ch}})).await;
    assert!(reply.get("error").is_none(), "{reply}");
    assert_eq!(
        next_change(&mut watcher, ch).await,
        (id.clone(), true, Value::Null)
    );
    let state = server
        .result("map_read_state", json!({"channel": ch, "limit": -1}))
        .await;
    assert!(keys(&state).is_empty(), "{state}");
    let presence = watcher.call(json!({"presence": {"channel": ch}})).await;
    let clients = presence["presence"]["presence"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    assert!(!clients.contains_key(&id), "{presence}");

    // Subscribed again, the connection then closes: the key goes as well.
    subscribe(&mut mover, ch).await;
    change(&mut mover, ch, "whatever", Some(json!({"x": 2}))).await;
    assert_eq!(
        next_change(&mut watcher, ch).await,
        (id.clone(), false, json!({"x": 2}))
    );
    drop(mover);
    assert_eq!(next_change(&mut watcher, ch).await, (id, true, Value::Null));

    // Without the option the entry stays after the subscription ends.
    let mut stayer = server.connect().await;
    subscribe(&mut stayer, "keep:doc").await;
    change(&mut stayer, "keep:doc", "k", Some(json!(1))).await;
    stayer
        .call(json!({"unsubscribe": {"channel": "keep:doc"}}))
        .await;
    let state = server
        .result(
            "map_read_state",
            json!({"channel": "keep:doc", "limit": -1}),
        )
        .await;
    assert_eq!(keys(&state), [stayer.client.clone()], "{state}");
}
