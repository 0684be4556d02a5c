//! Shared poll: keyed data that the node polls from the application's backend on behalf
//! of every connection tracking a key (upstream `shared_poll.go`).
//!
//! A connection subscribes to a shared-poll channel (`subscribe` with `type` 4), then
//! tracks keys (`sub_refresh` with `type` 1) with the version it holds of each. The
//! manager keeps one state per channel and node: the tracked keys with their latest data
//! and version, and per key the connections tracking it with the version each one has.
//! A worker per channel asks the backend for every tracked key once per refresh interval
//! (in batches spread over the interval) and pushes what changed to the connections
//! that lack it.
//!
//! Two modes decide what "changed" means:
//! - versionless: the backend sends data only; a hash of the data detects a change, and a
//!   node-wide counter gives each change its version. The epoch is the node's, so a
//!   client that reconnects to the same node keeps its versions.
//! - versioned: the backend (or `shared_poll_publish`) sends a version and an epoch; a
//!   version not above the known one is ignored, and a new epoch resets the channel: every
//!   tracking connection gets unsubscribe 2500 and tracks again from version 0.
//!
//! Locks: a channel's state, then (only to drop an idle channel, or to see that it was)
//! the manager's channel map. Pushes are queued under the channel's lock (queueing never
//! blocks), so a track reply queued under it always precedes the broadcasts that follow.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::hash::{Hash, Hasher};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use bytes::Bytes;
use gyre_protocol::{Protocol, proto};
use parking_lot::{Mutex, RwLock};
use tokio::sync::Semaphore;
use tokio::time::Instant;

use crate::Error;
use crate::metrics::FrameType;
use crate::queue::Outbound;
use crate::wire::encode_push;

/// How a shared-poll channel detects changes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum SharedPollMode {
    /// The backend sends data only; a hash of it detects changes (`""` or `versionless`).
    #[default]
    Versionless,
    /// The backend sends versions and an epoch (`versioned`).
    Versioned,
}

/// Options of one shared-poll channel (upstream `SharedPollChannelOptions`).
///
/// ```
/// use std::time::Duration;
/// use gyre::SharedPollChannelOptions;
/// let o = SharedPollChannelOptions::new();
/// assert_eq!(o.refresh_interval, Duration::from_secs(10));
/// assert_eq!(o.max_keys_per_connection, 5000);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SharedPollChannelOptions {
    /// How often every tracked key is asked for.
    pub refresh_interval: Duration,
    /// Keys per backend call.
    pub refresh_batch_size: usize,
    /// Keys one connection may track in the channel (more: error 106).
    pub max_keys_per_connection: usize,
    /// How changes are detected.
    pub mode: SharedPollMode,
    /// How long a channel nobody tracks keys in keeps its state (`None`: dropped at the
    /// next refresh tick).
    pub channel_shutdown_delay: Option<Duration>,
    /// Grace after a track signature's expiry before its keys are dropped.
    pub track_expired_extra_delay: Duration,
    /// `shared_poll_publish` may change keys of this channel (versioned mode only).
    pub publish_enabled: bool,
}

impl Default for SharedPollChannelOptions {
    fn default() -> Self {
        SharedPollChannelOptions {
            refresh_interval: Duration::from_secs(10),
            refresh_batch_size: 1000,
            max_keys_per_connection: 5000,
            mode: SharedPollMode::Versionless,
            channel_shutdown_delay: Some(Duration::from_secs(1)),
            track_expired_extra_delay: Duration::from_secs(25),
            publish_enabled: false,
        }
    }
}

impl SharedPollChannelOptions {
    /// Upstream's defaults.
    pub fn new() -> Self {
        Self::default()
    }
}

/// One key asked for in a refresh.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SharedPollKey {
    /// The key.
    pub key: String,
    /// Versioned mode: the version the node holds (0 = none yet); always 0 otherwise.
    pub version: u64,
}

/// The backend call of a refresh (the `shared_poll_refresh` proxy request).
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct SharedPollRefreshEvent {
    /// The channel.
    pub channel: String,
    /// The keys asked for.
    pub items: Vec<SharedPollKey>,
    /// The channel's mode.
    pub mode: SharedPollMode,
}

/// One key's answer in a refresh.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SharedPollItem {
    /// The key.
    pub key: String,
    /// The key's data.
    pub data: Bytes,
    /// Versioned mode: the data's version.
    pub version: u64,
    /// The key is gone: its trackers get a removal and stop tracking it.
    pub removed: bool,
}

impl SharedPollItem {
    /// The data of `key`.
    pub fn new(key: impl Into<String>, data: impl Into<Bytes>) -> Self {
        SharedPollItem {
            key: key.into(),
            data: data.into(),
            ..Default::default()
        }
    }

    /// Versioned data of `key`.
    #[must_use]
    pub fn with_version(mut self, version: u64) -> Self {
        self.version = version;
        self
    }

    /// The removal of `key`.
    pub fn removed(key: impl Into<String>) -> Self {
        SharedPollItem {
            key: key.into(),
            removed: true,
            ..Default::default()
        }
    }
}

/// The backend's answer to a refresh.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct SharedPollRefreshReply {
    /// Keys with news; keys left out are unchanged.
    pub items: Vec<SharedPollItem>,
    /// Versioned mode: the data's epoch (a change resets the channel).
    pub epoch: String,
}

impl SharedPollRefreshReply {
    /// A reply with these items.
    pub fn new(items: Vec<SharedPollItem>) -> Self {
        SharedPollRefreshReply {
            items,
            epoch: String::new(),
        }
    }

    /// Sets the epoch (versioned mode).
    #[must_use]
    pub fn with_epoch(mut self, epoch: impl Into<String>) -> Self {
        self.epoch = epoch.into();
        self
    }
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;
/// The application's backend call of a refresh.
pub(crate) type RefreshHandler = Arc<
    dyn Fn(SharedPollRefreshEvent) -> BoxFuture<Result<SharedPollRefreshReply, Error>>
        + Send
        + Sync,
>;
/// Which channels are shared-poll channels, with their options.
pub(crate) type ChannelResolver =
    Arc<dyn Fn(&str) -> Option<SharedPollChannelOptions> + Send + Sync>;

/// A connection as the manager delivers to it.
pub(crate) trait KeyedConnection: Send + Sync + 'static {
    fn protocol(&self) -> Protocol;
    fn outbound(&self) -> &Outbound;
    /// The channel's epoch changed: the connection must unsubscribe with 2500 (it is
    /// already forgotten by the manager). Must not block.
    fn epoch_reset(self: Arc<Self>, channel: &str);
}

/// Why a track was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TrackRefused {
    /// More keys than `max_keys_per_connection`.
    LimitExceeded,
}

/// One key of a track request, checked and with the expiry of its signature.
#[derive(Debug, Clone)]
pub(crate) struct TrackedItem {
    pub(crate) key: String,
    pub(crate) version: u64,
    /// Unix seconds (0 = never).
    pub(crate) expire_at: i64,
}

#[derive(Debug, Default)]
struct KeyEntry {
    /// Latest data (`None` until the first answer).
    data: Option<Bytes>,
    version: u64,
    hash: u64,
    /// Set by a publish: the next poll skips the key.
    published: bool,
    /// Nobody tracks the key since then: it is not polled, and is kept a while so that
    /// a client tracking it again right away (a reconnect) is not sent the same data
    /// under a new version.
    orphaned: Option<Instant>,
    /// Tracking connections and the version each one holds.
    subs: HashMap<u64, u64>,
}

struct Tracker {
    conn: Arc<dyn KeyedConnection>,
    /// Tracked keys and the expiry of their signature (unix seconds, 0 = never).
    keys: HashMap<String, i64>,
}

#[derive(Default)]
struct ChannelInner {
    /// Versioned mode: the data's epoch (`""` until known).
    epoch: String,
    keys: HashMap<String, KeyEntry>,
    trackers: HashMap<u64, Tracker>,
    /// When the last tracker left.
    idle_since: Option<Instant>,
    /// The worker dropped this state (idle past the shutdown delay): a track that got
    /// hold of it meanwhile must make a new one.
    closed: bool,
}

struct ChannelState {
    name: String,
    options: SharedPollChannelOptions,
    inner: Mutex<ChannelInner>,
}

/// What the manager's workers share with it.
struct Core {
    channels: Mutex<HashMap<String, Arc<ChannelState>>>,
    resolver: RwLock<Option<ChannelResolver>>,
    refresh: RwLock<Option<RefreshHandler>>,
    limiter: RwLock<Option<Arc<Semaphore>>>,
    /// Versionless epoch: one per node run.
    node_epoch: String,
    /// Versionless versions: monotonic on this node across channels and their restarts.
    counter: AtomicU64,
}

/// The node's shared-poll channels.
pub(crate) struct SharedPollManager {
    core: Arc<Core>,
}

impl std::fmt::Debug for SharedPollManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedPollManager").finish_non_exhaustive()
    }
}

impl Default for SharedPollManager {
    fn default() -> Self {
        let start = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_micros() as u64);
        SharedPollManager {
            core: Arc::new(Core {
                channels: Mutex::new(HashMap::new()),
                resolver: RwLock::new(None),
                refresh: RwLock::new(None),
                limiter: RwLock::new(None),
                node_epoch: uuid::Uuid::new_v4().simple().to_string()[..8].to_owned(),
                // Versions start at the node's start time so that a key's versions keep
                // growing when its channel state is dropped and made again.
                counter: AtomicU64::new(start),
            }),
        }
    }
}

fn hash_of(data: &[u8]) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    data.hash(&mut h);
    h.finish()
}

/// A publication push, encoded at most once per protocol.
struct PushCache<'a> {
    channel: &'a str,
    publication: proto::Publication,
    json: Option<Option<Bytes>>,
    protobuf: Option<Option<Bytes>>,
}

impl<'a> PushCache<'a> {
    fn new(channel: &'a str, publication: proto::Publication) -> Self {
        PushCache {
            channel,
            publication,
            json: None,
            protobuf: None,
        }
    }

    fn bytes(&mut self, protocol: Protocol) -> Option<Bytes> {
        let slot = match protocol {
            Protocol::Json => &mut self.json,
            Protocol::Protobuf => &mut self.protobuf,
        };
        slot.get_or_insert_with(|| {
            encode_push(
                protocol,
                &proto::Push {
                    channel: self.channel.to_owned(),
                    r#pub: Some(self.publication.clone()),
                    ..Default::default()
                },
            )
        })
        .clone()
    }
}

impl ChannelInner {
    /// Pushes `key`'s current data to every tracker holding an older version.
    fn broadcast(&mut self, channel: &str, key: &str) {
        let Some(entry) = self.keys.get_mut(key) else {
            return;
        };
        let Some(data) = entry.data.clone() else {
            return;
        };
        let mut push = PushCache::new(
            channel,
            proto::Publication {
                key: key.to_owned(),
                data,
                version: entry.version,
                ..Default::default()
            },
        );
        for (seq, held) in entry.subs.iter_mut() {
            if *held >= entry.version {
                continue;
            }
            let Some(tracker) = self.trackers.get(seq) else {
                continue;
            };
            if let Some(bytes) = push.bytes(tracker.conn.protocol()) {
                tracker
                    .conn
                    .outbound()
                    .push(bytes, FrameType::PushPublication);
                *held = entry.version;
            }
        }
    }

    /// Pushes the removal of `key` to its trackers and forgets the key.
    fn remove_key(&mut self, channel: &str, key: &str) {
        let Some(entry) = self.keys.remove(key) else {
            return;
        };
        let mut push = PushCache::new(
            channel,
            proto::Publication {
                key: key.to_owned(),
                removed: true,
                ..Default::default()
            },
        );
        for seq in entry.subs.keys() {
            let Some(tracker) = self.trackers.get_mut(seq) else {
                continue;
            };
            tracker.keys.remove(key);
            if let Some(bytes) = push.bytes(tracker.conn.protocol()) {
                tracker
                    .conn
                    .outbound()
                    .push(bytes, FrameType::PushPublication);
            }
        }
    }

    fn untrack(&mut self, seq: u64, key: &str) {
        if let Some(tracker) = self.trackers.get_mut(&seq) {
            tracker.keys.remove(key);
        }
        if let Some(entry) = self.keys.get_mut(key) {
            entry.subs.remove(&seq);
            if entry.subs.is_empty() {
                // Nobody on this node wants it: stop polling it.
                entry.orphaned = Some(Instant::now());
            }
        }
    }

    fn drop_tracker_if_empty(&mut self, seq: u64) {
        if self.trackers.get(&seq).is_some_and(|t| t.keys.is_empty()) {
            self.trackers.remove(&seq);
        }
        if self.trackers.is_empty() && self.idle_since.is_none() {
            self.idle_since = Some(Instant::now());
        }
    }

    /// Applies one answer (a refresh item or a publish). `versioned` decides the rules.
    fn apply_item(&mut self, channel: &str, item: SharedPollItem, versioned: bool, core: &Core) {
        if item.removed {
            self.remove_key(channel, &item.key);
            return;
        }
        let Some(entry) = self.keys.get_mut(&item.key) else {
            // Not tracked on this node.
            return;
        };
        let changed = if versioned {
            item.version > entry.version || entry.data.is_none()
        } else {
            let hash = hash_of(&item.data);
            let changed = entry.data.is_none() || entry.hash != hash;
            entry.hash = hash;
            changed
        };
        if changed {
            entry.version = if versioned {
                item.version
            } else {
                core.counter.fetch_add(1, Ordering::Relaxed) + 1
            };
            entry.data = Some(item.data);
        }
        // Unchanged data still reaches trackers that hold an older version (one that
        // tracked again with a stale version, say).
        self.broadcast(channel, &item.key);
    }

    /// A new epoch (versioned mode): forgets every key and tracker; returns the trackers
    /// to unsubscribe.
    fn reset_epoch(&mut self, epoch: String) -> Vec<Arc<dyn KeyedConnection>> {
        self.epoch = epoch;
        self.keys.clear();
        let gone: Vec<_> = self.trackers.drain().map(|(_, t)| t.conn).collect();
        self.idle_since = Some(Instant::now());
        gone
    }
}

impl ChannelState {
    fn versioned(&self) -> bool {
        self.options.mode == SharedPollMode::Versioned
    }

    /// Applies a backend answer or a publish; trackers of a reset channel are told after
    /// the lock is released.
    fn apply(&self, core: &Core, items: Vec<SharedPollItem>, epoch: &str) {
        let versioned = self.versioned();
        let reset = {
            let mut inner = self.inner.lock();
            let mut reset = Vec::new();
            if versioned && !epoch.is_empty() && epoch != inner.epoch {
                if inner.epoch.is_empty() {
                    inner.epoch = epoch.to_owned();
                } else {
                    tracing::info!(channel = %self.name, old = %inner.epoch, new = %epoch, "shared poll epoch changed");
                    reset = inner.reset_epoch(epoch.to_owned());
                }
            }
            for item in items {
                inner.apply_item(&self.name, item, versioned, core);
            }
            reset
        };
        for conn in reset {
            conn.epoch_reset(&self.name);
        }
    }
}

impl Core {
    /// The state of `channel`, made (with its worker) if needed.
    fn channel(
        self: &Arc<Self>,
        channel: &str,
        options: &SharedPollChannelOptions,
    ) -> Arc<ChannelState> {
        let mut channels = self.channels.lock();
        if let Some(state) = channels.get(channel) {
            return state.clone();
        }
        let state = Arc::new(ChannelState {
            name: channel.to_owned(),
            options: options.clone(),
            inner: Mutex::new(ChannelInner {
                idle_since: Some(Instant::now()),
                ..Default::default()
            }),
        });
        channels.insert(channel.to_owned(), state.clone());
        tokio::spawn(worker(Arc::downgrade(self), state.clone()));
        state
    }

    /// Calls the backend for `keys` of `state` and applies the answer.
    async fn poll(&self, state: &ChannelState, keys: Vec<SharedPollKey>) {
        let Some(handler) = self.refresh.read().clone() else {
            return;
        };
        let limiter = self.limiter.read().clone();
        let _permit = match &limiter {
            Some(l) => l.acquire().await.ok(),
            None => None,
        };
        let event = SharedPollRefreshEvent {
            channel: state.name.clone(),
            items: keys,
            mode: state.options.mode,
        };
        match handler(event).await {
            Ok(reply) => state.apply(self, reply.items, &reply.epoch),
            Err(e) => {
                // Clients see nothing; the next cycle asks again.
                tracing::warn!(channel = %state.name, code = e.code, error = %e.message, "shared poll refresh failed");
            }
        }
    }
}

/// The refresh loop of one channel: every interval, asks for every tracked key in
/// batches spread over the interval; ends when the channel stayed idle past its shutdown
/// delay.
async fn worker(core: Weak<Core>, state: Arc<ChannelState>) {
    let options = state.options.clone();
    let interval = options.refresh_interval.max(Duration::from_millis(10));
    loop {
        tokio::time::sleep(interval).await;
        let Some(core) = core.upgrade() else { return };
        let now = Instant::now();
        let keys = {
            let mut inner = state.inner.lock();
            expire_tracks(&mut inner, &options);
            let idle_for = inner.idle_since.map(|t| now.duration_since(t));
            let delay = options.channel_shutdown_delay.unwrap_or_default();
            if inner.trackers.is_empty() && idle_for.is_some_and(|d| d >= delay) {
                let mut channels = core.channels.lock();
                if channels
                    .get(&state.name)
                    .is_some_and(|s| Arc::ptr_eq(s, &state))
                {
                    channels.remove(&state.name);
                }
                inner.closed = true;
                return;
            }
            let versioned = state.versioned();
            let retention = delay.max(interval * 2);
            inner
                .keys
                .retain(|_, e| e.orphaned.is_none_or(|t| now.duration_since(t) < retention));
            let mut keys: Vec<SharedPollKey> = Vec::with_capacity(inner.keys.len());
            for (key, entry) in inner.keys.iter_mut() {
                if std::mem::take(&mut entry.published) || entry.orphaned.is_some() {
                    continue;
                }
                keys.push(SharedPollKey {
                    key: key.clone(),
                    version: if versioned { entry.version } else { 0 },
                });
            }
            keys.sort_by(|a, b| a.key.cmp(&b.key));
            keys
        };
        if keys.is_empty() {
            continue;
        }
        let batch = options.refresh_batch_size.max(1);
        let batches = keys.len().div_ceil(batch);
        let spacing = interval / batches as u32;
        let mut rest = keys;
        for i in 0..batches {
            let tail = rest.split_off(batch.min(rest.len()));
            let chunk = std::mem::replace(&mut rest, tail);
            core.poll(&state, chunk).await;
            if i + 1 < batches {
                tokio::time::sleep(spacing).await;
            }
        }
    }
}

/// Drops the keys whose track signature expired more than the extra delay ago.
fn expire_tracks(inner: &mut ChannelInner, options: &SharedPollChannelOptions) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let extra = options.track_expired_extra_delay.as_secs() as i64;
    let expired: Vec<(u64, String)> = inner
        .trackers
        .iter()
        .flat_map(|(seq, t)| {
            t.keys
                .iter()
                .filter(|(_, exp)| **exp > 0 && **exp + extra < now)
                .map(|(k, _)| (*seq, k.clone()))
        })
        .collect();
    for (seq, key) in expired {
        inner.untrack(seq, &key);
        inner.drop_tracker_if_empty(seq);
    }
}

impl SharedPollManager {
    /// Sets which channels are shared-poll channels.
    pub(crate) fn set_resolver(&self, resolver: ChannelResolver) {
        *self.core.resolver.write() = Some(resolver);
    }

    /// Sets the backend call.
    pub(crate) fn set_refresh_handler(&self, handler: RefreshHandler) {
        *self.core.refresh.write() = Some(handler);
    }

    /// Bounds the backend calls in flight across channels (0 = unbounded).
    pub(crate) fn set_concurrency_limit(&self, limit: usize) {
        *self.core.limiter.write() = (limit > 0).then(|| Arc::new(Semaphore::new(limit)));
    }

    /// The options of `channel` if it is a shared-poll channel.
    pub(crate) fn options(&self, channel: &str) -> Option<SharedPollChannelOptions> {
        let resolver = self.core.resolver.read().clone()?;
        resolver(channel)
    }

    /// The epoch a subscriber of `channel` is told (and the channel's state made).
    pub(crate) fn epoch(&self, channel: &str, options: &SharedPollChannelOptions) -> String {
        let state = self.core.channel(channel, options);
        if state.versioned() {
            state.inner.lock().epoch.clone()
        } else {
            self.core.node_epoch.clone()
        }
    }

    /// Keys `seq` tracks in `channel`.
    pub(crate) fn tracked(&self, channel: &str, seq: u64) -> Vec<String> {
        let Some(state) = self.core.channels.lock().get(channel).cloned() else {
            return Vec::new();
        };
        let inner = state.inner.lock();
        let mut keys: Vec<String> = inner
            .trackers
            .get(&seq)
            .map(|t| t.keys.keys().cloned().collect())
            .unwrap_or_default();
        keys.sort();
        keys
    }

    /// Registers `items` for the connection `seq`, queues its reply (built by `reply`
    /// from the cached publications newer than the client's versions) under the channel's
    /// lock, untracks `untrack`, then polls the keys nobody had data for.
    #[allow(
        clippy::too_many_arguments,
        reason = "one call site; a struct would only repeat the names"
    )]
    pub(crate) fn track(
        &self,
        channel: &str,
        options: &SharedPollChannelOptions,
        seq: u64,
        conn: Arc<dyn KeyedConnection>,
        items: Vec<TrackedItem>,
        untrack: &[String],
        reply: impl FnOnce(Vec<proto::Publication>),
    ) -> Result<(), TrackRefused> {
        // Claims a live state: while `idle_since` is unset its worker does not drop it.
        let state = loop {
            let state = self.core.channel(channel, options);
            let mut inner = state.inner.lock();
            if !inner.closed {
                inner.idle_since = None;
                drop(inner);
                break state;
            }
        };
        let cold = {
            let mut inner = state.inner.lock();
            let current: HashSet<&String> = inner
                .trackers
                .get(&seq)
                .map(|t| t.keys.keys().collect())
                .unwrap_or_default();
            let untracked: HashSet<&String> = untrack.iter().collect();
            let new = items
                .iter()
                .filter(|i| !current.contains(&i.key) && !untracked.contains(&i.key))
                .map(|i| &i.key)
                .collect::<HashSet<_>>()
                .len();
            let freed = untracked.iter().filter(|k| current.contains(**k)).count();
            if current.len() - freed + new > options.max_keys_per_connection {
                inner.drop_tracker_if_empty(seq);
                return Err(TrackRefused::LimitExceeded);
            }
            let tracker = inner.trackers.entry(seq).or_insert_with(|| Tracker {
                conn,
                keys: HashMap::new(),
            });
            for item in &items {
                tracker.keys.insert(item.key.clone(), item.expire_at);
            }
            let mut cached = Vec::new();
            let mut cold = Vec::new();
            for item in items {
                let entry = inner.keys.entry(item.key.clone()).or_default();
                // A key nobody tracked for a while may be stale: ask for it now.
                let stale = entry.orphaned.take().is_some();
                let mut held = item.version;
                if let Some(data) = entry.data.as_ref().filter(|_| entry.version > item.version) {
                    cached.push(proto::Publication {
                        key: item.key.clone(),
                        data: data.clone(),
                        version: entry.version,
                        ..Default::default()
                    });
                    held = entry.version;
                }
                if entry.data.is_none() || stale {
                    cold.push(SharedPollKey {
                        key: item.key.clone(),
                        version: if state.versioned() { entry.version } else { 0 },
                    });
                }
                entry.subs.insert(seq, held);
            }
            reply(cached);
            for key in untrack {
                inner.untrack(seq, key);
            }
            inner.drop_tracker_if_empty(seq);
            cold
        };
        if !cold.is_empty() {
            let core = self.core.clone();
            tokio::spawn(async move { core.poll(&state, cold).await });
        }
        Ok(())
    }

    /// Stops tracking `keys` for the connection `seq`.
    pub(crate) fn untrack(&self, channel: &str, seq: u64, keys: &[String]) {
        let Some(state) = self.core.channels.lock().get(channel).cloned() else {
            return;
        };
        let mut inner = state.inner.lock();
        for key in keys {
            inner.untrack(seq, key);
        }
        inner.drop_tracker_if_empty(seq);
    }

    /// Forgets the connection `seq` in `channel` (unsubscribed or gone).
    pub(crate) fn remove_connection(&self, channel: &str, seq: u64) {
        let Some(state) = self.core.channels.lock().get(channel).cloned() else {
            return;
        };
        let mut inner = state.inner.lock();
        let keys: Vec<String> = inner
            .trackers
            .get(&seq)
            .map(|t| t.keys.keys().cloned().collect())
            .unwrap_or_default();
        for key in &keys {
            inner.untrack(seq, key);
        }
        inner.trackers.remove(&seq);
        inner.drop_tracker_if_empty(seq);
    }

    /// Applies a publication of versioned data (`shared_poll_publish`) on this node. The
    /// key is skipped by the next poll.
    pub(crate) fn publish(&self, channel: &str, item: SharedPollItem, epoch: &str) {
        let Some(state) = self.core.channels.lock().get(channel).cloned() else {
            // Nobody tracks anything here on this node.
            return;
        };
        if let Some(entry) = state.inner.lock().keys.get_mut(&item.key) {
            entry.published = true;
        }
        state.apply(&self.core, vec![item], epoch);
    }
}
