//! The sliding window behind a summary's quantile lines.
//!
//! Centrifugo's summaries are the Prometheus Go client's: quantiles over the last ten
//! minutes, kept as five age buckets of two minutes each. The same shape here, with a
//! uniform sample per age bucket instead of the Go client's streaming estimator: each
//! bucket keeps up to [`SAMPLES`] of its observations (reservoir sampling), and a scrape
//! merges the live buckets, each sample weighted by how many observations it stands for.
//!
//! Recording is a few relaxed atomics and a per-thread random number: no lock and no
//! allocation, so it stays on the hot path of client commands. Races between recorders
//! (two threads writing one slot, a sample landing in a bucket being recycled) cost a
//! sample's accuracy, never a wrong count: counts and sums live in the histogram.

use std::cell::Cell;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// Observations kept per age bucket.
const SAMPLES: usize = 256;
/// Age buckets, as the Go client's default `AgeBuckets`.
const BUCKETS: u64 = 5;
/// Seconds one age bucket covers: `BUCKETS` of them make the Go client's ten-minute
/// `MaxAge`.
const BUCKET_SECONDS: u64 = 120;

fn epoch(now: Instant) -> u64 {
    static START: OnceLock<Instant> = OnceLock::new();
    let start = *START.get_or_init(Instant::now);
    // Epoch 0 marks a bucket never used.
    now.saturating_duration_since(start).as_secs() / BUCKET_SECONDS + 1
}

/// A cheap per-thread random number (xorshift), enough to pick reservoir slots.
fn random() -> u64 {
    thread_local! {
        static STATE: Cell<u64> = const { Cell::new(0) };
    }
    STATE.with(|s| {
        let mut x = s.get();
        if x == 0 {
            // Seeded from the address of the thread's own state: distinct per thread.
            x = (s as *const Cell<u64> as u64) | 1;
        }
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        s.set(x);
        x
    })
}

#[derive(Debug)]
struct AgeBucket {
    epoch: AtomicU64,
    /// Observations recorded in this epoch (the sample holds `min(seen, SAMPLES)`).
    seen: AtomicU64,
    /// `f64` bits.
    samples: Box<[AtomicU64]>,
}

impl Default for AgeBucket {
    fn default() -> Self {
        AgeBucket {
            epoch: AtomicU64::new(0),
            seen: AtomicU64::new(0),
            samples: (0..SAMPLES).map(|_| AtomicU64::new(0)).collect(),
        }
    }
}

/// Recent observations of one series.
#[derive(Debug, Default)]
pub(crate) struct Window {
    buckets: [AgeBucket; BUCKETS as usize],
}

impl Window {
    pub(crate) fn record(&self, value: f64, now: Instant) {
        let epoch = epoch(now);
        let bucket = &self.buckets[(epoch % BUCKETS) as usize];
        let current = bucket.epoch.load(Ordering::Acquire);
        if current != epoch
            && bucket
                .epoch
                .compare_exchange(current, epoch, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
        {
            // This thread recycles the bucket for the new epoch.
            bucket.seen.store(0, Ordering::Release);
        }
        let n = bucket.seen.fetch_add(1, Ordering::AcqRel) as usize;
        let slot = if n < SAMPLES {
            n
        } else {
            // Algorithm R: keep the n-th observation with probability SAMPLES / (n + 1).
            let j = (random() % (n as u64 + 1)) as usize;
            if j >= SAMPLES {
                return;
            }
            j
        };
        bucket.samples[slot].store(value.to_bits(), Ordering::Relaxed);
    }

    /// The sampled observations of the last `BUCKETS` epochs, each with the number of
    /// observations it stands for.
    pub(crate) fn recent(&self, now: Instant) -> Vec<(f64, f64)> {
        let epoch = epoch(now);
        let mut out = Vec::new();
        for bucket in &self.buckets {
            let e = bucket.epoch.load(Ordering::Acquire);
            if e == 0 || e + BUCKETS <= epoch {
                continue;
            }
            let seen = bucket.seen.load(Ordering::Acquire) as usize;
            let kept = seen.min(SAMPLES);
            if kept == 0 {
                continue;
            }
            let weight = seen as f64 / kept as f64;
            out.extend(
                bucket.samples[..kept]
                    .iter()
                    .map(|s| (f64::from_bits(s.load(Ordering::Relaxed)), weight)),
            );
        }
        out
    }
}

/// The value at quantile `q` of weighted samples: the smallest value with at least `q`
/// of the total weight at or below it. `samples` is sorted in place.
pub(crate) fn quantile(samples: &mut [(f64, f64)], q: f64) -> f64 {
    if samples.is_empty() {
        return f64::NAN;
    }
    samples.sort_by(|a, b| a.0.total_cmp(&b.0));
    let total: f64 = samples.iter().map(|s| s.1).sum();
    let target = q * total;
    let mut cumulative = 0.0;
    for (value, weight) in samples.iter() {
        cumulative += weight;
        // A little slack for rounding in the weights' sum.
        if cumulative >= target - 1e-9 * total {
            return *value;
        }
    }
    samples[samples.len() - 1].0
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_small_window_is_exact() {
        let w = Window::default();
        let now = Instant::now();
        for v in 1..=200 {
            w.record(f64::from(v), now);
        }
        let mut s = w.recent(now);
        assert_eq!(quantile(&mut s, 0.5), 100.0);
        assert_eq!(quantile(&mut s, 0.99), 198.0);
        assert_eq!(quantile(&mut s, 0.999), 200.0);
    }

    #[test]
    fn a_large_window_is_sampled_uniformly() {
        let w = Window::default();
        let now = Instant::now();
        for v in 1..=100_000 {
            w.record(f64::from(v), now);
        }
        let mut s = w.recent(now);
        assert_eq!(s.len(), SAMPLES);
        let median = quantile(&mut s, 0.5);
        assert!((35_000.0..65_000.0).contains(&median), "{median}");
        assert!(quantile(&mut s, 0.99) > 90_000.0);
    }

    #[test]
    fn old_observations_leave_the_window() {
        let w = Window::default();
        let start = Instant::now();
        w.record(1.0, start);
        let later = start + Duration::from_secs(BUCKET_SECONDS * BUCKETS + 1);
        w.record(5.0, later);
        let mut s = w.recent(later);
        assert_eq!(quantile(&mut s, 0.5), 5.0);
        assert_eq!(s.len(), 1);
        let much_later = later + Duration::from_secs(BUCKET_SECONDS * BUCKETS + 1);
        assert!(quantile(&mut w.recent(much_later), 0.5).is_nan());
    }
}
