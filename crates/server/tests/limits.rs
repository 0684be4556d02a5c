//! Centrifugo's limits: subscriptions per connection, connections per user and per node.

mod support;

use serde_json::json;
use support::{Server, WsClient};

fn config(client: serde_json::Value) -> serde_json::Value {
    let mut client = client;
    client["allow_anonymous_connect_without_token"] = json!(true);
    client["token"] = json!({"hmac_secret_key": "secret"});
    json!({
        "client": client,
        "channel": {"without_namespace": {"allow_subscribe_for_client": true, "allow_subscribe_for_anonymous": true}},
    })
}

#[tokio::test]
async fn channel_limit_answers_106() {
    let server = Server::start(config(json!({"channel_limit": 2})));
    let (mut c, reply) = WsClient::connect(&server.ws_url(), json!({})).await;
    reply.ok();
    c.call("subscribe", json!({"channel": "a"})).await.ok();
    c.call("subscribe", json!({"channel": "b"})).await.ok();
    let third = c.call("subscribe", json!({"channel": "c"})).await;
    assert_eq!(third.error(), Some(106));
}

#[tokio::test]
async fn user_connection_limit_closes_with_3504() {
    let server = Server::start(config(json!({"user_connection_limit": 1})));
    let token = support::hs256("secret", json!({"sub": "42"}));
    let (_first, reply) = WsClient::connect(&server.ws_url(), json!({"token": token})).await;
    reply.ok();
    let (_second, reply) = WsClient::connect(&server.ws_url(), json!({"token": token})).await;
    assert_eq!(reply.closed(), Some(3504));
}

#[tokio::test]
async fn node_connection_limit_answers_503_before_the_upgrade() {
    let server = Server::start(config(json!({"connection_limit": 1})));
    let (_first, reply) = WsClient::connect(&server.ws_url(), json!({})).await;
    reply.ok();
    let refused = tokio_tungstenite::connect_async(server.ws_url()).await;
    match refused {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 503)
        }
        other => panic!("expected HTTP 503, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------
// Hostile input and hostile clients.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

const API_KEY: &str = "limits-key";

fn open_config(extra: serde_json::Value) -> serde_json::Value {
    let mut c = config(json!({}));
    c["http_api"] = json!({"key": API_KEY});
    gyre_testkit::merge_config(&mut c, extra);
    c
}

async fn api(server: &support::Server, method: &str, body: Vec<u8>) -> (u16, serde_json::Value) {
    let r = reqwest::Client::new()
        .post(format!("{}/api/{method}", server.http_url()))
        .header("X-API-Key", API_KEY)
        .body(body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(json!(text)))
}

/// A WebSocket whose reading side the test controls: the kernel's receive buffer is
/// shrunk so that a client which stops reading backs up into the server quickly.
async fn raw_ws(
    server: &support::Server,
) -> tokio_tungstenite::WebSocketStream<tokio::net::TcpStream> {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let stream = socket.connect(server.addr()).await.unwrap();
    let (ws, _) = tokio_tungstenite::client_async(server.ws_url(), stream)
        .await
        .unwrap();
    ws
}

/// The close code the server ends `ws` with, reading (and dropping) whatever came before.
async fn close_code(
    ws: &mut tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>,
) -> Option<u16> {
    loop {
        match tokio::time::timeout(support::TIMEOUT, ws.next()).await {
            Ok(Some(Ok(Message::Close(frame)))) => return frame.map(|f| u16::from(f.code)),
            Ok(Some(Ok(_))) => continue,
            Ok(Some(Err(_)) | None) => return None,
            Err(_) => panic!("the server did not close the connection in time"),
        }
    }
}

#[tokio::test]
async fn api_body_over_64_mib_answers_413_with_a_json_error() {
    let server = Server::start(open_config(json!({})));
    let data = "x".repeat(64 << 20);
    let body = format!(r#"{{"channel":"big","data":"{data}"}}"#).into_bytes();
    let (status, body) = api(&server, "publish", body).await;
    assert_eq!(status, 413);
    assert_eq!(body["code"], 107, "{body}");
    assert_eq!(body["message"], "request body too large");
    // The same channel takes a normal publication afterwards.
    let (status, body) = api(
        &server,
        "publish",
        br#"{"channel":"big","data":{}}"#.to_vec(),
    )
    .await;
    assert_eq!((status, body.get("error")), (200, None));
}

#[tokio::test]
async fn websocket_message_over_the_limit_closes_with_1009() {
    let server = Server::start(open_config(
        json!({"websocket": {"message_size_limit": 1024}}),
    ));
    let (mut client, reply) = WsClient::connect(&server.ws_url(), json!({})).await;
    reply.ok();
    // Just under the limit is served.
    let pad = "x".repeat(900);
    client
        .call("rpc", json!({"method": "m", "data": {"p": pad}}))
        .await
        .error()
        .expect("no RPC handler: an error reply, not a close");
    let pad = "x".repeat(2000);
    client
        .send(json!({"id": 99, "rpc": {"method": "m", "data": {"p": pad}}}))
        .await;
    assert_eq!(client.closed().await.0, u16::from(CloseCode::Size));
}

#[tokio::test]
async fn a_client_that_stops_reading_is_closed_with_3008_and_others_get_everything() {
    // A long write timeout: the server keeps trying to deliver its close frame until the
    // slow client reads again, so the test sees the code (with the default 1 s the socket
    // is simply dropped, which cuts the client just the same).
    let server = Server::start(open_config(json!({
        "client": {"queue_max_size": 1048576},
        "websocket": {"write_timeout": "30s"}
    })));
    let (mut reader, reply) = WsClient::connect(&server.ws_url(), json!({})).await;
    reply.ok();
    reader
        .call("subscribe", json!({"channel": "flood"}))
        .await
        .ok();

    let mut slow = raw_ws(&server).await;
    slow.send(Message::text(r#"{"id":1,"connect":{}}"#))
        .await
        .unwrap();
    slow.send(Message::text(r#"{"id":2,"subscribe":{"channel":"flood"}}"#))
        .await
        .unwrap();
    // Both replies before the slow client stops reading.
    let mut replies = 0;
    while replies < 2 {
        if let Some(Ok(Message::Text(t))) = slow.next().await {
            replies += t.lines().filter(|l| l.contains("\"id\"")).count();
        }
    }

    // 16 MiB in 8 KiB publications: far beyond the queue and the socket buffers. The
    // reader drains concurrently, as a healthy client does.
    const COUNT: u64 = 2048;
    let drain = tokio::spawn(async move {
        let mut seen = Vec::new();
        while (seen.len() as u64) < COUNT {
            let p = reader
                .publication("flood")
                .await
                .expect("reader stays open");
            seen.push(p["data"]["n"].as_u64().unwrap());
        }
        seen
    });
    let pad = "y".repeat(8192);
    // Batches of 256 KiB stay well inside the 1 MiB queue of a client that reads.
    for batch in 0..(COUNT / 32) {
        let commands: Vec<_> = (0..32)
            .map(|i| json!({"publish": {"channel": "flood", "data": {"n": batch * 32 + i, "p": pad}}}))
            .collect();
        let body = json!({"commands": commands}).to_string().into_bytes();
        let (status, _) = api(&server, "batch", body).await;
        assert_eq!(status, 200);
    }
    let seen = tokio::time::timeout(Duration::from_secs(60), drain)
        .await
        .expect("the reader gets everything in time")
        .unwrap();
    assert_eq!(seen, (0..COUNT).collect::<Vec<_>>(), "in order, none lost");

    // The slow client finds, after what fit into the buffers, the server's close.
    assert_eq!(close_code(&mut slow).await, Some(3008));
}

#[tokio::test]
async fn a_silent_client_is_closed_after_ping_interval_and_pong_timeout() {
    let server = Server::start(open_config(
        json!({"client": {"ping_interval": "1s", "pong_timeout": "500ms"}}),
    ));
    // Handshake and connect, then silence: the client never answers the server's ping,
    // as a peer behind a dead NAT entry would not.
    let mut silent = raw_ws(&server).await;
    silent
        .send(Message::text(r#"{"id":1,"connect":{}}"#))
        .await
        .unwrap();
    assert_eq!(close_code(&mut silent).await, Some(3012));
    // And the node forgets it.
    let mut clients = u64::MAX;
    for _ in 0..100 {
        let (_, info) = api(&server, "info", b"{}".to_vec()).await;
        clients = info["result"]["nodes"][0]["num_clients"]
            .as_u64()
            .unwrap_or(0);
        if clients == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(clients, 0);
}

#[tokio::test]
async fn a_connect_flood_is_throttled_with_503_and_established_clients_keep_working() {
    let server = Server::start(open_config(json!({"client": {"connection_rate_limit": 5}})));
    let (mut established, reply) = WsClient::connect(&server.ws_url(), json!({})).await;
    reply.ok();
    established
        .call("subscribe", json!({"channel": "news"}))
        .await
        .ok();

    let url = server.ws_url();
    let attempts: Vec<_> = (0..100)
        .map(|_| {
            let url = url.clone();
            tokio::spawn(async move { tokio_tungstenite::connect_async(url).await })
        })
        .collect();
    let (mut accepted, mut refused) = (Vec::new(), 0);
    for attempt in attempts {
        match attempt.await.unwrap() {
            Ok((ws, _)) => accepted.push(ws),
            Err(tokio_tungstenite::tungstenite::Error::Http(r)) => {
                assert_eq!(r.status(), 503);
                refused += 1;
            }
            Err(e) => panic!("unexpected failure: {e}"),
        }
    }
    // A burst of five, then five a second: most of a hundred at once are refused.
    assert!(
        refused >= 50,
        "refused {refused}, accepted {}",
        accepted.len()
    );
    assert!(!accepted.is_empty() || refused == 100);

    // The established client is untouched by the flood.
    let (status, _) = api(
        &server,
        "publish",
        br#"{"channel":"news","data":{"after":"flood"}}"#.to_vec(),
    )
    .await;
    assert_eq!(status, 200);
    let p = established.publication("news").await.expect("still open");
    assert_eq!(p["data"]["after"], "flood");
    // Once the bucket refills, new clients are admitted again.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let (_later, reply) = WsClient::connect(&server.ws_url(), json!({})).await;
    reply.ok();
    // The refusal is logged as a warning (throttled, so at least once).
    assert!(server.logs().contains("connection rate limit reached"));
}
