//! Signature verification with configured keys (HMAC secret, RSA and ECDSA PEM keys) and
//! with keys fetched from a JWKS endpoint.
//!
//! Every key is bound to one algorithm family, so a token can only be checked with a key of
//! the family its `alg` names: an HS token is never checked against an RSA public key
//! (the classic key-confusion attack) and an RS token never against the HMAC secret.

use aws_lc_rs::signature::{ECDSA_P521_SHA512_FIXED, UnparsedPublicKey};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey};

use super::token::Alg;

/// NIST curves Centrifugo accepts for ECDSA.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Curve {
    P256,
    P384,
    P521,
}

impl Curve {
    /// The one algorithm a key on this curve verifies (Go `jwt.NewVerifierES` refuses
    /// a key whose size does not match the algorithm).
    fn alg(self) -> Alg {
        match self {
            Self::P256 => Alg::ES256,
            Self::P384 => Alg::ES384,
            Self::P521 => Alg::ES512,
        }
    }

    /// Curve of an uncompressed SEC1 point `04 || x || y`, from its length.
    fn of_point(point: &[u8]) -> Option<Self> {
        match (point.first(), point.len()) {
            (Some(4), 65) => Some(Self::P256),
            (Some(4), 97) => Some(Self::P384),
            (Some(4), 133) => Some(Self::P521),
            _ => None,
        }
    }

    pub(super) fn from_jwk_name(crv: &str) -> Option<Self> {
        match crv {
            "P-256" => Some(Self::P256),
            "P-384" => Some(Self::P384),
            "P-521" => Some(Self::P521),
            _ => None,
        }
    }
}

/// One public (or HMAC) key, tied to its algorithm family.
#[derive(Clone)]
pub(super) enum Key {
    Hmac(DecodingKey),
    Rsa(DecodingKey),
    /// `key` holds the uncompressed SEC1 point.
    Ec {
        curve: Curve,
        key: DecodingKey,
    },
    Ed25519(DecodingKey),
}

impl std::fmt::Debug for Key {
    // Never print key material (the HMAC secret in particular).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Hmac(_) => f.write_str("Key::Hmac"),
            Self::Rsa(_) => f.write_str("Key::Rsa"),
            Self::Ec { curve, .. } => write!(f, "Key::Ec({curve:?})"),
            Self::Ed25519(_) => f.write_str("Key::Ed25519"),
        }
    }
}

impl Key {
    pub(super) fn ec_from_point(point: &[u8]) -> Option<Self> {
        Curve::of_point(point).map(|curve| Self::Ec {
            curve,
            key: DecodingKey::from_ec_der(point),
        })
    }

    /// Whether this key may verify `alg`.
    pub(super) fn accepts(&self, alg: Alg) -> bool {
        match self {
            Self::Hmac(_) => matches!(alg, Alg::HS256 | Alg::HS384 | Alg::HS512),
            Self::Rsa(_) => matches!(alg, Alg::RS256 | Alg::RS384 | Alg::RS512),
            Self::Ec { curve, .. } => curve.alg() == alg,
            Self::Ed25519(_) => alg == Alg::EdDSA,
        }
    }

    /// Checks `signature` over `signing_input`; the caller has checked [`Key::accepts`].
    pub(super) fn verify(
        &self,
        alg: Alg,
        signing_input: &str,
        signature: &[u8],
    ) -> Result<(), String> {
        if !self.accepts(alg) {
            return Err(format!("key can not verify {alg:?}"));
        }
        let ok = match self {
            // jsonwebtoken has no ES512, so P-521 goes straight to aws-lc-rs (its backend).
            Self::Ec {
                curve: Curve::P521,
                key,
            } => {
                let point = key.try_get_as_bytes().map_err(|e| e.to_string())?;
                UnparsedPublicKey::new(&ECDSA_P521_SHA512_FIXED, point)
                    .verify(signing_input.as_bytes(), signature)
                    .is_ok()
            }
            Self::Hmac(k) | Self::Rsa(k) | Self::Ec { key: k, .. } | Self::Ed25519(k) => {
                jwt_verify(k, alg, signing_input, signature)?
            }
        };
        if ok {
            Ok(())
        } else {
            Err("invalid signature".into())
        }
    }
}

fn jwt_verify(
    key: &DecodingKey,
    alg: Alg,
    signing_input: &str,
    signature: &[u8],
) -> Result<bool, String> {
    let alg = match alg {
        Alg::HS256 => Algorithm::HS256,
        Alg::HS384 => Algorithm::HS384,
        Alg::HS512 => Algorithm::HS512,
        Alg::RS256 => Algorithm::RS256,
        Alg::RS384 => Algorithm::RS384,
        Alg::RS512 => Algorithm::RS512,
        Alg::ES256 => Algorithm::ES256,
        Alg::ES384 => Algorithm::ES384,
        Alg::EdDSA => Algorithm::EdDSA,
        Alg::ES512 => return Err("ES512 is verified by aws-lc-rs directly".into()),
    };
    // jsonwebtoken takes the signature as base64url text; we decoded it leniently at
    // parse time (Go accepts non-canonical trailing bits), so re-encode canonically.
    let sig = URL_SAFE_NO_PAD.encode(signature);
    jsonwebtoken::crypto::verify(&sig, signing_input.as_bytes(), key, alg)
        .map_err(|e| e.to_string())
}

/// Keys from `hmac_secret_key`, `rsa_public_key` and `ecdsa_public_key`.
#[derive(Debug, Default, Clone)]
pub(super) struct StaticKeys {
    hmac: Option<Key>,
    rsa: Option<Key>,
    ec: Option<Key>,
}

impl StaticKeys {
    /// Empty strings leave an algorithm family disabled.
    pub(super) fn new(hmac_secret: &str, rsa_pem: &str, ec_pem: &str) -> Result<Self, String> {
        let hmac = (!hmac_secret.is_empty())
            .then(|| Key::Hmac(DecodingKey::from_secret(hmac_secret.as_bytes())));
        let rsa = if rsa_pem.is_empty() {
            None
        } else {
            let k = DecodingKey::from_rsa_pem(rsa_pem.as_bytes())
                .map_err(|e| format!("error parsing RSA public key: {e}"))?;
            Some(Key::Rsa(k))
        };
        let ec = if ec_pem.is_empty() {
            None
        } else {
            let k = DecodingKey::from_ec_pem(ec_pem.as_bytes())
                .map_err(|e| format!("error parsing ECDSA public key: {e}"))?;
            let point = k.try_get_as_bytes().map_err(|e| e.to_string())?;
            Some(
                Key::ec_from_point(point)
                    .ok_or("error parsing ECDSA public key: unsupported curve")?,
            )
        };
        Ok(Self { hmac, rsa, ec })
    }

    pub(super) fn verify(
        &self,
        alg_name: &str,
        signing_input: &str,
        signature: &[u8],
    ) -> Result<(), String> {
        let alg = Alg::from_name(alg_name)
            .ok_or_else(|| format!("unsupported JWT algorithm: {alg_name}"))?;
        let key = [&self.hmac, &self.rsa, &self.ec]
            .into_iter()
            .flatten()
            .find(|k| k.accepts(alg))
            .ok_or_else(|| format!("disabled JWT algorithm: {alg_name}"))?;
        key.verify(alg, signing_input, signature)
    }
}
