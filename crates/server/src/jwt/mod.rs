//! Connection and subscription JWT verification as Centrifugo does it.
//!
//! The steps and their order follow `centrifugo/internal/jwtverify` so that the same token
//! gets the same verdict (and the same error code) from Gyre as from Centrifugo v6:
//!
//! 1. split the token and decode header and claims (malformed → invalid);
//! 2. match `iss`/`aud` against `issuer_regex`/`audience_regex`, collecting named groups
//!    for a templated JWKS endpoint (no match → invalid);
//! 3. verify the signature with the configured keys or the JWKS key named by `kid`;
//! 4. compare `aud`/`iss` with `audience`/`issuer` when configured (mismatch → invalid);
//! 5. connection tokens: a `channel` claim → invalid;
//! 6. `exp` not after now or `nbf` not before now → expired (no leeway);
//! 7. subscription tokens: no `channel` → invalid;
//! 8. build the result (`b64info`/`b64data` must be valid base64).

// The server glue (connect/subscribe handlers, CLI subcommands) is wired in separately;
// until then only the tests call into this module.

mod claims;
pub(crate) mod cli;
mod jwks;
mod keys;
mod token;

#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use parking_lot::RwLock;
use regex::Regex;

use claims::{ConnectClaims, NumericDate, Registered, SubscribeClaims};
#[allow(unused_imports)] // `SubscribeOptionsClaim` is named by the glue, not yet here.
pub(crate) use claims::{
    ConnectToken, OptionsClaim, Overrides, SubscribeOptionsClaim, SubscribeToken,
};
use jwks::JwksManager;
use keys::StaticKeys;

/// Inputs, same names as Centrifugo v6's `client.token.*` keys.
#[derive(Clone, Default)]
pub(crate) struct VerifierConfig {
    pub(crate) hmac_secret_key: String,
    pub(crate) hmac_previous_secret_key: String,
    /// Unix seconds; 0 = the previous key is accepted without limit.
    pub(crate) hmac_previous_secret_key_valid_until: i64,
    /// PEM (`PUBLIC KEY`, `RSA PUBLIC KEY` or `CERTIFICATE`).
    pub(crate) rsa_public_key: String,
    /// PEM (`PUBLIC KEY` or `CERTIFICATE`), curve P-256, P-384 or P-521.
    pub(crate) ecdsa_public_key: String,
    /// May be a template with `{{name}}` filled from named groups of the regexes below.
    pub(crate) jwks_public_endpoint: String,
    pub(crate) audience: String,
    pub(crate) audience_regex: String,
    pub(crate) issuer: String,
    pub(crate) issuer_regex: String,
    /// `""` = `sub`; else a dotted path into the claims.
    pub(crate) user_id_claim: String,
    /// Parse tokens without checking signatures. Testing only.
    pub(crate) insecure_skip_token_signature_verify: bool,
    /// Skip the config-time check that template variables come from fixed alternatives.
    /// Insecure escape hatch, as in Centrifugo.
    pub(crate) insecure_skip_jwks_endpoint_safety_check: bool,
}

impl std::fmt::Debug for VerifierConfig {
    // Hand-written so that logging a config never prints the HMAC secrets.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let redact = |s: &str| if s.is_empty() { "" } else { "[redacted]" };
        f.debug_struct("VerifierConfig")
            .field("hmac_secret_key", &redact(&self.hmac_secret_key))
            .field(
                "hmac_previous_secret_key",
                &redact(&self.hmac_previous_secret_key),
            )
            .field(
                "hmac_previous_secret_key_valid_until",
                &self.hmac_previous_secret_key_valid_until,
            )
            .field("rsa_public_key", &self.rsa_public_key)
            .field("ecdsa_public_key", &self.ecdsa_public_key)
            .field("jwks_public_endpoint", &self.jwks_public_endpoint)
            .field("audience", &self.audience)
            .field("audience_regex", &self.audience_regex)
            .field("issuer", &self.issuer)
            .field("issuer_regex", &self.issuer_regex)
            .field("user_id_claim", &self.user_id_claim)
            .field(
                "insecure_skip_token_signature_verify",
                &self.insecure_skip_token_signature_verify,
            )
            .field(
                "insecure_skip_jwks_endpoint_safety_check",
                &self.insecure_skip_jwks_endpoint_safety_check,
            )
            .finish()
    }
}

/// Configuration errors (at start-up or reload).
#[derive(Debug, thiserror::Error)]
pub(crate) enum JwtError {
    #[error("can not use both token audience and token audience_regex, configure only one of them")]
    AudienceConflict,
    #[error("can not use both token issuer and token issuer_regex, configure only one of them")]
    IssuerConflict,
    #[error("error compiling {name}: {source}")]
    Regex {
        name: &'static str,
        #[source]
        source: Box<regex::Error>,
    },
    #[error("{0}")]
    Key(String),
    #[error("error creating JWK manager: {0}")]
    Jwks(String),
    #[error("{0}")]
    UnsafeJwksTemplate(String),
}

/// Why a token was refused. The caller maps it to protocol codes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum VerifyError {
    /// `exp` passed or `nbf` not reached → error 109 (token expired); on refresh the
    /// connection/subscription is reported expired.
    #[error("token expired")]
    Expired,
    /// Anything else → connect/refresh/sub_refresh: disconnect 3500; subscribe: error 103.
    #[error("invalid token: {0}")]
    Invalid(String),
}

impl VerifyError {
    fn invalid(msg: impl Into<String>) -> Self {
        Self::Invalid(msg.into())
    }
}

/// Where signature keys come from. With a JWKS endpoint the static keys are not used.
#[derive(Debug)]
enum KeySource {
    Static {
        current: Box<StaticKeys>,
        /// Previous HMAC secret with its `valid_until` (0 = unlimited).
        previous: Option<Box<(StaticKeys, i64)>>,
    },
    Jwks(Arc<JwksManager>),
}

/// One immutable configuration snapshot. Each verification works on one snapshot, so a
/// concurrent reload never mixes old and new settings within a verification.
#[derive(Debug)]
struct State {
    keys: KeySource,
    audience: String,
    audience_re: Option<Regex>,
    issuer: String,
    issuer_re: Option<Regex>,
    user_id_claim: String,
    skip_verify: bool,
}

/// Verifies connection and subscription tokens. Cheap to clone; reloadable.
#[derive(Debug, Clone)]
pub(crate) struct TokenVerifier {
    state: Arc<RwLock<Arc<State>>>,
}

fn now_nanos() -> i128 {
    match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_nanos() as i128,
        Err(e) => -(e.duration().as_nanos() as i128),
    }
}

fn compile(name: &'static str, re: &str) -> Result<Option<Regex>, JwtError> {
    if re.is_empty() {
        return Ok(None);
    }
    Regex::new(re).map(Some).map_err(|e| JwtError::Regex {
        name,
        source: Box::new(e),
    })
}

impl State {
    fn build(cfg: &VerifierConfig, previous: Option<&State>) -> Result<Self, JwtError> {
        if !cfg.audience.is_empty() && !cfg.audience_regex.is_empty() {
            return Err(JwtError::AudienceConflict);
        }
        if !cfg.issuer.is_empty() && !cfg.issuer_regex.is_empty() {
            return Err(JwtError::IssuerConflict);
        }
        if !cfg.jwks_public_endpoint.is_empty()
            && let Err(e) = validate_jwks_endpoint_safety(
                &cfg.jwks_public_endpoint,
                &cfg.issuer_regex,
                &cfg.audience_regex,
            )
        {
            if !cfg.insecure_skip_jwks_endpoint_safety_check {
                return Err(JwtError::UnsafeJwksTemplate(e));
            }
            tracing::warn!(error = %e, "JWKS endpoint template safety check skipped, this is INSECURE");
        }
        let audience_re = compile("audience regex", &cfg.audience_regex)?;
        let issuer_re = compile("issuer regex", &cfg.issuer_regex)?;
        // Keys are parsed even when JWKS is used, so a broken PEM fails the config like in
        // Centrifugo (which parses them while building its verifier config).
        let current = StaticKeys::new(
            &cfg.hmac_secret_key,
            &cfg.rsa_public_key,
            &cfg.ecdsa_public_key,
        )
        .map_err(JwtError::Key)?;
        let keys = if cfg.jwks_public_endpoint.is_empty() {
            let previous = if cfg.hmac_previous_secret_key.is_empty() {
                None
            } else {
                let prev = StaticKeys::new(&cfg.hmac_previous_secret_key, "", "")
                    .map_err(JwtError::Key)?;
                Some(Box::new((prev, cfg.hmac_previous_secret_key_valid_until)))
            };
            KeySource::Static {
                current: Box::new(current),
                previous,
            }
        } else {
            // Keep the key cache across a reload that leaves the endpoint unchanged.
            let reuse = previous.and_then(|p| match &p.keys {
                KeySource::Jwks(m) if m.endpoint() == cfg.jwks_public_endpoint => {
                    Some(Arc::clone(m))
                }
                _ => None,
            });
            match reuse {
                Some(m) => KeySource::Jwks(m),
                None => KeySource::Jwks(Arc::new(
                    JwksManager::new(&cfg.jwks_public_endpoint).map_err(JwtError::Jwks)?,
                )),
            }
        };
        Ok(Self {
            keys,
            audience: cfg.audience.clone(),
            audience_re,
            issuer: cfg.issuer.clone(),
            issuer_re,
            user_id_claim: cfg.user_id_claim.clone(),
            skip_verify: cfg.insecure_skip_token_signature_verify,
        })
    }

    /// Step 2: named groups of the regexes, needed to resolve a templated JWKS URL.
    fn token_vars(&self, reg: &Registered) -> Result<HashMap<String, String>, VerifyError> {
        let mut vars = HashMap::new();
        let mut collect = |re: &Regex, caps: regex::Captures<'_>| {
            for name in re.capture_names().flatten() {
                let v = caps.name(name).map_or("", |m| m.as_str());
                vars.insert(name.to_owned(), v.to_owned());
            }
        };
        if let Some(re) = &self.issuer_re {
            let caps = re
                .captures(&reg.iss)
                .ok_or_else(|| VerifyError::invalid("issuer not matched"))?;
            collect(re, caps);
        }
        if let Some(re) = &self.audience_re {
            let (_, caps) = reg
                .aud
                .0
                .iter()
                .find_map(|a| re.captures(a).map(|c| (a, c)))
                .ok_or_else(|| VerifyError::invalid("audience not matched"))?;
            collect(re, caps);
        }
        Ok(vars)
    }

    /// Step 3.
    async fn verify_signature(
        &self,
        raw: &token::RawToken<'_>,
        vars: &HashMap<String, String>,
    ) -> Result<(), VerifyError> {
        if self.skip_verify {
            return Ok(());
        }
        let res = match &self.keys {
            KeySource::Static { current, previous } => {
                let res = current.verify(&raw.alg, raw.signing_input, &raw.signature);
                match (res, previous) {
                    (Err(e), Some(prev)) => {
                        let (prev, valid_until) = &**prev;
                        let now = NumericDate::from_nanos(now_nanos()).unix();
                        if *valid_until > 0 && now > *valid_until {
                            Err(e)
                        } else {
                            prev.verify(&raw.alg, raw.signing_input, &raw.signature)
                                .map_err(|_| e)
                        }
                    }
                    (res, _) => res,
                }
            }
            KeySource::Jwks(m) => match m.fetch_key(&raw.kid, vars).await {
                Ok(key) => key.verify(&raw.alg, raw.signing_input, &raw.signature),
                Err(e) => Err(e.to_string()),
            },
        };
        res.map_err(VerifyError::Invalid)
    }

    /// Step 4.
    fn validate_claims(&self, reg: &Registered) -> Result<(), VerifyError> {
        if !self.audience.is_empty() && !reg.aud.0.contains(&self.audience) {
            return Err(VerifyError::invalid("invalid audience"));
        }
        if !self.issuer.is_empty() && reg.iss != self.issuer {
            return Err(VerifyError::invalid("invalid issuer"));
        }
        Ok(())
    }

    fn user_id(&self, claims_json: &[u8], reg: &Registered) -> String {
        if self.user_id_claim.is_empty() {
            reg.sub.clone()
        } else {
            claims::string_at_path(claims_json, &self.user_id_claim)
        }
    }
}

/// Step 6: `exp` must be strictly after now and `nbf` strictly before now, as
/// `cristalhq/jwt` checks them.
fn check_time(reg: &Registered, now: NumericDate) -> Result<(), VerifyError> {
    if reg.exp.is_some_and(|exp| exp <= now) || reg.nbf.is_some_and(|nbf| nbf >= now) {
        return Err(VerifyError::Expired);
    }
    Ok(())
}

fn decode_claims<'a, T: serde::Deserialize<'a>>(json: &'a [u8]) -> Result<T, VerifyError> {
    serde_json::from_slice(json).map_err(|e| VerifyError::Invalid(format!("bad claims: {e}")))
}

/// Verifies `token` as a connection and as a subscription JWT, once against an HMAC key
/// and once with signature checks off (so that fuzzed claims reach the claim checks).
/// Static keys never wait on I/O, so the futures complete on the first poll.
pub(crate) fn fuzz_verify(token: &str) {
    use futures_util::FutureExt as _;
    static VERIFIERS: std::sync::LazyLock<[TokenVerifier; 2]> = std::sync::LazyLock::new(|| {
        let hmac = VerifierConfig {
            hmac_secret_key: "secret".to_owned(),
            ..Default::default()
        };
        let skip = VerifierConfig {
            insecure_skip_token_signature_verify: true,
            ..Default::default()
        };
        [
            TokenVerifier::new(hmac).expect("an HMAC verifier builds"),
            TokenVerifier::new(skip).expect("a verifier without keys builds"),
        ]
    });
    for verifier in VERIFIERS.iter() {
        let _ = verifier.verify_connect_token(token).now_or_never();
        let _ = verifier.verify_subscribe_token(token).now_or_never();
    }
}

impl TokenVerifier {
    pub(crate) fn new(cfg: VerifierConfig) -> Result<Self, JwtError> {
        let state = State::build(&cfg, None)?;
        Ok(Self {
            state: Arc::new(RwLock::new(Arc::new(state))),
        })
    }

    /// Applies a new configuration (SIGHUP). On error the old one stays in force.
    pub(crate) fn reload(&self, cfg: VerifierConfig) -> Result<(), JwtError> {
        let old = self.snapshot();
        let state = State::build(&cfg, Some(&old))?;
        *self.state.write() = Arc::new(state);
        Ok(())
    }

    fn snapshot(&self) -> Arc<State> {
        Arc::clone(&self.state.read())
    }

    pub(crate) async fn verify_connect_token(
        &self,
        token: &str,
    ) -> Result<ConnectToken, VerifyError> {
        let state = self.snapshot();
        let raw = token::parse(token)?;
        let reg: Registered = decode_claims(&raw.claims)?;
        let claims: ConnectClaims = decode_claims(&raw.claims)?;
        let vars = state.token_vars(&reg)?;
        state.verify_signature(&raw, &vars).await?;
        state.validate_claims(&reg)?;
        if !claims.channel.is_empty() {
            return Err(VerifyError::invalid(
                "connection JWT can not contain channel claim, only subscription JWT can",
            ));
        }
        let now = NumericDate::from_nanos(now_nanos());
        check_time(&reg, now)?;
        let user_id = state.user_id(&raw.claims, &reg);
        claims.into_token(&reg, user_id, now.unix())
    }

    pub(crate) async fn verify_subscribe_token(
        &self,
        token: &str,
    ) -> Result<SubscribeToken, VerifyError> {
        let state = self.snapshot();
        let raw = token::parse(token)?;
        let reg: Registered = decode_claims(&raw.claims)?;
        let claims: SubscribeClaims = decode_claims(&raw.claims)?;
        let vars = state.token_vars(&reg)?;
        state.verify_signature(&raw, &vars).await?;
        state.validate_claims(&reg)?;
        check_time(&reg, NumericDate::from_nanos(now_nanos()))?;
        if claims.channel.is_empty() {
            return Err(VerifyError::invalid(
                "channel claim is required for subscription JWT",
            ));
        }
        let user_id = state.user_id(&raw.claims, &reg);
        claims.into_token(&reg, user_id)
    }

    #[cfg(test)]
    fn jwks_manager(&self) -> Option<Arc<JwksManager>> {
        match &self.snapshot().keys {
            KeySource::Jwks(m) => Some(Arc::clone(m)),
            KeySource::Static { .. } => None,
        }
    }
}

/// Centrifugo's config-time guard for templated JWKS endpoints: every regex group used as
/// a `{{placeholder}}` must be an explicit list of fixed alternatives (`a|b|c`), because its
/// value comes from an unverified claim and could otherwise point key fetches at a server
/// the attacker controls.
fn validate_jwks_endpoint_safety(
    endpoint: &str,
    issuer_regex: &str,
    audience_regex: &str,
) -> Result<(), String> {
    let placeholders = template_placeholders(endpoint);
    if placeholders.is_empty() {
        return Ok(());
    }
    for (name, pattern) in [
        ("issuer_regex", issuer_regex),
        ("audience_regex", audience_regex),
    ] {
        if pattern.is_empty() {
            continue;
        }
        reject_class_syntax(pattern).map_err(|e| {
            format!(
                "{name} {e} — use an explicit list of allowed values (e.g., value1|value2|value3)"
            )
        })?;
        let ast = regex_syntax::ast::parse::Parser::new()
            .parse(pattern)
            .map_err(|e| format!("error parsing {name} for JWKS safety check: {e}"))?;
        let mut groups = Vec::new();
        named_groups(&ast, &mut groups);
        for (group, sub) in groups {
            if placeholders.contains(&group) && !is_literal_tree(sub) {
                return Err(format!(
                    "{name} named group {group:?} is used in JWKS endpoint URL template — only an explicit \
                     list of allowed values is permitted (e.g., value1|value2|value3)"
                ));
            }
        }
    }
    Ok(())
}

fn template_placeholders(mut s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    while let Some(start) = s.find("{{") {
        let rest = &s[start + 2..];
        let Some(end) = rest.find("}}") else { break };
        out.push(&rest[..end]);
        s = &rest[end + 2..];
    }
    out
}

fn reject_class_syntax(pattern: &str) -> Result<(), String> {
    let b = pattern.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'[' => return Err("contains character class syntax which is not allowed when JWKS endpoint URL template is used".into()),
            b'\\' if i + 1 < b.len() => {
                if matches!(b[i + 1], b'd' | b'D' | b'w' | b'W' | b's' | b'S' | b'p' | b'P') {
                    return Err(format!(
                        "contains character class shorthand (\\{}) which is not allowed when JWKS endpoint URL template is used",
                        b[i + 1] as char
                    ));
                }
                i += 1;
            }
            _ => {}
        }
        i += 1;
    }
    Ok(())
}

fn named_groups<'a>(
    ast: &'a regex_syntax::ast::Ast,
    out: &mut Vec<(&'a str, &'a regex_syntax::ast::Ast)>,
) {
    use regex_syntax::ast::{Ast, GroupKind};
    match ast {
        Ast::Group(g) => {
            if let GroupKind::CaptureName { name, .. } = &g.kind {
                out.push((name.name.as_str(), &g.ast));
            }
            named_groups(&g.ast, out);
        }
        Ast::Concat(c) => c.asts.iter().for_each(|a| named_groups(a, out)),
        Ast::Alternation(a) => a.asts.iter().for_each(|a| named_groups(a, out)),
        Ast::Repetition(r) => named_groups(&r.ast, out),
        _ => {}
    }
}

/// Only literals, concatenation, alternation and groups: a finite set of fixed strings.
fn is_literal_tree(ast: &regex_syntax::ast::Ast) -> bool {
    use regex_syntax::ast::Ast;
    match ast {
        Ast::Empty(_) | Ast::Literal(_) | Ast::Flags(_) => true,
        Ast::Group(g) => is_literal_tree(&g.ast),
        Ast::Concat(c) => c.asts.iter().all(is_literal_tree),
        Ast::Alternation(a) => a.asts.iter().all(is_literal_tree),
        _ => false,
    }
}

impl VerifierConfig {
    /// The verifier settings of `client.token` (connection tokens).
    pub(crate) fn for_connections(client: &crate::config::Client) -> Self {
        Self::from_token(&client.token, client.insecure_skip_token_signature_verify)
    }

    /// The verifier settings for subscription tokens: `client.subscription_token` when
    /// enabled, otherwise the connection token settings, as Centrifugo does.
    pub(crate) fn for_subscriptions(client: &crate::config::Client) -> Self {
        if client.subscription_token.enabled {
            Self::from_token(
                &client.subscription_token.token,
                client.insecure_skip_token_signature_verify,
            )
        } else {
            Self::for_connections(client)
        }
    }

    fn from_token(t: &crate::config::Token, insecure_skip_signature: bool) -> Self {
        VerifierConfig {
            hmac_secret_key: t.hmac_secret_key.clone(),
            hmac_previous_secret_key: t.hmac_previous_secret_key.clone(),
            hmac_previous_secret_key_valid_until: t.hmac_previous_secret_key_valid_until,
            rsa_public_key: t.rsa_public_key.clone(),
            ecdsa_public_key: t.ecdsa_public_key.clone(),
            jwks_public_endpoint: t.jwks_public_endpoint.clone(),
            audience: t.audience.clone(),
            audience_regex: t.audience_regex.clone(),
            issuer: t.issuer.clone(),
            issuer_regex: t.issuer_regex.clone(),
            user_id_claim: t.user_id_claim.clone(),
            insecure_skip_token_signature_verify: insecure_skip_signature,
            insecure_skip_jwks_endpoint_safety_check: t.insecure_skip_jwks_endpoint_safety_check,
        }
    }
}
