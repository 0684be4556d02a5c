//! NATS against the broker conformance suite (PUB/SUB only: no history, versions or
//! idempotency, as upstream), plus what is NATS's own: subscription calls applied in call
//! order, history refused, wildcards refused, the wire format and raw mode. Runs on the
//! shared NATS server, each test under its own subject prefix.

mod support;

use std::collections::HashMap;
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use gyre::{Broker, BrokerError, ClientInfo, HistoryOptions, PublishOptions, StreamPosition};
use gyre_nats::{HISTORY_NOT_AVAILABLE, NatsConfig, RawMode};
use gyre_protocol::proto;
use gyre_testkit::{Seen, broker_conformance};
use prost::Message;
use support::{TEST_TIMEOUT, nats, nats_url, next, next_pub, node, unique_prefix};

broker_conformance! {
    engine: nats, clock: Real,
    pubsub: run,
    multi_node: run,
    history: skip "NATS is at-most-once PUB/SUB: no history streams (as upstream)",
    versioning: skip "NATS is at-most-once PUB/SUB: versions need a history stream",
    idempotency: skip "NATS is at-most-once PUB/SUB: no idempotency results are kept",
}

fn config(prefix: &str) -> NatsConfig {
    NatsConfig::new(nats_url()).prefix(prefix)
}

async fn bounded(test: impl std::future::Future<Output = ()>) {
    tokio::time::timeout(TEST_TIMEOUT, test)
        .await
        .expect("test exceeded its time bound");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_subscribe_unsubscribe_end_in_call_order() {
    bounded(async {
        let prefix = unique_prefix();
        let (a, _a_rx) = node(config(&prefix)).await;
        let (b, mut b_rx) = node(config(&prefix)).await;
        b.subscribe("marker").await.unwrap();
        // Calls on one channel are applied in the order they were made, even when they
        // overlap: the last one (subscribe, then unsubscribe) decides.
        for last_subscribes in [true, false] {
            let mut calls = Vec::new();
            let b = &b;
            for i in 0..20 {
                let subscribe = (i % 2 == 1) == last_subscribes;
                calls.push(async move {
                    if subscribe {
                        b.subscribe("flip").await
                    } else {
                        b.unsubscribe("flip").await
                    }
                });
            }
            for r in futures_util::future::join_all(calls).await {
                r.unwrap();
            }
            a.publish("flip", Bytes::from_static(b"f"), PublishOptions::new())
                .await
                .unwrap();
            a.publish("marker", Bytes::from_static(b"m"), PublishOptions::new())
                .await
                .unwrap();
            // Channels are delivered independently, so their relative order is free.
            let mut seen = vec![next_pub(&mut b_rx).await];
            if last_subscribes {
                seen.push(next_pub(&mut b_rx).await);
                seen.sort();
            }
            let mut expected = vec![("marker".to_owned(), Bytes::from_static(b"m"))];
            if last_subscribes {
                expected.insert(0, ("flip".to_owned(), Bytes::from_static(b"f")));
            }
            assert_eq!(seen, expected);
            tokio::time::sleep(Duration::from_millis(100)).await;
            assert!(b_rx.try_next().is_none(), "unexpected extra event");
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_is_not_available_and_publish_ignores_history_options() {
    bounded(async {
        let prefix = unique_prefix();
        let (a, mut a_rx) = node(config(&prefix)).await;
        match a.history("ch", HistoryOptions::new(-1)).await {
            Err(BrokerError::NotAvailable(message)) => assert_eq!(message, HISTORY_NOT_AVAILABLE),
            other => panic!("expected history to be unavailable, got {other:?}"),
        }
        match a.remove_history("ch").await {
            Err(BrokerError::NotAvailable(message)) => assert_eq!(message, HISTORY_NOT_AVAILABLE),
            other => panic!("expected history to be unavailable, got {other:?}"),
        }
        // As upstream: published at most once, without a stream position.
        a.subscribe("ch").await.unwrap();
        let result = a
            .publish(
                "ch",
                Bytes::from_static(b"h"),
                PublishOptions::new().history(10, Duration::from_secs(60)),
            )
            .await
            .unwrap();
        assert_eq!(result.position, StreamPosition::default());
        assert_eq!(
            next_pub(&mut a_rx).await,
            ("ch".into(), Bytes::from_static(b"h"))
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wildcard_channels_are_refused() {
    bounded(async {
        let (a, _rx) = node(config(&unique_prefix())).await;
        for channel in ["a.*", "a.>"] {
            assert!(matches!(
                a.subscribe(channel).await,
                Err(BrokerError::BadRequest(_))
            ));
            assert!(matches!(
                a.publish(channel, Bytes::new(), PublishOptions::new())
                    .await,
                Err(BrokerError::BadRequest(_))
            ));
        }
        assert!(matches!(
            a.publish("has space", Bytes::new(), PublishOptions::new())
                .await,
            Err(BrokerError::BadRequest(_))
        ));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wire_format_is_centrifugo_push_on_client_subject() {
    bounded(async {
        let prefix = unique_prefix();
        let (a, mut a_rx) = node(config(&prefix)).await;
        let raw = async_nats::connect(nats_url()).await.unwrap();
        let mut sniff = raw
            .subscribe(format!("{prefix}.client.news"))
            .await
            .unwrap();
        raw.flush().await.unwrap();
        // Make sure the sniffer's SUB is in effect before publishing.
        let inbox = raw.new_inbox();
        let mut echo = raw.subscribe(inbox.clone()).await.unwrap();
        raw.publish(inbox, Bytes::new()).await.unwrap();
        echo.next().await.unwrap();

        let info = ClientInfo::new("u", "c");
        a.publish(
            "news",
            Bytes::from_static(b"\"d\""),
            PublishOptions::new().client_info(info),
        )
        .await
        .unwrap();
        a.publish_join("news", ClientInfo::new("u", "c"))
            .await
            .unwrap();
        let push = proto::Push::decode(sniff.next().await.unwrap().payload).unwrap();
        assert_eq!(push.channel, "news");
        let publication = push.r#pub.unwrap();
        assert_eq!(publication.data, Bytes::from_static(b"\"d\""));
        assert_eq!(publication.info.unwrap().user, "u");
        let push = proto::Push::decode(sniff.next().await.unwrap().payload).unwrap();
        assert_eq!(push.join.unwrap().info.unwrap().client, "c");

        // A Centrifugo node publishing with a stream position (epoch in a tag).
        a.subscribe("news").await.unwrap();
        let foreign = proto::Push {
            channel: "news".into(),
            r#pub: Some(proto::Publication {
                data: Bytes::from_static(b"1"),
                offset: 5,
                tags: HashMap::from([("__centrifugo_epoch".to_owned(), "ep".to_owned())]),
                ..Default::default()
            }),
            ..Default::default()
        };
        raw.publish(
            format!("{prefix}.client.news"),
            foreign.encode_to_vec().into(),
        )
        .await
        .unwrap();
        match next(&mut a_rx, Duration::from_secs(5)).await {
            Seen::Publication(d) => {
                assert_eq!(d.position, StreamPosition::new(5, "ep"));
                assert!(d.publication.tags.is_empty());
            }
            other => panic!("expected a publication, got {other:?}"),
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_mode_exchanges_bare_payloads() {
    bounded(async {
        let prefix = format!("{}.", unique_prefix());
        let raw_config =
            config("unused").raw_mode(RawMode::new(&prefix).channel_replacement(":", "."));
        let (a, mut a_rx) = node(raw_config).await;
        let plain = async_nats::connect(nats_url()).await.unwrap();
        let mut sniff = plain.subscribe(format!("{prefix}orders.eu")).await.unwrap();
        let inbox = plain.new_inbox();
        let mut echo = plain.subscribe(inbox.clone()).await.unwrap();
        plain.publish(inbox, Bytes::new()).await.unwrap();
        echo.next().await.unwrap();

        a.subscribe("orders:eu").await.unwrap();
        a.publish(
            "orders:eu",
            Bytes::from_static(b"bare"),
            PublishOptions::new(),
        )
        .await
        .unwrap();
        assert_eq!(
            sniff.next().await.unwrap().payload,
            Bytes::from_static(b"bare")
        );
        assert_eq!(
            next_pub(&mut a_rx).await,
            ("orders:eu".into(), Bytes::from_static(b"bare"))
        );

        plain
            .publish(
                format!("{prefix}orders.eu"),
                Bytes::from_static(b"from outside"),
            )
            .await
            .unwrap();
        assert_eq!(
            next_pub(&mut a_rx).await,
            ("orders:eu".into(), Bytes::from_static(b"from outside"))
        );
        // Join and leave are not sent in raw mode.
        a.publish_join("orders:eu", ClientInfo::new("u", "c"))
            .await
            .unwrap();
        plain
            .publish(format!("{prefix}orders.eu"), Bytes::from_static(b"after"))
            .await
            .unwrap();
        assert_eq!(
            next_pub(&mut a_rx).await,
            ("orders:eu".into(), Bytes::from_static(b"after"))
        );
    })
    .await;
}
