//! Tests of the verifier against tokens signed with the fixture keys in
//! `tests/fixtures/jwt/` (test-only keys generated once with openssl).

mod cli;
mod config;
mod jwks;
mod props;
mod verify;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P521_SHA512_FIXED_SIGNING, EcdsaKeyPair, KeyPair as _};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

use super::{TokenVerifier, VerifierConfig, VerifyError};

pub(super) const SECRET: &str = "secret-for-tests";

pub(super) fn fixture(name: &str) -> String {
    let path = format!("{}/tests/fixtures/jwt/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

pub(super) fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

pub(super) fn pem_der(pem: &str) -> Vec<u8> {
    let b64: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    STANDARD.decode(b64).unwrap()
}

pub(super) fn encoding_key(alg: Algorithm) -> EncodingKey {
    let pem = |n: &str| fixture(n).into_bytes();
    match alg {
        Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512 => {
            EncodingKey::from_secret(SECRET.as_bytes())
        }
        Algorithm::RS256 | Algorithm::RS384 | Algorithm::RS512 | Algorithm::PS256 => {
            EncodingKey::from_rsa_pem(&pem("rsa_private.pem")).unwrap()
        }
        Algorithm::ES256 => EncodingKey::from_ec_pem(&pem("ec_p256_private.pem")).unwrap(),
        Algorithm::ES384 => EncodingKey::from_ec_pem(&pem("ec_p384_private.pem")).unwrap(),
        Algorithm::EdDSA => EncodingKey::from_ed_pem(&pem("ed25519_private.pem")).unwrap(),
        other => panic!("no fixture for {other:?}"),
    }
}

/// Signs `claims` with the fixture key for `alg`, with an optional `kid`.
pub(super) fn sign(alg: Algorithm, claims: &Value, kid: Option<&str>) -> String {
    let mut header = Header::new(alg);
    header.kid = kid.map(str::to_owned);
    jsonwebtoken::encode(&header, claims, &encoding_key(alg)).unwrap()
}

pub(super) fn hs256(secret: &str, claims: &Value) -> String {
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}

/// HS256 over claims JSON given verbatim (whitespace and key order preserved).
pub(super) fn hs256_raw(claims: &str) -> String {
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(r#"{"alg":"HS256","typ":"JWT"}"#),
        URL_SAFE_NO_PAD.encode(claims)
    );
    let sig = jsonwebtoken::crypto::sign(
        input.as_bytes(),
        &EncodingKey::from_secret(SECRET.as_bytes()),
        Algorithm::HS256,
    )
    .unwrap();
    format!("{input}.{sig}")
}

pub(super) fn p521_pair() -> EcdsaKeyPair {
    EcdsaKeyPair::from_pkcs8(
        &ECDSA_P521_SHA512_FIXED_SIGNING,
        &pem_der(&fixture("ec_p521_private.pem")),
    )
    .unwrap()
}

/// ES512 is not in jsonwebtoken, so these tokens are assembled by hand.
pub(super) fn sign_es512(claims: &Value, kid: Option<&str>) -> String {
    let mut header = json!({"alg": "ES512", "typ": "JWT"});
    if let Some(k) = kid {
        header["kid"] = k.into();
    }
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let sig = p521_pair()
        .sign(&SystemRandom::new(), input.as_bytes())
        .unwrap();
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig.as_ref()))
}

pub(super) fn p521_public_point() -> Vec<u8> {
    p521_pair().public_key().as_ref().to_vec()
}

/// A token with arbitrary header and claims JSON and a junk signature.
pub(super) fn unsigned(header: &str, claims: &str) -> String {
    format!(
        "{}.{}.c2ln",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(claims)
    )
}

pub(super) fn hmac_cfg() -> VerifierConfig {
    VerifierConfig {
        hmac_secret_key: SECRET.into(),
        ..Default::default()
    }
}

pub(super) fn verifier(cfg: VerifierConfig) -> TokenVerifier {
    TokenVerifier::new(cfg).unwrap()
}

#[track_caller]
pub(super) fn assert_invalid<T: std::fmt::Debug>(res: Result<T, VerifyError>, needle: &str) {
    match res {
        Err(VerifyError::Invalid(msg)) => {
            assert!(msg.contains(needle), "{msg:?} does not mention {needle:?}")
        }
        other => panic!("expected Invalid({needle:?}), got {other:?}"),
    }
}
