//! Claim sets of connection and subscription tokens, decoded with the same leniency as
//! Centrifugo's `encoding/json` structs (`null` means "absent", unknown claims are ignored),
//! and the verified results handed to the rest of the server.

use std::collections::HashMap;

use base64::Engine as _;
use bytes::Bytes;
use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::VerifyError;
use super::token::B64STD;

/// Go's decoder leaves a field at its zero value on JSON `null`; serde would fail instead.
pub(super) fn nullable<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// `json.RawMessage` keeps a literal `null` as the bytes `null`; so do we.
fn raw_keep_null<'de, D>(d: D) -> Result<Option<Box<RawValue>>, D::Error>
where
    D: Deserializer<'de>,
{
    Box::<RawValue>::deserialize(d).map(Some)
}

/// A JWT NumericDate as nanoseconds since the epoch. Like `cristalhq/jwt`, it accepts an
/// integer or a fractional number, also inside a string (Go's `json.Number`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct NumericDate(i128);

impl NumericDate {
    pub(super) fn from_seconds_f64(f: f64) -> Option<Self> {
        if !f.is_finite() {
            return None;
        }
        let secs = f.trunc();
        let frac = f - secs;
        // `as` and the saturating ops keep absurd dates (1e300) at the far end instead of
        // overflowing: a far-future date stays far in the future.
        Some(Self(
            (secs as i128)
                .saturating_mul(1_000_000_000)
                .saturating_add((frac * 1e9) as i128),
        ))
    }

    pub(super) fn from_nanos(n: i128) -> Self {
        Self(n)
    }

    /// Whole seconds, rounded down like Go's `time.Time.Unix()`.
    pub(super) fn unix(self) -> i64 {
        let secs = self.0.div_euclid(1_000_000_000);
        secs.clamp(i64::MIN as i128, i64::MAX as i128) as i64
    }
}

impl<'de> Deserialize<'de> for NumericDate {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Repr<'a> {
            Int(i64),
            Float(f64),
            Str(&'a str),
            String(String),
        }
        let f = match Repr::deserialize(d)? {
            Repr::Int(i) => return Ok(Self(i as i128 * 1_000_000_000)),
            Repr::Float(f) => f,
            Repr::Str(s) => parse_json_number(s)?,
            Repr::String(s) => parse_json_number(&s)?,
        };
        Self::from_seconds_f64(f).ok_or_else(|| de::Error::custom("invalid date"))
    }
}

fn parse_json_number<E: de::Error>(s: &str) -> Result<f64, E> {
    // Only JSON number syntax, as `json.Number` demands ("1e3" yes, " 1", "0x1", "inf" no).
    match serde_json::from_str::<serde_json::Number>(s) {
        Ok(n) => n.as_f64().ok_or_else(|| E::custom("invalid date")),
        Err(_) => Err(E::custom("invalid date")),
    }
}

/// `aud`: a string or an array of strings; anything else (including `null`) is an error,
/// exactly as `cristalhq/jwt`'s `Audience.UnmarshalJSON`.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(super) struct Audience(pub(super) Vec<String>);

impl<'de> Deserialize<'de> for Audience {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Repr {
            One(String),
            Many(Vec<String>),
        }
        match Option::<Repr>::deserialize(d)? {
            Some(Repr::One(s)) => Ok(Self(vec![s])),
            Some(Repr::Many(v)) => Ok(Self(v)),
            None => Err(de::Error::custom("invalid audience format")),
        }
    }
}

/// Registered claims shared by both token kinds.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct Registered {
    #[serde(deserialize_with = "nullable")]
    pub(super) sub: String,
    #[serde(deserialize_with = "nullable")]
    pub(super) iss: String,
    pub(super) aud: Audience,
    pub(super) exp: Option<NumericDate>,
    pub(super) nbf: Option<NumericDate>,
    // `iat` and `jti` are decoded only so that a malformed value makes the token invalid,
    // as in Centrifugo; nothing reads them (revocation by `jti` is a PRO feature).
    #[allow(dead_code)]
    iat: Option<NumericDate>,
    #[allow(dead_code)]
    #[serde(deserialize_with = "nullable")]
    jti: String,
}

/// `{"value": bool}` wrapper used by `override`.
#[derive(Debug, Default, Deserialize, Serialize, Clone, Copy, PartialEq, Eq)]
struct BoolValue {
    #[serde(default, deserialize_with = "nullable")]
    value: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct OverrideClaim {
    presence: Option<BoolValue>,
    join_leave: Option<BoolValue>,
    force_push_join_leave: Option<BoolValue>,
    force_positioning: Option<BoolValue>,
    force_recovery: Option<BoolValue>,
}

/// `info`, `b64info`, `data`, `b64data`, `override` — in `subs` entries and sub tokens.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct OptionsClaim {
    #[serde(deserialize_with = "raw_keep_null")]
    info: Option<Box<RawValue>>,
    #[serde(deserialize_with = "nullable")]
    b64info: String,
    #[serde(deserialize_with = "raw_keep_null")]
    data: Option<Box<RawValue>>,
    #[serde(deserialize_with = "nullable")]
    b64data: String,
    #[serde(rename = "override")]
    overrides: Option<OverrideClaim>,
}

/// Connection-token claims beyond the registered ones (those are decoded separately into
/// [`Registered`]: `#[serde(flatten)]` would break `RawValue` fields).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct ConnectClaims {
    pub(super) expire_at: Option<i64>,
    #[serde(deserialize_with = "raw_keep_null")]
    info: Option<Box<RawValue>>,
    #[serde(deserialize_with = "nullable")]
    b64info: String,
    #[serde(deserialize_with = "nullable")]
    channels: Vec<String>,
    #[serde(deserialize_with = "nullable")]
    subs: HashMap<String, OptionsClaim>,
    #[serde(deserialize_with = "raw_keep_null")]
    meta: Option<Box<RawValue>>,
    #[serde(deserialize_with = "nullable")]
    pub(super) channel: String,
}

/// Subscription-token claims beyond the registered ones.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct SubscribeClaims {
    #[serde(deserialize_with = "raw_keep_null")]
    info: Option<Box<RawValue>>,
    #[serde(deserialize_with = "nullable")]
    b64info: String,
    #[serde(deserialize_with = "raw_keep_null")]
    data: Option<Box<RawValue>>,
    #[serde(deserialize_with = "nullable")]
    b64data: String,
    #[serde(rename = "override")]
    overrides: Option<OverrideClaim>,
    #[serde(deserialize_with = "nullable")]
    pub(super) channel: String,
    #[serde(deserialize_with = "nullable")]
    client: String,
    pub(super) expire_at: Option<i64>,
}

/// Per-subscription option overrides; `None` keeps the namespace setting.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Overrides {
    pub(crate) presence: Option<bool>,
    pub(crate) join_leave: Option<bool>,
    pub(crate) force_push_join_leave: Option<bool>,
    pub(crate) force_positioning: Option<bool>,
    pub(crate) force_recovery: Option<bool>,
}

impl From<Option<OverrideClaim>> for Overrides {
    fn from(o: Option<OverrideClaim>) -> Self {
        let o = o.unwrap_or_default();
        Self {
            presence: o.presence.map(|v| v.value),
            join_leave: o.join_leave.map(|v| v.value),
            force_push_join_leave: o.force_push_join_leave.map(|v| v.value),
            force_positioning: o.force_positioning.map(|v| v.value),
            force_recovery: o.force_recovery.map(|v| v.value),
        }
    }
}

/// Options of one entry of a connection token's `subs` claim.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct SubscribeOptionsClaim {
    /// Channel info (`b64info` decoded, else raw `info` JSON, else empty).
    pub(crate) info: Bytes,
    /// Subscribe data (`b64data` decoded, else raw `data` JSON, else empty).
    pub(crate) data: Bytes,
    pub(crate) overrides: Overrides,
}

/// A verified connection token.
#[derive(Debug, Default, Clone)]
pub(crate) struct ConnectToken {
    /// `sub`, or the value at `user_id_claim`; `""` is an anonymous user.
    pub(crate) user_id: String,
    /// Unix seconds when the connection expires; 0 = never. `expire_at` when present
    /// (`0` there means never), else `exp`; capped to one year ahead.
    pub(crate) expire_at: i64,
    pub(crate) info: Bytes,
    /// Server-side subscriptions from `channels`. Empty when `subs` is non-empty, because
    /// Centrifugo then ignores `channels` entirely.
    pub(crate) channels: Vec<String>,
    /// Server-side subscriptions with options from `subs`. Namespace lookup (unknown
    /// namespace → error 102) is left to the caller, which owns the channel config.
    pub(crate) subs: HashMap<String, SubscribeOptionsClaim>,
    /// Raw `meta` JSON, kept byte-for-byte so proxies forward exactly what was signed.
    pub(crate) meta: Option<Box<RawValue>>,
}

/// A verified subscription token.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct SubscribeToken {
    pub(crate) user_id: String,
    pub(crate) channel: String,
    /// Deprecated v3 claim: if non-empty it must equal the subscribing client's id.
    pub(crate) client: String,
    /// Unix seconds when the subscription expires; 0 = never.
    pub(crate) expire_at: i64,
    pub(crate) info: Bytes,
    pub(crate) data: Bytes,
    pub(crate) overrides: Overrides,
}

/// `b64x` wins over `x` when non-empty; a bad `b64x` makes the token invalid.
fn pick(b64: &str, raw: Option<Box<RawValue>>, what: &str) -> Result<Bytes, VerifyError> {
    if !b64.is_empty() {
        return B64STD
            .decode(b64)
            .map(Bytes::from)
            .map_err(|e| VerifyError::Invalid(format!("bad {what}: {e}")));
    }
    Ok(raw.map_or_else(Bytes::new, |r| {
        Bytes::from(String::from(Box::<str>::from(r)).into_bytes())
    }))
}

impl OptionsClaim {
    /// The options, `b64x` decoded over raw `x`.
    pub(crate) fn into_options(self) -> Result<SubscribeOptionsClaim, VerifyError> {
        Ok(SubscribeOptionsClaim {
            info: pick(&self.b64info, self.info, "b64info")?,
            data: pick(&self.b64data, self.data, "b64data")?,
            overrides: self.overrides.into(),
        })
    }
}

/// `expire_at` if present (non-positive = never), else `exp`, else never.
fn expire_at(expire_at: Option<i64>, exp: Option<NumericDate>) -> i64 {
    match expire_at {
        Some(v) => v.max(0),
        None => exp.map_or(0, NumericDate::unix),
    }
}

/// Connection expiry further than this is cut back (PROTOCOL.md §14.1), so that
/// later arithmetic on "seconds until expiry" stays small and bounded.
const MAX_CONNECTION_TTL: i64 = 365 * 24 * 3600;

impl ConnectClaims {
    pub(super) fn into_token(
        self,
        registered: &Registered,
        user_id: String,
        now_unix: i64,
    ) -> Result<ConnectToken, VerifyError> {
        let mut expire = expire_at(self.expire_at, registered.exp);
        if expire > 0 {
            expire = expire.min(now_unix.saturating_add(MAX_CONNECTION_TTL));
        }
        let subs = self
            .subs
            .into_iter()
            .map(|(ch, o)| o.into_options().map(|o| (ch, o)))
            .collect::<Result<HashMap<_, _>, _>>()?;
        let channels = if subs.is_empty() {
            self.channels
        } else {
            Vec::new()
        };
        Ok(ConnectToken {
            user_id,
            expire_at: expire,
            info: pick(&self.b64info, self.info, "b64info")?,
            channels,
            subs,
            meta: self.meta,
        })
    }
}

impl SubscribeClaims {
    pub(super) fn into_token(
        self,
        registered: &Registered,
        user_id: String,
    ) -> Result<SubscribeToken, VerifyError> {
        Ok(SubscribeToken {
            user_id,
            expire_at: expire_at(self.expire_at, registered.exp),
            info: pick(&self.b64info, self.info, "b64info")?,
            data: pick(&self.b64data, self.data, "b64data")?,
            overrides: self.overrides.into(),
            channel: self.channel,
            client: self.client,
        })
    }
}

/// Reads `path` from the claims JSON like gjson's `Get(...).String()` does for the paths
/// people use as `user_id_claim`: dot-separated object keys (`\.` escapes a dot), numeric
/// array indexes. Strings yield their value, integers their literal, other numbers their
/// shortest decimal form, booleans `true`/`false`, objects/arrays their raw JSON, and a
/// missing value or `null` yields `""`.
pub(super) fn string_at_path(claims: &[u8], path: &str) -> String {
    let Ok(mut cur) = serde_json::from_slice::<&RawValue>(claims) else {
        return String::new();
    };
    for key in split_path(path) {
        let text = cur.get();
        let next = if text.starts_with('{') {
            serde_json::from_str::<HashMap<std::borrow::Cow<'_, str>, &RawValue>>(text)
                .ok()
                .and_then(|m| m.get(key.as_str()).copied())
        } else if text.starts_with('[') {
            key.parse::<usize>().ok().and_then(|i| {
                serde_json::from_str::<Vec<&RawValue>>(text)
                    .ok()
                    .and_then(|v| v.get(i).copied())
            })
        } else {
            None
        };
        match next {
            Some(v) => cur = v,
            None => return String::new(),
        }
    }
    raw_to_string(cur.get())
}

fn split_path(path: &str) -> Vec<String> {
    let mut parts = Vec::new();
    let mut cur = String::new();
    let mut chars = path.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
            }
            '.' => parts.push(std::mem::take(&mut cur)),
            c => cur.push(c),
        }
    }
    parts.push(cur);
    parts
}

fn raw_to_string(raw: &str) -> String {
    match raw.as_bytes().first() {
        Some(b'"') => serde_json::from_str::<String>(raw).unwrap_or_default(),
        Some(b'{' | b'[') => raw.to_owned(),
        Some(b't') => "true".into(),
        Some(b'f') => "false".into(),
        Some(b'n') | None => String::new(),
        Some(_) => {
            let digits = raw.strip_prefix('-').unwrap_or(raw);
            if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
                raw.to_owned()
            } else {
                raw.parse::<f64>()
                    .map(|f| f.to_string())
                    .unwrap_or_default()
            }
        }
    }
}
