//! Broker conformance cases, in four groups:
//!
//! * `pubsub`: delivery to the node's handler, publications without history, join and
//!   leave, `run` once;
//! * `multi_node`: only subscribed nodes receive, every one of them, until they
//!   unsubscribe;
//! * `history`: streams with offsets and epoch, size, TTL, meta TTL, since/limit/reverse,
//!   removal, deltas, order under concurrent publishers;
//! * `versioning`: versioned publishes into a stream;
//! * `idempotency`: publishing twice with one key publishes once.
//!
//! Each case starts from an empty namespace (see [`BrokerEngine`]).

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use gyre::{
    Broker, BrokerError, ClientInfo, HistoryOptions, HistoryResult, Publication, PublishOptions,
    PublishResult, StreamPosition,
};

use super::BrokerEngine;
use crate::recorder::{Reader, Seen, eventually};

/// How long a case waits for a delivery.
const WAIT: Duration = Duration::from_secs(5);
/// Length of a stream epoch (upstream: 8 random letters).
const EPOCH_LEN: usize = 8;
/// The shortest TTL every engine keeps exactly (Redis counts in whole seconds).
const SECOND: Duration = Duration::from_secs(1);

fn hist(size: usize, ttl: Duration) -> PublishOptions {
    PublishOptions::new().history(size, ttl)
}

fn hist60(size: usize) -> PublishOptions {
    hist(size, Duration::from_secs(60))
}

async fn publish_n(
    broker: &dyn Broker,
    channel: &str,
    n: usize,
    opts: &PublishOptions,
) -> Vec<PublishResult> {
    let mut out = Vec::new();
    for i in 0..n {
        out.push(
            broker
                .publish(channel, Bytes::from(format!("{i}")), opts.clone())
                .await
                .unwrap(),
        );
    }
    out
}

/// Reads the publications `publish_n` made, in order.
async fn expect_numbered(rx: &mut Reader, channel: &str, n: usize) {
    for i in 0..n {
        let (got, data) = rx.next_publication().await;
        assert_eq!(got, channel);
        assert_eq!(
            data,
            Bytes::from(i.to_string()),
            "publication {i} out of order"
        );
    }
}

fn offsets(pubs: &[Publication]) -> Vec<u64> {
    pubs.iter().map(|p| p.offset).collect()
}

async fn read(broker: &dyn Broker, channel: &str, opts: HistoryOptions) -> HistoryResult {
    broker.history(channel, opts).await.unwrap()
}

fn is_bad_request<T>(result: &Result<T, BrokerError>) -> bool {
    matches!(result, Err(BrokerError::BadRequest(..)))
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

// ---- pubsub ----

/// Without history a publication is delivered with offset 0 and no position, and the
/// publish result is empty. A size without TTL is still "no history".
pub async fn publish_without_history_delivers_without_position(engine: &impl BrokerEngine) {
    let n = engine.node().await;
    n.broker.subscribe("ch").await.unwrap();
    let r = n
        .broker
        .publish("ch", Bytes::from("x"), PublishOptions::new())
        .await
        .unwrap();
    assert_eq!(r, PublishResult::default());
    let r = n
        .broker
        .publish(
            "ch",
            Bytes::from("y"),
            PublishOptions::new().history(10, Duration::ZERO),
        )
        .await
        .unwrap();
    assert_eq!(r.position, StreamPosition::default());
    assert!(eventually(WAIT, || n.rec.datas("ch").len() == 2).await);
    assert_eq!(n.rec.datas("ch"), vec![Bytes::from("x"), Bytes::from("y")]);
    let delivered = n.rec.publications();
    assert_eq!(delivered.len(), 2);
    assert!(delivered.iter().all(|d| d.publication.offset == 0
        && d.position == StreamPosition::default()
        && d.prev.is_none()));
    engine.assert_nothing_stored().await;
    engine.cleanup().await;
}

/// The publisher's info, tags, the delta flag and the accept time travel with the
/// publication.
pub async fn publication_carries_info_tags_delta_and_time(engine: &impl BrokerEngine) {
    let (a, b) = engine.pair().await;
    b.broker.subscribe("ch").await.unwrap();
    let mut info = ClientInfo::new("user-1", "client-1");
    info.conn_info = Bytes::from_static(br#"{"name":"x"}"#);
    let tags = HashMap::from([("k".to_owned(), "v".to_owned())]);
    let before = now_ms();
    a.broker
        .publish(
            "ch",
            Bytes::from_static(b"{}"),
            PublishOptions::new()
                .client_info(info.clone())
                .tags(tags.clone())
                .use_delta(true),
        )
        .await
        .unwrap();
    match b.rec.reader().next(WAIT).await {
        Seen::Publication(d) => {
            assert_eq!(d.channel, "ch");
            assert_eq!(d.publication.data, Bytes::from_static(b"{}"));
            assert_eq!(d.publication.info, Some(info));
            assert_eq!(d.publication.tags, tags);
            assert_eq!(d.publication.offset, 0);
            assert!(d.publication.time >= before && d.publication.time <= now_ms());
            assert_eq!(d.position, StreamPosition::default());
            assert!(d.use_delta);
            assert!(d.prev.is_none());
        }
        other => panic!("expected a publication, got {other:?}"),
    }
    engine.cleanup().await;
}

/// Publications of one publisher arrive in publish order, each once.
pub async fn publications_arrive_in_publish_order(engine: &impl BrokerEngine) {
    let (a, b) = engine.pair().await;
    b.broker.subscribe("chat:room").await.unwrap();
    // Publishing right after subscribe returns: the subscription must be in effect.
    let results = publish_n(a.broker.as_ref(), "chat:room", 1000, &PublishOptions::new()).await;
    for result in results {
        assert_eq!(result.position, StreamPosition::default());
        assert!(!result.suppressed);
    }
    let mut rx = b.rec.reader();
    expect_numbered(&mut rx, "chat:room", 1000).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(rx.try_next().is_none(), "unexpected extra event");
    engine.cleanup().await;
}

/// Join and leave reach the subscribed node with the client's info, once each.
pub async fn join_and_leave_are_delivered(engine: &impl BrokerEngine) {
    let (a, b) = engine.pair().await;
    b.broker.subscribe("room").await.unwrap();
    let mut joined = ClientInfo::new("u1", "c1");
    joined.conn_info = Bytes::from_static(b"{\"n\":1}");
    joined.chan_info = Bytes::from_static(b"\"ci\"");
    a.broker.publish_join("room", joined.clone()).await.unwrap();
    a.broker
        .publish_leave("room", ClientInfo::new("u2", "c2"))
        .await
        .unwrap();
    let mut rx = b.rec.reader();
    assert_eq!(
        rx.next(WAIT).await,
        Seen::Join("room".into(), joined.clone())
    );
    assert_eq!(
        rx.next(WAIT).await,
        Seen::Leave("room".into(), ClientInfo::new("u2", "c2"))
    );
    b.broker.unsubscribe("room").await.unwrap();
    assert_eq!(b.rec.joins(), vec![("room".to_owned(), joined)]);
    assert_eq!(
        b.rec.leaves(),
        vec![("room".to_owned(), ClientInfo::new("u2", "c2"))]
    );
    engine.cleanup().await;
}

/// A broker delivers to one handler: a second `run` is refused.
pub async fn run_twice_is_rejected(engine: &impl BrokerEngine) {
    let n = engine.node().await;
    assert!(is_bad_request(&n.broker.run(n.rec.clone()).await));
    engine.cleanup().await;
}

// ---- multi_node ----

/// Every subscribed node gets every publication, in order.
pub async fn publications_reach_every_subscribed_node(engine: &impl BrokerEngine) {
    let (a, b) = engine.pair().await;
    a.broker.subscribe("chat:room").await.unwrap();
    b.broker.subscribe("chat:room").await.unwrap();
    publish_n(a.broker.as_ref(), "chat:room", 1000, &PublishOptions::new()).await;
    for node in [&a, &b] {
        let mut rx = node.rec.reader();
        expect_numbered(&mut rx, "chat:room", 1000).await;
        assert!(rx.try_next().is_none(), "unexpected extra event");
    }
    engine.cleanup().await;
}

/// A node gets only the channels it subscribed to: nothing before `subscribe`, nothing
/// after `unsubscribe`, and again after a new `subscribe`. Subscribing twice is one
/// subscription; unsubscribing twice or from an unknown channel is harmless.
pub async fn only_subscribed_nodes_receive(engine: &impl BrokerEngine) {
    let (a, b) = engine.pair().await;
    b.broker.subscribe("x").await.unwrap();
    b.broker.subscribe("marker").await.unwrap();
    b.broker.subscribe("x").await.unwrap();
    let mut rx = b.rec.reader();
    a.broker
        .publish("x", Bytes::from_static(b"1"), hist60(500))
        .await
        .unwrap();
    a.broker
        .publish("marker", Bytes::from_static(b"m1"), PublishOptions::new())
        .await
        .unwrap();
    // Channels are delivered independently: their relative order is free.
    let mut seen = vec![rx.next_publication().await, rx.next_publication().await];
    seen.sort();
    assert_eq!(
        seen,
        vec![
            ("marker".to_owned(), Bytes::from_static(b"m1")),
            ("x".to_owned(), Bytes::from_static(b"1"))
        ]
    );
    // Node A did not subscribe: it received nothing.
    assert!(a.rec.publications().is_empty());

    b.broker.unsubscribe("x").await.unwrap();
    b.broker.unsubscribe("x").await.unwrap();
    b.broker.unsubscribe("never-subscribed").await.unwrap();
    a.broker
        .publish("x", Bytes::from_static(b"2"), hist60(500))
        .await
        .unwrap();
    // One publisher's order holds: once the marker arrives, "2" would have too.
    a.broker
        .publish("marker", Bytes::from_static(b"m2"), PublishOptions::new())
        .await
        .unwrap();
    assert_eq!(
        rx.next_publication().await,
        ("marker".into(), Bytes::from_static(b"m2"))
    );

    b.broker.subscribe("x").await.unwrap();
    a.broker
        .publish("x", Bytes::from_static(b"3"), PublishOptions::new())
        .await
        .unwrap();
    assert_eq!(
        rx.next_publication().await,
        ("x".into(), Bytes::from_static(b"3"))
    );
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(rx.try_next().is_none(), "unexpected extra event");
    assert!(a.rec.publications().is_empty());
    engine.cleanup().await;
}

// ---- history ----

/// Offsets count from 1 in a stream whose epoch (8 letters) stays; the delivered
/// publications are the stored ones; another channel is another stream.
pub async fn offsets_start_at_one_with_stable_epoch(engine: &impl BrokerEngine) {
    let n = engine.node().await;
    n.broker.subscribe("ch").await.unwrap();
    let mut tags = HashMap::new();
    tags.insert("k".to_owned(), "v".to_owned());
    let opts = hist60(10)
        .client_info(ClientInfo::new("u", "c"))
        .tags(tags.clone());
    let results = publish_n(n.broker.as_ref(), "ch", 3, &opts).await;
    let epoch = results[0].position.epoch.clone();
    assert_eq!(epoch.len(), EPOCH_LEN);
    assert!(epoch.chars().all(|c| c.is_ascii_alphabetic()));
    for (i, r) in results.iter().enumerate() {
        assert_eq!(r.position, StreamPosition::new(i as u64 + 1, epoch.clone()));
        assert!(!r.suppressed);
    }
    assert!(eventually(WAIT, || n.rec.offsets("ch").len() == 3).await);
    let delivered = n.rec.publications();
    assert_eq!(delivered.len(), 3);
    for (i, d) in delivered.iter().enumerate() {
        assert_eq!(d.channel, "ch");
        assert_eq!(d.publication.offset, i as u64 + 1);
        assert_eq!(
            d.position,
            StreamPosition::new(d.publication.offset, epoch.clone())
        );
        assert_eq!(d.publication.info, Some(ClientInfo::new("u", "c")));
        assert_eq!(d.publication.tags, tags);
        assert!(d.publication.time > 0);
        assert!(!d.use_delta && d.prev.is_none());
    }
    let h = read(n.broker.as_ref(), "ch", HistoryOptions::new(-1)).await;
    assert_eq!(h.position, StreamPosition::new(3, epoch.clone()));
    assert_eq!(offsets(&h.publications), vec![1, 2, 3]);
    assert_eq!(
        h.publications,
        delivered
            .into_iter()
            .map(|d| d.publication)
            .collect::<Vec<_>>()
    );
    // Another channel is another stream.
    let other = n.broker.publish("other", Bytes::new(), opts).await.unwrap();
    assert_eq!(other.position.offset, 1);
    assert_ne!(other.position.epoch, epoch);
    engine.cleanup().await;
}

/// A stream keeps at most `history_size` publications, the newest.
pub async fn trims_to_history_size(engine: &impl BrokerEngine) {
    let n = engine.node().await;
    publish_n(n.broker.as_ref(), "ch", 5, &hist60(3)).await;
    let h = read(n.broker.as_ref(), "ch", HistoryOptions::new(-1)).await;
    assert_eq!(h.position.offset, 5);
    assert_eq!(offsets(&h.publications), vec![3, 4, 5]);
    assert_eq!(&h.publications[0].data[..], b"2");
    engine.cleanup().await;
}

/// Publications are gone `history_ttl` after the last publish; the position stays.
pub async fn history_expires_after_ttl_but_position_stays(engine: &impl BrokerEngine) {
    let n = engine.node().await;
    let b = n.broker.as_ref();
    publish_n(b, "ch", 2, &hist(10, SECOND)).await;
    let h = read(b, "ch", HistoryOptions::new(-1)).await;
    assert_eq!(h.publications.len(), 2);
    tokio::time::sleep(Duration::from_millis(1300)).await;
    let h2 = read(b, "ch", HistoryOptions::new(-1)).await;
    assert!(h2.publications.is_empty());
    // The position outlives the publications.
    assert_eq!(h2.position, h.position);
    assert_eq!(h2.position.offset, 2);
    engine.cleanup().await;
}

/// A publication with a long TTL followed by one with a short TTL is gone with the
/// newer one: a hole in the kept part of a stream would make recovery unsound.
pub async fn older_publication_never_outlives_newer(engine: &impl BrokerEngine) {
    let n = engine.node().await;
    let b = n.broker.as_ref();
    publish_n(b, "ch", 1, &hist(10, 100 * SECOND)).await;
    publish_n(b, "ch", 1, &hist(10, SECOND)).await;
    tokio::time::sleep(Duration::from_millis(1300)).await;
    let h = read(b, "ch", HistoryOptions::new(-1)).await;
    assert!(
        h.publications.is_empty(),
        "a hole would make recovery unsound"
    );
    engine.cleanup().await;
}

/// Reads with a meta TTL keep the stream meta alive; once it expires (without publishes
/// or reads) the channel starts a new epoch at offset 0, for a read or a publish.
pub async fn meta_ttl_expiry_starts_new_epoch(engine: &impl BrokerEngine) {
    let n = engine.node().await;
    let b = n.broker.as_ref();
    let meta = Duration::from_secs(1);
    let opts = hist(10, Duration::from_secs(1)).history_meta_ttl(meta);
    let first = b.publish("ch", Bytes::new(), opts.clone()).await.unwrap();
    let keep_alive = || HistoryOptions::new(0).meta_ttl(meta);
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(read(b, "ch", keep_alive()).await.position, first.position);
    tokio::time::sleep(Duration::from_millis(600)).await;
    // 1.2 s after the publish, alive thanks to the read.
    assert_eq!(read(b, "ch", keep_alive()).await.position, first.position);
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let h = read(b, "ch", keep_alive()).await;
    assert_eq!(h.position.offset, 0);
    assert_ne!(h.position.epoch, first.position.epoch);
    assert!(h.publications.is_empty());
    let next = b.publish("ch", Bytes::new(), opts.clone()).await.unwrap();
    assert_eq!(next.position, StreamPosition::new(1, h.position.epoch));

    // Publishing after the meta expired (without a read) also starts a new epoch.
    let a = b.publish("x", Bytes::new(), opts.clone()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(2200)).await;
    let again = b.publish("x", Bytes::new(), opts).await.unwrap();
    assert_eq!(again.position.offset, 1);
    assert_ne!(a.position.epoch, again.position.epoch);
    engine.cleanup().await;
}

/// Reading a stream that was never published to creates its meta: offset 0 and a new
/// epoch, the same for the next read.
pub async fn history_creates_meta_for_unknown_channel(engine: &impl BrokerEngine) {
    let n = engine.node().await;
    let a = read(n.broker.as_ref(), "ch", HistoryOptions::new(-1)).await;
    assert_eq!(a.position.offset, 0);
    assert_eq!(a.position.epoch.len(), EPOCH_LEN);
    assert!(a.publications.is_empty());
    let b = read(n.broker.as_ref(), "ch", HistoryOptions::new(0)).await;
    assert_eq!(a.position, b.position);
    engine.cleanup().await;
}

/// Limit 0 reads only the position, a negative one everything, N at most N; reverse
/// reads newest first.
pub async fn history_limits(engine: &impl BrokerEngine) {
    let n = engine.node().await;
    let b = n.broker.as_ref();
    publish_n(b, "ch", 5, &hist60(10)).await;
    let h = read(b, "ch", HistoryOptions::new(0)).await;
    assert!(h.publications.is_empty());
    assert_eq!(h.position.offset, 5);
    let cases = [
        (HistoryOptions::new(-1), vec![1, 2, 3, 4, 5]),
        (HistoryOptions::new(-7), vec![1, 2, 3, 4, 5]),
        (HistoryOptions::new(2), vec![1, 2]),
        (HistoryOptions::new(9), vec![1, 2, 3, 4, 5]),
        (HistoryOptions::new(2).reverse(true), vec![5, 4]),
        (HistoryOptions::new(-1).reverse(true), vec![5, 4, 3, 2, 1]),
    ];
    for (opts, expect) in cases {
        let filter = opts.filter.clone();
        assert_eq!(
            offsets(&read(b, "ch", opts).await.publications),
            expect,
            "{filter:?}"
        );
    }
    engine.cleanup().await;
}

/// `since` reads after a position (before it in reverse), within what is kept; an empty
/// epoch matches any epoch.
pub async fn history_since_forward_and_reverse(engine: &impl BrokerEngine) {
    let n = engine.node().await;
    let b = n.broker.as_ref();
    let top = publish_n(b, "ch", 6, &hist60(4)).await[5].position.clone();
    let at = |o: u64| StreamPosition::new(o, top.epoch.clone());
    let fwd = |o: u64, limit: i32| HistoryOptions::new(limit).since(at(o));
    assert_eq!(
        offsets(&read(b, "ch", fwd(3, -1)).await.publications),
        vec![4, 5, 6]
    );
    assert_eq!(
        offsets(&read(b, "ch", fwd(3, 2)).await.publications),
        vec![4, 5]
    );
    // Trimmed start: only what is kept (3..=6) comes back.
    assert_eq!(
        offsets(&read(b, "ch", fwd(0, -1)).await.publications),
        vec![3, 4, 5, 6]
    );
    let h = read(b, "ch", fwd(6, -1)).await;
    assert!(h.publications.is_empty());
    assert_eq!(h.position, top);
    assert!(read(b, "ch", fwd(9, -1)).await.publications.is_empty());
    // Empty epoch means "any epoch".
    let any = HistoryOptions::new(-1).since(StreamPosition::new(4, ""));
    assert_eq!(offsets(&read(b, "ch", any).await.publications), vec![5, 6]);

    let rev = |o: u64, limit: i32| HistoryOptions::new(limit).since(at(o)).reverse(true);
    assert_eq!(
        offsets(&read(b, "ch", rev(5, -1)).await.publications),
        vec![4, 3]
    );
    assert_eq!(
        offsets(&read(b, "ch", rev(6, 2)).await.publications),
        vec![5, 4]
    );
    assert!(read(b, "ch", rev(3, -1)).await.publications.is_empty());
    assert!(read(b, "ch", rev(1, -1)).await.publications.is_empty());
    assert_eq!(
        offsets(&read(b, "ch", rev(7, 1)).await.publications),
        vec![6]
    );
    engine.cleanup().await;
}

/// Another epoch is an unrecoverable position; reverse from offset 0 a bad request.
pub async fn history_errors(engine: &impl BrokerEngine) {
    let n = engine.node().await;
    let b = n.broker.as_ref();
    let top = publish_n(b, "ch", 2, &hist60(4)).await[1].position.clone();
    let wrong = HistoryOptions::new(-1).since(StreamPosition::new(1, "otherepo"));
    assert!(matches!(
        b.history("ch", wrong).await,
        Err(BrokerError::UnrecoverablePosition)
    ));
    let rev0 = HistoryOptions::new(-1)
        .since(StreamPosition::new(0, top.epoch))
        .reverse(true);
    assert!(is_bad_request(&b.history("ch", rev0).await));
    engine.cleanup().await;
}

/// A publish without history leaves no stream behind.
pub async fn publish_without_history_keeps_no_stream(engine: &impl BrokerEngine) {
    let n = engine.node().await;
    let b = n.broker.as_ref();
    b.publish("ch", Bytes::from("x"), PublishOptions::new())
        .await
        .unwrap();
    b.publish(
        "ch",
        Bytes::from("y"),
        PublishOptions::new().history(10, Duration::ZERO),
    )
    .await
    .unwrap();
    let h = read(b, "ch", HistoryOptions::new(-1)).await;
    assert_eq!(h.position.offset, 0);
    assert!(h.publications.is_empty());
    engine.cleanup().await;
}

/// Removing history drops the publications and keeps the position; removing an unknown
/// channel's history is harmless.
pub async fn remove_history_keeps_position(engine: &impl BrokerEngine) {
    let n = engine.node().await;
    let b = n.broker.as_ref();
    let top = publish_n(b, "ch", 3, &hist60(10)).await[2].position.clone();
    b.remove_history("ch").await.unwrap();
    b.remove_history("never-seen").await.unwrap();
    let h = read(b, "ch", HistoryOptions::new(-1)).await;
    assert!(h.publications.is_empty());
    assert_eq!(h.position, top);
    let next = b.publish("ch", Bytes::new(), hist60(10)).await.unwrap();
    assert_eq!(next.position, StreamPosition::new(4, top.epoch));
    engine.cleanup().await;
}

/// With `use_delta` the handler gets the stream's previous publication.
pub async fn delta_gets_previous_publication(engine: &impl BrokerEngine) {
    let n = engine.node().await;
    n.broker.subscribe("ch").await.unwrap();
    publish_n(n.broker.as_ref(), "ch", 2, &hist60(10).use_delta(true)).await;
    assert!(eventually(WAIT, || n.rec.offsets("ch").len() == 2).await);
    let d = n.rec.publications();
    assert!(d[0].use_delta && d[1].use_delta);
    assert_eq!(d[0].prev, None);
    // The previous publication's own offset differs between engines (Redis stores it
    // without one, as upstream), so only its payload is compared.
    assert_eq!(
        d[1].prev.as_ref().map(|p| p.data.clone()),
        Some(Bytes::from("0"))
    );
    assert_eq!(d[1].position.offset, 2);
    engine.cleanup().await;
}

/// A versioned publish not above the last version (in the same version epoch) is
/// suppressed; an empty version epoch compares with the last one; a new version epoch
/// restarts; unversioned publishes always go through.
pub async fn versioned_publish(engine: &impl BrokerEngine) {
    let n = engine.node().await;
    let b = n.broker.as_ref();
    b.subscribe("ch").await.unwrap();
    let v = |version: u64, epoch: &str| hist60(10).version(version, epoch);
    let suppressed = |r: PublishResult| r.suppressed;
    assert!(!suppressed(
        b.publish("ch", Bytes::new(), v(1, "e")).await.unwrap()
    ));
    assert!(!suppressed(
        b.publish("ch", Bytes::new(), v(2, "e")).await.unwrap()
    ));
    let same = b.publish("ch", Bytes::new(), v(2, "e")).await.unwrap();
    assert!(same.suppressed);
    assert_eq!(same.position.offset, 2);
    assert!(suppressed(
        b.publish("ch", Bytes::new(), v(1, "e")).await.unwrap()
    ));
    // An empty version epoch compares with whatever epoch came last (as upstream).
    assert!(suppressed(
        b.publish("ch", Bytes::new(), v(2, "")).await.unwrap()
    ));
    // A new version epoch restarts the comparison.
    assert!(!suppressed(
        b.publish("ch", Bytes::new(), v(1, "f")).await.unwrap()
    ));
    // Unversioned publishes always go through.
    assert!(!suppressed(
        b.publish("ch", Bytes::new(), hist60(10)).await.unwrap()
    ));
    let h = read(b, "ch", HistoryOptions::new(-1)).await;
    assert_eq!(offsets(&h.publications), vec![1, 2, 3, 4]);
    assert!(eventually(WAIT, || n.rec.offsets("ch") == vec![1, 2, 3, 4]).await);
    engine.cleanup().await;
}

/// Many tasks publishing into one stream at once: the subscriber sees the offsets
/// strictly in order.
pub async fn concurrent_publishers_deliver_in_offset_order(engine: &impl BrokerEngine) {
    let (a, b) = engine.pair().await;
    b.broker.subscribe("ch").await.unwrap();
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let a = a.clone();
        tasks.push(tokio::spawn(async move {
            for _ in 0..50 {
                a.broker
                    .publish("ch", Bytes::from("x"), hist60(500))
                    .await
                    .unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert!(eventually(WAIT, || b.rec.offsets("ch").len() == 200).await);
    assert_eq!(b.rec.offsets("ch"), (1..=200).collect::<Vec<_>>());
    engine.cleanup().await;
}

// ---- idempotency ----

/// One key publishes once per channel until its result TTL passes; the repeated publish
/// returns the first result. Without history too.
pub async fn idempotent_publish(engine: &impl BrokerEngine) {
    let n = engine.node().await;
    let b = n.broker.as_ref();
    b.subscribe("ch").await.unwrap();
    let mut opts = hist60(10).idempotency_key("k1");
    opts.idempotent_result_ttl = Some(Duration::from_secs(1));
    let first = b
        .publish("ch", Bytes::from("a"), opts.clone())
        .await
        .unwrap();
    assert!(!first.suppressed);
    let again = b
        .publish("ch", Bytes::from("b"), opts.clone())
        .await
        .unwrap();
    assert!(again.suppressed);
    assert_eq!(again.position, first.position);
    // Keys are per channel.
    assert!(
        !b.publish("other", Bytes::from("a"), opts.clone())
            .await
            .unwrap()
            .suppressed
    );
    // After the result TTL the key publishes again.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let later = b.publish("ch", Bytes::from("c"), opts).await.unwrap();
    assert!(!later.suppressed);
    assert_eq!(later.position.offset, 2);
    assert!(eventually(WAIT, || n.rec.offsets("ch") == vec![1, 2]).await);
    assert_eq!(n.rec.datas("ch"), vec![Bytes::from("a"), Bytes::from("c")]);

    // Without history too, with the same result TTL.
    b.subscribe("nohist").await.unwrap();
    let mut opts = PublishOptions::new().idempotency_key("k2");
    opts.idempotent_result_ttl = Some(Duration::from_secs(1));
    let first = b
        .publish("nohist", Bytes::from("x"), opts.clone())
        .await
        .unwrap();
    let again = b
        .publish("nohist", Bytes::from("y"), opts.clone())
        .await
        .unwrap();
    assert_eq!((first.suppressed, again.suppressed), (false, true));
    assert_eq!(again.position, StreamPosition::default());
    assert!(eventually(WAIT, || n.rec.datas("nohist").len() == 1).await);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(n.rec.datas("nohist"), vec![Bytes::from("x")]);
    tokio::time::sleep(Duration::from_millis(2000)).await;
    assert!(
        !b.publish("nohist", Bytes::from("z"), opts)
            .await
            .unwrap()
            .suppressed
    );
    engine.cleanup().await;
}

/// Runs the broker conformance suite for one engine: one `#[test]` per case, in a module
/// `broker_conformance`.
///
/// `engine` is an `async fn(test_name: &str) -> impl BrokerEngine`; `clock` a
/// [`Clock`](super::Clock) variant. Every group must be named with `run` or with
/// `skip "why"`; skipped cases are listed as ignored tests with that reason.
///
/// ```text
/// gyre_testkit::broker_conformance! {
///     engine: nats_engine, clock: Real,
///     pubsub: run, multi_node: run,
///     history: skip "NATS is at-most-once PUB/SUB: no history",
///     versioning: skip "NATS is at-most-once PUB/SUB: no history",
///     idempotency: skip "NATS keeps no idempotency results",
/// }
/// ```
#[macro_export]
macro_rules! broker_conformance {
    (
        engine: $engine:path, clock: $clock:ident,
        pubsub: $p:ident $($pw:literal)?,
        multi_node: $m:ident $($mw:literal)?,
        history: $h:ident $($hw:literal)?,
        versioning: $v:ident $($vw:literal)?,
        idempotency: $i:ident $($iw:literal)? $(,)?
    ) => {
        $crate::__broker_case_table!(__broker_tests;
            $engine, $clock, ($p $($pw)?), ($m $($mw)?), ($h $($hw)?), ($v $($vw)?),
            ($i $($iw)?)
        );
    };
}

/// The one list of the broker cases, by group, handed to the macro `$make`.
#[doc(hidden)]
#[macro_export]
macro_rules! __broker_case_table {
    ($make:ident; $($args:tt)*) => {
        $crate::$make! { $($args)*;
            PubSub [
                publish_without_history_delivers_without_position,
                publication_carries_info_tags_delta_and_time,
                publications_arrive_in_publish_order,
                join_and_leave_are_delivered,
                run_twice_is_rejected,
            ]
            MultiNode [
                publications_reach_every_subscribed_node,
                only_subscribed_nodes_receive,
            ]
            History [
                offsets_start_at_one_with_stable_epoch,
                trims_to_history_size,
                history_expires_after_ttl_but_position_stays,
                older_publication_never_outlives_newer,
                meta_ttl_expiry_starts_new_epoch,
                history_creates_meta_for_unknown_channel,
                history_limits,
                history_since_forward_and_reverse,
                history_errors,
                publish_without_history_keeps_no_stream,
                remove_history_keeps_position,
                delta_gets_previous_publication,
                concurrent_publishers_deliver_in_offset_order,
            ]
            Versioning [versioned_publish]
            Idempotency [idempotent_publish]
        }
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __broker_tests {
    (
        $engine:path, $clock:ident, $p:tt, $m:tt, $h:tt, $v:tt, $i:tt;
        PubSub [$($pc:ident),* $(,)?]
        MultiNode [$($mc:ident),* $(,)?]
        History [$($hc:ident),* $(,)?]
        Versioning [$($vc:ident),* $(,)?]
        Idempotency [$($ic:ident),* $(,)?]
    ) => {
        mod broker_conformance {
            #[allow(unused_imports)]
            use super::*;
            $crate::__conformance_cases!(broker; $p; $engine, $clock; $($pc),*);
            $crate::__conformance_cases!(broker; $m; $engine, $clock; $($mc),*);
            $crate::__conformance_cases!(broker; $h; $engine, $clock; $($hc),*);
            $crate::__conformance_cases!(broker; $v; $engine, $clock; $($vc),*);
            $crate::__conformance_cases!(broker; $i; $engine, $clock; $($ic),*);
        }
    };
}

/// A group of broker cases, for [`run_groups`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Group {
    /// Delivery, publications without history, join and leave.
    PubSub,
    /// Delivery to several nodes.
    MultiNode,
    /// History streams.
    History,
    /// Versioned publishes.
    Versioning,
    /// Idempotency keys.
    Idempotency,
}

#[doc(hidden)]
#[macro_export]
macro_rules! __broker_runner {
    (; $($group:ident [$($case:ident),* $(,)?])*) => {
        /// Runs every case of `groups` one after the other, each on its own engine from
        /// `make` (given the case's name). For engines too costly to set up per test
        /// (a Redis Cluster, shards): start it once, then run the suite in one test.
        pub async fn run_groups<E, F, Fut>(make: F, groups: &[Group])
        where
            E: BrokerEngine,
            F: Fn(&'static str) -> Fut,
            Fut: std::future::Future<Output = E>,
        {
            $(
                if groups.contains(&Group::$group) {
                    $(
                        eprintln!("conformance case {}", stringify!($case));
                        $case(&make(stringify!($case)).await).await;
                    )*
                }
            )*
        }
    };
}

crate::__broker_case_table!(__broker_runner;);
