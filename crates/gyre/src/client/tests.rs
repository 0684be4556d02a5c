//! Session tests without sockets: commands go in through `handle_message`, replies are
//! read back from the outbound queue and decoded with the real codec.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use gyre_protocol::{Protocol, proto};

use crate::queue::Drained;
use crate::session::{Session, SessionFactory, TransportInfo};
use crate::{
    ClientSession, Config, ConnectReply, Credentials, DeltaType, Disconnect, Error, Node,
    PublishOptions, PublishReply, RefreshReply, RpcReply, SubscribeOptions, SubscribeReply,
};

fn transport(protocol: Protocol) -> TransportInfo {
    TransportInfo {
        name: "test",
        protocol,
        emulation: false,
        unidirectional: false,
        native_ping_pong: false,
    }
}

fn parts() -> http::request::Parts {
    http::Request::new(()).into_parts().0
}

/// A node whose connections are the token's user and may do everything.
fn open_node(config: Config) -> Node {
    let node = Node::builder().config(config).build();
    node.on_connecting(|event| async move {
        Ok(ConnectReply::new(Credentials::new(event.token)).data(Bytes::new()))
    });
    node.on_connect(|client| {
        client.on_subscribe(|e| async move {
            let mut options = SubscribeOptions::new()
                .history(10, Duration::from_secs(300))
                .recovery(true)
                .presence(true)
                .join_leave(true);
            if e.channel.starts_with("delta") {
                options = options.allowed_delta_types([DeltaType::Fossil]);
            }
            if e.channel.starts_with("tagged") {
                options = options.allow_tags_filter(true);
            }
            Ok(SubscribeReply::new(options))
        });
        client.on_publish(|_| async {
            Ok(PublishReply::new(
                PublishOptions::new().history(10, Duration::from_secs(300)),
            ))
        });
        client.on_rpc(|e| async move {
            if e.method == "echo" {
                Ok(RpcReply::new(e.data))
            } else {
                Err(Error::METHOD_NOT_FOUND.into())
            }
        });
        client.on_presence(|_| async { Ok(()) });
        client.on_presence_stats(|_| async { Ok(()) });
        client.on_history(|_| async { Ok(()) });
        client.on_refresh(|_| async { Ok(RefreshReply::new(0)) });
    });
    node
}

struct Conn {
    session: ClientSession,
    protocol: Protocol,
}

impl Conn {
    fn open(node: &Node) -> Self {
        Self::open_with(node, Protocol::Json)
    }

    fn open_with(node: &Node, protocol: Protocol) -> Self {
        let session = node.new_session(transport(protocol), &parts()).unwrap();
        Conn { session, protocol }
    }

    async fn send(&self, frame: &str) -> Result<(), Disconnect> {
        self.session
            .handle_message(Bytes::copy_from_slice(frame.as_bytes()))
            .await
    }

    async fn connect(node: &Node, user: &str) -> Self {
        let conn = Self::open(node);
        conn.send(&format!(r#"{{"id":1,"connect":{{"token":"{user}"}}}}"#))
            .await
            .unwrap();
        let replies = conn.replies();
        assert!(replies[0].connect.is_some(), "{replies:?}");
        conn
    }

    /// Everything queued so far, decoded, plus the close if one was requested.
    fn drain(&self) -> (Vec<proto::Reply>, Option<Disconnect>) {
        let mut messages = Vec::new();
        let mut close = None;
        loop {
            match self.session.outbound().drain(0, &mut messages) {
                Drained::Messages => continue,
                Drained::Empty => break,
                Drained::Close(d) => {
                    close = Some(d);
                    break;
                }
            }
        }
        let replies = messages
            .into_iter()
            .flat_map(|m| gyre_protocol::decode_replies(self.protocol, m))
            .map(|r| r.expect("server output decodes"))
            .collect();
        (replies, close)
    }

    fn replies(&self) -> Vec<proto::Reply> {
        self.drain().0
    }

    fn publications(&self, channel: &str) -> Vec<proto::Publication> {
        self.replies()
            .into_iter()
            .filter_map(|r| r.push)
            .filter(|p| p.channel == channel)
            .filter_map(|p| p.r#pub)
            .collect()
    }
}

fn history() -> PublishOptions {
    PublishOptions::new().history(10, Duration::from_secs(300))
}

#[tokio::test]
async fn connect_subscribe_and_receive_library_publications() {
    let node = open_node(Config::default());
    node.run().await.unwrap();
    let conn = Conn::connect(&node, "42").await;
    conn.send(r#"{"id":2,"subscribe":{"channel":"news"}}"#)
        .await
        .unwrap();
    let replies = conn.replies();
    let sub = replies[0].subscribe.as_ref().expect("subscribe result");
    assert_eq!(replies[0].id, 2);
    assert!(sub.recoverable && sub.positioned);
    assert_eq!(sub.offset, 0);
    assert!(!sub.epoch.is_empty());

    node.publish("news", r#"{"n":1}"#, history()).await.unwrap();
    node.publish("news", r#"{"n":2}"#, history()).await.unwrap();
    let pubs = conn.publications("news");
    assert_eq!(pubs.len(), 2);
    assert_eq!(pubs[0].data, Bytes::from_static(br#"{"n":1}"#));
    assert_eq!((pubs[0].offset, pubs[1].offset), (1, 2));
}

#[tokio::test]
async fn commands_before_connect_and_unknown_commands_are_bad_requests() {
    let node = open_node(Config::default());
    let conn = Conn::open(&node);
    let err = conn
        .send(r#"{"id":1,"subscribe":{"channel":"x"}}"#)
        .await
        .unwrap_err();
    assert_eq!(err, Disconnect::BAD_REQUEST);

    let conn = Conn::connect(&node, "u").await;
    assert_eq!(
        conn.send(r#"{"id":2,"foo":{}}"#).await.unwrap_err(),
        Disconnect::BAD_REQUEST
    );
    let conn = Conn::connect(&node, "u").await;
    assert_eq!(
        conn.send("{not json").await.unwrap_err(),
        Disconnect::BAD_REQUEST
    );
    let conn = Conn::connect(&node, "u").await;
    // A pong while no ping is outstanding.
    assert_eq!(conn.send("{}").await.unwrap_err(), Disconnect::BAD_REQUEST);
    let conn = Conn::connect(&node, "u").await;
    // A second connect.
    assert_eq!(
        conn.send(r#"{"id":3,"connect":{}}"#).await.unwrap_err(),
        Disconnect::BAD_REQUEST
    );
    let conn = Conn::open_with(&node, Protocol::Protobuf);
    assert_eq!(
        conn.session
            .handle_message(Bytes::from_static(&[0x05, 0xff, 0xff]))
            .await
            .unwrap_err(),
        Disconnect::BAD_REQUEST
    );
}

#[tokio::test]
async fn connect_and_subscribe_in_one_frame_are_processed_in_order() {
    let node = open_node(Config::default());
    node.run().await.unwrap();
    let conn = Conn::open(&node);
    conn.send(
        "{\"id\":1,\"connect\":{\"token\":\"7\"}}\n{\"id\":2,\"subscribe\":{\"channel\":\"a\"}}",
    )
    .await
    .unwrap();
    let replies = conn.replies();
    // connect reply, subscribe reply, then the client's own join push.
    assert_eq!(replies.len(), 3);
    assert!(replies[2].push.as_ref().unwrap().join.is_some());
    assert_eq!(replies[0].id, 1);
    assert!(replies[0].connect.as_ref().unwrap().pong);
    assert_eq!(replies[0].connect.as_ref().unwrap().ping, 25);
    assert_eq!(replies[1].id, 2);
    assert!(replies[1].subscribe.is_some());
}

#[tokio::test]
async fn errors_of_commands() {
    let node = open_node(Config::default());
    node.run().await.unwrap();
    let conn = Conn::connect(&node, "u").await;
    conn.send(r#"{"id":2,"subscribe":{"channel":"a"}}"#)
        .await
        .unwrap();
    conn.send(r#"{"id":3,"subscribe":{"channel":"a"}}"#)
        .await
        .unwrap();
    conn.send(r#"{"id":4,"ping":{}}"#).await.unwrap();
    conn.send(r#"{"id":5,"rpc":{"method":"nope"}}"#)
        .await
        .unwrap();
    conn.send(r#"{"id":6,"history":{"channel":"a","reverse":true,"since":{"offset":0}}}"#)
        .await
        .unwrap();
    conn.send(r#"{"id":7,"history":{"channel":"a","since":{"offset":1,"epoch":"other"}}}"#)
        .await
        .unwrap();
    let long = "x".repeat(300);
    conn.send(&format!(r#"{{"id":8,"subscribe":{{"channel":"{long}"}}}}"#))
        .await
        .unwrap();
    let codes: Vec<_> = conn
        .replies()
        .into_iter()
        .filter_map(|r| r.error.map(|e| (r.id, e.code)))
        .collect();
    assert_eq!(
        codes,
        vec![(3, 105), (4, 108), (5, 104), (6, 107), (7, 112), (8, 107)]
    );
    assert_eq!(
        conn.send(r#"{"id":9,"subscribe":{"channel":""}}"#)
            .await
            .unwrap_err(),
        Disconnect::BAD_REQUEST
    );
}

#[tokio::test]
async fn missing_handlers_answer_not_available_and_send_closes() {
    let node = Node::builder().build();
    node.on_connecting(|_| async { Ok(ConnectReply::new(Credentials::new("u"))) });
    node.run().await.unwrap();
    let conn = Conn::connect(&node, "u").await;
    for (i, cmd) in [
        r#""subscribe":{"channel":"a"}"#,
        r#""publish":{"channel":"a","data":{}}"#,
        r#""presence":{"channel":"a"}"#,
        r#""presence_stats":{"channel":"a"}"#,
        r#""history":{"channel":"a"}"#,
        r#""rpc":{"method":"m"}"#,
    ]
    .iter()
    .enumerate()
    {
        conn.send(&format!(r#"{{"id":{},{cmd}}}"#, i + 10))
            .await
            .unwrap();
    }
    let codes: Vec<_> = conn
        .replies()
        .into_iter()
        .map(|r| r.error.map(|e| e.code))
        .collect();
    assert_eq!(codes, vec![Some(108); 6]);
    assert_eq!(
        conn.send(r#"{"send":{"data":{}}}"#).await.unwrap_err(),
        Disconnect::NOT_AVAILABLE
    );
}

#[tokio::test]
async fn connect_without_credentials_is_refused() {
    let node = Node::builder().build();
    let conn = Conn::open(&node);
    assert_eq!(
        conn.send(r#"{"id":1,"connect":{}}"#).await.unwrap_err(),
        Disconnect::BAD_REQUEST
    );
}

#[tokio::test]
async fn connect_error_is_replied_and_further_input_ignored() {
    let node = Node::builder().build();
    node.on_connecting(|_| async { Err(Error::new(4001, "go away").into()) });
    let conn = Conn::open(&node);
    conn.send(r#"{"id":1,"connect":{}}"#).await.unwrap();
    conn.send(r#"{"id":2,"subscribe":{"channel":"a"}}"#)
        .await
        .unwrap();
    let replies = conn.replies();
    assert_eq!(replies.len(), 1);
    assert_eq!(replies[0].error.as_ref().unwrap().code, 4001);
}

#[tokio::test(start_paused = true)]
async fn ping_pong_and_no_pong() {
    let node = open_node(Config::default());
    let conn = Conn::connect(&node, "u").await;
    let first = conn.session.next_deadline().expect("ping scheduled");
    tokio::time::sleep_until(first).await;
    conn.session.on_timer().await.unwrap();
    let (replies, _) = conn.drain();
    assert_eq!(
        replies,
        vec![proto::Reply::default()],
        "a ping is an empty reply"
    );
    // Answer the ping: the connection stays.
    conn.send("{}").await.unwrap();
    tokio::time::advance(Duration::from_secs(25)).await;
    conn.session.on_timer().await.unwrap();
    assert_eq!(conn.replies().len(), 1);
    // Do not answer this one.
    tokio::time::advance(Duration::from_secs(11)).await;
    assert_eq!(
        conn.session.on_timer().await.unwrap_err(),
        Disconnect::NO_PONG
    );
}

#[tokio::test(start_paused = true)]
async fn stale_connection_without_connect_is_closed() {
    let node = open_node(Config::default());
    let conn = Conn::open(&node);
    tokio::time::advance(Duration::from_secs(14)).await;
    conn.session.on_timer().await.unwrap();
    tokio::time::advance(Duration::from_secs(2)).await;
    assert_eq!(
        conn.session.on_timer().await.unwrap_err(),
        Disconnect::STALE
    );
}

#[tokio::test]
async fn recovery_after_reconnect() {
    let node = open_node(Config::default());
    node.run().await.unwrap();
    let conn = Conn::connect(&node, "u").await;
    conn.send(r#"{"id":2,"subscribe":{"channel":"r","recover":false}}"#)
        .await
        .unwrap();
    let epoch = conn.replies()[0].subscribe.clone().unwrap().epoch;
    for i in 1..=3 {
        node.publish("r", format!("{i}"), history()).await.unwrap();
    }
    assert_eq!(conn.publications("r").len(), 3);
    conn.session
        .clone()
        .finish(Disconnect::CONNECTION_CLOSED)
        .await;

    for i in 4..=6 {
        node.publish("r", format!("{i}"), history()).await.unwrap();
    }
    let conn = Conn::connect(&node, "u").await;
    conn.send(&format!(
        r#"{{"id":2,"subscribe":{{"channel":"r","recover":true,"offset":3,"epoch":"{epoch}"}}}}"#
    ))
    .await
    .unwrap();
    let sub = conn.replies()[0].subscribe.clone().unwrap();
    assert!(sub.recovered && sub.was_recovering);
    assert_eq!(sub.offset, 3, "recovery answers the client's own offset");
    let offsets: Vec<_> = sub.publications.iter().map(|p| p.offset).collect();
    assert_eq!(offsets, vec![4, 5, 6]);
    // Live publications continue after the recovered ones.
    node.publish("r", "7", history()).await.unwrap();
    assert_eq!(conn.publications("r")[0].offset, 7);

    // Too far behind (history keeps 10): not recovered, told the current top.
    for i in 8..=30 {
        node.publish("r", format!("{i}"), history()).await.unwrap();
    }
    let late = Conn::connect(&node, "v").await;
    late.send(&format!(
        r#"{{"id":2,"subscribe":{{"channel":"r","recover":true,"offset":3,"epoch":"{epoch}"}}}}"#
    ))
    .await
    .unwrap();
    let sub = late.replies()[0].subscribe.clone().unwrap();
    assert!(!sub.recovered && sub.was_recovering);
    assert!(sub.publications.is_empty());
    assert_eq!(sub.offset, 30);
    // Wrong epoch with the reject flag: error 112.
    late.send(
        r#"{"id":3,"subscribe":{"channel":"r2","recover":true,"offset":1,"epoch":"zzz","flag":2}}"#,
    )
    .await
    .unwrap();
    assert_eq!(late.replies()[0].error.as_ref().unwrap().code, 112);
}

#[tokio::test]
async fn server_side_subscriptions_recover_through_connect_subs() {
    let node = Node::builder().build();
    node.on_connecting(|_| async {
        Ok(ConnectReply::new(Credentials::new("u")).subscribe(
            "#u",
            SubscribeOptions::new()
                .history(10, Duration::from_secs(60))
                .recovery(true),
        ))
    });
    node.run().await.unwrap();
    let conn = Conn::open(&node);
    conn.send(r#"{"id":1,"connect":{}}"#).await.unwrap();
    let connect = conn.replies()[0].connect.clone().unwrap();
    let sub = &connect.subs["#u"];
    assert!(sub.recoverable);
    let epoch = sub.epoch.clone();
    node.publish("#u", "1", history()).await.unwrap();
    assert_eq!(conn.publications("#u").len(), 1);
    conn.session
        .clone()
        .finish(Disconnect::CONNECTION_CLOSED)
        .await;
    node.publish("#u", "2", history()).await.unwrap();

    let conn = Conn::open(&node);
    conn.send(&format!(
        r##"{{"id":1,"connect":{{"subs":{{"#u":{{"recover":true,"offset":1,"epoch":"{epoch}"}}}}}}}}"##
    ))
    .await
    .unwrap();
    let connect = conn.replies()[0].connect.clone().unwrap();
    let sub = &connect.subs["#u"];
    assert!(sub.recovered);
    assert_eq!(sub.publications.len(), 1);
    assert_eq!(sub.publications[0].offset, 2);
}

#[tokio::test]
async fn presence_join_leave_and_client_publish() {
    let node = open_node(Config::default());
    node.run().await.unwrap();
    let a = Conn::connect(&node, "a").await;
    a.send(r#"{"id":2,"subscribe":{"channel":"room","join_leave":true}}"#)
        .await
        .unwrap();
    let replies = a.replies();
    assert!(replies[0].subscribe.is_some());
    // Own join arrives after the subscribe reply.
    assert_eq!(
        replies[1]
            .push
            .as_ref()
            .unwrap()
            .join
            .as_ref()
            .unwrap()
            .info
            .as_ref()
            .unwrap()
            .user,
        "a"
    );
    let b = Conn::connect(&node, "b").await;
    b.send(r#"{"id":2,"subscribe":{"channel":"room"}}"#)
        .await
        .unwrap();
    b.replies();
    let join = a.replies()[0].push.clone().unwrap().join.unwrap();
    assert_eq!(join.info.unwrap().user, "b");

    b.send(r#"{"id":3,"presence_stats":{"channel":"room"}}"#)
        .await
        .unwrap();
    let stats = b.replies()[0].presence_stats.unwrap();
    assert_eq!((stats.num_clients, stats.num_users), (2, 2));
    b.send(r#"{"id":4,"presence":{"channel":"room"}}"#)
        .await
        .unwrap();
    let presence = b.replies()[0].presence.clone().unwrap().presence;
    assert_eq!(presence.len(), 2);

    b.send(r#"{"id":5,"publish":{"channel":"room","data":{"text":"hi"}}}"#)
        .await
        .unwrap();
    let b_replies = b.replies();
    assert!(b_replies.iter().any(|r| r.id == 5 && r.publish.is_some()));
    let got = a.publications("room");
    assert_eq!(got[0].data, Bytes::from_static(br#"{"text":"hi"}"#));
    assert_eq!(got[0].info.as_ref().unwrap().user, "b");

    b.send(r#"{"id":6,"unsubscribe":{"channel":"room"}}"#)
        .await
        .unwrap();
    let leave = a.replies()[0].push.clone().unwrap().leave.unwrap();
    assert_eq!(leave.info.unwrap().user, "b");
    assert_eq!(node.presence_stats("room").await.unwrap().num_clients, 1);
}

#[tokio::test]
async fn rpc_history_and_server_api() {
    let node = open_node(Config::default());
    node.run().await.unwrap();
    let conn = Conn::connect(&node, "u").await;
    conn.send(r#"{"id":2,"rpc":{"method":"echo","data":{"x":1}}}"#)
        .await
        .unwrap();
    assert_eq!(
        conn.replies()[0].rpc.clone().unwrap().data,
        Bytes::from_static(br#"{"x":1}"#)
    );
    for i in 0..5 {
        node.publish("h", format!("{i}"), history()).await.unwrap();
    }
    conn.send(r#"{"id":3,"history":{"channel":"h","limit":2,"reverse":true}}"#)
        .await
        .unwrap();
    let h = conn.replies()[0].history.clone().unwrap();
    assert_eq!(
        h.publications.iter().map(|p| p.offset).collect::<Vec<_>>(),
        vec![5, 4]
    );
    assert_eq!(h.offset, 5);

    node.subscribe("u", "srv", SubscribeOptions::new())
        .await
        .unwrap();
    let push = conn.replies()[0].push.clone().unwrap();
    assert_eq!(push.channel, "srv");
    assert!(push.subscribe.is_some());
    node.publish("srv", "{}", PublishOptions::new())
        .await
        .unwrap();
    assert_eq!(conn.publications("srv").len(), 1);
    node.unsubscribe("u", "srv").await;
    let push = conn.replies()[0].push.clone().unwrap();
    assert_eq!(push.unsubscribe.unwrap().code, 2000);
    node.disconnect("u", Disconnect::FORCE_NO_RECONNECT).await;
    assert_eq!(conn.drain().1, Some(Disconnect::FORCE_NO_RECONNECT));
}

#[tokio::test]
async fn runtime_server_subscribe_recovers_since_a_position() {
    let node = open_node(Config::default());
    node.run().await.unwrap();
    let first = node.publish("r", "1", history()).await.unwrap();
    node.publish("r", "2", history()).await.unwrap();
    let conn = Conn::connect(&node, "u").await;
    let mut options = SubscribeOptions::new()
        .history(10, std::time::Duration::from_secs(60))
        .recovery(true);
    options.recover_since = Some(first.position.clone());
    node.subscribe("u", "r", options).await.unwrap();
    let push = conn.replies()[0].push.clone().unwrap();
    let subscribe = push.subscribe.unwrap();
    // As in Centrifugo, a recovered server-side subscription starts at the requested
    // position (the `subscribe` push carries no publications).
    assert!(subscribe.recoverable && subscribe.positioned);
    assert_eq!(
        (subscribe.offset, subscribe.epoch),
        (first.position.offset, first.position.epoch)
    );
}

#[tokio::test]
async fn user_connection_limit() {
    let config = Config {
        user_connection_limit: 1,
        ..Config::default()
    };
    let node = open_node(config);
    let _first = Conn::connect(&node, "u").await;
    let second = Conn::open(&node);
    assert_eq!(
        second
            .send(r#"{"id":1,"connect":{"token":"u"}}"#)
            .await
            .unwrap_err(),
        Disconnect::CONNECTION_LIMIT
    );
}

#[tokio::test]
async fn binary_payload_to_json_connection_is_inappropriate_protocol() {
    let node = open_node(Config::default());
    node.run().await.unwrap();
    let json = Conn::connect(&node, "j").await;
    json.send(r#"{"id":2,"subscribe":{"channel":"bin"}}"#)
        .await
        .unwrap();
    json.replies();
    node.publish(
        "bin",
        Bytes::from_static(&[0xff, 0x00]),
        PublishOptions::new(),
    )
    .await
    .unwrap();
    assert_eq!(json.drain().1, Some(Disconnect::INAPPROPRIATE_PROTOCOL));
}

#[tokio::test]
async fn slow_client_is_disconnected_while_others_keep_receiving() {
    let config = Config {
        client_queue_max_size: 4096,
        ..Config::default()
    };
    let node = open_node(config);
    node.run().await.unwrap();
    let slow = Conn::connect(&node, "slow").await;
    let fast = Conn::connect(&node, "fast").await;
    for c in [&slow, &fast] {
        c.send(r#"{"id":2,"subscribe":{"channel":"firehose"}}"#)
            .await
            .unwrap();
        c.replies();
    }
    let payload = format!(r#"{{"pad":"{}"}}"#, "x".repeat(200));
    let mut received = 0;
    for _ in 0..100 {
        node.publish("firehose", payload.clone(), PublishOptions::new())
            .await
            .unwrap();
        // The fast client drains as it goes; the slow one never reads.
        received += fast.publications("firehose").len();
    }
    assert_eq!(received, 100);
    let (_, close) = slow.drain();
    assert_eq!(close, Some(Disconnect::SLOW));
    assert!(!fast.session.outbound().is_closed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broadcast_is_correct_under_concurrent_subscribe_and_unsubscribe() {
    let node = open_node(Config::default());
    node.run().await.unwrap();
    // Stable subscribers must see every publication exactly once, in order.
    let stable: Vec<_> = futures_util::future::join_all((0..4).map(|i| {
        let node = node.clone();
        async move {
            let c = Conn::connect(&node, &format!("stable{i}")).await;
            c.send(r#"{"id":2,"subscribe":{"channel":"busy"}}"#)
                .await
                .unwrap();
            c.replies();
            c
        }
    }))
    .await;
    let churned = Arc::new(AtomicUsize::new(0));
    let churn: Vec<_> = (0..8)
        .map(|i| {
            let node = node.clone();
            let churned = churned.clone();
            tokio::spawn(async move {
                for round in 0..30 {
                    let c = Conn::connect(&node, &format!("churn{i}")).await;
                    c.send(r#"{"id":2,"subscribe":{"channel":"busy"}}"#)
                        .await
                        .unwrap();
                    if round % 2 == 0 {
                        c.send(r#"{"id":3,"unsubscribe":{"channel":"busy"}}"#)
                            .await
                            .unwrap();
                    }
                    // Whatever a churning client got must be in order too.
                    let offsets: Vec<_> = c.publications("busy").iter().map(|p| p.offset).collect();
                    assert!(offsets.windows(2).all(|w| w[1] == w[0] + 1), "{offsets:?}");
                    c.session
                        .clone()
                        .finish(Disconnect::CONNECTION_CLOSED)
                        .await;
                    churned.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    let publisher = {
        let node = node.clone();
        tokio::spawn(async move {
            for i in 0..500 {
                node.publish("busy", format!("{i}"), history())
                    .await
                    .unwrap();
                if i % 50 == 0 {
                    tokio::task::yield_now().await;
                }
            }
        })
    };
    for t in churn {
        t.await.unwrap();
    }
    publisher.await.unwrap();
    assert_eq!(churned.load(Ordering::Relaxed), 240);
    for c in &stable {
        let offsets: Vec<_> = c.publications("busy").iter().map(|p| p.offset).collect();
        assert_eq!(offsets, (1..=500).collect::<Vec<u64>>());
    }
    // Only the stable subscribers remain in the hub.
    assert_eq!(node.inner.shared.hub.num_subscribers("busy"), 4);
    assert_eq!(node.info().num_clients, 4);
}

#[tokio::test]
async fn client_side_refresh_extends_expiry() {
    let node = Node::builder().build();
    let exp = super::unix_now() + 100;
    node.on_connecting(move |_| async move {
        Ok(ConnectReply::new(Credentials::new("u").expire_at(exp)).client_side_refresh(true))
    });
    let later = exp + 1000;
    node.on_connect(move |client| {
        client.on_refresh(move |e| async move {
            assert_eq!(e.token, "new-token");
            Ok(RefreshReply::new(later))
        });
    });
    let conn = Conn::open(&node);
    conn.send(r#"{"id":1,"connect":{}}"#).await.unwrap();
    let connect = conn.replies()[0].connect.clone().unwrap();
    assert!(connect.expires);
    assert!((98..=100).contains(&connect.ttl));
    conn.send(r#"{"id":2,"refresh":{"token":"new-token"}}"#)
        .await
        .unwrap();
    let refresh = conn.replies()[0].refresh.clone().unwrap();
    assert!(refresh.expires);
    assert!(refresh.ttl > 1000);
}

#[tokio::test]
async fn protobuf_connection_gets_varint_delimited_replies() {
    let node = open_node(Config::default());
    node.run().await.unwrap();
    let conn = Conn::open_with(&node, Protocol::Protobuf);
    let mut frame = bytes::BytesMut::new();
    let connect = proto::Command {
        id: 1,
        connect: Some(proto::ConnectRequest {
            token: "p".into(),
            ..Default::default()
        }),
        ..Default::default()
    };
    let subscribe = proto::Command {
        id: 2,
        subscribe: Some(proto::SubscribeRequest {
            channel: "bin".into(),
            ..Default::default()
        }),
        ..Default::default()
    };
    gyre_protocol::encode_command(Protocol::Protobuf, &connect, &mut frame).unwrap();
    gyre_protocol::encode_command(Protocol::Protobuf, &subscribe, &mut frame).unwrap();
    conn.session.handle_message(frame.freeze()).await.unwrap();
    let replies = conn.replies();
    assert_eq!((replies[0].id, replies[1].id), (1, 2));
    node.publish("bin", Bytes::from_static(&[0xff, 0x00]), history())
        .await
        .unwrap();
    assert_eq!(
        conn.publications("bin")[0].data,
        Bytes::from_static(&[0xff, 0x00])
    );
}

#[tokio::test]
async fn server_refresh_and_client_filters() {
    let node = open_node(Config::default());
    node.run().await.unwrap();
    let a = Conn::connect(&node, "u").await;
    let b = Conn::connect(&node, "u").await;
    let b_id = b.session.0.id.clone();
    let only_b = crate::ClientFilter::client(b_id.clone());
    node.refresh("u", &only_b, RefreshReply::new(super::unix_now() + 600))
        .await;
    let push = b.replies()[0].push.clone().unwrap().refresh.unwrap();
    assert!(push.expires && push.ttl >= 599);
    assert!(a.replies().is_empty(), "the filter selects only b");

    let whitelist_b = crate::ClientFilter {
        whitelist: vec![b_id],
        ..Default::default()
    };
    node.disconnect_clients("u", &whitelist_b, Disconnect::FORCE_RECONNECT)
        .await;
    assert_eq!(a.drain().1, Some(Disconnect::FORCE_RECONNECT));
    assert_eq!(b.drain().1, None);
    node.refresh(
        "u",
        &crate::ClientFilter::default(),
        RefreshReply::expired(),
    )
    .await;
    assert_eq!(b.drain().1, Some(Disconnect::EXPIRED));
}

/// A shared handler set serves every connection it is installed on, each call with the
/// right connection; a per-connection handler added later overrides it for that
/// connection only.
#[tokio::test]
async fn shared_handler_sets_see_their_connection_and_copy_on_write() {
    let node = Node::builder().build();
    node.on_connecting(|event| async move { Ok(ConnectReply::new(Credentials::new(event.token))) });
    let disconnected = Arc::new(AtomicUsize::new(0));
    let seen = disconnected.clone();
    let set = Arc::new(
        crate::ClientHandlers::new()
            .on_rpc(|client, event| async move {
                let answer = format!(
                    r#"{{"user":"{}","method":"{}"}}"#,
                    client.user_id(),
                    event.method
                );
                Ok(RpcReply::new(answer))
            })
            .on_disconnect(move |client, _| {
                assert!(!client.id().is_empty());
                seen.fetch_add(1, Ordering::SeqCst);
            }),
    );
    node.on_connect(move |client| {
        client.set_handlers(set.clone());
        if client.user_id() == "b" {
            client.on_rpc(|_| async { Ok(RpcReply::new(r#""own""#)) });
        }
    });
    node.run().await.unwrap();

    let a = Conn::connect(&node, "a").await;
    let b = Conn::connect(&node, "b").await;
    let a2 = Conn::connect(&node, "a2").await;
    for (conn, expected) in [
        (&a, r#"{"user":"a","method":"m"}"#),
        (&b, r#""own""#),
        (&a2, r#"{"user":"a2","method":"m"}"#),
    ] {
        conn.send(r#"{"id":5,"rpc":{"method":"m","data":{}}}"#)
            .await
            .unwrap();
        let replies = conn.replies();
        let rpc = replies[0].rpc.as_ref().expect("rpc result");
        assert_eq!(rpc.data, Bytes::from(expected), "{replies:?}");
    }

    // `b` copied the set before changing it: its disconnect observer is still the shared one.
    for conn in [a, b, a2] {
        conn.session.clone().finish(Disconnect::SHUTDOWN).await;
    }
    assert_eq!(disconnected.load(Ordering::SeqCst), 3);
}

/// A ~1 KB JSON document; `version` changes a few values in it.
fn document(version: u32) -> String {
    let items: Vec<String> = (0..12)
        .map(|i| {
            let price = if i == version % 12 {
                1000 + version
            } else {
                1000 + i
            };
            format!(r#"{{"id":{i},"name":"instrument-{i}","price":{price},"currency":"EUR"}}"#)
        })
        .collect();
    format!(r#"{{"version":{version},"items":[{}]}}"#, items.join(","))
}

fn delta_publish() -> PublishOptions {
    history().use_delta(true)
}

/// Follows a delta subscription's publications as the SDK does: returns the payloads and
/// whether each came as a delta. `json`: `data` is a JSON string.
fn apply_chain(
    base: &mut Option<Vec<u8>>,
    pubs: &[proto::Publication],
    json: bool,
) -> Vec<(String, bool)> {
    pubs.iter()
        .map(|p| {
            let data = if json {
                serde_json::from_slice::<String>(&p.data)
                    .expect("data of a delta subscription is a JSON string")
                    .into_bytes()
            } else {
                p.data.to_vec()
            };
            let full = if p.delta {
                let prev = base.as_ref().expect("a delta comes after a full payload");
                gyre_protocol::fossil::apply(prev, &data).expect("delta applies")
            } else {
                data
            };
            *base = Some(full.clone());
            (String::from_utf8(full).unwrap(), p.delta)
        })
        .collect()
}

#[tokio::test]
async fn delta_negotiation_first_full_then_deltas_json() {
    let node = open_node(Config::default());
    node.run().await.unwrap();
    let conn = Conn::connect(&node, "d").await;
    conn.send(r#"{"id":2,"subscribe":{"channel":"delta:a","delta":"fossil"}}"#)
        .await
        .unwrap();
    assert!(conn.replies()[0].subscribe.as_ref().unwrap().delta);
    // Not allowed in the channel: no delta, plain JSON payloads.
    conn.send(r#"{"id":3,"subscribe":{"channel":"plain","delta":"fossil"}}"#)
        .await
        .unwrap();
    assert!(!conn.replies()[0].subscribe.as_ref().unwrap().delta);
    // A subscriber that did not ask.
    let other = Conn::connect(&node, "o").await;
    other
        .send(r#"{"id":2,"subscribe":{"channel":"delta:a"}}"#)
        .await
        .unwrap();
    assert!(!other.replies()[0].subscribe.as_ref().unwrap().delta);

    for v in 1..=5 {
        node.publish("delta:a", document(v), delta_publish())
            .await
            .unwrap();
        node.publish("plain", document(v), delta_publish())
            .await
            .unwrap();
    }
    let replies = conn.replies();
    let pubs_of = |channel: &str| -> Vec<proto::Publication> {
        replies
            .iter()
            .filter_map(|r| r.push.as_ref())
            .filter(|p| p.channel == channel)
            .filter_map(|p| p.r#pub.clone())
            .collect()
    };
    let pubs = pubs_of("delta:a");
    let got = apply_chain(&mut None, &pubs, true);
    let expected: Vec<_> = (1..=5).map(|v| (document(v), v > 1)).collect();
    assert_eq!(got, expected);
    for p in &pubs[1..] {
        assert!(
            p.data.len() * 4 < document(1).len(),
            "delta of {} bytes",
            p.data.len()
        );
    }
    let plain = pubs_of("plain");
    assert!(plain.iter().all(|p| !p.delta));
    assert_eq!(plain[4].data, Bytes::from(document(5)));
    let theirs = other.publications("delta:a");
    assert!(theirs.iter().all(|p| !p.delta));
    assert_eq!(theirs[2].data, Bytes::from(document(3)));

    // Without the publisher's delta flag the payload goes in full (as a string).
    node.publish("delta:a", document(6), history())
        .await
        .unwrap();
    let pubs = conn.publications("delta:a");
    assert!(!pubs[0].delta);
    assert_eq!(
        serde_json::from_slice::<String>(&pubs[0].data).unwrap(),
        document(6)
    );
}

#[tokio::test]
async fn unknown_delta_type_is_a_bad_request() {
    let node = open_node(Config::default());
    node.run().await.unwrap();
    let conn = Conn::connect(&node, "d").await;
    let result = conn
        .send(r#"{"id":2,"subscribe":{"channel":"delta:a","delta":"xdelta"}}"#)
        .await;
    assert_eq!(result, Err(Disconnect::BAD_REQUEST));
}

#[tokio::test]
async fn delta_chain_protobuf_carries_raw_bytes() {
    let node = open_node(Config::default());
    node.run().await.unwrap();
    let conn = Conn::open_with(&node, Protocol::Protobuf);
    let mut frame = bytes::BytesMut::new();
    for command in [
        proto::Command {
            id: 1,
            connect: Some(proto::ConnectRequest {
                token: "p".into(),
                ..Default::default()
            }),
            ..Default::default()
        },
        proto::Command {
            id: 2,
            subscribe: Some(proto::SubscribeRequest {
                channel: "delta:p".into(),
                delta: "fossil".into(),
                ..Default::default()
            }),
            ..Default::default()
        },
    ] {
        gyre_protocol::encode_command(Protocol::Protobuf, &command, &mut frame).unwrap();
    }
    conn.session.handle_message(frame.freeze()).await.unwrap();
    assert!(conn.replies()[1].subscribe.as_ref().unwrap().delta);
    for v in 1..=4 {
        node.publish("delta:p", document(v), delta_publish())
            .await
            .unwrap();
    }
    let pubs = conn.publications("delta:p");
    assert_eq!(pubs[0].data, Bytes::from(document(1)), "first in full, raw");
    let got = apply_chain(&mut None, &pubs, false);
    let expected: Vec<_> = (1..=4).map(|v| (document(v), v > 1)).collect();
    assert_eq!(got, expected);
}

#[tokio::test]
async fn delta_chain_continues_through_recovery() {
    let node = open_node(Config::default());
    node.run().await.unwrap();
    let conn = Conn::connect(&node, "r").await;
    conn.send(r#"{"id":2,"subscribe":{"channel":"delta:r","delta":"fossil"}}"#)
        .await
        .unwrap();
    let epoch = conn.replies()[0].subscribe.clone().unwrap().epoch;
    let mut base = None;
    for v in 1..=2 {
        node.publish("delta:r", document(v), delta_publish())
            .await
            .unwrap();
    }
    apply_chain(&mut base, &conn.publications("delta:r"), true);
    conn.session
        .clone()
        .finish(Disconnect::CONNECTION_CLOSED)
        .await;
    for v in 3..=5 {
        node.publish("delta:r", document(v), delta_publish())
            .await
            .unwrap();
    }

    let conn = Conn::connect(&node, "r").await;
    conn.send(&format!(
        r#"{{"id":2,"subscribe":{{"channel":"delta:r","delta":"fossil","recover":true,"offset":2,"epoch":"{epoch}"}}}}"#
    ))
    .await
    .unwrap();
    let sub = conn.replies()[0].subscribe.clone().unwrap();
    assert!(sub.recovered && sub.delta);
    // Recovered: the first in full, the next ones as deltas against each other.
    let got = apply_chain(&mut base, &sub.publications, true);
    assert_eq!(
        got,
        vec![
            (document(3), false),
            (document(4), true),
            (document(5), true)
        ]
    );
    // Live publications continue the chain from the last recovered one.
    node.publish("delta:r", document(6), delta_publish())
        .await
        .unwrap();
    let got = apply_chain(&mut base, &conn.publications("delta:r"), true);
    assert_eq!(got, vec![(document(6), true)]);

    // A fresh subscribe (no recovery) starts over with a full payload.
    let fresh = Conn::connect(&node, "f").await;
    fresh
        .send(r#"{"id":2,"subscribe":{"channel":"delta:r","delta":"fossil"}}"#)
        .await
        .unwrap();
    fresh.replies();
    node.publish("delta:r", document(7), delta_publish())
        .await
        .unwrap();
    let got = apply_chain(&mut None, &fresh.publications("delta:r"), true);
    assert_eq!(got, vec![(document(7), false)]);
}

#[tokio::test]
async fn tags_filter_delivers_matching_publications_and_keeps_the_position() {
    let node = open_node(Config::default());
    node.run().await.unwrap();
    let tagged = |ticker: &str| {
        history().tags(
            [("ticker".to_owned(), ticker.to_owned())]
                .into_iter()
                .collect(),
        )
    };
    let conn = Conn::connect(&node, "u").await;
    // Not allowed in this channel, or malformed: 107, the connection stays.
    conn.send(r#"{"id":2,"subscribe":{"channel":"plain","tf":{"key":"a","cmp":"eq","val":"b"}}}"#)
        .await
        .unwrap();
    assert_eq!(conn.replies()[0].error.as_ref().unwrap().code, 107);
    conn.send(r#"{"id":3,"subscribe":{"channel":"tagged","tf":{"key":"a","cmp":"zz","val":"b"}}}"#)
        .await
        .unwrap();
    assert_eq!(conn.replies()[0].error.as_ref().unwrap().code, 107);
    conn.send(
        r#"{"id":4,"subscribe":{"channel":"tagged","tf":{"key":"ticker","cmp":"eq","val":"BTC"}}}"#,
    )
    .await
    .unwrap();
    let (replies, close) = conn.drain();
    assert!(close.is_none(), "after subscribe: {close:?} {replies:?}");
    let sub = replies[0].subscribe.clone().unwrap();
    assert!(sub.positioned);
    for ticker in ["BTC", "ETH", "ETH", "BTC", "SOL"] {
        node.publish("tagged", format!(r#"{{"t":"{ticker}"}}"#), tagged(ticker))
            .await
            .unwrap();
    }
    // Only BTC arrives; the filtered publications moved the position, so no gap is seen
    // (a gap would unsubscribe the client with insufficient state).
    let (replies, close) = conn.drain();
    assert!(close.is_none(), "{close:?}");
    let offsets: Vec<_> = replies
        .iter()
        .filter_map(|r| r.push.as_ref())
        .inspect(|p| assert!(p.unsubscribe.is_none(), "{p:?}"))
        .filter_map(|p| p.r#pub.as_ref())
        .map(|p| p.offset)
        .collect();
    assert_eq!(offsets, vec![1, 4]);
    // The three left out are counted, as upstream's `tags_filter_dropped_publications`.
    let mut metrics = String::new();
    node.write_metrics("centrifugo", &mut metrics);
    assert!(
        metrics.contains(
            "centrifugo_node_tags_filter_dropped_publications{channel_namespace=\"\"} 3\n"
        ),
        "{metrics}"
    );
    node.publish("tagged", r#"{"t":"BTC"}"#, tagged("BTC"))
        .await
        .unwrap();
    assert_eq!(conn.publications("tagged")[0].offset, 6);

    // Recovery from offset 1 brings back only the matching ones.
    let late = Conn::connect(&node, "v").await;
    late.send(&format!(
        r#"{{"id":2,"subscribe":{{"channel":"tagged","recover":true,"offset":1,"epoch":"{}","tf":{{"key":"ticker","cmp":"in","vals":["ETH","SOL"]}}}}}}"#,
        sub.epoch
    ))
    .await
    .unwrap();
    let recovered = late.replies()[0].subscribe.clone().unwrap();
    assert!(recovered.recovered);
    let offsets: Vec<_> = recovered.publications.iter().map(|p| p.offset).collect();
    assert_eq!(offsets, vec![2, 3, 5]);
}

/// Map subscriptions: phases, pages, recovery and client changes.
mod map {
    use super::*;
    use crate::{
        MapChannelOptions, MapMode, MapPublishOptions, MapPublishReply, MapReadStateOptions,
    };

    fn channel_options() -> MapChannelOptions {
        let mut o = MapChannelOptions::new(MapMode::Recoverable, Duration::from_secs(60));
        o.min_page_size = 1;
        o.default_page_size = 2;
        o.resolve().unwrap()
    }

    fn map_node() -> Node {
        let node = Node::builder().build();
        node.on_connecting(
            |event| async move { Ok(ConnectReply::new(Credentials::new(event.token))) },
        );
        node.on_connect(|client| {
            client.on_subscribe(|_| async {
                let mut options = SubscribeOptions::new();
                options.map = Some(channel_options());
                Ok(SubscribeReply::new(options))
            });
            client.on_map_publish(|e| async move {
                Ok(MapPublishReply::new(
                    e.key,
                    MapPublishOptions::new(channel_options()),
                ))
            });
        });
        node
    }

    async fn put(node: &Node, key: &str) {
        node.map_publish(
            "m",
            key,
            format!("\"{key}\""),
            MapPublishOptions::new(channel_options()),
        )
        .await
        .unwrap();
    }

    fn result(replies: &[proto::Reply]) -> proto::SubscribeResult {
        replies[0]
            .subscribe
            .clone()
            .unwrap_or_else(|| panic!("{replies:?}"))
    }

    fn keys(pubs: &[proto::Publication]) -> Vec<String> {
        pubs.iter().map(|p| p.key.clone()).collect()
    }

    #[tokio::test]
    async fn state_pages_then_live_updates() {
        let node = map_node();
        node.run().await.unwrap();
        for k in ["a", "b", "c", "d", "e"] {
            put(&node, k).await;
        }
        let conn = Conn::connect(&node, "u").await;
        conn.send(r#"{"id":2,"subscribe":{"channel":"m","type":1,"phase":2,"limit":2}}"#)
            .await
            .unwrap();
        let first = result(&conn.replies());
        assert_eq!(
            (first.phase, first.offset, first.cursor.as_str()),
            (2, 5, "b")
        );
        assert_eq!(keys(&first.state), ["a", "b"]);
        let epoch = first.epoch.clone();
        // The cursor page keeps the frozen position; a change after it is left out.
        put(&node, "c").await;
        conn.send(&format!(
            r#"{{"id":3,"subscribe":{{"channel":"m","type":1,"phase":2,"limit":2,"cursor":"b","offset":5,"epoch":"{epoch}"}}}}"#
        ))
        .await
        .unwrap();
        let second = result(&conn.replies());
        assert_eq!(
            (second.phase, second.offset, second.cursor.as_str()),
            (2, 5, "d")
        );
        assert_eq!(keys(&second.state), ["d"]);
        conn.send(&format!(
            r#"{{"id":4,"subscribe":{{"channel":"m","type":1,"phase":2,"limit":2,"cursor":"d","offset":5,"epoch":"{epoch}"}}}}"#
        ))
        .await
        .unwrap();
        // Last page, close enough to the top: live at once, with the missed change.
        let live = result(&conn.replies());
        assert_eq!(live.phase, 0);
        assert_eq!(live.r#type, 1);
        assert_eq!(keys(&live.state), ["e"]);
        assert_eq!(keys(&live.publications), ["c"]);
        assert_eq!(live.offset, 6);
        assert!(live.recoverable && !live.recovered);
        put(&node, "f").await;
        node.map_remove("m", "a", MapPublishOptions::new(channel_options()))
            .await
            .unwrap();
        let pubs = conn.publications("m");
        assert_eq!(keys(&pubs), ["f", "a"]);
        assert_eq!((pubs[0].offset, pubs[1].offset), (7, 8));
        assert!(pubs[1].removed);
        // A client change goes through the handler and reaches subscribers.
        conn.send(r#"{"id":5,"publish":{"channel":"m","type":1,"key":"g","data":{"x":1}}}"#)
            .await
            .unwrap();
        let replies = conn.replies();
        assert!(
            replies.iter().any(|r| r.id == 5 && r.publish.is_some()),
            "{replies:?}"
        );
        let pushed: Vec<_> = replies
            .iter()
            .filter_map(|r| r.push.as_ref()?.r#pub.clone())
            .collect();
        assert_eq!(keys(&pushed), ["g"]);
        assert_eq!(pushed[0].info.as_ref().map(|i| i.user.as_str()), Some("u"));
        conn.send(r#"{"id":6,"publish":{"channel":"m","type":1,"key":"g","removed":true}}"#)
            .await
            .unwrap();
        let pushed: Vec<_> = conn
            .replies()
            .iter()
            .filter_map(|r| r.push.as_ref()?.r#pub.clone())
            .collect();
        assert!(pushed[0].removed, "{pushed:?}");
        let all = MapReadStateOptions {
            limit: -1,
            ..Default::default()
        };
        let state = node.map_read_state("m", all).await.unwrap();
        assert_eq!(
            keys(
                &state
                    .entries
                    .iter()
                    .map(crate::wire::publication_to_proto)
                    .collect::<Vec<_>>()
            ),
            ["b", "c", "d", "e", "f"]
        );
    }

    #[tokio::test]
    async fn stream_phase_and_recovery() {
        let node = map_node();
        node.run().await.unwrap();
        for k in ["a", "b", "c"] {
            put(&node, k).await;
        }
        let conn = Conn::connect(&node, "u").await;
        conn.send(r#"{"id":2,"subscribe":{"channel":"m","type":1,"phase":2,"limit":2}}"#)
            .await
            .unwrap();
        let first = result(&conn.replies());
        let epoch = first.epoch.clone();
        for i in 0..6 {
            put(&node, &format!("0{i}")).await;
        }
        conn.send(&format!(
            r#"{{"id":3,"subscribe":{{"channel":"m","type":1,"phase":2,"limit":2,"cursor":"b","offset":3,"epoch":"{epoch}"}}}}"#
        ))
        .await
        .unwrap();
        let last_state = result(&conn.replies());
        assert_eq!((last_state.phase, last_state.cursor.as_str()), (2, ""));
        assert_eq!(keys(&last_state.state), ["c"]);
        conn.send(&format!(
            r#"{{"id":4,"subscribe":{{"channel":"m","type":1,"phase":1,"limit":2,"offset":3,"epoch":"{epoch}"}}}}"#
        ))
        .await
        .unwrap();
        let page = result(&conn.replies());
        assert_eq!((page.phase, page.offset), (1, 5));
        assert_eq!(keys(&page.publications), ["00", "01"]);
        conn.send(&format!(
            r#"{{"id":5,"subscribe":{{"channel":"m","type":1,"phase":1,"limit":2,"offset":5,"epoch":"{epoch}"}}}}"#
        ))
        .await
        .unwrap();
        let page = result(&conn.replies());
        assert_eq!((page.phase, page.offset), (1, 7));
        assert_eq!(keys(&page.publications), ["02", "03"]);
        conn.send(&format!(
            r#"{{"id":6,"subscribe":{{"channel":"m","type":1,"phase":1,"limit":2,"offset":7,"epoch":"{epoch}"}}}}"#
        ))
        .await
        .unwrap();
        // 7 + 2 reaches the top seen when the stream phase began (9): live.
        let live = result(&conn.replies());
        assert_eq!((live.phase, live.offset), (0, 9));
        assert_eq!(keys(&live.publications), ["04", "05"]);

        // Recovery on a new connection: straight to the stream phase with `recover`.
        let other = Conn::connect(&node, "v").await;
        put(&node, "y").await;
        other
            .send(&format!(
                r#"{{"id":2,"subscribe":{{"channel":"m","type":1,"phase":1,"recover":true,"offset":8,"epoch":"{epoch}"}}}}"#
            ))
            .await
            .unwrap();
        let recovered = result(&other.replies());
        assert!(recovered.recovered && recovered.was_recovering);
        assert_eq!(keys(&recovered.publications), ["05", "y"]);
        assert_eq!(recovered.offset, 10);
        let third = Conn::connect(&node, "w").await;
        third
            .send(r#"{"id":2,"subscribe":{"channel":"m","type":1,"phase":1,"recover":true,"offset":1,"epoch":"nope"}}"#)
            .await
            .unwrap();
        let err = third.replies()[0].error.clone().unwrap();
        assert_eq!(err.code, Error::UNRECOVERABLE_POSITION.code);
    }

    #[tokio::test]
    async fn bad_map_requests() {
        let node = map_node();
        node.run().await.unwrap();
        let conn = Conn::connect(&node, "u").await;
        let code = |frame: &'static str| {
            let conn = &conn;
            async move {
                conn.send(frame).await.unwrap();
                conn.replies()[0].error.clone().map(|e| e.code)
            }
        };
        // A cursor or a stream page without a flow.
        assert_eq!(
            code(r#"{"id":2,"subscribe":{"channel":"m","type":1,"phase":2,"cursor":"x"}}"#).await,
            Some(103)
        );
        assert_eq!(
            code(
                r#"{"id":3,"subscribe":{"channel":"m","type":1,"phase":1,"offset":1,"epoch":"e"}}"#
            )
            .await,
            Some(103)
        );
        assert_eq!(
            code(r#"{"id":4,"subscribe":{"channel":"m","type":1,"phase":7}}"#).await,
            Some(107)
        );
        assert_eq!(
            code(r#"{"id":5,"subscribe":{"channel":"m","type":4}}"#).await,
            Some(108)
        );
        assert_eq!(
            code(r#"{"id":6,"subscribe":{"channel":"m","type":9}}"#).await,
            Some(107)
        );
        // A tags filter needs the channel's `allow_tags_filter` (off here).
        assert_eq!(
            code(
                r#"{"id":7,"subscribe":{"channel":"m","type":1,"tf":{"key":"a","cmp":"eq","val":"b"}}}"#
            )
            .await,
            Some(107)
        );
    }

    /// A node whose map subscriptions allow tags filters and remove the client's key
    /// when they end.
    fn filtering_node() -> Node {
        let node = Node::builder().build();
        node.on_connecting(
            |event| async move { Ok(ConnectReply::new(Credentials::new(event.token))) },
        );
        node.on_connect(|client| {
            client.on_subscribe(|_| async {
                let mut options = SubscribeOptions::new();
                options.map = Some(channel_options());
                options.allow_tags_filter = true;
                options.map_remove_client_on_unsubscribe = true;
                Ok(SubscribeReply::new(options))
            });
            client.on_map_publish(|e| async move {
                Ok(MapPublishReply::new(
                    e.key,
                    MapPublishOptions::new(channel_options()),
                ))
            });
        });
        node
    }

    async fn put_tagged(node: &Node, key: &str, color: &str) {
        let mut o = MapPublishOptions::new(channel_options());
        o.tags.insert("color".into(), color.into());
        node.map_publish("m", key, "1", o).await.unwrap();
    }

    #[tokio::test]
    async fn a_tags_filter_applies_to_state_stream_and_live_changes() {
        let node = filtering_node();
        node.run().await.unwrap();
        for (k, color) in [("a", "red"), ("b", "blue"), ("c", "red"), ("d", "blue")] {
            put_tagged(&node, k, color).await;
        }
        let conn = Conn::connect(&node, "u").await;
        let tf = r#""tf":{"key":"color","cmp":"eq","val":"red"}"#;
        conn.send(&format!(
            r#"{{"id":2,"subscribe":{{"channel":"m","type":1,"phase":2,"limit":2,{tf}}}}}"#
        ))
        .await
        .unwrap();
        let first = result(&conn.replies());
        assert_eq!((first.phase, first.cursor.as_str()), (2, "b"));
        assert_eq!(keys(&first.state), ["a"]);
        let epoch = first.epoch.clone();
        // Changes after the frozen position come with the live reply, filtered too.
        put_tagged(&node, "e", "blue").await;
        put_tagged(&node, "f", "red").await;
        conn.send(&format!(
            r#"{{"id":3,"subscribe":{{"channel":"m","type":1,"phase":2,"limit":2,"cursor":"b","offset":4,"epoch":"{epoch}"}}}}"#
        ))
        .await
        .unwrap();
        let second = result(&conn.replies());
        assert_eq!((second.phase, second.cursor.as_str()), (2, "d"));
        assert_eq!(keys(&second.state), ["c"]);
        conn.send(&format!(
            r#"{{"id":4,"subscribe":{{"channel":"m","type":1,"phase":2,"limit":2,"cursor":"d","offset":4,"epoch":"{epoch}"}}}}"#
        ))
        .await
        .unwrap();
        let live = result(&conn.replies());
        assert_eq!(live.phase, 0, "{live:?}");
        assert!(live.state.is_empty(), "{live:?}");
        assert_eq!(keys(&live.publications), ["f"]);
        assert_eq!(live.offset, 6);
        put_tagged(&node, "g", "blue").await;
        put_tagged(&node, "h", "red").await;
        let pubs = conn.publications("m");
        assert_eq!(keys(&pubs), ["h"]);
        assert_eq!(pubs[0].offset, 8);

        // A malformed filter is the client's error.
        let other = Conn::connect(&node, "v").await;
        other
            .send(r#"{"id":2,"subscribe":{"channel":"m","type":1,"phase":2,"tf":{"key":"color","cmp":"zz","val":"x"}}}"#)
            .await
            .unwrap();
        let replies = other.replies();
        assert_eq!(
            replies[0].error.as_ref().map(|e| e.code),
            Some(107),
            "{replies:?}"
        );
    }

    #[tokio::test]
    async fn the_client_key_is_removed_when_the_subscription_ends() {
        let node = filtering_node();
        node.run().await.unwrap();
        let watcher = Conn::connect(&node, "w").await;
        watcher
            .send(r#"{"id":2,"subscribe":{"channel":"m","type":1,"phase":0}}"#)
            .await
            .unwrap();
        assert_eq!(result(&watcher.replies()).phase, 0);
        let mover = Conn::connect(&node, "u").await;
        mover
            .send(r#"{"id":2,"subscribe":{"channel":"m","type":1,"phase":0}}"#)
            .await
            .unwrap();
        mover.replies();
        let id = mover.session.0.id.clone();
        // Its cursor, under its own id (what `client_key: client_id` chooses).
        mover
            .send(&format!(
                r#"{{"id":3,"publish":{{"channel":"m","type":1,"key":"{id}","data":1}}}}"#
            ))
            .await
            .unwrap();
        // A key of its own choosing stays.
        mover
            .send(r#"{"id":4,"publish":{"channel":"m","type":1,"key":"other","data":2}}"#)
            .await
            .unwrap();
        mover
            .send(r#"{"id":5,"unsubscribe":{"channel":"m"}}"#)
            .await
            .unwrap();
        let pubs = watcher.publications("m");
        let seen: Vec<_> = pubs.iter().map(|p| (p.key.clone(), p.removed)).collect();
        assert_eq!(
            seen,
            [(id.clone(), false), ("other".into(), false), (id, true)]
        );
        let all = MapReadStateOptions {
            limit: -1,
            ..Default::default()
        };
        let state = node.map_read_state("m", all).await.unwrap();
        let left: Vec<_> = state.entries.iter().map(|e| e.key.as_str()).collect();
        assert_eq!(left, ["other"]);
    }

    #[tokio::test]
    async fn a_late_continuation_is_disconnected_as_slow() {
        let node = map_node();
        node.run().await.unwrap();
        for k in ["a", "b", "c"] {
            put(&node, k).await;
        }
        let conn = Conn::connect(&node, "u").await;
        conn.send(r#"{"id":2,"subscribe":{"channel":"m","type":1,"phase":2,"limit":2}}"#)
            .await
            .unwrap();
        let first = result(&conn.replies());
        // The flow started longer ago than the catch-up timeout (5s by default).
        conn.session
            .0
            .state
            .lock()
            .map_flows
            .get_mut("m")
            .unwrap()
            .started -= Duration::from_secs(6);
        let late = conn
            .send(&format!(
                r#"{{"id":3,"subscribe":{{"channel":"m","type":1,"phase":2,"limit":2,"cursor":"b","offset":3,"epoch":"{}"}}}}"#,
                first.epoch
            ))
            .await;
        assert_eq!(late, Err(Disconnect::SLOW));
    }

    #[tokio::test]
    async fn concurrent_pages_get_113() {
        let node = map_node();
        node.run().await.unwrap();
        for k in ["a", "b", "c", "d", "e"] {
            put(&node, k).await;
        }
        let conn = Conn::connect(&node, "u").await;
        conn.send(r#"{"id":2,"subscribe":{"channel":"m","type":1,"phase":2,"limit":2}}"#)
            .await
            .unwrap();
        let first = result(&conn.replies());
        // Mark the flow busy as a page in progress would.
        conn.session
            .0
            .state
            .lock()
            .map_flows
            .get_mut("m")
            .unwrap()
            .busy = true;
        conn.send(&format!(
            r#"{{"id":3,"subscribe":{{"channel":"m","type":1,"phase":2,"limit":2,"cursor":"b","offset":5,"epoch":"{}"}}}}"#,
            first.epoch
        ))
        .await
        .unwrap();
        let err = conn.replies()[0].error.clone().unwrap();
        assert_eq!((err.code, err.temporary), (113, true));
    }
}

/// Shared poll: subscribe with `type` 4, track and untrack with `sub_refresh`, updates
/// from the refresh handler and from `Node::shared_poll_publish`.
mod shared_poll {
    use std::collections::HashMap;

    use parking_lot::Mutex;

    use super::*;
    use crate::{
        SharedPollChannelOptions, SharedPollItem, SharedPollMode, SharedPollRefreshReply,
        TrackBatchReply, TrackReply,
    };

    /// What the test backend answers: per key its data and version (none = removed),
    /// and the epoch.
    #[derive(Default)]
    struct Backend {
        keys: Mutex<HashMap<String, Option<(String, u64)>>>,
        epoch: Mutex<String>,
        calls: AtomicUsize,
        asked: Mutex<Vec<Vec<(String, u64)>>>,
    }

    impl Backend {
        fn set(&self, key: &str, data: &str, version: u64) {
            self.keys
                .lock()
                .insert(key.to_owned(), Some((data.to_owned(), version)));
        }

        fn remove(&self, key: &str) {
            self.keys.lock().insert(key.to_owned(), None);
        }
    }

    const INTERVAL: Duration = Duration::from_millis(60);

    fn poll_node(mode: SharedPollMode, max_keys: usize) -> (Node, Arc<Backend>) {
        let node = Node::builder().build();
        node.on_connecting(|event| async move {
            Ok(ConnectReply::new(Credentials::new(event.token)).data(Bytes::new()))
        });
        node.on_connect(|client| {
            client.on_subscribe(|_| async { Ok(SubscribeReply::new(SubscribeOptions::new())) });
            client.on_track(|e| async move {
                let mut replies = Vec::new();
                for b in &e.batches {
                    match b.signature.as_str() {
                        "ok" => replies.push(TrackBatchReply::new(0)),
                        "expired" => return Err(Error::TOKEN_EXPIRED.into()),
                        _ => return Err(Error::PERMISSION_DENIED.into()),
                    }
                }
                Ok(TrackReply::new(replies))
            });
        });
        node.on_shared_poll_channel(move |channel| {
            channel.starts_with("sp:").then(|| {
                let mut o = SharedPollChannelOptions::new();
                o.refresh_interval = INTERVAL;
                o.max_keys_per_connection = max_keys;
                o.mode = mode;
                o
            })
        });
        let backend = Arc::new(Backend::default());
        let b = backend.clone();
        node.on_shared_poll_refresh(move |event| {
            let b = b.clone();
            async move {
                b.calls.fetch_add(1, Ordering::SeqCst);
                b.asked.lock().push(
                    event
                        .items
                        .iter()
                        .map(|i| (i.key.clone(), i.version))
                        .collect(),
                );
                let keys = b.keys.lock();
                let items = event
                    .items
                    .iter()
                    .filter_map(|i| match keys.get(&i.key) {
                        Some(Some((data, version))) => Some(
                            SharedPollItem::new(i.key.clone(), Bytes::from(data.clone()))
                                .with_version(*version),
                        ),
                        Some(None) => Some(SharedPollItem::removed(i.key.clone())),
                        None => None,
                    })
                    .collect();
                Ok(SharedPollRefreshReply::new(items).with_epoch(b.epoch.lock().clone()))
            }
        });
        (node, backend)
    }

    async fn subscribed(node: &Node, channel: &str) -> (Conn, proto::SubscribeResult) {
        let conn = Conn::connect(node, "alice").await;
        conn.send(&format!(
            r#"{{"id":2,"subscribe":{{"channel":"{channel}","type":4}}}}"#
        ))
        .await
        .unwrap();
        let replies = conn.replies();
        let result = replies[0]
            .subscribe
            .clone()
            .unwrap_or_else(|| panic!("{replies:?}"));
        (conn, result)
    }

    fn track_frame(id: u32, channel: &str, signature: &str, items: &[(&str, u64)]) -> String {
        let items: Vec<String> = items
            .iter()
            .map(|(k, v)| format!(r#"{{"key":"{k}","version":{v}}}"#))
            .collect();
        format!(
            r#"{{"id":{id},"sub_refresh":{{"channel":"{channel}","type":1,"track":[{{"signature":"{signature}","items":[{}]}}]}}}}"#,
            items.join(",")
        )
    }

    async fn settle() {
        tokio::time::sleep(INTERVAL * 3).await;
    }

    #[tokio::test]
    async fn type_must_match_the_channel() {
        let (node, _) = poll_node(SharedPollMode::Versionless, 10);
        let conn = Conn::connect(&node, "alice").await;
        conn.send(r#"{"id":2,"subscribe":{"channel":"news","type":4}}"#)
            .await
            .unwrap();
        assert_eq!(conn.replies()[0].error.as_ref().unwrap().code, 108);
        conn.send(r#"{"id":3,"subscribe":{"channel":"sp:x"}}"#)
            .await
            .unwrap();
        assert_eq!(conn.replies()[0].error.as_ref().unwrap().code, 107);
        conn.send(r#"{"id":4,"subscribe":{"channel":"sp:x","type":1}}"#)
            .await
            .unwrap();
        assert_eq!(conn.replies()[0].error.as_ref().unwrap().code, 107);
        conn.send(r#"{"id":5,"subscribe":{"channel":"sp:x","type":4}}"#)
            .await
            .unwrap();
        let result = conn.replies()[0].subscribe.clone().unwrap();
        assert_eq!(result.r#type, 4);
        assert!(!result.epoch.is_empty(), "versionless epoch is the node's");
        conn.send(r#"{"id":6,"subscribe":{"channel":"sp:x","type":4}}"#)
            .await
            .unwrap();
        assert_eq!(conn.replies()[0].error.as_ref().unwrap().code, 105);
    }

    #[tokio::test]
    async fn versionless_updates_changes_and_removal() {
        let (node, backend) = poll_node(SharedPollMode::Versionless, 10);
        backend.set("a", r#"{"p":1}"#, 0);
        backend.set("b", r#"{"p":2}"#, 0);
        let (conn, _) = subscribed(&node, "sp:p").await;
        conn.send(&track_frame(3, "sp:p", "ok", &[("a", 0), ("b", 0)]))
            .await
            .unwrap();
        let reply = conn.replies();
        assert!(reply[0].sub_refresh.is_some(), "{reply:?}");
        // The cold keys are polled at once.
        tokio::time::sleep(INTERVAL / 3).await;
        let mut first = conn.publications("sp:p");
        first.sort_by(|x, y| x.key.cmp(&y.key));
        assert_eq!(first.len(), 2, "{first:?}");
        assert_eq!(first[0].key, "a");
        assert_eq!(&first[0].data[..], br#"{"p":1}"#);
        assert!(first[0].version > 0);
        // Unchanged data: nothing more.
        settle().await;
        assert!(conn.publications("sp:p").is_empty());
        // Changed data: a new version within the refresh interval.
        backend.set("a", r#"{"p":3}"#, 0);
        settle().await;
        let changed = conn.publications("sp:p");
        assert_eq!(changed.len(), 1, "{changed:?}");
        assert_eq!(&changed[0].data[..], br#"{"p":3}"#);
        assert!(changed[0].version > first[0].version);
        // A second connection holding the current version gets nothing; one holding
        // none gets the cached data in the reply.
        let (other, _) = subscribed(&node, "sp:p").await;
        other
            .send(&track_frame(
                3,
                "sp:p",
                "ok",
                &[("a", changed[0].version), ("b", 0)],
            ))
            .await
            .unwrap();
        let items = other.replies()[0].sub_refresh.clone().unwrap().items;
        assert_eq!(items.len(), 1, "{items:?}");
        assert_eq!(items[0].key, "b");
        // Removal: pushed, then the key is no longer tracked.
        backend.remove("b");
        settle().await;
        let removed = conn.publications("sp:p");
        assert!(
            removed.iter().any(|p| p.key == "b" && p.removed),
            "{removed:?}"
        );
        assert_eq!(
            node.inner
                .shared
                .shared_poll
                .tracked("sp:p", conn.session.0.seq),
            ["a"]
        );
    }

    #[tokio::test]
    async fn limits_and_signatures() {
        let (node, _) = poll_node(SharedPollMode::Versionless, 2);
        let (conn, _) = subscribed(&node, "sp:l").await;
        conn.send(&track_frame(
            3,
            "sp:l",
            "ok",
            &[("a", 0), ("b", 0), ("c", 0)],
        ))
        .await
        .unwrap();
        assert_eq!(conn.replies()[0].error.as_ref().unwrap().code, 106);
        conn.send(&track_frame(4, "sp:l", "bad", &[("a", 0)]))
            .await
            .unwrap();
        assert_eq!(conn.replies()[0].error.as_ref().unwrap().code, 103);
        conn.send(&track_frame(5, "sp:l", "expired", &[("a", 0)]))
            .await
            .unwrap();
        assert_eq!(conn.replies()[0].error.as_ref().unwrap().code, 109);
        conn.send(&track_frame(6, "sp:l", "ok", &[("a", 0), ("b", 0)]))
            .await
            .unwrap();
        assert!(conn.replies()[0].sub_refresh.is_some());
        // Inline untrack frees a slot.
        conn.send(
            r#"{"id":7,"sub_refresh":{"channel":"sp:l","type":1,"track":[{"signature":"ok","items":[{"key":"c"}]}],"untrack":["a"]}}"#,
        )
        .await
        .unwrap();
        assert!(conn.replies()[0].sub_refresh.is_some());
        let seq = conn.session.0.seq;
        assert_eq!(
            node.inner.shared.shared_poll.tracked("sp:l", seq),
            ["b", "c"]
        );
        conn.send(r#"{"id":8,"sub_refresh":{"channel":"sp:l","type":2,"untrack":["b"]}}"#)
            .await
            .unwrap();
        assert!(conn.replies()[0].sub_refresh.is_some());
        conn.send(r#"{"id":9,"sub_refresh":{"channel":"sp:l","type":2}}"#)
            .await
            .unwrap();
        assert_eq!(conn.replies()[0].error.as_ref().unwrap().code, 107);
        conn.send(r#"{"id":10,"sub_refresh":{"channel":"sp:l","type":1,"track":[]}}"#)
            .await
            .unwrap();
        assert_eq!(conn.replies()[0].error.as_ref().unwrap().code, 107);
        assert_eq!(node.inner.shared.shared_poll.tracked("sp:l", seq), ["c"]);
        // Unsubscribing forgets every key of the connection.
        conn.send(r#"{"id":11,"unsubscribe":{"channel":"sp:l"}}"#)
            .await
            .unwrap();
        assert!(
            node.inner
                .shared
                .shared_poll
                .tracked("sp:l", seq)
                .is_empty()
        );
    }

    #[tokio::test]
    async fn versioned_publish_and_epoch_change() {
        let (node, backend) = poll_node(SharedPollMode::Versioned, 10);
        *backend.epoch.lock() = "e1".to_owned();
        backend.set("k", r#"{"v":1}"#, 5);
        let (conn, result) = subscribed(&node, "sp:v").await;
        assert_eq!(result.epoch, "", "unknown until the first answer");
        conn.send(&track_frame(3, "sp:v", "ok", &[("k", 0)]))
            .await
            .unwrap();
        let _ = conn.replies();
        tokio::time::sleep(INTERVAL / 3).await;
        let first = conn.publications("sp:v");
        assert_eq!((first.len(), first[0].version), (1, 5), "{first:?}");
        // The worker asks with the version it holds.
        settle().await;
        assert!(
            backend
                .asked
                .lock()
                .iter()
                .flatten()
                .any(|(k, v)| k == "k" && *v == 5)
        );
        // A publish with a newer version is delivered; an older one is not.
        node.shared_poll_publish("sp:v", "k", Bytes::from_static(br#"{"v":2}"#), 7, "e1")
            .unwrap();
        node.shared_poll_publish("sp:v", "k", Bytes::from_static(br#"{"v":0}"#), 6, "e1")
            .unwrap();
        let published = conn.publications("sp:v");
        assert_eq!(published.len(), 1, "{published:?}");
        assert_eq!(
            (published[0].version, &published[0].data[..]),
            (7, &br#"{"v":2}"#[..])
        );
        assert_eq!(
            node.shared_poll_publish("sp:v", "k", Bytes::new(), 0, "e1"),
            Err(Error::BAD_REQUEST)
        );
        assert_eq!(
            node.shared_poll_publish("other", "k", Bytes::new(), 1, "e1"),
            Err(Error::BAD_REQUEST)
        );
        // A new epoch resets the channel: the tracker is unsubscribed with 2500.
        *backend.epoch.lock() = "e2".to_owned();
        backend.set("k", r#"{"v":9}"#, 1);
        settle().await;
        let unsubscribe = conn
            .replies()
            .into_iter()
            .filter_map(|r| r.push)
            .find_map(|p| p.unsubscribe)
            .expect("unsubscribed");
        assert_eq!(unsubscribe.code, 2500);
        assert!(!conn.session.0.is_shared_poll("sp:v"));
        // Subscribing again tells the new epoch.
        conn.send(r#"{"id":9,"subscribe":{"channel":"sp:v","type":4}}"#)
            .await
            .unwrap();
        assert_eq!(conn.replies()[0].subscribe.as_ref().unwrap().epoch, "e2");
    }

    #[tokio::test]
    async fn disconnect_forgets_the_connection_and_idle_channels_stop() {
        let (node, backend) = poll_node(SharedPollMode::Versionless, 10);
        backend.set("a", "1", 0);
        let (conn, _) = subscribed(&node, "sp:d").await;
        conn.send(&track_frame(3, "sp:d", "ok", &[("a", 0)]))
            .await
            .unwrap();
        settle().await;
        let seq = conn.session.0.seq;
        assert_eq!(node.inner.shared.shared_poll.tracked("sp:d", seq), ["a"]);
        conn.session
            .clone()
            .finish(Disconnect::CONNECTION_CLOSED)
            .await;
        assert!(
            node.inner
                .shared
                .shared_poll
                .tracked("sp:d", seq)
                .is_empty()
        );
        // Nobody tracks anything: the worker stops polling.
        tokio::time::sleep(Duration::from_millis(1300)).await;
        let calls = backend.calls.load(Ordering::SeqCst);
        settle().await;
        assert_eq!(backend.calls.load(Ordering::SeqCst), calls);
    }
}
