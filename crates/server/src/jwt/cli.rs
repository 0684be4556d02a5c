//! Token helpers behind the `gyre gentoken`, `gensubtoken`, `checktoken` and
//! `checksubtoken` subcommands, with Centrifugo's claims and messages.

use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, anyhow, bail};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Map, Value};

use super::{TokenVerifier, VerifierConfig, token};

fn now_unix() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Sets `value` at a dotted path, creating objects on the way (what `sjson.SetBytes` does
/// for the paths used as `user_id_claim`). A non-object in the way is replaced.
pub(crate) fn set_path(root: &mut Map<String, Value>, path: &str, value: &str) {
    let mut parts = path.split('.').peekable();
    let mut cur = root;
    while let Some(part) = parts.next() {
        if parts.peek().is_none() {
            cur.insert(part.to_owned(), Value::String(value.to_owned()));
            return;
        }
        let entry = cur
            .entry(part.to_owned())
            .or_insert_with(|| Value::Object(Map::new()));
        if !entry.is_object() {
            *entry = Value::Object(Map::new());
        }
        let Value::Object(next) = entry else { return };
        cur = next;
    }
}

fn sign(
    cfg: &VerifierConfig,
    user: &str,
    channel: Option<&str>,
    ttl_seconds: i64,
) -> anyhow::Result<String> {
    let now = now_unix();
    let mut claims = Map::new();
    // Centrifugo's claim structs use `omitempty`: an anonymous token has no `sub`.
    if !user.is_empty() {
        claims.insert("sub".into(), user.into());
    }
    if let Some(ch) = channel {
        claims.insert("channel".into(), ch.into());
    }
    claims.insert("iat".into(), now.into());
    // Only a positive TTL sets `exp`; -1 (and 0) give a token without expiration.
    if ttl_seconds > 0 {
        claims.insert("exp".into(), now.saturating_add(ttl_seconds).into());
    }
    if !cfg.user_id_claim.is_empty() {
        set_path(&mut claims, &cfg.user_id_claim, user);
    }
    let key = EncodingKey::from_secret(cfg.hmac_secret_key.as_bytes());
    jsonwebtoken::encode(&Header::new(Algorithm::HS256), &Value::Object(claims), &key)
        .context("error signing token")
}

/// HS256 connection token with `sub`, `iat` and (for `ttl_seconds > 0`) `exp`.
pub(crate) fn gentoken(
    cfg: &VerifierConfig,
    user: &str,
    ttl_seconds: i64,
) -> anyhow::Result<String> {
    if cfg.hmac_secret_key.is_empty() {
        bail!(
            "gentoken only supports generating HMAC-signed tokens, but no HMAC secret key is set in the \
             configuration (client.token.hmac_secret_key) – if you use RSA/ECDSA/JWKS token verification you \
             need to generate the JWT with your own tooling"
        );
    }
    sign(cfg, user, None, ttl_seconds)
}

/// HS256 subscription token with `sub`, `channel`, `iat` and (for `ttl_seconds > 0`) `exp`.
pub(crate) fn gensubtoken(
    cfg: &VerifierConfig,
    user: &str,
    channel: &str,
    ttl_seconds: i64,
) -> anyhow::Result<String> {
    if channel.is_empty() {
        bail!("channel is required");
    }
    if cfg.hmac_secret_key.is_empty() {
        bail!(
            "gensubtoken only supports generating HMAC-signed tokens, but no HMAC secret key is set in the \
             configuration (client.subscription_token.token.hmac_secret_key, or client.token.hmac_secret_key \
             when subscription token is not separately configured) – if you use RSA/ECDSA/JWKS token \
             verification you need to generate the JWT with your own tooling"
        );
    }
    sign(cfg, user, Some(channel), ttl_seconds)
}

/// The line Centrifugo prints after generating a token, e.g.
/// `HMAC SHA-256 JWT for user "42" with expiration TTL 168h0m0s:` followed by the token.
pub(crate) fn describe_generated(
    user: &str,
    channel: Option<&str>,
    ttl_seconds: i64,
    token: &str,
) -> String {
    let who = if user.is_empty() {
        "anonymous user".to_owned()
    } else {
        format!("user \"{user}\"")
    };
    let exp = if ttl_seconds >= 0 {
        format!("with expiration TTL {}", go_duration(ttl_seconds))
    } else {
        "without expiration".to_owned()
    };
    match channel {
        Some(ch) => format!("HMAC SHA-256 JWT for {who} and channel \"{ch}\" {exp}:\n{token}"),
        None => format!("HMAC SHA-256 JWT for {who} {exp}:\n{token}"),
    }
}

/// Go's `time.Duration.String()` for whole seconds: `0s`, `1m30s`, `168h0m0s`.
fn go_duration(secs: i64) -> String {
    let (h, m, s) = (secs / 3600, secs % 3600 / 60, secs % 60);
    if h > 0 {
        format!("{h}h{m}m{s}s")
    } else if m > 0 {
        format!("{m}m{s}s")
    } else {
        format!("{s}s")
    }
}

/// Header `alg` and claims JSON of a token, for messages; errors if it does not parse.
fn describe(tok: &str) -> anyhow::Result<(String, String)> {
    let raw = token::parse(tok).map_err(|e| anyhow!("{e}"))?;
    Ok((raw.alg, String::from_utf8_lossy(&raw.claims).into_owned()))
}

fn verifier(cfg: &VerifierConfig) -> anyhow::Result<TokenVerifier> {
    // The check commands always verify signatures, whatever the server would do.
    let cfg = VerifierConfig {
        insecure_skip_token_signature_verify: false,
        ..cfg.clone()
    };
    TokenVerifier::new(cfg).context("error creating token verifier")
}

/// `valid token for user 42` + the payload, or the reason the token is refused.
pub(crate) async fn checktoken(cfg: &VerifierConfig, token: &str) -> anyhow::Result<String> {
    let (alg, payload) = describe(token)?;
    let ct = verifier(cfg)?
        .verify_connect_token(token)
        .await
        .map_err(|e| anyhow!("token with algorithm {alg} and claims {payload} has error: {e}"))?;
    let who = if ct.user_id.is_empty() {
        "anonymous user".to_owned()
    } else {
        format!("user {}", ct.user_id)
    };
    Ok(format!("valid token for {who}\npayload: {payload}"))
}

/// `valid subscription token for user "42" and channel "x"` + the payload, or the reason.
pub(crate) async fn checksubtoken(cfg: &VerifierConfig, token: &str) -> anyhow::Result<String> {
    let (alg, payload) = describe(token)?;
    let st = verifier(cfg)?
        .verify_subscribe_token(token)
        .await
        .map_err(|e| anyhow!("token with algorithm {alg} and claims {payload} has error: {e}"))?;
    let who = if st.user_id.is_empty() {
        "anonymous user".to_owned()
    } else {
        format!("user \"{}\"", st.user_id)
    };
    Ok(format!(
        "valid subscription token for {who} and channel \"{}\"\npayload: {payload}",
        st.channel
    ))
}
