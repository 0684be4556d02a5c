//! Unidirectional transports (`uni_websocket`, `uni_sse`, `uni_http_stream`): the client
//! sends one connect request and then only listens.
//!
//! * `connect` — sans-IO: the connect request from a query string or a body (fuzzed);
//! * `websocket` — [`UniWebSocketHandler`]: the request in `?cf_connect=` or the first
//!   message, one push per text frame;
//! * `stream` — the HTTP streaming machinery shared by `uni_sse` (`data: …` events) and
//!   `uni_http_stream` (newline-delimited pushes): [`UniSseHandler`],
//!   [`UniHttpStreamHandler`];
//! * `push_stream` — [`UniPushStreamHandler`]: one Protobuf `Push` per stream item, for
//!   an application-served stream such as `uni_grpc`.
//!
//! What a unidirectional client receives is bare pushes (`{"pub":…,"channel":…}`, not
//! `{"push":{…}}`): the connect push first, then publications, joins, pings (`{}`), and a
//! `disconnect` push before the stream ends. The hub encodes a push once for every JSON
//! connection as `{"push":…}`; the bare push is a sub-slice of those same bytes, so these
//! transports cost the publish path nothing.

mod config;
mod connect;
mod push_stream;
mod stream;
mod websocket;

use bytes::Bytes;
use gyre_protocol::{Disconnect, Protocol, proto};

pub use config::{ConnectErrorResponse, UniStreamConfig, UniWebSocketConfig};
pub use push_stream::{UniPushStream, UniPushStreamHandler};
pub use stream::{UniHttpStreamHandler, UniSseHandler};
pub use websocket::UniWebSocketHandler;

use crate::transport::TransportInfo;

/// JSON pushes reach the queue as `{"push":X}`; a unidirectional client gets `X`.
/// Anything else (the `{}` ping) is already what it should see.
pub(crate) fn bare_push(message: Bytes) -> Bytes {
    const PREFIX: &[u8] = b"{\"push\":";
    if message.len() > PREFIX.len() && message.starts_with(PREFIX) && message.ends_with(b"}") {
        message.slice(PREFIX.len()..message.len() - 1)
    } else {
        message
    }
}

/// The last push before the stream ends: `{"disconnect":{"code":…,"reason":…}}`.
pub(crate) fn disconnect_push(d: &Disconnect) -> Bytes {
    let push = proto::Push {
        disconnect: Some(proto::Disconnect {
            code: d.code,
            reason: d.reason.to_string(),
            reconnect: false,
        }),
        ..Default::default()
    };
    // A disconnect carries no application payload, so JSON always encodes it.
    bare_push(crate::wire::encode_push(Protocol::Json, &push).unwrap_or_default())
}

/// Fuzz entry point: `data` as a connect body and as a query string.
pub(crate) fn fuzz_connect(data: &[u8]) {
    let _ = connect::from_body(data);
    if let Ok(query) = std::str::from_utf8(data) {
        let _ = connect::from_query(Some(query));
    }
}

/// What a unidirectional session knows of its transport.
pub(crate) fn transport_info(name: &'static str) -> TransportInfo {
    TransportInfo {
        name,
        protocol: Protocol::Json,
        emulation: false,
        unidirectional: true,
        native_ping_pong: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bare_push_strips_the_wrapper_of_pushes_only() {
        let push = proto::Push {
            channel: "news".into(),
            r#pub: Some(proto::Publication {
                data: Bytes::from_static(b"{\"a\":1}"),
                ..Default::default()
            }),
            ..Default::default()
        };
        let wrapped = crate::wire::encode_push(Protocol::Json, &push).unwrap();
        assert_eq!(
            &bare_push(wrapped)[..],
            br#"{"channel":"news","pub":{"data":{"a":1}}}"#
        );
        assert_eq!(&bare_push(Bytes::from_static(b"{}"))[..], b"{}");
        assert_eq!(
            &disconnect_push(&Disconnect::SHUTDOWN)[..],
            br#"{"disconnect":{"code":3001,"reason":"shutdown"}}"#
        );
    }
}
