//! Whole-server paths, measured against the real `gyre` binary on loopback:
//! the HTTP API publish (keep-alive connection, with and without history) and the
//! connect path (new TCP + WebSocket handshake + `connect` with an HS256 JWT).

use criterion::{Criterion, criterion_group, criterion_main};
use futures_util::{SinkExt, StreamExt};
use gyre_testkit::{GyreBinary, GyreProcess};
use tokio_tungstenite::tungstenite::Message;

const SECRET: &str = "bench-secret";

fn start() -> GyreProcess {
    let config = serde_json::json!({
        "log": {"level": "error"},
        "client": {"token": {"hmac_secret_key": SECRET}},
        "http_api": {"key": "bench"},
        "channel": {"namespaces": [{"name": "history", "history_size": 100, "history_ttl": "60s"}]}
    });
    GyreBinary::new(env!("CARGO_BIN_EXE_gyre")).start(&config)
}

fn token(user: &str) -> String {
    let claims = serde_json::json!({"sub": user});
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .unwrap()
}

fn server_paths(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let server = start();
    let http = reqwest::Client::new();
    let api = format!("http://127.0.0.1:{}/api/publish", server.port());

    let mut group = c.benchmark_group("server");
    for (name, channel) in [
        ("api_publish", "news"),
        ("api_publish_history", "history:news"),
    ] {
        let body = format!(
            r#"{{"channel":"{channel}","data":{{"text":"{}"}}}}"#,
            "x".repeat(100)
        );
        group.bench_function(name, |b| {
            b.iter(|| {
                rt.block_on(async {
                    let r = http
                        .post(&api)
                        .header("X-API-Key", "bench")
                        .body(body.clone())
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(r.status(), 200);
                    r.bytes().await.unwrap()
                })
            })
        });
    }

    let url = format!("ws://127.0.0.1:{}/connection/websocket", server.port());
    let connect = format!(r#"{{"id":1,"connect":{{"token":"{}"}}}}"#, token("42"));
    group.bench_function("connect_jwt", |b| {
        b.iter(|| {
            rt.block_on(async {
                let (mut ws, _) = tokio_tungstenite::connect_async(&url).await.unwrap();
                ws.send(Message::text(connect.clone())).await.unwrap();
                let reply = ws.next().await.unwrap().unwrap();
                assert!(reply.to_text().unwrap().starts_with(r#"{"id":1,"connect""#));
                let _ = ws.close(None).await;
            })
        })
    });
    group.finish();
}

criterion_group!(benches, server_paths);
criterion_main!(benches);
