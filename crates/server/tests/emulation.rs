//! The emulation endpoints as the `gyre` binary serves them: mounted only when
//! `http_stream` or `sse` is enabled, at their configured prefixes, with their configured
//! body limits, CORS for `client.allowed_origins`, and no warning when nodes share an
//! engine (requests are routed between nodes, see `cluster_emulation.rs`). What the
//! endpoints do is tested in the library; the SDK over them in
//! `e2e/test/emulation.test.js`.

mod support;

use serde_json::{Value, json};
use support::Server;

fn config(overlay: Value) -> Value {
    let mut config = json!({
        "client": {
            "allow_anonymous_connect_without_token": true,
            "token": {"hmac_secret_key": "secret"},
            "allowed_origins": ["https://allowed.example"],
        },
    });
    gyre_testkit::merge_config(&mut config, overlay);
    config
}

fn url(server: &Server, path: &str) -> String {
    format!("{}{path}", server.http_url())
}

async fn post(url: String, body: &'static str, origin: Option<&str>) -> reqwest::Response {
    let mut request = reqwest::Client::new().post(url).body(body);
    if let Some(origin) = origin {
        request = request.header("origin", origin);
    }
    request.send().await.unwrap()
}

#[tokio::test]
async fn endpoints_are_absent_unless_enabled() {
    let server = Server::start(config(json!({})));
    for path in ["/connection/http_stream", "/connection/sse", "/emulation"] {
        let r = post(url(&server, path), "{}", None).await;
        assert_eq!(r.status(), 404, "{path}");
    }
}

#[tokio::test]
async fn endpoints_follow_their_configuration() {
    let server = Server::start(config(json!({
        "http_stream": {"enabled": true, "handler_prefix": "/hs", "max_request_body_size": 40},
        "sse": {"enabled": true, "handler_prefix": "/events"},
        "emulation": {"handler_prefix": "/emu", "max_request_body_size": 200},
    })));
    let connect = r#"{"id":1,"connect":{}}"#;

    // A stream opens with the connect reply, CORS allowed for the listed origin.
    let mut stream = post(
        url(&server, "/hs"),
        connect,
        Some("https://allowed.example"),
    )
    .await;
    assert_eq!(stream.status(), 200);
    assert_eq!(
        stream.headers()["access-control-allow-origin"],
        "https://allowed.example"
    );
    let first = stream.chunk().await.unwrap().unwrap();
    let reply: Value = serde_json::from_slice(&first).unwrap();
    let session = reply["connect"]["session"].as_str().unwrap().to_owned();
    let node = reply["connect"]["node"].as_str().unwrap().to_owned();

    // A command through the renamed emulation endpoint is answered on the stream.
    let command = r#"{"id":2,"subscribe":{"channel":"x"}}"#;
    let body = json!({"node": node, "session": session, "data": command}).to_string();
    let emulated = reqwest::Client::new()
        .post(url(&server, "/emu"))
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(emulated.status(), 204);
    let answer = stream.chunk().await.unwrap().unwrap();
    let answer: Value = serde_json::from_slice(&answer).unwrap();
    assert_eq!(answer["id"], 2, "{answer}");

    // Limits: 40 bytes for the stream, 200 for emulation.
    let big = r#"{"id":1,"connect":{"data":{"padding":"xxxxxxxxxx"}}}"#;
    assert_eq!(post(url(&server, "/hs"), big, None).await.status(), 413);
    let padding = "x".repeat(200);
    let big = json!({"node": node, "session": session, "data": padding}).to_string();
    let r = reqwest::Client::new()
        .post(url(&server, "/emu"))
        .body(big)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);

    // Another origin is served without CORS headers (the browser keeps the answer).
    let other = post(
        url(&server, "/events"),
        connect,
        Some("https://evil.example"),
    )
    .await;
    assert_eq!(other.status(), 200);
    assert!(other.headers().get("access-control-allow-origin").is_none());

    let get = reqwest::get(url(&server, "/hs")).await.unwrap();
    assert_eq!(get.status(), 405);
    let get = reqwest::get(url(&server, "/events")).await.unwrap();
    assert_eq!(get.status(), 400, "GET without cf_connect");
}

#[test]
fn a_shared_engine_needs_no_warning_for_emulation() {
    let dir = tempfile::tempdir().unwrap();
    let check = |config: Value| {
        std::fs::write(dir.path().join("config.json"), config.to_string()).unwrap();
        let out = support::gyre().run(dir.path(), &["checkconfig"], &[]);
        assert!(out.status.success(), "{out:?}");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    for engine in [
        json!({"engine": {"type": "redis"}}),
        json!({"broker": {"enabled": true, "type": "nats"}}),
    ] {
        let mut config = json!({"sse": {"enabled": true}, "http_stream": {"enabled": true}});
        config
            .as_object_mut()
            .unwrap()
            .extend(engine.as_object().unwrap().clone());
        let out = check(config);
        assert!(!out.contains("sticky"), "{out}");
        assert!(!out.contains("not supported"), "{out}");
        assert!(!out.to_lowercase().contains("warn"), "{out}");
    }
}
