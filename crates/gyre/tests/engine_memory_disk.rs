//! The memory engine on its on-disk store (`MemoryBroker::open`): the conformance suite,
//! then what the store adds: streams, offsets, epochs and versions back after a reopen,
//! size and TTL limits across reopens, removal, and a corrupted record refused at open.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use gyre::{
    BoxFuture, Broker, BrokerError, ClientInfo, DiskSync, HistoryOptions, MemoryBroker,
    Publication, PublishOptions, StreamPosition,
};
use gyre_testkit::Recorder;
use gyre_testkit::broker_conformance;
use gyre_testkit::conformance::{BrokerEngine, TestNode};

struct Disk {
    node: Arc<TestNode>,
    _dir: tempfile::TempDir,
}

async fn disk(_test: &str) -> Disk {
    let dir = tempfile::tempdir().unwrap();
    let broker =
        MemoryBroker::open(dir.path(), DiskSync::Interval(Duration::from_millis(5))).unwrap();
    Disk {
        node: Arc::new(TestNode::start(Arc::new(broker)).await),
        _dir: dir,
    }
}

impl BrokerEngine for Disk {
    fn node(&self) -> BoxFuture<'_, Arc<TestNode>> {
        Box::pin(async { self.node.clone() })
    }

    fn pair(&self) -> BoxFuture<'_, (Arc<TestNode>, Arc<TestNode>)> {
        Box::pin(async { (self.node.clone(), self.node.clone()) })
    }
}

broker_conformance! {
    engine: disk, clock: Paused,
    pubsub: run,
    multi_node: skip "the memory broker serves one node: every publication reaches it",
    history: run,
    versioning: run,
    idempotency: run,
}

fn hist(size: usize, ttl: Duration) -> PublishOptions {
    PublishOptions::new().history(size, ttl)
}

const HOUR: Duration = Duration::from_secs(3600);

async fn open(dir: &Path, sync: DiskSync) -> MemoryBroker {
    let broker = MemoryBroker::open(dir, sync).unwrap();
    broker.run(Recorder::new()).await.unwrap();
    broker
}

async fn all(broker: &MemoryBroker, channel: &str) -> (StreamPosition, Vec<Publication>) {
    let h = broker
        .history(channel, HistoryOptions::new(-1))
        .await
        .unwrap();
    (h.position, h.publications)
}

fn offsets(pubs: &[Publication]) -> Vec<u64> {
    pubs.iter().map(|p| p.offset).collect()
}

#[tokio::test]
async fn disk_reopen_brings_back_streams_offsets_epochs_and_versions() {
    let dir = tempfile::tempdir().unwrap();
    let (before_a, before_b, empty) = {
        let broker = open(dir.path(), DiskSync::Always).await;
        for i in 1..=5 {
            let mut opts = hist(3, HOUR).client_info(ClientInfo::new("u1", "c1"));
            opts.tags = HashMap::from([("n".to_owned(), i.to_string())]);
            broker
                .publish("a", Bytes::from(format!("{{\"i\":{i}}}")), opts)
                .await
                .unwrap();
        }
        broker
            .publish("b", Bytes::from("v7"), hist(10, HOUR).version(7, "ve"))
            .await
            .unwrap();
        // A stream created by a read keeps its epoch too.
        let empty = all(&broker, "empty").await.0;
        (all(&broker, "a").await, all(&broker, "b").await, empty)
    };
    assert_eq!(offsets(&before_a.1), vec![3, 4, 5]);

    let broker = open(dir.path(), DiskSync::Always).await;
    assert_eq!(all(&broker, "a").await, before_a);
    assert_eq!(all(&broker, "b").await, before_b);
    assert_eq!(all(&broker, "empty").await.0, empty);
    assert_eq!(empty.offset, 0);
    // The stream goes on where it was, in the same epoch.
    let next = broker
        .publish("a", Bytes::from("6"), hist(3, HOUR))
        .await
        .unwrap();
    assert_eq!(
        next.position,
        StreamPosition::new(6, before_a.0.epoch.clone())
    );
    // The version survived: an older one is still refused.
    let stale = broker
        .publish("b", Bytes::from("v6"), hist(10, HOUR).version(6, "ve"))
        .await
        .unwrap();
    assert!(stale.suppressed);
    // Recovery from a position before the restart.
    let since = broker
        .history(
            "a",
            HistoryOptions::new(-1).since(StreamPosition::new(4, before_a.0.epoch.clone())),
        )
        .await
        .unwrap();
    assert_eq!(offsets(&since.publications), vec![5, 6]);
}

#[tokio::test]
async fn disk_size_limit_holds_on_disk_and_across_reopens() {
    let dir = tempfile::tempdir().unwrap();
    {
        let broker = open(dir.path(), DiskSync::Interval(Duration::from_millis(5))).await;
        for _ in 0..10 {
            broker
                .publish("ch", Bytes::from("x"), hist(10, HOUR))
                .await
                .unwrap();
        }
    }
    {
        let broker = open(dir.path(), DiskSync::Interval(Duration::from_millis(5))).await;
        assert_eq!(
            offsets(&all(&broker, "ch").await.1),
            (1..=10).collect::<Vec<_>>()
        );
        // A smaller size from now on trims what is on disk as well.
        broker
            .publish("ch", Bytes::from("x"), hist(3, HOUR))
            .await
            .unwrap();
    }
    let broker = open(dir.path(), DiskSync::Interval(Duration::from_millis(5))).await;
    assert_eq!(offsets(&all(&broker, "ch").await.1), vec![9, 10, 11]);
    // What was trimmed is gone from the files, not only hidden by the load.
    drop(broker);
    let db = fjall::Database::builder(dir.path()).open().unwrap();
    let pubs = db
        .keyspace("pubs", fjall::KeyspaceCreateOptions::default)
        .unwrap();
    assert_eq!(pubs.iter().count(), 3);
}

#[tokio::test]
async fn disk_ttl_holds_across_reopens() {
    let dir = tempfile::tempdir().unwrap();
    let position = {
        let broker = open(dir.path(), DiskSync::Always).await;
        broker
            .publish(
                "short",
                Bytes::from("x"),
                hist(10, Duration::from_millis(300)),
            )
            .await
            .unwrap();
        broker
            .publish("long", Bytes::from("y"), hist(10, HOUR))
            .await
            .unwrap();
        let mut opts = hist(10, HOUR);
        opts.history_meta_ttl = Some(Duration::from_millis(300));
        broker
            .publish("gone", Bytes::from("z"), opts)
            .await
            .unwrap();
        all(&broker, "short").await.0
    };
    tokio::time::sleep(Duration::from_millis(600)).await;
    let broker = open(dir.path(), DiskSync::Always).await;
    // The publication expired while the server was down; the position did not.
    let (pos, pubs) = all(&broker, "short").await;
    assert!(pubs.is_empty());
    assert_eq!(pos, position);
    assert_eq!(offsets(&all(&broker, "long").await.1), vec![1]);
    // The stream's meta expired too: a new epoch, from offset 0.
    let (pos, pubs) = all(&broker, "gone").await;
    assert!(pubs.is_empty());
    assert_eq!(pos.offset, 0);
}

#[tokio::test]
async fn disk_remove_history_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    let position = {
        let broker = open(dir.path(), DiskSync::Always).await;
        for _ in 0..3 {
            broker
                .publish("ch", Bytes::from("x"), hist(10, HOUR))
                .await
                .unwrap();
        }
        broker.remove_history("ch").await.unwrap();
        all(&broker, "ch").await.0
    };
    let broker = open(dir.path(), DiskSync::Always).await;
    let (pos, pubs) = all(&broker, "ch").await;
    assert!(pubs.is_empty());
    assert_eq!(pos, position);
    assert_eq!(pos.offset, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn disk_always_mode_under_concurrent_publishers_keeps_every_offset() {
    let dir = tempfile::tempdir().unwrap();
    {
        let broker = open(dir.path(), DiskSync::Always).await;
        let mut tasks = Vec::new();
        for t in 0..8 {
            let broker = broker.clone();
            tasks.push(tokio::spawn(async move {
                for i in 0..25 {
                    broker
                        .publish(
                            &format!("ch{}", (t + i) % 3),
                            Bytes::from("x"),
                            hist(1000, HOUR),
                        )
                        .await
                        .unwrap();
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
    }
    let broker = open(dir.path(), DiskSync::Always).await;
    let mut total = 0;
    for ch in ["ch0", "ch1", "ch2"] {
        let (pos, pubs) = all(&broker, ch).await;
        assert_eq!(offsets(&pubs), (1..=pos.offset).collect::<Vec<_>>());
        total += pubs.len();
    }
    assert_eq!(total, 200);
}

#[tokio::test]
async fn disk_corrupted_record_is_refused_with_the_directory_named() {
    let dir = tempfile::tempdir().unwrap();
    {
        let broker = open(dir.path(), DiskSync::Always).await;
        broker
            .publish("ch", Bytes::from("x"), hist(10, HOUR))
            .await
            .unwrap();
    }
    {
        let db = fjall::Database::builder(dir.path()).open().unwrap();
        let pubs = db
            .keyspace("pubs", fjall::KeyspaceCreateOptions::default)
            .unwrap();
        let key = pubs.iter().next().unwrap().key().unwrap();
        pubs.insert(key, b"\x01garbage".to_vec()).unwrap();
        db.persist(fjall::PersistMode::SyncAll).unwrap();
    }
    let err = MemoryBroker::open(dir.path(), DiskSync::Always).unwrap_err();
    assert!(matches!(err, BrokerError::Unavailable(_)), "{err:?}");
    let message = err.to_string();
    assert!(
        message.contains("corrupted publication 1 of \"ch\""),
        "{message}"
    );
    assert!(
        message.contains(&dir.path().display().to_string()),
        "{message}"
    );
    assert!(message.contains("move the directory aside"), "{message}");
}

#[tokio::test]
async fn disk_directory_held_by_another_broker_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let _first = MemoryBroker::open(dir.path(), DiskSync::Always).unwrap();
    let err = MemoryBroker::open(dir.path(), DiskSync::Always).unwrap_err();
    assert!(matches!(err, BrokerError::Unavailable(_)), "{err:?}");
}
