//! The admin web UI and its endpoints, as Centrifugo v6 serves them under
//! `admin.handler_prefix` (upstream `internal/admin`):
//!
//! * `GET <prefix>/admin/init` → `{"insecure", "edition": "oss", "authenticated"}`.
//! * `POST <prefix>/admin/auth` with the form field `password` → `{"token"}`, a 30-day
//!   session token signed with `admin.secret` ([`token`]); a wrong password gets 400.
//! * `POST <prefix>/admin/api` with `Authorization: token <token>` (or `?token=`): the
//!   legacy server API command body.
//! * `POST <prefix>/admin/live` (Gyre only): a 10-minute connection JWT for the user
//!   `gyre-admin` subscribed server-side to one channel, for the UI's live view.
//! * Everything else under the prefix: the UI's files, embedded or from `admin.web_path`.
//!
//! `admin.insecure` lets every request through without a token.

mod assets;
pub(crate) mod token;

use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Body;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use http::{HeaderMap, StatusCode, Uri};
use serde::Deserialize;
use serde_json::json;

use crate::app::App;
use crate::config::Config;

/// The user of the live view's connection tokens.
pub(crate) const LIVE_USER: &str = "gyre-admin";
/// Lifetime of a live view connection token.
const LIVE_TTL_SECS: i64 = 600;
/// Upstream reads at most this much of a login form.
const MAX_FORM: usize = 1 << 20;

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Warnings to log at start: an admin UI nobody can log in to.
pub(crate) fn startup_warnings(config: &Config) -> Vec<String> {
    let admin = &config.admin;
    let mut out = Vec::new();
    if admin.enabled && !admin.insecure && (admin.password.is_empty() || admin.secret.is_empty()) {
        out.push(
            "admin.enabled is set but admin.password and admin.secret are not both set: \
             nobody can log in to the admin web UI (set both, or admin.insecure for a trusted \
             network)"
                .to_owned(),
        );
    }
    if admin.enabled && admin.insecure {
        out.push("INSECURE admin mode enabled, make sure you understand risks".to_owned());
    }
    out
}

/// The admin routes, with `admin.handler_prefix` applied. `root_taken` says whether the
/// router they join already serves `/` (the server API at an empty prefix): then the UI's
/// files are not served at an empty prefix, as the two would clash.
pub(crate) fn router(app: &App, root_taken: bool) -> Router {
    let config = app.config();
    let prefix = config.admin.handler_prefix.trim_end_matches('/').to_owned();
    let mut router = Router::new()
        .route(&format!("{prefix}/admin/init"), any(init))
        .route(&format!("{prefix}/admin/auth"), any(auth))
        .route(&format!("{prefix}/admin/api"), any(api))
        .route(&format!("{prefix}/admin/live"), any(live));
    let web = assets::Web::new(&prefix, &config.admin.web_path);
    if prefix.is_empty() && root_taken {
        tracing::warn!(
            "the admin web UI and the server API both use the root path: set \
             admin.handler_prefix to serve the UI's files"
        );
    } else {
        let files = {
            let web = web.clone();
            get(move |uri: Uri| {
                let web = web.clone();
                async move { web.serve(&uri).await }
            })
        };
        if !prefix.is_empty() {
            let target = format!("{prefix}/");
            router = router.route(
                &prefix,
                get(move || async move {
                    (
                        StatusCode::MOVED_PERMANENTLY,
                        [(http::header::LOCATION, target)],
                    )
                }),
            );
        }
        router = router
            .route(&format!("{prefix}/"), files.clone())
            .route(&format!("{prefix}/{{*path}}"), files);
    }
    router.with_state(app.clone())
}

fn json_error(status: StatusCode, message: &str) -> Response {
    (status, axum::Json(json!({ "error": message }))).into_response()
}

fn method_not_allowed() -> Response {
    json_error(StatusCode::METHOD_NOT_ALLOWED, "method not allowed")
}

/// The token of a request: `Authorization: token <t>` (scheme in any case, exactly two
/// fields) or else the `token` query parameter.
fn request_token(headers: &HeaderMap, uri: &Uri) -> Option<String> {
    if let Some(auth) = headers.get(http::header::AUTHORIZATION) {
        let auth = String::from_utf8_lossy(auth.as_bytes());
        let parts: Vec<&str> = auth.split_whitespace().collect();
        return match parts.as_slice() {
            [scheme, token] if scheme.eq_ignore_ascii_case("token") => Some((*token).to_owned()),
            _ => None,
        };
    }
    Query::<Vec<(String, String)>>::try_from_uri(uri)
        .ok()
        .and_then(|Query(pairs)| pairs.into_iter().find(|(k, _)| k == "token"))
        .map(|(_, v)| v)
        .filter(|v| !v.is_empty())
}

fn authenticated(config: &Config, headers: &HeaderMap, uri: &Uri) -> bool {
    let admin = &config.admin;
    if admin.insecure {
        return true;
    }
    if admin.secret.is_empty() {
        return false;
    }
    request_token(headers, uri)
        .is_some_and(|t| token::verify(admin.secret.as_bytes(), &t, now()).is_ok())
}

/// The 401 of a request without a valid token; logs what upstream logs when no secret
/// is configured.
fn unauthorized(config: &Config) -> Response {
    if !config.admin.insecure && config.admin.secret.is_empty() {
        tracing::error!("admin request refused: no admin.secret in the configuration");
    }
    json_error(StatusCode::UNAUTHORIZED, "unauthorized")
}

async fn init(State(app): State<App>, headers: HeaderMap, uri: Uri) -> Response {
    let config = app.config();
    axum::Json(json!({
        "insecure": config.admin.insecure,
        "edition": "oss",
        "authenticated": authenticated(&config, &headers, &uri),
    }))
    .into_response()
}

async fn auth(State(app): State<App>, method: http::Method, uri: Uri, body: Body) -> Response {
    if method != http::Method::POST {
        return method_not_allowed();
    }
    let Ok(body) = axum::body::to_bytes(body, MAX_FORM).await else {
        return json_error(StatusCode::PAYLOAD_TOO_LARGE, "request body too large");
    };
    // As Go's `FormValue`: the body's field first, then the query's.
    let from_body = serde_urlencoded::from_bytes::<Vec<(String, String)>>(&body).ok();
    let from_query = Query::<Vec<(String, String)>>::try_from_uri(&uri)
        .ok()
        .map(|Query(q)| q);
    let given = [from_body, from_query]
        .into_iter()
        .flatten()
        .flatten()
        .find(|(k, _)| k == "password")
        .map(|(_, v)| v)
        .unwrap_or_default();
    let config = app.config();
    let admin = &config.admin;
    if admin.password.is_empty() || admin.secret.is_empty() {
        tracing::error!("admin login refused: admin.password and admin.secret must be set");
        return json_error(StatusCode::BAD_REQUEST, "admin login is not configured");
    }
    if !crate::api::secure_eq(&admin.password, &given) {
        return json_error(StatusCode::BAD_REQUEST, "bad request");
    }
    let token = token::generate(admin.secret.as_bytes(), now());
    axum::Json(json!({ "token": token })).into_response()
}

/// The configuration for a `POST` carrying a valid admin token (or any `POST` when
/// `admin.insecure`); otherwise the 405 or 401 to answer.
fn authorized_post(
    app: &App,
    method: &http::Method,
    headers: &HeaderMap,
    uri: &Uri,
) -> Result<std::sync::Arc<Config>, Box<Response>> {
    if method != http::Method::POST {
        return Err(Box::new(method_not_allowed()));
    }
    let config = app.config();
    if !authenticated(&config, headers, uri) {
        return Err(Box::new(unauthorized(&config)));
    }
    Ok(config)
}

async fn api(
    State(app): State<App>,
    method: http::Method,
    headers: HeaderMap,
    uri: Uri,
    body: Body,
) -> Response {
    if let Err(refused) = authorized_post(&app, &method, &headers, &uri) {
        return *refused;
    }
    crate::api::admin_command(&app, body).await
}

#[derive(Deserialize)]
struct LiveRequest {
    channel: String,
}

async fn live(
    State(app): State<App>,
    method: http::Method,
    headers: HeaderMap,
    uri: Uri,
    body: Body,
) -> Response {
    let config = match authorized_post(&app, &method, &headers, &uri) {
        Ok(config) => config,
        Err(refused) => return *refused,
    };
    let Ok(body) = axum::body::to_bytes(body, MAX_FORM).await else {
        return json_error(StatusCode::PAYLOAD_TOO_LARGE, "request body too large");
    };
    let channel = match serde_json::from_slice::<LiveRequest>(&body) {
        Ok(LiveRequest { channel }) if !channel.is_empty() => channel,
        _ => return json_error(StatusCode::BAD_REQUEST, "channel is required"),
    };
    match live_token(&config, &channel, now()) {
        Some(token) => {
            let origin = headers
                .get(http::header::ORIGIN)
                .and_then(|o| o.to_str().ok());
            let origin_allowed =
                crate::app::OriginCheck::new(&config.client.allowed_origins).allows(origin);
            axum::Json(json!({
                "token": token,
                "user": LIVE_USER,
                "channel": channel,
                "expires_in": LIVE_TTL_SECS,
                "websocket": {
                    "enabled": !config.websocket.disabled,
                    "path": config.websocket.handler_prefix,
                    "port": config.http_server.port,
                },
                "origin_allowed": origin_allowed,
            }))
            .into_response()
        }
        None => json_error(
            StatusCode::CONFLICT,
            "the live view needs client.token.hmac_secret_key: the server signs the view's \
             connection token with it",
        ),
    }
}

/// An HS256 connection token for [`LIVE_USER`] with the channel as a server-side
/// subscription, or `None` without an HMAC secret. Audience and issuer are set when the
/// server requires them.
fn live_token(config: &Config, channel: &str, now: i64) -> Option<String> {
    let t = &config.client.token;
    if t.hmac_secret_key.is_empty() {
        return None;
    }
    let mut claims = serde_json::Map::new();
    claims.insert("sub".into(), LIVE_USER.into());
    if !t.user_id_claim.is_empty() {
        crate::jwt::cli::set_path(&mut claims, &t.user_id_claim, LIVE_USER);
    }
    claims.insert("channels".into(), json!([channel]));
    claims.insert("iat".into(), now.into());
    claims.insert("exp".into(), (now + LIVE_TTL_SECS).into());
    if !t.audience.is_empty() {
        claims.insert("aud".into(), t.audience.clone().into());
    }
    if !t.issuer.is_empty() {
        claims.insert("iss".into(), t.issuer.clone().into());
    }
    jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(t.hmac_secret_key.as_bytes()),
    )
    .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(k, v)| {
                (
                    http::HeaderName::from_static(k),
                    http::HeaderValue::from_static(v),
                )
            })
            .collect()
    }

    #[test]
    fn token_from_header_or_query() {
        let plain: Uri = "/admin/api".parse().unwrap();
        let query: Uri = "/admin/api?token=q".parse().unwrap();
        assert_eq!(
            request_token(&headers(&[("authorization", "Token abc")]), &plain),
            Some("abc".into())
        );
        assert_eq!(
            request_token(&headers(&[("authorization", "bearer abc")]), &query),
            None
        );
        assert_eq!(
            request_token(&headers(&[("authorization", "token a b")]), &plain),
            None
        );
        assert_eq!(request_token(&HeaderMap::new(), &query), Some("q".into()));
        assert_eq!(request_token(&HeaderMap::new(), &plain), None);
    }

    #[test]
    fn live_token_carries_a_server_side_subscription() {
        let mut config = Config::default();
        assert_eq!(live_token(&config, "news", 1000), None);
        config.client.token.hmac_secret_key = "k".into();
        config.client.token.audience = "aud".into();
        let token = live_token(&config, "news", 1000).unwrap();
        let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
        validation.validate_exp = false;
        validation.set_audience(&["aud"]);
        let claims = jsonwebtoken::decode::<serde_json::Value>(
            &token,
            &jsonwebtoken::DecodingKey::from_secret(b"k"),
            &validation,
        )
        .unwrap()
        .claims;
        assert_eq!(claims["sub"], LIVE_USER);
        assert_eq!(claims["channels"], json!(["news"]));
        assert_eq!(claims["exp"], 1000 + LIVE_TTL_SECS);
    }

    #[test]
    fn nobody_can_log_in_is_warned() {
        let mut config = Config::default();
        config.admin.enabled = true;
        assert_eq!(startup_warnings(&config).len(), 1);
        config.admin.password = "p".into();
        config.admin.secret = "s".into();
        assert!(startup_warnings(&config).is_empty());
        config.admin.enabled = false;
        config.admin.password.clear();
        assert!(startup_warnings(&config).is_empty());
    }
}
