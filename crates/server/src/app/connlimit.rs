//! The node-wide gate in front of every connection endpoint: `client.connection_limit`
//! (connections this node holds) and `client.connection_rate_limit` (new connections per
//! second). Both answer HTTP 503 before the upgrade or the stream starts, as Centrifugo's
//! `ConnLimit` middleware does, so a refused client costs no session.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

/// Warnings about refused connections are logged at most this often.
const LOG_EVERY: Duration = Duration::from_secs(3);

/// A token bucket refilled at `rate` per second that holds at most `rate` tokens: a node
/// with `connection_rate_limit: 100` accepts a burst of 100 and then 100 per second.
///
/// Upstream builds `rate.NewLimiter(rate.Every(time.Second), N)`, which refills one token
/// per second after the burst; the key is documented as "connections per second", which
/// is what this bucket does.
#[derive(Debug)]
pub(crate) struct ConnectionRate {
    rate: f64,
    state: Mutex<(f64, Instant)>,
}

impl ConnectionRate {
    /// `None` when `per_second` is zero or negative (no limit).
    pub(crate) fn new(per_second: i64) -> Option<ConnectionRate> {
        (per_second > 0).then(|| ConnectionRate {
            rate: per_second as f64,
            state: Mutex::new((per_second as f64, Instant::now())),
        })
    }

    /// Takes one token if there is one.
    pub(crate) fn allow(&self) -> bool {
        self.allow_at(Instant::now())
    }

    fn allow_at(&self, now: Instant) -> bool {
        let mut state = self.state.lock();
        let (tokens, last) = &mut *state;
        let elapsed = now.saturating_duration_since(*last).as_secs_f64();
        *tokens = (*tokens + elapsed * self.rate).min(self.rate);
        *last = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// Why a connection attempt was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    Rate,
    Limit,
}

impl Refusal {
    pub(crate) fn reason(self) -> &'static str {
        match self {
            Refusal::Rate => "connection rate limit reached",
            Refusal::Limit => "connection limit reached",
        }
    }
}

/// Logs a refusal as a warning, at most once per [`LOG_EVERY`] (a flood of connects
/// must not become a flood of log lines).
pub(crate) fn log_refusal(refusal: Refusal, limit: i64) {
    static LAST: AtomicU64 = AtomicU64::new(0);
    static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    let start = *START.get_or_init(Instant::now);
    let now = start.elapsed().as_millis() as u64 + 1;
    let last = LAST.load(Ordering::Relaxed);
    if (last == 0 || now.saturating_sub(last) >= LOG_EVERY.as_millis() as u64)
        && LAST
            .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
    {
        tracing::warn!(limit, "{}", refusal.reason());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_of_the_rate_then_the_rate_per_second() {
        let bucket = ConnectionRate::new(10).unwrap();
        let t0 = Instant::now();
        let burst = (0..20).filter(|_| bucket.allow_at(t0)).count();
        assert_eq!(burst, 10);
        // Half a second refills half the rate.
        let t1 = t0 + Duration::from_millis(500);
        let later = (0..20).filter(|_| bucket.allow_at(t1)).count();
        assert_eq!(later, 5);
        // Idle time never stores more than one second's worth.
        let t2 = t1 + Duration::from_secs(60);
        assert_eq!((0..50).filter(|_| bucket.allow_at(t2)).count(), 10);
    }

    #[test]
    fn zero_means_unlimited() {
        assert!(ConnectionRate::new(0).is_none());
        assert!(ConnectionRate::new(-1).is_none());
    }
}
