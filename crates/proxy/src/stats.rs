//! What a proxy measures, per event, for Centrifugo's `centrifugo_proxy_*` families.

use gyre::metrics::{Counter, DEFAULT_BUCKETS, Gauge, Histogram};

/// The events a proxy is called for, in the order of [`ProxyStats::events`].
pub(crate) const EVENTS: [&str; 9] = [
    "connect",
    "refresh",
    "subscribe",
    "publish",
    "rpc",
    "sub_refresh",
    "map_publish",
    "map_remove",
    "shared_poll_refresh",
];

/// The measures of one event's calls.
#[derive(Debug)]
#[non_exhaustive]
pub struct EventStats {
    /// Duration of each call, answered or not, in seconds
    /// (`centrifugo_proxy_duration_seconds`).
    pub duration: Histogram,
    /// Calls that got no usable answer: transport error, timeout, bad status, bad body
    /// (`centrifugo_proxy_errors`).
    pub errors: Counter,
    /// Calls under way (`centrifugo_proxy_inflight_requests`).
    pub inflight: Gauge,
}

impl EventStats {
    pub(crate) fn enter(&self) -> Inflight<'_> {
        self.inflight.add(1);
        Inflight(&self.inflight)
    }
}

/// One call under way: counted in `inflight` until dropped.
pub(crate) struct Inflight<'a>(&'a Gauge);

impl Drop for Inflight<'_> {
    fn drop(&mut self) {
        self.0.add(-1);
    }
}

impl Default for EventStats {
    fn default() -> Self {
        EventStats {
            duration: Histogram::with_quantiles(DEFAULT_BUCKETS),
            errors: Counter::default(),
            inflight: Gauge::default(),
        }
    }
}

/// The measures of one proxy, per event (see [`Proxy::stats`](crate::Proxy::stats)).
#[derive(Debug, Default)]
pub struct ProxyStats {
    events: [EventStats; EVENTS.len()],
}

impl ProxyStats {
    pub(crate) fn event(&self, index: usize) -> &EventStats {
        &self.events[index]
    }

    /// Each event's name (`connect`, `refresh`, `subscribe`, `publish`, `rpc`,
    /// `sub_refresh`, `map_publish`, `map_remove`, `shared_poll_refresh`, the `type` label
    /// of the metrics) with its measures.
    pub fn events(&self) -> impl Iterator<Item = (&'static str, &EventStats)> {
        EVENTS.iter().copied().zip(self.events.iter())
    }
}
