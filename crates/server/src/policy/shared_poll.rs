//! Shared poll (Centrifugo `OnTrack` and the `shared_poll_refresh` proxy): which channels
//! are shared-poll channels, how their keys are refreshed, and the HMAC signatures that
//! let a client track keys.
//!
//! A signature is `"<iat>:<exp>:<hmac_hex>"`, the HMAC-SHA256 (lowercase hex) under
//! `shared_poll.hmac_secret_key` of `iat 0 exp 0 user 0 channel 0 hex(sha256(keys joined
//! by 0))`, the keys in the order the client sent them (Centrifugo
//! `internal/client/track_signature.go`). Fields are NUL-separated so that colons in a
//! user or channel cannot shift between fields.

use aws_lc_rs::{digest, hmac};
use gyre::{
    Error, HandlerError, SharedPollChannelOptions, SharedPollMode, TrackBatchReply, TrackEvent,
    TrackReply,
};

use super::Policy;
use crate::app::App;
use crate::config::{ChannelOptions, Config};
use crate::proxy::Event;

/// Seconds a signature stays valid past its `exp`.
const GRACE_SECONDS: i64 = 5;

/// The library's options of a namespace with `subscription_type: shared_poll`, with
/// upstream's defaults for zero values.
pub(crate) fn channel_options(o: &ChannelOptions) -> SharedPollChannelOptions {
    let c = &o.shared_poll;
    let defaults = SharedPollChannelOptions::new();
    let mut options = SharedPollChannelOptions::new();
    let positive = |d: crate::config::Duration| d.to_std().filter(|d| !d.is_zero());
    options.refresh_interval = positive(c.refresh_interval).unwrap_or(defaults.refresh_interval);
    options.refresh_batch_size = usize::try_from(c.refresh_batch_size)
        .ok()
        .filter(|n| *n > 0)
        .unwrap_or(defaults.refresh_batch_size);
    options.max_keys_per_connection = usize::try_from(c.max_keys_per_connection)
        .ok()
        .filter(|n| *n > 0)
        .unwrap_or(defaults.max_keys_per_connection);
    options.mode = if c.mode == "versioned" {
        SharedPollMode::Versioned
    } else {
        SharedPollMode::Versionless
    };
    // Negative: immediate; zero: the default.
    options.channel_shutdown_delay = match c.channel_shutdown_delay.to_std() {
        None => None,
        Some(d) if d.is_zero() => defaults.channel_shutdown_delay,
        Some(d) => Some(d),
    };
    options.track_expired_extra_delay =
        positive(c.track_expired_extra_delay).unwrap_or(defaults.track_expired_extra_delay);
    options.publish_enabled = c.publish_enabled;
    options
}

/// The shared-poll options of `channel` under `config`, if its namespace is one.
pub(crate) fn options_of(config: &Config, channel: &str) -> Option<SharedPollChannelOptions> {
    let (_, o) = config.channel_options(channel).ok()?;
    (o.subscription_type == "shared_poll").then(|| channel_options(o))
}

/// Tells the node which channels are shared-poll channels and how to refresh them.
pub(super) fn install(app: &App) {
    let a = app.clone();
    app.node
        .on_shared_poll_channel(move |channel| options_of(&a.config(), channel));
    let a = app.clone();
    app.node.on_shared_poll_refresh(move |event| {
        let a = a.clone();
        async move {
            let config = a.config();
            let name = config
                .channel_options(&event.channel)
                .map(|(_, o)| o.shared_poll.proxy_name.clone())
                .unwrap_or_default();
            let Some(proxy) = a.proxies.get(Event::SharedPollRefresh, &name) else {
                return Err(Error::NOT_AVAILABLE);
            };
            proxy.shared_poll_refresh(&event).await
        }
    });
    let limit = app.config().shared_poll.concurrency_limit;
    app.node
        .set_shared_poll_concurrency_limit(usize::try_from(limit).unwrap_or(0));
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 15)] as char);
    }
    out
}

/// A signature's parts: `iat`, `exp` (as written) and the HMAC hex.
fn split(signature: &str) -> Option<(&str, &str, &str)> {
    let (iat, rest) = signature.split_once(':')?;
    let (exp, mac) = rest.split_once(':')?;
    Some((iat, exp, mac))
}

/// The signed payload of a batch.
fn payload(iat: &str, exp: &str, user: &str, channel: &str, keys: &[&str]) -> Vec<u8> {
    let keys_hash = digest::digest(&digest::SHA256, keys.join("\0").as_bytes());
    let mut p = Vec::with_capacity(iat.len() + exp.len() + user.len() + channel.len() + 68);
    for part in [iat, exp, user, channel] {
        p.extend_from_slice(part.as_bytes());
        p.push(0);
    }
    p.extend_from_slice(hex(keys_hash.as_ref()).as_bytes());
    p
}

/// Whether `signature` signs `keys` of `channel` for `user` under `secret`
/// (constant-time comparison).
pub(crate) fn verify(
    secret: &str,
    channel: &str,
    signature: &str,
    keys: &[&str],
    user: &str,
) -> bool {
    let Some((iat, exp, mac)) = split(signature) else {
        return false;
    };
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes());
    let expected = hex(hmac::sign(&key, &payload(iat, exp, user, channel, keys)).as_ref());
    // Compares the hex forms, as upstream does, in constant time.
    expected.len() == mac.len()
        && expected
            .bytes()
            .zip(mac.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

/// Makes a signature (tests): `exp` 0 = never expires.
#[cfg(test)]
pub(crate) fn sign(
    secret: &str,
    channel: &str,
    user: &str,
    keys: &[&str],
    iat: i64,
    exp: i64,
) -> String {
    let (iat, exp) = (iat.to_string(), exp.to_string());
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes());
    let mac = hex(hmac::sign(&key, &payload(&iat, &exp, user, channel, keys)).as_ref());
    format!("{iat}:{exp}:{mac}")
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Checks every batch of a track request: all must verify, or the request is refused
/// (103 for a bad signature, 109 for an expired one).
pub(super) async fn track(
    policy: Policy,
    client: gyre::Client,
    event: TrackEvent,
) -> Result<TrackReply, HandlerError> {
    let config = policy.app.config();
    let ch = event.channel.as_str();
    let refuse = |reason: &str, e: Error| -> HandlerError {
        tracing::info!(client = %client.id(), user = %client.user_id(), channel = ch, reason, "track refused");
        e.into()
    };
    let Ok((_, o)) = config.channel_options(ch) else {
        return Err(refuse("unknown channel", Error::UNKNOWN_CHANNEL));
    };
    if o.subscription_type != "shared_poll" {
        return Err(refuse(
            "not a shared_poll channel",
            Error::PERMISSION_DENIED,
        ));
    }
    let sp = &config.shared_poll;
    if sp.hmac_secret_key.is_empty() {
        tracing::error!(
            channel = ch,
            "shared_poll.hmac_secret_key is not configured"
        );
        return Err(Error::INTERNAL.into());
    }
    let user = client.user_id();
    let now = unix_now();
    let mut replies = Vec::with_capacity(event.batches.len());
    for batch in &event.batches {
        let keys: Vec<&str> = batch.items.iter().map(|i| i.key.as_str()).collect();
        let sig = batch.signature.as_str();
        let times = split(sig).map(|(iat, exp, _)| {
            (
                iat.parse::<i64>().unwrap_or(0),
                exp.parse::<i64>().unwrap_or(0),
            )
        });
        let (iat, exp) = times.unwrap_or((0, 0));
        let mut ok = verify(&sp.hmac_secret_key, ch, sig, &keys, &user);
        if !ok && !sp.hmac_previous_secret_key.is_empty() {
            let until = sp.hmac_previous_secret_key_valid_until;
            if until > 0 && iat > until {
                return Err(refuse(
                    "signature issued after the previous key's expiry",
                    Error::PERMISSION_DENIED,
                ));
            }
            ok = verify(&sp.hmac_previous_secret_key, ch, sig, &keys, &user);
        }
        if !ok {
            return Err(refuse("invalid track signature", Error::PERMISSION_DENIED));
        }
        if exp > 0 && exp + GRACE_SECONDS < now {
            return Err(refuse("track signature expired", Error::TOKEN_EXPIRED));
        }
        replies.push(TrackBatchReply::new(exp));
    }
    Ok(TrackReply::new(replies))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_round_trip_and_binding() {
        let sig = sign("secret", "sp:prices", "alice", &["AAPL", "MSFT"], 100, 200);
        assert!(sig.starts_with("100:200:"));
        assert_eq!(sig.len(), "100:200:".len() + 64);
        assert!(verify(
            "secret",
            "sp:prices",
            &sig,
            &["AAPL", "MSFT"],
            "alice"
        ));
        // Key order, keys, user, channel and secret are all bound.
        assert!(!verify(
            "secret",
            "sp:prices",
            &sig,
            &["MSFT", "AAPL"],
            "alice"
        ));
        assert!(!verify("secret", "sp:prices", &sig, &["AAPL"], "alice"));
        assert!(!verify(
            "secret",
            "sp:prices",
            &sig,
            &["AAPL", "MSFT"],
            "bob"
        ));
        assert!(!verify(
            "secret",
            "sp:other",
            &sig,
            &["AAPL", "MSFT"],
            "alice"
        ));
        assert!(!verify(
            "other",
            "sp:prices",
            &sig,
            &["AAPL", "MSFT"],
            "alice"
        ));
        // The timestamps are signed as written.
        let forged = sig.replacen("200", "900", 1);
        assert!(!verify(
            "secret",
            "sp:prices",
            &forged,
            &["AAPL", "MSFT"],
            "alice"
        ));
        assert!(!verify(
            "secret",
            "sp:prices",
            "garbage",
            &["AAPL"],
            "alice"
        ));
    }

    #[test]
    fn signature_matches_a_known_vector() {
        // HMAC-SHA256("k", "1\02\0u\0c\0" + hex(sha256("a\0b"))), computed independently
        // with Python's hmac/hashlib.
        let sig = sign("k", "c", "u", &["a", "b"], 1, 2);
        assert_eq!(sig, format!("1:2:{}", KNOWN));
    }

    const KNOWN: &str = "e91c462a5a10c6599116ebb488f588edb292e6278af0308065d711089cc7bb64";
}
