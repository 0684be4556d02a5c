//! Metrics in the Prometheus text format, named as Centrifugo names them.
//!
//! Why hand-written and not a metrics crate: the names. Dashboards and alerts built for
//! Centrifugo query counters such as `centrifugo_node_messages_sent_count` and
//! `centrifugo_client_num_server_disconnects`. The Prometheus project's Rust client
//! (`prometheus-client`) follows OpenMetrics and writes every counter as `<name>_total`,
//! so those names cannot be produced with it and every existing query would break (the
//! tests check that no `_total` suffix is added). So the metrics are plain atomics written
//! out by [`Exposition`] in the text format 0.0.4.
//!
//! Hot paths never look a label set up: a label set that a hot path uses is resolved once
//! (an array indexed by an enum, or an `Arc` kept by the connection), and the maps of
//! [`Family`] serve only rare events (an error code, a disconnect).
//!
//! Centrifugo exposes each duration twice: a summary under the historical name (for
//! example `centrifugo_client_command_duration_seconds`) and a histogram under the name
//! with `_histogram` appended. Both come from one [`Histogram`] made with
//! [`Histogram::with_quantiles`]; the summary's quantile lines (0.5, 0.99, 0.999, as
//! Centrifugo's objectives) come from its sliding window (see `window.rs`).

mod node;
mod window;

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use parking_lot::RwLock;

pub(crate) use node::{
    Action, ClientMethod, ConnectionStats, FrameType, Message, NodeMetrics, SurveyOp,
    TransportCounters,
};
use window::Window;

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
pub struct Gauge(AtomicI64);

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

/// Buckets of `client_command_duration_seconds_histogram` and
/// `client_ping_pong_duration_seconds`.
pub const COMMAND_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Buckets of `node_broadcast_duration_seconds`.
pub const BROADCAST_BUCKETS: &[f64] = &[
    0.000001, 0.000005, 0.00001, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.005, 0.01, 0.025, 0.05,
    0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The Prometheus Go client's default buckets, which Centrifugo uses for API and proxy
/// durations.
pub const DEFAULT_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Buckets of `node_pub_sub_lag_seconds`.
pub const PUB_SUB_LAG_BUCKETS: &[f64] = &[
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0,
];

/// Buckets of `client_recovered_publications` (a count of publications, not seconds).
pub const RECOVERED_PUBLICATIONS_BUCKETS: &[f64] = &[
    0.0, 1.0, 2.0, 3.0, 5.0, 10.0, 20.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2000.0, 5000.0, 10000.0,
];

/// Buckets of `node_survey_duration_seconds_histogram`.
pub const SURVEY_BUCKETS: &[f64] = &[
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The quantiles of Centrifugo's summaries (its `Objectives`).
pub const QUANTILES: &[f64] = &[0.5, 0.99, 0.999];

/// A distribution of observed values over fixed buckets.
#[derive(Debug)]
pub struct Histogram {
    bounds: &'static [f64],
    buckets: Box<[AtomicU64]>,
    count: AtomicU64,
    /// Sum in nanounits, so that it can be an integer atomic.
    sum_nanos: AtomicU64,
    /// Recent observations for the quantile lines of a summary; made on first use.
    window: Option<std::sync::OnceLock<Box<Window>>>,
}

impl Histogram {
    /// A histogram with these upper bounds (ascending).
    pub fn new(bounds: &'static [f64]) -> Self {
        Histogram {
            bounds,
            buckets: bounds.iter().map(|_| AtomicU64::new(0)).collect(),
            count: AtomicU64::new(0),
            sum_nanos: AtomicU64::new(0),
            window: None,
        }
    }

    /// A histogram that also keeps a sliding window of recent observations, so that it
    /// can be written as a summary with quantile lines too ([`Exposition::durations`]).
    pub fn with_quantiles(bounds: &'static [f64]) -> Self {
        Histogram {
            window: Some(std::sync::OnceLock::new()),
            ..Histogram::new(bounds)
        }
    }

    /// Records one value.
    pub fn observe(&self, value: f64) {
        self.record(value, None);
    }

    fn record(&self, value: f64, now: Option<std::time::Instant>) {
        if let Some(i) = self.bounds.iter().position(|b| value <= *b) {
            self.buckets[i].fetch_add(1, Ordering::Relaxed);
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_nanos
            .fetch_add((value.max(0.0) * 1e9) as u64, Ordering::Relaxed);
        if let Some(window) = &self.window {
            let now = now.unwrap_or_else(std::time::Instant::now);
            window.get_or_init(Box::default).record(value, now);
        }
    }

    /// Records the time elapsed since `started`, in seconds.
    pub fn observe_since(&self, started: std::time::Instant) {
        let now = std::time::Instant::now();
        self.record(
            now.saturating_duration_since(started).as_secs_f64(),
            Some(now),
        );
    }

    /// The values at [`QUANTILES`] over the window (NaN when it holds nothing, as the
    /// Prometheus Go client writes an empty summary); `None` without a window.
    fn quantiles(&self) -> Option<[f64; 3]> {
        let slot = self.window.as_ref()?;
        let Some(w) = slot.get() else {
            return Some([f64::NAN; 3]);
        };
        let mut samples = w.recent(std::time::Instant::now());
        let mut out = [f64::NAN; 3];
        for (o, q) in out.iter_mut().zip(QUANTILES) {
            *o = window::quantile(&mut samples, *q);
        }
        Some(out)
    }

    /// Number of observations.
    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    fn sum(&self) -> f64 {
        self.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9
    }
}

/// Metrics with one label set per value, created on first use. For rare events only:
/// a lookup builds the key.
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
        let key: Vec<String> = labels.iter().map(|s| (*s).to_owned()).collect();
        if let Some(m) = self.members.read().get(&key) {
            return m.clone();
        }
        self.members
            .write()
            .entry(key)
            .or_insert_with(|| Arc::new((self.make)()))
            .clone()
    }

    /// Every member with its label values, sorted by them.
    pub fn snapshot(&self) -> Vec<(Vec<String>, Arc<M>)> {
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

/// The type of a metric family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Goes only up.
    Counter,
    /// Goes up and down.
    Gauge,
    /// Buckets, sum and count.
    Histogram,
    /// Quantiles over a sliding window, sum and count.
    Summary,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
            Kind::Summary => "summary",
        }
    }
}

/// Writes metrics in the Prometheus text format (0.0.4): a family header, then its
/// samples.
///
/// ```
/// use gyre::metrics::{Counter, Exposition, Kind};
/// let sent = Counter::default();
/// sent.add(3);
/// let mut out = String::new();
/// let mut e = Exposition::new(&mut out, "centrifugo");
/// e.family("node_messages_sent_count", "Messages sent.", Kind::Counter);
/// e.value(&[("type", "publication")], sent.get());
/// assert!(out.contains("# TYPE centrifugo_node_messages_sent_count counter\n"));
/// assert!(out.contains("centrifugo_node_messages_sent_count{type=\"publication\"} 3\n"));
/// ```
#[derive(Debug)]
pub struct Exposition<'a> {
    out: &'a mut String,
    namespace: &'a str,
    current: String,
}

fn write_labels(out: &mut String, labels: &[(&str, &str)], le: Option<&str>) {
    if labels.is_empty() && le.is_none() {
        return;
    }
    out.push('{');
    let mut first = true;
    for (name, value) in labels.iter().copied().chain(le.map(|v| ("le", v))) {
        if !first {
            out.push(',');
        }
        first = false;
        out.push_str(name);
        out.push_str("=\"");
        for c in value.chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '"' => out.push_str("\\\""),
                '\n' => out.push_str("\\n"),
                c => out.push(c),
            }
        }
        out.push('"');
    }
    out.push('}');
}

impl<'a> Exposition<'a> {
    /// Writes into `out`, prefixing every name with `namespace_` (none when empty).
    pub fn new(out: &'a mut String, namespace: &'a str) -> Self {
        Exposition {
            out,
            namespace,
            current: String::new(),
        }
    }

    /// Starts a family: its `HELP` and `TYPE` lines. Samples written next belong to it.
    pub fn family(&mut self, name: &str, help: &str, kind: Kind) -> &mut Self {
        self.current.clear();
        if !self.namespace.is_empty() {
            self.current.push_str(self.namespace);
            self.current.push('_');
        }
        self.current.push_str(name);
        let _ = writeln!(self.out, "# HELP {} {help}", self.current);
        let _ = writeln!(self.out, "# TYPE {} {}", self.current, kind.name());
        self
    }

    /// One sample of the current counter or gauge family.
    pub fn value(&mut self, labels: &[(&str, &str)], value: impl std::fmt::Display) -> &mut Self {
        self.out.push_str(&self.current);
        write_labels(self.out, labels, None);
        let _ = writeln!(self.out, " {value}");
        self
    }

    fn suffixed(&mut self, suffix: &str, labels: &[(&str, &str)], le: Option<&str>, v: f64) {
        self.out.push_str(&self.current);
        self.out.push_str(suffix);
        write_labels(self.out, labels, le);
        let _ = writeln!(self.out, " {v}");
    }

    /// The samples of one histogram of the current histogram family.
    pub fn histogram(&mut self, labels: &[(&str, &str)], h: &Histogram) -> &mut Self {
        // Count first: a scrape racing observations must never show a bucket above +Inf.
        let count = h.count();
        let mut cumulative = 0;
        for (bound, bucket) in h.bounds.iter().zip(h.buckets.iter()) {
            cumulative += bucket.load(Ordering::Relaxed);
            let le = bucket_bound(*bound);
            self.suffixed("_bucket", labels, Some(&le), cumulative.min(count) as f64);
        }
        self.suffixed("_bucket", labels, Some("+Inf"), count as f64);
        self.suffixed("_sum", labels, None, h.sum());
        self.suffixed("_count", labels, None, count as f64);
        self
    }

    /// The samples of one summary of the current summary family: the quantile lines
    /// (when `h` keeps a window), sum and count.
    pub fn summary(&mut self, labels: &[(&str, &str)], h: &Histogram) -> &mut Self {
        if let Some(values) = h.quantiles() {
            for (q, v) in QUANTILES.iter().zip(values) {
                let q = q.to_string();
                self.out.push_str(&self.current);
                let mut with_q: Vec<(&str, &str)> = labels.to_vec();
                with_q.push(("quantile", &q));
                write_labels(self.out, &with_q, None);
                let _ = writeln!(self.out, " {}", go_float(v));
            }
        }
        let count = h.count();
        self.suffixed("_sum", labels, None, h.sum());
        self.suffixed("_count", labels, None, count as f64);
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
        self.family(name, help, Kind::Counter);
        for (values, c) in family.snapshot() {
            let pairs = pairs(labels, &values);
            self.value(&pairs, c.get());
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
        self.family(name, help, Kind::Gauge);
        for (values, g) in family.snapshot() {
            let pairs = pairs(labels, &values);
            self.value(&pairs, g.get());
        }
        self
    }

    /// A family of durations written twice, as Centrifugo does: a summary named `name`
    /// and a histogram named `name_histogram`.
    pub fn durations<'l>(
        &mut self,
        name: &str,
        help: &str,
        members: &[(Vec<(&'l str, &'l str)>, &Histogram)],
    ) -> &mut Self {
        self.family(name, help, Kind::Summary);
        for (labels, h) in members {
            self.summary(labels, h);
        }
        self.family(&format!("{name}_histogram"), help, Kind::Histogram);
        for (labels, h) in members {
            self.histogram(labels, h);
        }
        self
    }
}

/// A sample value as the text format spells the special ones.
fn go_float(v: f64) -> String {
    if v.is_nan() {
        "NaN".to_owned()
    } else {
        v.to_string()
    }
}

/// A bucket bound as Prometheus' Go client writes it (Go's shortest `%g`: `1e-06`,
/// `0.0001`, `2.5`), so `le` values are the same strings as Centrifugo's.
fn bucket_bound(v: f64) -> String {
    let a = v.abs();
    if a != 0.0 && !(1e-4..1e21).contains(&a) {
        let s = format!("{v:e}");
        if let Some((mantissa, exp)) = s.split_once('e') {
            let (sign, digits) = match exp.strip_prefix('-') {
                Some(d) => ('-', d),
                None => ('+', exp),
            };
            return format!("{mantissa}e{sign}{digits:0>2}");
        }
        s
    } else {
        v.to_string()
    }
}

fn pairs<'l>(names: &[&'l str], values: &'l [String]) -> Vec<(&'l str, &'l str)> {
    names
        .iter()
        .copied()
        .zip(values.iter().map(String::as_str))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_exposition_is_cumulative_with_inf_sum_and_count() {
        let h = Histogram::new(&[0.1, 1.0]);
        h.observe(0.05);
        h.observe(0.5);
        h.observe(7.0);
        let mut out = String::new();
        let mut e = Exposition::new(&mut out, "ns");
        e.family("d", "D.", Kind::Histogram)
            .histogram(&[("m", "x")], &h);
        assert_eq!(
            out,
            "# HELP ns_d D.\n# TYPE ns_d histogram\n\
             ns_d_bucket{m=\"x\",le=\"0.1\"} 1\n\
             ns_d_bucket{m=\"x\",le=\"1\"} 2\n\
             ns_d_bucket{m=\"x\",le=\"+Inf\"} 3\n\
             ns_d_sum{m=\"x\"} 7.55\n\
             ns_d_count{m=\"x\"} 3\n"
        );
    }

    #[test]
    fn durations_write_a_summary_and_a_histogram() {
        let h = Histogram::new(DEFAULT_BUCKETS);
        h.observe(0.02);
        let mut out = String::new();
        Exposition::new(&mut out, "c").durations(
            "api_command_duration_seconds",
            "API.",
            &[(vec![("protocol", "http"), ("method", "publish")], &h)],
        );
        assert!(out.contains("# TYPE c_api_command_duration_seconds summary\n"));
        assert!(out.contains(
            "c_api_command_duration_seconds_count{protocol=\"http\",method=\"publish\"} 1\n"
        ));
        assert!(out.contains("# TYPE c_api_command_duration_seconds_histogram histogram\n"));
        assert!(out.contains(
            "c_api_command_duration_seconds_histogram_bucket{protocol=\"http\",method=\"publish\",le=\"0.025\"} 1\n"
        ));
        assert!(!out.contains("_total"));
    }

    #[test]
    fn summaries_write_quantiles_from_the_window() {
        let h = Histogram::with_quantiles(DEFAULT_BUCKETS);
        let mut out = String::new();
        Exposition::new(&mut out, "c")
            .family("d", "D.", Kind::Summary)
            .summary(&[("m", "x")], &h);
        assert!(out.contains("c_d{m=\"x\",quantile=\"0.5\"} NaN\n"), "{out}");
        for v in 1..=200 {
            h.observe(f64::from(v) / 200.0);
        }
        let mut out = String::new();
        Exposition::new(&mut out, "c")
            .family("d", "D.", Kind::Summary)
            .summary(&[("m", "x")], &h);
        assert!(out.contains("c_d{m=\"x\",quantile=\"0.5\"} 0.5"), "{out}");
        assert!(out.contains("c_d{m=\"x\",quantile=\"0.99\"} 0.99"), "{out}");
        assert!(out.contains("c_d{m=\"x\",quantile=\"0.999\"} 1\n"), "{out}");
        assert!(out.contains("c_d_count{m=\"x\"} 200\n"), "{out}");
        // A histogram without a window writes no quantile lines.
        let plain = Histogram::new(DEFAULT_BUCKETS);
        let mut out = String::new();
        Exposition::new(&mut out, "c")
            .family("d", "D.", Kind::Summary)
            .summary(&[], &plain);
        assert!(!out.contains("quantile"), "{out}");
    }

    #[test]
    fn bucket_bounds_are_written_as_go_writes_them() {
        assert_eq!(bucket_bound(0.000001), "1e-06");
        assert_eq!(bucket_bound(0.00005), "5e-05");
        assert_eq!(bucket_bound(0.0001), "0.0001");
        assert_eq!(bucket_bound(0.00025), "0.00025");
        assert_eq!(bucket_bound(2.5), "2.5");
        assert_eq!(bucket_bound(10.0), "10");
    }

    #[test]
    fn label_values_are_escaped() {
        let mut out = String::new();
        Exposition::new(&mut out, "")
            .family("g", "G.", Kind::Gauge)
            .value(&[("v", "a\"b\\c\nd")], 1);
        assert!(out.ends_with("g{v=\"a\\\"b\\\\c\\nd\"} 1\n"), "{out}");
    }

    #[test]
    fn families_list_members_sorted() {
        let f = Family::new(Counter::default);
        f.get(&["b"]).add(2);
        f.get(&["a"]).inc();
        f.get(&["b"]).inc();
        let mut out = String::new();
        Exposition::new(&mut out, "x").counters("c", "C.", &["l"], &f);
        assert!(out.ends_with("x_c{l=\"a\"} 1\nx_c{l=\"b\"} 3\n"), "{out}");
    }
}
