//! In-memory broker: history streams kept in this process.
//!
//! Channels are spread over [`SHARDS`] mutex-protected maps by hash, so publishers of
//! different channels rarely contend and there is no global lock on the publish path.
//! A channel's shard lock is held while its publication is appended *and* handed to the
//! [`BrokerEventHandler`], which makes delivery order equal offset order even when many
//! tasks publish to one channel at once.
//!
//! Expired data (publications past their TTL, stream meta past its meta TTL, idempotency
//! results past theirs) is dropped lazily when a channel is touched, by an amortised
//! sweep of a shard every [`SWEEP_INTERVAL`] on any access to it, and by a background
//! sweep task started in [`Broker::run`].

use std::collections::{HashMap, VecDeque};
use std::hash::BuildHasher;
use std::sync::{Arc, OnceLock, Weak};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use parking_lot::Mutex;
use rand::distr::{Alphabetic, SampleString};
use tokio::time::Instant;

use super::disk::{DiskSync, Store, StoredPub, StreamMeta, SyncTicket};
use super::{
    BoxFuture, Broker, BrokerError, BrokerEventHandler, ClientInfo, EngineError, HistoryFilter,
    HistoryOptions, HistoryResult, Publication, PublishOptions, PublishResult, StreamPosition,
};

/// Number of channel shards; a power of two well above the core count keeps contention
/// between unrelated channels negligible.
const SHARDS: usize = 64;
/// How often expired streams and idempotency results are swept out of a shard.
const SWEEP_INTERVAL: Duration = Duration::from_secs(10);
/// Stream meta lifetime when the options give none (upstream default: 720h).
const DEFAULT_META_TTL: Duration = Duration::from_secs(30 * 24 * 3600);
/// How long an idempotent publish result is remembered when the options give no TTL.
const DEFAULT_IDEMPOTENT_RESULT_TTL: Duration = Duration::from_secs(5 * 60);
/// Length of a generated stream epoch (upstream memory broker: 8 random letters).
const EPOCH_LEN: usize = 8;

/// Single-node broker keeping history streams in process memory.
///
/// Publications are delivered synchronously to the handler given to [`Broker::run`];
/// `subscribe`/`unsubscribe` have nothing to do because every channel is local.
///
/// [`BrokerEventHandler::handle_publication`] is called while the channel's shard lock is
/// held (that is what keeps delivery in offset order), so the handler must be quick and
/// must not call back into this broker: a re-entrant call deadlocks. Every method does its
/// work when called; the returned future is already complete.
///
/// History follows PROTOCOL §9.1: offsets from 1, an 8-letter random epoch per stream
/// incarnation, at most `history_size` publications each kept for `history_ttl` (an older
/// publication never outlives a newer one, so the kept part of a stream has no holes), and
/// stream meta forgotten after `history_meta_ttl` (default 30 days) without publishes or
/// reads, after which the channel starts a new epoch.
///
/// ```
/// use std::time::Duration;
/// use gyre::{Broker, HistoryOptions, MemoryBroker, PublishOptions};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), gyre::BrokerError> {
/// let broker = MemoryBroker::new();
/// // Reading a stream that was never published to creates its meta: offset 0, a new epoch.
/// let top = broker.history("news", HistoryOptions::new(0)).await?.position;
/// assert_eq!(top.offset, 0);
/// assert_eq!(top.epoch.len(), 8);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, Default)]
pub struct MemoryBroker {
    inner: Arc<Inner>,
}

struct Inner {
    /// Set once by `run`; read lock-free on every publish.
    handler: OnceLock<Arc<dyn BrokerEventHandler>>,
    shards: Box<[Mutex<Shard>]>,
    hasher: foldhash::fast::RandomState,
    /// The on-disk copy of the streams, when the broker was opened on a directory.
    store: Option<Store>,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryBroker")
            .field("running", &self.handler.get().is_some())
            .field("shards", &self.shards.len())
            .finish()
    }
}

impl Default for Inner {
    fn default() -> Self {
        let now = Instant::now();
        Inner {
            handler: OnceLock::new(),
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::new(now))).collect(),
            hasher: foldhash::fast::RandomState::default(),
            store: None,
        }
    }
}

struct Shard {
    channels: HashMap<String, Channel, foldhash::fast::RandomState>,
    /// When this shard is next swept on access.
    next_sweep: Instant,
}

/// Everything the broker remembers about one channel.
#[derive(Default)]
struct Channel {
    stream: Option<Stream>,
    /// Idempotency key → the result of the publish that used it first.
    results: HashMap<String, SavedResult, foldhash::fast::RandomState>,
}

struct SavedResult {
    position: StreamPosition,
    expires_at: Option<Instant>,
}

struct Stream {
    epoch: String,
    /// Offset of the newest publication ever appended (kept after trimming).
    top: u64,
    /// Kept publications, oldest first, with contiguous offsets ending at `top`.
    publications: VecDeque<Stored>,
    /// The meta (epoch + top) disappears after this instant without activity.
    meta_expires_at: Option<Instant>,
    /// Version and version epoch of the last versioned publish.
    version: u64,
    version_epoch: String,
    /// The lowest offset that may still be on disk: publications dropped from memory
    /// below it are already deleted there.
    disk_first: u64,
    /// Unix milliseconds of `meta_expires_at`, as written to disk (0 = never).
    meta_expires_ms: i64,
}

struct Stored {
    publication: Publication,
    /// Non-decreasing from front to back (see `Stream::append`), so expiry trims the front.
    expires_at: Option<Instant>,
}

/// `now + ttl`, or `None` ("never") when the sum does not fit in an `Instant`, so that a
/// huge TTL from configuration cannot panic.
fn deadline(now: Instant, ttl: Duration) -> Option<Instant> {
    now.checked_add(ttl)
}

fn expired(expires_at: Option<Instant>, now: Instant) -> bool {
    expires_at.is_some_and(|at| at <= now)
}

fn meta_ttl(ttl: Option<Duration>) -> Duration {
    // Zero means "not set" upstream too: a meta that expires at once would make every
    // read start a new epoch.
    ttl.filter(|ttl| !ttl.is_zero()).unwrap_or(DEFAULT_META_TTL)
}

/// Unix milliseconds `ttl` after `now_ms` (0 = never, also when it does not fit).
fn unix_deadline(now_ms: i64, ttl: Duration) -> i64 {
    i64::try_from(ttl.as_millis())
        .ok()
        .and_then(|ttl| now_ms.checked_add(ttl))
        .unwrap_or(0)
}

/// The instant of a unix-millisecond deadline read from disk (0 = never).
fn instant_of(now: Instant, now_ms: i64, at_ms: i64) -> Option<Instant> {
    if at_ms == 0 {
        return None;
    }
    let left = u64::try_from(at_ms.saturating_sub(now_ms)).unwrap_or(0);
    deadline(now, Duration::from_millis(left))
}

pub(super) fn unix_millis() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// The publication as delivered and stored; its offset is set when a stream appends it.
/// Info and tags are moved out of the options, which are not needed for them afterwards.
fn new_publication(data: Bytes, options: &mut PublishOptions) -> Publication {
    Publication {
        offset: 0,
        data,
        info: options.client_info.take(),
        tags: std::mem::take(&mut options.tags),
        time: unix_millis(),
        ..Default::default()
    }
}

pub(super) fn new_epoch() -> String {
    Alphabetic.sample_string(&mut rand::rng(), EPOCH_LEN)
}

impl Stream {
    fn new(now: Instant, meta_ttl: Duration) -> Self {
        Stream {
            epoch: new_epoch(),
            top: 0,
            publications: VecDeque::new(),
            meta_expires_at: deadline(now, meta_ttl),
            version: 0,
            version_epoch: String::new(),
            disk_first: 1,
            meta_expires_ms: unix_deadline(unix_millis(), meta_ttl),
        }
    }

    fn meta(&self) -> StreamMeta {
        StreamMeta {
            epoch: self.epoch.clone(),
            top: self.top,
            meta_expires_ms: self.meta_expires_ms,
            version: self.version,
            version_epoch: self.version_epoch.clone(),
        }
    }

    /// The offset of the oldest kept publication (`top + 1` when none is kept).
    fn first(&self) -> u64 {
        self.publications
            .front()
            .map_or(self.top.saturating_add(1), |s| s.publication.offset)
    }

    fn position(&self) -> StreamPosition {
        StreamPosition::new(self.top, self.epoch.clone())
    }

    fn touch(&mut self, now: Instant, meta_ttl: Duration) {
        self.meta_expires_at = deadline(now, meta_ttl);
        self.meta_expires_ms = unix_deadline(unix_millis(), meta_ttl);
    }

    fn purge_expired(&mut self, now: Instant) {
        while self
            .publications
            .front()
            .is_some_and(|stored| expired(stored.expires_at, now))
        {
            self.publications.pop_front();
        }
    }

    /// Appends `publication` as the next offset and trims to `size`; returns the offset.
    fn append(
        &mut self,
        mut publication: Publication,
        size: usize,
        expires_at: Option<Instant>,
    ) -> u64 {
        // 2^64 publications are out of reach; saturating only rules out an overflow panic.
        self.top = self.top.saturating_add(1);
        publication.offset = self.top;
        // A publication must never outlive a newer one, or expiry could punch a hole in
        // the middle of the stream and recovery would wrongly see it as contiguous. With a
        // constant TTL this loop stops at once.
        for older in self.publications.iter_mut().rev() {
            match (older.expires_at, expires_at) {
                (_, None) => break,
                (Some(old), Some(new)) if old <= new => break,
                _ => older.expires_at = expires_at,
            }
        }
        self.publications.push_back(Stored {
            publication,
            expires_at,
        });
        while self.publications.len() > size {
            self.publications.pop_front();
        }
        self.top
    }

    fn last(&self) -> Option<&Publication> {
        self.publications.back().map(|stored| &stored.publication)
    }

    fn read(&self, filter: &HistoryFilter) -> Vec<Publication> {
        // Any negative limit reads everything, as -1 does: a bad value must not panic.
        let limit = match usize::try_from(filter.limit) {
            Ok(0) => return Vec::new(),
            Ok(n) => n,
            Err(_) => usize::MAX,
        };
        let len = self.publications.len();
        // Kept offsets are contiguous and end at `top`, so a position maps to an index.
        let first = self
            .publications
            .front()
            .map_or(0, |s| s.publication.offset);
        let index_of =
            |offset: u64| usize::try_from(offset.saturating_sub(first)).map_or(len, |i| i.min(len));
        let range = match &filter.since {
            None => 0..len,
            Some(since) if filter.reverse => 0..index_of(since.offset),
            Some(since) => index_of(since.offset.saturating_add(1))..len,
        };
        let pubs = self
            .publications
            .range(range)
            .map(|stored| &stored.publication);
        if filter.reverse {
            pubs.rev().take(limit).cloned().collect()
        } else {
            pubs.take(limit).cloned().collect()
        }
    }
}

impl Shard {
    fn new(now: Instant) -> Self {
        Shard {
            channels: HashMap::default(),
            next_sweep: now + SWEEP_INTERVAL,
        }
    }

    /// Drops expired data of every channel and channels left with nothing, on disk too.
    fn sweep(&mut self, now: Instant, store: Option<&Store>) {
        let mut batch = store.map(Store::batch);
        self.channels.retain(|name, channel| {
            let before = channel.stream.as_ref().map(|s| (s.disk_first, s.top));
            channel.purge(now);
            if let (Some(batch), Some((disk_first, top))) = (batch.as_mut(), before) {
                match &mut channel.stream {
                    None => {
                        batch.del_stream(name);
                        batch.del_pubs(name, disk_first, top.saturating_add(1));
                    }
                    Some(stream) => {
                        let first = stream.first();
                        if stream.disk_first < first {
                            batch.del_pubs(name, stream.disk_first, first);
                            stream.disk_first = first;
                        }
                    }
                }
            }
            !channel.is_empty()
        });
        // What a failed delete leaves behind is expired, so the next start drops it.
        if let Some(batch) = batch
            && let Err(err) = batch.commit()
        {
            tracing::warn!(error = %err, "history store: deleting expired history failed");
        }
        self.next_sweep = now + SWEEP_INTERVAL;
    }

    fn maybe_sweep(&mut self, now: Instant, store: Option<&Store>) {
        if now >= self.next_sweep {
            self.sweep(now, store);
        }
    }
}

impl Channel {
    fn purge(&mut self, now: Instant) {
        if let Some(stream) = &mut self.stream {
            if expired(stream.meta_expires_at, now) {
                self.stream = None;
            } else {
                stream.purge_expired(now);
            }
        }
        self.results
            .retain(|_, saved| !expired(saved.expires_at, now));
    }

    fn is_empty(&self) -> bool {
        self.stream.is_none() && self.results.is_empty()
    }

    /// The live stream, created (new epoch, offset 0) when missing or expired, with its meta
    /// lifetime renewed.
    fn stream(&mut self, now: Instant, meta_ttl: Duration) -> &mut Stream {
        let stream = self
            .stream
            .get_or_insert_with(|| Stream::new(now, meta_ttl));
        stream.touch(now, meta_ttl);
        stream
    }
}

impl Inner {
    /// The node's handler, once `run` was called.
    fn running(&self) -> Result<&Arc<dyn BrokerEventHandler>, BrokerError> {
        self.handler.get().ok_or_else(|| {
            BrokerError::Unavailable(EngineError::msg("memory broker is not running"))
        })
    }

    fn shard(&self, channel: &str) -> &Mutex<Shard> {
        // SHARDS is a power of two, so masking keeps the distribution of the hash.
        let index = (self.hasher.hash_one(channel) as usize) & (SHARDS - 1);
        &self.shards[index]
    }

    fn sweep_all(&self) {
        for shard in self.shards.iter() {
            shard.lock().sweep(Instant::now(), self.store.as_ref());
        }
    }

    fn publish(
        &self,
        channel: &str,
        data: Bytes,
        mut options: PublishOptions,
    ) -> Result<(PublishResult, Option<SyncTicket>), BrokerError> {
        let handler = self.running()?;
        let now = Instant::now();
        let mut shard = self.shard(channel).lock();
        shard.maybe_sweep(now, self.store.as_ref());
        let keeps_history = options.keeps_history();
        if !keeps_history && options.idempotency_key.is_none() {
            // Nothing to remember: deliver without allocating a channel entry. The lock
            // is still held so that delivery order per channel matches publish order.
            let publication = new_publication(data, &mut options);
            handler.handle_publication(
                channel,
                publication,
                StreamPosition::default(),
                options.use_delta,
                None,
            );
            return Ok((PublishResult::default(), None));
        }
        with_channel(&mut shard.channels, channel, |entry| {
            publish_locked(
                entry,
                handler.as_ref(),
                channel,
                data,
                options,
                now,
                self.store.as_ref(),
            )
        })
    }

    fn history(
        &self,
        channel: &str,
        options: HistoryOptions,
    ) -> Result<HistoryResult, BrokerError> {
        let filter = options.filter;
        if filter.reverse && filter.since.as_ref().is_some_and(|since| since.offset == 0) {
            return Err(BrokerError::BadRequest(
                "reverse history since offset 0".into(),
            ));
        }
        let now = Instant::now();
        let mut shard = self.shard(channel).lock();
        shard.maybe_sweep(now, self.store.as_ref());
        with_channel(&mut shard.channels, channel, |entry| {
            entry.purge(now);
            let created = entry.stream.is_none();
            let stream = entry.stream(now, meta_ttl(options.meta_ttl));
            if created && let Some(store) = &self.store {
                // The epoch a reader sees must be the one a restart brings back.
                let mut batch = store.batch();
                batch.put_stream(channel, &stream.meta());
                if let Err(err) = batch.commit() {
                    tracing::warn!(channel, error = %err, "history store: writing a new stream failed");
                }
            }
            if let Some(since) = &filter.since
                && !since.epoch.is_empty()
                && since.epoch != stream.epoch
            {
                return Err(BrokerError::UnrecoverablePosition);
            }
            Ok(HistoryResult {
                position: stream.position(),
                publications: stream.read(&filter),
            })
        })
    }

    fn remove_history(&self, channel: &str) -> Result<(), BrokerError> {
        let now = Instant::now();
        let mut shard = self.shard(channel).lock();
        shard.maybe_sweep(now, self.store.as_ref());
        if let Some(entry) = shard.channels.get_mut(channel) {
            entry.purge(now);
            if let Some(stream) = &mut entry.stream {
                let end = stream.top.saturating_add(1);
                if let Some(store) = &self.store {
                    let mut batch = store.batch();
                    batch.del_pubs(channel, stream.disk_first, end);
                    batch.commit()?;
                }
                stream.disk_first = end;
                stream.publications.clear();
            }
        }
        Ok(())
    }
}

/// Publishes into a channel whose shard lock the caller holds.
fn publish_locked(
    entry: &mut Channel,
    handler: &dyn BrokerEventHandler,
    channel: &str,
    data: Bytes,
    mut options: PublishOptions,
    now: Instant,
    store: Option<&Store>,
) -> Result<(PublishResult, Option<SyncTicket>), BrokerError> {
    entry.purge(now);
    let keeps_history = options.keeps_history();
    if let Some(key) = &options.idempotency_key
        && let Some(saved) = entry.results.get(key)
    {
        let result = PublishResult {
            position: saved.position.clone(),
            suppressed: true,
        };
        return Ok((result, None));
    }

    let mut publication = new_publication(data, &mut options);
    let mut prev = None;
    let mut ticket = None;
    let position = if keeps_history {
        let created = entry.stream.is_none();
        let stream = entry.stream(now, meta_ttl(options.history_meta_ttl));
        if options.version > 0
            && (options.version_epoch.is_empty() || options.version_epoch == stream.version_epoch)
            && options.version <= stream.version
        {
            // An out-of-order versioned publish: upstream reports the current top and
            // does not remember the result under the idempotency key.
            let result = PublishResult {
                position: stream.position(),
                suppressed: true,
            };
            return Ok((result, None));
        }
        // Written before memory changes: a failed write leaves the stream as it was and
        // nothing is delivered.
        if let Some(store) = store {
            match write_append(store, channel, stream, &publication, &options) {
                Ok(written) => ticket = written,
                Err(err) => {
                    if created {
                        entry.stream = None;
                    }
                    return Err(err);
                }
            }
        }
        if options.use_delta {
            prev = stream.last().cloned();
        }
        let expires_at = deadline(now, options.history_ttl);
        let offset = stream.append(publication.clone(), options.history_size, expires_at);
        publication.offset = offset;
        stream.version = options.version;
        stream.version_epoch.clone_from(&options.version_epoch);
        StreamPosition::new(offset, stream.epoch.clone())
    } else {
        StreamPosition::default()
    };

    if let Some(key) = &options.idempotency_key {
        let ttl = options
            .idempotent_result_ttl
            .unwrap_or(DEFAULT_IDEMPOTENT_RESULT_TTL);
        entry.results.insert(
            key.clone(),
            SavedResult {
                position: position.clone(),
                expires_at: deadline(now, ttl),
            },
        );
    }

    handler.handle_publication(
        channel,
        publication,
        position.clone(),
        options.use_delta,
        prev,
    );
    let result = PublishResult {
        position,
        suppressed: false,
    };
    Ok((result, ticket))
}

/// Writes the next publication of `stream`, its new top and the deletion of what the size
/// limit pushes out, as one batch.
fn write_append(
    store: &Store,
    channel: &str,
    stream: &mut Stream,
    publication: &Publication,
    options: &PublishOptions,
) -> Result<Option<SyncTicket>, BrokerError> {
    let offset = stream.top.saturating_add(1);
    let kept = (stream.publications.len() + 1).min(options.history_size.max(1)) as u64;
    let new_first = offset + 1 - kept;
    let mut meta = stream.meta();
    meta.top = offset;
    meta.version = options.version;
    meta.version_epoch.clone_from(&options.version_epoch);
    let expires_ms = unix_deadline(publication.time, options.history_ttl);
    let mut batch = store.batch();
    batch.put_pub(
        channel,
        offset,
        StoredPub::encode(&stream.epoch, expires_ms, publication),
    );
    batch.put_stream(channel, &meta);
    if stream.disk_first < new_first {
        batch.del_pubs(channel, stream.disk_first, new_first);
    }
    let ticket = batch.commit()?;
    stream.disk_first = stream.disk_first.max(new_first);
    Ok(ticket)
}

/// Runs `f` on the channel's entry, creating it when missing. The name is only copied
/// into a new `String` for a channel the shard does not know yet.
fn with_channel<R>(
    channels: &mut HashMap<String, Channel, foldhash::fast::RandomState>,
    name: &str,
    f: impl FnOnce(&mut Channel) -> R,
) -> R {
    match channels.get_mut(name) {
        Some(entry) => f(entry),
        None => f(channels.entry(name.to_owned()).or_default()),
    }
}

impl MemoryBroker {
    /// An empty broker. Call [`Broker::run`] before publishing.
    ///
    /// ```
    /// let broker = gyre::MemoryBroker::new();
    /// # let _ = broker;
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// A broker whose history streams (publications, offsets, epochs, versions) are also
    /// kept on disk in `dir`, and loaded from it now: what a previous process wrote is
    /// there again, with the same epochs, minus what expired meanwhile. Idempotency
    /// results are not kept.
    ///
    /// Fails when the directory cannot be opened (e.g. another process holds it) or a
    /// record in it does not decode: the error names the directory, which can be moved
    /// aside to start with empty history.
    ///
    /// ```
    /// use gyre::{Broker, DiskSync, HistoryOptions, MemoryBroker};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), gyre::BrokerError> {
    /// let dir = std::env::temp_dir().join(format!("gyre-doc-{}", std::process::id()));
    /// let epoch = {
    ///     let broker = MemoryBroker::open(&dir, DiskSync::Always)?;
    ///     broker.history("news", HistoryOptions::new(0)).await?.position.epoch
    /// };
    /// let broker = MemoryBroker::open(&dir, DiskSync::Always)?;
    /// let again = broker.history("news", HistoryOptions::new(0)).await?.position.epoch;
    /// assert_eq!(again, epoch);
    /// # drop(broker);
    /// # let _ = std::fs::remove_dir_all(&dir);
    /// # Ok(())
    /// # }
    /// ```
    pub fn open(dir: impl AsRef<std::path::Path>, sync: DiskSync) -> Result<Self, BrokerError> {
        let store = Store::open(dir.as_ref(), sync)?;
        let now = Instant::now();
        let now_ms = unix_millis();
        let mut inner = Inner::default();
        for (channel, meta, pubs) in store.load(now_ms)? {
            let publications: VecDeque<Stored> = pubs
                .into_iter()
                .map(|(publication, expires_ms)| Stored {
                    publication,
                    expires_at: instant_of(now, now_ms, expires_ms),
                })
                .collect();
            let disk_first = publications
                .front()
                .map_or(meta.top.saturating_add(1), |s| s.publication.offset);
            let stream = Stream {
                epoch: meta.epoch,
                top: meta.top,
                publications,
                meta_expires_at: instant_of(now, now_ms, meta.meta_expires_ms),
                version: meta.version,
                version_epoch: meta.version_epoch,
                disk_first,
                meta_expires_ms: meta.meta_expires_ms,
            };
            inner.shard(&channel).lock().channels.insert(
                channel,
                Channel {
                    stream: Some(stream),
                    results: HashMap::default(),
                },
            );
        }
        inner.store = Some(store);
        Ok(MemoryBroker {
            inner: Arc::new(inner),
        })
    }
}

/// Periodically sweeps every shard until the broker is dropped. Holding only a `Weak`
/// lets the broker's memory go away with its last handle; the task then ends on its
/// next tick.
async fn sweep_loop(inner: Weak<Inner>) {
    let mut interval = tokio::time::interval(SWEEP_INTERVAL);
    // The first tick fires at once; a sweep right after start has nothing to do.
    interval.tick().await;
    loop {
        interval.tick().await;
        match inner.upgrade() {
            Some(inner) => inner.sweep_all(),
            None => return,
        }
    }
}

impl Broker for MemoryBroker {
    fn run(&self, handler: Arc<dyn BrokerEventHandler>) -> BoxFuture<'_, Result<(), BrokerError>> {
        Box::pin(async move {
            self.inner
                .handler
                .set(handler)
                .map_err(|_| BrokerError::BadRequest("memory broker is already running".into()))?;
            tokio::spawn(sweep_loop(Arc::downgrade(&self.inner)));
            Ok(())
        })
    }

    fn subscribe(&self, _channel: &str) -> BoxFuture<'_, Result<(), BrokerError>> {
        // Single node: every publication already reaches the local handler.
        Box::pin(async { Ok(()) })
    }

    fn unsubscribe(&self, _channel: &str) -> BoxFuture<'_, Result<(), BrokerError>> {
        Box::pin(async { Ok(()) })
    }

    fn publish(
        &self,
        channel: &str,
        data: Bytes,
        options: PublishOptions,
    ) -> BoxFuture<'_, Result<PublishResult, BrokerError>> {
        // Done before the future is returned so the future does not borrow `channel`;
        // nothing here waits, so doing the work eagerly changes no observable behaviour.
        let result = self.inner.publish(channel, data, options);
        Box::pin(async move {
            let (result, ticket) = result?;
            if let Some(ticket) = ticket {
                ticket.wait().await?;
            }
            Ok(result)
        })
    }

    fn publish_join(
        &self,
        channel: &str,
        info: ClientInfo,
    ) -> BoxFuture<'_, Result<(), BrokerError>> {
        let result = self.inner.running().map(|h| h.handle_join(channel, info));
        Box::pin(async move { result })
    }

    fn publish_leave(
        &self,
        channel: &str,
        info: ClientInfo,
    ) -> BoxFuture<'_, Result<(), BrokerError>> {
        let result = self.inner.running().map(|h| h.handle_leave(channel, info));
        Box::pin(async move { result })
    }

    fn history(
        &self,
        channel: &str,
        options: HistoryOptions,
    ) -> BoxFuture<'_, Result<HistoryResult, BrokerError>> {
        let result = self.inner.history(channel, options);
        Box::pin(async move { result })
    }

    fn remove_history(&self, channel: &str) -> BoxFuture<'_, Result<(), BrokerError>> {
        let result = self.inner.remove_history(channel);
        Box::pin(async move { result })
    }
}

// The behaviour every engine shares is checked by the conformance suite
// (`gyre_testkit::conformance`, run in `tests/engine_memory.rs`); what stays here needs
// the broker's internals.
#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    /// Takes whatever the broker delivers and keeps nothing.
    struct Sink;

    impl BrokerEventHandler for Sink {
        fn handle_publication(
            &self,
            _: &str,
            _: Publication,
            _: StreamPosition,
            _: bool,
            _: Option<Publication>,
        ) {
        }
        fn handle_join(&self, _: &str, _: ClientInfo) {}
        fn handle_leave(&self, _: &str, _: ClientInfo) {}
    }

    fn hist(size: usize, ttl_secs: u64) -> PublishOptions {
        PublishOptions::new().history(size, Duration::from_secs(ttl_secs))
    }

    fn offsets(pubs: &[Publication]) -> Vec<u64> {
        pubs.iter().map(|p| p.offset).collect()
    }

    fn entries(broker: &MemoryBroker) -> usize {
        broker
            .inner
            .shards
            .iter()
            .map(|s| s.lock().channels.len())
            .sum()
    }

    proptest::proptest! {
        /// The index arithmetic of `Stream::read` agrees with a plain filter over the
        /// kept publications for any position, direction and limit.
        #[test]
        fn broker_read_matches_naive_filter(
            k in 0u64..60,
            size in 1usize..30,
            since in proptest::option::of(0u64..70),
            reverse: bool,
            limit in -2i32..40,
        ) {
            let now = Instant::now();
            let mut stream = Stream::new(now, DEFAULT_META_TTL);
            for _ in 0..k {
                stream.append(Publication::default(), size, None);
            }
            let kept: Vec<u64> = (k.saturating_sub(size as u64) + 1..=k).collect();
            let mut expect: Vec<u64> = kept
                .into_iter()
                .filter(|&o| match since {
                    None => true,
                    Some(s) if reverse => o < s,
                    Some(s) => o > s,
                })
                .collect();
            if reverse {
                expect.reverse();
            }
            let cap = if limit < 0 { usize::MAX } else { limit as usize };
            expect.truncate(cap);
            let filter = HistoryFilter {
                since: since.map(|o| StreamPosition::new(o, "")),
                limit,
                reverse,
            };
            proptest::prop_assert_eq!(offsets(&stream.read(&filter)), expect);
        }
    }

    #[tokio::test]
    async fn broker_publish_without_history_allocates_nothing() {
        let broker = MemoryBroker::new();
        broker.run(Arc::new(Sink)).await.unwrap();
        broker
            .publish("ch", Bytes::from("x"), PublishOptions::new())
            .await
            .unwrap();
        // Size without TTL is still "no history".
        broker
            .publish(
                "ch",
                Bytes::from("y"),
                PublishOptions::new().history(10, Duration::ZERO),
            )
            .await
            .unwrap();
        assert_eq!(entries(&broker), 0);
    }

    /// Counts calls and checks that no two run at once for the channel.
    #[derive(Default)]
    struct OrderChecker {
        offsets: Mutex<Vec<u64>>,
        inside: AtomicUsize,
        overlaps: AtomicUsize,
    }

    impl BrokerEventHandler for OrderChecker {
        fn handle_publication(
            &self,
            _: &str,
            p: Publication,
            _: StreamPosition,
            _: bool,
            _: Option<Publication>,
        ) {
            if self.inside.fetch_add(1, Ordering::SeqCst) != 0 {
                self.overlaps.fetch_add(1, Ordering::SeqCst);
            }
            // Widen the window in which a broken broker would interleave deliveries.
            std::thread::yield_now();
            self.offsets.lock().push(p.offset);
            self.inside.fetch_sub(1, Ordering::SeqCst);
        }
        fn handle_join(&self, _: &str, _: ClientInfo) {}
        fn handle_leave(&self, _: &str, _: ClientInfo) {}
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn broker_delivers_in_offset_order_under_concurrent_publishers() {
        const TASKS: u64 = 16;
        const EACH: u64 = 200;
        let broker = MemoryBroker::new();
        let checker = Arc::new(OrderChecker::default());
        broker.run(checker.clone()).await.unwrap();
        let mut handles = Vec::new();
        for _ in 0..TASKS {
            let broker = broker.clone();
            handles.push(tokio::spawn(async move {
                for _ in 0..EACH {
                    broker
                        .publish("ch", Bytes::new(), hist(10, 60))
                        .await
                        .unwrap();
                    tokio::task::yield_now().await;
                }
            }));
        }
        for h in handles {
            h.await.unwrap();
        }
        let seen = checker.offsets.lock().clone();
        assert_eq!(seen, (1..=TASKS * EACH).collect::<Vec<_>>());
        assert_eq!(checker.overlaps.load(Ordering::SeqCst), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn broker_sweeps_expired_channels() {
        let broker = MemoryBroker::new();
        let rec = Arc::new(Sink);
        broker.run(rec).await.unwrap();
        let meta = Duration::from_secs(30);
        for i in 0..50 {
            let opts = hist(10, 10).history_meta_ttl(meta).idempotency_key("k");
            broker
                .publish(&format!("ch{i}"), Bytes::new(), opts)
                .await
                .unwrap();
        }
        let mut idem = PublishOptions::new().idempotency_key("k");
        idem.idempotent_result_ttl = Some(Duration::from_secs(20));
        broker.publish("nohist", Bytes::new(), idem).await.unwrap();
        assert_eq!(entries(&broker), 51);
        // Idempotency results live 5 minutes by default; past that and the meta TTL the
        // background task alone must have freed everything, without any access.
        tokio::time::sleep(DEFAULT_IDEMPOTENT_RESULT_TTL + SWEEP_INTERVAL * 2).await;
        assert_eq!(entries(&broker), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn broker_sweep_task_does_not_keep_broker_alive() {
        let broker = MemoryBroker::new();
        broker.run(Arc::new(Sink)).await.unwrap();
        let weak = Arc::downgrade(&broker.inner);
        drop(broker);
        assert!(weak.upgrade().is_none());
        // The task notices on its next tick and ends instead of ticking forever.
        tokio::time::sleep(SWEEP_INTERVAL * 3).await;
        let metrics = tokio::runtime::Handle::current().metrics();
        assert_eq!(metrics.num_alive_tasks(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn broker_lazy_sweep_without_background_task() {
        // A broker that never ran (history only) still frees expired streams on access.
        let broker = MemoryBroker::new();
        let opts = HistoryOptions {
            meta_ttl: Some(Duration::from_secs(1)),
            ..HistoryOptions::new(0)
        };
        for i in 0..50 {
            broker
                .history(&format!("ch{i}"), opts.clone())
                .await
                .unwrap();
        }
        assert_eq!(entries(&broker), 50);
        tokio::time::advance(SWEEP_INTERVAL + Duration::from_secs(1)).await;
        // Touching one channel per shard sweeps every shard.
        let mut i = 0;
        while broker
            .inner
            .shards
            .iter()
            .any(|s| s.lock().next_sweep <= Instant::now())
        {
            broker
                .history(&format!("probe{i}"), opts.clone())
                .await
                .unwrap();
            i += 1;
        }
        // Only the (live) probes are left; every expired `ch*` stream is gone.
        assert_eq!(entries(&broker), i);
        assert!(
            broker.inner.shards.iter().all(|s| !s
                .lock()
                .channels
                .keys()
                .any(|k| k.starts_with("ch")))
        );
    }
}
