//! Connect and refresh proxies over HTTP: the real `gyre` binary asks a backend started
//! here (an axum server on 127.0.0.1 that records every request it gets).

mod support;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use serde_json::{Value, json};
use support::{Reply, Server, WsClient, now};

/// One request the backend got.
#[derive(Debug, Clone)]
struct Recorded {
    path: String,
    headers: HeaderMap,
    body: Value,
}

#[derive(Default)]
struct Inner {
    /// Status and body to answer, by path.
    answers: HashMap<String, (u16, Value)>,
    requests: Vec<Recorded>,
}

/// The application backend of a test.
#[derive(Clone, Default)]
struct Backend(Arc<Mutex<Inner>>);

impl Backend {
    /// Starts the backend; returns it and its base URL.
    async fn start() -> (Backend, String) {
        let backend = Backend::default();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = axum::Router::new()
            .fallback(answer)
            .with_state(backend.clone());
        tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        (backend, format!("http://{addr}"))
    }

    fn answer(&self, path: &str, status: u16, body: Value) {
        self.0
            .lock()
            .unwrap()
            .answers
            .insert(path.to_owned(), (status, body));
    }

    fn requests(&self, path: &str) -> Vec<Recorded> {
        let inner = self.0.lock().unwrap();
        inner
            .requests
            .iter()
            .filter(|r| r.path == path)
            .cloned()
            .collect()
    }
}

async fn answer(
    State(backend): State<Backend>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, String) {
    let path = uri.path().to_owned();
    let body = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let mut inner = backend.0.lock().unwrap();
    inner.requests.push(Recorded {
        path: path.clone(),
        headers,
        body,
    });
    let (status, body) = inner
        .answers
        .get(&path)
        .cloned()
        .unwrap_or((404, json!({})));
    (StatusCode::from_u16(status).unwrap(), body.to_string())
}

/// A configuration with the connect proxy (and optionally the refresh proxy) at `base`.
fn config(base: &str, refresh: bool) -> Value {
    json!({
        "log": {"level": "debug"},
        "client": {
            "allowed_origins": ["*"],
            "token": {"hmac_secret_key": "proxy-test-secret"},
            "proxy": {
                "connect": {
                    "enabled": true,
                    "endpoint": format!("{base}/connect"),
                    "timeout": "1s",
                    "http_headers": ["X-Forwarded-User", "Authorization"],
                    "emulated_headers": ["X-Emulated"],
                    "http": {"static_headers": {"X-Static": "static-value"}},
                },
                "refresh": {
                    "enabled": refresh,
                    "endpoint": format!("{base}/refresh"),
                    "timeout": "1s",
                },
            },
        },
        "channel": {
            "namespaces": [{"name": "news", "presence": true, "allow_presence_for_subscriber": true}],
        },
    })
}

#[tokio::test]
async fn connect_proxy_decides_credentials_and_subscriptions() {
    let (backend, base) = Backend::start().await;
    backend.answer(
        "/connect",
        200,
        json!({"result": {
            "user": "56",
            "info": {"name": "Alice"},
            "data": {"welcome": true},
            "channels": ["news:1"],
            "subs": {"news:2": {"data": {"since": 7}}},
        }}),
    );
    let server = Server::start(config(&base, false));

    let mut c = WsClient::open_with_headers(
        &server.ws_url(),
        &[("X-Forwarded-User", "alice"), ("X-Not-Forwarded", "secret")],
    )
    .await;
    let reply = c
        .call(
            "connect",
            json!({
                "data": {"hello": "world"},
                "name": "test-sdk",
                "version": "1.2.3",
                "headers": {"X-Emulated": "emulated-value", "X-Other": "not-listed"},
            }),
        )
        .await;
    let result = reply.ok();
    assert_eq!(result["data"], json!({"welcome": true}), "{result}");
    assert!(result.get("expires").is_none(), "{result}");
    let subs = result["subs"].as_object().expect("server-side subs");
    assert!(subs.contains_key("news:1"), "{result}");
    assert_eq!(subs["news:2"]["data"], json!({"since": 7}), "{result}");

    // The presence of a server-side channel shows the user and the info from the backend.
    let presence = c.call("presence", json!({"channel": "news:1"})).await.ok();
    let clients: Vec<&Value> = presence["presence"].as_object().unwrap().values().collect();
    assert_eq!(clients.len(), 1, "{presence}");
    assert_eq!(clients[0]["user"], "56");
    assert_eq!(clients[0]["conn_info"], json!({"name": "Alice"}));

    let requests = backend.requests("/connect");
    assert_eq!(requests.len(), 1);
    let request = &requests[0];
    let body = &request.body;
    assert_eq!(body["client"], result["client"], "{body}");
    assert_eq!(body["transport"], "websocket");
    assert_eq!(body["protocol"], "json");
    assert_eq!(body["encoding"], "json");
    assert_eq!(body["name"], "test-sdk");
    assert_eq!(body["version"], "1.2.3");
    assert_eq!(body["data"], json!({"hello": "world"}));
    assert!(body.get("b64data").is_none(), "{body}");
    let h = &request.headers;
    assert_eq!(h["x-forwarded-user"], "alice");
    assert_eq!(h["x-static"], "static-value");
    assert_eq!(h["x-emulated"], "emulated-value");
    assert!(h.get("x-other").is_none(), "{h:?}");
    assert_eq!(h["content-type"], "application/json");
    assert!(h.get("x-not-forwarded").is_none(), "{h:?}");
    assert!(h.get("authorization").is_none(), "{h:?}");
}

#[tokio::test]
async fn connect_with_token_does_not_ask_the_backend() {
    let (backend, base) = Backend::start().await;
    backend.answer("/connect", 200, json!({"result": {"user": "proxy-user"}}));
    let server = Server::start(config(&base, false));
    let token = support::hs256("proxy-test-secret", json!({"sub": "token-user"}));
    let (mut c, reply) = WsClient::connect(&server.ws_url(), json!({"token": token})).await;
    reply.ok();
    let info = c.call("rpc", json!({"method": "x"})).await;
    assert!(matches!(info, Reply::Error(..)), "{info:?}");
    assert!(backend.requests("/connect").is_empty());
}

#[tokio::test]
async fn connect_proxy_errors_and_disconnects_reach_the_client() {
    let (backend, base) = Backend::start().await;
    let server = Server::start(config(&base, false));
    let url = server.ws_url();

    backend.answer(
        "/connect",
        200,
        json!({"error": {"code": 1000, "message": "custom error", "temporary": true}}),
    );
    let (_c, reply) = WsClient::connect(&url, json!({})).await;
    assert_eq!(
        reply,
        Reply::Error(1000, "custom error".to_owned()),
        "{reply:?}"
    );

    backend.answer(
        "/connect",
        200,
        json!({"disconnect": {"code": 4501, "reason": "go away"}}),
    );
    let (_c, reply) = WsClient::connect(&url, json!({})).await;
    assert_eq!(
        reply,
        Reply::Closed(4501, "go away".to_owned()),
        "{reply:?}"
    );

    // A backend that fails answers internal error 100.
    backend.answer("/connect", 500, json!({}));
    let (_c, reply) = WsClient::connect(&url, json!({})).await;
    assert_eq!(reply.error(), Some(100), "{reply:?}");

    // A result without credentials is no credentials: 3501.
    backend.answer("/connect", 200, json!({}));
    let (_c, reply) = WsClient::connect(&url, json!({})).await;
    assert_eq!(reply.closed(), Some(3501), "{reply:?}");
}

#[tokio::test]
async fn connect_proxy_down_and_status_transforms() {
    // Nothing listens on the endpoint: internal error 100.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let server = Server::start(config(&dead, false));
    let (_c, reply) = WsClient::connect(&server.ws_url(), json!({})).await;
    assert_eq!(reply.error(), Some(100), "{reply:?}");

    let (backend, base) = Backend::start().await;
    let mut cfg = config(&base, false);
    cfg["client"]["proxy"]["connect"]["http"]["status_to_code_transforms"] = json!([
        {"status_code": 403, "to_disconnect": {"code": 4503, "reason": "forbidden"}},
        {"status_code": 429, "to_error": {"code": 1429, "message": "slow down", "temporary": true}},
    ]);
    let server = Server::start(cfg);
    backend.answer("/connect", 403, json!({}));
    let (_c, reply) = WsClient::connect(&server.ws_url(), json!({})).await;
    assert_eq!(
        reply,
        Reply::Closed(4503, "forbidden".to_owned()),
        "{reply:?}"
    );
    backend.answer("/connect", 429, json!({}));
    let (_c, reply) = WsClient::connect(&server.ws_url(), json!({})).await;
    assert_eq!(
        reply,
        Reply::Error(1429, "slow down".to_owned()),
        "{reply:?}"
    );
}

#[tokio::test]
async fn connect_proxy_binary_encoding_uses_base64_fields() {
    let (backend, base) = Backend::start().await;
    let mut cfg = config(&base, false);
    cfg["client"]["proxy"]["connect"]["binary_encoding"] = json!(true);
    let server = Server::start(cfg);
    // "{\"b\":1}" in base64 for the returned data, "info" for the info.
    backend.answer(
        "/connect",
        200,
        json!({"result": {"user": "7", "b64data": "eyJiIjoxfQ==", "b64info": "aW5mbw=="}}),
    );
    let (_c, reply) = WsClient::connect(&server.ws_url(), json!({"data": {"a": 1}})).await;
    let result = reply.ok();
    assert_eq!(result["data"], json!({"b": 1}), "{result}");
    let body = backend.requests("/connect")[0].body.clone();
    // `{"a":1}` in base64.
    assert_eq!(body["b64data"], "eyJhIjoxfQ==", "{body}");
    assert!(body.get("data").is_none(), "{body}");
}

#[tokio::test]
async fn refresh_proxy_extends_and_expires_connections() {
    let (backend, base) = Backend::start().await;
    backend.answer(
        "/connect",
        200,
        // Two seconds: with one, a connect that crosses a second boundary is expired already.
        json!({"result": {"user": "56", "expire_at": now() + 2}}),
    );
    backend.answer(
        "/refresh",
        200,
        json!({"result": {"expire_at": now() + 5, "info": {"refreshed": true}}}),
    );
    let server = Server::start(config(&base, true));
    let (mut c, reply) = WsClient::connect(&server.ws_url(), json!({})).await;
    let result = reply.ok();
    // Server-side refresh: the client is not told to refresh itself.
    assert!(result.get("expires").is_none(), "{result}");

    // Extended by the backend past the first expiry.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while backend.requests("/refresh").is_empty() {
        assert!(tokio::time::Instant::now() < deadline, "no refresh request");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let refresh = backend.requests("/refresh")[0].body.clone();
    assert_eq!(refresh["client"], result["client"], "{refresh}");
    assert_eq!(refresh["user"], "56");
    assert_eq!(refresh["transport"], "websocket");
    assert_eq!(refresh["protocol"], "json");
    assert_eq!(refresh["encoding"], "json");
    // Still connected after the first expiry.
    let pong = c.call("rpc", json!({"method": "none"})).await;
    assert!(pong.closed().is_none(), "{pong:?}");

    // The next refresh says expired: disconnect 3005.
    backend.answer("/refresh", 200, json!({"result": {"expired": true}}));
    let (code, _) = tokio::time::timeout(Duration::from_secs(10), c.closed())
        .await
        .expect("closed in time");
    assert_eq!(code, 3005);
}

#[tokio::test]
async fn refresh_proxy_down_keeps_the_connection() {
    let (backend, base) = Backend::start().await;
    backend.answer(
        "/connect",
        200,
        // Two seconds: with one, a connect that crosses a second boundary is expired already.
        json!({"result": {"user": "56", "expire_at": now() + 2}}),
    );
    backend.answer("/refresh", 500, json!({}));
    let server = Server::start(config(&base, true));
    let (mut c, reply) = WsClient::connect(&server.ws_url(), json!({})).await;
    reply.ok();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while backend.requests("/refresh").is_empty() {
        assert!(tokio::time::Instant::now() < deadline, "no refresh request");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Upstream gives the connection another minute and asks again.
    assert!(c.quiet_for(Duration::from_secs(2)).await);
    assert_eq!(backend.requests("/refresh").len(), 1);
}

#[tokio::test]
async fn connect_proxy_sees_a_protobuf_connection() {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;

    let (backend, base) = Backend::start().await;
    backend.answer("/connect", 200, json!({"result": {"user": "9"}}));
    let server = Server::start(config(&base, false));
    let url = format!("{}?format=protobuf", server.ws_url());
    let (mut ws, _) = tokio_tungstenite::connect_async(url.as_str())
        .await
        .unwrap();
    // Command {id: 1, connect: {data: "hi"}}, length-delimited.
    let command = [0x08, 0x08, 0x01, 0x22, 0x04, 0x12, 0x02, b'h', b'i'];
    ws.send(Message::binary(command.to_vec())).await.unwrap();
    let reply = tokio::time::timeout(Duration::from_secs(10), ws.next())
        .await
        .expect("reply in time")
        .expect("a frame")
        .unwrap();
    assert!(matches!(reply, Message::Binary(_)), "{reply:?}");

    let body = backend.requests("/connect")[0].body.clone();
    assert_eq!(body["protocol"], "protobuf", "{body}");
    assert_eq!(body["encoding"], "binary", "{body}");
    // Bytes that are not JSON travel in base64.
    assert_eq!(body["b64data"], "aGk=", "{body}");
}
