//! [`Recorder`]: an engine event handler that keeps everything it is given, for tests of
//! brokers and controllers.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use gyre::{BrokerEventHandler, ClientInfo, ControlEventHandler, Publication, StreamPosition};
use parking_lot::Mutex;
use tokio::sync::watch;

/// One call of [`BrokerEventHandler::handle_publication`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivered {
    /// The channel.
    pub channel: String,
    /// The publication.
    pub publication: Publication,
    /// Its stream position.
    pub position: StreamPosition,
    /// Whether the publisher asked for deltas.
    pub use_delta: bool,
    /// The previous publication of the stream, when the broker gave one.
    pub prev: Option<Publication>,
}

/// Anything a [`Recorder`] was told, in arrival order.
// Test events are few; matching on an unboxed publication keeps the tests plain.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seen {
    /// A publication.
    Publication(Delivered),
    /// A join: channel and who joined.
    Join(String, ClientInfo),
    /// A leave: channel and who left.
    Leave(String, ClientInfo),
    /// The broker re-established its subscriptions.
    Resubscribed,
    /// A control message.
    Control(Bytes),
}

/// Records every broker and control event given to it.
///
/// Read it either as a whole ([`Recorder::publications`], [`Recorder::offsets`], … polled
/// with [`eventually`]) or in order with a [`Reader`] from [`Recorder::reader`], which
/// waits for the next event.
#[derive(Debug)]
pub struct Recorder {
    seen: Mutex<Vec<Seen>>,
    /// Bumped after every event so that readers wake up.
    count: watch::Sender<usize>,
}

impl Default for Recorder {
    fn default() -> Self {
        Recorder {
            seen: Mutex::new(Vec::new()),
            count: watch::Sender::new(0),
        }
    }
}

impl Recorder {
    /// An empty recorder, shared so that it can be given to an engine.
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    fn push(&self, seen: Seen) {
        let len = {
            let mut all = self.seen.lock();
            all.push(seen);
            all.len()
        };
        self.count.send_replace(len);
    }

    /// Every publication, in delivery order.
    pub fn publications(&self) -> Vec<Delivered> {
        self.seen
            .lock()
            .iter()
            .filter_map(|s| match s {
                Seen::Publication(d) => Some(d.clone()),
                _ => None,
            })
            .collect()
    }

    /// Offsets of the publications of `channel`, in delivery order.
    pub fn offsets(&self, channel: &str) -> Vec<u64> {
        self.of_channel(channel, |d| d.publication.offset)
    }

    /// Payloads of the publications of `channel`, in delivery order.
    pub fn datas(&self, channel: &str) -> Vec<Bytes> {
        self.of_channel(channel, |d| d.publication.data.clone())
    }

    fn of_channel<T>(&self, channel: &str, f: impl Fn(&Delivered) -> T) -> Vec<T> {
        self.publications()
            .iter()
            .filter(|d| d.channel == channel)
            .map(f)
            .collect()
    }

    /// Every join: channel and client.
    pub fn joins(&self) -> Vec<(String, ClientInfo)> {
        self.filter(|s| match s {
            Seen::Join(ch, info) => Some((ch.clone(), info.clone())),
            _ => None,
        })
    }

    /// Every leave: channel and client.
    pub fn leaves(&self) -> Vec<(String, ClientInfo)> {
        self.filter(|s| match s {
            Seen::Leave(ch, info) => Some((ch.clone(), info.clone())),
            _ => None,
        })
    }

    /// Every control message.
    pub fn control(&self) -> Vec<Bytes> {
        self.filter(|s| match s {
            Seen::Control(data) => Some(data.clone()),
            _ => None,
        })
    }

    /// How many times the broker said it resubscribed.
    pub fn resubscribed(&self) -> usize {
        self.filter(|s| matches!(s, Seen::Resubscribed).then_some(()))
            .len()
    }

    fn filter<T>(&self, f: impl Fn(&Seen) -> Option<T>) -> Vec<T> {
        self.seen.lock().iter().filter_map(f).collect()
    }

    /// Reads the events one by one, from the first.
    pub fn reader(self: &Arc<Self>) -> Reader {
        Reader {
            recorder: self.clone(),
            next: 0,
        }
    }
}

impl BrokerEventHandler for Recorder {
    fn handle_publication(
        &self,
        channel: &str,
        publication: Publication,
        position: StreamPosition,
        use_delta: bool,
        prev: Option<Publication>,
    ) {
        self.push(Seen::Publication(Delivered {
            channel: channel.to_owned(),
            publication,
            position,
            use_delta,
            prev,
        }));
    }

    fn handle_join(&self, channel: &str, info: ClientInfo) {
        self.push(Seen::Join(channel.to_owned(), info));
    }

    fn handle_leave(&self, channel: &str, info: ClientInfo) {
        self.push(Seen::Leave(channel.to_owned(), info));
    }

    fn handle_resubscribed(&self) {
        self.push(Seen::Resubscribed);
    }
}

impl ControlEventHandler for Recorder {
    fn handle_control(&self, data: Bytes) {
        self.push(Seen::Control(data));
    }
}

/// Reads a [`Recorder`]'s events in order, waiting for those not there yet.
#[derive(Debug)]
pub struct Reader {
    recorder: Arc<Recorder>,
    next: usize,
}

impl Reader {
    /// The next event, if it came already.
    pub fn try_next(&mut self) -> Option<Seen> {
        let seen = self.recorder.seen.lock().get(self.next).cloned();
        if seen.is_some() {
            self.next += 1;
        }
        seen
    }

    /// The next event; panics when none comes within `wait`.
    pub async fn next(&mut self, wait: Duration) -> Seen {
        // Subscribing before looking means an event pushed in between still wakes us.
        let mut count = self.recorder.count.subscribe();
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            if let Some(seen) = self.try_next() {
                return seen;
            }
            tokio::time::timeout_at(deadline, count.changed())
                .await
                .expect("no event in time")
                .expect("the recorder lives as long as the reader");
        }
    }

    /// The next event, which must be a publication: its channel and payload. Waits up to
    /// five seconds.
    pub async fn next_publication(&mut self) -> (String, Bytes) {
        match self.next(Duration::from_secs(5)).await {
            Seen::Publication(d) => (d.channel, d.publication.data),
            other => panic!("expected a publication, got {other:?}"),
        }
    }
}

/// Polls `cond` every 20 ms until it holds (true) or `within` passed (false).
pub async fn eventually(within: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if cond() {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
