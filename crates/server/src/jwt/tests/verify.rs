use bytes::Bytes;
use jsonwebtoken::Algorithm;
use serde_json::json;

use super::*;
use crate::jwt::Overrides;

fn rsa_cfg(pem: &str) -> VerifierConfig {
    VerifierConfig {
        rsa_public_key: fixture(pem),
        ..Default::default()
    }
}

fn ec_cfg(pem: &str) -> VerifierConfig {
    VerifierConfig {
        ecdsa_public_key: fixture(pem),
        ..Default::default()
    }
}

fn claims() -> Value {
    json!({"sub": "42", "exp": now() + 600})
}

#[tokio::test]
async fn every_static_algorithm_is_accepted() {
    let cases: Vec<(VerifierConfig, String)> = vec![
        (hmac_cfg(), sign(Algorithm::HS256, &claims(), None)),
        (hmac_cfg(), sign(Algorithm::HS384, &claims(), None)),
        (hmac_cfg(), sign(Algorithm::HS512, &claims(), None)),
        (
            rsa_cfg("rsa_public.pem"),
            sign(Algorithm::RS256, &claims(), None),
        ),
        (
            rsa_cfg("rsa_public.pem"),
            sign(Algorithm::RS384, &claims(), None),
        ),
        (
            rsa_cfg("rsa_public.pem"),
            sign(Algorithm::RS512, &claims(), None),
        ),
        (
            rsa_cfg("rsa_public_pkcs1.pem"),
            sign(Algorithm::RS256, &claims(), None),
        ),
        (
            rsa_cfg("rsa_cert.pem"),
            sign(Algorithm::RS256, &claims(), None),
        ),
        (
            ec_cfg("ec_p256_public.pem"),
            sign(Algorithm::ES256, &claims(), None),
        ),
        (
            ec_cfg("ec_p384_public.pem"),
            sign(Algorithm::ES384, &claims(), None),
        ),
        (ec_cfg("ec_p521_public.pem"), sign_es512(&claims(), None)),
    ];
    for (i, (cfg, token)) in cases.into_iter().enumerate() {
        let ct = verifier(cfg).verify_connect_token(&token).await;
        assert_eq!(ct.map(|c| c.user_id), Ok("42".to_owned()), "case {i}");
    }
}

#[tokio::test]
async fn all_key_kinds_together_pick_the_key_by_alg() {
    let cfg = VerifierConfig {
        hmac_secret_key: SECRET.into(),
        rsa_public_key: fixture("rsa_public.pem"),
        ecdsa_public_key: fixture("ec_p384_public.pem"),
        ..Default::default()
    };
    let v = verifier(cfg);
    for alg in [Algorithm::HS512, Algorithm::RS512, Algorithm::ES384] {
        assert!(
            v.verify_connect_token(&sign(alg, &claims(), None))
                .await
                .is_ok(),
            "{alg:?}"
        );
    }
    // The EC key is P-384, so ES256 is disabled like in Centrifugo.
    assert_invalid(
        v.verify_connect_token(&sign(Algorithm::ES256, &claims(), None))
            .await,
        "disabled JWT algorithm",
    );
}

#[tokio::test]
async fn expired_and_not_yet_valid_tokens_are_expired() {
    let v = verifier(hmac_cfg());
    let t = sign(
        Algorithm::HS256,
        &json!({"sub": "1", "exp": now() - 1}),
        None,
    );
    assert_eq!(
        v.verify_connect_token(&t).await.unwrap_err(),
        VerifyError::Expired
    );
    assert_eq!(
        v.verify_subscribe_token(&sign(
            Algorithm::HS256,
            &json!({"sub": "1", "channel": "c", "exp": now() - 1}),
            None
        ))
        .await
        .unwrap_err(),
        VerifyError::Expired
    );
    // No leeway: `exp` equal to the current second has already passed (now has a fraction).
    let t = sign(Algorithm::HS256, &json!({"exp": now()}), None);
    assert_eq!(
        v.verify_connect_token(&t).await.unwrap_err(),
        VerifyError::Expired
    );
    let t = sign(Algorithm::HS256, &json!({"nbf": now() + 60}), None);
    assert_eq!(
        v.verify_connect_token(&t).await.unwrap_err(),
        VerifyError::Expired
    );
    let t = sign(
        Algorithm::HS256,
        &json!({"nbf": now() - 1, "exp": now() + 60}),
        None,
    );
    assert!(v.verify_connect_token(&t).await.is_ok());
    // Fractional and string-encoded dates are numbers too (Go json.Number).
    let t = sign(
        Algorithm::HS256,
        &json!({"exp": (now() - 10) as f64 + 0.5}),
        None,
    );
    assert_eq!(
        v.verify_connect_token(&t).await.unwrap_err(),
        VerifyError::Expired
    );
    let t = sign(
        Algorithm::HS256,
        &json!({"exp": (now() + 60).to_string()}),
        None,
    );
    assert_eq!(
        v.verify_connect_token(&t).await.unwrap().expire_at,
        now() + 60
    );
    // Absurd dates neither overflow nor expire.
    let t = sign(
        Algorithm::HS256,
        &json!({"exp": 1e300, "nbf": -1e300}),
        None,
    );
    assert!(v.verify_connect_token(&t).await.is_ok());
    let t = sign(Algorithm::HS256, &json!({"exp": "soon"}), None);
    assert_invalid(v.verify_connect_token(&t).await, "bad claims");
}

#[tokio::test]
async fn a_bad_signature_is_invalid_even_when_expired() {
    let v = verifier(hmac_cfg());
    let t = hs256("another-secret", &json!({"sub": "1", "exp": now() - 10}));
    assert_invalid(v.verify_connect_token(&t).await, "invalid signature");

    let v = verifier(rsa_cfg("rsa_public.pem"));
    let good = sign(Algorithm::RS256, &json!({"sub": "1"}), None);
    let forged_claims = URL_SAFE_NO_PAD.encode(br#"{"sub":"admin"}"#);
    let parts: Vec<&str> = good.split('.').collect();
    let forged = format!("{}.{forged_claims}.{}", parts[0], parts[2]);
    assert_invalid(v.verify_connect_token(&forged).await, "invalid signature");

    let v = verifier(ec_cfg("ec_p521_public.pem"));
    let good = sign_es512(&json!({"sub": "1"}), None);
    let forged = format!(
        "{}.{forged_claims}.{}",
        &good[..good.find('.').unwrap()],
        &good[good.rfind('.').unwrap() + 1..]
    );
    assert_invalid(v.verify_connect_token(&forged).await, "invalid signature");
}

#[tokio::test]
async fn audience_and_issuer_are_checked_only_when_configured() {
    let token = sign(
        Algorithm::HS256,
        &json!({"sub": "1", "aud": ["a", "b"], "iss": "https://issuer"}),
        None,
    );
    assert!(
        verifier(hmac_cfg())
            .verify_connect_token(&token)
            .await
            .is_ok()
    );

    let cfg = |aud: &str, iss: &str| VerifierConfig {
        audience: aud.into(),
        issuer: iss.into(),
        ..hmac_cfg()
    };
    assert!(
        verifier(cfg("b", "https://issuer"))
            .verify_connect_token(&token)
            .await
            .is_ok()
    );
    assert_invalid(
        verifier(cfg("c", "")).verify_connect_token(&token).await,
        "invalid audience",
    );
    assert_invalid(
        verifier(cfg("", "https://other"))
            .verify_subscribe_token(&token)
            .await,
        "invalid issuer",
    );

    let single = sign(Algorithm::HS256, &json!({"aud": "a"}), None);
    assert!(
        verifier(cfg("a", ""))
            .verify_connect_token(&single)
            .await
            .is_ok()
    );
    let none = sign(Algorithm::HS256, &json!({"sub": "1"}), None);
    assert_invalid(
        verifier(cfg("a", "")).verify_connect_token(&none).await,
        "invalid audience",
    );
    // `aud: null` or a number is malformed, as in cristalhq/jwt.
    for aud in [json!(null), json!(5), json!(["a", 1])] {
        let t = sign(Algorithm::HS256, &json!({"aud": aud}), None);
        assert_invalid(
            verifier(hmac_cfg()).verify_connect_token(&t).await,
            "bad claims",
        );
    }
}

#[tokio::test]
async fn audience_and_issuer_regexes() {
    let cfg = VerifierConfig {
        audience_regex: r"^app-(?P<env>prod|dev)$".into(),
        issuer_regex: r"^https://(?P<tenant>[a-z]+)\.example\.com$".into(),
        ..hmac_cfg()
    };
    let v = verifier(cfg);
    let ok = sign(
        Algorithm::HS256,
        &json!({"aud": ["x", "app-dev"], "iss": "https://acme.example.com"}),
        None,
    );
    assert!(v.verify_connect_token(&ok).await.is_ok());
    let bad_aud = sign(
        Algorithm::HS256,
        &json!({"aud": "app-test", "iss": "https://acme.example.com"}),
        None,
    );
    assert_invalid(
        v.verify_connect_token(&bad_aud).await,
        "audience not matched",
    );
    let bad_iss = sign(
        Algorithm::HS256,
        &json!({"aud": "app-dev", "iss": "https://evil.com"}),
        None,
    );
    assert_invalid(v.verify_connect_token(&bad_iss).await, "issuer not matched");
    let no_iss = sign(Algorithm::HS256, &json!({"aud": "app-dev"}), None);
    assert_invalid(
        v.verify_subscribe_token(&no_iss).await,
        "issuer not matched",
    );
}

#[tokio::test]
async fn alg_none_is_always_rejected() {
    let claims = json!({"sub": "1", "channel": "c"}).to_string();
    for cfg in [
        hmac_cfg(),
        VerifierConfig {
            insecure_skip_token_signature_verify: true,
            ..hmac_cfg()
        },
    ] {
        let v = verifier(cfg);
        for header in [r#"{"alg":"none"}"#, r#"{"alg":"None","typ":"JWT"}"#] {
            let t = format!(
                "{}.{}.",
                URL_SAFE_NO_PAD.encode(header),
                URL_SAFE_NO_PAD.encode(&claims)
            );
            assert_invalid(v.verify_connect_token(&t).await, "alg none");
            assert_invalid(v.verify_subscribe_token(&t).await, "alg none");
        }
    }
}

#[tokio::test]
async fn unsupported_algorithms_are_rejected() {
    let v = verifier(VerifierConfig {
        rsa_public_key: fixture("rsa_public.pem"),
        ..hmac_cfg()
    });
    let ps = sign(Algorithm::PS256, &json!({"sub": "1"}), None);
    assert_invalid(
        v.verify_connect_token(&ps).await,
        "unsupported JWT algorithm: PS256",
    );
    // EdDSA only exists through JWKS.
    let ed = sign(Algorithm::EdDSA, &json!({"sub": "1"}), None);
    assert_invalid(
        v.verify_connect_token(&ed).await,
        "disabled JWT algorithm: EdDSA",
    );
    let weird = unsigned(r#"{"alg":"hs256"}"#, "{}");
    assert_invalid(
        v.verify_connect_token(&weird).await,
        "unsupported JWT algorithm",
    );
}

#[tokio::test]
async fn key_confusion_is_rejected() {
    // An HS token when only RSA is configured, signed with the RSA *public* key as the
    // HMAC secret (the classic attack): refused because HMAC is disabled.
    let public_pem = fixture("rsa_public.pem");
    let confused = hs256(&public_pem, &json!({"sub": "admin"}));
    let v = verifier(rsa_cfg("rsa_public.pem"));
    assert_invalid(
        v.verify_connect_token(&confused).await,
        "disabled JWT algorithm: HS256",
    );
    let v = verifier(ec_cfg("ec_p256_public.pem"));
    assert_invalid(
        v.verify_connect_token(&hs256(&fixture("ec_p256_public.pem"), &json!({})))
            .await,
        "disabled",
    );
    // With both configured the public key still never serves as an HMAC secret.
    let v = verifier(VerifierConfig {
        rsa_public_key: public_pem,
        ..hmac_cfg()
    });
    assert_invalid(v.verify_connect_token(&confused).await, "invalid signature");

    // A properly RSA-signed token when only HMAC is configured.
    let rs = sign(Algorithm::RS256, &json!({"sub": "1"}), None);
    assert_invalid(
        verifier(hmac_cfg()).verify_connect_token(&rs).await,
        "disabled JWT algorithm: RS256",
    );
    let es = sign(Algorithm::ES256, &json!({"sub": "1"}), None);
    assert_invalid(
        verifier(hmac_cfg()).verify_connect_token(&es).await,
        "disabled JWT algorithm: ES256",
    );
    // An RS token checked against an EC-only config.
    assert_invalid(
        verifier(ec_cfg("ec_p256_public.pem"))
            .verify_connect_token(&rs)
            .await,
        "disabled",
    );
    // Nothing configured at all: every algorithm is disabled.
    assert_invalid(
        verifier(VerifierConfig::default())
            .verify_connect_token(&rs)
            .await,
        "disabled",
    );
}

#[tokio::test]
async fn malformed_tokens_are_invalid() {
    let v = verifier(hmac_cfg());
    let good = sign(Algorithm::HS256, &json!({"sub": "1"}), None);
    let cases = [
        "".to_owned(),
        "not a token".to_owned(),
        good.replace('.', ""),
        format!("{good}.extra"),
        format!("{good}=="),
        good.replacen("eyJ", "eyK", 1),
        unsigned("not json", "{}"),
        unsigned(r#"{"alg":5}"#, "{}"),
        unsigned(r#"{"alg":"HS256"}"#, "not json"),
        unsigned(r#"{"alg":"HS256"}"#, "[1,2]"),
        unsigned(r#"{"alg":"HS256"}"#, r#"{"sub":5}"#),
        unsigned(r#"{"alg":"HS256"}"#, r#"{"channels":"a"}"#),
        unsigned(r#"{"alg":"HS256"}"#, r#"{"expire_at":1.5}"#),
        format!(
            "{}.!!!.{}",
            &good[..good.find('.').unwrap()],
            &good[good.rfind('.').unwrap() + 1..]
        ),
    ];
    for t in cases {
        assert!(
            matches!(
                v.verify_connect_token(&t).await,
                Err(VerifyError::Invalid(_))
            ),
            "{t:?}"
        );
        assert!(
            matches!(
                v.verify_subscribe_token(&t).await,
                Err(VerifyError::Invalid(_))
            ),
            "{t:?}"
        );
    }
}

#[tokio::test]
async fn channel_claim_rules() {
    let v = verifier(hmac_cfg());
    let with_channel = sign(
        Algorithm::HS256,
        &json!({"sub": "1", "channel": "news"}),
        None,
    );
    assert_invalid(
        v.verify_connect_token(&with_channel).await,
        "can not contain channel claim",
    );
    assert_eq!(
        v.verify_subscribe_token(&with_channel)
            .await
            .unwrap()
            .channel,
        "news"
    );

    let without = sign(Algorithm::HS256, &json!({"sub": "1"}), None);
    assert_invalid(
        v.verify_subscribe_token(&without).await,
        "channel claim is required",
    );
    // Upstream checks expiry before the missing channel.
    let expired = sign(
        Algorithm::HS256,
        &json!({"sub": "1", "exp": now() - 5}),
        None,
    );
    assert_eq!(
        v.verify_subscribe_token(&expired).await.unwrap_err(),
        VerifyError::Expired
    );
    // ... and the channel claim of a connection token before expiry.
    let both = sign(
        Algorithm::HS256,
        &json!({"channel": "x", "exp": now() - 5}),
        None,
    );
    assert_invalid(v.verify_connect_token(&both).await, "channel");
}

#[tokio::test]
async fn connect_claims_are_extracted() {
    let v = verifier(hmac_cfg());
    let exp = now() + 3600;
    let t = hs256_raw(&format!(
        r#"{{"sub":"42", "exp":{exp}, "info": {{"name": "Alice","n":[1, 2]}}, "channels":["a","b"],
            "meta":{{"z":1,"a":{{"deep":true}}}}}}"#
    ));
    let ct = v.verify_connect_token(&t).await.unwrap();
    assert_eq!(ct.user_id, "42");
    assert_eq!(ct.expire_at, exp);
    // Raw JSON is passed on as signed: key order and inner whitespace included.
    assert_eq!(
        ct.info,
        Bytes::from_static(br#"{"name": "Alice","n":[1, 2]}"#)
    );
    assert_eq!(ct.channels, ["a", "b"]);
    assert!(ct.subs.is_empty());
    assert_eq!(ct.meta.unwrap().get(), r#"{"z":1,"a":{"deep":true}}"#);

    let t = sign(
        Algorithm::HS256,
        &json!({
            "info": {"ignored": true},
            "b64info": STANDARD.encode(b"\x00\xffbinary"),
            "channels": ["ignored-because-subs"],
            "subs": {
                "news": {
                    "info": {"x": 1},
                    "b64data": STANDARD.encode(b"raw"),
                    "override": {
                        "presence": {"value": true},
                        "join_leave": {"value": false},
                        "force_push_join_leave": {},
                        "force_recovery": null,
                    },
                },
                "chat": {"data": "text", "b64info": STANDARD.encode(b"bi")},
            },
        }),
        None,
    );
    let ct = v.verify_connect_token(&t).await.unwrap();
    assert_eq!(ct.user_id, "", "no sub = anonymous");
    assert_eq!(ct.expire_at, 0);
    assert_eq!(ct.info, Bytes::from_static(b"\x00\xffbinary"));
    assert!(
        ct.channels.is_empty(),
        "subs takes precedence over channels"
    );
    assert!(ct.meta.is_none());
    let news = &ct.subs["news"];
    assert_eq!(news.info, Bytes::from_static(br#"{"x":1}"#));
    assert_eq!(news.data, Bytes::from_static(b"raw"));
    assert_eq!(
        news.overrides,
        Overrides {
            presence: Some(true),
            join_leave: Some(false),
            force_push_join_leave: Some(false),
            force_positioning: None,
            force_recovery: None,
        }
    );
    let chat = &ct.subs["chat"];
    assert_eq!(chat.info, Bytes::from_static(b"bi"));
    assert_eq!(chat.data, Bytes::from_static(br#""text""#));
    assert_eq!(chat.overrides, Overrides::default());

    // Bad base64 anywhere makes the token invalid.
    for c in [
        json!({"b64info": "!!"}),
        json!({"subs": {"a": {"b64data": "%%"}}}),
        json!({"subs": {"a": {"b64info": "YQ"}}}),
    ] {
        assert_invalid(
            v.verify_connect_token(&sign(Algorithm::HS256, &c, None))
                .await,
            "bad b64",
        );
    }
    // `null` info is kept as JSON null, like json.RawMessage.
    let ct = v
        .verify_connect_token(&sign(
            Algorithm::HS256,
            &json!({"info": null, "sub": null}),
            None,
        ))
        .await
        .unwrap();
    assert_eq!(ct.info, Bytes::from_static(b"null"));
}

#[tokio::test]
async fn expire_at_versus_exp() {
    let v = verifier(hmac_cfg());
    let exp = now() + 600;
    let cases = [
        (json!({"exp": exp}), exp),
        (json!({"exp": exp, "expire_at": exp + 100}), exp + 100),
        (json!({"exp": exp, "expire_at": 0}), 0),
        (json!({"exp": exp, "expire_at": -5}), 0),
        (json!({"exp": exp, "expire_at": null}), exp),
        (json!({}), 0),
    ];
    for (claims, want) in cases {
        let ct = v
            .verify_connect_token(&sign(Algorithm::HS256, &claims, None))
            .await
            .unwrap();
        assert_eq!(ct.expire_at, want, "connect {claims}");
        let mut sub = claims.clone();
        sub["channel"] = "c".into();
        let st = v
            .verify_subscribe_token(&sign(Algorithm::HS256, &sub, None))
            .await
            .unwrap();
        assert_eq!(st.expire_at, want, "subscribe {claims}");
    }
    // `expire_at` does not bypass `exp`.
    let t = sign(
        Algorithm::HS256,
        &json!({"exp": now() - 1, "expire_at": now() + 600}),
        None,
    );
    assert_eq!(
        v.verify_connect_token(&t).await.unwrap_err(),
        VerifyError::Expired
    );
    // Connection expiry is capped to one year ahead.
    let far = now() + 10 * 365 * 24 * 3600;
    let ct = v
        .verify_connect_token(&sign(Algorithm::HS256, &json!({"expire_at": far}), None))
        .await
        .unwrap();
    let cap = now() + 365 * 24 * 3600;
    assert!(
        (cap - 2..=cap).contains(&ct.expire_at),
        "{} vs {cap}",
        ct.expire_at
    );
}

#[tokio::test]
async fn subscribe_claims_are_extracted() {
    let v = verifier(hmac_cfg());
    let t = sign(
        Algorithm::HS256,
        &json!({
            "sub": "7", "channel": "$private", "client": "cid",
            "info": {"a": 1}, "data": [1], "b64data": STANDARD.encode(b"bin"),
            "override": {"force_positioning": {"value": true}, "presence": {"value": false}},
        }),
        None,
    );
    let st = v.verify_subscribe_token(&t).await.unwrap();
    assert_eq!(
        (st.user_id.as_str(), st.channel.as_str(), st.client.as_str()),
        ("7", "$private", "cid")
    );
    assert_eq!(st.info, Bytes::from_static(br#"{"a":1}"#));
    assert_eq!(
        st.data,
        Bytes::from_static(b"bin"),
        "b64data wins over data"
    );
    assert_eq!(st.overrides.force_positioning, Some(true));
    assert_eq!(st.overrides.presence, Some(false));
    assert_eq!(st.overrides.join_leave, None);
    assert_eq!(st.expire_at, 0);
}

#[tokio::test]
async fn user_id_claim_path() {
    let claims = json!({
        "sub": "ignored",
        "user": {"id": "u-1", "num": 12345678901234_i64, "f": 1.5, "ok": true, "obj": {"k": 1}},
        "arr": ["zero", "one"],
        "dotted.key": "d",
    });
    let t = sign(Algorithm::HS256, &claims, None);
    for (path, want) in [
        ("user.id", "u-1"),
        ("user.num", "12345678901234"),
        ("user.f", "1.5"),
        ("user.ok", "true"),
        ("user.obj", r#"{"k":1}"#),
        ("arr.1", "one"),
        (r"dotted\.key", "d"),
        ("user.missing", ""),
        ("arr.9", ""),
        ("sub", "ignored"),
    ] {
        let v = verifier(VerifierConfig {
            user_id_claim: path.into(),
            ..hmac_cfg()
        });
        assert_eq!(
            v.verify_connect_token(&t).await.unwrap().user_id,
            want,
            "{path}"
        );
        let mut sub = claims.clone();
        sub["channel"] = "c".into();
        let st = v
            .verify_subscribe_token(&sign(Algorithm::HS256, &sub, None))
            .await
            .unwrap();
        assert_eq!(st.user_id, want, "sub token {path}");
    }
}

#[tokio::test]
async fn hmac_rotation_accepts_the_previous_key_until_valid_until() {
    let old_token = hs256("old-secret", &json!({"sub": "1"}));
    let new_token = hs256("new-secret", &json!({"sub": "1"}));
    let cfg = |valid_until: i64| VerifierConfig {
        hmac_secret_key: "new-secret".into(),
        hmac_previous_secret_key: "old-secret".into(),
        hmac_previous_secret_key_valid_until: valid_until,
        ..Default::default()
    };
    for valid_until in [0, now() + 3600] {
        let v = verifier(cfg(valid_until));
        assert!(v.verify_connect_token(&new_token).await.is_ok());
        assert!(
            v.verify_connect_token(&old_token).await.is_ok(),
            "valid_until {valid_until}"
        );
    }
    let v = verifier(cfg(now() - 1));
    assert!(v.verify_connect_token(&new_token).await.is_ok());
    assert_invalid(
        v.verify_connect_token(&old_token).await,
        "invalid signature",
    );
    // A third key is never accepted.
    let v = verifier(cfg(0));
    assert_invalid(
        v.verify_connect_token(&hs256("other", &json!({}))).await,
        "invalid signature",
    );
}

#[tokio::test]
async fn insecure_skip_signature_still_checks_claims() {
    let v = verifier(VerifierConfig {
        insecure_skip_token_signature_verify: true,
        audience: "a".into(),
        ..Default::default()
    });
    let t = hs256("whatever", &json!({"sub": "9", "aud": "a"}));
    assert_eq!(v.verify_connect_token(&t).await.unwrap().user_id, "9");
    let t = hs256("whatever", &json!({"sub": "9", "aud": "b"}));
    assert_invalid(v.verify_connect_token(&t).await, "invalid audience");
    let t = hs256("whatever", &json!({"aud": "a", "exp": now() - 1}));
    assert_eq!(
        v.verify_connect_token(&t).await.unwrap_err(),
        VerifyError::Expired
    );
}

#[tokio::test]
async fn reload_swaps_keys_and_keeps_old_config_on_error() {
    let v = verifier(hmac_cfg());
    let shared = v.clone();
    let old = sign(Algorithm::HS256, &json!({"sub": "1"}), None);
    assert!(shared.verify_connect_token(&old).await.is_ok());

    v.reload(VerifierConfig {
        hmac_secret_key: "rotated".into(),
        ..Default::default()
    })
    .unwrap();
    assert_invalid(shared.verify_connect_token(&old).await, "invalid signature");
    assert!(
        shared
            .verify_connect_token(&hs256("rotated", &json!({})))
            .await
            .is_ok()
    );

    let broken = VerifierConfig {
        rsa_public_key: "not a pem".into(),
        ..Default::default()
    };
    assert!(v.reload(broken).is_err());
    assert!(
        shared
            .verify_connect_token(&hs256("rotated", &json!({})))
            .await
            .is_ok(),
        "old config stays"
    );
}
