//! Map broker conformance cases, in groups:
//!
//! * `state`: state pages cover every key once, position-only and single-key reads,
//!   revision filtering, epoch change (112), stats and clear;
//! * `key_order`: pages in lexicographic key order with the last key as cursor and exact
//!   page sizes (the memory and PostgreSQL layout; Redis pages in HSCAN order, as
//!   upstream);
//! * `stream`: offsets, reads since a position (forward and reverse), removal at a new
//!   offset, size and TTL trimming, meta TTL starting a new epoch;
//! * `writes`: idempotency keys, versions, key modes, compare-and-set, removal of a
//!   missing key;
//! * `ephemeral`: no offsets, no versions, keyless broadcast;
//! * `expiry`: a key past its TTL is removed with a removal publication;
//! * `delivery`: changes reach the node's handler for subscribed channels;
//! * `multi_node`: only subscribed nodes receive, every one of them.
//!
//! Each case starts from an empty namespace (see [`MapEngine`]).

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use gyre::{
    BoxFuture, BrokerError, ClientInfo, KeyMode, MapBroker, MapChannelOptions, MapMode,
    MapPublishOptions, MapReadStateOptions, MapReadStreamOptions, MapStateResult, StreamPosition,
    SuppressReason,
};

use crate::recorder::{Recorder, Seen, eventually};

/// How long a case waits for a delivery.
const WAIT: Duration = Duration::from_secs(5);

/// A running map broker and the recorder it delivers to: one "node" of a test.
pub struct MapTestNode {
    /// The broker, already running with [`MapTestNode::rec`] as its handler.
    pub broker: Arc<dyn MapBroker>,
    /// Everything the broker delivered to this node.
    pub rec: Arc<Recorder>,
    on_drop: Option<Box<dyn FnOnce() + Send + Sync>>,
}

impl std::fmt::Debug for MapTestNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MapTestNode").finish_non_exhaustive()
    }
}

impl MapTestNode {
    /// Runs `broker` with a new [`Recorder`].
    pub async fn start(broker: Arc<dyn MapBroker>) -> MapTestNode {
        let rec = Recorder::new();
        broker.run(rec.clone()).await.expect("map broker runs");
        MapTestNode {
            broker,
            rec,
            on_drop: None,
        }
    }

    /// Calls `f` when the node is dropped (e.g. to stop the engine's background tasks).
    pub fn on_drop(mut self, f: impl FnOnce() + Send + Sync + 'static) -> Self {
        self.on_drop = Some(Box::new(f));
        self
    }
}

impl Drop for MapTestNode {
    fn drop(&mut self) {
        if let Some(f) = self.on_drop.take() {
            f();
        }
    }
}

/// A map broker under test. One value serves one case; every node it makes shares the
/// case's channels (for a networked engine: one key prefix no other case uses).
pub trait MapEngine: Send + Sync {
    /// A new node.
    fn node(&self) -> BoxFuture<'_, Arc<MapTestNode>>;

    /// Two nodes. A single-node engine returns its one node twice.
    fn pair(&self) -> BoxFuture<'_, (Arc<MapTestNode>, Arc<MapTestNode>)> {
        Box::pin(async { (self.node().await, self.node().await) })
    }

    /// Removes what the case left in the engine.
    fn cleanup(&self) -> BoxFuture<'_, ()> {
        Box::pin(async {})
    }
}

// ---- helpers ----

fn channel_opts(mode: MapMode, key_ttl: Duration) -> MapChannelOptions {
    MapChannelOptions::new(mode, key_ttl)
        .resolve()
        .expect("valid map options")
}

fn persistent() -> MapPublishOptions {
    MapPublishOptions::new(channel_opts(MapMode::Persistent, Duration::ZERO))
}

fn recoverable(key_ttl: Duration) -> MapPublishOptions {
    MapPublishOptions::new(channel_opts(MapMode::Recoverable, key_ttl))
}

fn ephemeral(key_ttl: Duration) -> MapPublishOptions {
    MapPublishOptions::new(channel_opts(MapMode::Ephemeral, key_ttl))
}

fn state_opts(cursor: &str, limit: i32, revision: Option<StreamPosition>) -> MapReadStateOptions {
    let mut o = MapReadStateOptions::default();
    o.cursor = cursor.to_owned();
    o.limit = limit;
    o.revision = revision;
    o
}

fn stream_opts(since: Option<StreamPosition>, limit: i32, reverse: bool) -> MapReadStreamOptions {
    let mut o = MapReadStreamOptions::default();
    o.since = since;
    o.limit = limit;
    o.reverse = reverse;
    o
}

async fn set(broker: &dyn MapBroker, ch: &str, key: &str, data: &str, o: &MapPublishOptions) {
    let r = broker
        .publish(ch, key, Bytes::from(data.to_owned()), o.clone())
        .await
        .unwrap();
    assert_eq!(r.suppressed, None, "publish of {key} suppressed");
}

async fn all_state(broker: &dyn MapBroker, ch: &str) -> MapStateResult {
    broker
        .read_state(ch, state_opts("", -1, None))
        .await
        .unwrap()
}

fn keys_and_data(state: &MapStateResult) -> Vec<(String, Bytes)> {
    let mut out: Vec<_> = state
        .entries
        .iter()
        .map(|p| (p.key.clone(), p.data.clone()))
        .collect();
    out.sort();
    out
}

fn tags(k: &str, v: &str) -> HashMap<String, String> {
    HashMap::from([(k.to_owned(), v.to_owned())])
}

// ---- state ----

/// Paging with a cursor visits every key exactly once, whatever order the engine pages
/// in; each page reports the stream top; the last page's cursor is empty.
pub async fn state_pages_cover_every_key_once(engine: &impl MapEngine) {
    let n = engine.node().await;
    let o = persistent();
    let keys: Vec<String> = (0..30).map(|i| format!("k{i:02}")).collect();
    for k in &keys {
        set(n.broker.as_ref(), "m", k, &format!("\"{k}\""), &o).await;
    }
    let mut seen = Vec::new();
    let mut cursor = String::new();
    let mut done = false;
    for _ in 0..100 {
        let page = n
            .broker
            .read_state("m", state_opts(&cursor, 7, None))
            .await
            .unwrap();
        assert_eq!(page.position.offset, 30);
        for p in &page.entries {
            assert_eq!(p.data, Bytes::from(format!("\"{}\"", p.key)));
            assert!(p.offset >= 1 && p.offset <= 30);
            seen.push(p.key.clone());
        }
        if page.cursor.is_empty() {
            done = true;
            break;
        }
        cursor = page.cursor;
    }
    assert!(done, "paging never ended");
    let unique: BTreeSet<_> = seen.iter().cloned().collect();
    assert_eq!(unique.len(), seen.len(), "a key came twice: {seen:?}");
    assert_eq!(unique, keys.iter().cloned().collect());
    engine.cleanup().await;
}

/// Limit 0 reads the position only; a key reads that key's entry (with its offset, info
/// and tags); a missing channel has offset 0 and an epoch.
pub async fn state_position_only_and_single_key(engine: &impl MapEngine) {
    let n = engine.node().await;
    let empty = n
        .broker
        .read_state("m", state_opts("", 0, None))
        .await
        .unwrap();
    assert_eq!(empty.position.offset, 0);
    assert!(!empty.position.epoch.is_empty());
    assert!(empty.entries.is_empty() && empty.cursor.is_empty());
    let mut o = persistent();
    o.client_info = Some(ClientInfo::new("u1", "c1"));
    o.tags = tags("color", "red");
    set(n.broker.as_ref(), "m", "a", "1", &o).await;
    set(n.broker.as_ref(), "m", "b", "2", &persistent()).await;
    let top = n
        .broker
        .read_state("m", state_opts("", 0, None))
        .await
        .unwrap();
    assert_eq!(top.position.offset, 2);
    assert_eq!(
        top.position.epoch, empty.position.epoch,
        "first write keeps the epoch"
    );
    assert!(top.entries.is_empty());
    let mut one = state_opts("", 10, None);
    one.key = Some("a".into());
    let a = n.broker.read_state("m", one.clone()).await.unwrap();
    assert_eq!(a.entries.len(), 1);
    let e = &a.entries[0];
    assert_eq!((e.key.as_str(), &e.data[..], e.offset), ("a", &b"1"[..], 1));
    assert_eq!(e.info, Some(ClientInfo::new("u1", "c1")));
    assert_eq!(e.tags, tags("color", "red"));
    assert!(!e.removed);
    one.key = Some("zz".into());
    assert!(
        n.broker
            .read_state("m", one)
            .await
            .unwrap()
            .entries
            .is_empty()
    );
    engine.cleanup().await;
}

/// With a revision, entries changed after its offset are left out (the stream brings
/// them) and the change is readable from the stream after the revision.
pub async fn revision_leaves_out_newer_entries(engine: &impl MapEngine) {
    let n = engine.node().await;
    let o = recoverable(Duration::from_secs(60));
    set(n.broker.as_ref(), "m", "a", "1", &o).await;
    set(n.broker.as_ref(), "m", "b", "1", &o).await;
    let first = all_state(n.broker.as_ref(), "m").await;
    let frozen = first.position.clone();
    assert_eq!(frozen.offset, 2);
    set(n.broker.as_ref(), "m", "b", "2", &o).await;
    set(n.broker.as_ref(), "m", "c", "1", &o).await;
    let later = n
        .broker
        .read_state("m", state_opts("", -1, Some(frozen.clone())))
        .await
        .unwrap();
    assert_eq!(later.position.offset, 4);
    let keys: Vec<_> = keys_and_data(&later).into_iter().map(|(k, _)| k).collect();
    assert_eq!(keys, ["a"]);
    let stream = n
        .broker
        .read_stream("m", stream_opts(Some(frozen), -1, false))
        .await
        .unwrap();
    let got: Vec<_> = stream
        .publications
        .iter()
        .map(|p| (p.key.as_str(), p.offset, p.data.clone()))
        .collect();
    assert_eq!(
        got,
        [("b", 3, Bytes::from("2")), ("c", 4, Bytes::from("1"))]
    );
    engine.cleanup().await;
}

/// After a clear the channel has a new epoch: a revision or a stream position of the old
/// epoch is unrecoverable (the client gets 112), and offsets restart at 1.
pub async fn epoch_change_is_unrecoverable(engine: &impl MapEngine) {
    let n = engine.node().await;
    let o = recoverable(Duration::from_secs(60));
    set(n.broker.as_ref(), "m", "a", "1", &o).await;
    let old = all_state(n.broker.as_ref(), "m").await.position;
    n.broker.clear("m").await.unwrap();
    let r = n
        .broker
        .read_state("m", state_opts("", 10, Some(old.clone())))
        .await;
    assert!(
        matches!(r, Err(BrokerError::UnrecoverablePosition)),
        "{r:?}"
    );
    let r = n
        .broker
        .read_stream("m", stream_opts(Some(old.clone()), 10, false))
        .await;
    assert!(
        matches!(r, Err(BrokerError::UnrecoverablePosition)),
        "{r:?}"
    );
    let bogus = StreamPosition::new(0, "not-an-epoch");
    let r = n
        .broker
        .read_state("m", state_opts("", 10, Some(bogus)))
        .await;
    assert!(
        matches!(r, Err(BrokerError::UnrecoverablePosition)),
        "{r:?}"
    );
    let again = n
        .broker
        .publish("m", "b", Bytes::from("1"), o.clone())
        .await
        .unwrap();
    assert_eq!(again.position.offset, 1);
    assert_ne!(again.position.epoch, old.epoch);
    let state = all_state(n.broker.as_ref(), "m").await;
    assert_eq!(keys_and_data(&state), [("b".to_owned(), Bytes::from("1"))]);
    engine.cleanup().await;
}

/// Stats count the keys; clear forgets state, stream and position.
pub async fn stats_and_clear(engine: &impl MapEngine) {
    let n = engine.node().await;
    assert_eq!(n.broker.stats("m").await.unwrap(), 0);
    let o = persistent();
    for k in ["a", "b", "c"] {
        set(n.broker.as_ref(), "m", k, "1", &o).await;
    }
    set(n.broker.as_ref(), "other", "x", "1", &o).await;
    assert_eq!(n.broker.stats("m").await.unwrap(), 3);
    n.broker.remove("m", "b", o.clone()).await.unwrap();
    assert_eq!(n.broker.stats("m").await.unwrap(), 2);
    n.broker.clear("m").await.unwrap();
    assert_eq!(n.broker.stats("m").await.unwrap(), 0);
    assert!(all_state(n.broker.as_ref(), "m").await.entries.is_empty());
    let stream = n
        .broker
        .read_stream("m", stream_opts(None, -1, false))
        .await
        .unwrap();
    assert!(stream.publications.is_empty());
    assert_eq!(stream.position.offset, 0);
    // Another channel is untouched; clearing twice is harmless.
    assert_eq!(n.broker.stats("other").await.unwrap(), 1);
    n.broker.clear("m").await.unwrap();
    engine.cleanup().await;
}

// ---- key_order ----

/// Pages hold exactly `limit` keys in lexicographic order, the cursor is the page's last
/// key, and a page continues after it.
pub async fn state_pages_follow_key_order(engine: &impl MapEngine) {
    let n = engine.node().await;
    let o = persistent();
    for k in ["c", "a", "e", "b", "d"] {
        set(n.broker.as_ref(), "m", k, "1", &o).await;
    }
    let mut pages = Vec::new();
    let mut cursor = String::new();
    loop {
        let page = n
            .broker
            .read_state("m", state_opts(&cursor, 2, None))
            .await
            .unwrap();
        let keys: Vec<String> = page.entries.iter().map(|p| p.key.clone()).collect();
        pages.push((keys, page.cursor.clone()));
        if page.cursor.is_empty() {
            break;
        }
        cursor = page.cursor;
    }
    let expect = |k: &[&str], c: &str| (k.iter().map(|s| s.to_string()).collect(), c.to_owned());
    assert_eq!(
        pages,
        vec![
            expect(&["a", "b"], "b"),
            expect(&["c", "d"], "d"),
            expect(&["e"], "")
        ]
    );
    // A cursor is a key: continuing after "a" skips it, even for a key removed since.
    n.broker.remove("m", "b", o.clone()).await.unwrap();
    let page = n
        .broker
        .read_state("m", state_opts("b", 2, None))
        .await
        .unwrap();
    let keys: Vec<_> = page.entries.iter().map(|p| p.key.as_str()).collect();
    assert_eq!(keys, ["c", "d"]);
    engine.cleanup().await;
}

// ---- stream ----

/// Offsets count from 1 with a stable epoch; the stream is read after a position,
/// forward or newest first, with a limit.
pub async fn read_stream_since_forward_and_reverse(engine: &impl MapEngine) {
    let n = engine.node().await;
    let o = persistent();
    let mut epoch = String::new();
    for i in 1..=5u64 {
        let r = n
            .broker
            .publish("m", &format!("k{i}"), Bytes::from(i.to_string()), o.clone())
            .await
            .unwrap();
        assert_eq!(r.position.offset, i);
        if i == 1 {
            epoch = r.position.epoch.clone();
        }
        assert_eq!(r.position.epoch, epoch);
    }
    let offs = |pubs: &[gyre::Publication]| pubs.iter().map(|p| p.offset).collect::<Vec<_>>();
    let all = n
        .broker
        .read_stream("m", stream_opts(None, -1, false))
        .await
        .unwrap();
    assert_eq!(all.position, StreamPosition::new(5, epoch.clone()));
    assert_eq!(offs(&all.publications), [1, 2, 3, 4, 5]);
    assert!(
        all.publications
            .iter()
            .all(|p| p.key == format!("k{}", p.offset)
                && p.data == p.offset.to_string().as_bytes()
                && !p.removed)
    );
    let since = StreamPosition::new(2, epoch.clone());
    let fwd = n
        .broker
        .read_stream("m", stream_opts(Some(since.clone()), 2, false))
        .await
        .unwrap();
    assert_eq!(offs(&fwd.publications), [3, 4]);
    let rev = n
        .broker
        .read_stream("m", stream_opts(None, 2, true))
        .await
        .unwrap();
    assert_eq!(offs(&rev.publications), [5, 4]);
    let top = n
        .broker
        .read_stream("m", stream_opts(None, 0, false))
        .await
        .unwrap();
    assert!(top.publications.is_empty());
    assert_eq!(top.position.offset, 5);
    let at_top = n
        .broker
        .read_stream(
            "m",
            stream_opts(Some(StreamPosition::new(5, epoch)), 10, false),
        )
        .await
        .unwrap();
    assert!(at_top.publications.is_empty());
    engine.cleanup().await;
}

/// A remove is a publication at a new offset with `removed`, the key and no data, in the
/// stream and delivered; the key leaves the state.
pub async fn remove_publishes_removal_at_new_offset(engine: &impl MapEngine) {
    let n = engine.node().await;
    n.broker.subscribe("m").await.unwrap();
    let o = recoverable(Duration::from_secs(60));
    set(n.broker.as_ref(), "m", "a", "1", &o).await;
    let mut ro = o.clone();
    ro.tags = tags("why", "gone");
    let r = n.broker.remove("m", "a", ro).await.unwrap();
    assert_eq!(r.suppressed, None);
    assert_eq!(r.position.offset, 2);
    let stream = n
        .broker
        .read_stream("m", stream_opts(None, -1, false))
        .await
        .unwrap();
    let last = stream.publications.last().unwrap();
    assert_eq!(
        (last.key.as_str(), last.removed, last.offset),
        ("a", true, 2)
    );
    assert!(last.data.is_empty());
    assert!(all_state(n.broker.as_ref(), "m").await.entries.is_empty());
    assert!(eventually(WAIT, || n.rec.publications().len() == 2).await);
    let d = &n.rec.publications()[1];
    assert_eq!(d.channel, "m");
    assert!(d.publication.removed);
    assert_eq!(d.publication.key, "a");
    assert_eq!(d.publication.offset, 2);
    assert_eq!(d.position, r.position);
    engine.cleanup().await;
}

/// The stream keeps at least the newest `stream_size` changes and drops old ones (Redis
/// trims approximately, as upstream's `MAXLEN ~`); the position is unaffected.
pub async fn stream_trimmed_to_size(engine: &impl MapEngine) {
    let n = engine.node().await;
    let mut ch = MapChannelOptions::new(MapMode::Persistent, Duration::ZERO);
    ch.stream_size = 3;
    let o = MapPublishOptions::new(ch.resolve().unwrap());
    for i in 0..400 {
        set(n.broker.as_ref(), "m", &format!("k{}", i % 7), "1", &o).await;
    }
    let s = n
        .broker
        .read_stream("m", stream_opts(None, -1, false))
        .await
        .unwrap();
    assert_eq!(s.position.offset, 400);
    let offs: Vec<u64> = s.publications.iter().map(|p| p.offset).collect();
    assert!(offs.len() >= 3 && offs.len() < 400, "kept {}", offs.len());
    assert_eq!(*offs.last().unwrap(), 400);
    assert!(offs.windows(2).all(|w| w[1] == w[0] + 1), "gap in {offs:?}");
    assert_eq!(n.broker.stats("m").await.unwrap(), 7);
    engine.cleanup().await;
}

/// Past its TTL the stream is gone but the position and the state stay.
pub async fn stream_expires_after_ttl(engine: &impl MapEngine) {
    let n = engine.node().await;
    let mut ch = MapChannelOptions::new(MapMode::Persistent, Duration::ZERO);
    ch.stream_ttl = Duration::from_secs(1);
    let o = MapPublishOptions::new(ch.resolve().unwrap());
    set(n.broker.as_ref(), "m", "a", "1", &o).await;
    set(n.broker.as_ref(), "m", "b", "1", &o).await;
    let before = n
        .broker
        .read_stream("m", stream_opts(None, -1, false))
        .await
        .unwrap();
    assert_eq!(before.publications.len(), 2);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let after = n
        .broker
        .read_stream("m", stream_opts(None, -1, false))
        .await
        .unwrap();
    assert!(after.publications.is_empty(), "{:?}", after.publications);
    assert_eq!(after.position, before.position);
    assert_eq!(n.broker.stats("m").await.unwrap(), 2);
    engine.cleanup().await;
}

/// Past the meta TTL the channel is forgotten: the next write starts a new epoch at 1.
pub async fn meta_ttl_expiry_starts_new_epoch(engine: &impl MapEngine) {
    let n = engine.node().await;
    let mut ch = MapChannelOptions::new(MapMode::Persistent, Duration::ZERO);
    ch.stream_ttl = Duration::from_secs(1);
    ch.meta_ttl = Duration::from_secs(1);
    let o = MapPublishOptions::new(ch.resolve().unwrap());
    let first = n
        .broker
        .publish("m", "a", Bytes::from("1"), o.clone())
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let next = n
        .broker
        .publish("m", "b", Bytes::from("1"), o.clone())
        .await
        .unwrap();
    assert_eq!(next.position.offset, 1);
    assert_ne!(next.position.epoch, first.position.epoch);
    // State of the old epoch is not shown in the new one.
    let state = all_state(n.broker.as_ref(), "m").await;
    assert_eq!(keys_and_data(&state), [("b".to_owned(), Bytes::from("1"))]);
    engine.cleanup().await;
}

// ---- writes ----

/// A second publish with the same idempotency key changes nothing and returns the first
/// result, even with other data.
pub async fn idempotent_publish_changes_once(engine: &impl MapEngine) {
    let n = engine.node().await;
    n.broker.subscribe("m").await.unwrap();
    let mut o = persistent();
    o.idempotency_key = Some("once".into());
    o.idempotent_result_ttl = Some(Duration::from_secs(60));
    let first = n
        .broker
        .publish("m", "a", Bytes::from("1"), o.clone())
        .await
        .unwrap();
    assert_eq!(first.suppressed, None);
    let again = n
        .broker
        .publish("m", "a", Bytes::from("2"), o.clone())
        .await
        .unwrap();
    assert_eq!(again.suppressed, Some(SuppressReason::Idempotency));
    assert_eq!(again.position, first.position);
    let state = all_state(n.broker.as_ref(), "m").await;
    assert_eq!(keys_and_data(&state), [("a".to_owned(), Bytes::from("1"))]);
    assert_eq!(state.position.offset, 1);
    // A remove with the key of an earlier remove is suppressed too.
    let mut ro = persistent();
    ro.idempotency_key = Some("rm".into());
    let r1 = n.broker.remove("m", "a", ro.clone()).await.unwrap();
    assert_eq!(r1.suppressed, None);
    set(n.broker.as_ref(), "m", "a", "3", &persistent()).await;
    let r2 = n.broker.remove("m", "a", ro).await.unwrap();
    assert_eq!(r2.suppressed, Some(SuppressReason::Idempotency));
    assert_eq!(r2.position, r1.position);
    assert_eq!(n.broker.stats("m").await.unwrap(), 1);
    assert!(eventually(WAIT, || n.rec.publications().len() == 3).await);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(n.rec.offsets("m"), [1, 2, 3]);
    engine.cleanup().await;
}

/// A version not above the key's last one is suppressed; another version epoch resets
/// the comparison; unversioned keys are independent.
pub async fn version_suppresses_older(engine: &impl MapEngine) {
    let n = engine.node().await;
    let v = |version: u64, epoch: &str| {
        let mut o = persistent();
        o.version = version;
        o.version_epoch = epoch.to_owned();
        o
    };
    let b = n.broker.as_ref();
    assert_eq!(
        b.publish("m", "a", "5".into(), v(5, ""))
            .await
            .unwrap()
            .suppressed,
        None
    );
    let r = b.publish("m", "a", "4".into(), v(4, "")).await.unwrap();
    assert_eq!(r.suppressed, Some(SuppressReason::Version));
    assert_eq!(r.position.offset, 1);
    let r = b.publish("m", "a", "5b".into(), v(5, "")).await.unwrap();
    assert_eq!(r.suppressed, Some(SuppressReason::Version));
    assert_eq!(
        b.publish("m", "a", "6".into(), v(6, ""))
            .await
            .unwrap()
            .suppressed,
        None
    );
    assert_eq!(
        b.publish("m", "b", "1".into(), v(1, ""))
            .await
            .unwrap()
            .suppressed,
        None
    );
    // Same version in another version epoch applies.
    assert_eq!(
        b.publish("m", "a", "x".into(), v(2, "e2"))
            .await
            .unwrap()
            .suppressed,
        None
    );
    let r = b.publish("m", "a", "y".into(), v(1, "e2")).await.unwrap();
    assert_eq!(r.suppressed, Some(SuppressReason::Version));
    let state = all_state(b, "m").await;
    assert_eq!(
        keys_and_data(&state),
        [
            ("a".to_owned(), Bytes::from("x")),
            ("b".to_owned(), Bytes::from("1"))
        ]
    );
    assert_eq!(state.position.offset, 4);
    engine.cleanup().await;
}

/// `if_new` keeps an existing key, `if_exists` refuses a missing one; both leave the
/// offset as it was.
pub async fn key_modes(engine: &impl MapEngine) {
    let n = engine.node().await;
    let b = n.broker.as_ref();
    let mode = |m| {
        let mut o = persistent();
        o.key_mode = m;
        o
    };
    let r = b
        .publish("m", "a", "1".into(), mode(KeyMode::IfExists))
        .await
        .unwrap();
    assert_eq!(r.suppressed, Some(SuppressReason::KeyNotFound));
    let r = b
        .publish("m", "a", "1".into(), mode(KeyMode::IfNew))
        .await
        .unwrap();
    assert_eq!((r.suppressed, r.position.offset), (None, 1));
    let r = b
        .publish("m", "a", "2".into(), mode(KeyMode::IfNew))
        .await
        .unwrap();
    assert_eq!(
        (r.suppressed, r.position.offset),
        (Some(SuppressReason::KeyExists), 1)
    );
    let r = b
        .publish("m", "a", "3".into(), mode(KeyMode::IfExists))
        .await
        .unwrap();
    assert_eq!((r.suppressed, r.position.offset), (None, 2));
    let state = all_state(b, "m").await;
    assert_eq!(keys_and_data(&state), [("a".to_owned(), Bytes::from("3"))]);
    engine.cleanup().await;
}

/// Compare-and-set applies only when the key's entry is at the expected position; a
/// mismatch returns the current entry.
pub async fn expected_position_cas(engine: &impl MapEngine) {
    let n = engine.node().await;
    let b = n.broker.as_ref();
    let first = b.publish("m", "a", "1".into(), persistent()).await.unwrap();
    let cas = |offset: u64, epoch: &str| {
        let mut o = persistent();
        o.expected_position = Some(StreamPosition::new(offset, epoch));
        o
    };
    let epoch = first.position.epoch.clone();
    let r = b
        .publish("m", "a", "2".into(), cas(7, &epoch))
        .await
        .unwrap();
    assert_eq!(r.suppressed, Some(SuppressReason::PositionMismatch));
    let current = r.current.expect("current entry");
    assert_eq!((current.offset, current.data), (1, Bytes::from("1")));
    let r = b
        .publish("m", "a", "2".into(), cas(1, "other"))
        .await
        .unwrap();
    assert_eq!(r.suppressed, Some(SuppressReason::PositionMismatch));
    let r = b
        .publish("m", "a", "2".into(), cas(1, &epoch))
        .await
        .unwrap();
    assert_eq!((r.suppressed, r.position.offset), (None, 2));
    let state = all_state(b, "m").await;
    assert_eq!(keys_and_data(&state), [("a".to_owned(), Bytes::from("2"))]);
    engine.cleanup().await;
}

/// Removing a missing key is suppressed: no offset, no event.
pub async fn remove_missing_key_is_suppressed(engine: &impl MapEngine) {
    let n = engine.node().await;
    n.broker.subscribe("m").await.unwrap();
    let o = recoverable(Duration::from_secs(60));
    let r = n.broker.remove("m", "nope", o.clone()).await.unwrap();
    assert_eq!(r.suppressed, Some(SuppressReason::KeyNotFound));
    assert_eq!(r.position.offset, 0);
    set(n.broker.as_ref(), "m", "a", "1", &o).await;
    let r = n.broker.remove("m", "nope", o.clone()).await.unwrap();
    assert_eq!(r.suppressed, Some(SuppressReason::KeyNotFound));
    assert_eq!(r.position.offset, 1);
    assert!(eventually(WAIT, || !n.rec.publications().is_empty()).await);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(n.rec.offsets("m"), [1]);
    engine.cleanup().await;
}

// ---- ephemeral ----

/// Ephemeral channels keep state without offsets and refuse versions and CAS.
pub async fn ephemeral_has_no_offsets(engine: &impl MapEngine) {
    let n = engine.node().await;
    n.broker.subscribe("e").await.unwrap();
    let o = ephemeral(Duration::from_secs(60));
    let r = n
        .broker
        .publish("e", "a", "1".into(), o.clone())
        .await
        .unwrap();
    assert_eq!((r.suppressed, r.position.offset), (None, 0));
    set(n.broker.as_ref(), "e", "b", "2", &o).await;
    let state = all_state(n.broker.as_ref(), "e").await;
    assert_eq!(
        keys_and_data(&state),
        [
            ("a".to_owned(), Bytes::from("1")),
            ("b".to_owned(), Bytes::from("2"))
        ]
    );
    assert!(state.entries.iter().all(|p| p.offset == 0));
    let mut v = o.clone();
    v.version = 1;
    assert!(matches!(
        n.broker.publish("e", "a", "1".into(), v).await,
        Err(BrokerError::BadRequest(_))
    ));
    let mut cas = o.clone();
    cas.expected_position = Some(StreamPosition::new(0, r.position.epoch.clone()));
    assert!(matches!(
        n.broker.publish("e", "a", "1".into(), cas).await,
        Err(BrokerError::BadRequest(_))
    ));
    let rm = n.broker.remove("e", "a", o.clone()).await.unwrap();
    assert_eq!(rm.suppressed, None);
    assert_eq!(n.broker.stats("e").await.unwrap(), 1);
    assert!(eventually(WAIT, || n.rec.publications().len() == 3).await);
    let delivered = n.rec.publications();
    assert!(delivered.iter().all(|d| d.publication.offset == 0));
    assert!(delivered[2].publication.removed);
    engine.cleanup().await;
}

/// An ephemeral publish without a key is a plain broadcast: delivered, nothing stored.
pub async fn keyless_ephemeral_publish_is_a_broadcast(engine: &impl MapEngine) {
    let n = engine.node().await;
    n.broker.subscribe("e").await.unwrap();
    let o = ephemeral(Duration::from_secs(60));
    let r = n.broker.publish("e", "", "hi".into(), o).await.unwrap();
    assert_eq!(r.position.offset, 0);
    assert!(eventually(WAIT, || n.rec.publications().len() == 1).await);
    let d = &n.rec.publications()[0];
    assert_eq!(
        (d.publication.key.as_str(), &d.publication.data[..]),
        ("", &b"hi"[..])
    );
    assert_eq!(n.broker.stats("e").await.unwrap(), 0);
    assert!(all_state(n.broker.as_ref(), "e").await.entries.is_empty());
    // Keyed streams need a key.
    assert!(
        n.broker
            .publish("m", "", "x".into(), persistent())
            .await
            .is_err()
    );
    engine.cleanup().await;
}

// ---- expiry ----

/// A key past its TTL leaves the state with a removal publication carrying its last
/// tags, at a new offset in a recoverable channel.
pub async fn expired_key_emits_removal_recoverable(engine: &impl MapEngine) {
    let n = engine.node().await;
    n.broker.subscribe("m").await.unwrap();
    let mut short = recoverable(Duration::from_secs(1));
    short.tags = tags("t", "1");
    set(n.broker.as_ref(), "m", "gone", "1", &short).await;
    // A key refreshed before its TTL stays.
    set(
        n.broker.as_ref(),
        "m",
        "kept",
        "1",
        &recoverable(Duration::from_secs(30)),
    )
    .await;
    assert!(
        eventually(WAIT, || n
            .rec
            .publications()
            .iter()
            .any(|d| d.publication.removed))
        .await,
        "no removal"
    );
    let removal = n
        .rec
        .publications()
        .into_iter()
        .find(|d| d.publication.removed)
        .unwrap();
    assert_eq!(removal.channel, "m");
    assert_eq!(removal.publication.key, "gone");
    assert_eq!(removal.publication.offset, 3);
    assert_eq!(removal.publication.tags, tags("t", "1"));
    assert_eq!(removal.position.offset, 3);
    let state = all_state(n.broker.as_ref(), "m").await;
    let keys: Vec<_> = keys_and_data(&state).into_iter().map(|(k, _)| k).collect();
    assert_eq!(keys, ["kept"]);
    assert_eq!(state.position.offset, 3);
    let stream = n
        .broker
        .read_stream("m", stream_opts(None, -1, false))
        .await
        .unwrap();
    let last = stream.publications.last().unwrap();
    assert_eq!(
        (last.key.as_str(), last.removed, last.offset),
        ("gone", true, 3)
    );
    engine.cleanup().await;
}

/// An ephemeral key past its TTL is removed with a removal publication (offset 0).
pub async fn expired_key_emits_removal_ephemeral(engine: &impl MapEngine) {
    let n = engine.node().await;
    n.broker.subscribe("e").await.unwrap();
    set(
        n.broker.as_ref(),
        "e",
        "gone",
        "1",
        &ephemeral(Duration::from_secs(1)),
    )
    .await;
    assert!(
        eventually(WAIT, || n
            .rec
            .publications()
            .iter()
            .any(|d| d.publication.removed))
        .await,
        "no removal"
    );
    let removal = n
        .rec
        .publications()
        .into_iter()
        .find(|d| d.publication.removed)
        .unwrap();
    assert_eq!(removal.publication.key, "gone");
    assert_eq!(removal.publication.offset, 0);
    assert_eq!(n.broker.stats("e").await.unwrap(), 0);
    engine.cleanup().await;
}

// ---- delivery ----

/// Changes of a subscribed channel reach the node's handler in offset order with key,
/// data, info, tags, time and position; an unsubscribed channel's do not.
pub async fn changes_reach_subscribed_node(engine: &impl MapEngine) {
    let n = engine.node().await;
    n.broker.subscribe("m").await.unwrap();
    let mut o = persistent();
    o.client_info = Some(ClientInfo::new("u", "c"));
    o.tags = tags("k", "v");
    let mut results = Vec::new();
    for i in 0..20 {
        let r = n
            .broker
            .publish(
                "m",
                &format!("k{}", i % 3),
                Bytes::from(i.to_string()),
                o.clone(),
            )
            .await
            .unwrap();
        results.push(r);
    }
    let rm = n.broker.remove("m", "k0", persistent()).await.unwrap();
    let mut rx = n.rec.reader();
    for (i, r) in results.iter().enumerate() {
        match rx.next(WAIT).await {
            Seen::Publication(d) => {
                assert_eq!(d.channel, "m");
                assert_eq!(d.publication.key, format!("k{}", i % 3));
                assert_eq!(d.publication.data, Bytes::from(i.to_string()));
                assert_eq!(d.publication.offset, r.position.offset);
                assert_eq!(d.position, r.position);
                assert_eq!(d.publication.info, Some(ClientInfo::new("u", "c")));
                assert_eq!(d.publication.tags, tags("k", "v"));
                assert!(d.publication.time > 0);
                assert!(!d.publication.removed);
            }
            other => panic!("expected a publication, got {other:?}"),
        }
    }
    match rx.next(WAIT).await {
        Seen::Publication(d) => {
            assert!(d.publication.removed);
            assert_eq!(d.position, rm.position);
        }
        other => panic!("expected the removal, got {other:?}"),
    }
    engine.cleanup().await;
}

// ---- multi_node ----

/// Every subscribed node gets every change; a node that did not subscribe (or
/// unsubscribed) gets none.
pub async fn only_subscribed_nodes_receive(engine: &impl MapEngine) {
    let (a, b) = engine.pair().await;
    b.broker.subscribe("m").await.unwrap();
    b.broker.subscribe("marker").await.unwrap();
    let o = persistent();
    set(a.broker.as_ref(), "m", "k", "1", &o).await;
    a.broker.remove("m", "k", o.clone()).await.unwrap();
    assert!(eventually(WAIT, || b.rec.offsets("m") == [1, 2]).await);
    assert!(a.rec.publications().is_empty());
    b.broker.unsubscribe("m").await.unwrap();
    set(a.broker.as_ref(), "m", "k", "2", &o).await;
    set(a.broker.as_ref(), "marker", "k", "1", &o).await;
    assert!(eventually(WAIT, || b.rec.offsets("marker") == [1]).await);
    assert_eq!(b.rec.offsets("m"), [1, 2]);
    engine.cleanup().await;
}

/// Runs the map broker conformance suite for one engine: one `#[test]` per case, in a
/// module `map_conformance`.
///
/// `engine` is an `async fn(test_name: &str) -> impl MapEngine`; `clock` a
/// [`Clock`](super::Clock) variant. Every group is named with `run` or `skip "why"`.
///
/// ```text
/// gyre_testkit::map_conformance! {
///     engine: redis_engine, clock: Real,
///     state: run,
///     key_order: skip "Redis pages in HSCAN order, as upstream",
///     stream: run, writes: run, ephemeral: run, expiry: run, delivery: run,
///     multi_node: run,
/// }
/// ```
#[macro_export]
macro_rules! map_conformance {
    (
        engine: $engine:path, clock: $clock:ident,
        state: $s:ident $($sw:literal)?,
        key_order: $k:ident $($kw:literal)?,
        stream: $st:ident $($stw:literal)?,
        writes: $w:ident $($ww:literal)?,
        ephemeral: $e:ident $($ew:literal)?,
        expiry: $x:ident $($xw:literal)?,
        delivery: $d:ident $($dw:literal)?,
        multi_node: $m:ident $($mw:literal)? $(,)?
    ) => {
        mod map_conformance {
            #[allow(unused_imports)]
            use super::*;
            $crate::__conformance_cases!(map; ($s $($sw)?); $engine, $clock;
                state_pages_cover_every_key_once,
                state_position_only_and_single_key,
                revision_leaves_out_newer_entries,
                epoch_change_is_unrecoverable,
                stats_and_clear,
            );
            $crate::__conformance_cases!(map; ($k $($kw)?); $engine, $clock;
                state_pages_follow_key_order,
            );
            $crate::__conformance_cases!(map; ($st $($stw)?); $engine, $clock;
                read_stream_since_forward_and_reverse,
                remove_publishes_removal_at_new_offset,
                stream_trimmed_to_size,
                stream_expires_after_ttl,
                meta_ttl_expiry_starts_new_epoch,
            );
            $crate::__conformance_cases!(map; ($w $($ww)?); $engine, $clock;
                idempotent_publish_changes_once,
                version_suppresses_older,
                key_modes,
                expected_position_cas,
                remove_missing_key_is_suppressed,
            );
            $crate::__conformance_cases!(map; ($e $($ew)?); $engine, $clock;
                ephemeral_has_no_offsets,
                keyless_ephemeral_publish_is_a_broadcast,
            );
            $crate::__conformance_cases!(map; ($x $($xw)?); $engine, $clock;
                expired_key_emits_removal_recoverable,
                expired_key_emits_removal_ephemeral,
            );
            $crate::__conformance_cases!(map; ($d $($dw)?); $engine, $clock;
                changes_reach_subscribed_node,
            );
            $crate::__conformance_cases!(map; ($m $($mw)?); $engine, $clock;
                only_subscribed_nodes_receive,
            );
        }
    };
}
