//! Runs the real `gyre` binary (with the testkit's [`GyreBinary`]) for the server API
//! tests, and talks to it over HTTP and WebSocket.

#![allow(dead_code, unreachable_pub)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use gyre_testkit::{GyreBinary, GyreProcess, merge_config};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

pub const KEY: &str = "test-api-key";

/// A running `gyre` process, killed (by its PID) on drop.
pub struct Server {
    process: GyreProcess,
    pub addr: SocketAddr,
    pub log: PathBuf,
    http: reqwest::Client,
}

impl Server {
    /// Starts `gyre` with the API key [`KEY`], insecure client connections and `config`
    /// merged over that.
    pub fn start(config: Value) -> Server {
        let mut base = json!({
            "http_api": {"key": KEY},
            "client": {"insecure": true, "allowed_origins": ["*"]},
            "log": {"level": "error"},
        });
        merge_config(&mut base, config);
        let process = GyreBinary::new(env!("CARGO_BIN_EXE_gyre")).start(&base);
        Server {
            addr: process.addr(),
            log: process.log_path(),
            process,
            http: reqwest::Client::new(),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// POSTs `body` to `path` with extra `headers`; returns the status and the body.
    pub async fn post_raw(
        &self,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> (u16, String) {
        let mut request = self.http.post(self.url(path)).body(body.to_owned());
        for (k, v) in headers {
            request = request.header(*k, *v);
        }
        let response = request.send().await.expect("HTTP request");
        let status = response.status().as_u16();
        (status, response.text().await.unwrap())
    }

    /// GETs `path` with the right key; returns the status and the body.
    pub async fn http_get(&self, path: &str) -> (u16, String) {
        let response = self
            .http
            .get(self.url(path))
            .header("X-API-Key", KEY)
            .send()
            .await
            .expect("HTTP request");
        let status = response.status().as_u16();
        (status, response.text().await.unwrap())
    }

    /// POSTs a JSON body with the right key; returns the status and the decoded body.
    pub async fn post(&self, path: &str, headers: &[(&str, &str)], body: &Value) -> (u16, Value) {
        let mut all = vec![("X-API-Key", KEY)];
        all.extend_from_slice(headers);
        let (status, text) = self.post_raw(path, &all, &body.to_string()).await;
        let value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{path}: body {text:?} is not JSON: {e}"));
        (status, value)
    }

    /// Calls `/api/<method>` and expects HTTP 200; returns the decoded body.
    pub async fn api(&self, method: &str, body: Value) -> Value {
        let (status, value) = self.post(&format!("/api/{method}"), &[], &body).await;
        assert_eq!(status, 200, "{method}: {value}");
        value
    }

    /// Calls `/api/<method>` and returns its `result`, failing on an `error`.
    pub async fn result(&self, method: &str, body: Value) -> Value {
        let value = self.api(method, body).await;
        assert!(value.get("error").is_none(), "{method}: {value}");
        value["result"].clone()
    }

    /// Opens a WebSocket connection and sends `connect` (anonymous: `client.insecure`).
    pub async fn connect(&self) -> Ws {
        let url = format!("ws://{}/connection/websocket", self.addr);
        let (stream, _) = tokio_tungstenite::connect_async(url)
            .await
            .expect("WebSocket handshake");
        let mut ws = Ws {
            client: String::new(),
            stream,
            pending: Vec::new(),
            next_id: 1,
        };
        let reply = ws.call(json!({"connect": {}})).await;
        assert!(reply.get("error").is_none(), "connect: {reply}");
        ws.client = reply["connect"]["client"].as_str().unwrap().to_owned();
        ws
    }
}

type Stream =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A JSON-protocol client connection.
pub struct Ws {
    /// The connection id from the connect reply.
    pub client: String,
    stream: Stream,
    pending: Vec<Value>,
    next_id: u32,
}

/// How a connection ended.
#[derive(Debug, PartialEq, Eq)]
pub struct Closed {
    pub code: u16,
    pub reason: String,
}

const WAIT: Duration = Duration::from_secs(5);

impl Ws {
    /// Sends a command (an `id` is added) and waits for its reply; pushes received
    /// meanwhile stay queued for [`Ws::next`].
    pub async fn call(&mut self, mut command: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        command["id"] = json!(id);
        self.stream
            .send(Message::text(command.to_string()))
            .await
            .unwrap();
        let mut skipped = Vec::new();
        let reply = loop {
            let message = self.next().await;
            if message["id"] == json!(id) {
                break message;
            }
            skipped.push(message);
        };
        self.pending.splice(0..0, skipped);
        reply
    }

    /// Sends a command as it is, without waiting for a reply.
    pub async fn send(&mut self, command: Value) {
        self.stream
            .send(Message::text(command.to_string()))
            .await
            .unwrap();
    }

    /// The next message (reply or push); answers server pings. Panics on close/timeout.
    pub async fn next(&mut self) -> Value {
        if !self.pending.is_empty() {
            return self.pending.remove(0);
        }
        loop {
            match self.read().await {
                Ok(messages) if !messages.is_empty() => {
                    self.pending.extend(messages);
                    return self.pending.remove(0);
                }
                Ok(_) => {}
                Err(closed) if closed.code == 3501 => panic!(
                    "connection refused ({closed:?}): anonymous connections need the client \
                     policy's `client.insecure` support"
                ),
                Err(closed) => panic!("connection closed: {closed:?}"),
            }
        }
    }

    /// The next push, skipping the other messages.
    pub async fn next_push(&mut self) -> Value {
        loop {
            let message = self.next().await;
            if let Some(push) = message.get("push") {
                return push.clone();
            }
        }
    }

    /// Waits for the server to close the connection; pushes before are dropped.
    pub async fn closed(&mut self) -> Closed {
        loop {
            if let Err(closed) = self.read().await {
                return closed;
            }
        }
    }

    /// Messages of one frame: Ok(empty) for pings and non-text frames.
    async fn read(&mut self) -> Result<Vec<Value>, Closed> {
        let frame = tokio::time::timeout(WAIT, self.stream.next())
            .await
            .expect("a message within 5 s");
        match frame {
            Some(Ok(Message::Text(text))) => {
                let mut messages = Vec::new();
                for line in text.as_str().lines().filter(|l| !l.trim().is_empty()) {
                    let message: Value = serde_json::from_str(line).unwrap();
                    // Protocol v2 ping: an empty object, answered with an empty object.
                    if message == json!({}) {
                        let _ = self.stream.send(Message::text("{}")).await;
                        continue;
                    }
                    messages.push(message);
                }
                Ok(messages)
            }
            Some(Ok(Message::Close(frame))) => Err(frame.map_or(
                Closed {
                    code: 1005,
                    reason: String::new(),
                },
                |f| Closed {
                    code: u16::from(f.code),
                    reason: f.reason.to_string(),
                },
            )),
            Some(Ok(_)) => Ok(Vec::new()),
            Some(Err(e)) => Err(Closed {
                code: u16::from(CloseCode::Abnormal),
                reason: e.to_string(),
            }),
            None => Err(Closed {
                code: u16::from(CloseCode::Abnormal),
                reason: "stream ended".into(),
            }),
        }
    }
}
