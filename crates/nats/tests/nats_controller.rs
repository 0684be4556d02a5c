//! Control messages between two nodes: broadcast and direct.

mod support;

use std::time::Duration;

use bytes::Bytes;
use gyre::Controller;
use gyre_nats::{NatsBroker, NatsConfig};
use gyre_testkit::{Recorder, Seen};
use support::{TEST_TIMEOUT, nats_url, next, unique_prefix};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broadcast_reaches_every_node_and_direct_only_its_target() {
    tokio::time::timeout(TEST_TIMEOUT, async {
        let prefix = unique_prefix();
        let config = NatsConfig::new(nats_url()).prefix(&prefix);
        let a = NatsBroker::connect(config.clone()).await.unwrap();
        let b = NatsBroker::connect(config).await.unwrap();
        let (a_rec, b_rec) = (Recorder::new(), Recorder::new());
        let (mut a_rx, mut b_rx) = (a_rec.reader(), b_rec.reader());
        Controller::run(&a, "node-a", a_rec).await.unwrap();
        Controller::run(&b, "node-b", b_rec).await.unwrap();

        a.publish_control(Bytes::from_static(b"to-b"), Some("node-b"))
            .await
            .unwrap();
        a.publish_control(Bytes::from_static(b"to-a"), Some("node-a"))
            .await
            .unwrap();
        a.publish_control(Bytes::from_static(b"all"), None)
            .await
            .unwrap();

        let wait = Duration::from_secs(5);
        let mut at_b = vec![next(&mut b_rx, wait).await, next(&mut b_rx, wait).await];
        let mut at_a = vec![next(&mut a_rx, wait).await, next(&mut a_rx, wait).await];
        // Broadcast and direct messages arrive on two subjects; their relative order is free.
        for seen in [&mut at_a, &mut at_b] {
            seen.sort_by_key(|s| format!("{s:?}"));
        }
        assert_eq!(
            at_b,
            vec![Seen::Control("all".into()), Seen::Control("to-b".into())]
        );
        assert_eq!(
            at_a,
            vec![Seen::Control("all".into()), Seen::Control("to-a".into())]
        );
        // Nothing else: a misrouted direct message would have arrived before the broadcast.
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(a_rx.try_next().is_none());
        assert!(b_rx.try_next().is_none());
    })
    .await
    .expect("test exceeded its time bound");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_subjects_follow_the_prefix() {
    let b = NatsBroker::connect(NatsConfig::new(nats_url()).prefix("centrifugo"))
        .await
        .unwrap();
    assert_eq!(b.control_subject(), "centrifugo.control");
    assert_eq!(b.node_subject("n1"), "centrifugo.node.n1");
    assert_eq!(b.channel_subject("chat:1"), "centrifugo.client.chat:1");
    assert_eq!(NatsConfig::default().prefix, "centrifuge");
}
