//! JWKS verification against a tiny local HTTP server that counts its requests.

use std::sync::Arc;
use std::sync::atomic::{AtomicU16, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use jsonwebtoken::jwk::Jwk;
use parking_lot::Mutex;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpListener;

use super::*;

/// Serves `body` with `status` to every request, after `delay_ms`, and records paths.
struct JwksServer {
    port: u16,
    hits: Arc<AtomicUsize>,
    body: Arc<Mutex<String>>,
    status: Arc<AtomicU16>,
    delay_ms: Arc<AtomicU64>,
    paths: Arc<Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for JwksServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl JwksServer {
    async fn start(body: String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let hits = Arc::new(AtomicUsize::new(0));
        let body = Arc::new(Mutex::new(body));
        let status = Arc::new(AtomicU16::new(200));
        let delay_ms = Arc::new(AtomicU64::new(0));
        let paths = Arc::new(Mutex::new(Vec::new()));
        let (h, b, s, d, p) = (
            hits.clone(),
            body.clone(),
            status.clone(),
            delay_ms.clone(),
            paths.clone(),
        );
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut sock, _)) = listener.accept().await else {
                    return;
                };
                let (h, b, s, d, p) = (h.clone(), b.clone(), s.clone(), d.clone(), p.clone());
                tokio::spawn(async move {
                    let mut req = Vec::new();
                    let mut buf = [0u8; 1024];
                    while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                        match sock.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => req.extend_from_slice(&buf[..n]),
                        }
                    }
                    h.fetch_add(1, Ordering::SeqCst);
                    let line = String::from_utf8_lossy(&req)
                        .lines()
                        .next()
                        .unwrap_or_default()
                        .to_owned();
                    p.lock()
                        .push(line.split(' ').nth(1).unwrap_or_default().to_owned());
                    tokio::time::sleep(Duration::from_millis(d.load(Ordering::SeqCst))).await;
                    let body = b.lock().clone();
                    let resp = format!(
                        "HTTP/1.1 {} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        s.load(Ordering::SeqCst),
                        body.len()
                    );
                    let _ = sock.write_all(resp.as_bytes()).await;
                    let _ = sock.shutdown().await;
                });
            }
        });
        Self {
            port,
            hits,
            body,
            status,
            delay_ms,
            paths,
            task,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

fn jwk(alg: Algorithm, kid: &str) -> Value {
    let mut v =
        serde_json::to_value(Jwk::from_encoding_key(&encoding_key(alg), alg).unwrap()).unwrap();
    v["kid"] = kid.into();
    v["use"] = "sig".into();
    v
}

fn p521_jwk(kid: &str) -> Value {
    let point = p521_public_point();
    json!({
        "kty": "EC", "crv": "P-521", "kid": kid, "use": "sig",
        "x": URL_SAFE_NO_PAD.encode(&point[1..67]),
        "y": URL_SAFE_NO_PAD.encode(&point[67..]),
    })
}

fn set(keys: &[Value]) -> String {
    json!({ "keys": keys }).to_string()
}

fn jwks_cfg(url: String) -> VerifierConfig {
    VerifierConfig {
        jwks_public_endpoint: url,
        ..Default::default()
    }
}

fn claims() -> Value {
    json!({"sub": "42", "exp": now() + 600})
}

#[tokio::test]
async fn tokens_are_verified_by_kid_and_keys_are_cached() {
    let server = JwksServer::start(set(&[
        jwk(Algorithm::RS256, "rsa"),
        jwk(Algorithm::ES256, "ec"),
        jwk(Algorithm::EdDSA, "ed"),
        p521_jwk("p521"),
    ]))
    .await;
    let v = verifier(jwks_cfg(server.url("/.well-known/jwks.json")));
    assert_eq!(
        server.hits(),
        0,
        "nothing is fetched before the first token"
    );

    let rs = sign(Algorithm::RS256, &claims(), Some("rsa"));
    assert_eq!(v.verify_connect_token(&rs).await.unwrap().user_id, "42");
    assert_eq!(server.hits(), 1);
    // Every key of the set was cached by the first fetch.
    let mut sub = claims();
    sub["channel"] = "c".into();
    for t in [
        sign(Algorithm::ES256, &claims(), Some("ec")),
        sign(Algorithm::EdDSA, &claims(), Some("ed")),
        sign_es512(&claims(), Some("p521")),
        sign(Algorithm::RS256, &claims(), Some("rsa")),
    ] {
        assert_eq!(v.verify_connect_token(&t).await.unwrap().user_id, "42");
    }
    assert!(
        v.verify_subscribe_token(&sign(Algorithm::ES256, &sub, Some("ec")))
            .await
            .is_ok()
    );
    assert_eq!(server.hits(), 1, "cache hits do not reach the endpoint");
    assert_eq!(server.paths.lock().as_slice(), ["/.well-known/jwks.json"]);

    // The static HMAC secret is not used when JWKS is configured.
    let cfg = VerifierConfig {
        hmac_secret_key: SECRET.into(),
        ..jwks_cfg(server.url("/jwks"))
    };
    let hs = sign(Algorithm::HS256, &claims(), Some("rsa"));
    assert_invalid(
        verifier(cfg).verify_connect_token(&hs).await,
        "algorithm mismatch",
    );
}

#[tokio::test]
async fn unknown_kid_refetches_once() {
    let server = JwksServer::start(set(&[jwk(Algorithm::RS256, "old")])).await;
    let v = verifier(jwks_cfg(server.url("/jwks")));
    assert!(
        v.verify_connect_token(&sign(Algorithm::RS256, &claims(), Some("old")))
            .await
            .is_ok()
    );
    assert_eq!(server.hits(), 1);

    // The issuer rotates: a token with the new kid triggers exactly one refetch.
    *server.body.lock() = set(&[jwk(Algorithm::RS256, "old"), jwk(Algorithm::ES256, "new")]);
    let new = sign(Algorithm::ES256, &claims(), Some("new"));
    assert!(v.verify_connect_token(&new).await.is_ok());
    assert_eq!(server.hits(), 2);
    assert!(v.verify_connect_token(&new).await.is_ok());
    assert_eq!(server.hits(), 2);

    // A kid the endpoint does not know: one fetch, then invalid.
    let unknown = sign(Algorithm::RS256, &claims(), Some("nope"));
    assert_invalid(
        v.verify_connect_token(&unknown).await,
        "public key not found",
    );
    assert_eq!(server.hits(), 3);

    // No kid at all: invalid without a request.
    assert_invalid(
        v.verify_connect_token(&sign(Algorithm::RS256, &claims(), None))
            .await,
        "kid is not provided",
    );
    assert_eq!(server.hits(), 3);
}

#[tokio::test]
async fn concurrent_misses_share_one_request() {
    let server = JwksServer::start(set(&[jwk(Algorithm::RS256, "k")])).await;
    server.delay_ms.store(200, Ordering::SeqCst);
    let v = verifier(jwks_cfg(server.url("/jwks")));
    let token = sign(Algorithm::RS256, &claims(), Some("k"));
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let (v, t) = (v.clone(), token.clone());
            tokio::spawn(async move { v.verify_connect_token(&t).await })
        })
        .collect();
    for t in tasks {
        assert!(t.await.unwrap().is_ok());
    }
    assert_eq!(server.hits(), 1);
}

#[tokio::test]
async fn endpoint_failures_make_tokens_invalid() {
    let server = JwksServer::start("not json".into()).await;
    let v = verifier(jwks_cfg(server.url("/jwks")));
    let token = sign(Algorithm::RS256, &claims(), Some("k"));
    assert_invalid(v.verify_connect_token(&token).await, "unmarshal");

    server.status.store(500, Ordering::SeqCst);
    let before = server.hits();
    assert_invalid(
        v.verify_connect_token(&token).await,
        "unexpected status code: 500",
    );
    assert_eq!(server.hits() - before, 2, "two attempts, like Centrifugo");

    // Nothing listening at all.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let v = verifier(jwks_cfg(format!("http://127.0.0.1:{closed}/jwks")));
    assert_invalid(v.verify_connect_token(&token).await, "jwks");

    // A slow endpoint hits the 1 s timeout.
    server.status.store(200, Ordering::SeqCst);
    *server.body.lock() = set(&[jwk(Algorithm::RS256, "k")]);
    server.delay_ms.store(1500, Ordering::SeqCst);
    let v = verifier(jwks_cfg(server.url("/slow")));
    assert_invalid(v.verify_connect_token(&token).await, "jwks");
}

#[tokio::test]
async fn key_algorithm_and_use_are_respected() {
    let mut pinned = jwk(Algorithm::RS256, "pinned");
    pinned["alg"] = "RS256".into();
    let mut free = jwk(Algorithm::RS256, "free");
    free.as_object_mut().unwrap().remove("alg");
    let mut enc = jwk(Algorithm::RS256, "enc");
    enc["use"] = "enc".into();
    let server = JwksServer::start(set(&[
        pinned,
        free,
        enc,
        json!({"kty": "weird", "kid": "w"}),
    ]))
    .await;
    let v = verifier(jwks_cfg(server.url("/jwks")));
    assert!(
        v.verify_connect_token(&sign(Algorithm::RS256, &claims(), Some("pinned")))
            .await
            .is_ok()
    );
    assert_invalid(
        v.verify_connect_token(&sign(Algorithm::RS384, &claims(), Some("pinned")))
            .await,
        "mismatch",
    );
    assert!(
        v.verify_connect_token(&sign(Algorithm::RS512, &claims(), Some("free")))
            .await
            .is_ok()
    );
    // An RSA key without alg still refuses other families.
    assert_invalid(
        v.verify_connect_token(&sign(Algorithm::ES256, &claims(), Some("free")))
            .await,
        "mismatch",
    );
    assert_invalid(
        v.verify_connect_token(&sign(Algorithm::RS256, &claims(), Some("enc")))
            .await,
        "not found",
    );
}

#[tokio::test]
async fn templated_endpoint_uses_regex_groups() {
    let server = JwksServer::start(set(&[jwk(Algorithm::RS256, "k")])).await;
    let cfg = VerifierConfig {
        issuer_regex: r"^https://(?P<tenant>acme|globex)\.example\.com$".into(),
        ..jwks_cfg(server.url("/{{tenant}}/jwks"))
    };
    let v = verifier(cfg);
    for tenant in ["acme", "globex", "acme"] {
        let t = sign(
            Algorithm::RS256,
            &json!({"iss": format!("https://{tenant}.example.com")}),
            Some("k"),
        );
        assert!(v.verify_connect_token(&t).await.is_ok());
    }
    // The cache is per resolved URL: each tenant was fetched once.
    assert_eq!(
        server.paths.lock().as_slice(),
        ["/acme/jwks", "/globex/jwks"]
    );
    let t = sign(
        Algorithm::RS256,
        &json!({"iss": "https://evil.example.com"}),
        Some("k"),
    );
    assert_invalid(v.verify_connect_token(&t).await, "issuer not matched");
    assert_eq!(server.hits(), 2);
}

#[tokio::test]
async fn cache_expires_and_survives_unrelated_reloads() {
    let server = JwksServer::start(set(&[jwk(Algorithm::RS256, "k")])).await;
    let cfg = jwks_cfg(server.url("/jwks"));
    let v = verifier(cfg.clone());
    let token = sign(Algorithm::RS256, &claims(), Some("k"));
    assert!(v.verify_connect_token(&token).await.is_ok());
    v.reload(VerifierConfig {
        audience: String::new(),
        ..cfg.clone()
    })
    .unwrap();
    assert!(v.verify_connect_token(&token).await.is_ok());
    assert_eq!(
        server.hits(),
        1,
        "same endpoint after reload keeps the cache"
    );

    v.jwks_manager().unwrap().set_ttl(Duration::ZERO);
    assert!(v.verify_connect_token(&token).await.is_ok());
    assert!(v.verify_connect_token(&token).await.is_ok());
    assert_eq!(server.hits(), 3, "an expired entry is fetched again");
}
