use super::*;
use crate::jwt::cli;

#[tokio::test]
async fn gentoken_round_trips_through_the_verifier() {
    let cfg = hmac_cfg();
    let token = cli::gentoken(&cfg, "42", 3600).unwrap();
    let ct = verifier(cfg.clone())
        .verify_connect_token(&token)
        .await
        .unwrap();
    assert_eq!(ct.user_id, "42");
    assert!((now() + 3599..=now() + 3600).contains(&ct.expire_at));
    // HS256 with Centrifugo's claims.
    let raw = crate::jwt::token::parse(&token).unwrap();
    assert_eq!(raw.alg, "HS256");
    let claims: Value = serde_json::from_slice(&raw.claims).unwrap();
    assert_eq!(claims["sub"], "42");
    assert!(claims["iat"].is_i64());

    let forever = cli::gentoken(&cfg, "", -1).unwrap();
    let ct = verifier(cfg.clone())
        .verify_connect_token(&forever)
        .await
        .unwrap();
    assert_eq!((ct.user_id.as_str(), ct.expire_at), ("", 0));
    let claims: Value =
        serde_json::from_slice(&crate::jwt::token::parse(&forever).unwrap().claims).unwrap();
    assert!(
        claims.get("sub").is_none() && claims.get("exp").is_none(),
        "{claims}"
    );
}

#[tokio::test]
async fn gentoken_honours_user_id_claim() {
    let cfg = VerifierConfig {
        user_id_claim: "user.id".into(),
        ..hmac_cfg()
    };
    let token = cli::gentoken(&cfg, "u-7", 60).unwrap();
    assert_eq!(
        verifier(cfg.clone())
            .verify_connect_token(&token)
            .await
            .unwrap()
            .user_id,
        "u-7"
    );
    let sub = cli::gensubtoken(&cfg, "u-7", "chat", 60).unwrap();
    assert_eq!(
        verifier(cfg)
            .verify_subscribe_token(&sub)
            .await
            .unwrap()
            .user_id,
        "u-7"
    );
}

#[tokio::test]
async fn gensubtoken_round_trips() {
    let cfg = hmac_cfg();
    let token = cli::gensubtoken(&cfg, "42", "$secret", 60).unwrap();
    let st = verifier(cfg.clone())
        .verify_subscribe_token(&token)
        .await
        .unwrap();
    assert_eq!(
        (st.user_id.as_str(), st.channel.as_str()),
        ("42", "$secret")
    );
    assert!(st.expire_at > now());
    // A subscription token is not a connection token.
    assert!(
        verifier(cfg.clone())
            .verify_connect_token(&token)
            .await
            .is_err()
    );
    assert!(cli::gensubtoken(&cfg, "42", "", 60).is_err());
}

#[test]
fn generation_needs_an_hmac_secret() {
    let cfg = VerifierConfig {
        rsa_public_key: fixture("rsa_public.pem"),
        ..Default::default()
    };
    assert!(
        cli::gentoken(&cfg, "1", 60)
            .unwrap_err()
            .to_string()
            .contains("hmac_secret_key")
    );
    assert!(
        cli::gensubtoken(&cfg, "1", "c", 60)
            .unwrap_err()
            .to_string()
            .contains("hmac_secret_key")
    );
}

#[test]
fn generated_token_description_matches_centrifugo() {
    assert_eq!(
        cli::describe_generated("42", None, 3600 * 24 * 7, "T"),
        "HMAC SHA-256 JWT for user \"42\" with expiration TTL 168h0m0s:\nT"
    );
    assert_eq!(
        cli::describe_generated("", Some("news"), -1, "T"),
        "HMAC SHA-256 JWT for anonymous user and channel \"news\" without expiration:\nT"
    );
    assert_eq!(
        cli::describe_generated("a", None, 90, "T"),
        "HMAC SHA-256 JWT for user \"a\" with expiration TTL 1m30s:\nT"
    );
    assert_eq!(
        cli::describe_generated("a", None, 0, "T"),
        "HMAC SHA-256 JWT for user \"a\" with expiration TTL 0s:\nT"
    );
}

#[tokio::test]
async fn check_commands_report_validity() {
    let cfg = hmac_cfg();
    let token = cli::gentoken(&cfg, "42", 60).unwrap();
    let msg = cli::checktoken(&cfg, &token).await.unwrap();
    assert!(
        msg.starts_with("valid token for user 42\npayload: {"),
        "{msg}"
    );
    let anon = cli::gentoken(&cfg, "", 60).unwrap();
    assert!(
        cli::checktoken(&cfg, &anon)
            .await
            .unwrap()
            .starts_with("valid token for anonymous user")
    );

    let sub = cli::gensubtoken(&cfg, "42", "news", 60).unwrap();
    let msg = cli::checksubtoken(&cfg, &sub).await.unwrap();
    assert!(
        msg.starts_with("valid subscription token for user \"42\" and channel \"news\"\npayload: "),
        "{msg}"
    );

    let expired = hs256(SECRET, &json!({"sub": "1", "exp": now() - 1}));
    let e = cli::checktoken(&cfg, &expired)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("token with algorithm HS256 and claims {")
            && e.ends_with("has error: token expired"),
        "{e}"
    );
    let e = cli::checksubtoken(&cfg, &token)
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("channel claim is required"), "{e}");
    assert!(cli::checktoken(&cfg, "garbage").await.is_err());
    // The check commands verify signatures even if the server config skips them.
    let insecure = VerifierConfig {
        insecure_skip_token_signature_verify: true,
        ..cfg
    };
    let forged = hs256("other", &json!({"sub": "1"}));
    assert!(
        cli::checktoken(&insecure, &forged)
            .await
            .unwrap_err()
            .to_string()
            .contains("invalid signature")
    );
}
