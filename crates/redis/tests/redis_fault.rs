//! Fault tolerance against a dedicated `redis-server` that is SIGKILLed and restarted on
//! the same port: commands fail fast with `Unavailable`, and PUB/SUB reconnects,
//! resubscribes every channel and tells the node.

use std::time::{Duration, Instant};

use bytes::Bytes;
use gyre::{Broker, BrokerError, Controller, HistoryOptions, PublishOptions};
use gyre_redis::{RedisBroker, RedisConfig};
use gyre_testkit::redis_server::RedisServer;
use gyre_testkit::{Recorder, eventually};

const IO_TIMEOUT: Duration = Duration::from_secs(1);

fn config(url: &str) -> RedisConfig {
    let mut config = RedisConfig::new(url).prefix("fault");
    config.io_timeout = IO_TIMEOUT;
    config.connect_timeout = Duration::from_millis(500);
    config
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_restart_fails_fast_then_resubscribes() {
    let mut server = RedisServer::start(false);
    let url = server.url();
    let publisher = RedisBroker::new(config(&url)).await.unwrap();
    Broker::run(&publisher, Recorder::new()).await.unwrap();
    let subscriber = RedisBroker::new(config(&url)).await.unwrap();
    let rec = Recorder::new();
    Broker::run(&subscriber, rec.clone()).await.unwrap();
    Controller::run(&subscriber, "sub-node", rec.clone())
        .await
        .unwrap();
    subscriber.subscribe("a").await.unwrap();
    subscriber.subscribe("b").await.unwrap();
    let opts = PublishOptions::new().history(10, Duration::from_secs(60));
    publisher
        .publish("a", Bytes::from("before"), opts.clone())
        .await
        .unwrap();
    assert!(eventually(Duration::from_secs(3), || rec.datas("a").len() == 1).await);

    server.kill();
    // Every command fails with Unavailable, promptly: never a hang, never a silent drop.
    for _ in 0..2 {
        let started = Instant::now();
        let r = publisher
            .publish("a", Bytes::from("lost"), opts.clone())
            .await;
        assert!(matches!(r, Err(BrokerError::Unavailable(_))), "{r:?}");
        assert!(
            started.elapsed() <= IO_TIMEOUT + Duration::from_millis(300),
            "{:?}",
            started.elapsed()
        );
    }
    let started = Instant::now();
    let r = publisher.history("a", HistoryOptions::new(-1)).await;
    assert!(matches!(r, Err(BrokerError::Unavailable(_))), "{r:?}");
    assert!(started.elapsed() <= IO_TIMEOUT + Duration::from_millis(300));
    let r = publisher
        .publish_control(Bytes::from_static(b"x"), None)
        .await;
    assert!(matches!(r, Err(BrokerError::Unavailable(_))), "{r:?}");
    // The subscriber notices the dropped PUB/SUB connection: new subscriptions fail.
    assert!(
        eventually(Duration::from_secs(3), || {
            futures_util::FutureExt::now_or_never(subscriber.subscribe("c"))
                .is_some_and(|r| matches!(r, Err(BrokerError::Unavailable(_))))
        })
        .await
    );
    assert_eq!(rec.resubscribed(), 0);

    server.restart();
    assert!(eventually(Duration::from_secs(5), || rec.resubscribed() == 1).await);
    // The command connection reconnects on its own; the first attempts may still fail.
    let mut published = None;
    let deadline = Instant::now() + Duration::from_secs(5);
    while published.is_none() && Instant::now() < deadline {
        match publisher
            .publish("a", Bytes::from("after"), opts.clone())
            .await
        {
            Ok(r) => published = Some(r),
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    let published = published.expect("publish works again after the restart");
    // Redis lost everything (no persistence): a new stream incarnation.
    assert_eq!(published.position.offset, 1);
    publisher
        .publish("b", Bytes::from("b-after"), PublishOptions::new())
        .await
        .unwrap();
    publisher
        .publish_control(Bytes::from_static(b"ctl"), Some("sub-node"))
        .await
        .unwrap();
    // Delivered without calling subscribe again: "a", "b" and control were resubscribed.
    assert!(
        eventually(Duration::from_secs(3), || rec.datas("a").len() == 2
            && rec.datas("b").len() == 1
            && rec.control().len() == 1)
        .await
    );
    assert_eq!(
        rec.datas("a"),
        vec![Bytes::from("before"), Bytes::from("after")]
    );
    assert_eq!(rec.publications()[1].position.offset, 1);
    // Health PINGs (every io_timeout) on a healthy connection cause no reconnects.
    tokio::time::sleep(IO_TIMEOUT * 2 + Duration::from_millis(300)).await;
    assert_eq!(rec.resubscribed(), 1);
    publisher.close();
    subscriber.close();
}
