//! Latency histograms, per-client rate statistics and number formatting.

use hdrhistogram::Histogram;
use parking_lot::Mutex;
use serde_json::{Value, json};

/// Highest latency recorded (ns); larger values are clamped.
const MAX_NS: u64 = 600_000_000_000;

/// A new latency histogram in nanoseconds, 3 significant figures.
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_NS, 3).expect("valid histogram bounds")
}

/// A latency histogram split in shards so that many tasks can record without
/// contending on one lock. Tasks record a whole frame's worth of samples at once.
#[derive(Debug)]
pub struct ShardedHistogram {
    shards: Vec<Mutex<Histogram<u64>>>,
}

impl ShardedHistogram {
    /// `n` shards.
    pub fn new(n: usize) -> Self {
        ShardedHistogram {
            shards: (0..n.max(1)).map(|_| Mutex::new(new_histogram())).collect(),
        }
    }

    /// Records `samples` (ns) into the shard picked by `key`, then clears `samples`.
    pub fn record(&self, key: usize, samples: &mut Vec<u64>) {
        if samples.is_empty() {
            return;
        }
        let mut h = self.shards[key % self.shards.len()].lock();
        for &s in samples.iter() {
            h.saturating_record(s.max(1));
        }
        samples.clear();
    }

    /// All shards merged.
    pub fn merged(&self) -> Histogram<u64> {
        let mut all = new_histogram();
        for s in &self.shards {
            all.add(&*s.lock()).expect("same bounds");
        }
        all
    }
}

/// Latency percentiles of a histogram in microseconds.
pub fn latency_json(h: &Histogram<u64>) -> Value {
    let us = |ns: u64| (ns as f64 / 100.0).round() / 10.0;
    if h.is_empty() {
        return json!({"count": 0});
    }
    json!({
        "count": h.len(),
        "mean": us(h.mean() as u64),
        "p50": us(h.value_at_quantile(0.50)),
        "p90": us(h.value_at_quantile(0.90)),
        "p99": us(h.value_at_quantile(0.99)),
        "p99_9": us(h.value_at_quantile(0.999)),
        "max": us(h.max()),
    })
}

/// One line of latency percentiles in microseconds or milliseconds.
pub fn latency_line(h: &Histogram<u64>) -> String {
    if h.is_empty() {
        return "no samples".into();
    }
    format!(
        "p50 {} | p90 {} | p99 {} | p99.9 {} | max {} ({} samples)",
        human_ns(h.value_at_quantile(0.50)),
        human_ns(h.value_at_quantile(0.90)),
        human_ns(h.value_at_quantile(0.99)),
        human_ns(h.value_at_quantile(0.999)),
        human_ns(h.max()),
        commas(h.len() as f64),
    )
}

/// `1234 µs`-style duration from nanoseconds.
pub fn human_ns(ns: u64) -> String {
    if ns < 10_000_000 {
        format!("{:.0} µs", ns as f64 / 1e3)
    } else if ns < 10_000_000_000 {
        format!("{:.1} ms", ns as f64 / 1e6)
    } else {
        format!("{:.2} s", ns as f64 / 1e9)
    }
}

/// min / avg / max / population stddev of a set of rates.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Spread {
    /// Smallest value.
    pub min: f64,
    /// Mean.
    pub avg: f64,
    /// Largest value.
    pub max: f64,
    /// Population standard deviation.
    pub stddev: f64,
}

impl Spread {
    /// Spread of `values` (all zero when empty).
    pub fn of(values: &[f64]) -> Spread {
        if values.is_empty() {
            return Spread::default();
        }
        let n = values.len() as f64;
        let avg = values.iter().sum::<f64>() / n;
        let var = values.iter().map(|v| (v - avg).powi(2)).sum::<f64>() / n;
        Spread {
            min: values.iter().copied().fold(f64::INFINITY, f64::min),
            avg,
            max: values.iter().copied().fold(f64::NEG_INFINITY, f64::max),
            stddev: var.sqrt(),
        }
    }

    /// As a JSON object with rounded values.
    pub fn json(&self) -> Value {
        json!({
            "min": self.min.round(),
            "avg": self.avg.round(),
            "max": self.max.round(),
            "stddev": self.stddev.round(),
        })
    }
}

/// `1234567.8` → `"1,234,568"`.
pub fn commas(v: f64) -> String {
    let s = format!("{:.0}", v.max(0.0));
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Median of `values` (mean of the two middle ones for an even count).
pub fn median(values: &[f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    Some(if v.len().is_multiple_of(2) {
        (v[mid - 1] + v[mid]) / 2.0
    } else {
        v[mid]
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spread_and_median() {
        let s = Spread::of(&[2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0]);
        assert_eq!((s.min, s.avg, s.max, s.stddev), (2.0, 5.0, 9.0, 2.0));
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), Some(2.5));
        assert_eq!(median(&[]), None);
    }

    #[test]
    fn commas_group_thousands() {
        assert_eq!(commas(0.0), "0");
        assert_eq!(commas(999.4), "999");
        assert_eq!(commas(1000.0), "1,000");
        assert_eq!(commas(1234567.8), "1,234,568");
    }

    #[test]
    fn sharded_histogram_merges_every_sample() {
        let h = ShardedHistogram::new(4);
        for key in 0..10 {
            let mut samples = vec![1_000, 2_000, 1_000_000];
            h.record(key, &mut samples);
            assert!(samples.is_empty());
        }
        let all = h.merged();
        assert_eq!(all.len(), 30);
        assert_eq!(latency_json(&all)["p50"], 2.0);
        assert!(all.max() >= 1_000_000);
    }
}

/// The one-line JSON result with `"scenario"` as the first key (serde_json sorts the
/// other keys).
pub fn json_line(v: &Value) -> String {
    let Some(map) = v.as_object() else {
        return v.to_string();
    };
    let mut out = String::from("{");
    let first = map.get("scenario").map(|s| ("scenario", s));
    for (i, (k, val)) in first
        .into_iter()
        .chain(
            map.iter()
                .filter(|(k, _)| *k != "scenario")
                .map(|(k, v)| (k.as_str(), v)),
        )
        .enumerate()
    {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&Value::String(k.to_owned()).to_string());
        out.push(':');
        out.push_str(&val.to_string());
    }
    out.push('}');
    out
}

#[cfg(test)]
mod json_line_tests {
    use super::*;

    #[test]
    fn scenario_comes_first_and_the_line_parses() {
        let v = json!({"a": 1, "scenario": "fanout", "z": {"k": [1, 2]}});
        let line = json_line(&v);
        assert!(line.starts_with(r#"{"scenario":"fanout","a":1"#), "{line}");
        assert!(!line.contains('\n'));
        assert_eq!(serde_json::from_str::<Value>(&line).unwrap(), v);
    }
}
