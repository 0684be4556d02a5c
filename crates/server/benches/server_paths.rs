//! Whole-server paths, measured against the real `gyre` binary on loopback:
//! the HTTP API publish (keep-alive connection, with and without history) and the
//! connect path (new TCP + WebSocket handshake + `connect` with an HS256 JWT).

use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;

const SECRET: &str = "bench-secret";

struct Server {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start() -> Server {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = tempfile::tempdir().unwrap();
    let config = serde_json::json!({
        "http_server": {"address": "127.0.0.1", "port": port},
        "log": {"level": "error"},
        "client": {"token": {"hmac_secret_key": SECRET}},
        "http_api": {"key": "bench"},
        "channel": {"namespaces": [{"name": "history", "history_size": 100, "history_ttl": "60s"}]}
    });
    std::fs::write(dir.path().join("config.json"), config.to_string()).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_gyre"))
        .arg("-c")
        .arg(dir.path().join("config.json"))
        .env_clear()
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "gyre did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    Server {
        child,
        port,
        _dir: dir,
    }
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
    let api = format!("http://127.0.0.1:{}/api/publish", server.port);

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

    let url = format!("ws://127.0.0.1:{}/connection/websocket", server.port);
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
