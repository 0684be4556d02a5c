//! Redis Cluster (3 masters started by the test) and client-side sharding over two
//! standalone instances: publish, history, presence and PUB/SUB across two broker
//! instances, then the whole broker conformance suite on the same servers.

mod support;

use std::time::Duration;

use bytes::Bytes;
use gyre::{
    Broker, ClientInfo, Controller, HistoryOptions, PresenceManager, PublishOptions, StreamPosition,
};
use gyre_redis::{RedisBroker, RedisConfig};
use gyre_testkit::conformance::broker::{Group, run_groups};
use gyre_testkit::redis_server::{RedisServer, start_redis_cluster};
use gyre_testkit::{Recorder, eventually};
use support::Redis;

const WAIT: Duration = Duration::from_secs(5);

fn hist() -> PublishOptions {
    PublishOptions::new().history(10, Duration::from_secs(60))
}

/// Every group of the broker conformance suite, each case under its own prefix.
async fn conformance(config: &RedisConfig, servers: &[String]) {
    let groups = [
        Group::PubSub,
        Group::MultiNode,
        Group::History,
        Group::Versioning,
        Group::Idempotency,
    ];
    run_groups(
        |test| {
            let engine = Redis::on(config.clone(), servers, test);
            async { engine }
        },
        &groups,
    )
    .await;
}

/// The same scenario for any topology: node A publishes, node B receives, both read the
/// same history and presence.
async fn exercise(config: RedisConfig, channels: &[String]) {
    let a = RedisBroker::new(config.clone()).await.unwrap();
    let b = RedisBroker::new(config).await.unwrap();
    let (ra, rb) = (Recorder::new(), Recorder::new());
    Broker::run(&a, ra.clone()).await.unwrap();
    Broker::run(&b, rb.clone()).await.unwrap();
    Controller::run(&a, "a", ra.clone()).await.unwrap();
    Controller::run(&b, "b", rb.clone()).await.unwrap();
    for ch in channels {
        b.subscribe(ch).await.unwrap();
    }
    for ch in channels {
        for i in 0..3 {
            a.publish(ch, Bytes::from(format!("{ch}:{i}")), hist())
                .await
                .unwrap();
        }
        a.publish_join(ch, ClientInfo::new("u", "c")).await.unwrap();
    }
    assert!(
        eventually(WAIT, || channels.iter().all(|ch| rb.offsets(ch).len() == 3)).await,
        "PUB/SUB delivery across nodes"
    );
    assert!(eventually(WAIT, || rb.joins().len() == channels.len()).await);
    for ch in channels {
        assert_eq!(rb.offsets(ch), vec![1, 2, 3]);
        let ha = a.history(ch, HistoryOptions::new(-1)).await.unwrap();
        let hb = b.history(ch, HistoryOptions::new(-1)).await.unwrap();
        assert_eq!(ha, hb);
        assert_eq!(ha.publications.len(), 3);
        assert_eq!(&ha.publications[2].data[..], format!("{ch}:2").as_bytes());
        let since =
            HistoryOptions::new(-1).since(StreamPosition::new(1, ha.position.epoch.clone()));
        assert_eq!(b.history(ch, since).await.unwrap().publications.len(), 2);
        let idem = hist().idempotency_key("k");
        let first = a.publish(ch, Bytes::new(), idem.clone()).await.unwrap();
        let again = b.publish(ch, Bytes::new(), idem).await.unwrap();
        assert!(again.suppressed);
        assert_eq!(first.position, again.position);
    }
    let (pa, pb) = (a.presence_manager(), b.presence_manager());
    for ch in channels {
        pa.add_presence(ch, "c1", ClientInfo::new("u1", "c1"))
            .await
            .unwrap();
        pb.add_presence(ch, "c2", ClientInfo::new("u2", "c2"))
            .await
            .unwrap();
        assert_eq!(pb.presence(ch).await.unwrap().len(), 2);
        pb.remove_presence(ch, "c1", "u1").await.unwrap();
        let stats = pa.presence_stats(ch).await.unwrap();
        assert_eq!((stats.num_clients, stats.num_users), (1, 1));
    }
    a.publish_control(Bytes::from_static(b"all"), None)
        .await
        .unwrap();
    a.publish_control(Bytes::from_static(b"direct"), Some("b"))
        .await
        .unwrap();
    assert!(eventually(WAIT, || rb.control().len() == 2 && ra.control().len() == 1).await);
    a.close();
    b.close();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_cluster_publish_history_presence_pubsub() {
    let servers = start_redis_cluster();
    let urls: Vec<String> = servers.iter().map(RedisServer::url).collect();
    let config = RedisConfig::cluster(urls.clone()).prefix("clu");
    // Enough channels to land on every master.
    let channels: Vec<String> = (0..12).map(|i| format!("news:{i}")).collect();
    exercise(config.clone(), &channels).await;
    // Every key of one channel is hash-tagged into one slot, and the channels are spread
    // over all three masters.
    let mut masters_with_keys = 0;
    for url in &urls {
        let mut conn = redis::Client::open(url.as_str())
            .unwrap()
            .get_connection()
            .unwrap();
        let keys: Vec<String> = redis::cmd("KEYS").arg("clu.*").query(&mut conn).unwrap();
        for key in &keys {
            assert!(key.contains("{news:"), "{key} is not hash-tagged");
        }
        let streams = keys
            .iter()
            .filter(|k| k.starts_with("clu.stream.{"))
            .count();
        let metas = keys
            .iter()
            .filter(|k| k.starts_with("clu.stream.meta.{"))
            .count();
        assert_eq!(streams, metas, "stream and meta of a channel share a node");
        if streams > 0 {
            masters_with_keys += 1;
        }
    }
    assert_eq!(masters_with_keys, 3);
    conformance(&config, &urls).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_sharding_over_two_instances() {
    let one = RedisServer::start(false);
    let two = RedisServer::start(false);
    let urls = [one.url(), two.url()];
    let config = RedisConfig::sharded(urls.clone()).prefix("shard");
    let channels: Vec<String> = (0..12).map(|i| format!("room{i}")).collect();
    exercise(config.clone(), &channels).await;
    // Each channel lives on exactly one instance; both instances got some channels.
    let mut per_server = Vec::new();
    for url in &urls {
        let mut conn = redis::Client::open(url.as_str())
            .unwrap()
            .get_connection()
            .unwrap();
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg("shard.stream.meta.*")
            .query(&mut conn)
            .unwrap();
        per_server.push(keys);
    }
    assert!(per_server.iter().all(|k| !k.is_empty()), "{per_server:?}");
    assert_eq!(per_server[0].len() + per_server[1].len(), channels.len());
    for key in &per_server[0] {
        assert!(!per_server[1].contains(key));
    }
    conformance(&config, &urls).await;
}
