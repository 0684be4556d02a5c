//! The client against a real Gyre server over WebSocket, JSON and Protobuf.

use std::fmt::Debug;
use std::time::Duration;

use gyre::{
    Config, ConnectReply, Credentials, Disconnect, Node, PublishOptions, PublishReply, RpcReply,
    SubscribeOptions, SubscribeReply, WebSocketConfig, WebSocketHandler,
};
use gyre_client::{
    Client, ClientConfig, ClientError, ClientEvent, HistoryOptions, Protocol, SubscriptionConfig,
    SubscriptionEvent,
};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::mpsc::UnboundedReceiver;

const WAIT: Duration = Duration::from_secs(10);

fn history() -> PublishOptions {
    PublishOptions::new().history(100, Duration::from_secs(300))
}

/// A node on 127.0.0.1:0 whose users are their tokens and may do everything; each user
/// is also subscribed server-side to `personal:<user>`.
async fn serve() -> (Node, String) {
    let mut config = Config::default();
    config.ping_interval = Duration::from_secs(1);
    config.pong_timeout = Duration::from_millis(500);
    let node = Node::builder().config(config).build();
    node.on_connecting(|e| async move {
        let personal = format!("personal:{}", e.token);
        Ok(ConnectReply::new(Credentials::new(e.token)).subscribe(
            personal,
            SubscribeOptions::new()
                .history(100, Duration::from_secs(300))
                .recovery(true),
        ))
    });
    node.on_connect(|client| {
        client.on_subscribe(|_| async {
            Ok(SubscribeReply::new(
                SubscribeOptions::new()
                    .history(100, Duration::from_secs(300))
                    .recovery(true)
                    .presence(true)
                    .join_leave(true),
            ))
        });
        client.on_publish(|_| async { Ok(PublishReply::new(history())) });
        client.on_rpc(|e| async move {
            match e.method.as_str() {
                "echo" => Ok(RpcReply::new(e.data)),
                _ => Err(gyre::Error::METHOD_NOT_FOUND.into()),
            }
        });
        let me = client.clone();
        client.on_message(move |e| {
            // Echo `send` back as a `message` push.
            let result = me.send(e.data).map_err(Into::into);
            async move { result }
        });
        client.on_presence(|_| async { Ok(()) });
        client.on_presence_stats(|_| async { Ok(()) });
        client.on_history(|_| async { Ok(()) });
    });
    node.run().await.unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let handler = WebSocketHandler::new(node.clone(), WebSocketConfig::default());
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
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

/// Skips events until one matches.
async fn wait_for<T: Debug, R>(
    rx: &mut UnboundedReceiver<T>,
    what: &str,
    mut f: impl FnMut(&T) -> Option<R>,
) -> R {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let event = tokio::time::timeout_at(deadline, rx.recv())
            .await
            .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
            .expect("event stream open");
        if let Some(r) = f(&event) {
            return r;
        }
    }
}

async fn full_session(protocol: Protocol) {
    let (node, url) = serve().await;
    let config = ClientConfig {
        token: "u1".into(),
        protocol,
        ..Default::default()
    };
    let (client, mut events) = Client::new(url, config);
    let sub_config = SubscriptionConfig {
        recoverable: true,
        positioned: true,
        join_leave: true,
        ..Default::default()
    };
    let (sub, mut sub_events) = client.new_subscription("chat", sub_config).await.unwrap();
    sub.subscribe();
    client.connect();

    // Connect, server-side subscription, client-side subscription.
    let client_id = wait_for(&mut events, "connected", |e| match e {
        ClientEvent::Connected { client, .. } => Some(client.clone()),
        _ => None,
    })
    .await;
    assert!(!client_id.is_empty());
    let ctx = wait_for(&mut events, "server subscribed", |e| match e {
        ClientEvent::ServerSubscribed(ctx) => Some(ctx.clone()),
        _ => None,
    })
    .await;
    assert_eq!(ctx.channel, "personal:u1");
    assert!(ctx.recoverable);
    let ctx = wait_for(&mut sub_events, "subscribed", |e| match e {
        SubscriptionEvent::Subscribed(ctx) => Some(ctx.clone()),
        _ => None,
    })
    .await;
    assert!(ctx.recoverable && !ctx.was_recovering);

    // Publications from the server and from the client itself.
    node.publish("chat", r#"{"n":1}"#, history()).await.unwrap();
    sub.publish(r#"{"n":2}"#).await.unwrap();
    for n in 1..=2u64 {
        let p = wait_for(&mut sub_events, "publication", |e| match e {
            SubscriptionEvent::Publication(p) => Some(p.clone()),
            _ => None,
        })
        .await;
        assert_eq!(p.offset, n);
        assert_eq!(p.data, format!("{{\"n\":{n}}}").into_bytes());
        if n == 2 {
            assert_eq!(p.info.as_ref().map(|i| i.user.as_str()), Some("u1"));
        }
    }
    node.publish("personal:u1", r#"{"p":1}"#, history())
        .await
        .unwrap();
    let (channel, p) = wait_for(&mut events, "server publication", |e| match e {
        ClientEvent::ServerPublication {
            channel,
            publication,
        } => Some((channel.clone(), publication.clone())),
        _ => None,
    })
    .await;
    assert_eq!((channel.as_str(), p.offset), ("personal:u1", 1));

    // RPC, send, presence, presence stats, history.
    let data = client.rpc("echo", r#"{"x":[1,2]}"#).await.unwrap();
    assert_eq!(&data[..], br#"{"x":[1,2]}"#);
    client.send(r#"{"hello":true}"#).await.unwrap();
    let message = wait_for(&mut events, "message", |e| match e {
        ClientEvent::Message(m) => Some(m.clone()),
        _ => None,
    })
    .await;
    assert_eq!(&message[..], br#"{"hello":true}"#);
    let presence = sub.presence().await.unwrap();
    assert_eq!(presence.len(), 1);
    assert_eq!(presence[&client_id].user, "u1");
    let stats = sub.presence_stats().await.unwrap();
    assert_eq!((stats.num_clients, stats.num_users), (1, 1));
    let h = sub
        .history(HistoryOptions {
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(h.offset, 2);
    let offsets: Vec<u64> = h.publications.iter().map(|p| p.offset).collect();
    assert_eq!(offsets, [1, 2]);
    // A server error is typed.
    let err = client.rpc("missing", "{}").await.unwrap_err();
    assert_eq!(err, ClientError::Server(gyre::Error::METHOD_NOT_FOUND));

    // Ping/pong: the server pings every second and wants a pong within 500 ms; after
    // several rounds the connection is still the same one.
    while events.try_recv().is_ok() {}
    tokio::time::sleep(Duration::from_millis(3500)).await;
    while let Ok(e) = events.try_recv() {
        assert!(
            !matches!(e, ClientEvent::Connecting(_) | ClientEvent::Disconnected(_)),
            "connection dropped during ping rounds: {e:?}"
        );
    }
    assert_eq!(client.rpc("echo", "1").await.unwrap(), "1".as_bytes());

    // Forced reconnect: publications made while away are recovered.
    node.disconnect("u1", Disconnect::FORCE_RECONNECT).await;
    let d = wait_for(&mut events, "connecting", |e| match e {
        ClientEvent::Connecting(d) => Some(d.clone()),
        _ => None,
    })
    .await;
    assert_eq!(d.code, 3011);
    node.publish("chat", r#"{"n":3}"#, history()).await.unwrap();
    node.publish("chat", r#"{"n":4}"#, history()).await.unwrap();
    node.publish("personal:u1", r#"{"p":2}"#, history())
        .await
        .unwrap();
    let ctx = wait_for(&mut sub_events, "resubscribed", |e| match e {
        SubscriptionEvent::Subscribed(ctx) => Some(ctx.clone()),
        _ => None,
    })
    .await;
    assert!(ctx.was_recovering && ctx.recovered, "{ctx:?}");
    for n in 3..=4u64 {
        let p = wait_for(&mut sub_events, "recovered publication", |e| match e {
            SubscriptionEvent::Publication(p) => Some(p.clone()),
            _ => None,
        })
        .await;
        assert_eq!(p.offset, n);
    }
    let ctx = wait_for(&mut events, "server resubscribed", |e| match e {
        ClientEvent::ServerSubscribed(ctx) => Some(ctx.clone()),
        _ => None,
    })
    .await;
    assert!(ctx.was_recovering && ctx.recovered, "{ctx:?}");
    let p = wait_for(&mut events, "recovered server publication", |e| match e {
        ClientEvent::ServerPublication { publication, .. } => Some(publication.clone()),
        _ => None,
    })
    .await;
    assert_eq!(p.offset, 2);

    // Live again after recovery.
    node.publish("chat", r#"{"n":5}"#, history()).await.unwrap();
    let p = wait_for(&mut sub_events, "live publication", |e| match e {
        SubscriptionEvent::Publication(p) => Some(p.clone()),
        _ => None,
    })
    .await;
    assert_eq!(p.offset, 5);

    client.disconnect();
    let d = wait_for(&mut events, "disconnected", |e| match e {
        ClientEvent::Disconnected(d) => Some(d.clone()),
        _ => None,
    })
    .await;
    assert_eq!(d.code, 0);
    assert_eq!(
        client.rpc("echo", "1").await,
        Err(ClientError::Disconnected)
    );
}

#[tokio::test]
async fn json_session_against_gyre() {
    full_session(Protocol::Json).await;
}

#[tokio::test]
async fn protobuf_session_against_gyre() {
    full_session(Protocol::Protobuf).await;
}

#[tokio::test]
async fn terminal_disconnect_stops_reconnecting() {
    let (node, url) = serve().await;
    let (client, mut events) = Client::new(
        url,
        ClientConfig {
            token: "u2".into(),
            ..Default::default()
        },
    );
    client.connect();
    wait_for(&mut events, "connected", |e| {
        matches!(e, ClientEvent::Connected { .. }).then_some(())
    })
    .await;
    node.disconnect("u2", Disconnect::FORCE_NO_RECONNECT).await;
    let d = wait_for(&mut events, "disconnected", |e| match e {
        ClientEvent::Disconnected(d) => Some(d.clone()),
        ClientEvent::Connecting(d) => panic!("reconnecting after {d:?}"),
        _ => None,
    })
    .await;
    assert_eq!(d.code, 3503);
}
