//! Connection tokens against the real binary: every algorithm family accepted, each
//! rejection answered with Centrifugo's code.

mod support;

use base64::Engine as _;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use support::{Server, WsClient, now};

const SECRET: &str = "binary-secret";

fn fixture(name: &str) -> String {
    std::fs::read_to_string(format!(
        "{}/tests/fixtures/jwt/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

fn server(extra_token_keys: Value) -> Server {
    let mut token = json!({
        "hmac_secret_key": SECRET,
        "rsa_public_key": fixture("rsa_public.pem"),
        "ecdsa_public_key": fixture("ec_p256_public.pem"),
    });
    for (k, v) in extra_token_keys.as_object().unwrap() {
        token[k] = v.clone();
    }
    Server::start(json!({"client": {"token": token}}))
}

fn sign(alg: Algorithm, key: &EncodingKey, claims: Value) -> String {
    jsonwebtoken::encode(&Header::new(alg), &claims, key).unwrap()
}

async fn connect(server: &Server, token: &str) -> support::Reply {
    WsClient::connect(&server.ws_url(), json!({"token": token}))
        .await
        .1
}

#[tokio::test]
async fn every_algorithm_family_is_accepted() {
    let server = server(json!({}));
    let claims = json!({"sub": "42", "exp": now() + 600});
    let hmac = EncodingKey::from_secret(SECRET.as_bytes());
    let rsa = EncodingKey::from_rsa_pem(fixture("rsa_private.pem").as_bytes()).unwrap();
    let ec = EncodingKey::from_ec_pem(fixture("ec_p256_private.pem").as_bytes()).unwrap();
    for (alg, key) in [
        (Algorithm::HS256, &hmac),
        (Algorithm::HS384, &hmac),
        (Algorithm::HS512, &hmac),
        (Algorithm::RS256, &rsa),
        (Algorithm::RS384, &rsa),
        (Algorithm::RS512, &rsa),
        (Algorithm::ES256, &ec),
    ] {
        let reply = connect(&server, &sign(alg, key, claims.clone())).await;
        let result = match reply {
            support::Reply::Ok(v) => v,
            other => panic!("{alg:?} refused: {other:?}"),
        };
        assert!(result["client"].is_string(), "{alg:?}");
    }
}

#[tokio::test]
async fn rejections_carry_centrifugo_codes() {
    let server = server(json!({"audience": "gyre-tests"}));
    let hmac = EncodingKey::from_secret(SECRET.as_bytes());
    let good = json!({"sub": "42", "aud": "gyre-tests", "exp": now() + 600});

    // Expired: an error the SDK answers with a new token.
    let expired = json!({"sub": "42", "aud": "gyre-tests", "exp": now() - 10});
    let reply = connect(&server, &sign(Algorithm::HS256, &hmac, expired)).await;
    assert_eq!(reply.error(), Some(109), "{reply:?}");

    // Signed with another key.
    let other = EncodingKey::from_secret(b"someone else");
    let reply = connect(&server, &sign(Algorithm::HS256, &other, good.clone())).await;
    assert_eq!(reply.closed(), Some(3500), "{reply:?}");

    // Wrong audience.
    let wrong_aud = json!({"sub": "42", "aud": "elsewhere", "exp": now() + 600});
    let reply = connect(&server, &sign(Algorithm::HS256, &hmac, wrong_aud)).await;
    assert_eq!(reply.closed(), Some(3500), "{reply:?}");

    // `alg: none` with no signature at all.
    let b64 = |v: &Value| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string().as_bytes())
    };
    let none = format!(
        "{}.{}.",
        b64(&json!({"alg": "none", "typ": "JWT"})),
        b64(&good)
    );
    let reply = connect(&server, &none).await;
    assert_eq!(reply.closed(), Some(3500), "{reply:?}");

    // Key confusion: an HS256 token whose secret is the server's RSA public key.
    let confused = EncodingKey::from_secret(fixture("rsa_public.pem").as_bytes());
    let reply = connect(&server, &sign(Algorithm::HS256, &confused, good.clone())).await;
    assert_eq!(reply.closed(), Some(3500), "{reply:?}");

    // And the right token still works on the same server.
    let reply = connect(&server, &sign(Algorithm::HS256, &hmac, good)).await;
    assert!(matches!(reply, support::Reply::Ok(_)), "{reply:?}");
}
