//! The Hub: live connections by user, and channel subscribers for broadcast.
//!
//! Both maps are sharded by key hash so that broadcasts in different channels, and
//! connects of different users, never contend on one lock. A broadcast takes one shard's
//! read lock, encodes the push once per protocol and pushes the shared bytes into every
//! subscriber's outbound queue.
//!
//! The hub knows connections only through [`Connection`], which the client layer above
//! implements; the hub is generic over it (one instantiation, so calls are static and
//! inlined as before) and never imports the client.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hash};
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use gyre_protocol::{Disconnect, Protocol, proto};
use parking_lot::{Mutex, RwLock};

use crate::broker::{ClientInfo, Publication, StreamPosition};
use crate::filter::TagsFilter;
use crate::metrics::FrameType;
use crate::queue::{Outbound, PushOutcome, WriteNow};

const SHARDS: usize = 64;

type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// State of a subscription as the broadcast path sees it, shared between the hub entry
/// and the client's own record of the subscription.
#[derive(Debug)]
pub(crate) struct SubShared {
    state: AtomicU8,
    /// Publications must pass the client's position check (and are buffered while the
    /// subscribe is in flight).
    pub(crate) positioned: bool,
    /// Join/leave events are pushed to this subscriber.
    pub(crate) push_join_leave: bool,
    /// Fossil delta compression was negotiated: publications are encoded in the delta
    /// subscription's forms (on JSON, `data` as a string).
    pub(crate) delta: bool,
    /// Only publications whose tags match are sent (the others still move a positioned
    /// subscription's position).
    pub(crate) tags_filter: Option<TagsFilter>,
}

const SUBSCRIBING: u8 = 0;
const SUBSCRIBED: u8 = 1;

impl SubShared {
    pub(crate) fn new(
        positioned: bool,
        push_join_leave: bool,
        delta: bool,
        tags_filter: Option<TagsFilter>,
    ) -> Arc<Self> {
        Arc::new(SubShared {
            state: AtomicU8::new(SUBSCRIBING),
            positioned,
            push_join_leave,
            delta,
            tags_filter,
        })
    }

    /// Whether this subscriber's tags filter excludes the publication.
    pub(crate) fn filters_out(&self, publication: &Publication) -> bool {
        self.tags_filter
            .as_ref()
            .is_some_and(|f| !f.matches(&publication.tags))
    }

    pub(crate) fn set_subscribed(&self) {
        self.state.store(SUBSCRIBED, Ordering::Release);
    }

    pub(crate) fn is_subscribed(&self) -> bool {
        self.state.load(Ordering::Acquire) == SUBSCRIBED
    }
}

/// A live connection as the hub sees it (implemented by the client).
pub(crate) trait Connection: Send + Sync + 'static {
    /// Node-unique sequence number, the key of the connection in the hub's maps.
    fn seq(&self) -> u64;

    /// Connection id, for logs.
    fn id(&self) -> &str;

    /// Encoding of this connection, fixed for its life.
    fn protocol(&self) -> Protocol;

    /// Where encoded pushes for this connection are queued.
    fn outbound(&self) -> &Outbound;

    /// Starts loading what a broadcast reads of this connection (its protocol and the
    /// address of its queue) ahead of its turn.
    fn prefetch(&self) {}

    /// Delivers a publication this connection cannot take on the fast path:
    /// positioned subscriptions and subscriptions still being set up. Called with the
    /// channel's shard lock held. `when` says when the broadcasting thread may write to
    /// the socket itself.
    fn deliver_publication(
        this: &Arc<Self>,
        channel: &str,
        publication: &Publication,
        position: &StreamPosition,
        frames: &Frames,
        when: WriteNow,
    ) -> PushOutcome;
}

/// What one broadcast did on this node.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Broadcast {
    /// Subscribers it was queued for.
    pub(crate) sent: u64,
    /// Subscribers whose tags filter left it out.
    pub(crate) filtered: u64,
}

/// Connections a broadcast queued a message for without waking their writers (see
/// [`Hub::broadcast_publication`]). Dropped without a [`Hub::flush`], it wakes their
/// writers, so a message is never left waiting for a flush that does not come.
#[derive(Debug)]
#[must_use = "the deferred messages go out on flush, or through the writers on drop"]
pub(crate) struct Deferred<C: Connection> {
    list: Vec<Arc<C>>,
}

impl<C: Connection> Default for Deferred<C> {
    fn default() -> Self {
        Deferred { list: Vec::new() }
    }
}

impl<C: Connection> Deferred<C> {
    /// Connections waiting for the flush.
    pub(crate) fn len(&self) -> usize {
        self.list.len()
    }
}

impl<C: Connection> Drop for Deferred<C> {
    fn drop(&mut self) {
        for client in self.list.drain(..) {
            client.outbound().hand_over();
        }
    }
}

/// One publication encoded for one subscriber, as the slow path needs it.
#[derive(Debug, Clone)]
pub(crate) struct Frames {
    /// The full publication (for a delta subscription, in its full form).
    pub(crate) full: Bytes,
    /// For a delta subscription: the publication as a fossil delta against the previous
    /// publication of the stream, when there is one and it is smaller. Only valid for a
    /// subscriber whose last received publication is that previous one.
    pub(crate) delta: Option<Bytes>,
    /// The subscriber's tags filter excludes the publication: nothing is sent, only the
    /// position moves.
    pub(crate) filtered: bool,
}

impl Frames {
    /// The stand-in for a publication the subscriber filtered out (allocates nothing).
    fn filtered() -> Self {
        Frames {
            full: Bytes::new(),
            delta: None,
            filtered: true,
        }
    }
}

/// How long a connection must have been quiet before a broadcast writes to its socket
/// itself rather than queueing for its writer.
///
/// Writing directly saves the writer's wake-up but gives up batching: every message costs
/// a write of its own. That pays only when the writer would not have batched anything,
/// i.e. when the connection gets messages more rarely than a whole direct round over the
/// channel takes. The round's length is estimated from the cost of the direct writes seen
/// so far, times the channel's size; a connection that got a frame more recently than
/// that is left to its writer, which then coalesces whatever arrives meanwhile.
///
/// One round, not more: a connection quiet for longer gets nothing to coalesce, and its
/// writer's wake-up and poll cost about as much again as the write (measured at 50
/// publications/s to 1,000 subscribers on a machine with 8 µs loopback writes: the same
/// deliveries took 16.2 µs each through the writers, 12.3 µs written directly).
#[derive(Debug)]
pub(crate) struct DirectPace {
    /// Smoothed cost of one direct write, in nanoseconds (the flush loop included).
    write_ns: AtomicU64,
    /// Broadcasts to channels big enough to probe, counted to pick every
    /// [`PROBE_EVERY`]th.
    broadcasts: AtomicU64,
}

/// Every this many broadcasts to a channel of more than [`PROBE_SLICE`] subscribers, its
/// first [`PROBE_SLICE`] subscribers are judged by [`MIN_QUIET`] alone. An estimate that
/// once came out too high would otherwise stop all direct writes, and with them the only
/// samples that could bring it down again.
const PROBE_EVERY: u64 = 64;

/// Subscribers at the head of a probing broadcast (see [`PROBE_EVERY`]).
const PROBE_SLICE: usize = 16;

/// Most sockets one broadcast leaves to its flush (about 5 ms of writes on loopback):
/// the flush runs on the publisher's runtime, whose other tasks wait for it.
const MAX_DIRECT_PER_BROADCAST: u64 = 1024;

/// Never write directly to a connection that got a frame within this (no batching is
/// given up for connections that get more than a thousand messages a second).
const MIN_QUIET: Duration = Duration::from_millis(1);

impl Default for DirectPace {
    fn default() -> Self {
        // A loopback write with its receive path, as measured here; replaced by what is
        // seen as soon as direct writes happen.
        DirectPace {
            write_ns: AtomicU64::new(5_000),
            broadcasts: AtomicU64::new(0),
        }
    }
}

impl DirectPace {
    fn quiet(&self, subscribers: usize) -> Duration {
        let round = self
            .write_ns
            .load(Ordering::Relaxed)
            .saturating_mul(subscribers as u64);
        MIN_QUIET.max(Duration::from_nanos(round))
    }

    /// Whether this broadcast to `subscribers` is one that probes (see [`PROBE_EVERY`]).
    fn probing(&self, subscribers: usize) -> bool {
        subscribers > PROBE_SLICE
            && self
                .broadcasts
                .fetch_add(1, Ordering::Relaxed)
                .is_multiple_of(PROBE_EVERY)
    }

    fn observe(&self, elapsed: Duration, written: u64) {
        let sample = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX) / written;
        let old = self.write_ns.load(Ordering::Relaxed);
        // Racing updates lose a sample, which a moving average does not mind.
        self.write_ns
            .store(old - old / 8 + sample / 8, Ordering::Relaxed);
    }
}

/// How many subscribers ahead a broadcast asks for a connection's state, and (half as
/// far ahead) for its queue. Each subscriber is a chain of pointers (connection, queue)
/// that misses the cache in a big channel. Prefetches do not hold anything up, not even
/// the locked instruction that takes a queue's lock: loads would (every locked
/// instruction waits for the loads before it), so a touch ahead by loading overlapped at
/// most one subscriber's misses with another's.
const TOUCH_AHEAD: usize = 8;

#[inline(always)]
fn touch_ahead<C: Connection>(list: &[Subscriber<C>], i: usize) {
    if let Some(far) = list.get(i + TOUCH_AHEAD) {
        far.client.prefetch();
        crate::queue::prefetch(&*far.shared);
    }
    if let Some(near) = list.get(i + TOUCH_AHEAD / 2) {
        // Reads the queue's address from the connection prefetched four subscribers ago.
        near.client.outbound().prefetch();
    }
}

#[derive(Debug)]
struct Subscriber<C> {
    client: Arc<C>,
    shared: Arc<SubShared>,
}

/// Subscribers of one channel: a dense vector for fast iteration plus an index by
/// connection sequence number for O(1) removal.
#[derive(Debug)]
struct ChannelSubscribers<C> {
    list: Vec<Subscriber<C>>,
    index: FastMap<u64, usize>,
}

impl<C> Default for ChannelSubscribers<C> {
    fn default() -> Self {
        ChannelSubscribers {
            list: Vec::new(),
            index: FastMap::default(),
        }
    }
}

#[derive(Debug)]
struct UserShard<C> {
    users: FastMap<String, FastMap<u64, Arc<C>>>,
}

impl<C> Default for UserShard<C> {
    fn default() -> Self {
        UserShard {
            users: FastMap::default(),
        }
    }
}

/// Lazily encoded push, shared by all subscribers of one protocol.
struct Encoded<'a> {
    push: &'a proto::Push,
    json: Option<Option<Bytes>>,
    protobuf: Option<Option<Bytes>>,
}

impl<'a> Encoded<'a> {
    fn new(push: &'a proto::Push) -> Self {
        Encoded {
            push,
            json: None,
            protobuf: None,
        }
    }

    /// The encoded push for `protocol`, or `None` when it cannot be encoded in it
    /// (a binary payload on a JSON connection).
    fn get(&mut self, protocol: Protocol) -> Option<&Bytes> {
        let slot = match protocol {
            Protocol::Json => &mut self.json,
            Protocol::Protobuf => &mut self.protobuf,
        };
        slot.get_or_insert_with(|| crate::wire::encode_push(protocol, self.push))
            .as_ref()
    }
}

/// A publication encoded lazily in every form its subscribers need: plain per protocol,
/// and for delta subscriptions the full and delta forms. The fossil delta is computed at
/// most once per publication, whatever the number of subscribers.
struct PublicationForms<'a> {
    plain: Encoded<'a>,
    data: &'a Bytes,
    /// The previous publication of the stream, when the publisher asked for deltas.
    prev: Option<&'a Publication>,
    /// The fossil delta against `prev` when it is smaller than the payload.
    delta: Option<Option<Vec<u8>>>,
    json_full: Option<Option<Bytes>>,
    json_delta: Option<Option<Bytes>>,
    protobuf_delta: Option<Option<Bytes>>,
}

impl<'a> PublicationForms<'a> {
    fn new(push: &'a proto::Push, data: &'a Bytes, prev: Option<&'a Publication>) -> Self {
        PublicationForms {
            plain: Encoded::new(push),
            data,
            prev,
            delta: None,
            json_full: None,
            json_delta: None,
            protobuf_delta: None,
        }
    }

    /// The push with `data` and `delta` replaced.
    fn encode_with(&self, protocol: Protocol, data: Bytes, delta: bool) -> Option<Bytes> {
        let mut push = self.plain.push.clone();
        if let Some(p) = push.r#pub.as_mut() {
            p.data = data;
            p.delta = delta;
        }
        crate::wire::encode_push(protocol, &push)
    }

    fn raw_delta(&mut self) -> Option<&Vec<u8>> {
        let (data, prev) = (self.data, self.prev);
        self.delta
            .get_or_insert_with(|| {
                let prev = prev?;
                let delta = gyre_protocol::fossil::create(&prev.data, data);
                // Upstream sends the payload itself when the delta would not be smaller.
                (delta.len() < data.len()).then_some(delta)
            })
            .as_ref()
    }

    /// Full form for a subscriber of `protocol` (`delta`: a delta subscription).
    fn full(&mut self, protocol: Protocol, delta: bool) -> Option<Bytes> {
        if !delta || protocol == Protocol::Protobuf {
            return self.plain.get(protocol).cloned();
        }
        if self.json_full.is_none() {
            let full = gyre_protocol::json_string(self.data)
                .and_then(|s| self.encode_with(Protocol::Json, s, false));
            self.json_full = Some(full);
        }
        self.json_full.clone().flatten()
    }

    /// Delta form for a delta subscriber of `protocol`, if there is one.
    fn delta(&mut self, protocol: Protocol) -> Option<Bytes> {
        let cached = match protocol {
            Protocol::Json => &self.json_delta,
            Protocol::Protobuf => &self.protobuf_delta,
        };
        if let Some(done) = cached {
            return done.clone();
        }
        let raw = self.raw_delta().cloned();
        let encoded = raw.and_then(|raw| match protocol {
            // On JSON the delta travels as a string the SDK turns back into UTF-8
            // bytes: a delta that is not UTF-8 (an insert cutting a character) would
            // not survive, so such a publication goes in full.
            Protocol::Json => {
                gyre_protocol::json_string(&raw).and_then(|s| self.encode_with(protocol, s, true))
            }
            Protocol::Protobuf => self.encode_with(protocol, Bytes::from(raw), true),
        });
        match protocol {
            Protocol::Json => self.json_delta = Some(encoded.clone()),
            Protocol::Protobuf => self.protobuf_delta = Some(encoded.clone()),
        }
        encoded
    }

    fn frames(&mut self, protocol: Protocol, delta: bool) -> Option<Frames> {
        let full = self.full(protocol, delta)?;
        let delta = if delta { self.delta(protocol) } else { None };
        Some(Frames {
            full,
            delta,
            filtered: false,
        })
    }
}

/// Registry of connections and subscriptions of this node.
#[derive(Debug)]
pub(crate) struct Hub<C> {
    hasher: foldhash::fast::RandomState,
    users: Box<[Mutex<UserShard<C>>]>,
    channels: Box<[RwLock<ChannelShard<C>>]>,
    /// Connections of emulated transports by their secret session id, for the commands
    /// that reach them through `/emulation`.
    sessions: Box<[Mutex<SessionShard<C>>]>,
    direct: DirectPace,
}

/// One shard of the session map.
type SessionShard<C> = FastMap<Box<str>, Arc<C>>;

/// One shard of the channel map.
type ChannelShard<C> = FastMap<String, ChannelSubscribers<C>>;

impl<C> Default for Hub<C> {
    fn default() -> Self {
        Hub {
            hasher: foldhash::fast::RandomState::default(),
            users: (0..SHARDS).map(|_| Mutex::default()).collect(),
            channels: (0..SHARDS).map(|_| RwLock::default()).collect(),
            sessions: (0..SHARDS).map(|_| Mutex::default()).collect(),
            direct: DirectPace::default(),
        }
    }
}

impl<C: Connection> Hub<C> {
    fn shard_of(&self, key: impl Hash) -> usize {
        (self.hasher.hash_one(key) as usize) % SHARDS
    }

    /// Registers an authenticated connection.
    pub(crate) fn add_client(&self, client: &Arc<C>, user: &str) {
        let mut shard = self.users[self.shard_of(user)].lock();
        shard
            .users
            .entry(user.to_owned())
            .or_default()
            .insert(client.seq(), client.clone());
    }

    /// Forgets a connection.
    pub(crate) fn remove_client(&self, seq: u64, user: &str) {
        let mut shard = self.users[self.shard_of(user)].lock();
        if let Some(conns) = shard.users.get_mut(user) {
            conns.remove(&seq);
            if conns.is_empty() {
                shard.users.remove(user);
            }
        }
    }

    /// Makes a connection of an emulated transport reachable by its session id.
    pub(crate) fn add_session(&self, session: &str, client: &Arc<C>) {
        self.sessions[self.shard_of(session)]
            .lock()
            .insert(session.into(), client.clone());
    }

    /// Forgets a session id.
    pub(crate) fn remove_session(&self, session: &str) {
        self.sessions[self.shard_of(session)].lock().remove(session);
    }

    /// The connection holding `session`, if it lives on this node.
    pub(crate) fn client_by_session(&self, session: &str) -> Option<Arc<C>> {
        self.sessions[self.shard_of(session)]
            .lock()
            .get(session)
            .cloned()
    }

    /// Live connections of `user`.
    pub(crate) fn user_clients(&self, user: &str) -> Vec<Arc<C>> {
        let shard = self.users[self.shard_of(user)].lock();
        shard
            .users
            .get(user)
            .map(|conns| conns.values().cloned().collect())
            .unwrap_or_default()
    }

    /// Number of live connections of `user`.
    pub(crate) fn user_connection_count(&self, user: &str) -> usize {
        let shard = self.users[self.shard_of(user)].lock();
        shard.users.get(user).map_or(0, |c| c.len())
    }

    /// Every live connection (for shutdown).
    pub(crate) fn all_clients(&self) -> Vec<Arc<C>> {
        let mut all = Vec::new();
        for shard in self.users.iter() {
            for conns in shard.lock().users.values() {
                all.extend(conns.values().cloned());
            }
        }
        all
    }

    /// Counts: (connections, distinct users).
    pub(crate) fn counts(&self) -> (usize, usize) {
        let (mut clients, mut users) = (0, 0);
        for shard in self.users.iter() {
            let shard = shard.lock();
            users += shard.users.len();
            clients += shard.users.values().map(|c| c.len()).sum::<usize>();
        }
        (clients, users)
    }

    /// Channels with at least one subscriber on this node, and the total number of
    /// subscriptions.
    pub(crate) fn channels(&self) -> (Vec<String>, usize) {
        let mut names = Vec::new();
        let mut subs = 0;
        for shard in self.channels.iter() {
            let shard = shard.read();
            for (name, s) in shard.iter() {
                names.push(name.clone());
                subs += s.list.len();
            }
        }
        (names, subs)
    }

    /// Every channel with its number of subscribers on this node.
    pub(crate) fn channel_counts(&self) -> Vec<(String, usize)> {
        let mut out = Vec::new();
        for shard in self.channels.iter() {
            let shard = shard.read();
            out.extend(shard.iter().map(|(name, s)| (name.clone(), s.list.len())));
        }
        out
    }

    /// Number of subscribers of `channel` on this node.
    #[cfg(test)]
    pub(crate) fn num_subscribers(&self, channel: &str) -> usize {
        let shard = self.channels[self.shard_of(channel)].read();
        shard.get(channel).map_or(0, |s| s.list.len())
    }

    /// Adds a subscriber. Returns true when it is the channel's first on this node (the
    /// node must then subscribe to the channel in the broker).
    pub(crate) fn add_subscriber(
        &self,
        channel: &str,
        client: &Arc<C>,
        shared: Arc<SubShared>,
    ) -> bool {
        let mut shard = self.channels[self.shard_of(channel)].write();
        let (subs, first) = match shard.get_mut(channel) {
            Some(subs) => (subs, false),
            None => (shard.entry(channel.to_owned()).or_default(), true),
        };
        let subscriber = Subscriber {
            client: client.clone(),
            shared,
        };
        match subs.index.get(&client.seq()) {
            Some(&i) => subs.list[i] = subscriber,
            None => {
                subs.index.insert(client.seq(), subs.list.len());
                subs.list.push(subscriber);
            }
        }
        first
    }

    /// Removes a subscriber. Returns true when the channel has no subscriber left on this
    /// node (the node must then unsubscribe in the broker).
    pub(crate) fn remove_subscriber(&self, channel: &str, seq: u64) -> bool {
        let mut shard = self.channels[self.shard_of(channel)].write();
        let Some(subs) = shard.get_mut(channel) else {
            return false;
        };
        let Some(i) = subs.index.remove(&seq) else {
            return false;
        };
        subs.list.swap_remove(i);
        if let Some(moved) = subs.list.get(i) {
            subs.index.insert(moved.client.seq(), i);
        }
        if subs.list.is_empty() {
            shard.remove(channel);
            return true;
        }
        false
    }

    /// Delivers a publication to every subscriber of `channel` on this node. `prev` is
    /// the previous publication of the stream when the publisher asked for deltas.
    ///
    /// Quiet connections are not written here: their message waits in their queue, and
    /// the returned [`Deferred`] must be passed to [`flush`](Self::flush) once the caller
    /// has let go of its locks (dropping it hands the messages to the writers instead).
    /// The publisher's answer then does not wait for a round of socket writes.
    pub(crate) fn broadcast_publication(
        &self,
        channel: &str,
        publication: &Publication,
        position: &StreamPosition,
        prev: Option<&Publication>,
    ) -> (Broadcast, Deferred<C>) {
        let mut outcome = Broadcast::default();
        let mut deferred = Deferred::default();
        let shard = self.channels[self.shard_of(channel)].read();
        let Some(subs) = shard.get(channel) else {
            return (outcome, deferred);
        };
        let push = proto::Push {
            channel: channel.to_owned(),
            r#pub: Some(crate::wire::publication_to_proto(publication)),
            ..Default::default()
        };
        // A delta is only meaningful against the publication right before this one: the
        // one a subscriber with an unbroken position holds (Redis hands it over without
        // its offset).
        let prev = prev.filter(|p| {
            publication.offset > 0 && (p.offset == 0 || p.offset + 1 == publication.offset)
        });
        let mut forms = PublicationForms::new(&push, &publication.data, prev);
        let start = Instant::now();
        let per_write = Duration::from_nanos(self.direct.write_ns.load(Ordering::Relaxed));
        let quiet = self.direct.quiet(subs.list.len());
        let probe = self.direct.probing(subs.list.len());
        let mut when = WriteNow {
            now: start,
            quiet: if probe { MIN_QUIET } else { quiet },
            defer: true,
        };
        for (i, sub) in subs.list.iter().enumerate() {
            touch_ahead(&subs.list, i);
            if probe && i == PROBE_SLICE {
                when.quiet = quiet;
            }
            if deferred.list.len() as u64 == MAX_DIRECT_PER_BROADCAST {
                // The flush is long enough: whoever runs it keeps others waiting.
                when.quiet = Duration::MAX;
            }
            let protocol = sub.client.protocol();
            let filtered = sub.shared.filters_out(publication);
            outcome.filtered += u64::from(filtered);
            let pushed = if !sub.shared.positioned && sub.shared.is_subscribed() {
                if filtered {
                    continue;
                }
                // The common case: no per-subscriber work beyond a refcount bump. Without
                // positioning a delta subscriber has no guaranteed base: always full.
                let Some(bytes) = forms.full(protocol, sub.shared.delta) else {
                    sub.client
                        .outbound()
                        .close(Disconnect::INAPPROPRIATE_PROTOCOL);
                    continue;
                };
                outcome.sent += 1;
                let pushed =
                    sub.client
                        .outbound()
                        .push_now(bytes, FrameType::PushPublication, when);
                match pushed {
                    PushOutcome::Overflow => {
                        outcome.sent -= 1;
                        tracing::debug!(client = %sub.client.id(), "client queue overflow, disconnecting (slow)");
                    }
                    PushOutcome::Closed => outcome.sent -= 1,
                    _ => {}
                }
                pushed
            } else if filtered {
                C::deliver_publication(
                    &sub.client,
                    channel,
                    publication,
                    position,
                    &Frames::filtered(),
                    when,
                )
            } else {
                let Some(frames) = forms.frames(protocol, sub.shared.delta) else {
                    sub.client
                        .outbound()
                        .close(Disconnect::INAPPROPRIATE_PROTOCOL);
                    continue;
                };
                outcome.sent += 1;
                C::deliver_publication(&sub.client, channel, publication, position, &frames, when)
            };
            if pushed == PushOutcome::Deferred {
                deferred.list.push(sub.client.clone());
                // The next connection's quiet time is judged at the time its turn is
                // expected, after the writes before it: a long round gives every
                // connection late in it that much longer to have been quiet.
                when.now = start + per_write * deferred.list.len() as u32;
            }
        }
        (outcome, deferred)
    }

    /// Writes the messages a broadcast deferred, each as a frame of its own, and learns
    /// from it what a write costs. A connection whose writer woke meanwhile, or that got
    /// more messages behind the deferred one, is left to its writer (one frame for all).
    pub(crate) fn flush(&self, mut deferred: Deferred<C>) {
        let list = std::mem::take(&mut deferred.list);
        let started = Instant::now();
        let mut written = 0u64;
        for (i, client) in list.iter().enumerate() {
            if let Some(ahead) = list.get(i + TOUCH_AHEAD / 2) {
                ahead.outbound().prefetch();
            }
            written += u64::from(client.outbound().flush_deferred());
        }
        // A flush that mostly handed over says little about the cost of a write.
        if written > 0 && written * 2 >= list.len() as u64 {
            self.direct.observe(started.elapsed(), written);
        }
    }

    /// Pushes a join (or leave) event to subscribers of `channel` that asked for them.
    pub(crate) fn broadcast_join_leave(&self, channel: &str, info: &ClientInfo, join: bool) -> u64 {
        let shard = self.channels[self.shard_of(channel)].read();
        let Some(subs) = shard.get(channel) else {
            return 0;
        };
        let info = Some(crate::wire::info_to_proto(info));
        let push = if join {
            proto::Push {
                channel: channel.to_owned(),
                join: Some(proto::Join { info }),
                ..Default::default()
            }
        } else {
            proto::Push {
                channel: channel.to_owned(),
                leave: Some(proto::Leave { info }),
                ..Default::default()
            }
        };
        let mut encoded = Encoded::new(&push);
        let frame = if join {
            FrameType::PushJoin
        } else {
            FrameType::PushLeave
        };
        let mut sent = 0;
        for sub in &subs.list {
            if !sub.shared.push_join_leave || !sub.shared.is_subscribed() {
                continue;
            }
            match encoded.get(sub.client.protocol()) {
                Some(bytes) => {
                    if matches!(
                        sub.client.outbound().push(bytes.clone(), frame),
                        PushOutcome::Queued | PushOutcome::Written
                    ) {
                        sent += 1;
                    }
                }
                None => sub
                    .client
                    .outbound()
                    .close(Disconnect::INAPPROPRIATE_PROTOCOL),
            }
        }
        sent
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::queue::{DirectWrite, Drained};

    /// A socket that takes `delay` per frame and counts what it got.
    #[derive(Debug)]
    struct SlowSocket {
        delay: Duration,
        frames: Mutex<usize>,
    }

    impl DirectWrite for SlowSocket {
        fn write_frame(&self, message: &[u8]) -> std::io::Result<(usize, usize)> {
            std::thread::sleep(self.delay);
            *self.frames.lock() += 1;
            Ok((message.len(), message.len()))
        }

        fn frame_rest(&self, message: &Bytes, written: usize) -> Bytes {
            message.slice(written..)
        }
    }

    struct TestConn {
        seq: u64,
        outbound: Outbound,
        socket: Arc<SlowSocket>,
    }

    impl TestConn {
        fn new(seq: u64, delay: Duration) -> Arc<TestConn> {
            let socket = Arc::new(SlowSocket {
                delay,
                frames: Mutex::new(0),
            });
            let outbound = Outbound::new(0);
            outbound.attach_direct(socket.clone());
            Arc::new(TestConn {
                seq,
                outbound,
                socket,
            })
        }
    }

    impl Connection for TestConn {
        fn seq(&self) -> u64 {
            self.seq
        }
        fn id(&self) -> &str {
            "test"
        }
        fn protocol(&self) -> Protocol {
            Protocol::Json
        }
        fn outbound(&self) -> &Outbound {
            &self.outbound
        }
        fn deliver_publication(
            _: &Arc<Self>,
            _: &str,
            _: &Publication,
            _: &StreamPosition,
            _: &Frames,
            _: WriteNow,
        ) -> PushOutcome {
            unreachable!("the test's subscriptions are not positioned")
        }
    }

    fn texts(out: &mut Vec<Bytes>) -> Vec<String> {
        out.drain(..)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .collect()
    }

    #[test]
    fn quiet_connections_get_their_message_on_flush_and_later_ones_queue_behind_it() {
        let hub: Hub<TestConn> = Hub::default();
        let a = TestConn::new(1, Duration::ZERO);
        let b = TestConn::new(2, Duration::ZERO);
        for conn in [&a, &b] {
            let shared = SubShared::new(false, false, false, None);
            shared.set_subscribed();
            hub.add_subscriber("ch", conn, shared);
        }
        let mut out = Vec::new();
        let park = |out: &mut Vec<Bytes>| {
            for conn in [&a, &b] {
                while !matches!(conn.outbound.drain(0, out), Drained::Empty) {}
            }
        };
        let publish = |n: u32| {
            hub.broadcast_publication(
                "ch",
                &Publication::new(format!(r#"{{"n":{n}}}"#)),
                &StreamPosition::default(),
                None,
            )
        };
        let frames = |conn: &TestConn| *conn.socket.frames.lock();
        park(&mut out);

        // Neither connection ever got a frame: both are quiet, and nothing is written
        // until the flush.
        let (sent, first) = publish(1);
        assert_eq!((sent.sent, first.len()), (2, 2));
        assert_eq!(frames(&a) + frames(&b), 0);
        assert!(!a.outbound.writer_parked(), "a message waits in the queue");
        // Published before the flush: queued behind the deferred message, no writer woken.
        let (sent, second) = publish(2);
        assert_eq!((sent.sent, second.len()), (2, 0));
        drop(second);
        // `b`'s writer wakes for its own reasons and takes its queue over.
        assert!(b.outbound.claim().is_none());
        hub.flush(first);
        // Two messages for each: the writers put them in one frame, in order.
        assert_eq!(frames(&a) + frames(&b), 0);
        for conn in [&a, &b] {
            assert_eq!(conn.outbound.drain(0, &mut out), Drained::Messages);
            let got = texts(&mut out);
            assert_eq!(got.len(), 2);
            assert!(
                got[0].contains(r#""n":1"#) && got[1].contains(r#""n":2"#),
                "{got:?}"
            );
        }
        park(&mut out);

        // Once quiet again, the flush writes each connection's single message itself.
        std::thread::sleep(MIN_QUIET * 3);
        let (_, third) = publish(3);
        assert_eq!(third.len(), 2);
        hub.flush(third);
        assert_eq!((frames(&a), frames(&b)), (1, 1));
        assert!(a.outbound.writer_parked() && b.outbound.writer_parked());

        // A broadcast whose flush never comes leaves its messages to the writers.
        std::thread::sleep(MIN_QUIET * 3);
        let (_, fourth) = publish(4);
        assert_eq!(fourth.len(), 2);
        drop(fourth);
        assert_eq!((frames(&a), frames(&b)), (1, 1));
        for conn in [&a, &b] {
            assert_eq!(conn.outbound.drain(0, &mut out), Drained::Messages);
            assert!(texts(&mut out)[0].contains(r#""n":4"#));
        }
    }

    #[test]
    fn direct_writes_wait_longer_in_bigger_channels_and_learn_the_write_cost() {
        let pace = DirectPace::default();
        // One subscriber: the floor. A thousand: a round of a thousand writes.
        assert_eq!(pace.quiet(1), MIN_QUIET);
        assert_eq!(pace.quiet(1000), Duration::from_millis(5));
        // Writes turn out cheaper (1 µs each): the estimate moves towards it.
        for _ in 0..64 {
            pace.observe(Duration::from_millis(1), 1000);
        }
        let quiet = pace.quiet(1000);
        assert!(
            quiet < Duration::from_micros(1500) && quiet >= Duration::from_millis(1),
            "{quiet:?}"
        );
        assert_eq!(pace.quiet(10), MIN_QUIET);
    }

    #[test]
    fn an_estimate_that_stopped_direct_writes_is_probed_and_comes_back_down() {
        let hub: Hub<TestConn> = Hub::default();
        let conns: Vec<_> = (0..PROBE_SLICE as u64 + 4)
            .map(|seq| TestConn::new(seq, Duration::ZERO))
            .collect();
        for conn in &conns {
            let shared = SubShared::new(false, false, false, None);
            shared.set_subscribed();
            hub.add_subscriber("ch", conn, shared);
        }
        // Writes once looked as if they took a second each: every connection must now be
        // quiet for longer than any test runs before it is written directly.
        for _ in 0..64 {
            hub.direct.observe(Duration::from_secs(1000), 1000);
        }
        let before = hub.direct.write_ns.load(Ordering::Relaxed);
        assert!(hub.direct.quiet(conns.len()) > Duration::from_secs(10));

        let mut out = Vec::new();
        let park_all = |out: &mut Vec<Bytes>| {
            for conn in &conns {
                while !matches!(conn.outbound.drain(0, out), Drained::Empty) {}
            }
            // Quiet for longer than the floor.
            std::thread::sleep(MIN_QUIET * 3);
        };
        let publish = || {
            let (sent, deferred) = hub.broadcast_publication(
                "ch",
                &Publication::new(r#"{"a":1}"#),
                &StreamPosition::default(),
                None,
            );
            hub.flush(deferred);
            sent
        };
        let frames = |conns: &[Arc<TestConn>]| -> usize {
            conns.iter().map(|c| *c.socket.frames.lock()).sum()
        };
        // The queues' clock starts at its first use, and a frame stamped at its zero
        // would read as "never": start it well before the frames that count.
        let warm = TestConn::new(99, Duration::ZERO);
        warm.outbound
            .push(Bytes::from_static(b"x"), FrameType::Unknown);
        warm.outbound.drain(0, &mut out);
        std::thread::sleep(Duration::from_millis(2));
        // Every connection got a frame from its writer a while ago (one that never got
        // any counts as quiet whatever the estimate says).
        for conn in &conns {
            conn.outbound
                .push(Bytes::from_static(b"x"), FrameType::Unknown);
        }
        park_all(&mut out);

        // The hub's first broadcast to the channel probes: its head is written directly.
        assert_eq!(publish().sent, conns.len() as u64);
        assert_eq!(frames(&conns[..PROBE_SLICE]), PROBE_SLICE);
        assert_eq!(
            frames(&conns[PROBE_SLICE..]),
            0,
            "the rest keep to the estimate"
        );
        let after = hub.direct.write_ns.load(Ordering::Relaxed);
        assert!(
            after < before,
            "the probe's writes were counted: {after} ns"
        );

        // The next broadcasts do not probe; the estimate still says "wait".
        for _ in 1..PROBE_EVERY {
            park_all(&mut out);
            publish();
        }
        assert_eq!(frames(&conns), PROBE_SLICE);
        // The next probe brings it down further.
        park_all(&mut out);
        publish();
        assert_eq!(frames(&conns), 2 * PROBE_SLICE);
        assert!(hub.direct.write_ns.load(Ordering::Relaxed) < after);
    }
}
