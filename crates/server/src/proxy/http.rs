//! One proxy call over HTTP: POST of the JSON request, headers, and the answer's envelope.

use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::config::Proxy;

/// Why the backend gave no usable answer.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CallError {
    /// The request failed or timed out, or the body is not a valid answer.
    #[error("{0}")]
    Transport(String),
    /// The backend answered with a status other than 200.
    #[error("unexpected HTTP status code {0}")]
    Status(u16),
}

/// `{"error": {...}}` of an answer.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct ErrorBody {
    pub(crate) code: u32,
    pub(crate) message: String,
    pub(crate) temporary: bool,
}

/// `{"disconnect": {...}}` of an answer.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct DisconnectBody {
    pub(crate) code: u32,
    pub(crate) reason: String,
}

/// A backend answer: a result, or a custom error or disconnect.
#[derive(Debug, Deserialize)]
#[serde(bound = "R: DeserializeOwned")]
pub(crate) struct Envelope<R> {
    #[serde(default)]
    pub(crate) result: Option<R>,
    #[serde(default)]
    pub(crate) error: Option<ErrorBody>,
    #[serde(default)]
    pub(crate) disconnect: Option<DisconnectBody>,
}

/// Headers sent to the backend: the allow-listed headers of the client's HTTP request,
/// the allow-listed emulated headers the SDK sent, then the static headers.
fn outgoing_headers(
    proxy: &Proxy,
    request_headers: &http::HeaderMap,
    emulated: &std::collections::HashMap<String, String>,
) -> http::HeaderMap {
    let common = &proxy.proxy_common;
    let mut out = http::HeaderMap::new();
    for name in &common.http_headers {
        let Ok(key) = http::HeaderName::from_bytes(name.to_ascii_lowercase().as_bytes()) else {
            continue;
        };
        for value in request_headers.get_all(&key) {
            out.append(key.clone(), value.clone());
        }
    }
    for name in &common.emulated_headers {
        let found = emulated
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v);
        if let (Some(v), Ok(key)) = (
            found,
            http::HeaderName::from_bytes(name.to_ascii_lowercase().as_bytes()),
        ) && let Ok(value) = http::HeaderValue::from_str(v)
        {
            out.insert(key, value);
        }
    }
    for (name, value) in &common.http.static_headers {
        if let (Ok(key), Ok(value)) = (
            http::HeaderName::from_bytes(name.to_ascii_lowercase().as_bytes()),
            http::HeaderValue::from_str(value),
        ) {
            out.insert(key, value);
        }
    }
    out.insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    out
}

/// POSTs `body` to the proxy's endpoint and decodes the answer.
pub(crate) async fn call<R: DeserializeOwned>(
    proxy: &Proxy,
    request_headers: &http::HeaderMap,
    emulated: &std::collections::HashMap<String, String>,
    body: &serde_json::Value,
) -> Result<Envelope<R>, CallError> {
    let mut req = super::client().post(&proxy.endpoint);
    if let Some(timeout) = proxy.timeout.to_std().filter(|t| !t.is_zero()) {
        req = req.timeout(timeout);
    }
    let resp = req
        .headers(outgoing_headers(proxy, request_headers, emulated))
        .body(body.to_string())
        .send()
        .await
        .map_err(|e| CallError::Transport(e.to_string()))?;
    if resp.status() != reqwest::StatusCode::OK {
        return Err(CallError::Status(resp.status().as_u16()));
    }
    let bytes = resp
        .bytes()
        .await
        .map_err(|e| CallError::Transport(e.to_string()))?;
    serde_json::from_slice(&bytes).map_err(|e| CallError::Transport(format!("bad answer: {e}")))
}

/// `http.status_to_code_transforms`: the error or disconnect a non-200 status becomes.
pub(crate) fn transform_status(proxy: &Proxy, status: u16) -> Option<gyre::HandlerError> {
    let t = proxy
        .proxy_common
        .http
        .status_to_code_transforms
        .iter()
        .find(|t| t.status_code == i64::from(status))?;
    if t.to_disconnect.code > 0 {
        return Some(
            gyre::Disconnect::new(t.to_disconnect.code, t.to_disconnect.reason.clone()).into(),
        );
    }
    if t.to_error.code > 0 {
        let mut e = gyre::Error::new(t.to_error.code, t.to_error.message.clone());
        if t.to_error.temporary {
            e = e.temporary();
        }
        return Some(e.into());
    }
    None
}

/// The error or disconnect an answer asks for, disconnect first.
pub(crate) fn refusal<R>(envelope: &Envelope<R>) -> Option<gyre::HandlerError> {
    if let Some(d) = &envelope.disconnect {
        return Some(gyre::Disconnect::new(d.code, d.reason.clone()).into());
    }
    if let Some(e) = &envelope.error {
        let mut err = gyre::Error::new(e.code, e.message.clone());
        if e.temporary {
            err = err.temporary();
        }
        return Some(err.into());
    }
    None
}
