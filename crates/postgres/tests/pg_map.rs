//! The PostgreSQL map broker on the real PostgreSQL (127.0.0.1:5432, db `test`), each
//! test in a schema of its own: the map semantics (as the memory broker's), delivery
//! between nodes sharing the database, key expiry, cleanup, and Centrifugo's layout.

mod support;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use gyre::{
    BrokerError, ClientInfo, KeyMode, MapBroker, MapChannelOptions, MapMode, MapPublishOptions,
    MapReadStateOptions, MapReadStreamOptions, StreamPosition, SuppressReason,
};
use gyre_postgres::map::PgMapBroker;
use gyre_testkit::{Recorder, eventually};
use support::TestDb;

const WAIT: Duration = Duration::from_secs(5);

fn opts(mode: MapMode, key_ttl: Duration) -> MapPublishOptions {
    MapPublishOptions::new(MapChannelOptions::new(mode, key_ttl).resolve().unwrap())
}

fn persistent() -> MapPublishOptions {
    opts(MapMode::Persistent, Duration::ZERO)
}

fn read(cursor: &str, limit: i32, revision: Option<StreamPosition>) -> MapReadStateOptions {
    let mut o = MapReadStateOptions::default();
    o.cursor = cursor.to_owned();
    o.limit = limit;
    o.revision = revision;
    o
}

fn stream(since: Option<StreamPosition>, limit: i32, reverse: bool) -> MapReadStreamOptions {
    let mut o = MapReadStreamOptions::default();
    o.since = since;
    o.limit = limit;
    o.reverse = reverse;
    o
}

/// A running broker subscribed to `channels` (only their changes are delivered).
async fn running(db: &TestDb, channels: &[&str]) -> (PgMapBroker, Arc<Recorder>) {
    let broker = db.broker().await;
    let rec = Recorder::new();
    broker.run(rec.clone()).await.unwrap();
    for ch in channels {
        broker.subscribe(ch).await.unwrap();
    }
    (broker, rec)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_pages_follow_key_order_and_cursor() {
    let db = TestDb::new().await;
    let (broker, rec) = running(&db, &["m", "e", "p", "board", "ch:1"]).await;
    for k in ["c", "a", "e", "b", "d"] {
        broker
            .publish("m", k, Bytes::from(format!("\"{k}\"")), persistent())
            .await
            .unwrap();
    }
    assert!(eventually(WAIT, || rec.offsets("m") == [1, 2, 3, 4, 5]).await);
    let mut keys = Vec::new();
    let mut cursor = String::new();
    let mut pages = 0;
    loop {
        let page = broker
            .read_state("m", read(&cursor, 2, None))
            .await
            .unwrap();
        pages += 1;
        assert_eq!(page.position.offset, 5);
        for e in &page.entries {
            assert_eq!(e.data, Bytes::from(format!("\"{}\"", e.key)));
        }
        keys.extend(page.entries.iter().map(|p| p.key.clone()));
        if page.cursor.is_empty() {
            break;
        }
        assert_eq!(page.cursor, *keys.last().unwrap());
        cursor = page.cursor;
    }
    assert_eq!(keys, ["a", "b", "c", "d", "e"]);
    assert_eq!(pages, 3);
    // Exactly a page: no next cursor.
    let all = broker.read_state("m", read("", 5, None)).await.unwrap();
    assert_eq!(all.entries.len(), 5);
    assert!(all.cursor.is_empty());
    let everything = broker.read_state("m", read("", -1, None)).await.unwrap();
    assert_eq!(everything.entries.len(), 5);
    // Position only.
    let top = broker.read_state("m", read("", 0, None)).await.unwrap();
    assert!(top.entries.is_empty());
    assert_eq!(top.position.offset, 5);
    assert_eq!(top.position.epoch.len(), 8);
    // One key.
    let mut one = read("", 0, None);
    one.key = Some("d".into());
    let d = broker.read_state("m", one).await.unwrap();
    assert_eq!(d.entries.len(), 1);
    assert_eq!(d.entries[0].key, "d");
    assert_eq!(d.entries[0].offset, 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revision_filters_newer_entries_and_checks_epoch() {
    let db = TestDb::new().await;
    let (broker, _) = running(&db, &["m", "e", "p", "board", "ch:1"]).await;
    let o = opts(MapMode::Recoverable, Duration::from_secs(60));
    broker
        .publish("m", "a", "1".into(), o.clone())
        .await
        .unwrap();
    broker
        .publish("m", "b", "1".into(), o.clone())
        .await
        .unwrap();
    let first = broker.read_state("m", read("", 1, None)).await.unwrap();
    let frozen = first.position.clone();
    assert_eq!(frozen.offset, 2);
    assert_eq!(first.cursor, "a");
    broker
        .publish("m", "b", "2".into(), o.clone())
        .await
        .unwrap();
    let next = broker
        .read_state("m", read(&first.cursor, 1, Some(frozen.clone())))
        .await
        .unwrap();
    // "b" changed after the frozen offset: the stream brings it.
    assert!(next.entries.is_empty(), "{next:?}");
    assert!(next.cursor.is_empty());
    let s = broker
        .read_stream("m", stream(Some(frozen.clone()), -1, false))
        .await
        .unwrap();
    assert_eq!(s.publications.len(), 1);
    assert_eq!(s.publications[0].key, "b");
    assert_eq!(s.publications[0].offset, 3);
    assert_eq!(s.publications[0].data, Bytes::from("2"));
    assert_eq!(s.position, StreamPosition::new(3, frozen.epoch.clone()));
    let bad = StreamPosition::new(2, "other");
    assert!(matches!(
        broker.read_state("m", read("", 1, Some(bad.clone()))).await,
        Err(BrokerError::UnrecoverablePosition)
    ));
    assert!(matches!(
        broker.read_stream("m", stream(Some(bad), 10, false)).await,
        Err(BrokerError::UnrecoverablePosition)
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_reads_forward_reverse_and_position() {
    let db = TestDb::new().await;
    let (broker, _) = running(&db, &["m", "e", "p", "board", "ch:1"]).await;
    for i in 0..5 {
        broker
            .publish(
                "m",
                &format!("k{i}"),
                Bytes::from(format!("{i}")),
                persistent(),
            )
            .await
            .unwrap();
    }
    broker.remove("m", "k1", persistent()).await.unwrap();
    let all = broker
        .read_stream("m", stream(None, -1, false))
        .await
        .unwrap();
    let offsets: Vec<u64> = all.publications.iter().map(|p| p.offset).collect();
    assert_eq!(offsets, [1, 2, 3, 4, 5, 6]);
    let removal = &all.publications[5];
    assert!(removal.removed);
    assert_eq!(removal.key, "k1");
    assert!(removal.data.is_empty());
    assert!(all.publications[0].time > 0);
    let epoch = all.position.epoch.clone();
    let two = broker
        .read_stream(
            "m",
            stream(Some(StreamPosition::new(2, epoch.clone())), 2, false),
        )
        .await
        .unwrap();
    assert_eq!(
        two.publications
            .iter()
            .map(|p| p.offset)
            .collect::<Vec<_>>(),
        [3, 4]
    );
    let newest = broker
        .read_stream("m", stream(None, 2, true))
        .await
        .unwrap();
    assert_eq!(
        newest
            .publications
            .iter()
            .map(|p| p.offset)
            .collect::<Vec<_>>(),
        [6, 5]
    );
    let before = broker
        .read_stream(
            "m",
            stream(Some(StreamPosition::new(3, epoch.clone())), 10, true),
        )
        .await
        .unwrap();
    assert_eq!(
        before
            .publications
            .iter()
            .map(|p| p.offset)
            .collect::<Vec<_>>(),
        [2, 1]
    );
    let top = broker
        .read_stream("m", stream(None, 0, false))
        .await
        .unwrap();
    assert!(top.publications.is_empty());
    assert_eq!(top.position, StreamPosition::new(6, epoch));
    // A channel nobody wrote starts at offset 0 with an epoch, which then stays.
    let fresh = broker
        .read_stream("new", stream(None, 0, false))
        .await
        .unwrap();
    assert_eq!(fresh.position.offset, 0);
    assert_eq!(fresh.position.epoch.len(), 8);
    let r = broker
        .publish("new", "k", "1".into(), persistent())
        .await
        .unwrap();
    assert_eq!(r.position, StreamPosition::new(1, fresh.position.epoch));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removal_and_suppression_rules() {
    let db = TestDb::new().await;
    let (broker, rec) = running(&db, &["m", "e", "p", "board", "ch:1"]).await;
    let o = persistent();
    let r = broker.remove("m", "x", o.clone()).await.unwrap();
    assert_eq!(r.suppressed, Some(SuppressReason::KeyNotFound));
    broker
        .publish("m", "x", "1".into(), o.clone())
        .await
        .unwrap();
    let r = broker.remove("m", "nothing", o.clone()).await.unwrap();
    assert_eq!(r.suppressed, Some(SuppressReason::KeyNotFound));
    assert_eq!(r.position.offset, 1);
    let mut if_new = o.clone();
    if_new.key_mode = KeyMode::IfNew;
    let r = broker.publish("m", "x", "2".into(), if_new).await.unwrap();
    assert_eq!(r.suppressed, Some(SuppressReason::KeyExists));
    let mut if_exists = o.clone();
    if_exists.key_mode = KeyMode::IfExists;
    let r = broker
        .publish("m", "y", "2".into(), if_exists)
        .await
        .unwrap();
    assert_eq!(r.suppressed, Some(SuppressReason::KeyNotFound));
    let mut idem = o.clone();
    idem.idempotency_key = Some("once".into());
    let first = broker
        .publish("m", "z", "1".into(), idem.clone())
        .await
        .unwrap();
    assert_eq!(first.suppressed, None);
    let again = broker.publish("m", "z", "1".into(), idem).await.unwrap();
    assert_eq!(again.suppressed, Some(SuppressReason::Idempotency));
    assert_eq!(again.position, first.position);
    let mut v = o.clone();
    v.version = 5;
    broker
        .publish("m", "v", "1".into(), v.clone())
        .await
        .unwrap();
    let r = broker
        .publish("m", "v", "0".into(), v.clone())
        .await
        .unwrap();
    assert_eq!(r.suppressed, Some(SuppressReason::Version));
    // Another version epoch is compared afresh.
    v.version_epoch = "e2".into();
    let r = broker.publish("m", "v", "2".into(), v).await.unwrap();
    assert_eq!(r.suppressed, None);
    let mut cas = o.clone();
    cas.expected_position = Some(StreamPosition::new(99, first.position.epoch.clone()));
    let r = broker.publish("m", "x", "3".into(), cas).await.unwrap();
    assert_eq!(r.suppressed, Some(SuppressReason::PositionMismatch));
    let current = r.current.unwrap();
    assert_eq!(current.offset, 1);
    assert_eq!(current.data, Bytes::from("1"));
    let mut cas = o.clone();
    cas.expected_position = Some(StreamPosition::new(1, first.position.epoch.clone()));
    let r = broker.publish("m", "x", "4".into(), cas).await.unwrap();
    assert_eq!(r.suppressed, None);
    assert_eq!(r.position.offset, 5);
    let r = broker.remove("m", "x", o.clone()).await.unwrap();
    assert_eq!(r.suppressed, None);
    assert_eq!(r.position.offset, 6);
    assert!(
        eventually(WAIT, || rec
            .publications()
            .last()
            .is_some_and(|d| d.publication.removed && d.publication.key == "x"))
        .await
    );
    assert_eq!(rec.offsets("m"), [1, 2, 3, 4, 5, 6]);
    assert_eq!(broker.stats("m").await.unwrap(), 2);
    broker.clear("m").await.unwrap();
    assert_eq!(broker.stats("m").await.unwrap(), 0);
    let top = broker.read_state("m", read("", 0, None)).await.unwrap();
    assert_eq!(top.position.offset, 0);
    assert_ne!(top.position.epoch, first.position.epoch);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ephemeral_and_keyless_publishes() {
    let db = TestDb::new().await;
    let (broker, rec) = running(&db, &["m", "e", "p", "board", "ch:1"]).await;
    let e = opts(MapMode::Ephemeral, Duration::from_secs(10));
    let r = broker
        .publish("e", "k", "1".into(), e.clone())
        .await
        .unwrap();
    assert_eq!(r.position.offset, 0);
    assert_eq!(broker.stats("e").await.unwrap(), 1);
    let mut versioned = e.clone();
    versioned.version = 1;
    assert!(matches!(
        broker.publish("e", "k", "1".into(), versioned).await,
        Err(BrokerError::BadRequest(_))
    ));
    // Keyless: fanned out, not kept.
    let r = broker
        .publish("e", "", "\"hello\"".into(), e.clone())
        .await
        .unwrap();
    assert_eq!(r.position, StreamPosition::default());
    assert!(
        eventually(WAIT, || rec
            .publications()
            .iter()
            .any(|d| d.publication.data == "\"hello\""))
        .await
    );
    let hello = rec
        .publications()
        .into_iter()
        .find(|d| d.publication.data == "\"hello\"")
        .unwrap();
    assert_eq!(hello.publication.offset, 0);
    assert!(hello.publication.key.is_empty());
    assert_eq!(broker.stats("e").await.unwrap(), 1);
    assert!(matches!(
        broker.publish("p", "", "1".into(), persistent()).await,
        Err(BrokerError::BadRequest(_))
    ));
    assert!(matches!(
        broker.remove("p", "", persistent()).await,
        Err(BrokerError::BadRequest(_))
    ));
    // Not JSON in a JSONB broker: refused as bad input.
    assert!(matches!(
        broker
            .publish("p", "k", "not json".into(), persistent())
            .await,
        Err(BrokerError::BadRequest(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_reach_every_node_in_offset_order_with_info_and_tags() {
    let db = TestDb::new().await;
    let (a, rec_a) = running(&db, &["m", "e", "p", "board", "ch:1"]).await;
    let (b, rec_b) = running(&db, &["m", "e", "p", "board", "ch:1"]).await;
    let mut o = opts(MapMode::Recoverable, Duration::from_secs(60));
    o.tags = HashMap::from([("color".to_owned(), "red".to_owned())]);
    let mut info = ClientInfo::new("u1", "c1");
    info.conn_info = Bytes::from(r#"{"name":"Ann"}"#);
    o.client_info = Some(info);
    // Two publishers on two nodes, concurrently, into one channel and others.
    let (pa, pb) = tokio::join!(
        async {
            for i in 0..20 {
                a.publish("board", &format!("a{i}"), "1".into(), o.clone())
                    .await
                    .unwrap();
            }
        },
        async {
            for i in 0..20 {
                b.publish("board", &format!("b{i}"), "2".into(), o.clone())
                    .await
                    .unwrap();
                b.publish(&format!("other{i}"), "k", "3".into(), o.clone())
                    .await
                    .unwrap();
            }
        }
    );
    let ((), ()) = (pa, pb);
    let expected: Vec<u64> = (1..=40).collect();
    for rec in [&rec_a, &rec_b] {
        assert!(eventually(WAIT, || rec.offsets("board").len() == 40).await);
        assert_eq!(rec.offsets("board"), expected);
        let d = rec
            .publications()
            .into_iter()
            .find(|d| d.channel == "board")
            .unwrap();
        assert_eq!(d.publication.tags["color"], "red");
        let info = d.publication.info.unwrap();
        assert_eq!((info.user.as_str(), info.client.as_str()), ("u1", "c1"));
        assert_eq!(info.conn_info, Bytes::from(r#"{"name": "Ann"}"#));
        assert_eq!(d.position.offset, d.publication.offset);
        assert_eq!(d.position.epoch.len(), 8);
    }
    let state = a.read_state("board", read("", -1, None)).await.unwrap();
    assert_eq!(state.entries.len(), 40);
    assert_eq!(state.entries[0].tags["color"], "red");
    assert_eq!(state.entries[0].info.as_ref().unwrap().client, "c1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expiry_emits_a_removal_at_a_new_offset() {
    let db = TestDb::new().await;
    let (broker, rec) = running(&db, &["m", "e", "p", "board", "ch:1"]).await;
    let mut o = opts(MapMode::Recoverable, Duration::from_secs(1));
    o.tags = HashMap::from([("t".to_owned(), "1".to_owned())]);
    broker
        .publish("m", "k", "1".into(), o.clone())
        .await
        .unwrap();
    broker
        .publish("m", "keep", "1".into(), persistent())
        .await
        .unwrap();
    assert_eq!(broker.stats("m").await.unwrap(), 2);
    // The background worker (every 200ms here) removes it after about a second.
    assert!(eventually(WAIT, || rec.offsets("m") == [1, 2, 3]).await);
    let removal = rec.publications().pop().unwrap();
    assert!(removal.publication.removed);
    assert_eq!(removal.publication.key, "k");
    assert_eq!(removal.publication.tags["t"], "1");
    assert_eq!(removal.position.offset, 3);
    assert_eq!(broker.stats("m").await.unwrap(), 1);
    let top = broker
        .read_stream("m", stream(None, 0, false))
        .await
        .unwrap();
    assert_eq!(top.position.offset, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn if_new_with_refresh_keeps_a_key_alive() {
    let db = TestDb::new().await;
    let (broker, rec) = running(&db, &["m", "e", "p", "board", "ch:1"]).await;
    let o = opts(MapMode::Ephemeral, Duration::from_secs(1));
    broker
        .publish("p", "c1", Bytes::new(), o.clone())
        .await
        .unwrap();
    let mut keepalive = o.clone();
    keepalive.key_mode = KeyMode::IfNew;
    keepalive.refresh_ttl_on_suppress = true;
    for _ in 0..4 {
        tokio::time::sleep(Duration::from_millis(400)).await;
        let r = broker
            .publish("p", "c1", Bytes::new(), keepalive.clone())
            .await
            .unwrap();
        assert_eq!(r.suppressed, Some(SuppressReason::KeyExists));
    }
    assert_eq!(broker.stats("p").await.unwrap(), 1);
    assert_eq!(rec.offsets("p").len(), 1);
    assert!(eventually(WAIT, || rec.offsets("p").len() == 2).await);
    assert_eq!(broker.stats("p").await.unwrap(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_meta_starts_a_new_epoch_without_old_keys() {
    let db = TestDb::new().await;
    let broker = db.broker().await;
    let mut channel = MapChannelOptions::new(MapMode::Recoverable, Duration::from_secs(1));
    channel.stream_ttl = Duration::from_secs(1);
    channel.meta_ttl = Duration::from_secs(1);
    let o = MapPublishOptions::new(channel.resolve().unwrap());
    let first = broker
        .publish("m", "k", "1".into(), o.clone())
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1200)).await;
    broker.cleanup().await.unwrap();
    let after = broker.read_state("m", read("", -1, None)).await.unwrap();
    assert_ne!(after.position.epoch, first.position.epoch);
    assert_eq!(after.position.offset, 0);
    assert!(after.entries.is_empty());
    let r = broker.publish("m", "k2", "1".into(), o).await.unwrap();
    assert_eq!(r.position, StreamPosition::new(1, after.position.epoch));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_data_variant_keeps_any_bytes() {
    let db = TestDb::new().await;
    let mut config = db.config();
    config.binary_data = true;
    let broker = PgMapBroker::connect(config).await.unwrap();
    let rec = Recorder::new();
    broker.run(rec.clone()).await.unwrap();
    broker.subscribe("m").await.unwrap();
    let data = Bytes::from_static(b"\x00\xffbinary");
    broker
        .publish("m", "k", data.clone(), persistent())
        .await
        .unwrap();
    let state = broker.read_state("m", read("", -1, None)).await.unwrap();
    assert_eq!(state.entries[0].data, data);
    assert!(eventually(WAIT, || rec.datas("m") == [data.clone()]).await);
    let client = db.client().await;
    let n: i64 = client
        .query_one(
            "SELECT count(*) FROM cf_binary_map_state WHERE channel = 'm'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 1);
}

/// The tables, columns, functions and partitions are Centrifugo's, and a write made the
/// way a Centrifugo node makes it (a call of `cf_map_publish`) is read and delivered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn centrifugo_layout_is_kept() {
    let db = TestDb::new().await;
    let (broker, rec) = running(&db, &["m", "e", "p", "board", "ch:1"]).await;
    let mut o = opts(MapMode::Recoverable, Duration::from_secs(60));
    o.idempotency_key = Some("idem-1".into());
    o.version = 7;
    o.client_info = Some(ClientInfo::new("user-1", "client-1"));
    let r = broker
        .publish("ch:1", "key-1", r#"{"v":1}"#.into(), o)
        .await
        .unwrap();
    let client = db.client().await;

    let q = |sql: &'static str| {
        let client = &client;
        async move { client.query(sql, &[]).await.unwrap() }
    };
    let meta =
        q("SELECT channel, top_offset, epoch, expires_at IS NOT NULL FROM cf_map_meta").await;
    assert_eq!(meta.len(), 1);
    assert_eq!(meta[0].get::<_, String>(0), "ch:1");
    assert_eq!(meta[0].get::<_, i64>(1), 1);
    assert_eq!(meta[0].get::<_, String>(2), r.position.epoch);
    assert!(
        meta[0].get::<_, bool>(3),
        "recoverable channels have a meta TTL"
    );
    let state = q(
        "SELECT channel, key, data::text, key_offset, key_version, client_id, user_id, \
                   expires_at > now() FROM cf_map_state",
    )
    .await;
    assert_eq!(state.len(), 1);
    let s = &state[0];
    assert_eq!(
        (
            s.get::<_, String>(0),
            s.get::<_, String>(1),
            s.get::<_, String>(2)
        ),
        ("ch:1".into(), "key-1".into(), r#"{"v": 1}"#.into())
    );
    assert_eq!((s.get::<_, i64>(3), s.get::<_, i64>(4)), (1, 7));
    assert_eq!(s.get::<_, String>(5), "client-1");
    assert_eq!(s.get::<_, String>(6), "user-1");
    assert!(s.get::<_, bool>(7));
    let rows = q(
        "SELECT channel, channel_offset, epoch, key, removed, shard_id, \
                  shard_id = abs(hashtext(channel)::bigint) % 2 FROM cf_map_stream",
    )
    .await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].get::<_, i64>(1), 1);
    assert_eq!(rows[0].get::<_, String>(2), r.position.epoch);
    assert!(!rows[0].get::<_, bool>(4));
    assert!(
        rows[0].get::<_, bool>(6),
        "shard = abs(hashtext(channel)) % num_shards"
    );
    let idem =
        q("SELECT channel, idempotency_key, result_offset, result_epoch FROM cf_map_idempotency")
            .await;
    assert_eq!(idem.len(), 1);
    assert_eq!(idem[0].get::<_, String>(1), "idem-1");
    assert_eq!(idem[0].get::<_, i64>(2), 1);
    let shards = q("SELECT shard_id FROM cf_map_shard_lock ORDER BY shard_id").await;
    assert_eq!(
        shards
            .iter()
            .map(|r| r.get::<_, i16>(0))
            .collect::<Vec<_>>(),
        [0, 1]
    );
    let version = q("SELECT schema_version FROM cf_map_schema_version WHERE id = 1").await;
    assert_eq!(version[0].get::<_, i32>(0), 1);
    for table in [
        "cf_binary_map_stream",
        "cf_binary_map_state",
        "cf_binary_map_meta",
        "cf_binary_map_idempotency",
        "cf_binary_map_shard_lock",
        "cf_binary_map_schema_version",
    ] {
        let exists: bool = client
            .query_one("SELECT to_regclass($1::text) IS NOT NULL", &[&table])
            .await
            .unwrap()
            .get(0);
        assert!(exists, "{table}");
    }
    let functions = q("SELECT p.proname::text FROM pg_proc p JOIN pg_namespace n \
                       ON n.oid = p.pronamespace WHERE n.nspname = current_schema() \
                       AND p.proname LIKE 'cf\\_map\\_%' ORDER BY 1")
    .await;
    let functions: Vec<String> = functions.iter().map(|r| r.get(0)).collect();
    assert_eq!(
        functions,
        [
            "cf_map_expire_keys",
            "cf_map_publish",
            "cf_map_publish_strict",
            "cf_map_remove",
            "cf_map_remove_strict"
        ]
    );
    let partitions = q("SELECT c.relname::text, c.relname = 'cf_map_stream_' || \
                        to_char((now() AT TIME ZONE 'UTC')::date, 'YYYY_MM_DD') \
                        FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid \
                        JOIN pg_class p ON p.oid = i.inhparent \
                        JOIN pg_namespace n ON n.oid = p.relnamespace \
                        WHERE p.relname = 'cf_map_stream' AND n.nspname = current_schema()")
    .await;
    assert_eq!(partitions.len(), 3, "today and two days ahead");
    assert!(partitions.iter().any(|r| r.get::<_, bool>(1)));

    // A Centrifugo node's write: the function called with named arguments.
    let row = client
        .query_one(
            "SELECT channel_offset, epoch, suppressed FROM cf_map_publish(\
               p_channel => 'ch:1', p_key => 'key-2', p_data => '{\"v\":2}'::jsonb, \
               p_key_ttl => interval '60 seconds', p_meta_ttl => interval '600 seconds', \
               p_num_shards => 2)",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, i64>(0), 2);
    assert_eq!(row.get::<_, String>(1), r.position.epoch);
    assert!(!row.get::<_, bool>(2));
    assert!(eventually(WAIT, || rec.offsets("ch:1") == [1, 2]).await);
    assert_eq!(rec.datas("ch:1")[1], Bytes::from(r#"{"v": 2}"#));
    let state = broker.read_state("ch:1", read("", -1, None)).await.unwrap();
    assert_eq!(
        state
            .entries
            .iter()
            .map(|e| e.key.as_str())
            .collect::<Vec<_>>(),
        ["key-1", "key-2"]
    );
    // The strict variant raises instead of suppressing.
    let err = client
        .query_one(
            "SELECT * FROM cf_map_publish_strict(p_channel => 'ch:1', p_key => 'key-2', \
             p_data => '1'::jsonb, p_key_mode => 'if_new')",
            &[],
        )
        .await
        .unwrap_err();
    assert_eq!(
        err.code(),
        Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION)
    );
    // A second broker on the same database finds the schema in place.
    let again = db.broker().await;
    assert_eq!(again.stats("ch:1").await.unwrap(), 2);
}
