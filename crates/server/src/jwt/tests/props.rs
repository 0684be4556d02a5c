//! Garbage in never panics the verifier; it yields an error.

use proptest::prelude::*;

use super::*;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Runs both verifications (a panic fails the property). The first verifier checks
/// signatures, so a random token must be refused by it; the insecure one may accept.
fn check(
    i: usize,
    v: &TokenVerifier,
    rt: &tokio::runtime::Runtime,
    token: &str,
) -> Result<(), TestCaseError> {
    let (c, s) = rt.block_on(async {
        (
            v.verify_connect_token(token).await,
            v.verify_subscribe_token(token).await,
        )
    });
    if i == 0 {
        prop_assert!(c.is_err() && s.is_err(), "random token accepted: {token:?}");
    }
    Ok(())
}

/// All static key kinds plus an insecure verifier, so the claim decoders run too.
fn verifiers() -> Vec<TokenVerifier> {
    vec![
        verifier(VerifierConfig {
            rsa_public_key: fixture("rsa_public.pem"),
            ecdsa_public_key: fixture("ec_p521_public.pem"),
            user_id_claim: "a.b.0".into(),
            ..hmac_cfg()
        }),
        verifier(VerifierConfig {
            insecure_skip_token_signature_verify: true,
            audience_regex: "(?P<x>a|b)".into(),
            ..Default::default()
        }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn random_strings_never_panic(s in ".{0,200}") {
        let rt = runtime();
        for (i, v) in verifiers().iter().enumerate() {
            check(i, v, &rt, &s)?;
        }
    }

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let rt = runtime();
        let s = String::from_utf8_lossy(&bytes);
        for (i, v) in verifiers().iter().enumerate() {
            check(i, v, &rt, &s)?;
        }
    }

    /// Well-formed base64 parts around random JSON-ish content reach the claim decoders.
    #[test]
    fn random_parts_never_panic(
        alg in prop_oneof![
            Just("HS256".to_owned()), Just("RS256".to_owned()), Just("ES512".to_owned()),
            Just("EdDSA".to_owned()), Just("none".to_owned()), "[^\"\\\\]{0,8}",
        ],
        claims in r#"\{("(sub|exp|nbf|aud|iss|info|b64info|channels|subs|meta|expire_at|channel|a)":(-?[0-9.e]{1,25}|"[^"]{0,10}"|null|true|\[\]|\{\}|\{"a":\{"b":\[1\]\}\}),?){0,6}\}"#,
        sig in proptest::collection::vec(any::<u8>(), 0..140),
    ) {
        let rt = runtime();
        let token = format!(
            "{}.{}.{}",
            URL_SAFE_NO_PAD.encode(format!(r#"{{"alg":"{alg}","kid":"k"}}"#)),
            URL_SAFE_NO_PAD.encode(&claims),
            URL_SAFE_NO_PAD.encode(&sig),
        );
        for (i, v) in verifiers().iter().enumerate() {
            check(i, v, &rt, &token)?;
        }
    }
}
