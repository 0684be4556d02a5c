//! Unidirectional transports (`uni_websocket`, `uni_sse`, `uni_http_stream`) of the real
//! `gyre` binary, driven by plain clients: a raw WebSocket, a streamed HTTP body read
//! line by line, and SSE events parsed by hand.

mod support;

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use support::cluster::{API_KEY, api};
use support::policy::{SECRET, connect_token};
use support::{Server, TIMEOUT, hs256, now};
use tokio_tungstenite::tungstenite::Message;

fn config(extra: Value) -> Value {
    let mut config = json!({
        "log": {"level": "debug"},
        "http_api": {"key": API_KEY},
        "client": {
            "token": {"hmac_secret_key": SECRET},
            "allowed_origins": ["*"]
        },
        "uni_websocket": {"enabled": true},
        "uni_sse": {"enabled": true},
        "uni_http_stream": {"enabled": true},
        "channel": {
            "namespaces": [
                {
                    "name": "rec",
                    "history_size": 100,
                    "history_ttl": "300s",
                    "force_recovery": true
                },
                {"name": "public", "allow_subscribe_for_client": true}
            ]
        }
    });
    gyre_testkit::merge_config(&mut config, extra);
    config
}

fn token_with_channels(user: &str, channels: &[&str]) -> String {
    connect_token(user, json!({"channels": channels}))
}

fn expired_token(user: &str) -> String {
    hs256(SECRET, json!({"sub": user, "exp": now() - 60}))
}

async fn publish(server: &Server, channel: &str, data: Value) -> Value {
    api(server, "publish", json!({"channel": channel, "data": data})).await
}

// ---- plain clients --------------------------------------------------------------------

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// What a uni WebSocket client sees next: a push (pings skipped) or the close frame.
#[derive(Debug, PartialEq)]
enum WsEvent {
    Push(Value),
    Closed(u16, String),
}

async fn ws_open(server: &Server, query: &str) -> Ws {
    let url = format!(
        "{}/connection/uni_websocket{query}",
        server.ws_url().trim_end_matches("/connection/websocket")
    );
    let (ws, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("uni ws opens");
    ws
}

async fn ws_next(ws: &mut Ws) -> WsEvent {
    loop {
        let message = tokio::time::timeout(TIMEOUT, ws.next())
            .await
            .expect("uni ws event in time");
        match message {
            Some(Ok(Message::Text(text))) => {
                let value: Value = serde_json::from_str(&text).expect("push is JSON");
                if value != json!({}) {
                    return WsEvent::Push(value);
                }
            }
            Some(Ok(Message::Close(frame))) => {
                let (code, reason) = frame.map_or((1005, String::new()), |f| {
                    (f.code.into(), f.reason.to_string())
                });
                return WsEvent::Closed(code, reason);
            }
            Some(Ok(_)) => {}
            Some(Err(e)) => panic!("uni ws error: {e}"),
            None => panic!("uni ws ended without a close frame"),
        }
    }
}

/// A streamed HTTP response read as pushes (`uni_http_stream` lines or `uni_sse` events).
struct Stream {
    response: reqwest::Response,
    buf: Vec<u8>,
    sse: bool,
}

impl Stream {
    /// The next push (pings skipped); `None` when the body ended.
    async fn next(&mut self) -> Option<Value> {
        loop {
            if let Some(value) = self.take() {
                if value == json!({}) {
                    continue;
                }
                return Some(value);
            }
            let chunk = tokio::time::timeout(TIMEOUT, self.response.chunk())
                .await
                .expect("stream chunk in time")
                .expect("stream reads");
            match chunk {
                Some(c) => self.buf.extend_from_slice(&c),
                None => {
                    assert!(
                        self.buf.iter().all(u8::is_ascii_whitespace),
                        "trailing bytes: {:?}",
                        String::from_utf8_lossy(&self.buf)
                    );
                    return None;
                }
            }
        }
    }

    /// Raw next message including pings.
    async fn next_raw(&mut self) -> Option<Value> {
        loop {
            if let Some(value) = self.take() {
                return Some(value);
            }
            let chunk = tokio::time::timeout(TIMEOUT, self.response.chunk())
                .await
                .expect("stream chunk in time")
                .expect("stream reads")?;
            self.buf.extend_from_slice(&chunk);
        }
    }

    fn take(&mut self) -> Option<Value> {
        if self.sse {
            // Events are `data: <json>\n\n`; the stream opens with an empty `\r\n` line.
            while self.buf.starts_with(b"\r\n") {
                self.buf.drain(..2);
            }
            let end = self.buf.windows(2).position(|w| w == b"\n\n")?;
            let event: Vec<u8> = self.buf.drain(..end + 2).collect();
            let text = std::str::from_utf8(&event).expect("utf-8 event");
            let data = text
                .trim_end()
                .strip_prefix("data: ")
                .unwrap_or_else(|| panic!("not a data event: {text:?}"));
            Some(serde_json::from_str(data).expect("event is JSON"))
        } else {
            let end = self.buf.iter().position(|&b| b == b'\n')?;
            let line: Vec<u8> = self.buf.drain(..=end).collect();
            Some(serde_json::from_slice(&line).expect("line is JSON"))
        }
    }
}

async fn http_stream(server: &Server, body: Value) -> Stream {
    let response = reqwest::Client::new()
        .post(format!("{}/connection/uni_http_stream", server.http_url()))
        .body(body.to_string())
        .send()
        .await
        .expect("uni_http_stream request");
    assert_eq!(response.status(), 200);
    Stream {
        response,
        buf: Vec::new(),
        sse: false,
    }
}

fn escape(s: &str) -> String {
    s.bytes().map(|b| format!("%{b:02X}")).collect()
}

async fn sse_get(server: &Server, connect: &Value) -> reqwest::Response {
    reqwest::Client::new()
        .get(format!(
            "{}/connection/uni_sse?cf_connect={}",
            server.http_url(),
            escape(&connect.to_string())
        ))
        .send()
        .await
        .expect("uni_sse request")
}

fn sse(response: reqwest::Response) -> Stream {
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "text/event-stream; charset=utf-8"
    );
    Stream {
        response,
        buf: Vec::new(),
        sse: true,
    }
}

fn connect_push(push: &Value) -> &Value {
    push.get("connect")
        .unwrap_or_else(|| panic!("first push is connect: {push}"))
}

// ---- uni_websocket --------------------------------------------------------------------

#[tokio::test]
async fn uni_websocket_receives_publications_and_a_disconnect() {
    let server = Server::start(config(json!({})));
    let mut ws = ws_open(&server, "").await;
    let connect = json!({
        "token": token_with_channels("alice", &["news"]),
        "subs": {"public:requested": {}, "private-looking": {}}
    });
    ws.send(Message::text(connect.to_string())).await.unwrap();
    let WsEvent::Push(first) = ws_next(&mut ws).await else {
        panic!("no connect push");
    };
    let c = connect_push(&first);
    assert!(!c["client"].as_str().unwrap().is_empty());
    assert_eq!(c["session"], c["client"], "{first}");
    assert!(c.get("pong").is_none(), "no pongs on uni: {first}");
    let subs = c["subs"].as_object().unwrap();
    // Token channels, and the requested channel the client may subscribe to itself;
    // a channel it may not subscribe to is ignored.
    assert!(
        subs.contains_key("news") && subs.contains_key("public:requested"),
        "{first}"
    );
    assert!(!subs.contains_key("private-looking"), "{first}");

    publish(&server, "news", json!({"n": 1})).await;
    assert_eq!(
        ws_next(&mut ws).await,
        WsEvent::Push(json!({"channel": "news", "pub": {"data": {"n": 1}}}))
    );
    publish(&server, "public:requested", json!("x")).await;
    assert_eq!(
        ws_next(&mut ws).await,
        WsEvent::Push(json!({"channel": "public:requested", "pub": {"data": "x"}}))
    );

    // Anything the client sends later is ignored.
    ws.send(Message::text("{\"id\":1,\"publish\":{}}"))
        .await
        .unwrap();
    api(
        &server,
        "disconnect",
        json!({"user": "alice", "disconnect": {"code": 4001, "reason": "go away"}}),
    )
    .await;
    assert_eq!(
        ws_next(&mut ws).await,
        WsEvent::Push(json!({"disconnect": {"code": 4001, "reason": "go away"}}))
    );
    assert_eq!(
        ws_next(&mut ws).await,
        WsEvent::Closed(4001, "go away".into())
    );
}

#[tokio::test]
async fn uni_websocket_connect_in_query_and_refusals() {
    let server = Server::start(config(json!({
        "uni_websocket": {"join_push_messages": true, "disable_disconnect_push": true}
    })));
    // `cf_connect`: nothing to send at all.
    let connect = json!({"token": token_with_channels("bob", &["news"])});
    let mut ws = ws_open(
        &server,
        &format!("?cf_connect={}", escape(&connect.to_string())),
    )
    .await;
    let WsEvent::Push(first) = ws_next(&mut ws).await else {
        panic!("no connect push");
    };
    assert!(connect_push(&first)["subs"]["news"].is_object(), "{first}");
    publish(&server, "news", json!(1)).await;
    assert_eq!(
        ws_next(&mut ws).await,
        WsEvent::Push(json!({"channel": "news", "pub": {"data": 1}}))
    );

    // An expired token (error 109) becomes disconnect 3005; with
    // `disable_disconnect_push` only the close frame tells.
    let mut ws = ws_open(&server, "").await;
    ws.send(Message::text(
        json!({"token": expired_token("bob")}).to_string(),
    ))
    .await
    .unwrap();
    assert_eq!(
        ws_next(&mut ws).await,
        WsEvent::Closed(3005, "connection expired".into())
    );

    // A bad token is a disconnect of its own (3500).
    let mut ws = ws_open(&server, "").await;
    ws.send(Message::text("{\"token\":\"nope\"}"))
        .await
        .unwrap();
    assert_eq!(
        ws_next(&mut ws).await,
        WsEvent::Closed(3500, "invalid token".into())
    );

    // A first message that is no connect request: 3501.
    let mut ws = ws_open(&server, "").await;
    ws.send(Message::text("[not a connect]")).await.unwrap();
    assert_eq!(
        ws_next(&mut ws).await,
        WsEvent::Closed(3501, "bad request".into())
    );

    // A malformed `cf_connect` is refused before the upgrade.
    let url = format!(
        "{}/connection/uni_websocket?cf_connect=%7Bbroken",
        server.ws_url().trim_end_matches("/connection/websocket")
    );
    match tokio_tungstenite::connect_async(url).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) => assert_eq!(r.status(), 400),
        other => panic!("expected 400, got {other:?}"),
    }

    // An oversized first message closes with 1009 and the server goes on.
    let mut ws = ws_open(&server, "").await;
    ws.send(Message::text("x".repeat(70_000))).await.unwrap();
    assert!(matches!(ws_next(&mut ws).await, WsEvent::Closed(1009, _)));
    let mut ws = ws_open(&server, "").await;
    ws.send(Message::text(connect.to_string())).await.unwrap();
    assert!(matches!(ws_next(&mut ws).await, WsEvent::Push(_)));
}

// ---- uni_http_stream ------------------------------------------------------------------

#[tokio::test]
async fn uni_http_stream_publications_recovery_and_disconnect() {
    let server = Server::start(config(json!({})));
    let token = token_with_channels("carol", &["rec:a"]);
    let mut stream = http_stream(&server, json!({"token": token})).await;
    let first = stream.next().await.unwrap();
    let sub = connect_push(&first)["subs"]["rec:a"].clone();
    assert_eq!(sub["recoverable"], true, "{first}");
    let epoch = sub["epoch"].as_str().unwrap().to_owned();

    publish(&server, "rec:a", json!({"n": 1})).await;
    let p1 = stream.next().await.unwrap();
    assert_eq!(p1["channel"], "rec:a");
    assert_eq!(p1["pub"]["data"], json!({"n": 1}));
    let offset = p1["pub"]["offset"].as_u64().unwrap();
    drop(stream);

    // Missed while away, then recovered on reconnect from the last offset seen.
    publish(&server, "rec:a", json!({"n": 2})).await;
    publish(&server, "rec:a", json!({"n": 3})).await;
    let mut stream = http_stream(
        &server,
        json!({
            "token": token,
            "subs": {"rec:a": {"recover": true, "offset": offset, "epoch": epoch}}
        }),
    )
    .await;
    let first = stream.next().await.unwrap();
    let sub = &connect_push(&first)["subs"]["rec:a"];
    assert_eq!(sub["recovered"], true, "{first}");
    let data: Vec<&Value> = sub["publications"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| &p["data"])
        .collect();
    assert_eq!(data, [&json!({"n": 2}), &json!({"n": 3})], "{first}");

    api(
        &server,
        "disconnect",
        json!({"user": "carol", "disconnect": {"code": 4002, "reason": "bye"}}),
    )
    .await;
    assert_eq!(
        stream.next().await,
        Some(json!({"disconnect": {"code": 4002, "reason": "bye"}}))
    );
    assert_eq!(
        stream.next().await,
        None,
        "the stream ends after the disconnect"
    );
}

#[tokio::test]
async fn uni_http_stream_bad_input() {
    let server = Server::start(config(json!({})));
    let url = format!("{}/connection/uni_http_stream", server.http_url());
    let client = reqwest::Client::new();

    let r = client.get(&url).send().await.unwrap();
    assert_eq!(r.status(), 405);
    let r = client
        .request(reqwest::Method::OPTIONS, &url)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(r.headers()["access-control-allow-methods"], "POST, OPTIONS");
    let r = client
        .post(&url)
        .body(vec![b' '; 70_000])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    for body in ["{", "[]", "{\"token\":5}", ""] {
        let r = client.post(&url).body(body).send().await.unwrap();
        assert_eq!(r.status(), 400, "{body:?}");
    }

    // A refused connect: 200 with the disconnect as the only push (109 → 3005).
    let mut stream = http_stream(&server, json!({"token": expired_token("dan")})).await;
    assert_eq!(
        stream.next().await,
        Some(json!({"disconnect": {"code": 3005, "reason": "connection expired"}}))
    );
    assert_eq!(stream.next().await, None);

    // `null` is an empty request: no credentials → 3501.
    let mut stream = http_stream(&server, Value::Null).await;
    assert_eq!(
        stream.next().await,
        Some(json!({"disconnect": {"code": 3501, "reason": "bad request"}}))
    );

    // Still serving.
    let mut stream = http_stream(&server, json!({"token": token_with_channels("dan", &[])})).await;
    assert!(connect_push(&stream.next().await.unwrap())["client"].is_string());
}

// ---- uni_sse --------------------------------------------------------------------------

#[tokio::test]
async fn uni_sse_get_and_post() {
    let server = Server::start(config(json!({})));
    let token = token_with_channels("erin", &["news"]);
    let mut events = sse(sse_get(&server, &json!({"token": token})).await);
    let first = events.next().await.unwrap();
    assert!(connect_push(&first)["subs"]["news"].is_object(), "{first}");
    publish(&server, "news", json!({"hello": "sse"})).await;
    assert_eq!(
        events.next().await,
        Some(json!({"channel": "news", "pub": {"data": {"hello": "sse"}}}))
    );

    let url = format!("{}/connection/uni_sse", server.http_url());
    let client = reqwest::Client::new();
    let r = client
        .post(&url)
        .body(json!({"token": token_with_channels("erin", &["other"])}).to_string())
        .send()
        .await
        .unwrap();
    let mut posted = sse(r);
    assert!(connect_push(&posted.next().await.unwrap())["subs"]["other"].is_object());

    assert_eq!(client.put(&url).send().await.unwrap().status(), 405);
    assert_eq!(
        client
            .post(&url)
            .body("nope")
            .send()
            .await
            .unwrap()
            .status(),
        400
    );
    let r = client
        .post(&url)
        .body(vec![b' '; 70_000])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    let r = client
        .get(format!("{url}?cf_connect=%7B%zz"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);

    // Server-side disconnect: the last event.
    api(&server, "disconnect", json!({"user": "erin"})).await;
    let last = events.next().await.unwrap();
    assert!(last["disconnect"]["code"].is_u64(), "{last}");
    assert_eq!(events.next().await, None);
}

// ---- error mapping and pings ----------------------------------------------------------

#[tokio::test]
async fn connect_errors_map_to_http_responses_and_custom_disconnects() {
    let server = Server::start(config(json!({
        "client": {
            "connect_code_to_unidirectional_disconnect": {
                "enabled": true,
                "transforms": [{"code": 109, "to": {"code": 4509, "reason": "refresh token"}}]
            },
            "ping_interval": "1s",
            "pong_timeout": "500ms"
        },
        "uni_sse": {
            "connect_code_to_http_response": {
                "enabled": true,
                "transforms": [
                    {"code": 109, "to": {"status_code": 401}},
                    {"code": 3500, "to": {"status_code": 403, "body": "who are you"}}
                ]
            }
        }
    })));
    // uni_sse answers with HTTP statuses: the error message when no body is configured,
    // the configured body, or 500 when no transform matches.
    let r = sse_get(&server, &json!({"token": expired_token("fay")})).await;
    assert_eq!(r.status(), 401);
    assert_eq!(r.text().await.unwrap(), "token expired");
    let r = sse_get(&server, &json!({"token": "garbage"})).await;
    assert_eq!(r.status(), 403);
    assert_eq!(r.text().await.unwrap(), "who are you");
    let r = sse_get(&server, &json!({})).await;
    assert_eq!(r.status(), 500);

    // uni_http_stream maps error 109 to the configured disconnect.
    let mut stream = http_stream(&server, json!({"token": expired_token("fay")})).await;
    assert_eq!(
        stream.next().await,
        Some(json!({"disconnect": {"code": 4509, "reason": "refresh token"}}))
    );

    // Pings are `{}` pushes, and the connect push announces their interval.
    let mut stream = http_stream(&server, json!({"token": token_with_channels("fay", &[])})).await;
    let first = stream.next_raw().await.unwrap();
    assert_eq!(connect_push(&first)["ping"], 1, "{first}");
    let ping = tokio::time::timeout(Duration::from_secs(5), stream.next_raw())
        .await
        .expect("a ping within 5 s");
    assert_eq!(ping, Some(json!({})));
}

// ---- uni_websocket with permessage-deflate ---------------------------------------------

/// A raw `uni_websocket` client that offers permessage-deflate (no WebSocket library here
/// speaks it): the handshake, then frames read by hand and inflated as RFC 7692 says.
struct DeflateClient {
    stream: tokio::net::TcpStream,
    /// The response's `Sec-WebSocket-Extensions`, lower-cased (empty when none).
    extensions: String,
}

impl DeflateClient {
    async fn open(server: &Server, connect: &Value) -> DeflateClient {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let addr = server
            .ws_url()
            .trim_start_matches("ws://")
            .trim_end_matches("/connection/websocket")
            .to_string();
        let mut stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
        let request = format!(
            "GET /connection/uni_websocket?cf_connect={} HTTP/1.1\r\nHost: {addr}\r\n\
             Upgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
             Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n",
            escape(&connect.to_string())
        );
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut head = Vec::new();
        while !head.ends_with(b"\r\n\r\n") {
            let mut b = [0u8; 1];
            stream.read_exact(&mut b).await.unwrap();
            head.push(b[0]);
        }
        let head = String::from_utf8(head).unwrap().to_ascii_lowercase();
        assert!(head.starts_with("http/1.1 101"), "{head}");
        let extensions = head
            .lines()
            .find_map(|l| l.strip_prefix("sec-websocket-extensions:"))
            .unwrap_or("")
            .trim()
            .to_string();
        DeflateClient { stream, extensions }
    }

    /// The next data or close frame: (compressed?, payload inflated when it was).
    async fn frame(&mut self) -> (u8, bool, Vec<u8>) {
        use tokio::io::AsyncReadExt;
        loop {
            let mut h = [0u8; 2];
            tokio::time::timeout(TIMEOUT, self.stream.read_exact(&mut h))
                .await
                .expect("frame in time")
                .unwrap();
            let len = match h[1] & 0x7F {
                126 => usize::from(self.stream.read_u16().await.unwrap()),
                127 => self.stream.read_u64().await.unwrap() as usize,
                n => usize::from(n),
            };
            let mut payload = vec![0u8; len];
            self.stream.read_exact(&mut payload).await.unwrap();
            let opcode = h[0] & 0x0F;
            if opcode == 0x9 {
                continue;
            }
            let compressed = h[0] & 0x40 != 0;
            if compressed {
                payload = inflate(&payload);
            }
            return (opcode, compressed, payload);
        }
    }

    /// The next push (protocol pings skipped), and whether its frame was compressed.
    async fn push(&mut self) -> (bool, Value) {
        loop {
            let (opcode, compressed, payload) = self.frame().await;
            assert_eq!(
                opcode,
                0x1,
                "text frame: {:?}",
                String::from_utf8_lossy(&payload)
            );
            let value: Value = serde_json::from_slice(&payload).expect("push is JSON");
            if value != json!({}) {
                return (compressed, value);
            }
        }
    }
}

fn inflate(payload: &[u8]) -> Vec<u8> {
    let mut d = flate2::Decompress::new(false);
    let input = [payload, &[0, 0, 0xff, 0xff]].concat();
    let mut out = Vec::with_capacity(1 << 20);
    d.decompress_vec(&input, &mut out, flate2::FlushDecompress::Sync)
        .expect("valid deflate");
    out
}

fn deflate(data: &[u8]) -> Vec<u8> {
    let mut c = flate2::Compress::new(flate2::Compression::new(9), false);
    let mut out = Vec::with_capacity(data.len() + 64);
    c.compress_vec(data, &mut out, flate2::FlushCompress::Sync)
        .unwrap();
    out.truncate(out.len() - 4);
    out
}

/// A masked client frame.
fn masked(first: u8, payload: &[u8]) -> Vec<u8> {
    let mask = [7u8, 1, 9, 3];
    let mut f = vec![first];
    match payload.len() {
        n if n < 126 => f.push(0x80 | n as u8),
        n if n <= 0xFFFF => {
            f.push(0x80 | 126);
            f.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            f.push(0x80 | 127);
            f.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    f.extend_from_slice(&mask);
    f.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    f
}

#[tokio::test]
async fn uni_websocket_compression() {
    use tokio::io::AsyncWriteExt;
    let server = Server::start(config(json!({
        "uni_websocket": {"compression": true, "compression_min_size": 100}
    })));
    let connect = json!({"token": token_with_channels("alice", &["news"])});
    let mut ws = DeflateClient::open(&server, &connect).await;
    assert_eq!(
        ws.extensions,
        "permessage-deflate; server_no_context_takeover; client_no_context_takeover"
    );
    let (_, first) = ws.push().await;
    connect_push(&first);

    // Over compression_min_size: compressed (RSV1), and inflates to the push.
    let text = "the quick brown fox jumps over the lazy dog ".repeat(20);
    publish(&server, "news", json!({"text": text})).await;
    let (compressed, push) = ws.push().await;
    assert!(compressed, "a large push is compressed");
    assert_eq!(
        push,
        json!({"channel": "news", "pub": {"data": {"text": text}}})
    );
    // At most compression_min_size: sent as it is.
    publish(&server, "news", json!({"n": 1})).await;
    let (compressed, push) = ws.push().await;
    assert!(!compressed, "a small push is not compressed");
    assert_eq!(push, json!({"channel": "news", "pub": {"data": {"n": 1}}}));

    // A decompression bomb: about 2 KB on the wire, 1 MB inflated, over the default
    // limit of ten times message_size_limit (640 KiB): 1009.
    let bomb = deflate(&vec![b' '; 1 << 20]);
    assert!(bomb.len() < 65536, "{}", bomb.len());
    ws.stream.write_all(&masked(0xC1, &bomb)).await.unwrap();
    let (opcode, _, payload) = ws.frame().await;
    assert_eq!(opcode, 0x8);
    assert_eq!(u16::from_be_bytes([payload[0], payload[1]]), 1009);
}

#[tokio::test]
async fn uni_websocket_compression_is_off_by_default() {
    use tokio::io::AsyncWriteExt;
    let server = Server::start(config(json!({})));
    let connect = json!({"token": token_with_channels("bob", &["news"])});
    let mut ws = DeflateClient::open(&server, &connect).await;
    assert_eq!(ws.extensions, "", "nothing negotiated");
    let (compressed, first) = ws.push().await;
    assert!(!compressed);
    connect_push(&first);
    let text = "x".repeat(500);
    publish(&server, "news", json!(text)).await;
    assert_eq!(
        ws.push().await,
        (false, json!({"channel": "news", "pub": {"data": text}}))
    );
    // RSV1 without the extension is a protocol error.
    ws.stream
        .write_all(&masked(0xC1, &deflate(b"{}")))
        .await
        .unwrap();
    let (opcode, _, payload) = ws.frame().await;
    assert_eq!(opcode, 0x8);
    assert_eq!(u16::from_be_bytes([payload[0], payload[1]]), 1002);
}
