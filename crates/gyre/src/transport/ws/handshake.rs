//! The HTTP/1.1 upgrade (RFC 6455 §4.2) and the encoding choice of PROTOCOL §1.

use base64::Engine as _;
use bytes::Bytes;
use http::header::{
    CONNECTION, HOST, HeaderMap, HeaderName, HeaderValue, ORIGIN, SEC_WEBSOCKET_ACCEPT,
    SEC_WEBSOCKET_EXTENSIONS, SEC_WEBSOCKET_KEY, SEC_WEBSOCKET_PROTOCOL, SEC_WEBSOCKET_VERSION,
    UPGRADE,
};
use http::{Method, Response, StatusCode, Version};
use http_body_util::Full;
use sha1::{Digest, Sha1};

use super::config::WsConfig;
use super::deflate;
use crate::transport::Protocol;

/// What the handler answers with.
pub(crate) type HttpResponse = Response<Full<Bytes>>;

const GUID: &[u8] = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
const SUBPROTOCOL_JSON: &str = "centrifuge-json";
const SUBPROTOCOL_PROTOBUF: &str = "centrifuge-protobuf";

/// A handshake that succeeded.
#[derive(Debug)]
pub(crate) struct Accepted {
    /// The 101 response (with the echoed subprotocol, if any).
    pub(crate) response: HttpResponse,
    /// Encoding of the connection.
    pub(crate) protocol: Protocol,
    /// `cf_ws_frame_ping_pong=true`: the transport pings, not the session.
    pub(crate) native_ping_pong: bool,
    /// permessage-deflate was negotiated (the response says so).
    pub(crate) deflate: bool,
}

/// Validates an upgrade request. `Err` is the response to send instead (400, 403, 405,
/// 426), never a panic: every header is untrusted input.
pub(crate) fn accept(
    parts: &http::request::Parts,
    config: &WsConfig,
) -> Result<Accepted, Box<HttpResponse>> {
    if parts.method != Method::GET {
        let mut r = error(
            StatusCode::METHOD_NOT_ALLOWED,
            "websocket: method is not GET",
        );
        r.headers_mut()
            .insert(http::header::ALLOW, HeaderValue::from_static("GET"));
        return Err(r);
    }
    if parts.version != Version::HTTP_11 {
        return Err(error(
            StatusCode::BAD_REQUEST,
            "websocket: HTTP/1.1 required",
        ));
    }
    let headers = &parts.headers;
    if !has_token(headers, &CONNECTION, "upgrade") {
        return Err(error(
            StatusCode::BAD_REQUEST,
            "websocket: missing 'Connection: upgrade'",
        ));
    }
    if !has_token(headers, &UPGRADE, "websocket") {
        return Err(error(
            StatusCode::BAD_REQUEST,
            "websocket: missing 'Upgrade: websocket'",
        ));
    }
    let version_ok = headers.get_all(SEC_WEBSOCKET_VERSION).iter().count() == 1
        && headers
            .get(SEC_WEBSOCKET_VERSION)
            .map(HeaderValue::as_bytes)
            == Some(b"13");
    if !version_ok {
        let mut r = error(
            StatusCode::UPGRADE_REQUIRED,
            "websocket: unsupported version",
        );
        r.headers_mut()
            .insert(SEC_WEBSOCKET_VERSION, HeaderValue::from_static("13"));
        return Err(r);
    }
    let key = match single(headers, &SEC_WEBSOCKET_KEY) {
        Some(k) if key_is_valid(k.as_bytes()) => k,
        _ => {
            return Err(error(
                StatusCode::BAD_REQUEST,
                "websocket: bad Sec-WebSocket-Key",
            ));
        }
    };
    let origin_ok = match &config.check_origin {
        Some(check) => check(parts),
        None => same_host(parts),
    };
    if !origin_ok {
        return Err(error(
            StatusCode::FORBIDDEN,
            "websocket: origin not allowed",
        ));
    }

    let mut protocol = Protocol::Json;
    let mut native_ping_pong = false;
    if let Some(query) = parts.uri.query() {
        // Like Go's `Query().Get`: the first occurrence of a key counts.
        if first_param(query, "format") == Some("protobuf")
            || first_param(query, "cf_protocol") == Some("protobuf")
        {
            protocol = Protocol::Protobuf;
        }
        native_ping_pong = first_param(query, "cf_ws_frame_ping_pong") == Some("true");
    }
    let subprotocol = select_subprotocol(headers);
    if subprotocol == Some(SUBPROTOCOL_PROTOBUF) {
        // `centrifuge-json` deliberately does not override `format=protobuf`.
        protocol = Protocol::Protobuf;
    }

    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = response.headers_mut();
    h.insert(UPGRADE, HeaderValue::from_static("websocket"));
    h.insert(CONNECTION, HeaderValue::from_static("Upgrade"));
    h.insert(SEC_WEBSOCKET_ACCEPT, accept_key(key.as_bytes()));
    if let Some(sp) = subprotocol {
        // Browsers fail the handshake when a requested subprotocol is not echoed.
        h.insert(SEC_WEBSOCKET_PROTOCOL, HeaderValue::from_static(sp));
    }
    let deflate = config.compression.is_some() && deflate::negotiate(headers);
    if deflate {
        h.insert(
            SEC_WEBSOCKET_EXTENSIONS,
            HeaderValue::from_static(deflate::RESPONSE),
        );
    }
    Ok(Accepted {
        response,
        protocol,
        native_ping_pong,
        deflate,
    })
}

/// `Sec-WebSocket-Accept` for a client key: base64(SHA-1(key ‖ GUID)).
pub(crate) fn accept_key(key: &[u8]) -> HeaderValue {
    let mut sha = Sha1::new();
    sha.update(key);
    sha.update(GUID);
    let digest = sha.finalize();
    let encoded = base64(&digest);
    HeaderValue::from_str(&encoded).expect("base64 is a valid header value")
}

fn base64(data: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(data)
}

/// RFC 6455 §4.1: the key is 16 random bytes in base64, i.e. 22 symbols and `==`.
fn key_is_valid(key: &[u8]) -> bool {
    key.len() == 24
        && key[22..] == *b"=="
        && key[..22]
            .iter()
            .all(|&c| c.is_ascii_alphanumeric() || c == b'+' || c == b'/')
}

fn single<'a>(headers: &'a HeaderMap, name: &HeaderName) -> Option<&'a HeaderValue> {
    let mut all = headers.get_all(name).iter();
    let first = all.next()?;
    all.next().is_none().then_some(first)
}

/// Whether a comma-separated header (possibly repeated) lists `token`, case-insensitively.
fn has_token(headers: &HeaderMap, name: &HeaderName, token: &str) -> bool {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

/// The first subprotocol the client offered that we speak.
fn select_subprotocol(headers: &HeaderMap) -> Option<&'static str> {
    headers
        .get_all(SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .find_map(|t| match t.trim() {
            SUBPROTOCOL_JSON => Some(SUBPROTOCOL_JSON),
            SUBPROTOCOL_PROTOBUF => Some(SUBPROTOCOL_PROTOBUF),
            _ => None,
        })
}

fn first_param<'a>(query: &'a str, key: &str) -> Option<&'a str> {
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (k == key).then_some(v)
    })
}

/// The library default (upstream `checkSameHost`): no `Origin`, or its host[:port] equals
/// the `Host` header, ignoring ASCII case.
fn same_host(parts: &http::request::Parts) -> bool {
    let Some(origin) = parts.headers.get(ORIGIN) else {
        return true;
    };
    let Ok(origin) = origin.to_str() else {
        return false;
    };
    let host = match parts.headers.get(HOST).and_then(|h| h.to_str().ok()) {
        Some(h) => h,
        None => match parts.uri.authority() {
            Some(a) => a.as_str(),
            None => return false,
        },
    };
    match origin_host(origin) {
        Some(o) => !o.is_empty() && o.eq_ignore_ascii_case(host),
        None => false,
    }
}

/// The authority of an origin such as `https://example.com:8443` (`None` for `null`).
fn origin_host(origin: &str) -> Option<&str> {
    let (_, rest) = origin.split_once("://")?;
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..end];
    Some(authority.rsplit_once('@').map_or(authority, |(_, h)| h))
}

/// Boxed: refusals are rare and a response is large, so the `Ok` path stays lean.
fn error(status: StatusCode, message: &'static str) -> Box<HttpResponse> {
    let mut r = Response::new(Full::new(Bytes::from_static(message.as_bytes())));
    *r.status_mut() = status;
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    Box::new(r)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn request(uri: &str, extra: &[(&str, &str)]) -> http::request::Parts {
        let mut b = http::Request::builder()
            .method("GET")
            .uri(uri)
            .header("Host", "example.com")
            .header("Upgrade", "websocket")
            .header("Connection", "keep-alive, Upgrade")
            .header("Sec-WebSocket-Version", "13")
            .header("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==");
        for (k, v) in extra {
            b = b.header(*k, *v);
        }
        b.body(()).unwrap().into_parts().0
    }

    fn ok(parts: &http::request::Parts) -> Accepted {
        accept(parts, &WsConfig::default()).expect("accepted")
    }

    fn status(parts: &http::request::Parts) -> StatusCode {
        match accept(parts, &WsConfig::default()) {
            Ok(a) => a.response.status(),
            Err(r) => r.status(),
        }
    }

    #[test]
    fn rfc_accept_key() {
        // RFC 6455 §1.3 example.
        assert_eq!(
            accept_key(b"dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
    }

    #[test]
    fn default_is_json_with_101() {
        let a = ok(&request("/connection/websocket", &[]));
        assert_eq!(a.response.status(), StatusCode::SWITCHING_PROTOCOLS);
        assert_eq!(a.protocol, Protocol::Json);
        assert!(!a.native_ping_pong);
        assert!(a.response.headers().get(SEC_WEBSOCKET_PROTOCOL).is_none());
        assert_eq!(a.response.headers()[UPGRADE], "websocket");
    }

    #[test]
    fn encoding_selection() {
        let cases: &[(&str, Option<&str>, Protocol, Option<&str>)] = &[
            ("/ws?format=protobuf", None, Protocol::Protobuf, None),
            ("/ws?cf_protocol=protobuf", None, Protocol::Protobuf, None),
            ("/ws?cf_protocol_version=v2&x=1", None, Protocol::Json, None),
            ("/ws?format=json", None, Protocol::Json, None),
            (
                "/ws",
                Some("centrifuge-protobuf"),
                Protocol::Protobuf,
                Some("centrifuge-protobuf"),
            ),
            (
                "/ws",
                Some("centrifuge-json"),
                Protocol::Json,
                Some("centrifuge-json"),
            ),
            (
                "/ws?format=protobuf",
                Some("centrifuge-json"),
                Protocol::Protobuf,
                Some("centrifuge-json"),
            ),
            (
                "/ws",
                Some("foo, centrifuge-json, centrifuge-protobuf"),
                Protocol::Json,
                Some("centrifuge-json"),
            ),
            (
                "/ws",
                Some("foo,centrifuge-protobuf"),
                Protocol::Protobuf,
                Some("centrifuge-protobuf"),
            ),
            ("/ws", Some("foo"), Protocol::Json, None),
        ];
        for &(uri, sp, proto, echo) in cases {
            let extra: Vec<(&str, &str)> = sp
                .map(|s| ("Sec-WebSocket-Protocol", s))
                .into_iter()
                .collect();
            let a = ok(&request(uri, &extra));
            assert_eq!(a.protocol, proto, "{uri} {sp:?}");
            assert_eq!(
                a.response
                    .headers()
                    .get(SEC_WEBSOCKET_PROTOCOL)
                    .map(|v| v.to_str().unwrap()),
                echo,
                "{uri} {sp:?}"
            );
        }
        assert!(ok(&request("/ws?cf_ws_frame_ping_pong=true", &[])).native_ping_pong);
        assert!(!ok(&request("/ws?cf_ws_frame_ping_pong=false", &[])).native_ping_pong);
    }

    #[test]
    fn rejections() {
        let mut p = request("/ws", &[]);
        p.method = Method::POST;
        assert_eq!(status(&p), StatusCode::METHOD_NOT_ALLOWED);

        let mut p = request("/ws", &[]);
        p.headers.remove(UPGRADE);
        assert_eq!(status(&p), StatusCode::BAD_REQUEST);

        let mut p = request("/ws", &[]);
        p.headers
            .insert(CONNECTION, HeaderValue::from_static("keep-alive"));
        assert_eq!(status(&p), StatusCode::BAD_REQUEST);

        let mut p = request("/ws", &[]);
        p.headers.remove(SEC_WEBSOCKET_KEY);
        assert_eq!(status(&p), StatusCode::BAD_REQUEST);

        let mut p = request("/ws", &[]);
        p.headers
            .insert(SEC_WEBSOCKET_KEY, HeaderValue::from_static("short"));
        assert_eq!(status(&p), StatusCode::BAD_REQUEST);

        let mut p = request("/ws", &[]);
        p.headers
            .insert(SEC_WEBSOCKET_VERSION, HeaderValue::from_static("8"));
        let r = accept(&p, &WsConfig::default()).unwrap_err();
        assert_eq!(r.status(), StatusCode::UPGRADE_REQUIRED);
        assert_eq!(r.headers()[SEC_WEBSOCKET_VERSION], "13");
    }

    #[test]
    fn deflate_only_when_enabled_and_offered() {
        let offer = [(
            "Sec-WebSocket-Extensions",
            "permessage-deflate; client_max_window_bits",
        )];
        let a = ok(&request("/ws", &offer));
        assert!(!a.deflate, "compression is off by default");
        assert!(a.response.headers().get(SEC_WEBSOCKET_EXTENSIONS).is_none());

        let config = WsConfig {
            compression: Some(deflate::DeflateConfig {
                level: 1,
                min_size: 0,
                decompressed_limit: 0,
                cache: true,
            }),
            ..WsConfig::default()
        };
        let a = accept(&request("/ws", &offer), &config).unwrap();
        assert!(a.deflate);
        assert_eq!(
            a.response.headers()[SEC_WEBSOCKET_EXTENSIONS],
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover"
        );
        let a = accept(&request("/ws", &[]), &config).unwrap();
        assert!(!a.deflate);
        let declined = [(
            "Sec-WebSocket-Extensions",
            "permessage-deflate; server_max_window_bits=9",
        )];
        let a = accept(&request("/ws", &declined), &config).unwrap();
        assert!(!a.deflate);
        assert!(a.response.headers().get(SEC_WEBSOCKET_EXTENSIONS).is_none());
    }

    #[test]
    fn origin_check() {
        let same = request("/ws", &[("Origin", "https://EXAMPLE.com")]);
        assert_eq!(status(&same), StatusCode::SWITCHING_PROTOCOLS);
        let foreign = request("/ws", &[("Origin", "https://evil.com")]);
        assert_eq!(status(&foreign), StatusCode::FORBIDDEN);
        let port = request("/ws", &[("Origin", "https://example.com:8443")]);
        assert_eq!(status(&port), StatusCode::FORBIDDEN);
        let null = request("/ws", &[("Origin", "null")]);
        assert_eq!(status(&null), StatusCode::FORBIDDEN);

        let config = WsConfig {
            check_origin: Some(Arc::new(|p: &http::request::Parts| {
                p.headers
                    .get(ORIGIN)
                    .is_some_and(|o| o == "https://evil.com")
            })),
            ..WsConfig::default()
        };
        assert!(accept(&foreign, &config).is_ok());
        assert!(accept(&same, &config).is_err());
    }
}
