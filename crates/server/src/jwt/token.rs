//! Splitting a compact JWS into its parts, the way Centrifugo's JWT library does it.
//!
//! Parsing is separate from verification because Centrifugo needs the claims (issuer and
//! audience) *before* it verifies the signature: they may select the JWKS endpoint.

use base64::Engine as _;
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use serde::Deserialize;

use super::VerifyError;

/// Base64url without padding, as in JWS. Trailing bits are tolerated because Go's
/// `base64.RawURLEncoding` (non-strict) accepts them, and a token Centrifugo accepts
/// must be accepted here too.
const B64URL: GeneralPurpose = GeneralPurpose::new(
    &alphabet::URL_SAFE,
    GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_allow_trailing_bits(true)
        .with_decode_padding_mode(DecodePaddingMode::RequireNone),
);

/// Standard base64 with padding, for `b64info`/`b64data` (Go `base64.StdEncoding`).
pub(super) const B64STD: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_allow_trailing_bits(true)
        .with_decode_padding_mode(DecodePaddingMode::RequireCanonical),
);

/// Signature algorithms Centrifugo accepts. `none` and PS* are deliberately absent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Alg {
    HS256,
    HS384,
    HS512,
    RS256,
    RS384,
    RS512,
    ES256,
    ES384,
    ES512,
    EdDSA,
}

impl Alg {
    /// Exact, case-sensitive names (RFC 7518); anything else is unsupported.
    pub(super) fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "HS256" => Self::HS256,
            "HS384" => Self::HS384,
            "HS512" => Self::HS512,
            "RS256" => Self::RS256,
            "RS384" => Self::RS384,
            "RS512" => Self::RS512,
            "ES256" => Self::ES256,
            "ES384" => Self::ES384,
            "ES512" => Self::ES512,
            "EdDSA" => Self::EdDSA,
            _ => return None,
        })
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Header {
    #[serde(deserialize_with = "super::claims::nullable")]
    alg: String,
    #[serde(deserialize_with = "super::claims::nullable")]
    kid: String,
}

/// A token split into parts; nothing is verified yet.
#[derive(Debug)]
pub(super) struct RawToken<'a> {
    /// `alg` from the header, as written (may be unsupported; checked at verification).
    pub(super) alg: String,
    pub(super) kid: String,
    /// Decoded claims JSON.
    pub(super) claims: Vec<u8>,
    /// `base64(header) "." base64(claims)`: the bytes the signature covers.
    pub(super) signing_input: &'a str,
    pub(super) signature: Vec<u8>,
}

fn invalid_format() -> VerifyError {
    VerifyError::Invalid("token has invalid format".into())
}

/// Splits and decodes a compact JWS. Mirrors `cristalhq/jwt` `ParseNoVerify`: the token
/// must start with `eyJ` (`{"`), the header and signature are delimited by the first and
/// the last dot, and every part must be valid base64url.
pub(super) fn parse(token: &str) -> Result<RawToken<'_>, VerifyError> {
    if !token.starts_with("eyJ") {
        return Err(invalid_format());
    }
    let (Some(dot1), Some(dot2)) = (token.find('.'), token.rfind('.')) else {
        return Err(invalid_format());
    };
    if dot2 <= dot1 {
        return Err(invalid_format());
    }
    let header = B64URL
        .decode(&token[..dot1])
        .map_err(|_| invalid_format())?;
    let header: Header = serde_json::from_slice(&header).map_err(|_| invalid_format())?;
    let claims = B64URL
        .decode(&token[dot1 + 1..dot2])
        .map_err(|_| invalid_format())?;
    let signature = B64URL
        .decode(&token[dot2 + 1..])
        .map_err(|_| invalid_format())?;
    // `alg: none` is refused even when signature verification is switched off: an unsigned
    // token is never a credential, and refusing it early keeps it out of every code path.
    if header.alg.eq_ignore_ascii_case("none") {
        return Err(VerifyError::Invalid(
            "unsigned token (alg none) is not allowed".into(),
        ));
    }
    Ok(RawToken {
        alg: header.alg,
        kid: header.kid,
        claims,
        signing_input: &token[..dot2],
        signature,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_garbage_shapes() {
        for t in [
            "",
            "abc",
            "eyJ",
            "eyJhbGciOiJIUzI1NiJ9",
            "eyJhbGciOiJIUzI1NiJ9.",
            "eyJ!!!.e30.",
            "eyJhbGciOiJIUzI1NiJ9.e30=.",
            "eyJhbGciOiJIUzI1NiJ9.e30.a=",
        ] {
            assert!(parse(t).is_err(), "{t:?} must not parse");
        }
    }

    #[test]
    fn splits_on_first_and_last_dot() {
        // {"alg":"HS256","kid":"k"} . {} . (empty signature)
        let header = B64URL.encode(br#"{"alg":"HS256","kid":"k"}"#);
        let t = format!("{header}.e30.");
        let raw = parse(&t).unwrap();
        assert_eq!(raw.alg, "HS256");
        assert_eq!(raw.kid, "k");
        assert_eq!(raw.claims, b"{}");
        assert_eq!(raw.signing_input, format!("{header}.e30"));
        assert!(raw.signature.is_empty());
        // A four-part token puts a dot inside the claims part, which is not base64.
        assert!(parse(&format!("{header}.e30.e30.")).is_err());
    }

    #[test]
    fn rejects_alg_none_in_any_case() {
        for alg in ["none", "None", "NONE"] {
            let header = B64URL.encode(format!(r#"{{"alg":"{alg}"}}"#));
            let err = parse(&format!("{header}.e30.")).unwrap_err();
            assert!(matches!(err, VerifyError::Invalid(m) if m.contains("alg none")));
        }
    }
}
