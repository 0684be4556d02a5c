//! The outbound queue of one connection.
//!
//! Every reply and push for a connection is encoded once (a broadcast shares one `Bytes`
//! among all subscribers) and pushed here. The connection's writer drains everything that
//! is queued into one transport frame, which is what keeps fan-out cheap: one write per
//! batch instead of one per message.
//!
//! The queue is bounded in bytes, not in items: a client that does not read fast enough
//! grows its queue until `max_bytes`, then it is closed with [`Disconnect::SLOW`] while
//! everybody else keeps receiving.

use std::collections::VecDeque;
use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use gyre_protocol::Disconnect;

use parking_lot::{Mutex, MutexGuard};
use tokio::sync::Notify;

use crate::metrics::{FrameType, TransportCounters};

/// Outcome of [`Outbound::push`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PushOutcome {
    /// Queued; the writer will send it.
    Queued,
    /// Written to the socket by the caller (all of it, or the writer finishes the rest).
    Written,
    /// Queued without waking the writer: the caller has promised to write it soon with
    /// [`Outbound::flush_deferred`] (or to hand it to the writer with
    /// [`Outbound::hand_over`]). Until then everything pushed after it waits behind it.
    Deferred,
    /// The queue is closed (the connection is going away); the message was dropped.
    Closed,
    /// This push overflowed the byte limit: the queue is now closed with `Disconnect::SLOW`.
    Overflow,
}

#[derive(Debug)]
struct State {
    /// Each message with its type, counted by type when the writer takes it.
    items: VecDeque<(Bytes, FrameType)>,
    bytes: usize,
    /// Set once: the writer flushes what is queued, then closes the transport with it.
    close: Option<Disconnect>,
    /// The socket, when the transport lets producers write to it themselves.
    direct: Option<Direct>,
}

/// A transport's socket, written by whoever produces a message while the connection's
/// writer is parked (see [`Outbound::push_now`]).
///
/// Waking the writer costs a task wake-up, a scheduling round and a poll of the whole
/// connection per message; when nothing else is queued that is most of a delivery's CPU
/// besides the write itself, and on a busy core the message also waits a scheduler slice.
pub(crate) trait DirectWrite: Send + Sync + std::fmt::Debug {
    /// Writes `message` as one complete transport frame without blocking. Returns the
    /// bytes of the frame that were written (0..=frame length) and the frame's length;
    /// `Err` with `WouldBlock` when nothing could be written.
    fn write_frame(&self, message: &[u8]) -> io::Result<(usize, usize)>;

    /// The unwritten rest of a frame whose first `written` bytes went out.
    fn frame_rest(&self, message: &Bytes, written: usize) -> Bytes;
}

/// Kept inline in every queue that has a socket: 32 bytes per connection, where a box and
/// an `Instant` cost three times that (the figure of merit is memory per idle connection).
#[derive(Debug)]
struct Direct {
    sink: Arc<dyn DirectWrite>,
    /// The writer is parked with nothing queued and nothing half-written: the socket is
    /// free for a producer.
    writer_idle: bool,
    /// What a producer could not finish writing: the writer sends it before anything else.
    rest: Option<Box<Bytes>>,
    /// When this connection last got a frame (written by either side), in microseconds
    /// of [`micros`]' clock; 0 = never.
    last_frame: u32,
    /// A producer queued a message it will write itself a little later (see
    /// [`PushOutcome::Deferred`]); cleared by that write or when the writer takes over.
    deferred: bool,
}

/// A wrapping microsecond clock: differences are right up to 71 minutes apart, and a
/// connection quiet for longer than that at worst gets one message through its queue.
fn micros(at: Instant) -> u32 {
    static EPOCH: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    let epoch = *EPOCH.get_or_init(Instant::now);
    // Truncation is the wrap-around.
    at.saturating_duration_since(epoch).as_micros() as u32
}

/// When a producer may write a message itself instead of queueing it (see
/// [`Outbound::push_now`]).
#[derive(Debug, Clone, Copy)]
pub(crate) struct WriteNow {
    /// The producer's clock when the message would go out: a broadcast that writes or
    /// defers to many connections moves it on by what each write before costs, so that a
    /// connection late in a long round is judged by the time its turn comes.
    pub(crate) now: Instant,
    /// Only a connection that got no frame for this long is written directly: one that
    /// got one recently is likely to get more, and its writer batches them into one write.
    /// `Duration::MAX` = never.
    pub(crate) quiet: Duration,
    /// Queue the message for a write the producer makes after it has let go of its
    /// locks and answered its caller ([`PushOutcome::Deferred`]), instead of writing now.
    pub(crate) defer: bool,
}

/// Starts loading the cache line that holds `value` and goes on without waiting for it
/// (a broadcast walks ahead of its turn through the subscribers' connections and queues).
#[inline(always)]
pub(crate) fn prefetch<T>(value: &T) {
    prefetch_index::prefetch_index(std::slice::from_ref(value), 0);
}

/// A byte-bounded multi-producer, single-consumer queue of encoded messages.
#[derive(Debug)]
pub(crate) struct Outbound {
    state: Mutex<State>,
    notify: Notify,
    max_bytes: usize,
    counters: Option<Arc<TransportCounters>>,
}

/// What the writer should do next.
#[derive(Debug, PartialEq)]
pub(crate) enum Drained {
    /// Nothing queued and not closed: wait for [`Outbound::wait`].
    Empty,
    /// These messages (in order) should be written as one frame.
    Messages,
    /// Everything before the close was drained already: close the transport with this.
    Close(Disconnect),
}

impl Outbound {
    #[cfg(test)]
    pub(crate) fn new(max_bytes: usize) -> Self {
        Self::with_counters(max_bytes, None)
    }

    /// A queue that counts what the writer drains into `counters`.
    pub(crate) fn with_counters(
        max_bytes: usize,
        counters: Option<Arc<TransportCounters>>,
    ) -> Self {
        Self {
            // An empty VecDeque does not allocate: idle connections cost nothing here.
            state: Mutex::new(State {
                items: VecDeque::new(),
                bytes: 0,
                close: None,
                direct: None,
            }),
            notify: Notify::new(),
            max_bytes,
            counters,
        }
    }

    /// Starts loading the queue's lock and wake-up state ahead of a push (see the hub's
    /// broadcast loop).
    #[inline(always)]
    pub(crate) fn prefetch(&self) {
        prefetch(&self.state);
        prefetch(&self.notify);
    }

    /// Queues one encoded message of type `frame`. Never blocks.
    pub(crate) fn push(&self, message: Bytes, frame: FrameType) -> PushOutcome {
        self.push_locked(self.state.lock(), message, frame)
    }

    /// [`push`](Self::push) with the lock already held: a broadcast that finds the writer
    /// busy queues without taking the lock a second time.
    fn push_locked(
        &self,
        mut state: MutexGuard<'_, State>,
        message: Bytes,
        frame: FrameType,
    ) -> PushOutcome {
        if state.close.is_some() {
            return PushOutcome::Closed;
        }
        let bytes = state.bytes + message.len();
        if self.max_bytes > 0 && bytes > self.max_bytes {
            // Drop what the client could not take: the close frame goes out right away.
            state.items = VecDeque::new();
            state.bytes = 0;
            state.close = Some(Disconnect::SLOW);
            drop(state);
            self.notify.notify_one();
            return PushOutcome::Overflow;
        }
        state.bytes = bytes;
        let was_empty = state.items.is_empty();
        state.items.push_back((message, frame));
        drop(state);
        // The writer is only parked when the queue was empty; avoid redundant wake-ups.
        if was_empty {
            self.notify.notify_one();
        }
        PushOutcome::Queued
    }

    /// Like [`push`](Self::push), but writes the message to the socket right here when the
    /// transport allows it, the writer is parked with nothing queued, and the connection
    /// has been quiet for `when.quiet`. No task is woken for a message written this way.
    pub(crate) fn push_now(&self, message: Bytes, frame: FrameType, when: WriteNow) -> PushOutcome {
        let mut state = self.state.lock();
        if when.quiet < Duration::MAX
            && state.close.is_none()
            && state.items.is_empty()
            && let Some(direct) = state.direct.as_mut()
            && direct.writer_idle
            && (direct.last_frame == 0
                || u128::from(micros(when.now).wrapping_sub(direct.last_frame))
                    >= when.quiet.as_micros())
        {
            if when.defer {
                direct.deferred = true;
                state.bytes += message.len();
                state.items.push_back((message, frame));
                return PushOutcome::Deferred;
            }
            match direct.sink.write_frame(&message) {
                Ok((written, total)) => {
                    direct.last_frame = micros(when.now);
                    if written < total {
                        // The socket took part of the frame: nothing else may go out
                        // before the rest, so the writer takes over from here.
                        direct.rest = Some(Box::new(direct.sink.frame_rest(&message, written)));
                        direct.writer_idle = false;
                        drop(state);
                        self.notify.notify_one();
                    } else {
                        drop(state);
                    }
                    if let Some(c) = &self.counters {
                        c.sent(frame, 1, message.len() as u64);
                    }
                    return PushOutcome::Written;
                }
                // Full socket or a failed one: queue it; the writer waits for room or
                // meets the error itself and closes the connection.
                Err(_) => direct.writer_idle = false,
            }
        }
        self.push_locked(state, message, frame)
    }

    /// Lets producers write to the transport's socket while the writer is parked.
    pub(crate) fn attach_direct(&self, sink: Arc<dyn DirectWrite>) {
        self.state.lock().direct = Some(Direct {
            sink,
            writer_idle: false,
            rest: None,
            last_frame: 0,
            deferred: false,
        });
    }

    /// Writes the message a producer deferred ([`PushOutcome::Deferred`]). Returns true
    /// when this call wrote it; otherwise the writer sends whatever is queued: it took
    /// over meanwhile, more was queued behind the message (the writer puts it all in one
    /// frame), or the socket is full.
    pub(crate) fn flush_deferred(&self) -> bool {
        let mut state = self.state.lock();
        let state = &mut *state;
        let Some(direct) = state.direct.as_mut() else {
            return false;
        };
        if !std::mem::take(&mut direct.deferred) {
            return false;
        }
        if state.close.is_some() || !direct.writer_idle || state.items.len() != 1 {
            direct.writer_idle = false;
            self.notify.notify_one();
            return false;
        }
        let Some((message, frame)) = state.items.pop_front() else {
            return false;
        };
        match direct.sink.write_frame(&message) {
            Ok((written, total)) => {
                state.bytes -= message.len();
                direct.last_frame = micros(Instant::now());
                if written < total {
                    direct.rest = Some(Box::new(direct.sink.frame_rest(&message, written)));
                    direct.writer_idle = false;
                    self.notify.notify_one();
                }
                if let Some(c) = &self.counters {
                    c.sent(frame, 1, message.len() as u64);
                }
                true
            }
            Err(_) => {
                // Full or failed socket: the writer waits for room or meets the error.
                state.items.push_front((message, frame));
                direct.writer_idle = false;
                self.notify.notify_one();
                false
            }
        }
    }

    /// Gives a deferred message ([`PushOutcome::Deferred`]) to the writer after all: the
    /// producer will not write it.
    pub(crate) fn hand_over(&self) {
        let mut state = self.state.lock();
        if let Some(direct) = state.direct.as_mut()
            && std::mem::take(&mut direct.deferred)
        {
            direct.writer_idle = false;
            drop(state);
            self.notify.notify_one();
        }
    }

    /// Takes the socket away from producers; after this returns nobody else writes to it.
    pub(crate) fn detach_direct(&self) {
        let direct = self.state.lock().direct.take();
        drop(direct);
    }

    /// The writer is about to write: producers keep off the socket until it parks again
    /// (the next [`drain`](Self::drain) that finds nothing). Returns the rest of a frame a
    /// producer left half-written, which must go out first.
    pub(crate) fn claim(&self) -> Option<Bytes> {
        let mut state = self.state.lock();
        let direct = state.direct.as_mut()?;
        direct.writer_idle = false;
        // The writer drains everything queued, a deferred message included.
        direct.deferred = false;
        direct.rest.take().map(|rest| *rest)
    }

    /// Asks the writer to flush what is queued and then close with `disconnect`.
    /// The first close wins; later ones are ignored.
    pub(crate) fn close(&self, disconnect: Disconnect) {
        let mut state = self.state.lock();
        if state.close.is_none() {
            state.close = Some(disconnect);
        }
        drop(state);
        self.notify.notify_one();
    }

    /// Whether messages are queued and no close was requested.
    pub(crate) fn has_messages_without_close(&self) -> bool {
        let state = self.state.lock();
        !state.items.is_empty() && state.close.is_none()
    }

    /// Whether a close was requested.
    pub(crate) fn is_closed(&self) -> bool {
        self.state.lock().close.is_some()
    }

    /// Wakes the writer without queueing anything (a timer deadline moved earlier).
    pub(crate) fn wake(&self) {
        self.notify.notify_one();
    }

    /// Resolves when something may be ready to drain.
    pub(crate) async fn wait(&self) {
        self.notify.notified().await;
    }

    /// Moves up to `max_messages` queued messages (0 = all) into `out`, in order.
    pub(crate) fn drain(&self, max_messages: usize, out: &mut Vec<Bytes>) -> Drained {
        let mut state = self.state.lock();
        if state.items.is_empty() {
            if state.items.capacity() > 64 {
                // Give back a burst's buffer so an idle connection stays small.
                state.items = VecDeque::new();
            }
            return match &state.close {
                Some(d) => Drained::Close(d.clone()),
                None => {
                    if let Some(direct) = state.direct.as_mut() {
                        direct.writer_idle = true;
                    }
                    Drained::Empty
                }
            };
        }
        if let Some(direct) = state.direct.as_mut() {
            direct.writer_idle = false;
            direct.last_frame = micros(Instant::now());
        }
        let n = if max_messages == 0 {
            state.items.len()
        } else {
            max_messages.min(state.items.len())
        };
        let mut taken = 0;
        // Counted per run of one type: a drain is mostly one type (a burst of
        // publications), so this is one pair of atomic adds per drain, as before types.
        let mut run: Option<(FrameType, u64, u64)> = None;
        for (item, frame) in state.items.drain(..n) {
            taken += item.len();
            let len = item.len() as u64;
            match &mut run {
                Some((f, count, bytes)) if *f == frame => {
                    *count += 1;
                    *bytes += len;
                }
                other => {
                    if let (Some((f, count, bytes)), Some(c)) = (*other, &self.counters) {
                        c.sent(f, count, bytes);
                    }
                    *other = Some((frame, 1, len));
                }
            }
            out.push(item);
        }
        state.bytes -= taken;
        drop(state);
        if let (Some((f, count, bytes)), Some(c)) = (run, &self.counters) {
            c.sent(f, count, bytes);
        }
        Drained::Messages
    }

    /// Whether a producer could write to the socket now (the writer is parked).
    #[cfg(test)]
    pub(crate) fn writer_parked(&self) -> bool {
        let state = self.state.lock();
        state.items.is_empty() && state.direct.as_ref().is_some_and(|d| d.writer_idle)
    }

    /// Bytes currently queued.
    #[cfg(test)]
    pub(crate) fn len_bytes(&self) -> usize {
        self.state.lock().bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drains_in_order_and_accounts_bytes() {
        let q = Outbound::new(100);
        assert_eq!(
            q.push(Bytes::from_static(b"ab"), FrameType::Unknown),
            PushOutcome::Queued
        );
        assert_eq!(
            q.push(Bytes::from_static(b"cde"), FrameType::Unknown),
            PushOutcome::Queued
        );
        assert_eq!(q.len_bytes(), 5);
        let mut out = Vec::new();
        assert_eq!(q.drain(0, &mut out), Drained::Messages);
        assert_eq!(
            out,
            vec![Bytes::from_static(b"ab"), Bytes::from_static(b"cde")]
        );
        assert_eq!(q.len_bytes(), 0);
        assert_eq!(q.drain(0, &mut out), Drained::Empty);
    }

    #[test]
    fn overflow_closes_with_slow_and_drops_queue() {
        let q = Outbound::new(4);
        assert_eq!(
            q.push(Bytes::from_static(b"abc"), FrameType::Unknown),
            PushOutcome::Queued
        );
        assert_eq!(
            q.push(Bytes::from_static(b"de"), FrameType::Unknown),
            PushOutcome::Overflow
        );
        assert_eq!(
            q.push(Bytes::from_static(b"f"), FrameType::Unknown),
            PushOutcome::Closed
        );
        let mut out = Vec::new();
        assert_eq!(q.drain(0, &mut out), Drained::Close(Disconnect::SLOW));
        assert!(out.is_empty());
    }

    #[test]
    fn drained_messages_are_counted_by_frame_type() {
        let counters = Arc::new(TransportCounters::default());
        let q = Outbound::with_counters(0, Some(counters.clone()));
        q.push(Bytes::from_static(b"p1"), FrameType::PushPublication);
        q.push(Bytes::from_static(b"p2"), FrameType::PushPublication);
        q.push(Bytes::from_static(b"r"), FrameType::Subscribe);
        q.push(Bytes::from_static(b"p3"), FrameType::PushPublication);
        let mut out = Vec::new();
        assert_eq!(q.drain(0, &mut out), Drained::Messages);
        assert_eq!(counters.sent_of(FrameType::PushPublication), 3);
        assert_eq!(counters.sent_of(FrameType::Subscribe), 1);
        assert_eq!(counters.sent_of(FrameType::ServerPing), 0);
    }

    #[test]
    fn close_flushes_queued_first() {
        let q = Outbound::new(0);
        q.push(Bytes::from_static(b"x"), FrameType::Unknown);
        q.close(Disconnect::SHUTDOWN);
        q.close(Disconnect::SLOW);
        let mut out = Vec::new();
        assert_eq!(q.drain(1, &mut out), Drained::Messages);
        assert_eq!(q.drain(1, &mut out), Drained::Close(Disconnect::SHUTDOWN));
    }

    /// A socket that takes up to `room` bytes and records them.
    #[derive(Debug)]
    struct FakeSocket {
        wire: Arc<Mutex<Vec<u8>>>,
        room: Arc<Mutex<usize>>,
    }

    impl DirectWrite for FakeSocket {
        fn write_frame(&self, message: &[u8]) -> io::Result<(usize, usize)> {
            let mut frame = vec![b'#'];
            frame.extend_from_slice(message);
            let mut room = self.room.lock();
            if *room == 0 {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            let n = frame.len().min(*room);
            *room -= n;
            self.wire.lock().extend_from_slice(&frame[..n]);
            Ok((n, frame.len()))
        }

        fn frame_rest(&self, message: &Bytes, written: usize) -> Bytes {
            let mut frame = vec![b'#'];
            frame.extend_from_slice(message);
            Bytes::from(frame).slice(written..)
        }
    }

    type Wire = Arc<Mutex<Vec<u8>>>;

    fn direct_queue(room: usize) -> (Outbound, Wire, Arc<Mutex<usize>>) {
        let q = Outbound::new(0);
        let wire = Arc::new(Mutex::new(Vec::new()));
        let room = Arc::new(Mutex::new(room));
        q.attach_direct(Arc::new(FakeSocket {
            wire: wire.clone(),
            room: room.clone(),
        }));
        (q, wire, room)
    }

    fn at(now: Instant) -> WriteNow {
        WriteNow {
            now,
            quiet: Duration::from_millis(1),
            defer: false,
        }
    }

    #[test]
    fn a_parked_writer_lets_producers_write_quiet_connections() {
        let (q, wire, _) = direct_queue(1000);
        let t0 = Instant::now();
        let msg = || Bytes::from_static(b"m");
        // The writer has not parked yet: the socket is its own.
        assert_eq!(
            q.push_now(msg(), FrameType::Unknown, at(t0)),
            PushOutcome::Queued
        );
        let mut out = Vec::new();
        assert_eq!(q.claim(), None);
        assert_eq!(q.drain(0, &mut out), Drained::Messages);
        assert_eq!(q.drain(0, &mut out), Drained::Empty);
        // Parked, but the drain above was a frame just now: batch with the writer.
        assert_eq!(
            q.push_now(msg(), FrameType::Unknown, at(Instant::now())),
            PushOutcome::Queued
        );
        assert_eq!(q.claim(), None);
        assert_eq!(q.drain(0, &mut out), Drained::Messages);
        assert_eq!(q.drain(0, &mut out), Drained::Empty);
        assert!(wire.lock().is_empty());
        // Quiet for longer than asked: written right here, nothing for the writer.
        let later = Instant::now() + Duration::from_millis(5);
        assert_eq!(
            q.push_now(msg(), FrameType::Unknown, at(later)),
            PushOutcome::Written
        );
        assert_eq!(&wire.lock()[..], b"#m");
        assert_eq!(q.claim(), None);
        assert_eq!(q.drain(0, &mut out), Drained::Empty);
        // That write counts as a frame: the next message within `quiet` is queued.
        let soon = later + Duration::from_micros(100);
        assert_eq!(
            q.push_now(msg(), FrameType::Unknown, at(soon)),
            PushOutcome::Queued
        );
    }

    #[test]
    fn a_half_written_frame_is_finished_by_the_writer_before_anything_else() {
        let (q, wire, room) = direct_queue(3);
        let mut out = Vec::new();
        assert_eq!(q.drain(0, &mut out), Drained::Empty);
        let t = Instant::now();
        assert_eq!(
            q.push_now(Bytes::from_static(b"hello"), FrameType::Unknown, at(t)),
            PushOutcome::Written
        );
        assert_eq!(&wire.lock()[..], b"#he");
        // Until the writer took the rest over, producers queue.
        *room.lock() = 100;
        let later = t + Duration::from_secs(1);
        assert_eq!(
            q.push_now(Bytes::from_static(b"x"), FrameType::Unknown, at(later)),
            PushOutcome::Queued
        );
        assert_eq!(q.claim(), Some(Bytes::from_static(b"llo")));
        assert_eq!(q.claim(), None);
        assert_eq!(q.drain(0, &mut out), Drained::Messages);
        assert_eq!(out, vec![Bytes::from_static(b"x")]);
    }

    #[test]
    fn a_full_socket_or_a_close_sends_messages_through_the_queue() {
        let (q, wire, _) = direct_queue(0);
        let mut out = Vec::new();
        assert_eq!(q.drain(0, &mut out), Drained::Empty);
        let t = Instant::now();
        assert_eq!(
            q.push_now(Bytes::from_static(b"a"), FrameType::Unknown, at(t)),
            PushOutcome::Queued
        );
        assert!(wire.lock().is_empty());
        assert_eq!(q.drain(0, &mut out), Drained::Messages);

        let (q, wire, _) = direct_queue(100);
        assert_eq!(q.drain(0, &mut out), Drained::Empty);
        q.close(Disconnect::SHUTDOWN);
        assert_eq!(
            q.push_now(Bytes::from_static(b"b"), FrameType::Unknown, at(t)),
            PushOutcome::Closed
        );
        // Detached, producers never touch the socket again.
        let (q, wire2, _) = direct_queue(100);
        assert_eq!(q.drain(0, &mut out), Drained::Empty);
        q.detach_direct();
        assert_eq!(
            q.push_now(Bytes::from_static(b"c"), FrameType::Unknown, at(t)),
            PushOutcome::Queued
        );
        assert!(wire.lock().is_empty() && wire2.lock().is_empty());
    }

    fn deferred(now: Instant) -> WriteNow {
        WriteNow {
            defer: true,
            ..at(now)
        }
    }

    /// A queue whose writer parked, holding one deferred message (`room` as in
    /// [`direct_queue`]).
    fn parked_with_deferred(
        room: usize,
        message: &'static [u8],
    ) -> (Outbound, Wire, Arc<Mutex<usize>>) {
        let (q, wire, room) = direct_queue(room);
        assert_eq!(q.drain(0, &mut Vec::new()), Drained::Empty);
        let later = Instant::now() + Duration::from_secs(1);
        assert_eq!(
            q.push_now(
                Bytes::from_static(message),
                FrameType::Unknown,
                deferred(later)
            ),
            PushOutcome::Deferred
        );
        (q, wire, room)
    }

    #[test]
    fn a_deferred_message_is_written_by_its_flush_or_else_by_the_writer() {
        let mut out = Vec::new();
        // Written by the flush, as its own frame; the writer stays parked.
        let (q, wire, _) = parked_with_deferred(100, b"a");
        assert!(wire.lock().is_empty(), "nothing goes out before the flush");
        assert_eq!(q.len_bytes(), 1);
        assert!(q.flush_deferred());
        assert_eq!(&wire.lock()[..], b"#a");
        assert_eq!(q.len_bytes(), 0);
        assert!(q.writer_parked());
        assert!(!q.flush_deferred(), "flushed once");

        // Half of it fits: the writer finishes the frame before anything else.
        let (q, wire, room) = parked_with_deferred(2, b"abc");
        assert!(q.flush_deferred());
        assert_eq!(&wire.lock()[..], b"#a");
        *room.lock() = 100;
        assert_eq!(q.claim(), Some(Bytes::from_static(b"bc")));

        // A full socket: the message stays first in the queue for the writer.
        let (q, wire, room) = parked_with_deferred(0, b"a");
        assert_eq!(
            q.push(Bytes::from_static(b"b"), FrameType::Unknown),
            PushOutcome::Queued
        );
        assert!(!q.flush_deferred());
        *room.lock() = 100;
        assert!(!q.writer_parked());
        assert_eq!(q.drain(0, &mut out), Drained::Messages);
        assert_eq!(out, [Bytes::from_static(b"a"), Bytes::from_static(b"b")]);
        assert!(wire.lock().is_empty());
        out.clear();

        // A close requested before the flush: the writer sends the message, then closes.
        let (q, wire, _) = parked_with_deferred(100, b"a");
        q.close(Disconnect::SHUTDOWN);
        assert!(!q.flush_deferred());
        assert_eq!(q.drain(0, &mut out), Drained::Messages);
        assert_eq!(q.drain(0, &mut out), Drained::Close(Disconnect::SHUTDOWN));
        assert!(wire.lock().is_empty());
        out.clear();

        // Handed over instead of flushed: the writer sends it, and a late flush does not.
        let (q, wire, _) = parked_with_deferred(100, b"a");
        q.hand_over();
        assert!(!q.writer_parked());
        assert!(!q.flush_deferred());
        assert_eq!(q.drain(0, &mut out), Drained::Messages);
        assert_eq!(out, [Bytes::from_static(b"a")]);
        assert!(wire.lock().is_empty());
    }

    #[test]
    fn a_broadcast_to_a_busy_writer_keeps_the_byte_limit() {
        let q = Outbound::new(4);
        q.attach_direct(Arc::new(FakeSocket {
            wire: Arc::new(Mutex::new(Vec::new())),
            room: Arc::new(Mutex::new(100)),
        }));
        // The writer has not parked: every message goes to the queue, within the limit.
        let t = Instant::now();
        let abc = Bytes::from_static(b"abc");
        assert_eq!(
            q.push_now(abc.clone(), FrameType::Unknown, at(t)),
            PushOutcome::Queued
        );
        assert_eq!(
            q.push_now(abc.clone(), FrameType::Unknown, at(t)),
            PushOutcome::Overflow
        );
        assert_eq!(
            q.push_now(abc, FrameType::Unknown, at(t)),
            PushOutcome::Closed
        );
        let mut out = Vec::new();
        assert_eq!(q.drain(0, &mut out), Drained::Close(Disconnect::SLOW));
        assert!(out.is_empty());
    }
}
