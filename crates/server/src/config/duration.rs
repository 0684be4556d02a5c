//! Go `time.Duration` as Centrifugo reads and prints it.
//!
//! Strings use Go's `time.ParseDuration` grammar (`"25s"`, `"1m30s"`, `"1.5h"`, `"-300ms"`,
//! `"0"`); a bare integer (JSON/YAML/TOML number) is a count of nanoseconds, as Centrifugo's
//! `configtypes.Duration.UnmarshalJSON` does. Printing follows Go's `Duration.String()`
//! (`"1s"`, `"720h0m0s"`, `"1.5ms"`), which is what `centrifugo defaultconfig` writes.

use std::fmt;

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

const NANOSECOND: u64 = 1;
const MICROSECOND: u64 = 1_000 * NANOSECOND;
const MILLISECOND: u64 = 1_000 * MICROSECOND;
const SECOND: u64 = 1_000 * MILLISECOND;
const MINUTE: u64 = 60 * SECOND;
const HOUR: u64 = 60 * MINUTE;

/// Largest magnitude a Go duration string may reach (`1 << 63` nanoseconds, only valid when
/// negative).
const LIMIT: u64 = 1 << 63;

/// A signed duration with nanosecond precision (Go `time.Duration`).
///
/// Negative values are meaningful in the configuration (`client.ping_interval: -1` disables
/// pings), so this is not `std::time::Duration`; use [`Duration::to_std`] at the edges.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub(crate) struct Duration(i64);

/// Why a Go duration string was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("time: {reason} in duration {input:?}")]
pub(crate) struct DurationError {
    input: String,
    reason: &'static str,
}

impl Duration {
    /// Zero duration.
    pub(crate) const ZERO: Self = Self(0);

    #[allow(
        dead_code,
        reason = "API for the server modules (client, HTTP API) that use the configuration"
    )]
    pub(crate) const fn from_nanos(nanos: i64) -> Self {
        Self(nanos)
    }

    #[cfg(test)]
    pub(crate) const fn from_millis(millis: i64) -> Self {
        Self(millis * MILLISECOND as i64)
    }

    #[cfg(test)]
    pub(crate) const fn from_secs(secs: i64) -> Self {
        Self(secs * SECOND as i64)
    }

    pub(crate) const fn as_nanos(self) -> i64 {
        self.0
    }

    pub(crate) const fn is_zero(self) -> bool {
        self.0 == 0
    }

    /// The duration as `std::time::Duration`; `None` when negative (Go's "disabled" marker).
    #[allow(
        dead_code,
        reason = "API for the server modules (client, HTTP API) that use the configuration"
    )]
    pub(crate) fn to_std(self) -> Option<std::time::Duration> {
        u64::try_from(self.0)
            .ok()
            .map(std::time::Duration::from_nanos)
    }

    /// Parses a Go duration string with the exact grammar of Go's `time.ParseDuration`.
    pub(crate) fn parse(input: &str) -> Result<Self, DurationError> {
        let fail = |reason| DurationError {
            input: input.to_owned(),
            reason,
        };
        let mut s = input.as_bytes();
        let mut neg = false;
        if let Some(&c) = s.first()
            && (c == b'-' || c == b'+')
        {
            neg = c == b'-';
            s = &s[1..];
        }
        if s == b"0" {
            return Ok(Self::ZERO);
        }
        if s.is_empty() {
            return Err(fail("invalid duration"));
        }
        let mut total: u64 = 0;
        while !s.is_empty() {
            if !(s[0] == b'.' || s[0].is_ascii_digit()) {
                return Err(fail("invalid duration"));
            }
            // Integer part.
            let digits = s.iter().take_while(|c| c.is_ascii_digit()).count();
            let mut v: u64 = 0;
            for &c in &s[..digits] {
                if v > LIMIT / 10 {
                    return Err(fail("invalid duration"));
                }
                v = v * 10 + u64::from(c - b'0');
                if v > LIMIT {
                    return Err(fail("invalid duration"));
                }
            }
            let pre = digits > 0;
            s = &s[digits..];
            // Fraction part: digits past the precision of u64 are consumed and ignored.
            let mut frac: u64 = 0;
            let mut scale: f64 = 1.0;
            let mut post = false;
            if s.first() == Some(&b'.') {
                s = &s[1..];
                let digits = s.iter().take_while(|c| c.is_ascii_digit()).count();
                let mut overflow = false;
                for &c in &s[..digits] {
                    if overflow {
                        continue;
                    }
                    if frac > (LIMIT - 1) / 10 {
                        overflow = true;
                        continue;
                    }
                    let y = frac * 10 + u64::from(c - b'0');
                    if y > LIMIT {
                        overflow = true;
                        continue;
                    }
                    frac = y;
                    scale *= 10.0;
                }
                post = digits > 0;
                s = &s[digits..];
            }
            if !pre && !post {
                return Err(fail("invalid duration"));
            }
            // Unit: everything up to the next digit or '.'.
            let unit_len = s
                .iter()
                .take_while(|&&c| c != b'.' && !c.is_ascii_digit())
                .count();
            if unit_len == 0 {
                return Err(fail("missing unit"));
            }
            let unit = match &s[..unit_len] {
                b"ns" => NANOSECOND,
                // "µs" (U+00B5) and "μs" (U+03BC).
                b"us" | b"\xc2\xb5s" | b"\xce\xbcs" => MICROSECOND,
                b"ms" => MILLISECOND,
                b"s" => SECOND,
                b"m" => MINUTE,
                b"h" => HOUR,
                _ => return Err(fail("unknown unit")),
            };
            s = &s[unit_len..];
            if v > LIMIT / unit {
                return Err(fail("invalid duration"));
            }
            v *= unit;
            if frac > 0 {
                // Same float arithmetic as Go, so results agree to the nanosecond.
                #[allow(
                    clippy::cast_possible_truncation,
                    clippy::cast_sign_loss,
                    clippy::cast_precision_loss
                )]
                let extra = (frac as f64 * (unit as f64 / scale)) as u64;
                v += extra;
                if v > LIMIT {
                    return Err(fail("invalid duration"));
                }
            }
            total += v;
            if total > LIMIT {
                return Err(fail("invalid duration"));
            }
        }
        if neg {
            // `total <= 1 << 63`, so the wrapping negation is exact (1 << 63 gives i64::MIN).
            return Ok(Self((total as i64).wrapping_neg()));
        }
        i64::try_from(total)
            .map(Self)
            .map_err(|_| fail("invalid duration"))
    }
}

/// Writes `v` with `prec` decimal digits as a fraction, dropping trailing zeros (and the dot
/// when nothing is left); returns `v / 10^prec`. Mirrors Go's `fmtFrac`.
fn push_frac(out: &mut Vec<u8>, mut v: u64, prec: usize) -> u64 {
    let mut printed = false;
    for _ in 0..prec {
        let digit = v % 10;
        printed = printed || digit != 0;
        if printed {
            out.push(b'0' + digit as u8);
        }
        v /= 10;
    }
    if printed {
        out.push(b'.');
    }
    v
}

/// Writes the decimal digits of `v` (reversed, like the rest of the buffer).
fn push_int(out: &mut Vec<u8>, mut v: u64) {
    if v == 0 {
        out.push(b'0');
        return;
    }
    while v > 0 {
        out.push(b'0' + (v % 10) as u8);
        v /= 10;
    }
}

impl fmt::Display for Duration {
    /// Go's `Duration.String()`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Built back to front, then reversed.
        let mut out: Vec<u8> = Vec::with_capacity(32);
        let neg = self.0 < 0;
        let mut u = self.0.unsigned_abs();
        if u < SECOND {
            if u == 0 {
                return f.write_str("0s");
            }
            out.push(b's');
            let prec = if u < MICROSECOND {
                out.push(b'n');
                0
            } else if u < MILLISECOND {
                // "µ" (U+00B5) reversed byte-wise.
                out.extend(b"\xb5\xc2");
                3
            } else {
                out.push(b'm');
                6
            };
            u = push_frac(&mut out, u, prec);
            push_int(&mut out, u);
        } else {
            out.push(b's');
            u = push_frac(&mut out, u, 9);
            push_int(&mut out, u % 60);
            u /= 60;
            if u > 0 {
                out.push(b'm');
                push_int(&mut out, u % 60);
                u /= 60;
                if u > 0 {
                    out.push(b'h');
                    push_int(&mut out, u);
                }
            }
        }
        if neg {
            out.push(b'-');
        }
        out.reverse();
        f.write_str(std::str::from_utf8(&out).map_err(|_| fmt::Error)?)
    }
}

impl std::str::FromStr for Duration {
    type Err = DurationError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl Serialize for Duration {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct DurationVisitor;

        impl Visitor<'_> for DurationVisitor {
            type Value = Duration;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a Go duration string like \"25s\" or an integer number of nanoseconds")
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<Duration, E> {
                Duration::parse(v).map_err(E::custom)
            }

            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Duration, E> {
                Ok(Duration(v))
            }

            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Duration, E> {
                i64::try_from(v)
                    .map(Duration)
                    .map_err(|_| E::custom("duration out of range"))
            }
        }

        deserializer.deserialize_any(DurationVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn p(s: &str) -> i64 {
        Duration::parse(s)
            .unwrap_or_else(|e| panic!("{s}: {e}"))
            .as_nanos()
    }

    #[test]
    fn parses_go_examples() {
        // Cases from Go's time package tests.
        let cases: &[(&str, i64)] = &[
            ("0", 0),
            ("5s", 5 * SECOND as i64),
            ("30s", 30 * SECOND as i64),
            ("1478s", 1478 * SECOND as i64),
            ("-5s", -5 * SECOND as i64),
            ("+5s", 5 * SECOND as i64),
            ("-0", 0),
            ("+0", 0),
            ("5.0s", 5 * SECOND as i64),
            ("5.6s", 5 * SECOND as i64 + 600 * MILLISECOND as i64),
            ("5.s", 5 * SECOND as i64),
            (".5s", 500 * MILLISECOND as i64),
            ("1.0s", SECOND as i64),
            ("1.00s", SECOND as i64),
            ("1.004s", SECOND as i64 + 4 * MILLISECOND as i64),
            ("100.00100s", 100 * SECOND as i64 + MILLISECOND as i64),
            ("10ns", 10),
            ("11us", 11 * MICROSECOND as i64),
            ("12µs", 12 * MICROSECOND as i64),
            ("12μs", 12 * MICROSECOND as i64),
            ("13ms", 13 * MILLISECOND as i64),
            ("14s", 14 * SECOND as i64),
            ("15m", 15 * MINUTE as i64),
            ("16h", 16 * HOUR as i64),
            ("3h30m", 3 * HOUR as i64 + 30 * MINUTE as i64),
            (
                "10.5s4m",
                4 * MINUTE as i64 + 10 * SECOND as i64 + 500 * MILLISECOND as i64,
            ),
            (
                "-2m3.4s",
                -(2 * MINUTE as i64 + 3 * SECOND as i64 + 400 * MILLISECOND as i64),
            ),
            (
                "1h2m3s4ms5us6ns",
                (HOUR + 2 * MINUTE + 3 * SECOND + 4 * MILLISECOND + 5 * MICROSECOND + 6) as i64,
            ),
            (
                "39h9m14.425s",
                (39 * HOUR + 9 * MINUTE + 14 * SECOND + 425 * MILLISECOND) as i64,
            ),
            ("52763797000ns", 52_763_797_000),
            ("0.3333333333333333333h", 20 * MINUTE as i64),
            ("9007199254740993ns", (1 << 53) + 1),
            ("9223372036854775807ns", i64::MAX),
            ("9223372036854775.807us", i64::MAX),
            ("9223372036s854ms775us807ns", i64::MAX),
            ("-9223372036854775808ns", i64::MIN),
            ("-9223372036854775.808us", i64::MIN),
            ("-9223372036s854ms775us808ns", i64::MIN),
            ("-2562047h47m16.854775808s", i64::MIN),
            ("0.100000000000000000000h", 6 * MINUTE as i64),
            (
                "0.830103483285477580700h",
                49 * MINUTE as i64 + 48 * SECOND as i64 + 372_539_827,
            ),
            ("720h", 720 * HOUR as i64),
            ("1000ms", SECOND as i64),
        ];
        for &(s, want) in cases {
            assert_eq!(p(s), want, "{s}");
        }
    }

    #[test]
    fn rejects_what_go_rejects() {
        for s in [
            "",
            "3",
            "-",
            "s",
            ".",
            "-.",
            ".s",
            "+.s",
            "1d",
            "\u{85}\u{85}",
            "\u{ffff}",
            "9223372036854775808ns",
            "9223372036854775.808us",
            "9223372036854ms775us808ns",
            "-9223372036854775809ns",
            "1s ",
            " 1s",
            "1.2.3s",
            "-1",
            "25",
        ] {
            assert!(Duration::parse(s).is_err(), "{s:?} must be rejected");
        }
    }

    #[test]
    fn formats_like_go() {
        let cases: &[(i64, &str)] = &[
            (0, "0s"),
            (1, "1ns"),
            (1_100, "1.1µs"),
            (2_200_000, "2.2ms"),
            (3_300_000_000, "3.3s"),
            (4 * MINUTE as i64 + 5 * SECOND as i64, "4m5s"),
            (4 * MINUTE as i64 + 5_001 * MILLISECOND as i64, "4m5.001s"),
            (
                5 * HOUR as i64 + 6 * MINUTE as i64 + 7_001 * MILLISECOND as i64,
                "5h6m7.001s",
            ),
            (8 * MINUTE as i64 + 1, "8m0.000000001s"),
            (i64::MAX, "2562047h47m16.854775807s"),
            (i64::MIN, "-2562047h47m16.854775808s"),
            (-1, "-1ns"),
            (720 * HOUR as i64, "720h0m0s"),
            (SECOND as i64, "1s"),
            (25 * SECOND as i64, "25s"),
            (90 * SECOND as i64, "1m30s"),
        ];
        for &(d, want) in cases {
            assert_eq!(Duration(d).to_string(), want);
        }
    }

    #[test]
    fn serde_accepts_strings_and_nanoseconds() {
        let d: Duration = serde_json::from_str("\"1m30s\"").unwrap();
        assert_eq!(d, Duration::from_secs(90));
        let d: Duration = serde_json::from_str("1000000").unwrap();
        assert_eq!(d, Duration::from_millis(1));
        let d: Duration = serde_json::from_str("-1").unwrap();
        assert_eq!(d.as_nanos(), -1);
        assert!(d.to_std().is_none());
        assert!(serde_json::from_str::<Duration>("\"25\"").is_err());
        assert!(serde_json::from_str::<Duration>("true").is_err());
        assert_eq!(
            serde_json::to_string(&Duration::from_secs(720 * 3600)).unwrap(),
            "\"720h0m0s\""
        );
    }

    fn unit_strategy() -> impl Strategy<Value = (&'static str, u64)> {
        prop_oneof![
            Just(("ns", NANOSECOND)),
            Just(("us", MICROSECOND)),
            Just(("µs", MICROSECOND)),
            Just(("ms", MILLISECOND)),
            Just(("s", SECOND)),
            Just(("m", MINUTE)),
            Just(("h", HOUR)),
        ]
    }

    proptest! {
        #[test]
        fn display_then_parse_round_trips(n in any::<i64>()) {
            let d = Duration(n);
            prop_assert_eq!(Duration::parse(&d.to_string()), Ok(d));
        }

        #[test]
        fn integer_components_sum(parts in proptest::collection::vec((0u64..10_000, unit_strategy()), 1..6), neg in any::<bool>()) {
            let mut s = String::from(if neg { "-" } else { "" });
            let mut want: i64 = 0;
            for (n, (unit, mult)) in &parts {
                s.push_str(&format!("{n}{unit}"));
                want += (*n * *mult) as i64;
            }
            if neg { want = -want; }
            prop_assert_eq!(Duration::parse(&s).map(Duration::as_nanos), Ok(want));
        }

        #[test]
        fn millisecond_fractions_of_seconds_are_exact(whole in 0u64..100_000, millis in 0u64..1000) {
            let s = format!("{whole}.{millis:03}s");
            prop_assert_eq!(Duration::parse(&s).map(Duration::as_nanos), Ok((whole * SECOND + millis * MILLISECOND) as i64));
        }

        #[test]
        fn never_panics(s in "\\PC{0,24}") {
            let _ = Duration::parse(&s);
        }

        #[test]
        fn bare_numbers_other_than_zero_are_rejected(n in 1u64..u64::MAX) {
            prop_assert!(Duration::parse(&n.to_string()).is_err());
        }
    }
}
