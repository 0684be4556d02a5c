//! Proxies of client events to the application backend over HTTP (Centrifugo v6
//! `internal/proxy`): `client.proxy.connect` decides who a connection without a token is,
//! `client.proxy.refresh` extends expiring connections server-side.
//!
//! Only `http://` and `https://` endpoints are implemented; configuration validation
//! refuses any other endpoint of an enabled client proxy.

pub(crate) mod connect;
mod http;
pub(crate) mod refresh;

use std::sync::OnceLock;

/// The HTTP client every proxy request goes through (connection pool shared by all
/// proxies; the timeout is set per request from the proxy's configuration).
fn client() -> &'static reqwest::Client {
    static CLIENT: OnceLock<reqwest::Client> = OnceLock::new();
    CLIENT.get_or_init(|| {
        reqwest::Client::builder()
            .no_proxy()
            .build()
            .unwrap_or_else(|_| reqwest::Client::new())
    })
}

/// `protocol` and `encoding` of proxy requests for a connection.
fn protocol_fields(protobuf: bool) -> (&'static str, &'static str) {
    if protobuf {
        ("protobuf", "binary")
    } else {
        ("json", "json")
    }
}

/// Decodes `b64x` of a backend answer (binary encoding) or takes its raw JSON `x`.
fn pick(
    binary: bool,
    b64: &str,
    raw: Option<Box<serde_json::value::RawValue>>,
) -> Result<bytes::Bytes, base64::DecodeError> {
    use base64::Engine;
    if binary {
        return base64::engine::general_purpose::STANDARD
            .decode(b64)
            .map(bytes::Bytes::from);
    }
    Ok(raw.map_or_else(bytes::Bytes::new, |r| {
        bytes::Bytes::from(String::from(Box::<str>::from(r)).into_bytes())
    }))
}

/// Puts client data in a request: `b64data` with binary encoding, else raw JSON `data`
/// (base64 after all when the bytes are not JSON, as from a Protobuf connection).
fn insert_data(body: &mut serde_json::Map<String, serde_json::Value>, binary: bool, data: &[u8]) {
    use base64::Engine;
    if data.is_empty() {
        return;
    }
    if !binary && let Ok(v) = serde_json::from_slice::<serde_json::Value>(data) {
        body.insert("data".into(), v);
        return;
    }
    body.insert(
        "b64data".into(),
        base64::engine::general_purpose::STANDARD
            .encode(data)
            .into(),
    );
}
