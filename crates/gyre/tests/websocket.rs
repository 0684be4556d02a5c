//! The library served over a real WebSocket, with tokio-tungstenite as the peer.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use gyre::{
    ConnectReply, Credentials, Node, PublishOptions, PublishReply, SubscribeOptions,
    SubscribeReply, WebSocketConfig, WebSocketHandler,
};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn serve() -> (Node, String) {
    serve_with(WebSocketConfig::default()).await
}

async fn serve_with(config: WebSocketConfig) -> (Node, String) {
    let node = Node::builder().build();
    node.on_connecting(|e| async move { Ok(ConnectReply::new(Credentials::new(e.token))) });
    node.on_connect(|client| {
        client.on_subscribe(|_| async {
            Ok(SubscribeReply::new(
                SubscribeOptions::new()
                    .history(100, Duration::from_secs(60))
                    .recovery(true),
            ))
        });
        client.on_publish(|_| async {
            Ok(PublishReply::new(
                PublishOptions::new().history(100, Duration::from_secs(60)),
            ))
        });
    });
    node.run().await.unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let handler = WebSocketHandler::new(node.clone(), config);
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let service = hyper_util::service::TowerToHyperService::new(handler.clone());
            tokio::spawn(async move {
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .with_upgrades()
                    .await;
            });
        }
    });
    (node, format!("ws://{addr}/connection/websocket"))
}

async fn open(url: &str) -> Ws {
    tokio_tungstenite::connect_async(url).await.unwrap().0
}

async fn next_text(ws: &mut Ws) -> String {
    let msg = tokio::time::timeout(Duration::from_secs(5), ws.next())
        .await
        .expect("a frame in time")
        .expect("stream open")
        .expect("frame ok");
    match msg {
        Message::Text(t) => t.to_string(),
        other => panic!("unexpected frame {other:?}"),
    }
}

async fn close_code(ws: &mut Ws) -> u16 {
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(5), ws.next())
            .await
            .expect("close in time");
        match msg {
            Some(Ok(Message::Close(Some(frame)))) => return u16::from(frame.code),
            Some(Ok(Message::Close(None))) | None => return 1005,
            Some(Ok(_)) => continue,
            Some(Err(e)) => panic!("error before close: {e}"),
        }
    }
}

async fn connected_subscriber(url: &str, user: &str, channel: &str) -> Ws {
    let mut ws = open(url).await;
    ws.send(Message::text(format!(
        "{{\"id\":1,\"connect\":{{\"token\":\"{user}\"}}}}\n{{\"id\":2,\"subscribe\":{{\"channel\":\"{channel}\"}}}}"
    )))
    .await
    .unwrap();
    let mut lines = Vec::new();
    while lines.len() < 2 {
        lines.extend(next_text(&mut ws).await.split('\n').map(str::to_owned));
    }
    assert!(
        lines[0].starts_with(r#"{"id":1,"connect":{"client":""#),
        "{lines:?}"
    );
    assert!(
        lines[1].starts_with(r#"{"id":2,"subscribe":{"#),
        "{lines:?}"
    );
    ws
}

#[tokio::test]
async fn publications_reach_websocket_subscribers_in_order() {
    let (node, url) = serve().await;
    let mut ws = connected_subscriber(&url, "1", "news").await;
    for i in 1..=50 {
        node.publish(
            "news",
            format!(r#"{{"n":{i}}}"#),
            PublishOptions::new().history(100, Duration::from_secs(60)),
        )
        .await
        .unwrap();
    }
    let mut offsets = Vec::new();
    while offsets.len() < 50 {
        for line in next_text(&mut ws).await.split('\n') {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            offsets.push(v["push"]["pub"]["offset"].as_u64().unwrap());
        }
    }
    assert_eq!(offsets, (1..=50).collect::<Vec<_>>());
}

#[tokio::test]
async fn bad_input_closes_only_the_offender() {
    let (node, url) = serve().await;
    let mut healthy = connected_subscriber(&url, "ok", "room").await;

    let mut bad = open(&url).await;
    bad.send(Message::text("{not json")).await.unwrap();
    assert_eq!(close_code(&mut bad).await, 3501);

    let mut bad = open(&url).await;
    bad.send(Message::text(r#"{"id":1,"subscribe":{"channel":"x"}}"#))
        .await
        .unwrap();
    assert_eq!(close_code(&mut bad).await, 3501);

    let mut bad = open(&url).await;
    bad.send(Message::text(r#"{"id":1,"connect":{}}"#))
        .await
        .unwrap();
    next_text(&mut bad).await;
    bad.send(Message::text(r#"{"id":2,"unknown":{}}"#))
        .await
        .unwrap();
    assert_eq!(close_code(&mut bad).await, 3501);

    let mut bad = open(&url).await;
    bad.send(Message::text("x".repeat(70_000))).await.unwrap();
    assert_eq!(close_code(&mut bad).await, u16::from(CloseCode::Size));

    let mut bad = open(&format!("{url}?format=protobuf")).await;
    bad.send(Message::binary(vec![0x7f, 0x01, 0x02]))
        .await
        .unwrap();
    assert_eq!(close_code(&mut bad).await, 3501);

    node.publish("room", r#"{"still":"here"}"#, PublishOptions::new())
        .await
        .unwrap();
    let got = next_text(&mut healthy).await;
    assert_eq!(
        got,
        r#"{"push":{"channel":"room","pub":{"data":{"still":"here"}}}}"#
    );
}

#[tokio::test]
async fn shutdown_closes_clients_with_3001() {
    let (node, url) = serve().await;
    let mut ws = connected_subscriber(&url, "1", "a").await;
    node.shutdown().await;
    assert_eq!(close_code(&mut ws).await, 3001);
    // New connections during shutdown are refused the same way.
    let mut late = open(&url).await;
    assert_eq!(close_code(&mut late).await, 3001);
}

/// Frames received within `window`, split into their lines.
async fn frames_within(ws: &mut Ws, window: Duration) -> Vec<Vec<String>> {
    let mut frames = Vec::new();
    let deadline = tokio::time::Instant::now() + window;
    while let Ok(Some(Ok(Message::Text(t)))) = tokio::time::timeout_at(deadline, ws.next()).await {
        frames.push(t.split('\n').map(str::to_owned).collect());
    }
    frames
}

#[tokio::test]
async fn write_delay_puts_messages_that_follow_into_one_frame() {
    for delay in [Duration::ZERO, Duration::from_millis(200)] {
        let mut config = WebSocketConfig::default();
        config.write_delay = delay;
        let (node, url) = serve_with(config).await;
        let mut ws = connected_subscriber(&url, "1", "news").await;
        for i in 0..3 {
            node.publish("news", format!(r#"{{"n":{i}}}"#), PublishOptions::new())
                .await
                .unwrap();
            // Far apart without a delay, well within it with one.
            tokio::time::sleep(Duration::from_millis(30)).await;
        }
        let frames = frames_within(&mut ws, Duration::from_millis(400)).await;
        if delay.is_zero() {
            // Written as they come (a stalled machine may still merge two of them).
            assert!(frames.len() >= 2, "no delay: {frames:?}");
        } else {
            assert_eq!(frames.len(), 1, "delay {delay:?}: {frames:?}");
        }
        assert_eq!(frames.concat().len(), 3);
    }
}
