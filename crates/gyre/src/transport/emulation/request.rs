//! Request bodies, plain responses and the framings of the streamed responses.
//!
//! Everything here but [`read_body`] is sans-IO, so the decoders facing the network are
//! property-tested without sockets.

use bytes::{BufMut, Bytes, BytesMut};
use http::{HeaderValue, StatusCode, header};
use http_body_util::{BodyExt, Limited};
use hyper::body::Body;

use super::stream::ResponseBody;

/// Status upstream answers when the client went away while sending its body (nginx's
/// "client closed request").
const CLIENT_CLOSED_REQUEST: u16 = 499;

/// Reads a whole request body of at most `limit` bytes. `Err` is the response to send:
/// 413 when the body is larger, 499 when it could not be read.
pub(crate) async fn read_body<B>(
    body: B,
    limit: usize,
) -> Result<Bytes, http::Response<ResponseBody>>
where
    B: Body,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) => {
            if e.is::<http_body_util::LengthLimitError>() {
                Err(status(StatusCode::PAYLOAD_TOO_LARGE))
            } else {
                tracing::debug!(error = %e, "error reading emulation request body");
                Err(status(
                    StatusCode::from_u16(CLIENT_CLOSED_REQUEST).unwrap_or(StatusCode::BAD_REQUEST),
                ))
            }
        }
    }
}

/// An empty response with `code`.
pub(crate) fn status(code: StatusCode) -> http::Response<ResponseBody> {
    let mut response = http::Response::new(ResponseBody::empty());
    *response.status_mut() = code;
    response
}

/// The answer to a browser's pre-flight request for a `POST` endpoint.
pub(crate) fn preflight() -> http::Response<ResponseBody> {
    let mut response = status(StatusCode::NO_CONTENT);
    let headers = response.headers_mut();
    headers.insert(
        header::ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from_static("300"),
    );
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("POST, OPTIONS"),
    );
    response
}

/// Whether the request says its body is Protobuf (upstream looks at this exact value).
pub(crate) fn is_protobuf(parts: &http::request::Parts) -> bool {
    parts
        .headers
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes() == b"application/octet-stream")
}

/// Headers of a streamed response: nothing between the server and the client may cache
/// or buffer it.
pub(crate) fn stream_response(
    content_type: &'static str,
    body: ResponseBody,
) -> http::Response<ResponseBody> {
    let mut response = http::Response::new(body);
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-cache, no-store, must-revalidate, max-age=0"),
    );
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    headers.insert("expire", HeaderValue::from_static("0"));
    response
}

/// How queued messages are laid out in a streamed response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Framing {
    /// HTTP-streaming, JSON: every message ends with `\n`.
    JsonLines,
    /// HTTP-streaming, Protobuf: messages are queued with their varint length prefix
    /// already, so they are concatenated.
    Protobuf,
    /// Server-sent events: `data: <message>\n\n` per message.
    Sse,
}

impl Framing {
    /// One chunk of the response holding `messages` in order.
    pub(crate) fn encode(self, messages: &[Bytes]) -> Bytes {
        if let (Framing::Protobuf, [one]) = (self, messages) {
            return one.clone();
        }
        let extra = match self {
            Framing::JsonLines => 1,
            Framing::Protobuf => 0,
            Framing::Sse => 8,
        };
        let len = messages.iter().map(|m| m.len() + extra).sum();
        let mut out = BytesMut::with_capacity(len);
        for m in messages {
            match self {
                Framing::JsonLines => {
                    out.put_slice(m);
                    out.put_u8(b'\n');
                }
                Framing::Protobuf => out.put_slice(m),
                Framing::Sse => {
                    out.put_slice(b"data: ");
                    out.put_slice(m);
                    out.put_slice(b"\n\n");
                }
            }
        }
        out.freeze()
    }
}

/// The value of query parameter `name` in `query`, percent-decoded (`+` is a space, as
/// browsers' `URLSearchParams` write it). `None` if absent, or if the decoded value is
/// not UTF-8.
pub(crate) fn query_param(query: &str, name: &str) -> Option<String> {
    query.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        (percent_decode(key)? == name).then(|| percent_decode(value))?
    })
}

/// Decodes `%XX` escapes and `+`; a malformed escape is kept as it is, like browsers do.
pub(crate) fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h << 4 | l);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}
