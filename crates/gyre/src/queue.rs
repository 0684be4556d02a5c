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
use std::sync::Arc;

use bytes::Bytes;
use gyre_protocol::Disconnect;

use parking_lot::Mutex;
use tokio::sync::Notify;

use crate::metrics::{FrameType, TransportCounters};

/// Outcome of [`Outbound::push`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PushOutcome {
    /// Queued; the writer will send it.
    Queued,
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
            }),
            notify: Notify::new(),
            max_bytes,
            counters,
        }
    }

    /// Queues one encoded message of type `frame`. Never blocks.
    pub(crate) fn push(&self, message: Bytes, frame: FrameType) -> PushOutcome {
        let mut state = self.state.lock();
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
                None => Drained::Empty,
            };
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
}
