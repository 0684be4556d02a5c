//! The unidirectional gRPC transport (`uni_grpc`): upstream's
//! `centrifugal.centrifugo.unistream.CentrifugoUniStream` service (`proto/unistream.proto`)
//! on its own listener, `uni_grpc.address:uni_grpc.port`.
//!
//! `Consume` takes the connect request and answers a server stream of Protobuf pushes, as
//! the library's [`gyre::UniPushStreamHandler`] yields them: the `connect` push first, a
//! `disconnect` push last, then the stream ends with status OK (a refused connect gets
//! only the `disconnect` push, with the code the refusal maps to). The call's metadata
//! is what the connection sees as its request headers.
//!
//! A request that does not decode, or is larger than `uni_grpc.max_receive_message_size`
//! (gRPC's 4 MiB when 0), is answered with a gRPC error status by the framework. With
//! `uni_grpc.tls.enabled` the listener speaks TLS (ALPN `h2`).

use bytes::{Buf, BufMut, Bytes};
use futures_util::StreamExt;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};

use crate::app::App;

/// The generated protobuf messages and service of `proto/unistream.proto`.
#[allow(
    missing_docs,
    unreachable_pub,
    missing_debug_implementations,
    dead_code,
    clippy::all,
    reason = "generated code"
)]
pub(crate) mod pb {
    include!("generated/centrifugal.centrifugo.unistream.rs");
}

use pb::centrifugo_uni_stream_server::{CentrifugoUniStream, CentrifugoUniStreamServer};

/// A `Push` the library has already encoded: written to the stream as it is, so a
/// publication is encoded once however many connections carry it.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct RawPush(Bytes);

impl prost::Message for RawPush {
    fn encode_raw(&self, buf: &mut impl BufMut) {
        buf.put_slice(&self.0);
    }

    fn merge_field(
        &mut self,
        tag: u32,
        wire_type: prost::encoding::WireType,
        buf: &mut impl Buf,
        ctx: prost::encoding::DecodeContext,
    ) -> Result<(), prost::DecodeError> {
        // Only ever sent, never received.
        prost::encoding::skip_field(wire_type, tag, buf, ctx)
    }

    fn encoded_len(&self) -> usize {
        self.0.len()
    }

    fn clear(&mut self) {
        self.0.clear();
    }
}

/// The connect request as the client protocol's: same field numbers, fewer fields.
fn connect_request(r: pb::ConnectRequest) -> gyre_protocol::proto::ConnectRequest {
    gyre_protocol::proto::ConnectRequest {
        token: r.token,
        data: r.data,
        subs: r
            .subs
            .into_iter()
            .map(|(channel, s)| {
                let sub = gyre_protocol::proto::SubscribeRequest {
                    recover: s.recover,
                    epoch: s.epoch,
                    offset: s.offset,
                    ..Default::default()
                };
                (channel, sub)
            })
            .collect(),
        name: r.name,
        version: r.version,
        headers: r.headers,
        ..Default::default()
    }
}

struct Service {
    handler: gyre::UniPushStreamHandler,
}

fn ok_push(push: Bytes) -> Result<RawPush, Status> {
    Ok(RawPush(push))
}

type Pushes = futures_util::stream::Map<gyre::UniPushStream, fn(Bytes) -> Result<RawPush, Status>>;

#[tonic::async_trait]
impl CentrifugoUniStream for Service {
    type ConsumeStream = Pushes;

    async fn consume(
        &self,
        request: Request<pb::ConnectRequest>,
    ) -> Result<Response<Pushes>, Status> {
        let (metadata, _, message) = request.into_parts();
        let (mut parts, ()) = http::Request::new(()).into_parts();
        parts.headers = metadata.into_headers();
        let pushes = self.handler.connect(&parts, connect_request(message)).await;
        Ok(Response::new(pushes.map(ok_push as fn(_) -> _)))
    }
}

/// Serves `uni_grpc` on `listener` until `stop`, over TLS when `tls` is given.
pub(crate) async fn serve(
    app: App,
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    stop: CancellationToken,
) {
    let max = app.config().uni_grpc.max_receive_message_size;
    let mut service = CentrifugoUniStreamServer::new(Service {
        handler: gyre::UniPushStreamHandler::new(app.node.clone()),
    });
    if max > 0 {
        service = service.max_decoding_message_size(max as usize);
    }
    let router = tonic::transport::Server::builder().add_service(service);
    let served = match tls {
        None => {
            let incoming = tonic::transport::server::TcpIncoming::from(listener);
            router
                .serve_with_incoming_shutdown(incoming, stop.cancelled_owned())
                .await
        }
        Some(acceptor) => {
            let incoming = crate::grpc::tls_incoming(listener, acceptor, stop.clone());
            router
                .serve_with_incoming_shutdown(incoming, stop.cancelled_owned())
                .await
        }
    };
    if let Err(e) = served {
        tracing::error!(error = %e, "uni_grpc server failed");
    }
}

#[cfg(test)]
mod tests {
    use prost::Message;

    use super::*;

    #[test]
    fn raw_push_is_written_unchanged() {
        let push = RawPush(Bytes::from_static(b"\x12\x04news"));
        assert_eq!(push.encode_to_vec(), b"\x12\x04news");
        assert_eq!(push.encoded_len(), 6);
    }

    #[test]
    fn connect_request_keeps_every_field() {
        let mut r = pb::ConnectRequest {
            token: "t".into(),
            data: Bytes::from_static(b"{}"),
            name: "n".into(),
            version: "v".into(),
            ..Default::default()
        };
        r.headers.insert("h".into(), "1".into());
        r.subs.insert(
            "news".into(),
            pb::SubscribeRequest {
                recover: true,
                epoch: "e".into(),
                offset: 9,
            },
        );
        // Upstream's numbers line up with the client protocol's.
        let wire = r.encode_to_vec();
        let converted = connect_request(r);
        assert_eq!(
            gyre_protocol::proto::ConnectRequest::decode(&wire[..]).unwrap(),
            converted
        );
        assert_eq!(converted.subs["news"].offset, 9);
        assert_eq!(converted.headers["h"], "1");
    }
}
