//! A dedicated nats-server killed and restarted under two nodes.

mod support;

use std::time::{Duration, Instant};

use bytes::Bytes;
use gyre::{Broker, BrokerError, Controller, PublishOptions};
use gyre_nats::{NatsBroker, NatsConfig};
use gyre_testkit::{Recorder, Seen};
use support::{NatsServer, TEST_TIMEOUT, next, next_pub, node, unique_prefix};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outage_fails_publish_within_timeout_then_deliveries_resume() {
    let mut server = NatsServer::start();
    tokio::time::timeout(TEST_TIMEOUT, async {
        let write_timeout = Duration::from_millis(500);
        let config = NatsConfig::new(server.url())
            .prefix(unique_prefix())
            .dial_timeout(Duration::from_millis(500))
            .write_timeout(write_timeout);
        let (a, mut a_rx) = node(config.clone()).await;
        let (b, mut b_rx) = node(config).await;
        let (a_control, b_control) = (Recorder::new(), Recorder::new());
        let (mut a_control_rx, mut b_control_rx) = (a_control.reader(), b_control.reader());
        Controller::run(&a, "a", a_control).await.unwrap();
        Controller::run(&b, "b", b_control).await.unwrap();
        b.subscribe("ch").await.unwrap();
        a.publish("ch", Bytes::from_static(b"before"), PublishOptions::new())
            .await
            .unwrap();
        assert_eq!(
            next_pub(&mut b_rx).await,
            ("ch".into(), Bytes::from_static(b"before"))
        );

        server.kill();
        let killed = Instant::now();
        loop {
            let started = Instant::now();
            let result = a
                .publish("ch", Bytes::from_static(b"lost"), PublishOptions::new())
                .await;
            assert!(
                started.elapsed() <= write_timeout + Duration::from_millis(250),
                "publish blocked for {:?}",
                started.elapsed()
            );
            match result {
                Err(BrokerError::Unavailable(_)) => break,
                Ok(_) => {}
                Err(other) => panic!("unexpected error {other:?}"),
            }
            assert!(
                killed.elapsed() < Duration::from_secs(2),
                "publish kept succeeding"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(!a.is_connected());
        assert!(matches!(
            a.publish_control(Bytes::from_static(b"lost"), None).await,
            Err(BrokerError::Unavailable(_))
        ));
        // Subscribing is refused as well while NATS is away.
        assert!(matches!(
            b.subscribe("other").await,
            Err(BrokerError::Unavailable(_))
        ));

        server.restart();
        for rx in [&mut a_rx, &mut b_rx] {
            loop {
                match next(rx, Duration::from_secs(10)).await {
                    Seen::Resubscribed => break,
                    // Publications queued in the instant before the loss was noticed may
                    // still arrive (at most once).
                    Seen::Publication(_) => {}
                    other => panic!("unexpected {other:?}"),
                }
            }
        }
        assert!(a.is_connected() && b.is_connected());
        a.publish("ch", Bytes::from_static(b"after"), PublishOptions::new())
            .await
            .unwrap();
        loop {
            let (channel, data) = next_pub(&mut b_rx).await;
            assert_eq!(channel, "ch");
            if data == Bytes::from_static(b"after") {
                break;
            }
            assert_eq!(data, Bytes::from_static(b"lost"));
        }
        // Control subscriptions came back too.
        a.publish_control(Bytes::from_static(b"hello"), None)
            .await
            .unwrap();
        b.publish_control(Bytes::from_static(b"to-a"), Some("a"))
            .await
            .unwrap();
        let wait = Duration::from_secs(5);
        assert_eq!(
            next(&mut b_control_rx, wait).await,
            Seen::Control("hello".into())
        );
        let mut at_a = vec![
            next(&mut a_control_rx, wait).await,
            next(&mut a_control_rx, wait).await,
        ];
        at_a.sort_by_key(|s| format!("{s:?}"));
        assert_eq!(
            at_a,
            vec![Seen::Control("hello".into()), Seen::Control("to-a".into())]
        );
    })
    .await
    .expect("test exceeded its time bound");
    server.kill();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_fails_when_nats_is_down() {
    let mut server = NatsServer::start();
    let url = server.url();
    server.kill();
    let started = Instant::now();
    let result =
        NatsBroker::connect(NatsConfig::new(url).dial_timeout(Duration::from_millis(500))).await;
    assert!(
        matches!(result, Err(BrokerError::Unavailable(_))),
        "{result:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(3));
}
