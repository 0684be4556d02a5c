//! The admin session token: the value Centrifugo's admin login hands out, in the format of
//! gorilla/securecookie (HMAC-SHA256, no encryption) for the name `token` and the value
//! `authorized`, valid for 30 days from its timestamp.
//!
//! Layout: `base64url(ts "|" base64url(gob("authorized")) "|" mac)` where `mac` is the raw
//! HMAC-SHA256, under the admin secret, of `token|ts|base64url(gob(...))`. Both base64
//! layers are the padded URL-safe alphabet, as Go's `base64.URLEncoding`.

use aws_lc_rs::hmac;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE;

/// The cookie name that takes part in the MAC (never in the token itself).
const NAME: &str = "token";
/// How long a token is accepted after it was made (securecookie's default `maxAge`).
pub(crate) const MAX_AGE_SECS: i64 = 30 * 24 * 3600;
/// Longer tokens are refused before any decoding (securecookie's default `maxLength`).
const MAX_LENGTH: usize = 4096;
/// `"authorized"` as Go's `encoding/gob` writes a lone string: message length 13, type
/// id 6 (string, zig-zag encoded as 12), the singleton field marker 0, then the
/// length-prefixed bytes.
const GOB_AUTHORIZED: &[u8] = b"\x0d\x0c\x00\x0aauthorized";

/// Why a token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum TokenError {
    #[error("token is too long")]
    TooLong,
    #[error("token is not base64")]
    Encoding,
    #[error("token signature is invalid")]
    Mac,
    #[error("token timestamp is invalid")]
    Timestamp,
    #[error("token has expired")]
    Expired,
    #[error("token does not authorize")]
    Value,
}

fn mac(secret: &[u8], message: &[u8]) -> hmac::Tag {
    hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, secret), message)
}

/// A token made at `now` (Unix seconds).
pub(crate) fn generate(secret: &[u8], now: i64) -> String {
    let value = URL_SAFE.encode(GOB_AUTHORIZED);
    let signed = format!("{NAME}|{now}|{value}");
    let tag = mac(secret, signed.as_bytes());
    let mut body = signed.into_bytes().split_off(NAME.len() + 1);
    body.push(b'|');
    body.extend_from_slice(tag.as_ref());
    URL_SAFE.encode(body)
}

/// Checks a token at `now` (Unix seconds): signature, age, and the value it carries.
pub(crate) fn verify(secret: &[u8], token: &str, now: i64) -> Result<(), TokenError> {
    if token.len() > MAX_LENGTH {
        return Err(TokenError::TooLong);
    }
    let body = URL_SAFE.decode(token).map_err(|_| TokenError::Encoding)?;
    let mut parts = body.splitn(3, |&b| b == b'|');
    let (Some(ts), Some(value), Some(given)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(TokenError::Mac);
    };
    let mut signed = Vec::with_capacity(NAME.len() + 1 + ts.len() + 1 + value.len());
    signed.extend_from_slice(NAME.as_bytes());
    signed.push(b'|');
    signed.extend_from_slice(&body[..ts.len() + 1 + value.len()]);
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
    hmac::verify(&key, &signed, given).map_err(|_| TokenError::Mac)?;
    let made: i64 = std::str::from_utf8(ts)
        .ok()
        .and_then(|t| t.parse().ok())
        .ok_or(TokenError::Timestamp)?;
    if made < now.saturating_sub(MAX_AGE_SECS) {
        return Err(TokenError::Expired);
    }
    let value = URL_SAFE.decode(value).map_err(|_| TokenError::Encoding)?;
    if value != GOB_AUTHORIZED {
        return Err(TokenError::Value);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const NOW: i64 = 1_800_000_000;

    #[test]
    fn layout_matches_securecookie() {
        let token = generate(b"secret", NOW);
        let body = URL_SAFE.decode(&token).unwrap();
        let text = String::from_utf8_lossy(&body);
        // The inner value is gob("authorized") in padded URL-safe base64.
        assert!(
            text.starts_with("1800000000|DQwACmF1dGhvcml6ZWQ=|"),
            "{text}"
        );
        let tag = mac(b"secret", b"token|1800000000|DQwACmF1dGhvcml6ZWQ=");
        assert!(body.ends_with(tag.as_ref()));
        assert_eq!(body.len(), "1800000000|DQwACmF1dGhvcml6ZWQ=|".len() + 32);
    }

    #[test]
    fn accepted_for_thirty_days() {
        let token = generate(b"secret", NOW);
        assert_eq!(verify(b"secret", &token, NOW), Ok(()));
        assert_eq!(verify(b"secret", &token, NOW + MAX_AGE_SECS), Ok(()));
        assert_eq!(
            verify(b"secret", &token, NOW + MAX_AGE_SECS + 1),
            Err(TokenError::Expired)
        );
    }

    #[test]
    fn refused_under_another_secret_or_garbled() {
        let token = generate(b"secret", NOW);
        assert_eq!(verify(b"other", &token, NOW), Err(TokenError::Mac));
        assert_eq!(
            verify(b"secret", "not base64!", NOW),
            Err(TokenError::Encoding)
        );
        assert_eq!(verify(b"secret", "", NOW), Err(TokenError::Mac));
        let long = "A".repeat(MAX_LENGTH + 4);
        assert_eq!(verify(b"secret", &long, NOW), Err(TokenError::TooLong));
    }

    #[test]
    fn a_signed_value_other_than_authorized_is_refused() {
        let value = URL_SAFE.encode(b"\x0a\x0c\x00\x07blocked");
        let signed = format!("token|{NOW}|{value}");
        let tag = mac(b"secret", signed.as_bytes());
        let mut body = format!("{NOW}|{value}|").into_bytes();
        body.extend_from_slice(tag.as_ref());
        let token = URL_SAFE.encode(body);
        assert_eq!(verify(b"secret", &token, NOW), Err(TokenError::Value));
    }

    proptest! {
        #[test]
        fn round_trips(secret in proptest::collection::vec(any::<u8>(), 1..64),
                       made in 0i64..4_000_000_000, age in 0i64..MAX_AGE_SECS) {
            let token = generate(&secret, made);
            prop_assert_eq!(verify(&secret, &token, made + age), Ok(()));
        }

        /// Changing any byte of the signed body (the timestamp, the value or the MAC)
        /// is detected.
        #[test]
        fn any_tampered_byte_is_refused(index in any::<prop::sample::Index>(), flip in 1u8..=255) {
            let token = generate(b"secret", NOW);
            let mut body = URL_SAFE.decode(&token).unwrap();
            let i = index.index(body.len());
            body[i] ^= flip;
            let tampered = URL_SAFE.encode(&body);
            prop_assert!(verify(b"secret", &tampered, NOW).is_err());
        }
    }
}
