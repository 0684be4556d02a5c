//! JSON Web Key Set client: fetches the key set from `jwks_public_endpoint`, caches keys by
//! (resolved URL, `kid`) for an hour, and fetches again when a token names a `kid` that is
//! not cached. Concurrent misses for the same key share one request (single flight).
//!
//! Mirrors `centrifugo/internal/jwks`: 1 s request timeout, 2 attempts, HTTP 200 required,
//! the endpoint may be a `{{name}}` template filled from regex groups of the token's
//! `iss`/`aud`, and a resolved path that is not already clean is refused (path traversal).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures_util::FutureExt as _;
use futures_util::future::{BoxFuture, Shared};
use jsonwebtoken::DecodingKey;
use parking_lot::Mutex;
use serde::Deserialize;

use super::keys::{Curve, Key};
use super::token::Alg;

const TTL: Duration = Duration::from_secs(3600);
const TIMEOUT: Duration = Duration::from_secs(1);
const ATTEMPTS: usize = 2;
/// A key set is a few KiB; a bound keeps a misbehaving endpoint from exhausting memory.
const MAX_BODY: usize = 1 << 20;

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub(super) enum JwksError {
    #[error("jwks: kid is not provided")]
    NoKid,
    #[error("jwks: public key not found")]
    NotFound,
    #[error("jwks: {0}")]
    Fetch(String),
    #[error("jwks: unmarshal error: {0}")]
    Unmarshal(String),
    #[error("JWKS URL path contains traversal sequences: {0:?}")]
    Traversal(String),
}

/// A verification key from the set, with the algorithm it is pinned to (its `alg`).
#[derive(Debug, Clone)]
pub(super) struct JwkKey {
    key: Key,
    alg: Option<Alg>,
}

impl JwkKey {
    /// Like Centrifugo: with `alg` on the key the token must use exactly that algorithm,
    /// without it any algorithm of the key's family (and, for EC, curve) is allowed.
    pub(super) fn verify(
        &self,
        token_alg: &str,
        signing_input: &str,
        signature: &[u8],
    ) -> Result<(), String> {
        let alg = Alg::from_name(token_alg)
            .ok_or_else(|| format!("unsupported JWT algorithm: {token_alg}"))?;
        if self.alg.is_some_and(|a| a != alg) || !self.key.accepts(alg) {
            return Err(format!("algorithm mismatch: {token_alg}"));
        }
        self.key.verify(alg, signing_input, signature)
    }
}

#[derive(Debug, Deserialize)]
struct JwkSet {
    keys: Vec<serde_json::Value>,
}

/// The JWK members we read; others are ignored.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct RawJwk {
    kty: String,
    kid: String,
    #[serde(rename = "use")]
    use_: Option<String>,
    alg: Option<String>,
    crv: String,
    n: String,
    e: String,
    x: String,
    y: String,
}

/// Converts one JWK; `Ok(None)` for keys that are not signature keys.
fn convert(raw: RawJwk) -> Result<Option<(String, JwkKey)>, String> {
    // Centrifugo keeps only `use: "sig"` keys. We also keep keys without `use` (it is
    // optional in RFC 7517): that accepts a superset of what Centrifugo accepts and never
    // uses an encryption key for signatures.
    if raw.use_.as_deref().is_some_and(|u| u != "sig") {
        return Ok(None);
    }
    let alg = match raw.alg.as_deref() {
        None | Some("") => None,
        Some(a) => Some(Alg::from_name(a).ok_or_else(|| format!("unsupported key algorithm {a}"))?),
    };
    let key = match raw.kty.as_str() {
        "RSA" => {
            Key::Rsa(DecodingKey::from_rsa_components(&raw.n, &raw.e).map_err(|e| e.to_string())?)
        }
        "EC" => {
            let curve = Curve::from_jwk_name(&raw.crv)
                .ok_or_else(|| format!("unsupported curve {}", raw.crv))?;
            let k = DecodingKey::from_ec_components(&raw.x, &raw.y).map_err(|e| e.to_string())?;
            let point = k.try_get_as_bytes().map_err(|e| e.to_string())?;
            match Key::ec_from_point(point) {
                Some(k @ Key::Ec { curve: c, .. }) if c == curve => k,
                _ => return Err("EC key does not match its curve".into()),
            }
        }
        "OKP" if raw.crv == "Ed25519" => {
            let k = DecodingKey::from_ed_components(&raw.x).map_err(|e| e.to_string())?;
            if k.try_get_as_bytes().map_err(|e| e.to_string())?.len() != 32 {
                return Err("bad Ed25519 key".into());
            }
            Key::Ed25519(k)
        }
        other => return Err(format!("unsupported key type {other:?}")),
    };
    if let Some(a) = alg
        && !key.accepts(a)
    {
        return Err(format!(
            "key algorithm {a:?} does not fit key type {}",
            raw.kty
        ));
    }
    Ok(Some((raw.kid, JwkKey { key, alg })))
}

type FetchResult = Result<JwkKey, JwksError>;

#[derive(Debug)]
struct Cached {
    key: JwkKey,
    fetched_at: Instant,
}

#[derive(Debug)]
pub(super) struct JwksManager {
    endpoint: String,
    client: reqwest::Client,
    /// Milliseconds; atomic only so tests can shorten it on a shared manager.
    ttl_ms: AtomicU64,
    cache: Mutex<HashMap<String, Cached>>,
    inflight: Mutex<HashMap<String, Shared<BoxFuture<'static, FetchResult>>>>,
}

/// Cache and single-flight key: scoped by the resolved URL so that a `kid` cached for one
/// tenant's endpoint never verifies a token routed to another tenant's endpoint.
fn cache_key(url: &str, kid: &str) -> String {
    format!("{url}\0{kid}")
}

impl JwksManager {
    pub(super) fn new(endpoint: &str) -> Result<Self, String> {
        let lower = endpoint.to_ascii_lowercase();
        if !lower.starts_with("http://") && !lower.starts_with("https://") {
            return Err(format!(
                "endpoint must have http:// or https:// scheme, got: {endpoint}"
            ));
        }
        let client = reqwest::Client::builder()
            .timeout(TIMEOUT)
            // Centrifugo's JWKS transport sets no proxy, so environment proxies are ignored.
            .no_proxy()
            .build()
            .map_err(|e| format!("error creating JWKS HTTP client: {e}"))?;
        Ok(Self {
            endpoint: endpoint.to_owned(),
            client,
            ttl_ms: AtomicU64::new(TTL.as_millis() as u64),
            cache: Mutex::default(),
            inflight: Mutex::default(),
        })
    }

    pub(super) fn endpoint(&self) -> &str {
        &self.endpoint
    }

    fn ttl(&self) -> Duration {
        Duration::from_millis(self.ttl_ms.load(Ordering::Relaxed))
    }

    #[cfg(test)]
    pub(super) fn set_ttl(&self, ttl: Duration) {
        self.ttl_ms.store(ttl.as_millis() as u64, Ordering::Relaxed);
    }

    pub(super) async fn fetch_key(
        self: &Arc<Self>,
        kid: &str,
        vars: &HashMap<String, String>,
    ) -> FetchResult {
        if kid.is_empty() {
            return Err(JwksError::NoKid);
        }
        let url = resolve_url(&self.endpoint, vars)?;
        let ck = cache_key(&url, kid);
        if let Some(c) = self.cache.lock().get(&ck)
            && c.fetched_at.elapsed() < self.ttl()
        {
            return Ok(c.key.clone());
        }
        let fut = {
            let mut inflight = self.inflight.lock();
            inflight
                .entry(ck.clone())
                .or_insert_with(|| {
                    let this = Arc::clone(self);
                    let (url, kid, ck) = (url, kid.to_owned(), ck.clone());
                    async move {
                        let res = this.fetch(&url, &kid).await;
                        // Cache first (done in `fetch`), then leave the in-flight table, so
                        // a caller arriving in between finds the key in the cache.
                        this.inflight.lock().remove(&ck);
                        res
                    }
                    .boxed()
                    .shared()
                })
                .clone()
        };
        fut.await
    }

    async fn fetch(&self, url: &str, kid: &str) -> FetchResult {
        let mut last = JwksError::Fetch("no attempt".into());
        let mut body = None;
        for _ in 0..ATTEMPTS {
            match self.load(url).await {
                Ok(b) => {
                    body = Some(b);
                    break;
                }
                Err(e) => last = e,
            }
        }
        let body = body.ok_or(last)?;
        let set: JwkSet =
            serde_json::from_slice(&body).map_err(|e| JwksError::Unmarshal(e.to_string()))?;
        let now = Instant::now();
        let mut found = None;
        let mut cache = self.cache.lock();
        // Drop expired entries here: fetches are rare, so this bounds the cache without a
        // background sweeper.
        cache.retain(|_, c| c.fetched_at.elapsed() < self.ttl());
        for value in set.keys {
            let raw: RawJwk = match serde_json::from_value(value) {
                Ok(r) => r,
                Err(e) => {
                    tracing::warn!(error = %e, "skipping malformed JWK");
                    continue;
                }
            };
            let raw_kid = raw.kid.clone();
            match convert(raw) {
                Ok(Some((k, key))) => {
                    if k == kid {
                        found = Some(key.clone());
                    }
                    cache.insert(
                        cache_key(url, &k),
                        Cached {
                            key,
                            fetched_at: now,
                        },
                    );
                }
                Ok(None) => {}
                Err(e) => tracing::warn!(kid = %raw_kid, error = %e, "skipping unusable JWK"),
            }
        }
        found.ok_or(JwksError::NotFound)
    }

    async fn load(&self, url: &str) -> Result<Vec<u8>, JwksError> {
        let mut resp = self
            .client
            .get(url)
            .send()
            .await
            .map_err(|e| JwksError::Fetch(e.to_string()))?;
        if resp.status() != reqwest::StatusCode::OK {
            return Err(JwksError::Fetch(format!(
                "unexpected status code: {}",
                resp.status().as_u16()
            )));
        }
        let mut body = Vec::new();
        while let Some(chunk) = resp
            .chunk()
            .await
            .map_err(|e| JwksError::Fetch(e.to_string()))?
        {
            if body.len() + chunk.len() > MAX_BODY {
                return Err(JwksError::Fetch("response too large".into()));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }
}

/// Fills `{{name}}` placeholders (missing names become empty, as with fasttemplate) and
/// refuses a resulting path that `path.Clean` would change.
pub(super) fn resolve_url(
    template: &str,
    vars: &HashMap<String, String>,
) -> Result<String, JwksError> {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        let Some(end) = rest[start + 2..].find("}}") else {
            break;
        };
        out.push_str(&rest[..start]);
        let name = &rest[start + 2..start + 2 + end];
        out.push_str(vars.get(name).map_or("", String::as_str));
        rest = &rest[start + 2 + end + 2..];
    }
    out.push_str(rest);
    let path = url_path(&out);
    if !path.is_empty() && clean_path(&path) != path {
        return Err(JwksError::Traversal(path));
    }
    Ok(out)
}

/// The percent-decoded path of an absolute URL (Go's `url.URL.Path`).
fn url_path(url: &str) -> String {
    let after_scheme = url.find("://").map_or(url, |i| &url[i + 3..]);
    let end = after_scheme.find(['?', '#']).unwrap_or(after_scheme.len());
    let hier = &after_scheme[..end];
    let path = hier.find('/').map_or("", |i| &hier[i..]);
    percent_decode(path)
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2]))
        {
            out.push(h << 4 | l);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(c: u8) -> Option<u8> {
    (c as char).to_digit(16).map(|d| d as u8)
}

/// Go's `path.Clean` for rooted paths: collapses `//`, `.` and `..`, drops a trailing `/`.
fn clean_path(path: &str) -> String {
    let rooted = path.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for seg in path.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                if parts.last().is_some_and(|p| *p != "..") {
                    parts.pop();
                } else if !rooted {
                    parts.push("..");
                }
            }
            s => parts.push(s),
        }
    }
    let joined = parts.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".into(),
        (false, false) => joined,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_fills_vars_and_blanks_missing() {
        let vars = HashMap::from([("tenant".to_owned(), "acme".to_owned())]);
        assert_eq!(
            resolve_url(
                "https://{{tenant}}.example.com/{{tenant}}/jwks{{missing}}",
                &vars
            )
            .unwrap(),
            "https://acme.example.com/acme/jwks"
        );
        assert_eq!(
            resolve_url("https://h/{{open", &vars).unwrap(),
            "https://h/{{open"
        );
    }

    #[test]
    fn traversal_is_refused() {
        let vars = HashMap::from([("t".to_owned(), "..".to_owned())]);
        assert!(matches!(
            resolve_url("https://h/a/{{t}}/jwks", &vars),
            Err(JwksError::Traversal(_))
        ));
        assert!(resolve_url("https://h/a/%2e%2e/jwks", &HashMap::new()).is_err());
        assert!(resolve_url("https://h//jwks", &HashMap::new()).is_err());
        assert!(resolve_url("https://h/jwks/", &HashMap::new()).is_err());
        assert!(resolve_url("https://h/.well-known/jwks.json?x=/../", &HashMap::new()).is_ok());
        assert!(resolve_url("https://h", &HashMap::new()).is_ok());
        assert!(resolve_url("https://h/", &HashMap::new()).is_ok());
    }

    #[test]
    fn clean_path_matches_go() {
        for (i, o) in [
            ("/", "/"),
            ("/a/b", "/a/b"),
            ("/a/./b", "/a/b"),
            ("/a/../b", "/b"),
            ("/../a", "/a"),
            ("/a/", "/a"),
        ] {
            assert_eq!(clean_path(i), o, "{i}");
        }
    }

    #[test]
    fn jwk_conversion_rules() {
        let rsa: RawJwk =
            serde_json::from_str(r#"{"kty":"RSA","kid":"r","use":"enc","n":"AQAB","e":"AQAB"}"#)
                .unwrap();
        assert!(
            convert(rsa).unwrap().is_none(),
            "encryption keys are skipped"
        );
        let bad: RawJwk =
            serde_json::from_str(r#"{"kty":"RSA","kid":"r","alg":"ES256","n":"AQAB","e":"AQAB"}"#)
                .unwrap();
        assert!(convert(bad).is_err(), "alg must fit the key type");
        let oct: RawJwk =
            serde_json::from_str(r#"{"kty":"oct","kid":"s","k":"c2VjcmV0"}"#).unwrap();
        assert!(
            convert(oct).is_err(),
            "symmetric keys are never taken from a JWKS"
        );
    }
}
