//! The memory broker's semantic tests, run against the real Redis on 127.0.0.1:6379, plus
//! PUB/SUB between two broker instances ("nodes"), the controller, and byte-level
//! compatibility of keys and payloads with upstream centrifuge.

mod support;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use gyre::{
    Broker, BrokerError, ClientInfo, Controller, HistoryOptions, HistoryResult, Publication,
    PublishOptions, PublishResult, StreamPosition,
};
use gyre_protocol::proto;
use gyre_redis::{RedisBroker, RedisConfig};
use prost::Message;
use support::{MAIN_REDIS, Recorder, cleanup, eventually, unique_prefix};

const WAIT: Duration = Duration::from_secs(5);

struct Node {
    broker: RedisBroker,
    rec: Arc<Recorder>,
    prefix: String,
}

impl Drop for Node {
    fn drop(&mut self) {
        self.broker.close();
    }
}

fn config(prefix: &str) -> RedisConfig {
    RedisConfig::new(MAIN_REDIS).prefix(prefix)
}

async fn node_with(config: RedisConfig) -> Node {
    let prefix = config.prefix.clone();
    let broker = RedisBroker::new(config).await.unwrap();
    let rec = Recorder::new();
    Broker::run(&broker, rec.clone()).await.unwrap();
    Node {
        broker,
        rec,
        prefix,
    }
}

async fn node(prefix: &str) -> Node {
    node_with(config(prefix)).await
}

fn hist(size: usize, ttl: Duration) -> PublishOptions {
    PublishOptions::new().history(size, ttl)
}

fn hist60(size: usize) -> PublishOptions {
    hist(size, Duration::from_secs(60))
}

async fn publish_n(
    b: &RedisBroker,
    ch: &str,
    n: usize,
    opts: &PublishOptions,
) -> Vec<PublishResult> {
    let mut out = Vec::new();
    for i in 0..n {
        out.push(
            b.publish(ch, Bytes::from(format!("{i}")), opts.clone())
                .await
                .unwrap(),
        );
    }
    out
}

fn offsets(pubs: &[Publication]) -> Vec<u64> {
    pubs.iter().map(|p| p.offset).collect()
}

async fn read(b: &RedisBroker, ch: &str, opts: HistoryOptions) -> HistoryResult {
    b.history(ch, opts).await.unwrap()
}

#[tokio::test]
async fn redis_offsets_start_at_one_with_stable_epoch() {
    let n = node(&unique_prefix("offsets")).await;
    n.broker.subscribe("ch").await.unwrap();
    let mut tags = HashMap::new();
    tags.insert("k".to_owned(), "v".to_owned());
    let opts = hist60(10)
        .client_info(ClientInfo::new("u", "c"))
        .tags(tags.clone());
    let results = publish_n(&n.broker, "ch", 3, &opts).await;
    let epoch = results[0].position.epoch.clone();
    assert_eq!(epoch.len(), 8);
    assert!(epoch.chars().all(|c| c.is_ascii_alphabetic()));
    for (i, r) in results.iter().enumerate() {
        assert_eq!(r.position, StreamPosition::new(i as u64 + 1, epoch.clone()));
        assert!(!r.suppressed);
    }
    assert!(eventually(WAIT, || n.rec.offsets("ch").len() == 3).await);
    let delivered = n.rec.publications.lock().clone();
    for (i, (_, p, pos, delta, prev)) in delivered.iter().enumerate() {
        assert_eq!(p.offset, i as u64 + 1);
        assert_eq!(*pos, StreamPosition::new(p.offset, epoch.clone()));
        assert_eq!(p.info, Some(ClientInfo::new("u", "c")));
        assert_eq!(p.tags, tags);
        assert!(p.time > 0);
        assert!(!delta && prev.is_none());
    }
    let h = read(&n.broker, "ch", HistoryOptions::new(-1)).await;
    assert_eq!(h.position, StreamPosition::new(3, epoch.clone()));
    assert_eq!(
        h.publications,
        delivered.into_iter().map(|d| d.1).collect::<Vec<_>>()
    );
    let other = n.broker.publish("other", Bytes::new(), opts).await.unwrap();
    assert_eq!(other.position.offset, 1);
    assert_ne!(other.position.epoch, epoch);
    cleanup(MAIN_REDIS, &n.prefix).await;
}

#[tokio::test]
async fn redis_trims_to_history_size() {
    let n = node(&unique_prefix("trim")).await;
    publish_n(&n.broker, "ch", 5, &hist60(3)).await;
    let h = read(&n.broker, "ch", HistoryOptions::new(-1)).await;
    assert_eq!(h.position.offset, 5);
    assert_eq!(offsets(&h.publications), vec![3, 4, 5]);
    assert_eq!(&h.publications[0].data[..], b"2");
    cleanup(MAIN_REDIS, &n.prefix).await;
}

#[tokio::test]
async fn redis_history_expires_after_ttl_but_position_stays() {
    // Redis expires the whole stream `history_ttl` after its last publish (upstream).
    let n = node(&unique_prefix("ttl")).await;
    publish_n(&n.broker, "ch", 2, &hist(10, Duration::from_secs(1))).await;
    assert_eq!(
        read(&n.broker, "ch", HistoryOptions::new(-1))
            .await
            .publications
            .len(),
        2
    );
    tokio::time::sleep(Duration::from_millis(1300)).await;
    let h = read(&n.broker, "ch", HistoryOptions::new(-1)).await;
    assert!(h.publications.is_empty());
    assert_eq!(h.position.offset, 2);
    cleanup(MAIN_REDIS, &n.prefix).await;
}

#[tokio::test]
async fn redis_meta_ttl_expiry_starts_new_epoch() {
    let n = node(&unique_prefix("meta")).await;
    let meta = Duration::from_secs(1);
    let opts = hist(10, Duration::from_secs(1)).history_meta_ttl(meta);
    let first = n
        .broker
        .publish("ch", Bytes::new(), opts.clone())
        .await
        .unwrap();
    let keep_alive = || {
        // HistoryOptions has no meta_ttl builder; the field is public.
        let mut o = HistoryOptions::new(0);
        o.meta_ttl = Some(meta);
        o
    };
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(
        read(&n.broker, "ch", keep_alive()).await.position,
        first.position
    );
    tokio::time::sleep(Duration::from_millis(600)).await;
    // 1.2 s after the publish, alive thanks to the read.
    assert_eq!(
        read(&n.broker, "ch", keep_alive()).await.position,
        first.position
    );
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let h = read(&n.broker, "ch", keep_alive()).await;
    assert_eq!(h.position.offset, 0);
    assert_ne!(h.position.epoch, first.position.epoch);
    let next = n.broker.publish("ch", Bytes::new(), opts).await.unwrap();
    assert_eq!(next.position, StreamPosition::new(1, h.position.epoch));
    cleanup(MAIN_REDIS, &n.prefix).await;
}

#[tokio::test]
async fn redis_history_creates_meta_for_unknown_channel() {
    let n = node(&unique_prefix("unknown")).await;
    let a = read(&n.broker, "ch", HistoryOptions::new(-1)).await;
    assert_eq!(a.position.offset, 0);
    assert_eq!(a.position.epoch.len(), 8);
    assert!(a.publications.is_empty());
    let b = read(&n.broker, "ch", HistoryOptions::new(0)).await;
    assert_eq!(a.position, b.position);
    cleanup(MAIN_REDIS, &n.prefix).await;
}

#[tokio::test]
async fn redis_history_limits() {
    let n = node(&unique_prefix("limits")).await;
    publish_n(&n.broker, "ch", 5, &hist60(10)).await;
    let h = read(&n.broker, "ch", HistoryOptions::new(0)).await;
    assert!(h.publications.is_empty());
    assert_eq!(h.position.offset, 5);
    assert_eq!(
        offsets(
            &read(&n.broker, "ch", HistoryOptions::new(-1))
                .await
                .publications
        ),
        vec![1, 2, 3, 4, 5]
    );
    assert_eq!(
        offsets(
            &read(&n.broker, "ch", HistoryOptions::new(2))
                .await
                .publications
        ),
        vec![1, 2]
    );
    assert_eq!(
        offsets(
            &read(&n.broker, "ch", HistoryOptions::new(2).reverse(true))
                .await
                .publications
        ),
        vec![5, 4]
    );
    assert_eq!(
        offsets(
            &read(&n.broker, "ch", HistoryOptions::new(-1).reverse(true))
                .await
                .publications
        ),
        vec![5, 4, 3, 2, 1]
    );
    cleanup(MAIN_REDIS, &n.prefix).await;
}

#[tokio::test]
async fn redis_history_since_forward_and_reverse() {
    let n = node(&unique_prefix("since")).await;
    let b = &n.broker;
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
    assert_eq!(
        offsets(&read(b, "ch", fwd(0, -1)).await.publications),
        vec![3, 4, 5, 6]
    );
    let h = read(b, "ch", fwd(6, -1)).await;
    assert!(h.publications.is_empty());
    assert_eq!(h.position, top);
    assert!(read(b, "ch", fwd(9, -1)).await.publications.is_empty());
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
    cleanup(MAIN_REDIS, &n.prefix).await;
}

#[tokio::test]
async fn redis_history_errors() {
    let n = node(&unique_prefix("errors")).await;
    let top = publish_n(&n.broker, "ch", 2, &hist60(4)).await[1]
        .position
        .clone();
    let wrong = HistoryOptions::new(-1).since(StreamPosition::new(1, "otherepo"));
    assert!(matches!(
        n.broker.history("ch", wrong).await,
        Err(BrokerError::UnrecoverablePosition)
    ));
    let rev0 = HistoryOptions::new(-1)
        .since(StreamPosition::new(0, top.epoch))
        .reverse(true);
    assert!(matches!(
        n.broker.history("ch", rev0).await,
        Err(BrokerError::BadRequest(_))
    ));
    cleanup(MAIN_REDIS, &n.prefix).await;
}

#[tokio::test]
async fn redis_idempotent_publish() {
    let n = node(&unique_prefix("idem")).await;
    n.broker.subscribe("ch").await.unwrap();
    let mut opts = hist60(10).idempotency_key("k1");
    opts.idempotent_result_ttl = Some(Duration::from_secs(1));
    let first = n
        .broker
        .publish("ch", Bytes::from("a"), opts.clone())
        .await
        .unwrap();
    assert!(!first.suppressed);
    let again = n
        .broker
        .publish("ch", Bytes::from("b"), opts.clone())
        .await
        .unwrap();
    assert!(again.suppressed);
    assert_eq!(again.position, first.position);
    // Keys are per channel.
    assert!(
        !n.broker
            .publish("other", Bytes::from("a"), opts.clone())
            .await
            .unwrap()
            .suppressed
    );
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let later = n
        .broker
        .publish("ch", Bytes::from("c"), opts)
        .await
        .unwrap();
    assert!(!later.suppressed);
    assert_eq!(later.position.offset, 2);
    assert!(eventually(WAIT, || n.rec.offsets("ch") == vec![1, 2]).await);
    assert_eq!(n.rec.datas("ch"), vec![Bytes::from("a"), Bytes::from("c")]);

    // Without history too.
    n.broker.subscribe("nohist").await.unwrap();
    let opts = PublishOptions::new().idempotency_key("k2");
    let a = n
        .broker
        .publish("nohist", Bytes::from("x"), opts.clone())
        .await
        .unwrap();
    let b = n
        .broker
        .publish("nohist", Bytes::from("y"), opts)
        .await
        .unwrap();
    assert_eq!((a.suppressed, b.suppressed), (false, true));
    assert_eq!(b.position, StreamPosition::default());
    assert!(eventually(WAIT, || n.rec.datas("nohist").len() == 1).await);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(n.rec.datas("nohist"), vec![Bytes::from("x")]);
    cleanup(MAIN_REDIS, &n.prefix).await;
}

#[tokio::test]
async fn redis_versioned_publish() {
    let n = node(&unique_prefix("version")).await;
    let b = &n.broker;
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
    assert!(suppressed(
        b.publish("ch", Bytes::new(), v(2, "")).await.unwrap()
    ));
    assert!(!suppressed(
        b.publish("ch", Bytes::new(), v(1, "f")).await.unwrap()
    ));
    assert!(!suppressed(
        b.publish("ch", Bytes::new(), hist60(10)).await.unwrap()
    ));
    let h = read(b, "ch", HistoryOptions::new(-1)).await;
    assert_eq!(offsets(&h.publications), vec![1, 2, 3, 4]);
    cleanup(MAIN_REDIS, &n.prefix).await;
}

#[tokio::test]
async fn redis_publish_without_history_keeps_nothing() {
    let n = node(&unique_prefix("nohist")).await;
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
    assert!(
        n.rec
            .publications
            .lock()
            .iter()
            .all(|d| d.1.offset == 0 && d.2 == StreamPosition::default())
    );
    // Nothing was written to Redis.
    let client = redis::Client::open(MAIN_REDIS).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{}.*", n.prefix))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(keys.is_empty(), "{keys:?}");
    let h = read(&n.broker, "ch", HistoryOptions::new(-1)).await;
    assert_eq!(h.position.offset, 0);
    assert!(h.publications.is_empty());
    cleanup(MAIN_REDIS, &n.prefix).await;
}

#[tokio::test]
async fn redis_remove_history_keeps_position() {
    let n = node(&unique_prefix("remove")).await;
    let top = publish_n(&n.broker, "ch", 3, &hist60(10)).await[2]
        .position
        .clone();
    n.broker.remove_history("ch").await.unwrap();
    n.broker.remove_history("never-seen").await.unwrap();
    let h = read(&n.broker, "ch", HistoryOptions::new(-1)).await;
    assert!(h.publications.is_empty());
    assert_eq!(h.position, top);
    let next = n
        .broker
        .publish("ch", Bytes::new(), hist60(10))
        .await
        .unwrap();
    assert_eq!(next.position, StreamPosition::new(4, top.epoch));
    cleanup(MAIN_REDIS, &n.prefix).await;
}

#[tokio::test]
async fn redis_delta_gets_previous_publication() {
    let n = node(&unique_prefix("delta")).await;
    n.broker.subscribe("ch").await.unwrap();
    publish_n(&n.broker, "ch", 2, &hist60(10).use_delta(true)).await;
    assert!(eventually(WAIT, || n.rec.offsets("ch").len() == 2).await);
    let d = n.rec.publications.lock().clone();
    assert!(d[0].3 && d[1].3);
    assert_eq!(d[0].4, None);
    assert_eq!(
        d[1].4.as_ref().map(|p| p.data.clone()),
        Some(Bytes::from("0"))
    );
    assert_eq!(d[1].2.offset, 2);
    cleanup(MAIN_REDIS, &n.prefix).await;
}

#[tokio::test]
async fn redis_list_mode_history() {
    let prefix = unique_prefix("lists");
    let mut cfg = config(&prefix);
    cfg.history_use_lists = true;
    let n = node_with(cfg).await;
    n.broker.subscribe("ch").await.unwrap();
    let res = publish_n(&n.broker, "ch", 5, &hist60(3)).await;
    let epoch = res[0].position.epoch.clone();
    assert_eq!(res[4].position, StreamPosition::new(5, epoch.clone()));
    let h = read(&n.broker, "ch", HistoryOptions::new(-1)).await;
    assert_eq!(h.position.offset, 5);
    assert_eq!(offsets(&h.publications), vec![3, 4, 5]);
    let since = HistoryOptions::new(1).since(StreamPosition::new(3, epoch.clone()));
    assert_eq!(
        offsets(&read(&n.broker, "ch", since).await.publications),
        vec![4]
    );
    let rev = HistoryOptions::new(-1)
        .since(StreamPosition::new(5, epoch))
        .reverse(true);
    assert_eq!(
        offsets(&read(&n.broker, "ch", rev).await.publications),
        vec![4, 3]
    );
    assert!(eventually(WAIT, || n.rec.offsets("ch") == vec![1, 2, 3, 4, 5]).await);
    cleanup(MAIN_REDIS, &n.prefix).await;
}

#[tokio::test]
async fn redis_run_twice_is_rejected() {
    let n = node(&unique_prefix("twice")).await;
    assert!(matches!(
        Broker::run(&n.broker, n.rec.clone()).await,
        Err(BrokerError::BadRequest(_))
    ));
}

#[tokio::test]
async fn redis_two_nodes_share_publications_in_order() {
    let prefix = unique_prefix("twonodes");
    let a = node(&prefix).await;
    let b = node(&prefix).await;
    b.broker.subscribe("ch").await.unwrap();
    b.broker.subscribe("nohist").await.unwrap();
    // Many concurrent publishers on node A: node B must see offsets strictly in order.
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let broker = a.broker.clone();
        tasks.push(tokio::spawn(async move {
            for _ in 0..50 {
                broker
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
    // Sequential publishes without history arrive in publish order too.
    for i in 0..50 {
        a.broker
            .publish("nohist", Bytes::from(i.to_string()), PublishOptions::new())
            .await
            .unwrap();
    }
    assert!(eventually(WAIT, || b.rec.datas("nohist").len() == 50).await);
    let expect: Vec<Bytes> = (0..50).map(|i| Bytes::from(i.to_string())).collect();
    assert_eq!(b.rec.datas("nohist"), expect);
    // Node A did not subscribe: it received nothing.
    assert!(a.rec.publications.lock().is_empty());

    // Join and leave cross nodes.
    let mut info = ClientInfo::new("u1", "c1");
    info.conn_info = Bytes::from_static(b"{\"n\":1}");
    a.broker.publish_join("ch", info.clone()).await.unwrap();
    a.broker
        .publish_leave("ch", ClientInfo::new("u2", "c2"))
        .await
        .unwrap();
    assert!(eventually(WAIT, || b.rec.leaves.lock().len() == 1).await);
    assert_eq!(b.rec.joins.lock().clone(), vec![("ch".to_owned(), info)]);
    assert_eq!(
        b.rec.leaves.lock().clone(),
        vec![("ch".to_owned(), ClientInfo::new("u2", "c2"))]
    );

    // After unsubscribe nothing more arrives.
    b.broker.unsubscribe("ch").await.unwrap();
    a.broker
        .publish("ch", Bytes::from("late"), hist60(500))
        .await
        .unwrap();
    b.broker.subscribe("marker").await.unwrap();
    a.broker
        .publish("marker", Bytes::from("m"), PublishOptions::new())
        .await
        .unwrap();
    assert!(eventually(WAIT, || b.rec.datas("marker").len() == 1).await);
    assert_eq!(b.rec.offsets("ch").len(), 200);
    cleanup(MAIN_REDIS, &prefix).await;
}

#[tokio::test]
async fn redis_control_broadcast_and_direct() {
    let prefix = unique_prefix("control");
    let a = RedisBroker::new(config(&prefix)).await.unwrap();
    let b = RedisBroker::new(config(&prefix)).await.unwrap();
    let (ra, rb) = (Recorder::new(), Recorder::new());
    Controller::run(&a, "node-a", ra.clone()).await.unwrap();
    Controller::run(&b, "node-b", rb.clone()).await.unwrap();
    assert!(matches!(
        Controller::run(&a, "node-a", ra.clone()).await,
        Err(BrokerError::BadRequest(_))
    ));
    a.publish_control(Bytes::from_static(b"all"), None)
        .await
        .unwrap();
    a.publish_control(Bytes::from_static(b"to-b"), Some("node-b"))
        .await
        .unwrap();
    b.publish_control(Bytes::from_static(b"to-a"), Some("node-a"))
        .await
        .unwrap();
    assert!(
        eventually(WAIT, || ra.control.lock().len() == 2
            && rb.control.lock().len() == 2)
        .await
    );
    assert_eq!(
        ra.control.lock().clone(),
        vec![Bytes::from_static(b"all"), Bytes::from_static(b"to-a")]
    );
    assert_eq!(
        rb.control.lock().clone(),
        vec![Bytes::from_static(b"all"), Bytes::from_static(b"to-b")]
    );
    // Control messages never reach the broker handler (none was set), and the control
    // channel is exactly upstream's.
    let client = redis::Client::open(MAIN_REDIS).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let receivers: i64 = redis::cmd("PUBLISH")
        .arg(format!("{prefix}.control"))
        .arg("raw")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(receivers, 2);
    assert!(eventually(WAIT, || ra.control.lock().len() == 3).await);
    a.close();
    b.close();
}

/// Golden test of the wire formats against raw Redis commands, as a Centrifugo node
/// would see them.
#[tokio::test]
async fn redis_payloads_match_upstream_bytes() {
    let prefix = unique_prefix("golden");
    let n = node(&prefix).await;
    n.broker.subscribe("news").await.unwrap();
    let client = redis::Client::open(MAIN_REDIS).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();

    // 1. A raw `__p1:<offset>:<epoch>__<protobuf>` PUBLISH is decoded by our reader.
    let body = proto::Publication {
        data: Bytes::from_static(b"{\"v\":1}"),
        info: Some(proto::ClientInfo {
            user: "42".into(),
            client: "cid".into(),
            ..Default::default()
        }),
        time: 1_700_000_000_123,
        ..Default::default()
    }
    .encode_to_vec();
    let mut raw = b"__p1:17:ABCDEFGH__".to_vec();
    raw.extend_from_slice(&body);
    let _: i64 = redis::cmd("PUBLISH")
        .arg(format!("{prefix}.client.news"))
        .arg(&raw)
        .query_async(&mut conn)
        .await
        .unwrap();
    // And a raw plain one, and a raw join.
    let _: i64 = redis::cmd("PUBLISH")
        .arg(format!("{prefix}.client.news"))
        .arg(&body)
        .query_async(&mut conn)
        .await
        .unwrap();
    let mut join = b"__j__".to_vec();
    join.extend_from_slice(
        &proto::ClientInfo {
            user: "7".into(),
            client: "j".into(),
            ..Default::default()
        }
        .encode_to_vec(),
    );
    let _: i64 = redis::cmd("PUBLISH")
        .arg(format!("{prefix}.client.news"))
        .arg(&join)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(
        eventually(WAIT, || n.rec.publications.lock().len() == 2
            && n.rec.joins.lock().len() == 1)
        .await
    );
    {
        let d = n.rec.publications.lock();
        assert_eq!(d[0].2, StreamPosition::new(17, "ABCDEFGH"));
        assert_eq!(d[0].1.offset, 17);
        assert_eq!(&d[0].1.data[..], b"{\"v\":1}");
        assert_eq!(d[0].1.info, Some(ClientInfo::new("42", "cid")));
        assert_eq!(d[0].1.time, 1_700_000_000_123);
        assert_eq!(d[1].2, StreamPosition::default());
        assert_eq!(n.rec.joins.lock()[0].1, ClientInfo::new("7", "j"));
    }

    // 2. What our publish writes: exact PUB/SUB bytes, stream entry and meta hash.
    let mut sub = client.get_async_pubsub().await.unwrap();
    sub.subscribe(format!("{prefix}.client.news"))
        .await
        .unwrap();
    let r = n
        .broker
        .publish(
            "news",
            Bytes::from_static(b"hello"),
            hist60(10).client_info(ClientInfo::new("u", "c")),
        )
        .await
        .unwrap();
    n.broker
        .publish_leave("news", ClientInfo::new("u", "c"))
        .await
        .unwrap();
    let mut messages = sub.on_message();
    let first = tokio::time::timeout(WAIT, messages.next())
        .await
        .unwrap()
        .unwrap();
    let bytes = first.get_payload_bytes().to_vec();
    let header = format!("__p1:1:{}__", r.position.epoch);
    assert!(
        bytes.starts_with(header.as_bytes()),
        "{:?}",
        String::from_utf8_lossy(&bytes)
    );
    let published_body = &bytes[header.len()..];
    let decoded = proto::Publication::decode(published_body).unwrap();
    assert_eq!(&decoded.data[..], b"hello");
    assert_eq!(decoded.info.as_ref().map(|i| i.user.as_str()), Some("u"));
    assert_eq!(
        decoded.offset, 0,
        "the offset travels in the header, as upstream"
    );
    assert_eq!(
        decoded.encode_to_vec(),
        published_body,
        "canonical protobuf encoding"
    );
    let second = tokio::time::timeout(WAIT, messages.next())
        .await
        .unwrap()
        .unwrap();
    let mut leave = b"__l__".to_vec();
    leave.extend_from_slice(
        &proto::ClientInfo {
            user: "u".into(),
            client: "c".into(),
            ..Default::default()
        }
        .encode_to_vec(),
    );
    assert_eq!(second.get_payload_bytes(), &leave[..]);
    drop(messages);

    let entries: redis::Value = redis::cmd("XRANGE")
        .arg(format!("{prefix}.stream.news"))
        .arg("-")
        .arg("+")
        .query_async(&mut conn)
        .await
        .unwrap();
    let expect = redis::Value::Array(vec![redis::Value::Array(vec![
        redis::Value::BulkString(b"1-0".to_vec()),
        redis::Value::Array(vec![
            redis::Value::BulkString(b"d".to_vec()),
            redis::Value::BulkString(published_body.to_vec()),
        ]),
    ])]);
    assert_eq!(entries, expect);
    let meta: HashMap<String, String> = redis::cmd("HGETALL")
        .arg(format!("{prefix}.stream.meta.news"))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(meta.get("e"), Some(&r.position.epoch));
    assert_eq!(meta.get("s").map(String::as_str), Some("1"));
    let ttl: i64 = redis::cmd("TTL")
        .arg(format!("{prefix}.stream.news"))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!((1..=60).contains(&ttl), "stream TTL {ttl}");

    // 3. A stream written by "another node" (raw commands) is read by our history.
    let _: i64 = redis::cmd("HSET")
        .arg(format!("{prefix}.stream.meta.raw"))
        .arg("e")
        .arg("QWERTYUI")
        .arg("s")
        .arg(9)
        .query_async(&mut conn)
        .await
        .unwrap();
    let _: String = redis::cmd("XADD")
        .arg(format!("{prefix}.stream.raw"))
        .arg("9-0")
        .arg("d")
        .arg(&body)
        .query_async(&mut conn)
        .await
        .unwrap();
    let h = read(&n.broker, "raw", HistoryOptions::new(-1)).await;
    assert_eq!(h.position, StreamPosition::new(9, "QWERTYUI"));
    assert_eq!(offsets(&h.publications), vec![9]);
    assert_eq!(&h.publications[0].data[..], b"{\"v\":1}");
    cleanup(MAIN_REDIS, &prefix).await;
}
