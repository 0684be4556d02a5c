//! Test support shared by the integration tests: starts the real `gyre` binary with a
//! temporary configuration on a free 127.0.0.1 port ([`Server`], on the testkit's
//! [`GyreBinary`]), speaks the client protocol over WebSocket ([`WsClient`]) and makes
//! HS256 tokens ([`hs256`]).
//!
//! Every test crate includes this with `mod support;` and uses a part of it.
#![allow(dead_code, unreachable_pub)]

pub mod cluster;
pub mod policy;

use std::collections::VecDeque;
use std::ops::Deref;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_util::{SinkExt, StreamExt};
use gyre_testkit::{GyreBinary, GyreProcess};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

/// How long a test waits for anything (server start, a reply, a close).
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// The `gyre` binary built for these tests.
pub fn gyre() -> GyreBinary {
    GyreBinary::new(env!("CARGO_BIN_EXE_gyre"))
}

/// A running `gyre` process (see [`GyreProcess`] for what it offers), killed when dropped.
pub struct Server(GyreProcess);

impl Server {
    /// Starts `gyre` with `config` (any Centrifugo v6 JSON config) on 127.0.0.1 and a
    /// free port; returns when the port accepts connections.
    pub fn start(config: Value) -> Server {
        Server(gyre().start(&config))
    }

    /// Rewrites the configuration file (same address and port) and sends SIGHUP.
    pub fn reload(&self, config: Value) {
        self.0.reload(&config);
    }
}

impl Deref for Server {
    type Target = GyreProcess;

    fn deref(&self) -> &GyreProcess {
        &self.0
    }
}

/// Current Unix time in seconds.
pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// An HS256 JWT with these claims.
pub fn hs256(secret: &str, claims: Value) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )
    .expect("token encodes")
}

/// The outcome of a command.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// The result object of the reply (`{"id":1,"subscribe":{...}}` → `{...}`).
    Ok(Value),
    /// An error reply: code and message.
    Error(u32, String),
    /// The server closed the connection: close code and reason.
    Closed(u16, String),
}

impl Reply {
    /// The result; panics on an error or a close.
    #[track_caller]
    pub fn ok(self) -> Value {
        match self {
            Reply::Ok(v) => v,
            other => panic!("expected a result, got {other:?}"),
        }
    }

    /// The error code, `None` for a result or a close.
    pub fn error(&self) -> Option<u32> {
        match self {
            Reply::Error(code, _) => Some(*code),
            _ => None,
        }
    }

    /// The close code, `None` for a result or an error.
    pub fn closed(&self) -> Option<u16> {
        match self {
            Reply::Closed(code, _) => Some(*code),
            _ => None,
        }
    }
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A raw protocol-v2 JSON client over WebSocket.
pub struct WsClient {
    ws: Ws,
    next_id: u32,
    /// Replies and pushes read but not consumed yet.
    inbox: VecDeque<Value>,
    closed: Option<(u16, String)>,
}

impl WsClient {
    /// Opens a WebSocket to `url`.
    pub async fn open(url: &str) -> WsClient {
        Self::open_with_headers(url, &[]).await
    }

    /// Opens a WebSocket to `url` with extra request headers.
    pub async fn open_with_headers(url: &str, headers: &[(&str, &str)]) -> WsClient {
        let mut request = url.into_client_request().expect("ws url");
        for (name, value) in headers {
            request.headers_mut().insert(
                http::HeaderName::from_bytes(name.as_bytes()).expect("header name"),
                http::HeaderValue::from_str(value).expect("header value"),
            );
        }
        let (ws, _) = tokio::time::timeout(TIMEOUT, tokio_tungstenite::connect_async(request))
            .await
            .expect("ws connect in time")
            .expect("ws connects");
        WsClient {
            ws,
            next_id: 1,
            inbox: VecDeque::new(),
            closed: None,
        }
    }

    /// Opens a WebSocket and sends `connect` with these fields (`{"token": ...}`).
    pub async fn connect(url: &str, params: Value) -> (WsClient, Reply) {
        let mut client = Self::open(url).await;
        let reply = client.call("connect", params).await;
        (client, reply)
    }

    /// Sends one raw command.
    pub async fn send(&mut self, command: Value) {
        self.ws
            .send(Message::text(command.to_string()))
            .await
            .expect("ws send");
    }

    /// Sends `{"id": N, "<method>": params}` and waits for the reply with that id
    /// (pushes that arrive first are kept for [`WsClient::push`]).
    pub async fn call(&mut self, method: &str, params: Value) -> Reply {
        let id = self.next_id;
        self.next_id += 1;
        self.send(json!({ "id": id, method: params })).await;
        loop {
            if let Some(pos) = self
                .inbox
                .iter()
                .position(|m| m["id"].as_u64() == Some(u64::from(id)))
            {
                let reply = self.inbox.remove(pos).unwrap();
                if let Some(e) = reply.get("error") {
                    return Reply::Error(
                        e["code"].as_u64().unwrap_or_default() as u32,
                        e["message"].as_str().unwrap_or_default().to_owned(),
                    );
                }
                return Reply::Ok(reply.get(method).cloned().unwrap_or(json!({})));
            }
            if let Some((code, reason)) = self.read().await {
                return Reply::Closed(code, reason);
            }
        }
    }

    /// The next push (`{"push": {...}}` → `{...}`); `None` when the connection closed.
    pub async fn push(&mut self) -> Option<Value> {
        loop {
            if let Some(pos) = self.inbox.iter().position(|m| m.get("push").is_some()) {
                return self.inbox.remove(pos).and_then(|m| m.get("push").cloned());
            }
            if self.read().await.is_some() {
                return None;
            }
        }
    }

    /// The next publication push in `channel` (other pushes before it are dropped).
    pub async fn publication(&mut self, channel: &str) -> Option<Value> {
        loop {
            let push = self.push().await?;
            if push["channel"] == channel && push.get("pub").is_some() {
                return Some(push["pub"].clone());
            }
        }
    }

    /// The next push if one arrives within `wait` (`Ok(None)` when none did); `Err` with
    /// the close code and reason once the connection is closed and no push is left.
    pub async fn push_within(&mut self, wait: Duration) -> Result<Option<Value>, (u16, String)> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            if let Some(pos) = self.inbox.iter().position(|m| m.get("push").is_some()) {
                return Ok(self.inbox.remove(pos).and_then(|m| m.get("push").cloned()));
            }
            if let Some(closed) = &self.closed {
                return Err(closed.clone());
            }
            match tokio::time::timeout_at(deadline, self.ws.next()).await {
                Err(_) => return Ok(None),
                Ok(frame) => {
                    self.take_frame(frame);
                    if self.closed.is_none() {
                        self.answer_pings().await;
                    }
                }
            }
        }
    }

    /// Waits until the server closes the connection; returns its close code and reason.
    pub async fn closed(&mut self) -> (u16, String) {
        loop {
            if let Some(close) = self.read().await {
                return close;
            }
        }
    }

    /// Whether nothing arrives (no push, no close) within `wait`.
    pub async fn quiet_for(&mut self, wait: Duration) -> bool {
        if !self.inbox.is_empty() || self.closed.is_some() {
            return false;
        }
        match tokio::time::timeout(wait, self.ws.next()).await {
            Err(_) => true,
            Ok(frame) => {
                self.take_frame(frame);
                false
            }
        }
    }

    /// Reads one frame into the inbox; `Some` when the connection is closed.
    async fn read(&mut self) -> Option<(u16, String)> {
        if let Some(closed) = &self.closed {
            return Some(closed.clone());
        }
        let frame = tokio::time::timeout(TIMEOUT, self.ws.next())
            .await
            .expect("a frame from the server in time");
        self.take_frame(frame);
        if self.closed.is_none() {
            self.answer_pings().await;
        }
        self.closed.clone()
    }

    fn take_frame(
        &mut self,
        frame: Option<Result<Message, tokio_tungstenite::tungstenite::Error>>,
    ) {
        match frame {
            Some(Ok(Message::Text(text))) => {
                for line in text.lines().filter(|l| !l.trim().is_empty()) {
                    let value: Value = serde_json::from_str(line).expect("JSON from the server");
                    self.inbox.push_back(value);
                }
            }
            Some(Ok(Message::Close(frame))) => {
                self.closed = Some(frame.map_or((1005, String::new()), |f| {
                    (u16::from(f.code), f.reason.to_string())
                }));
            }
            Some(Ok(_)) => {}
            Some(Err(_)) | None => {
                self.closed.get_or_insert((1006, String::new()));
            }
        }
    }

    /// Answers protocol pings (`{}`) with pongs (`{}`).
    async fn answer_pings(&mut self) {
        let before = self.inbox.len();
        self.inbox
            .retain(|m| m.as_object().is_none_or(|o| !o.is_empty()));
        for _ in self.inbox.len()..before {
            self.send(json!({})).await;
        }
    }
}
