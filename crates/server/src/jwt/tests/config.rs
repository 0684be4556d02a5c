use super::*;
use crate::jwt::JwtError;

fn err(cfg: VerifierConfig) -> JwtError {
    TokenVerifier::new(cfg).unwrap_err()
}

#[test]
fn conflicting_and_broken_settings_are_refused() {
    let both_aud = VerifierConfig {
        audience: "a".into(),
        audience_regex: "a".into(),
        ..hmac_cfg()
    };
    assert!(matches!(err(both_aud), JwtError::AudienceConflict));
    let both_iss = VerifierConfig {
        issuer: "a".into(),
        issuer_regex: "a".into(),
        ..hmac_cfg()
    };
    assert!(matches!(err(both_iss), JwtError::IssuerConflict));
    let bad_re = VerifierConfig {
        issuer_regex: "(".into(),
        ..hmac_cfg()
    };
    assert!(matches!(err(bad_re), JwtError::Regex { .. }));
    let bad_rsa = VerifierConfig {
        rsa_public_key: "garbage".into(),
        ..hmac_cfg()
    };
    assert!(err(bad_rsa).to_string().contains("RSA public key"));
    // An EC key given as the RSA key (and vice versa) is refused at start-up.
    let swapped = VerifierConfig {
        rsa_public_key: fixture("ec_p256_public.pem"),
        ..hmac_cfg()
    };
    assert!(matches!(err(swapped), JwtError::Key(_)));
    let swapped = VerifierConfig {
        ecdsa_public_key: fixture("rsa_public.pem"),
        ..hmac_cfg()
    };
    assert!(matches!(err(swapped), JwtError::Key(_)));
    let scheme = VerifierConfig {
        jwks_public_endpoint: "ftp://keys".into(),
        ..Default::default()
    };
    assert!(matches!(err(scheme), JwtError::Jwks(_)));
}

#[test]
fn jwks_template_variables_must_come_from_fixed_alternatives() {
    let cfg = |endpoint: &str, issuer_regex: &str| VerifierConfig {
        jwks_public_endpoint: endpoint.into(),
        issuer_regex: issuer_regex.into(),
        ..Default::default()
    };
    let endpoint = "https://{{tenant}}.auth.example.com/jwks";
    for safe in [
        r"^https://(?P<tenant>acme|globex)\.example\.com$",
        r"^(?P<tenant>acme)$",
        r"^(?<tenant>a(?:b|c)d|(?i)e)$",
        // A group that is not used in the template may be anything.
        r"^(?P<tenant>acme|globex)/(?P<other>.*)$",
    ] {
        assert!(TokenVerifier::new(cfg(endpoint, safe)).is_ok(), "{safe}");
    }
    for unsafe_re in [
        r"^https://(?P<tenant>.+)\.example\.com$",
        r"^(?P<tenant>[a-z]+)$",
        r"^(?P<tenant>\w+)$",
        r"^(?P<tenant>acme|glo+bex)$",
        r"^(?P<tenant>a|b)?$x(?P<tenant2>^)",
    ] {
        let e = err(cfg("https://h/{{tenant}}{{tenant2}}", unsafe_re));
        assert!(
            matches!(e, JwtError::UnsafeJwksTemplate(_)),
            "{unsafe_re}: {e}"
        );
    }
    // Without placeholders nothing is checked; with the escape hatch it is only logged.
    assert!(TokenVerifier::new(cfg("https://h/jwks", r"^(?P<tenant>.+)$")).is_ok());
    let hatch = VerifierConfig {
        insecure_skip_jwks_endpoint_safety_check: true,
        ..cfg(endpoint, r"(?P<tenant>.+)")
    };
    assert!(TokenVerifier::new(hatch).is_ok());
}

#[test]
fn debug_output_hides_hmac_secrets() {
    let cfg = VerifierConfig {
        hmac_previous_secret_key: "old-one".into(),
        ..hmac_cfg()
    };
    let shown = format!("{cfg:?} {:?}", verifier(cfg.clone()));
    assert!(
        !shown.contains(SECRET) && !shown.contains("old-one"),
        "{shown}"
    );
    assert!(shown.contains("[redacted]"));
}
