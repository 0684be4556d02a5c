//! Unidirectional connections whose pushes leave as separate Protobuf `Push` messages on
//! a stream that the application serves: Centrifugo's `uni_grpc`, where every push is
//! one message of the `Consume` server stream. The library has no gRPC server of its own;
//! the application hands the decoded connect request in and sends out what the stream
//! yields.
//!
//! As upstream on this transport, the session sends no protocol pings (gRPC has its own
//! keepalive) and ends with a `disconnect` push.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use gyre_protocol::{Disconnect, Protocol, proto};
use prost::Message;
use tokio::sync::mpsc;

use crate::Node;
use crate::transport::pump::{Chunks, pump};
use crate::transport::{Session, SessionFactory, TransportInfo};

const NAME: &str = "uni_grpc";

/// Serves unidirectional connections as streams of Protobuf-encoded `Push` messages
/// (Centrifugo's `uni_grpc`): [`UniPushStreamHandler::connect`] runs the connect and
/// returns the stream, the connect push first.
///
/// ```no_run
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// use futures_util::StreamExt;
/// use gyre::{Node, UniPushStreamHandler};
/// let node = Node::builder().build();
/// node.run().await?;
/// let handler = UniPushStreamHandler::new(node.clone());
/// let (parts, ()) = http::Request::new(()).into_parts();
/// let mut pushes = handler.connect(&parts, Default::default()).await;
/// while let Some(push) = pushes.next().await {
///     // One encoded `Push` per item: send it as one gRPC message.
///     let _ = push;
/// }
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct UniPushStreamHandler {
    factory: Arc<Node>,
    /// How long one push may wait for the consumer of the stream before the client is
    /// dropped (3009).
    write_timeout: Duration,
}

impl UniPushStreamHandler {
    /// A handler feeding connections to `node`.
    pub fn new(node: Node) -> Self {
        UniPushStreamHandler {
            factory: Arc::new(node),
            write_timeout: Duration::from_secs(1),
        }
    }

    /// Connects a client with `connect` (`request` holds its metadata as HTTP headers).
    /// A refused connect yields a stream with the `disconnect` push only.
    pub async fn connect(
        &self,
        request: &http::request::Parts,
        connect: proto::ConnectRequest,
    ) -> UniPushStream {
        start(&*self.factory, request, connect, self.write_timeout).await
    }
}

/// The pushes of one connection, each an encoded `Push`; it ends after the `disconnect`
/// push, or when the connection is gone. Dropping it disconnects the client.
#[derive(Debug)]
pub struct UniPushStream(mpsc::Receiver<Bytes>);

impl futures_util::Stream for UniPushStream {
    type Item = Bytes;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Bytes>> {
        self.0.poll_recv(cx)
    }
}

fn info() -> TransportInfo {
    TransportInfo {
        name: NAME,
        protocol: Protocol::Protobuf,
        emulation: false,
        unidirectional: true,
        // Upstream's gRPC transport sends no protocol pings (ping interval 0).
        native_ping_pong: true,
    }
}

async fn start<F: SessionFactory>(
    factory: &F,
    request: &http::request::Parts,
    connect: proto::ConnectRequest,
    write_timeout: Duration,
) -> UniPushStream {
    // One slot: the writer never runs ahead of what the consumer takes.
    let (tx, rx) = mpsc::channel(1);
    let refused = match factory.new_session(info(), request) {
        Ok(session) => match session.connect_unidirectional(connect).await {
            Ok(()) => {
                tokio::spawn(pump(session, tx, PushChunks, write_timeout));
                return UniPushStream(rx);
            }
            Err(refused) => {
                session.finish(refused.disconnect.clone()).await;
                refused.disconnect
            }
        },
        Err(d) => d,
    };
    let _ = tx.try_send(disconnect_push(&refused));
    UniPushStream(rx)
}

/// Bare Protobuf pushes of a uni gRPC stream, one per stream message.
struct PushChunks;

impl Chunks for PushChunks {
    fn messages(&mut self, batch: &mut Vec<Bytes>, out: &mut Vec<Bytes>) {
        for message in batch.drain(..) {
            bare_pushes(message, out);
        }
    }

    fn disconnect(&mut self, d: &Disconnect) -> Option<Bytes> {
        Some(disconnect_push(d))
    }
}

/// Protobuf connections queue length-prefixed `Reply { push }` messages; this stream
/// carries the bare `Push`. Replies without a push (none are expected here) are dropped.
fn bare_pushes(message: Bytes, out: &mut Vec<Bytes>) {
    let mut rest = &message[..];
    while !rest.is_empty() {
        let Ok(len) = prost::decode_length_delimiter(&mut rest) else {
            return;
        };
        if len > rest.len() {
            return;
        }
        let reply = &rest[..len];
        let start = message.len() - rest.len();
        rest = &rest[len..];
        // `Reply` holding only field 4 (the push): a slice of the same buffer.
        if let Some((&0x22, mut field)) = reply.split_first()
            && let Ok(n) = prost::decode_length_delimiter(&mut field)
            && n == field.len()
        {
            let end = start + len;
            out.push(message.slice(end - n..end));
            continue;
        }
        if let Ok(proto::Reply {
            push: Some(push), ..
        }) = proto::Reply::decode(reply)
        {
            out.push(push.encode_to_vec().into());
        }
    }
}

/// The last push before the stream ends.
fn disconnect_push(d: &Disconnect) -> Bytes {
    proto::Push {
        disconnect: Some(proto::Disconnect {
            code: d.code,
            reason: d.reason.to_string(),
            reconnect: false,
        }),
        ..Default::default()
    }
    .encode_to_vec()
    .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(push: proto::Push) -> Bytes {
        crate::wire::encode_push(Protocol::Protobuf, &push).unwrap()
    }

    #[test]
    fn queued_replies_become_bare_pushes() {
        let publication = proto::Push {
            channel: "news".into(),
            r#pub: Some(proto::Publication {
                data: Bytes::from_static(b"\x01\x02"),
                offset: 3,
                ..Default::default()
            }),
            ..Default::default()
        };
        let empty = proto::Push::default();
        let mut queued = reply(publication.clone()).to_vec();
        queued.extend_from_slice(&reply(empty.clone()));
        // A ping (an empty reply) carries no push.
        queued.push(0);
        let mut out = Vec::new();
        bare_pushes(queued.into(), &mut out);
        assert_eq!(out.len(), 2);
        assert_eq!(proto::Push::decode(&out[0][..]).unwrap(), publication);
        assert_eq!(proto::Push::decode(&out[1][..]).unwrap(), empty);

        // A reply with more than the push still yields it; garbage yields nothing.
        let both = proto::Reply {
            id: 7,
            push: Some(publication.clone()),
            ..Default::default()
        };
        let mut out = Vec::new();
        bare_pushes(both.encode_length_delimited_to_vec().into(), &mut out);
        assert_eq!(proto::Push::decode(&out[0][..]).unwrap(), publication);
        let mut out = Vec::new();
        bare_pushes(Bytes::from_static(b"\xff\xff\xff"), &mut out);
        bare_pushes(Bytes::from_static(b"\x05\x22\x09"), &mut out);
        assert!(out.is_empty());
    }

    #[test]
    fn disconnect_push_is_a_bare_push() {
        let push = proto::Push::decode(&disconnect_push(&Disconnect::SHUTDOWN)[..]).unwrap();
        let d = push.disconnect.unwrap();
        assert_eq!((d.code, d.reason.as_str()), (3001, "shutdown"));
    }
}
