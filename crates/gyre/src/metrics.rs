//! Metrics in the Prometheus text format, named as Centrifugo names them.
//!
//! Why hand-written and not a metrics crate: the names. Dashboards and alerts built for
//! Centrifugo query counters such as `centrifugo_node_messages_sent_count` and
//! `centrifugo_client_num_server_disconnects`. The Prometheus project's Rust client
//! (`prometheus-client`) follows OpenMetrics and writes every counter as `<name>_total`,
//! so those names cannot be produced with it and every existing query would break (the
//! `exposition_keeps_centrifugo_names_and_histogram_shape` test checks that no `_total`
//! appears). So the few metrics the node keeps are plain atomics written out by
//! [`Exposition`] in the text format 0.0.4. Hot paths add to a counter once per
//! broadcast or per written frame, never per subscriber, and keep the `Arc` of a labelled
//! member (for example each connection's `TransportCounters`) instead of looking it up.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::RwLock;

/// A monotonically increasing count.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    /// Adds one.
    pub fn inc(&self) {
        self.add(1);
    }

    /// Adds `n`.
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }

    /// Current value.
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A value that goes up and down.
#[derive(Debug, Default)]
pub struct Gauge(std::sync::atomic::AtomicI64);

impl Gauge {
    /// Adds `n` (may be negative).
    pub fn add(&self, n: i64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }

    /// Current value.
    pub fn get(&self) -> i64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Default histogram buckets for durations in seconds.
pub const DURATION_BUCKETS: &[f64] = &[
    0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// A distribution of observed values over fixed buckets.
#[derive(Debug)]
pub struct Histogram {
    bounds: &'static [f64],
    buckets: Box<[AtomicU64]>,
    count: AtomicU64,
    /// Sum in nanounits, so that it can be an integer atomic.
    sum_nanos: AtomicU64,
}

impl Histogram {
    /// A histogram with these upper bounds (ascending).
    pub fn new(bounds: &'static [f64]) -> Self {
        Histogram {
            bounds,
            buckets: bounds.iter().map(|_| AtomicU64::new(0)).collect(),
            count: AtomicU64::new(0),
            sum_nanos: AtomicU64::new(0),
        }
    }

    /// Records one value.
    pub fn observe(&self, value: f64) {
        if let Some(i) = self.bounds.iter().position(|b| value <= *b) {
            self.buckets[i].fetch_add(1, Ordering::Relaxed);
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_nanos
            .fetch_add((value.max(0.0) * 1e9) as u64, Ordering::Relaxed);
    }
}

/// Metrics with one label set per value, created on first use and then cached.
#[derive(Debug)]
pub struct Family<M> {
    members: RwLock<HashMap<Vec<String>, Arc<M>>>,
    make: fn() -> M,
}

impl<M> Family<M> {
    /// An empty family whose members are made by `make`.
    pub fn new(make: fn() -> M) -> Self {
        Family {
            members: RwLock::new(HashMap::new()),
            make,
        }
    }

    /// The member for these label values (callers on hot paths keep the `Arc`).
    pub fn get(&self, labels: &[&str]) -> Arc<M> {
        if let Some(m) = self
            .members
            .read()
            .get(&labels.iter().map(|s| s.to_string()).collect::<Vec<_>>())
        {
            return m.clone();
        }
        let key: Vec<String> = labels.iter().map(|s| s.to_string()).collect();
        self.members
            .write()
            .entry(key)
            .or_insert_with(|| Arc::new((self.make)()))
            .clone()
    }

    fn snapshot(&self) -> Vec<(Vec<String>, Arc<M>)> {
        let mut all: Vec<_> = self
            .members
            .read()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        all
    }
}

/// Writes metrics in the Prometheus text format (0.0.4).
///
/// ```
/// use gyre::metrics::{Counter, Exposition};
/// let sent = Counter::default();
/// sent.add(3);
/// let mut out = String::new();
/// Exposition::new(&mut out, "centrifugo").counter("node_messages_sent_count", "Messages sent.", &[], sent.get());
/// assert!(out.contains("centrifugo_node_messages_sent_count 3\n"));
/// ```
#[derive(Debug)]
pub struct Exposition<'a> {
    out: &'a mut String,
    namespace: &'a str,
}

fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn label_text(names: &[&str], values: &[String], extra: Option<(&str, &str)>) -> String {
    let mut parts: Vec<String> = names
        .iter()
        .zip(values)
        .map(|(n, v)| format!("{n}=\"{}\"", escape(v)))
        .collect();
    if let Some((n, v)) = extra {
        parts.push(format!("{n}=\"{v}\""));
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!("{{{}}}", parts.join(","))
    }
}

impl<'a> Exposition<'a> {
    /// Writes into `out`, prefixing every name with `namespace_`.
    pub fn new(out: &'a mut String, namespace: &'a str) -> Self {
        Exposition { out, namespace }
    }

    fn header(&mut self, name: &str, help: &str, kind: &str) -> String {
        let full = if self.namespace.is_empty() {
            name.to_owned()
        } else {
            format!("{}_{name}", self.namespace)
        };
        let _ = writeln!(self.out, "# HELP {full} {help}");
        let _ = writeln!(self.out, "# TYPE {full} {kind}");
        full
    }

    /// One counter (labels as name/value pairs).
    pub fn counter(
        &mut self,
        name: &str,
        help: &str,
        labels: &[(&str, &str)],
        value: u64,
    ) -> &mut Self {
        self.single(name, help, "counter", labels, value)
    }

    /// One gauge (labels as name/value pairs).
    pub fn gauge(
        &mut self,
        name: &str,
        help: &str,
        labels: &[(&str, &str)],
        value: f64,
    ) -> &mut Self {
        self.single(name, help, "gauge", labels, value)
    }

    fn single(
        &mut self,
        name: &str,
        help: &str,
        kind: &str,
        labels: &[(&str, &str)],
        value: impl std::fmt::Display,
    ) -> &mut Self {
        let full = self.header(name, help, kind);
        let names: Vec<&str> = labels.iter().map(|(n, _)| *n).collect();
        let values: Vec<String> = labels.iter().map(|(_, v)| v.to_string()).collect();
        let _ = writeln!(
            self.out,
            "{full}{} {value}",
            label_text(&names, &values, None)
        );
        self
    }

    /// A family of counters.
    pub fn counters(
        &mut self,
        name: &str,
        help: &str,
        labels: &[&str],
        family: &Family<Counter>,
    ) -> &mut Self {
        let full = self.header(name, help, "counter");
        for (values, c) in family.snapshot() {
            let _ = writeln!(
                self.out,
                "{full}{} {}",
                label_text(labels, &values, None),
                c.get()
            );
        }
        self
    }

    /// A family of gauges.
    pub fn gauges(
        &mut self,
        name: &str,
        help: &str,
        labels: &[&str],
        family: &Family<Gauge>,
    ) -> &mut Self {
        let full = self.header(name, help, "gauge");
        for (values, g) in family.snapshot() {
            let _ = writeln!(
                self.out,
                "{full}{} {}",
                label_text(labels, &values, None),
                g.get()
            );
        }
        self
    }

    /// A family of histograms.
    pub fn histograms(
        &mut self,
        name: &str,
        help: &str,
        labels: &[&str],
        family: &Family<Histogram>,
    ) -> &mut Self {
        let full = self.header(name, help, "histogram");
        for (values, h) in family.snapshot() {
            let mut cumulative = 0;
            for (bound, bucket) in h.bounds.iter().zip(h.buckets.iter()) {
                cumulative += bucket.load(Ordering::Relaxed);
                let le = bound.to_string();
                let _ = writeln!(
                    self.out,
                    "{full}_bucket{} {cumulative}",
                    label_text(labels, &values, Some(("le", &le)))
                );
            }
            let count = h.count.load(Ordering::Relaxed);
            let sum = h.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9;
            let _ = writeln!(
                self.out,
                "{full}_bucket{} {count}",
                label_text(labels, &values, Some(("le", "+Inf")))
            );
            let _ = writeln!(
                self.out,
                "{full}_sum{} {sum}",
                label_text(labels, &values, None)
            );
            let _ = writeln!(
                self.out,
                "{full}_count{} {count}",
                label_text(labels, &values, None)
            );
        }
        self
    }
}

/// Per-transport write counters, held by each connection's outbound queue.
#[derive(Debug, Default)]
pub(crate) struct TransportCounters {
    pub(crate) messages_sent: Counter,
    pub(crate) bytes_sent: Counter,
    pub(crate) messages_received: Counter,
    pub(crate) bytes_received: Counter,
}

/// What a node measures.
#[derive(Debug)]
pub(crate) struct NodeMetrics {
    pub(crate) messages_sent: Family<Counter>,
    pub(crate) sent_publication: Arc<Counter>,
    pub(crate) sent_join: Arc<Counter>,
    pub(crate) sent_leave: Arc<Counter>,
    pub(crate) messages_received: Family<Counter>,
    pub(crate) received_publication: Arc<Counter>,
    pub(crate) received_join: Arc<Counter>,
    pub(crate) received_leave: Arc<Counter>,
    pub(crate) connections_accepted: Family<Counter>,
    pub(crate) connections_inflight: Family<Gauge>,
    pub(crate) command_duration: Family<Histogram>,
    pub(crate) reply_errors: Family<Counter>,
    pub(crate) server_disconnects: Family<Counter>,
    pub(crate) recover: Family<Counter>,
    transports: RwLock<HashMap<&'static str, Arc<TransportCounters>>>,
}

impl Default for NodeMetrics {
    fn default() -> Self {
        let messages_sent = Family::new(Counter::default);
        let messages_received = Family::new(Counter::default);
        NodeMetrics {
            sent_publication: messages_sent.get(&["publication"]),
            sent_join: messages_sent.get(&["join"]),
            sent_leave: messages_sent.get(&["leave"]),
            received_publication: messages_received.get(&["publication"]),
            received_join: messages_received.get(&["join"]),
            received_leave: messages_received.get(&["leave"]),
            messages_sent,
            messages_received,
            connections_accepted: Family::new(Counter::default),
            connections_inflight: Family::new(Gauge::default),
            command_duration: Family::new(|| Histogram::new(DURATION_BUCKETS)),
            reply_errors: Family::new(Counter::default),
            server_disconnects: Family::new(Counter::default),
            recover: Family::new(Counter::default),
            transports: RwLock::new(HashMap::new()),
        }
    }
}

impl NodeMetrics {
    pub(crate) fn transport(&self, name: &'static str) -> Arc<TransportCounters> {
        if let Some(t) = self.transports.read().get(name) {
            return t.clone();
        }
        self.transports.write().entry(name).or_default().clone()
    }

    pub(crate) fn write(&self, e: &mut Exposition<'_>) {
        e.counters(
            "node_messages_sent_count",
            "Number of messages sent by the node to clients.",
            &["type"],
            &self.messages_sent,
        )
        .counters(
            "node_messages_received_count",
            "Number of messages received from the broker.",
            &["type"],
            &self.messages_received,
        )
        .counters(
            "client_connections_accepted",
            "Number of accepted connections.",
            &["transport"],
            &self.connections_accepted,
        )
        .gauges(
            "client_connections_inflight",
            "Number of connections currently open.",
            &["transport"],
            &self.connections_inflight,
        )
        .histograms(
            "client_command_duration_seconds",
            "Client command duration.",
            &["method"],
            &self.command_duration,
        )
        .counters(
            "client_num_reply_errors",
            "Number of errors in replies to clients.",
            &["method", "code"],
            &self.reply_errors,
        )
        .counters(
            "client_num_server_disconnects",
            "Number of server-initiated disconnects.",
            &["code"],
            &self.server_disconnects,
        )
        .counters(
            "client_recover",
            "Count of recover operations.",
            &["recovered"],
            &self.recover,
        );
        let transports: Vec<_> = {
            let mut t: Vec<_> = self
                .transports
                .read()
                .iter()
                .map(|(k, v)| (*k, v.clone()))
                .collect();
            t.sort_by_key(|(k, _)| *k);
            t
        };
        for (name, help, pick) in [
            (
                "transport_messages_sent",
                "Number of messages sent over transports.",
                0,
            ),
            (
                "transport_messages_sent_size",
                "Bytes sent over transports.",
                1,
            ),
            (
                "transport_messages_received",
                "Number of messages received over transports.",
                2,
            ),
            (
                "transport_messages_received_size",
                "Bytes received over transports.",
                3,
            ),
        ] {
            let family = Family::new(Counter::default);
            for (transport, c) in &transports {
                let v = match pick {
                    0 => c.messages_sent.get(),
                    1 => c.bytes_sent.get(),
                    2 => c.messages_received.get(),
                    _ => c.bytes_received.get(),
                };
                family.get(&[transport]).add(v);
            }
            e.counters(name, help, &["transport"], &family);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition_keeps_centrifugo_names_and_histogram_shape() {
        let m = NodeMetrics::default();
        m.sent_publication.add(5);
        m.command_duration.get(&["subscribe"]).observe(0.003);
        m.transport("websocket").messages_sent.add(7);
        let mut out = String::new();
        m.write(&mut Exposition::new(&mut out, "centrifugo"));
        assert!(out.contains("# TYPE centrifugo_node_messages_sent_count counter\n"));
        assert!(out.contains("centrifugo_node_messages_sent_count{type=\"publication\"} 5\n"));
        assert!(out.contains("centrifugo_client_command_duration_seconds_bucket{method=\"subscribe\",le=\"0.0025\"} 0\n"));
        assert!(out.contains("centrifugo_client_command_duration_seconds_bucket{method=\"subscribe\",le=\"0.005\"} 1\n"));
        assert!(out.contains(
            "centrifugo_client_command_duration_seconds_count{method=\"subscribe\"} 1\n"
        ));
        assert!(out.contains("centrifugo_transport_messages_sent{transport=\"websocket\"} 7\n"));
        assert!(!out.contains("_total"));
    }
}
