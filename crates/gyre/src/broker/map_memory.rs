//! In-memory map broker: keyed state and change streams kept in this process.
//!
//! One lock guards all channels: map channels are written far less often than streams
//! are published to, and the lock is also what keeps delivery in offset order (changes
//! are handed to the node's handler while it is held, as the memory broker does).
//! A background task started in [`MapBroker::run`] removes expired keys (each removal is
//! a publication at a new offset, as upstream), trims streams and forgets idle channels.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::ops::Bound;
use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;

use bytes::Bytes;
use parking_lot::Mutex;
use tokio::time::Instant;

use super::map::{
    KeyMode, MapBroker, MapChannelOptions, MapPublishOptions, MapPublishResult,
    MapReadStateOptions, MapReadStreamOptions, MapStateResult, SuppressReason,
};
use super::memory::{new_epoch, unix_millis};
use super::{
    BoxFuture, BrokerError, BrokerEventHandler, HistoryResult, Publication, StreamPosition,
};

/// How often expired keys are looked for.
const SWEEP_INTERVAL: Duration = Duration::from_millis(500);
/// How long an idempotent result is remembered when the options give no TTL.
const DEFAULT_IDEMPOTENT_RESULT_TTL: Duration = Duration::from_secs(5 * 60);

/// Single-node map broker keeping keyed state and change streams in process memory.
///
/// ```
/// use std::time::Duration;
/// use gyre::{MapBroker, MapChannelOptions, MapMode, MapPublishOptions, MapReadStateOptions,
///     MemoryMapBroker};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), gyre::BrokerError> {
/// let broker = MemoryMapBroker::new();
/// let channel = MapChannelOptions::new(MapMode::Persistent, Duration::ZERO).resolve().unwrap();
/// broker.publish("board", "cell:1", "\"red\"".into(), MapPublishOptions::new(channel)).await?;
/// let mut read = MapReadStateOptions::default();
/// read.limit = -1;
/// let state = broker.read_state("board", read).await?;
/// assert_eq!(state.entries[0].key, "cell:1");
/// assert_eq!(state.position.offset, 1);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, Default)]
pub struct MemoryMapBroker {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    handler: OnceLock<Arc<dyn BrokerEventHandler>>,
    channels: Mutex<HashMap<String, Channel>>,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryMapBroker")
            .field("running", &self.handler.get().is_some())
            .finish_non_exhaustive()
    }
}

struct Entry {
    publication: Publication,
    expires_at: Option<Instant>,
}

struct Channel {
    epoch: String,
    top: u64,
    /// Keys in lexicographic order: the order of state pages and of their cursors.
    state: BTreeMap<String, Entry>,
    stream: VecDeque<(Publication, Instant)>,
    versions: HashMap<String, (u64, String)>,
    results: HashMap<String, (MapPublishResult, Instant)>,
    /// The options of the last write, used by the sweeper.
    options: MapChannelOptions,
    /// The channel is forgotten after this (meta TTL), when set.
    meta_expires_at: Option<Instant>,
}

impl Channel {
    fn new() -> Self {
        Channel {
            epoch: new_epoch(),
            top: 0,
            state: BTreeMap::new(),
            stream: VecDeque::new(),
            versions: HashMap::new(),
            results: HashMap::new(),
            options: MapChannelOptions::default(),
            meta_expires_at: None,
        }
    }

    fn position(&self) -> StreamPosition {
        StreamPosition::new(self.top, self.epoch.clone())
    }

    fn touch(&mut self, now: Instant, meta_ttl: Duration) {
        self.meta_expires_at = (!meta_ttl.is_zero()).then(|| now + meta_ttl);
    }

    fn trim(&mut self, now: Instant) {
        let opts = &self.options;
        while self.stream.len() > opts.stream_size {
            self.stream.pop_front();
        }
        while self
            .stream
            .front()
            .is_some_and(|(_, at)| now.duration_since(*at) >= opts.stream_ttl)
        {
            self.stream.pop_front();
        }
    }

    /// Appends a change: a new offset in modes with a stream, 0 otherwise.
    fn append(&mut self, mut publication: Publication, now: Instant) -> Publication {
        if self.options.mode.has_stream() {
            self.top += 1;
            publication.offset = self.top;
            self.stream.push_back((publication.clone(), now));
            self.trim(now);
        }
        publication
    }
}

/// Keeps the channel of `name`, creating it (new epoch) when missing or past its meta TTL.
fn channel_mut<'a>(
    channels: &'a mut HashMap<String, Channel>,
    name: &str,
    now: Instant,
) -> &'a mut Channel {
    let expired = channels
        .get(name)
        .is_some_and(|c| c.meta_expires_at.is_some_and(|at| at <= now));
    if expired {
        channels.remove(name);
    }
    channels.entry(name.to_owned()).or_insert_with(Channel::new)
}

impl MemoryMapBroker {
    /// An empty broker. Changes are delivered once [`MapBroker::run`] was called.
    pub fn new() -> Self {
        Self::default()
    }

    /// Removes the keys whose TTL passed before `now`, emitting a removal for each, trims
    /// streams and forgets expired channels. The background task calls it periodically.
    fn sweep(&self, now: Instant) {
        let mut channels = self.inner.channels.lock();
        channels.retain(|_, c| {
            let keep = c.meta_expires_at.is_none_or(|at| at > now);
            // An ephemeral channel with no keys has nothing worth keeping.
            keep && !(c.state.is_empty() && !c.options.mode.has_stream() && c.results.is_empty())
        });
        for (name, channel) in channels.iter_mut() {
            channel.results.retain(|_, (_, at)| *at > now);
            channel.trim(now);
            let expired: Vec<String> = channel
                .state
                .iter()
                .filter(|(_, e)| e.expires_at.is_some_and(|at| at <= now))
                .map(|(k, _)| k.clone())
                .collect();
            for key in expired {
                let Some(entry) = channel.state.remove(&key) else {
                    continue;
                };
                channel.versions.remove(&key);
                let removal = Publication {
                    key,
                    removed: true,
                    tags: entry.publication.tags,
                    time: unix_millis(),
                    ..Default::default()
                };
                let removal = channel.append(removal, now);
                let position = channel.position();
                if let Some(h) = self.inner.handler.get() {
                    h.handle_publication(name, removal, position, false, None);
                }
            }
        }
    }

    fn write(
        &self,
        name: &str,
        key: &str,
        data: Option<Bytes>,
        mut options: MapPublishOptions,
    ) -> Result<MapPublishResult, BrokerError> {
        let now = Instant::now();
        let opts = &options.channel;
        let has_stream = opts.mode.has_stream();
        if !has_stream && (options.version > 0 || options.expected_position.is_some()) {
            return Err(BrokerError::BadRequest(
                "ephemeral maps take no version and no expected position".into(),
            ));
        }
        let mut channels = self.inner.channels.lock();
        // A keyless ephemeral publish is a plain broadcast: no state, no offset.
        if key.is_empty() {
            if has_stream || data.is_none() || options.idempotency_key.is_some() {
                return Err(BrokerError::BadRequest("map key required".into()));
            }
            let publication = Publication {
                data: data.unwrap_or_default(),
                info: options.client_info.take(),
                tags: std::mem::take(&mut options.tags),
                time: unix_millis(),
                ..Default::default()
            };
            let position = StreamPosition::default();
            if let Some(h) = self.inner.handler.get() {
                h.handle_publication(name, publication, position.clone(), false, None);
            }
            return Ok(MapPublishResult {
                position,
                ..Default::default()
            });
        }
        let channel = channel_mut(&mut channels, name, now);
        channel.options = options.channel.clone();
        let opts = &options.channel;
        channel.touch(now, opts.meta_ttl);
        let suppressed = |reason, channel: &Channel| MapPublishResult {
            position: channel.position(),
            suppressed: Some(reason),
            current: None,
        };
        if let Some(idem) = &options.idempotency_key
            && let Some((result, at)) = channel.results.get(idem)
            && *at > now
        {
            let mut result = result.clone();
            result.suppressed = Some(SuppressReason::Idempotency);
            return Ok(result);
        }
        if options.version > 0
            && let Some((prev, epoch)) = channel.versions.get(key)
            && (options.version_epoch.is_empty() || *epoch == options.version_epoch)
            && *prev >= options.version
        {
            return Ok(suppressed(SuppressReason::Version, channel));
        }
        let exists = channel.state.contains_key(key);
        let ttl_deadline = (!opts.key_ttl.is_zero()).then(|| now + opts.key_ttl);
        match options.key_mode {
            KeyMode::IfNew if exists && data.is_some() => {
                if options.refresh_ttl_on_suppress
                    && let Some(entry) = channel.state.get_mut(key)
                {
                    entry.expires_at = ttl_deadline;
                }
                return Ok(suppressed(SuppressReason::KeyExists, channel));
            }
            KeyMode::IfExists if !exists => {
                return Ok(suppressed(SuppressReason::KeyNotFound, channel));
            }
            _ => {}
        }
        if let Some(expected) = &options.expected_position {
            let current = channel.state.get(key).map(|e| e.publication.clone());
            let at = current.as_ref().map_or(0, |p| p.offset);
            if expected.epoch != channel.epoch || expected.offset != at {
                let mut result = suppressed(SuppressReason::PositionMismatch, channel);
                result.current = current;
                return Ok(result);
            }
        }
        if data.is_none() && !exists {
            return Ok(suppressed(SuppressReason::KeyNotFound, channel));
        }
        let publication = Publication {
            key: key.to_owned(),
            removed: data.is_none(),
            data: data.clone().unwrap_or_default(),
            info: options.client_info.take(),
            tags: std::mem::take(&mut options.tags),
            time: unix_millis(),
            ..Default::default()
        };
        let publication = channel.append(publication, now);
        if data.is_some() {
            channel.state.insert(
                key.to_owned(),
                Entry {
                    publication: publication.clone(),
                    expires_at: ttl_deadline,
                },
            );
            if options.version > 0 {
                channel
                    .versions
                    .insert(key.to_owned(), (options.version, options.version_epoch));
            }
        } else {
            channel.state.remove(key);
            channel.versions.remove(key);
        }
        let result = MapPublishResult {
            position: StreamPosition::new(publication.offset, channel.epoch.clone()),
            suppressed: None,
            current: None,
        };
        if let Some(idem) = options.idempotency_key {
            let ttl = options
                .idempotent_result_ttl
                .unwrap_or(DEFAULT_IDEMPOTENT_RESULT_TTL);
            channel.results.insert(idem, (result.clone(), now + ttl));
        }
        let position = channel.position();
        if let Some(h) = self.inner.handler.get() {
            h.handle_publication(name, publication, position, false, None);
        }
        Ok(result)
    }

    fn read_state_now(
        &self,
        name: &str,
        options: &MapReadStateOptions,
    ) -> Result<MapStateResult, BrokerError> {
        let now = Instant::now();
        let mut channels = self.inner.channels.lock();
        let channel = channel_mut(&mut channels, name, now);
        if !options.meta_ttl.is_zero() {
            channel.touch(now, options.meta_ttl);
        }
        let mut result = MapStateResult {
            position: channel.position(),
            ..Default::default()
        };
        if let Some(rev) = &options.revision
            && rev.epoch != channel.epoch
        {
            return Err(BrokerError::UnrecoverablePosition);
        }
        if let Some(key) = &options.key {
            result.entries.extend(
                channel
                    .state
                    .get(key)
                    .map(|e| with_key(&e.publication, key)),
            );
            return Ok(result);
        }
        if options.limit == 0 {
            return Ok(result);
        }
        let start = if options.cursor.is_empty() {
            Bound::Unbounded
        } else {
            Bound::Excluded(options.cursor.clone())
        };
        let limit = usize::try_from(options.limit).unwrap_or(usize::MAX);
        let mut range = channel.state.range((start, Bound::Unbounded));
        let mut last = None;
        for (key, entry) in range.by_ref().take(limit) {
            last = Some(key.clone());
            let newer = options
                .revision
                .as_ref()
                .is_some_and(|rev| entry.publication.offset > rev.offset);
            if !newer {
                result.entries.push(with_key(&entry.publication, key));
            }
        }
        if range.next().is_some() {
            result.cursor = last.unwrap_or_default();
        }
        Ok(result)
    }

    fn read_stream_now(
        &self,
        name: &str,
        options: &MapReadStreamOptions,
    ) -> Result<HistoryResult, BrokerError> {
        let now = Instant::now();
        let mut channels = self.inner.channels.lock();
        let channel = channel_mut(&mut channels, name, now);
        if !options.meta_ttl.is_zero() {
            channel.touch(now, options.meta_ttl);
        }
        channel.trim(now);
        let mut result = HistoryResult {
            position: channel.position(),
            publications: Vec::new(),
        };
        if let Some(since) = &options.since
            && since.epoch != channel.epoch
        {
            return Err(BrokerError::UnrecoverablePosition);
        }
        if options.limit == 0 {
            return Ok(result);
        }
        let limit = usize::try_from(options.limit).unwrap_or(usize::MAX);
        let stream = channel.stream.iter().map(|(p, _)| p);
        result.publications = if options.reverse {
            let before = options.since.as_ref().map_or(u64::MAX, |s| s.offset);
            stream
                .rev()
                .filter(|p| p.offset < before)
                .take(limit)
                .cloned()
                .collect()
        } else {
            let after = options.since.as_ref().map_or(0, |s| s.offset);
            stream
                .filter(|p| p.offset > after)
                .take(limit)
                .cloned()
                .collect()
        };
        Ok(result)
    }
}

fn with_key(publication: &Publication, key: &str) -> Publication {
    let mut p = publication.clone();
    p.key = key.to_owned();
    p
}

async fn sweep_loop(inner: Weak<Inner>) {
    let mut interval = tokio::time::interval(SWEEP_INTERVAL);
    interval.tick().await;
    loop {
        interval.tick().await;
        match inner.upgrade() {
            Some(inner) => MemoryMapBroker { inner }.sweep(Instant::now()),
            None => return,
        }
    }
}

impl MapBroker for MemoryMapBroker {
    fn run(&self, handler: Arc<dyn BrokerEventHandler>) -> BoxFuture<'_, Result<(), BrokerError>> {
        Box::pin(async move {
            self.inner.handler.set(handler).map_err(|_| {
                BrokerError::BadRequest("memory map broker is already running".into())
            })?;
            tokio::spawn(sweep_loop(Arc::downgrade(&self.inner)));
            Ok(())
        })
    }

    fn subscribe(&self, _channel: &str) -> BoxFuture<'_, Result<(), BrokerError>> {
        // Single node: every change already reaches the local handler.
        Box::pin(async { Ok(()) })
    }

    fn unsubscribe(&self, _channel: &str) -> BoxFuture<'_, Result<(), BrokerError>> {
        Box::pin(async { Ok(()) })
    }

    fn publish(
        &self,
        channel: &str,
        key: &str,
        data: Bytes,
        options: MapPublishOptions,
    ) -> BoxFuture<'_, Result<MapPublishResult, BrokerError>> {
        let result = self.write(channel, key, Some(data), options);
        Box::pin(async move { result })
    }

    fn remove(
        &self,
        channel: &str,
        key: &str,
        options: MapPublishOptions,
    ) -> BoxFuture<'_, Result<MapPublishResult, BrokerError>> {
        let result = if key.is_empty() {
            Err(BrokerError::BadRequest("map key required".into()))
        } else {
            self.write(channel, key, None, options)
        };
        Box::pin(async move { result })
    }

    fn read_state(
        &self,
        channel: &str,
        options: MapReadStateOptions,
    ) -> BoxFuture<'_, Result<MapStateResult, BrokerError>> {
        let result = self.read_state_now(channel, &options);
        Box::pin(async move { result })
    }

    fn read_stream(
        &self,
        channel: &str,
        options: MapReadStreamOptions,
    ) -> BoxFuture<'_, Result<HistoryResult, BrokerError>> {
        let result = self.read_stream_now(channel, &options);
        Box::pin(async move { result })
    }

    fn stats(&self, channel: &str) -> BoxFuture<'_, Result<usize, BrokerError>> {
        let n = self
            .inner
            .channels
            .lock()
            .get(channel)
            .map_or(0, |c| c.state.len());
        Box::pin(async move { Ok(n) })
    }

    fn clear(&self, channel: &str) -> BoxFuture<'_, Result<(), BrokerError>> {
        self.inner.channels.lock().remove(channel);
        Box::pin(async { Ok(()) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::broker::ClientInfo;
    use crate::broker::map::MapMode;

    #[derive(Default)]
    struct Recorder(Mutex<Vec<(String, Publication, StreamPosition)>>);

    impl BrokerEventHandler for Recorder {
        fn handle_publication(
            &self,
            channel: &str,
            publication: Publication,
            position: StreamPosition,
            _use_delta: bool,
            _prev: Option<Publication>,
        ) {
            self.0
                .lock()
                .push((channel.to_owned(), publication, position));
        }
        fn handle_join(&self, _: &str, _: ClientInfo) {}
        fn handle_leave(&self, _: &str, _: ClientInfo) {}
    }

    fn opts(mode: MapMode, key_ttl: Duration) -> MapPublishOptions {
        MapPublishOptions::new(MapChannelOptions::new(mode, key_ttl).resolve().unwrap())
    }

    fn read(cursor: &str, limit: i32, revision: Option<StreamPosition>) -> MapReadStateOptions {
        MapReadStateOptions {
            cursor: cursor.to_owned(),
            limit,
            revision,
            ..Default::default()
        }
    }

    async fn running() -> (MemoryMapBroker, Arc<Recorder>) {
        let broker = MemoryMapBroker::new();
        let recorder = Arc::new(Recorder::default());
        broker.run(recorder.clone()).await.unwrap();
        (broker, recorder)
    }

    #[tokio::test]
    async fn state_pages_follow_key_order_and_cursor() {
        let (broker, recorder) = running().await;
        let o = opts(MapMode::Persistent, Duration::ZERO);
        for k in ["c", "a", "e", "b", "d"] {
            broker
                .publish("m", k, Bytes::from(format!("\"{k}\"")), o.clone())
                .await
                .unwrap();
        }
        assert_eq!(recorder.0.lock().len(), 5);
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
            keys.extend(page.entries.iter().map(|p| p.key.clone()));
            if page.cursor.is_empty() {
                break;
            }
            cursor = page.cursor;
        }
        assert_eq!(keys, ["a", "b", "c", "d", "e"]);
        assert_eq!(pages, 3);
        // Position only.
        let top = broker.read_state("m", read("", 0, None)).await.unwrap();
        assert!(top.entries.is_empty());
        assert_eq!(top.position.offset, 5);
    }

    #[tokio::test]
    async fn revision_filters_newer_entries_and_checks_epoch() {
        let (broker, _) = running().await;
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
        let stream = broker
            .read_stream(
                "m",
                MapReadStreamOptions {
                    since: Some(frozen.clone()),
                    limit: -1,
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        assert_eq!(stream.publications.len(), 1);
        assert_eq!(stream.publications[0].key, "b");
        assert_eq!(stream.publications[0].offset, 3);
        let bad = StreamPosition::new(2, "other");
        assert!(matches!(
            broker.read_state("m", read("", 1, Some(bad.clone()))).await,
            Err(BrokerError::UnrecoverablePosition)
        ));
        assert!(matches!(
            broker
                .read_stream(
                    "m",
                    MapReadStreamOptions {
                        since: Some(bad),
                        limit: 10,
                        ..Default::default()
                    }
                )
                .await,
            Err(BrokerError::UnrecoverablePosition)
        ));
    }

    #[tokio::test]
    async fn removal_and_suppression_rules() {
        let (broker, recorder) = running().await;
        let o = opts(MapMode::Persistent, Duration::ZERO);
        let r = broker.remove("m", "x", o.clone()).await.unwrap();
        assert_eq!(r.suppressed, Some(SuppressReason::KeyNotFound));
        broker
            .publish("m", "x", "1".into(), o.clone())
            .await
            .unwrap();
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
        let again = broker.publish("m", "z", "1".into(), idem).await.unwrap();
        assert_eq!(again.suppressed, Some(SuppressReason::Idempotency));
        assert_eq!(again.position, first.position);
        let mut v = o.clone();
        v.version = 5;
        broker
            .publish("m", "v", "1".into(), v.clone())
            .await
            .unwrap();
        let r = broker.publish("m", "v", "0".into(), v).await.unwrap();
        assert_eq!(r.suppressed, Some(SuppressReason::Version));
        let mut cas = o.clone();
        cas.expected_position = Some(StreamPosition::new(99, first.position.epoch.clone()));
        let r = broker.publish("m", "x", "3".into(), cas).await.unwrap();
        assert_eq!(r.suppressed, Some(SuppressReason::PositionMismatch));
        assert_eq!(r.current.unwrap().offset, 1);
        let r = broker.remove("m", "x", o.clone()).await.unwrap();
        assert_eq!(r.suppressed, None);
        assert_eq!(r.position.offset, 4);
        let last = recorder.0.lock().last().cloned().unwrap();
        assert!(last.1.removed);
        assert_eq!(last.1.key, "x");
        assert_eq!(broker.stats("m").await.unwrap(), 2);
        broker.clear("m").await.unwrap();
        assert_eq!(broker.stats("m").await.unwrap(), 0);
        let top = broker.read_state("m", read("", 0, None)).await.unwrap();
        assert_eq!(top.position.offset, 0);
        assert_ne!(top.position.epoch, first.position.epoch);
    }

    #[tokio::test]
    async fn expiry_emits_a_removal_at_a_new_offset() {
        let (broker, recorder) = running().await;
        let o = opts(MapMode::Recoverable, Duration::from_secs(2));
        broker
            .publish("m", "k", "1".into(), o.clone())
            .await
            .unwrap();
        broker.sweep(Instant::now());
        assert_eq!(broker.stats("m").await.unwrap(), 1);
        broker.sweep(Instant::now() + Duration::from_secs(3));
        assert_eq!(broker.stats("m").await.unwrap(), 0);
        let events = recorder.0.lock().clone();
        assert_eq!(events.len(), 2);
        assert!(events[1].1.removed);
        assert_eq!(events[1].1.offset, 2);
        assert_eq!(events[1].2.offset, 2);
    }

    #[tokio::test]
    async fn stream_is_bounded_and_ephemeral_has_none() {
        let (broker, _) = running().await;
        let mut channel = MapChannelOptions::new(MapMode::Persistent, Duration::ZERO);
        channel.stream_size = 3;
        let o = MapPublishOptions::new(channel.resolve().unwrap());
        for i in 0..5 {
            broker
                .publish("m", &format!("k{i}"), "1".into(), o.clone())
                .await
                .unwrap();
        }
        let all = broker
            .read_stream(
                "m",
                MapReadStreamOptions {
                    limit: -1,
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        let offsets: Vec<u64> = all.publications.iter().map(|p| p.offset).collect();
        assert_eq!(offsets, [3, 4, 5]);
        let e = opts(MapMode::Ephemeral, Duration::from_secs(10));
        let r = broker
            .publish("e", "k", "1".into(), e.clone())
            .await
            .unwrap();
        assert_eq!(r.position.offset, 0);
        let mut cas = e;
        cas.version = 1;
        assert!(broker.publish("e", "k", "1".into(), cas).await.is_err());
    }

    #[test]
    fn channel_options_resolve_as_upstream() {
        let o = MapChannelOptions::new(MapMode::Recoverable, Duration::from_secs(30))
            .resolve()
            .unwrap();
        assert_eq!(o.stream_size, 100);
        assert_eq!(o.stream_ttl, Duration::from_secs(60));
        assert_eq!(o.meta_ttl, Duration::from_secs(600));
        assert_eq!(o.page_size(0), 100);
        assert_eq!(o.page_size(5), 100);
        assert_eq!(o.page_size(5000), 1000);
        assert!(
            MapChannelOptions::new(MapMode::Ephemeral, Duration::ZERO)
                .resolve()
                .is_err()
        );
        assert!(
            MapChannelOptions::new(MapMode::Persistent, Duration::from_secs(1))
                .resolve()
                .is_err()
        );
    }
}
