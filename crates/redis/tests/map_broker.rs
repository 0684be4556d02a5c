//! The Redis map broker against the map conformance suite, plus the Centrifugo layout:
//! the literal keys, values and TTLs it leaves in Redis, and state written the way
//! upstream's scripts leave it, read back by Gyre. Runs on the real Redis on
//! 127.0.0.1:6379, each test under its own key prefix.

mod support;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use futures_util::StreamExt;
use gyre::{
    BoxFuture, ClientInfo, MapBroker, MapChannelOptions, MapMode, MapPublishOptions,
    MapReadStateOptions, MapReadStreamOptions, StreamPosition,
};
use gyre_protocol::proto;
use gyre_redis::{RedisConfig, RedisMapBroker, RedisMapOptions};
use gyre_testkit::conformance::map::{MapEngine, MapTestNode};
use gyre_testkit::{Recorder, eventually, map_conformance};
use prost::Message;
use redis::aio::MultiplexedConnection;
use support::{MAIN_REDIS, unique_prefix};

const WAIT: Duration = Duration::from_secs(5);

/// One case's map channels: every node shares the case's own prefix.
struct MapRedis {
    prefix: String,
}

async fn map_redis(test: &str) -> MapRedis {
    MapRedis {
        prefix: unique_prefix(test),
    }
}

fn fast_cleanup() -> RedisMapOptions {
    RedisMapOptions::default().cleanup_interval(Some(Duration::from_millis(200)))
}

impl MapEngine for MapRedis {
    fn node(&self) -> BoxFuture<'_, Arc<MapTestNode>> {
        Box::pin(async {
            let broker = RedisMapBroker::new(
                RedisConfig::new(MAIN_REDIS).prefix(&self.prefix),
                fast_cleanup(),
            )
            .await
            .unwrap();
            let closer = broker.clone();
            Arc::new(
                MapTestNode::start(Arc::new(broker))
                    .await
                    .on_drop(move || closer.close()),
            )
        })
    }

    fn cleanup(&self) -> BoxFuture<'_, ()> {
        Box::pin(delete_prefix(&self.prefix))
    }
}

map_conformance! {
    engine: map_redis, clock: Real,
    state: run,
    key_order: skip "Redis pages in HSCAN order with the HSCAN cursor, as upstream",
    stream: run,
    writes: run,
    ephemeral: run,
    expiry: run,
    delivery: run,
    multi_node: run,
}

async fn conn() -> MultiplexedConnection {
    redis::Client::open(MAIN_REDIS)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

async fn delete_prefix(prefix: &str) {
    let mut c = conn().await;
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}*"))
        .query_async(&mut c)
        .await
        .unwrap_or_default();
    for key in keys {
        let _: redis::RedisResult<i64> = redis::cmd("DEL").arg(key).query_async(&mut c).await;
    }
}

async fn q<T: redis::FromRedisValue>(c: &mut MultiplexedConnection, args: &[&str]) -> T {
    let mut cmd = redis::cmd(args[0]);
    for a in &args[1..] {
        cmd.arg(*a);
    }
    cmd.query_async(c).await.unwrap()
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

fn recoverable(key_ttl: Duration) -> MapChannelOptions {
    MapChannelOptions::new(MapMode::Recoverable, key_ttl)
        .resolve()
        .unwrap()
}

async fn broker(prefix: &str, options: RedisMapOptions) -> (RedisMapBroker, Arc<Recorder>) {
    let b = RedisMapBroker::new(RedisConfig::new(MAIN_REDIS).prefix(prefix), options)
        .await
        .unwrap();
    let rec = Recorder::new();
    b.run(rec.clone()).await.unwrap();
    (b, rec)
}

/// `<offset>:<epoch>:<protobuf>` split, the protobuf decoded.
fn split_value(v: &[u8]) -> (u64, String, proto::Publication) {
    let s = v.splitn(3, |&b| b == b':').collect::<Vec<_>>();
    assert_eq!(s.len(), 3, "{v:?}");
    (
        std::str::from_utf8(s[0]).unwrap().parse().unwrap(),
        String::from_utf8(s[1].to_vec()).unwrap(),
        proto::Publication::decode(s[2]).unwrap(),
    )
}

/// After a publish, a versioned publish, a remove and a clear, Redis holds exactly the
/// keys, values and TTLs of upstream's map broker (`map_broker_redis.go` +
/// `map_broker_add.lua`), and the PUB/SUB messages are upstream's.
#[tokio::test]
async fn redis_map_layout_is_centrifugos() {
    let prefix = unique_prefix("maplayout");
    let p = prefix.as_str();
    let (b, _rec) = broker(p, RedisMapOptions::default().cleanup_interval(None)).await;
    let mut c = conn().await;
    let mut sub = redis::Client::open(MAIN_REDIS)
        .unwrap()
        .get_async_pubsub()
        .await
        .unwrap();
    sub.subscribe(format!("{p}.client.m:a")).await.unwrap();
    let mut messages = sub.on_message();

    let mut ch = recoverable(Duration::from_secs(60));
    ch.meta_ttl = Duration::from_secs(600);
    let mut o = MapPublishOptions::new(ch.clone());
    o.tags = HashMap::from([("t".to_owned(), "1".to_owned())]);
    o.client_info = Some(ClientInfo::new("u1", "c1"));
    o.idempotency_key = Some("i1".into());
    o.idempotent_result_ttl = Some(Duration::from_secs(30));
    let before = now_ms();
    let r = b
        .publish("m:a", "k1", Bytes::from_static(b"{\"v\":1}"), o)
        .await
        .unwrap();
    let after = now_ms();
    let epoch = r.position.epoch.clone();
    assert_eq!(r.position.offset, 1);

    // Meta: HASH e, s with the meta TTL.
    let meta: HashMap<String, String> = q(&mut c, &["HGETALL", &format!("{p}:meta:m:a")]).await;
    assert_eq!(
        meta,
        HashMap::from([("e".into(), epoch.clone()), ("s".into(), "1".into())])
    );
    let ttl: i64 = q(&mut c, &["PTTL", &format!("{p}:meta:m:a")]).await;
    assert!(ttl > 590_000 && ttl <= 600_000, "{ttl}");

    // Stream: entry 1-0 with fields e and d (the publication), stream TTL 60s.
    let entries: Vec<(String, Vec<Vec<u8>>)> =
        q(&mut c, &["XRANGE", &format!("{p}:stream:m:a"), "-", "+"]).await;
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].0, "1-0");
    let fields = &entries[0].1;
    assert_eq!(fields[0], b"e");
    assert_eq!(fields[1], epoch.as_bytes());
    assert_eq!(fields[2], b"d");
    let streamed = proto::Publication::decode(&fields[3][..]).unwrap();
    assert_eq!(streamed.key, "k1");
    assert_eq!(streamed.data, Bytes::from_static(b"{\"v\":1}"));
    assert_eq!(streamed.tags.get("t").map(String::as_str), Some("1"));
    assert_eq!(streamed.info.as_ref().unwrap().client, "c1");
    assert!(streamed.time >= before && streamed.time <= after);
    assert_eq!(streamed.offset, 0, "the offset lives in the entry id");
    let ttl: i64 = q(&mut c, &["PTTL", &format!("{p}:stream:m:a")]).await;
    assert!(ttl > 50_000 && ttl <= 60_000, "{ttl}");

    // State: "<offset>:<epoch>:<the same protobuf>", container TTL = meta TTL.
    let value: Vec<u8> = q(&mut c, &["HGET", &format!("{p}:state:m:a"), "k1"]).await;
    let (off, e, stored) = split_value(&value);
    assert_eq!((off, e.as_str()), (1, epoch.as_str()));
    assert_eq!(stored, streamed);
    let ttl: i64 = q(&mut c, &["PTTL", &format!("{p}:state:m:a")]).await;
    assert!(ttl > 590_000, "{ttl}");

    // Expiry: ZSET score now + key TTL; the channel registered for cleanup at that time.
    let at: f64 = q(&mut c, &["ZSCORE", &format!("{p}:state:expire:m:a"), "k1"]).await;
    let at = at as i64;
    assert!(at >= before + 60_000 && at <= after + 60_000, "{at}");
    let reg: f64 = q(&mut c, &["ZSCORE", &format!("{p}:cleanup:channels"), "m:a"]).await;
    assert_eq!(reg as i64, at);

    // State meta: epoch and updated_at.
    let sm: HashMap<String, String> = q(&mut c, &["HGETALL", &format!("{p}:state:meta:m:a")]).await;
    assert_eq!(sm.get("epoch"), Some(&epoch));
    let updated: i64 = sm["updated_at"].parse().unwrap();
    assert!(updated >= before && updated <= after);

    // Idempotent result: HASH e, s with its own TTL.
    let result_key = format!("{p}.result.m:a.i1");
    let res: HashMap<String, String> = q(&mut c, &["HGETALL", &result_key]).await;
    assert_eq!(
        res,
        HashMap::from([("e".into(), epoch.clone()), ("s".into(), "1".into())])
    );
    let ttl: i64 = q(&mut c, &["PTTL", &result_key]).await;
    assert!(ttl > 25_000 && ttl <= 30_000, "{ttl}");

    // PUB/SUB: "<offset>:<epoch>:<protobuf>".
    let msg = tokio::time::timeout(WAIT, messages.next())
        .await
        .unwrap()
        .unwrap();
    let (off, e, pubbed) = split_value(msg.get_payload_bytes());
    assert_eq!((off, e.as_str()), (1, epoch.as_str()));
    assert_eq!(pubbed, streamed);

    // A versioned publish keeps v:<key> / ve:<key> in the state meta.
    let mut v = MapPublishOptions::new(ch.clone());
    v.version = 3;
    v.version_epoch = "ve1".into();
    b.publish("m:a", "k1", Bytes::from_static(b"2"), v)
        .await
        .unwrap();
    let sm: HashMap<String, String> = q(&mut c, &["HGETALL", &format!("{p}:state:meta:m:a")]).await;
    assert_eq!(sm.get("v:k1").map(String::as_str), Some("3"));
    assert_eq!(sm.get("ve:k1").map(String::as_str), Some("ve1"));
    let msg = tokio::time::timeout(WAIT, messages.next())
        .await
        .unwrap()
        .unwrap();
    assert!(
        msg.get_payload_bytes()
            .starts_with(format!("2:{epoch}:").as_bytes())
    );

    // Remove: a removal at offset 3 in the stream; state, expiry, versions and the
    // cleanup registration are gone.
    let r = b
        .remove("m:a", "k1", MapPublishOptions::new(ch.clone()))
        .await
        .unwrap();
    assert_eq!(r.position.offset, 3);
    let entries: Vec<(String, Vec<Vec<u8>>)> =
        q(&mut c, &["XRANGE", &format!("{p}:stream:m:a"), "3", "+"]).await;
    let removal = proto::Publication::decode(&entries[0].1[3][..]).unwrap();
    assert!(removal.removed && removal.key == "k1" && removal.data.is_empty());
    let exists: i64 = q(&mut c, &["HEXISTS", &format!("{p}:state:m:a"), "k1"]).await;
    assert_eq!(exists, 0);
    let score: Option<f64> = q(&mut c, &["ZSCORE", &format!("{p}:state:expire:m:a"), "k1"]).await;
    assert_eq!(score, None);
    let vs: Vec<Option<String>> = q(
        &mut c,
        &["HMGET", &format!("{p}:state:meta:m:a"), "v:k1", "ve:k1"],
    )
    .await;
    assert_eq!(vs, vec![None, None]);
    let reg: Option<f64> = q(&mut c, &["ZSCORE", &format!("{p}:cleanup:channels"), "m:a"]).await;
    assert_eq!(reg, None);
    let msg = tokio::time::timeout(WAIT, messages.next())
        .await
        .unwrap()
        .unwrap();
    let (off, _, pubbed) = split_value(msg.get_payload_bytes());
    assert!(off == 3 && pubbed.removed);

    // Clear: every data key goes.
    b.publish(
        "m:a",
        "k2",
        Bytes::from_static(b"1"),
        MapPublishOptions::new(ch.clone()),
    )
    .await
    .unwrap();
    b.clear("m:a").await.unwrap();
    let left: Vec<String> = q(&mut c, &["KEYS", &format!("{p}:*")]).await;
    assert!(left.is_empty(), "{left:?}");
    b.close();
    delete_prefix(p).await;
}

/// An ephemeral keyless publish is upstream's broadcast `0::<protobuf>`; a keyed
/// ephemeral entry is stored as `0:<epoch>:<protobuf>` without meta or stream.
#[tokio::test]
async fn redis_map_ephemeral_layout() {
    let prefix = unique_prefix("mapeph");
    let p = prefix.as_str();
    let (b, _rec) = broker(p, RedisMapOptions::default().cleanup_interval(None)).await;
    let mut c = conn().await;
    let mut sub = redis::Client::open(MAIN_REDIS)
        .unwrap()
        .get_async_pubsub()
        .await
        .unwrap();
    sub.subscribe(format!("{p}.client.e")).await.unwrap();
    let mut messages = sub.on_message();
    let o = MapPublishOptions::new(
        MapChannelOptions::new(MapMode::Ephemeral, Duration::from_secs(30))
            .resolve()
            .unwrap(),
    );
    b.publish("e", "", Bytes::from_static(b"hi"), o.clone())
        .await
        .unwrap();
    let msg = tokio::time::timeout(WAIT, messages.next())
        .await
        .unwrap()
        .unwrap();
    let bytes = msg.get_payload_bytes();
    assert!(bytes.starts_with(b"0::"));
    assert_eq!(
        proto::Publication::decode(&bytes[3..]).unwrap().data,
        Bytes::from_static(b"hi")
    );

    b.publish("e", "k", Bytes::from_static(b"1"), o)
        .await
        .unwrap();
    let value: Vec<u8> = q(&mut c, &["HGET", &format!("{p}:state:e"), "k"]).await;
    let (off, epoch, stored) = split_value(&value);
    assert_eq!(off, 0);
    assert!(!epoch.is_empty());
    assert_eq!(stored.key, "k");
    let mut keys: Vec<String> = q(&mut c, &["KEYS", &format!("{p}*")]).await;
    keys.sort();
    assert_eq!(
        keys,
        vec![
            format!("{p}:cleanup:channels"),
            format!("{p}:state:e"),
            format!("{p}:state:expire:e"),
        ]
    );
    b.close();
    delete_prefix(p).await;
}

fn proto_pub(key: &str, data: &[u8], removed: bool, time: i64) -> Vec<u8> {
    proto::Publication {
        key: key.into(),
        data: Bytes::copy_from_slice(data),
        removed,
        time,
        info: (!removed).then(|| proto::ClientInfo {
            user: "cf-user".into(),
            client: "cf-client".into(),
            ..Default::default()
        }),
        tags: HashMap::from([("src".to_owned(), "cf".to_owned())]),
        ..Default::default()
    }
    .encode_to_vec()
}

fn state_value(offset: u64, epoch: &str, body: &[u8]) -> Vec<u8> {
    let mut v = format!("{offset}:{epoch}:").into_bytes();
    v.extend_from_slice(body);
    v
}

/// State, stream and messages written the way Centrifugo's scripts write them (raw
/// commands here) are read, continued and delivered by Gyre; an expired key registered
/// by Centrifugo is cleaned up by Gyre with upstream's removal.
#[tokio::test]
async fn redis_map_reads_centrifugo_written_state() {
    let prefix = unique_prefix("mapcf");
    let p = prefix.as_str();
    let mut c = conn().await;
    let epoch = "cfepochx";
    let now = now_ms();
    let ch_opts = recoverable(Duration::from_secs(60));
    let resolver_opts = ch_opts.clone();
    let (b, rec) = broker(
        p,
        RedisMapOptions::default()
            .cleanup_interval(Some(Duration::from_millis(200)))
            .channel_options(move |ch| (ch == "cf:room").then(|| resolver_opts.clone())),
    )
    .await;

    // What map_broker_add.lua leaves after: set k1 (1), set k2 (2), set k3 (3),
    // remove k2 (4); k3 already past its TTL.
    let k1 = proto_pub("k1", b"{\"a\":1}", false, now);
    let k2 = proto_pub("k2", b"{\"b\":1}", false, now);
    let k3 = proto_pub("k3", b"{\"c\":1}", false, now);
    let rm2 = proto_pub("k2", b"", true, now);
    let stream = format!("{p}:stream:cf:room");
    for (off, body) in [(1, &k1), (2, &k2), (3, &k3), (4, &rm2)] {
        let _: String = redis::cmd("XADD")
            .arg(&stream)
            .arg("MAXLEN")
            .arg("~")
            .arg(100)
            .arg(off)
            .arg("e")
            .arg(epoch)
            .arg("d")
            .arg(body.as_slice())
            .query_async(&mut c)
            .await
            .unwrap();
    }
    let _: () = redis::cmd("HSET")
        .arg(format!("{p}:meta:cf:room"))
        .arg("e")
        .arg(epoch)
        .arg("s")
        .arg(4)
        .query_async(&mut c)
        .await
        .unwrap();
    let _: () = redis::cmd("HSET")
        .arg(format!("{p}:state:cf:room"))
        .arg("k1")
        .arg(state_value(1, epoch, &k1))
        .arg("k3")
        .arg(state_value(3, epoch, &k3))
        .query_async(&mut c)
        .await
        .unwrap();
    let _: () = redis::cmd("HSET")
        .arg(format!("{p}:state:meta:cf:room"))
        .arg("epoch")
        .arg(epoch)
        .arg("updated_at")
        .arg(now)
        .query_async(&mut c)
        .await
        .unwrap();
    let k3_expiry = now + 2_000;
    let _: () = redis::cmd("ZADD")
        .arg(format!("{p}:state:expire:cf:room"))
        .arg(now + 60_000)
        .arg("k1")
        .arg(k3_expiry)
        .arg("k3")
        .query_async(&mut c)
        .await
        .unwrap();
    let _: () = redis::cmd("ZADD")
        .arg(format!("{p}:cleanup:channels"))
        .arg(k3_expiry)
        .arg("cf:room")
        .query_async(&mut c)
        .await
        .unwrap();

    // Gyre reads the state and the stream.
    let mut read = MapReadStateOptions::default();
    read.limit = -1;
    let state = b.read_state("cf:room", read).await.unwrap();
    assert_eq!(state.position, StreamPosition::new(4, epoch));
    let mut entries: Vec<_> = state
        .entries
        .iter()
        .map(|e| (e.key.clone(), e.offset, e.data.clone()))
        .collect();
    entries.sort();
    assert_eq!(
        entries,
        vec![
            ("k1".into(), 1, Bytes::from_static(b"{\"a\":1}")),
            ("k3".into(), 3, Bytes::from_static(b"{\"c\":1}")),
        ]
    );
    let e1 = state.entries.iter().find(|e| e.key == "k1").unwrap();
    assert_eq!(e1.info, Some(ClientInfo::new("cf-user", "cf-client")));
    assert_eq!(e1.tags.get("src").map(String::as_str), Some("cf"));
    let mut since = MapReadStreamOptions::default();
    since.since = Some(StreamPosition::new(1, epoch));
    since.limit = -1;
    let s = b.read_stream("cf:room", since).await.unwrap();
    let got: Vec<_> = s
        .publications
        .iter()
        .map(|p| (p.offset, p.key.as_str(), p.removed))
        .collect();
    assert_eq!(
        got,
        vec![(2, "k2", false), (3, "k3", false), (4, "k2", true)]
    );
    assert_eq!(b.stats("cf:room").await.unwrap(), 2);

    // Gyre continues the stream in Centrifugo's epoch.
    b.subscribe("cf:room").await.unwrap();
    let r = b
        .publish(
            "cf:room",
            "k4",
            Bytes::from_static(b"4"),
            MapPublishOptions::new(ch_opts.clone()),
        )
        .await
        .unwrap();
    assert_eq!(r.position, StreamPosition::new(5, epoch));

    // A message Centrifugo publishes reaches Gyre's handler, plain and delta.
    let pubsub = format!("{p}.client.cf:room");
    let mut msg = format!("6:{epoch}:").into_bytes();
    msg.extend_from_slice(&proto_pub("k5", b"5", false, now));
    let _: i64 = redis::cmd("PUBLISH")
        .arg(&pubsub)
        .arg(msg)
        .query_async(&mut c)
        .await
        .unwrap();
    let prev = state_value(1, epoch, &k1);
    let cur = proto_pub("k1", b"{\"a\":2}", false, now);
    let mut delta = format!("d:7:{epoch}:{}:", prev.len()).into_bytes();
    delta.extend_from_slice(&prev);
    delta.extend_from_slice(format!(":{}:", cur.len()).as_bytes());
    delta.extend_from_slice(&cur);
    let _: i64 = redis::cmd("PUBLISH")
        .arg(&pubsub)
        .arg(delta)
        .query_async(&mut c)
        .await
        .unwrap();
    assert!(eventually(WAIT, || rec.offsets("cf:room").len() >= 3).await);
    let delivered = rec.publications();
    let by_offset = |o: u64| {
        delivered
            .iter()
            .find(|d| d.publication.offset == o)
            .unwrap()
    };
    assert_eq!(by_offset(5).publication.key, "k4");
    let d6 = delivered
        .iter()
        .find(|d| d.publication.key == "k5")
        .unwrap();
    assert_eq!(
        (d6.publication.key.as_str(), d6.position.epoch.as_str()),
        ("k5", epoch)
    );
    let d7 = by_offset(7);
    assert!(d7.use_delta);
    assert_eq!(
        d7.prev.as_ref().unwrap().data,
        Bytes::from_static(b"{\"a\":1}")
    );
    assert_eq!(d7.publication.data, Bytes::from_static(b"{\"a\":2}"));

    // Gyre's cleanup removes the key Centrifugo registered, with upstream's removal.
    assert!(
        eventually(Duration::from_secs(6), || rec
            .publications()
            .iter()
            .any(|d| d.publication.removed && d.publication.key == "k3"))
        .await,
        "no removal of k3"
    );
    let removal = rec
        .publications()
        .into_iter()
        .find(|d| d.publication.removed && d.publication.key == "k3")
        .unwrap();
    assert_eq!(removal.position, StreamPosition::new(6, epoch));
    assert_eq!(
        removal.publication.tags.get("src").map(String::as_str),
        Some("cf")
    );
    let exists: i64 = q(&mut c, &["HEXISTS", &format!("{p}:state:cf:room"), "k3"]).await;
    assert_eq!(exists, 0);
    let reg: f64 = q(
        &mut c,
        &["ZSCORE", &format!("{p}:cleanup:channels"), "cf:room"],
    )
    .await;
    let k1_expiry: f64 = q(
        &mut c,
        &["ZSCORE", &format!("{p}:state:expire:cf:room"), "k1"],
    )
    .await;
    assert_eq!(reg, k1_expiry, "registration re-pointed to the next expiry");

    // State of a dead epoch is not shown.
    let _: () = redis::cmd("HSET")
        .arg(format!("{p}:state:meta:cf:room"))
        .arg("epoch")
        .arg("oldepoch")
        .query_async(&mut c)
        .await
        .unwrap();
    let mut read = MapReadStateOptions::default();
    read.limit = -1;
    assert!(
        b.read_state("cf:room", read)
            .await
            .unwrap()
            .entries
            .is_empty()
    );
    b.close();
    delete_prefix(p).await;
}

/// A hash past Redis' small encoding pages for real: the HSCAN cursor goes round trip
/// through Gyre (`"0"` ends as an empty cursor) and every key comes exactly once.
#[tokio::test]
async fn redis_map_state_pages_with_the_hscan_cursor() {
    let prefix = unique_prefix("mappages");
    let (b, _rec) = broker(&prefix, RedisMapOptions::default().cleanup_interval(None)).await;
    let o = MapPublishOptions::new(
        MapChannelOptions::new(MapMode::Persistent, Duration::ZERO)
            .resolve()
            .unwrap(),
    );
    // More keys than a listpack-encoded hash holds (`hash-max-listpack-entries`, 128 by
    // default, often raised to 512): HSCAN then pages.
    for i in 0..1200 {
        b.publish(
            "big",
            &format!("key{i:04}"),
            Bytes::from(i.to_string()),
            o.clone(),
        )
        .await
        .unwrap();
    }
    let mut seen = Vec::new();
    let mut cursor = String::new();
    let mut pages = 0;
    loop {
        let mut read = MapReadStateOptions::default();
        read.cursor = cursor.clone();
        read.limit = 200;
        let page = b.read_state("big", read).await.unwrap();
        pages += 1;
        assert_eq!(page.position.offset, 1200);
        seen.extend(page.entries.into_iter().map(|e| e.key));
        if page.cursor.is_empty() {
            break;
        }
        assert_ne!(page.cursor, "0");
        cursor = page.cursor;
        assert!(pages < 1000, "paging never ended");
    }
    assert!(pages > 1, "one page only");
    let unique: std::collections::BTreeSet<_> = seen.iter().cloned().collect();
    assert_eq!(seen.len(), 1200, "a key came twice");
    assert_eq!(unique.len(), 1200);
    b.close();
    delete_prefix(&prefix).await;
}
