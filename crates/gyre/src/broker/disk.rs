//! The memory broker's optional on-disk store: history streams, their offsets and epochs
//! written to an embedded LSM store (fjall) so that they survive a restart and a crash.
//!
//! Memory stays the read path. Every change of a stream is written, in the shard lock and
//! before the publication is delivered, as one atomic batch to fjall's journal, which hands
//! it to the OS at once: a killed process loses nothing it delivered. Reaching the platter
//! is the [`DiskSync`] mode's business, done by one syncer thread (group commit): `Always`
//! acknowledges a publish only after the `fdatasync` that covers it, `Interval` syncs
//! whatever was written every few milliseconds. The choice of fjall (over redb) and the
//! figures behind it are in `docs/design/durable-history.md`.
//!
//! Layout: keyspace `streams`: channel → stream meta; keyspace `pubs`: channel + offset →
//! publication. Keys start with the channel's length so that one channel's prefix is never
//! the prefix of another channel's keys; offsets are big-endian so a channel's publications
//! sort by offset. Values start with a format byte.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use parking_lot::{Condvar, Mutex};
use tokio::sync::watch;

use super::{BrokerError, ClientInfo, EngineError, Publication};

/// When the memory broker's on-disk writes reach the disk (`fdatasync`).
///
/// Either way every write is handed to the OS before the publication is delivered, so a
/// crash of the process (`kill -9`) loses nothing; the modes differ on a crash of the
/// machine (power loss, kernel panic).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DiskSync {
    /// A publish is acknowledged only after the sync that covers it. Concurrent
    /// publishes share one sync (group commit).
    Always,
    /// Written data is synced at this interval; a machine crash loses at most the last
    /// interval of publications.
    Interval(Duration),
}

/// Format byte of every value; a different one is refused as corruption.
const FORMAT: u8 = 1;

/// A record on disk that does not decode.
fn corrupt(dir: &Path, what: &str) -> BrokerError {
    BrokerError::Unavailable(EngineError::msg(format!(
        "history store {}: corrupted {what}; move the directory aside to start with empty \
         history",
        dir.display()
    )))
}

fn io_error(context: &str, err: fjall::Error) -> BrokerError {
    BrokerError::Unavailable(EngineError::with_context(
        format!("history store: {context}"),
        err,
    ))
}

/// A stream as it is kept on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct StreamMeta {
    pub(super) epoch: String,
    pub(super) top: u64,
    /// Unix milliseconds after which the meta is forgotten (0 = never).
    pub(super) meta_expires_ms: i64,
    pub(super) version: u64,
    pub(super) version_epoch: String,
}

/// A publication as it is kept on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct StoredPub {
    pub(super) epoch: String,
    /// Unix milliseconds after which the publication is dropped (0 = never).
    pub(super) expires_ms: i64,
    pub(super) publication: Publication,
}

/// What [`Store::load`] found: per channel, its meta and its kept publications (oldest
/// first, contiguous, ending at the top) with their expiry.
pub(super) type Loaded = Vec<(String, StreamMeta, Vec<(Publication, i64)>)>;

fn channel_prefix(channel: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(4 + channel.len() + 8);
    // Channel names are bounded far below 4 GiB by every configuration.
    key.extend_from_slice(&(channel.len() as u32).to_be_bytes());
    key.extend_from_slice(channel.as_bytes());
    key
}

fn pub_key(channel: &str, offset: u64) -> Vec<u8> {
    let mut key = channel_prefix(channel);
    key.extend_from_slice(&offset.to_be_bytes());
    key
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(&(b.len() as u32).to_be_bytes());
    out.extend_from_slice(b);
}

/// Bounds-checked reads over a value; `None` on any shortfall.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }
    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }
    fn u32(&mut self) -> Option<u32> {
        self.take(4)
            .map(|b| u32::from_be_bytes(b.try_into().unwrap_or_default()))
    }
    fn u64(&mut self) -> Option<u64> {
        self.take(8)
            .map(|b| u64::from_be_bytes(b.try_into().unwrap_or_default()))
    }
    fn i64(&mut self) -> Option<i64> {
        self.u64().map(|v| v as i64)
    }
    fn bytes(&mut self) -> Option<&'a [u8]> {
        let n = self.u32()? as usize;
        self.take(n)
    }
    fn string(&mut self) -> Option<String> {
        self.bytes()
            .and_then(|b| std::str::from_utf8(b).ok())
            .map(str::to_owned)
    }
    fn end(&self) -> Option<()> {
        self.0.is_empty().then_some(())
    }
}

impl StreamMeta {
    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(48 + self.version_epoch.len());
        out.push(FORMAT);
        put_bytes(&mut out, self.epoch.as_bytes());
        out.extend_from_slice(&self.top.to_be_bytes());
        out.extend_from_slice(&self.meta_expires_ms.to_be_bytes());
        out.extend_from_slice(&self.version.to_be_bytes());
        put_bytes(&mut out, self.version_epoch.as_bytes());
        out
    }

    fn decode(b: &[u8]) -> Option<Self> {
        let mut r = Reader(b);
        (r.u8()? == FORMAT).then_some(())?;
        let meta = StreamMeta {
            epoch: r.string()?,
            top: r.u64()?,
            meta_expires_ms: r.i64()?,
            version: r.u64()?,
            version_epoch: r.string()?,
        };
        r.end()?;
        Some(meta)
    }
}

impl StoredPub {
    pub(super) fn encode(epoch: &str, expires_ms: i64, p: &Publication) -> Vec<u8> {
        let mut out = Vec::with_capacity(64 + p.data.len());
        out.push(FORMAT);
        put_bytes(&mut out, epoch.as_bytes());
        out.extend_from_slice(&expires_ms.to_be_bytes());
        out.extend_from_slice(&p.time.to_be_bytes());
        put_bytes(&mut out, &p.data);
        match &p.info {
            None => out.push(0),
            Some(info) => {
                out.push(1);
                put_bytes(&mut out, info.user.as_bytes());
                put_bytes(&mut out, info.client.as_bytes());
                put_bytes(&mut out, &info.conn_info);
                put_bytes(&mut out, &info.chan_info);
            }
        }
        out.extend_from_slice(&(p.tags.len() as u32).to_be_bytes());
        for (k, v) in &p.tags {
            put_bytes(&mut out, k.as_bytes());
            put_bytes(&mut out, v.as_bytes());
        }
        out
    }

    fn decode(offset: u64, b: &[u8]) -> Option<Self> {
        let mut r = Reader(b);
        (r.u8()? == FORMAT).then_some(())?;
        let epoch = r.string()?;
        let expires_ms = r.i64()?;
        let time = r.i64()?;
        let data = Bytes::copy_from_slice(r.bytes()?);
        let info = match r.u8()? {
            0 => None,
            1 => Some(ClientInfo {
                user: r.string()?,
                client: r.string()?,
                conn_info: Bytes::copy_from_slice(r.bytes()?),
                chan_info: Bytes::copy_from_slice(r.bytes()?),
            }),
            _ => return None,
        };
        let n = r.u32()? as usize;
        let mut tags = HashMap::with_capacity(n.min(64));
        for _ in 0..n {
            tags.insert(r.string()?, r.string()?);
        }
        r.end()?;
        Some(StoredPub {
            epoch,
            expires_ms,
            publication: Publication {
                offset,
                data,
                info,
                tags,
                time,
                // Map publications live in the map broker, never in these streams.
                key: String::new(),
                removed: false,
            },
        })
    }
}

/// The fjall database and the syncer thread.
pub(super) struct Store {
    dir: PathBuf,
    db: fjall::Database,
    streams: fjall::Keyspace,
    pubs: fjall::Keyspace,
    syncer: Arc<Syncer>,
    /// Joined on drop, so that the directory is free again once the store is gone.
    thread: Option<std::thread::JoinHandle<()>>,
    mode: DiskSync,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("dir", &self.dir)
            .field("mode", &self.mode)
            .finish()
    }
}

/// Changes to one or more streams, written atomically by [`Store::commit`].
pub(super) struct Batch<'a> {
    store: &'a Store,
    inner: fjall::OwnedWriteBatch,
    empty: bool,
}

impl Batch<'_> {
    pub(super) fn put_stream(&mut self, channel: &str, meta: &StreamMeta) {
        self.inner
            .insert(&self.store.streams, channel_prefix(channel), meta.encode());
        self.empty = false;
    }

    pub(super) fn put_pub(&mut self, channel: &str, offset: u64, value: Vec<u8>) {
        self.inner
            .insert(&self.store.pubs, pub_key(channel, offset), value);
        self.empty = false;
    }

    /// Removes the publications with offsets in `from..to`.
    pub(super) fn del_pubs(&mut self, channel: &str, from: u64, to: u64) {
        for offset in from..to {
            self.inner
                .remove(&self.store.pubs, pub_key(channel, offset));
            self.empty = false;
        }
    }

    pub(super) fn del_stream(&mut self, channel: &str) {
        self.inner
            .remove(&self.store.streams, channel_prefix(channel));
        self.empty = false;
    }

    pub(super) fn is_empty(&self) -> bool {
        self.empty
    }

    /// Writes the batch (handed to the OS before this returns); the ticket is what a
    /// caller waits on for the sync in [`DiskSync::Always`] mode.
    pub(super) fn commit(self) -> Result<Option<SyncTicket>, BrokerError> {
        if self.empty {
            return Ok(None);
        }
        let store = self.store;
        self.inner
            .commit()
            .map_err(|e| io_error("write failed", e))?;
        let seq = store.syncer.written.fetch_add(1, Ordering::AcqRel) + 1;
        match store.mode {
            DiskSync::Always => {
                // Under the syncer's lock: it checks `written` and starts waiting
                // atomically, so this wake-up cannot fall between the two.
                let _guard = store.syncer.stop.lock();
                store.syncer.wake.notify_one();
                Ok(Some(SyncTicket {
                    seq,
                    synced: store.syncer.synced.subscribe(),
                }))
            }
            DiskSync::Interval(_) => Ok(None),
        }
    }
}

/// A written batch waiting for its sync.
#[derive(Debug)]
pub(super) struct SyncTicket {
    seq: u64,
    synced: watch::Receiver<Synced>,
}

impl SyncTicket {
    pub(super) async fn wait(mut self) -> Result<(), BrokerError> {
        loop {
            {
                let s = self.synced.borrow_and_update();
                if s.ok_upto >= self.seq {
                    return Ok(());
                }
                if let Some((upto, message)) = &s.failed
                    && *upto >= self.seq
                {
                    return Err(BrokerError::Unavailable(EngineError::msg(format!(
                        "history store: sync failed: {message}"
                    ))));
                }
            }
            if self.synced.changed().await.is_err() {
                return Err(BrokerError::Closed);
            }
        }
    }
}

#[derive(Debug, Clone, Default)]
struct Synced {
    /// Every batch numbered up to this one is on disk.
    ok_upto: u64,
    /// The last failed sync: batches numbered up to this one (and above `ok_upto`) failed.
    failed: Option<(u64, Arc<str>)>,
}

struct Syncer {
    /// Number of batches written so far.
    written: AtomicU64,
    stop: Mutex<bool>,
    wake: Condvar,
    synced: watch::Sender<Synced>,
}

impl Store {
    /// Opens (or creates) the store in `dir` and starts its syncer thread.
    pub(super) fn open(dir: &Path, mode: DiskSync) -> Result<Self, BrokerError> {
        std::fs::create_dir_all(dir).map_err(|e| {
            BrokerError::Unavailable(EngineError::with_context(
                format!("history store: creating {}", dir.display()),
                e,
            ))
        })?;
        let db = fjall::Database::builder(dir)
            .open()
            .map_err(|e| io_error(&format!("opening {}", dir.display()), e))?;
        let streams = db
            .keyspace("streams", fjall::KeyspaceCreateOptions::default)
            .map_err(|e| io_error("opening keyspace streams", e))?;
        let pubs = db
            .keyspace("pubs", fjall::KeyspaceCreateOptions::default)
            .map_err(|e| io_error("opening keyspace pubs", e))?;
        let syncer = Arc::new(Syncer {
            written: AtomicU64::new(0),
            stop: Mutex::new(false),
            wake: Condvar::new(),
            synced: watch::Sender::new(Synced::default()),
        });
        let thread_db = db.clone();
        let thread_syncer = syncer.clone();
        let thread = std::thread::Builder::new()
            .name("gyre-history-sync".into())
            .spawn(move || sync_loop(&thread_db, &thread_syncer, mode))
            .map_err(|e| {
                BrokerError::Unavailable(EngineError::with_context("history store: syncer", e))
            })?;
        Ok(Store {
            dir: dir.to_owned(),
            db,
            streams,
            pubs,
            syncer,
            thread: Some(thread),
            mode,
        })
    }

    pub(super) fn batch(&self) -> Batch<'_> {
        Batch {
            store: self,
            inner: self.db.batch(),
            empty: true,
        }
    }

    /// Reads every stream: expired streams and publications are deleted, publications
    /// that do not belong to the stream's current incarnation (another epoch, beyond the
    /// top, before a hole) too. A record that does not decode fails the whole load.
    pub(super) fn load(&self, now_ms: i64) -> Result<Loaded, BrokerError> {
        let mut loaded = Vec::new();
        let mut garbage = self.batch();
        for item in self.streams.iter() {
            let (key, value) = item
                .into_inner()
                .map_err(|e| io_error("reading streams", e))?;
            let channel = decode_channel(&key)
                .ok_or_else(|| corrupt(&self.dir, "stream key"))?
                .to_owned();
            let meta = StreamMeta::decode(&value)
                .ok_or_else(|| corrupt(&self.dir, &format!("stream meta of {channel:?}")))?;
            let prefix = channel_prefix(&channel);
            let mut pubs: Vec<(u64, StoredPub)> = Vec::new();
            for item in self.pubs.prefix(&prefix) {
                let (key, value) = item
                    .into_inner()
                    .map_err(|e| io_error("reading publications", e))?;
                let offset = key
                    .get(prefix.len()..)
                    .and_then(|b| <[u8; 8]>::try_from(b).ok())
                    .map(u64::from_be_bytes)
                    .ok_or_else(|| {
                        corrupt(&self.dir, &format!("publication key of {channel:?}"))
                    })?;
                let stored = StoredPub::decode(offset, &value).ok_or_else(|| {
                    corrupt(&self.dir, &format!("publication {offset} of {channel:?}"))
                })?;
                pubs.push((offset, stored));
            }
            if meta.meta_expires_ms != 0 && meta.meta_expires_ms <= now_ms {
                garbage.del_stream(&channel);
                for (offset, _) in &pubs {
                    garbage.del_pubs(&channel, *offset, offset + 1);
                }
                continue;
            }
            let range = kept_range(&meta, &pubs, now_ms);
            for (i, (offset, _)) in pubs.iter().enumerate() {
                if !range.contains(&i) {
                    garbage.del_pubs(&channel, *offset, offset + 1);
                }
            }
            let kept = &pubs[range];
            let kept = kept
                .iter()
                .zip(effective_expiry(kept))
                .map(|((_, s), exp)| (s.publication.clone(), exp))
                .collect();
            loaded.push((channel, meta, kept));
        }
        // Publications whose stream meta is gone (a crash between the two is impossible,
        // they are written in one batch, but a meta expired by an older run leaves them).
        let mut last: Option<Vec<u8>> = None;
        for item in self.pubs.iter() {
            let key = item
                .key()
                .map_err(|e| io_error("reading publications", e))?;
            let Some(channel) = decode_channel(&key) else {
                return Err(corrupt(&self.dir, "publication key"));
            };
            let prefix = channel_prefix(channel);
            if last.as_deref() == Some(&prefix[..]) {
                continue;
            }
            if self
                .streams
                .get(&prefix)
                .map_err(|e| io_error("reading streams", e))?
                .is_none()
                && let Some(offset) = key
                    .get(prefix.len()..)
                    .and_then(|b| <[u8; 8]>::try_from(b).ok())
                    .map(u64::from_be_bytes)
            {
                garbage.del_pubs(channel, offset, offset + 1);
                continue;
            }
            last = Some(prefix);
        }
        if !garbage.is_empty() {
            garbage.commit()?;
        }
        Ok(loaded)
    }
}

/// The publications that form the stream's kept part: of this epoch, not expired (with
/// the rule that an older one never outlives a newer one), contiguous and ending at the
/// top.
fn kept_range(meta: &StreamMeta, pubs: &[(u64, StoredPub)], now_ms: i64) -> std::ops::Range<usize> {
    // Sorted by offset: anything past the top belongs to an older incarnation.
    let end = pubs.partition_point(|(offset, _)| *offset <= meta.top);
    let mut start = end;
    let mut want = meta.top;
    let mut min_expiry = 0i64;
    while start > 0 {
        let (offset, stored) = &pubs[start - 1];
        if *offset != want || stored.epoch != meta.epoch || want == 0 {
            break;
        }
        if stored.expires_ms != 0 {
            min_expiry = if min_expiry == 0 {
                stored.expires_ms
            } else {
                min_expiry.min(stored.expires_ms)
            };
        }
        if min_expiry != 0 && min_expiry <= now_ms {
            break;
        }
        start -= 1;
        want -= 1;
    }
    start..end
}

/// Each publication's expiry as memory keeps it: never later than a newer one's.
fn effective_expiry(kept: &[(u64, StoredPub)]) -> Vec<i64> {
    let mut out = vec![0; kept.len()];
    let mut min_expiry = 0i64;
    for (i, (_, stored)) in kept.iter().enumerate().rev() {
        if stored.expires_ms != 0 {
            min_expiry = if min_expiry == 0 {
                stored.expires_ms
            } else {
                min_expiry.min(stored.expires_ms)
            };
        }
        out[i] = min_expiry;
    }
    out
}

fn decode_channel(key: &[u8]) -> Option<&str> {
    let mut r = Reader(key);
    let n = r.u32()? as usize;
    std::str::from_utf8(r.take(n)?).ok()
}

impl Drop for Store {
    fn drop(&mut self) {
        *self.syncer.stop.lock() = true;
        self.syncer.wake.notify_one();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        if let Err(err) = self.db.persist(fjall::PersistMode::SyncData) {
            tracing::error!(error = %err, "history store: final sync failed");
        }
    }
}

fn sync_loop(db: &fjall::Database, syncer: &Syncer, mode: DiskSync) {
    let mut done = 0u64;
    loop {
        {
            let mut stop = syncer.stop.lock();
            loop {
                if *stop {
                    return;
                }
                let written = syncer.written.load(Ordering::Acquire);
                match mode {
                    DiskSync::Always if written > done => break,
                    DiskSync::Always => syncer.wake.wait(&mut stop),
                    DiskSync::Interval(every) => {
                        syncer.wake.wait_for(&mut stop, every);
                        if *stop {
                            return;
                        }
                        if syncer.written.load(Ordering::Acquire) > done {
                            break;
                        }
                    }
                }
            }
        }
        // Every batch numbered up to `target` finished its write before this sync starts.
        let target = syncer.written.load(Ordering::Acquire);
        match db.persist(fjall::PersistMode::SyncData) {
            Ok(()) => {
                done = target;
                syncer.synced.send_modify(|s| s.ok_upto = target);
            }
            Err(err) => {
                tracing::error!(error = %err, "history store: sync failed");
                done = target;
                let message: Arc<str> = err.to_string().into();
                syncer
                    .synced
                    .send_modify(|s| s.failed = Some((target, message)));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disk_records_round_trip_and_refuse_garbage() {
        let mut p = Publication::new("data");
        p.offset = 7;
        p.time = 1234;
        p.info = Some(ClientInfo::new("u", "c"));
        p.tags.insert("k".into(), "v".into());
        let enc = StoredPub::encode("EPOCH", 99, &p);
        let dec = StoredPub::decode(7, &enc).unwrap();
        assert_eq!(dec.publication, p);
        assert_eq!((dec.epoch.as_str(), dec.expires_ms), ("EPOCH", 99));
        for cut in 0..enc.len() {
            assert!(StoredPub::decode(7, &enc[..cut]).is_none(), "cut at {cut}");
        }
        let meta = StreamMeta {
            epoch: "abc".into(),
            top: 5,
            meta_expires_ms: 10,
            version: 2,
            version_epoch: "v".into(),
        };
        assert_eq!(StreamMeta::decode(&meta.encode()), Some(meta.clone()));
        let mut bad = meta.encode();
        bad[0] = 9;
        assert_eq!(StreamMeta::decode(&bad), None);
    }

    fn sp(offset: u64, epoch: &str, expires_ms: i64) -> (u64, StoredPub) {
        let publication = Publication {
            offset,
            ..Default::default()
        };
        (
            offset,
            StoredPub {
                epoch: epoch.into(),
                expires_ms,
                publication,
            },
        )
    }

    #[test]
    fn disk_load_keeps_only_the_live_contiguous_tail() {
        let meta = StreamMeta {
            epoch: "E".into(),
            top: 5,
            meta_expires_ms: 0,
            version: 0,
            version_epoch: String::new(),
        };
        // 1 is of an older epoch, 3 expired through 4's shorter expiry, 6 beyond the top.
        let pubs = vec![
            sp(1, "old", 0),
            sp(2, "E", 500),
            sp(3, "E", 900),
            sp(4, "E", 100),
            sp(5, "E", 1000),
            sp(6, "E", 1000),
        ];
        let offsets =
            |r: std::ops::Range<usize>| pubs[r].iter().map(|(o, _)| *o).collect::<Vec<_>>();
        assert_eq!(offsets(kept_range(&meta, &pubs, 50)), vec![2, 3, 4, 5]);
        assert_eq!(offsets(kept_range(&meta, &pubs, 200)), vec![5]);
        assert_eq!(effective_expiry(&pubs[1..5]), vec![100, 100, 100, 1000]);
    }
}
