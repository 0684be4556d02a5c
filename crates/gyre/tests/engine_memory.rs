//! The in-memory engine against the conformance suite, plus what only it does: expiry of
//! each publication on its own, history before `run`, the default idempotency window.
//!
//! An integration test, so that the suite and this test see one copy of `gyre`.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use gyre::{
    BoxFuture, Broker, BrokerError, ClientInfo, HistoryOptions, MemoryBroker,
    MemoryPresenceManager, PresenceManager, Publication, PublishOptions,
};
use gyre_testkit::conformance::{BrokerEngine, PresenceEngine, TestNode};
use gyre_testkit::{Recorder, broker_conformance, presence_conformance};

/// One broker: a single node, so both ends of a pair are that node.
struct Memory {
    node: Arc<TestNode>,
}

async fn memory(_test: &str) -> Memory {
    Memory {
        node: Arc::new(TestNode::start(Arc::new(MemoryBroker::new())).await),
    }
}

impl BrokerEngine for Memory {
    fn node(&self) -> BoxFuture<'_, Arc<TestNode>> {
        Box::pin(async { self.node.clone() })
    }

    fn pair(&self) -> BoxFuture<'_, (Arc<TestNode>, Arc<TestNode>)> {
        Box::pin(async { (self.node.clone(), self.node.clone()) })
    }
}

impl PresenceEngine for Memory {
    fn presence(&self) -> BoxFuture<'_, Arc<dyn PresenceManager>> {
        Box::pin(async { Arc::new(MemoryPresenceManager::new()) as Arc<dyn PresenceManager> })
    }
}

broker_conformance! {
    engine: memory, clock: Paused,
    pubsub: run,
    multi_node: skip "the memory broker serves one node: every publication reaches it",
    history: run,
    versioning: run,
    idempotency: run,
}

presence_conformance! {
    engine: memory, clock: Paused,
    basic: run,
    ttl: skip "memory presence has no TTL: entries stay until removed (as upstream)",
}

fn hist(size: usize, ttl_secs: u64) -> PublishOptions {
    PublishOptions::new().history(size, Duration::from_secs(ttl_secs))
}

fn offsets(pubs: &[Publication]) -> Vec<u64> {
    pubs.iter().map(|p| p.offset).collect()
}

async fn running() -> (MemoryBroker, Arc<Recorder>) {
    let broker = MemoryBroker::new();
    let rec = Recorder::new();
    broker.run(rec.clone()).await.unwrap();
    (broker, rec)
}

/// Unlike Redis, which expires a whole stream after its last publish, each publication
/// goes at its own deadline.
#[tokio::test(start_paused = true)]
async fn memory_expires_each_publication_after_its_ttl() {
    let (broker, _rec) = running().await;
    for _ in 0..2 {
        broker
            .publish("ch", Bytes::new(), hist(10, 10))
            .await
            .unwrap();
    }
    tokio::time::advance(Duration::from_secs(5)).await;
    broker
        .publish("ch", Bytes::new(), hist(10, 10))
        .await
        .unwrap();
    tokio::time::advance(Duration::from_secs(6)).await;
    let h = broker.history("ch", HistoryOptions::new(-1)).await.unwrap();
    assert_eq!(offsets(&h.publications), vec![3]);
    tokio::time::advance(Duration::from_secs(5)).await;
    let h2 = broker.history("ch", HistoryOptions::new(-1)).await.unwrap();
    assert!(h2.publications.is_empty());
    // The position outlives the publications.
    assert_eq!(h2.position, h.position);
    assert_eq!(h2.position.offset, 3);
}

#[tokio::test]
async fn memory_history_works_before_run() {
    let broker = MemoryBroker::new();
    let a = broker.history("ch", HistoryOptions::new(-1)).await.unwrap();
    assert_eq!(a.position.offset, 0);
    assert_eq!(a.position.epoch.len(), 8);
    assert!(a.publications.is_empty());
    let b = broker.history("ch", HistoryOptions::new(0)).await.unwrap();
    assert_eq!(a.position, b.position);
}

#[tokio::test]
async fn memory_publish_and_join_need_run() {
    let broker = MemoryBroker::new();
    assert!(matches!(
        broker.publish("ch", Bytes::new(), hist(1, 1)).await,
        Err(BrokerError::Unavailable(_))
    ));
    assert!(
        broker
            .publish_join("ch", ClientInfo::default())
            .await
            .is_err()
    );
    let rec = Recorder::new();
    broker.run(rec.clone()).await.unwrap();
    broker.subscribe("ch").await.unwrap();
    broker
        .publish_join("ch", ClientInfo::new("u", "c1"))
        .await
        .unwrap();
    broker.unsubscribe("ch").await.unwrap();
    assert_eq!(
        rec.joins(),
        vec![("ch".to_owned(), ClientInfo::new("u", "c1"))]
    );
}

/// Without a result TTL in the options, a key is remembered for 5 minutes.
#[tokio::test(start_paused = true)]
async fn memory_idempotency_key_is_remembered_five_minutes_by_default() {
    let (broker, rec) = running().await;
    let opts = hist(10, 600).idempotency_key("k1");
    let first = broker
        .publish("ch", Bytes::from("a"), opts.clone())
        .await
        .unwrap();
    assert!(!first.suppressed);
    tokio::time::advance(Duration::from_secs(299)).await;
    let again = broker
        .publish("ch", Bytes::from("b"), opts.clone())
        .await
        .unwrap();
    assert!(again.suppressed);
    assert_eq!(again.position, first.position);
    assert_eq!(rec.offsets("ch"), vec![1]);
    tokio::time::advance(Duration::from_secs(2)).await;
    let later = broker.publish("ch", Bytes::from("c"), opts).await.unwrap();
    assert!(!later.suppressed);
    assert_eq!(later.position.offset, 2);
}

/// The previous publication handed over for deltas keeps its offset here (Redis stores
/// publications without one).
#[tokio::test]
async fn memory_delta_previous_publication_keeps_its_offset() {
    let (broker, rec) = running().await;
    for i in 0..2 {
        broker
            .publish(
                "ch",
                Bytes::from(i.to_string()),
                hist(10, 60).use_delta(true),
            )
            .await
            .unwrap();
    }
    let delivered = rec.publications();
    assert_eq!(delivered[1].prev.as_ref().map(|p| p.offset), Some(1));
}
