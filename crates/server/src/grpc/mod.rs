//! The server API over gRPC: upstream's `centrifugal.centrifugo.api.CentrifugoApi`
//! service (`proto/api.proto`) on its own listener, `grpc_api.address:grpc_api.port`.
//!
//! Every rpc is generated from the method table of the HTTP API (`api_methods!` in
//! `api/methods.rs`) and runs the same `executor::<name>` function: the protobuf request
//! is converted into the HTTP API's request type (`convert.rs`), and the result or the
//! API error comes back in the reply (`{error: {code, message}}`, `{result}`), as
//! upstream answers. `Batch` converts its commands into the HTTP API's batch commands and
//! runs the same batch executor.
//!
//! With `grpc_api.tls.enabled` the listener speaks TLS (ALPN `h2`), with the certificate
//! and key read as for `http_server.tls`.
//!
//! With `grpc_api.reflection` the gRPC reflection service (v1 and v1alpha) describes the
//! API to tools such as grpcurl; it does not ask for the key.
//!
//! API errors are answered as a gRPC status instead (upstream's code mapping, the error
//! object in the details) with `grpc_api.error_mode: transport` or, per call, metadata
//! `x-centrifugo-error-mode: transport`; `Batch` always answers in its replies.
//!
//! Otherwise only the API key is a gRPC status: with `grpc_api.key` set, a call without metadata
//! `authorization: apikey <key>` fails with `UNAUTHENTICATED`. Methods upstream serves
//! and Gyre does not (the PRO ones) are not in the proto: a call gets `UNIMPLEMENTED`,
//! and a batch command carrying only one of them is answered "not found" (104), as over
//! HTTP.

mod convert;

use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};

use crate::api::executor;
use crate::api::methods::{Command, Method, Outcome, api_methods};
// The table's rows name the HTTP API's request and result types by their short names.
use crate::api::proto::*;
use crate::app::App;
use crate::metrics::ApiProtocol;

/// How long a client may take to finish the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The generated protobuf messages and service of `proto/api.proto`.
#[allow(
    missing_docs,
    unreachable_pub,
    missing_debug_implementations,
    clippy::all,
    reason = "generated code"
)]
pub(crate) mod pb {
    include!("generated/centrifugal.centrifugo.api.rs");
}

use pb::centrifugo_api_server::{CentrifugoApi, CentrifugoApiServer};

/// A method's reply message: `{error, result}`.
trait Answer {
    type Result;

    fn answer(error: Option<pb::Error>, result: Option<Self::Result>) -> Self;
}

/// The protobuf request and reply of each method of the table, by the row's name, and
/// its field in a batch reply.
macro_rules! wire {
    ($($name:ident: $request:ident => $response:ident($result:ident);)*) => {
        $(mod $name {
            pub(super) type Request = super::pb::$request;
            pub(super) type Response = super::pb::$response;
        }

        impl Answer for pb::$response {
            type Result = pb::$result;

            fn answer(error: Option<pb::Error>, result: Option<pb::$result>) -> Self {
                pb::$response { error, result }
            }
        })*
    };
}

wire! {
    publish:        PublishRequest       => PublishResponse(PublishResult);
    broadcast:      BroadcastRequest     => BroadcastResponse(BroadcastResult);
    subscribe:      SubscribeRequest     => SubscribeResponse(SubscribeResult);
    unsubscribe:    UnsubscribeRequest   => UnsubscribeResponse(UnsubscribeResult);
    disconnect:     DisconnectRequest    => DisconnectResponse(DisconnectResult);
    history:        HistoryRequest       => HistoryResponse(HistoryResult);
    history_remove: HistoryRemoveRequest => HistoryRemoveResponse(HistoryRemoveResult);
    presence:       PresenceRequest      => PresenceResponse(PresenceResult);
    presence_stats: PresenceStatsRequest => PresenceStatsResponse(PresenceStatsResult);
    info:           InfoRequest          => InfoResponse(InfoResult);
    rpc:            RpcRequest           => RpcResponse(RpcResult);
    refresh:        RefreshRequest       => RefreshResponse(RefreshResult);
    channels:       ChannelsRequest      => ChannelsResponse(ChannelsResult);
    map_publish:     MapPublishRequest    => MapPublishResponse(MapPublishResult);
    map_remove:      MapRemoveRequest     => MapRemoveResponse(MapRemoveResult);
    map_read_state:  MapReadStateRequest  => MapReadStateResponse(MapReadStateResult);
    map_read_stream: MapReadStreamRequest => MapReadStreamResponse(MapReadStreamResult);
    map_stats:       MapStatsRequest      => MapStatsResponse(MapStatsResult);
    map_clear:       MapClearRequest      => MapClearResponse(MapClearResult);
    shared_poll_publish: SharedPollPublishRequest => SharedPollPublishResponse(SharedPollPublishResult);
}

/// The reply of one call: the API error or the converted result.
fn answer<T, R>(outcome: Result<T, ApiError>) -> R
where
    R: Answer,
    T: Into<R::Result>,
{
    match outcome {
        Ok(result) => R::answer(None, Some(result.into())),
        Err(error) => R::answer(Some(error.into()), None),
    }
}

/// The service: the application the executor functions run against.
#[derive(Clone)]
struct Service {
    app: App,
    /// `grpc_api.error_mode: transport`.
    transport_errors: bool,
}

impl Service {
    /// Whether an API error is answered as a gRPC status: always in the transport error
    /// mode, else when the call asks with `x-centrifugo-error-mode: transport`.
    fn transport_errors(&self, metadata: &tonic::metadata::MetadataMap) -> bool {
        self.transport_errors
            || metadata
                .get("x-centrifugo-error-mode")
                .is_some_and(|v| v.as_bytes() == b"transport")
    }
}

/// `google.rpc.Status`, the conventional content of a status's binary details.
#[derive(Clone, PartialEq, prost::Message)]
struct RpcStatus {
    #[prost(int32, tag = "1")]
    code: i32,
    #[prost(string, tag = "2")]
    message: String,
    #[prost(message, repeated, tag = "3")]
    details: Vec<Any>,
}

/// `google.protobuf.Any`.
#[derive(Clone, PartialEq, prost::Message)]
struct Any {
    #[prost(string, tag = "1")]
    type_url: String,
    #[prost(bytes = "vec", tag = "2")]
    value: Vec<u8>,
}

/// An API error as a gRPC status (upstream `MapErrorToGRPCCode`), with the error object
/// in the details as upstream attaches it.
fn transport_error(error: ApiError) -> Status {
    use tonic::Code;
    let code = match error.code {
        102 | 104 => Code::NotFound,
        107 | 108 => Code::InvalidArgument,
        112 => Code::OutOfRange,
        113 => Code::AlreadyExists,
        _ => Code::Internal,
    };
    let details = RpcStatus {
        code: code as i32,
        message: error.message.to_owned(),
        details: vec![Any {
            type_url: "type.googleapis.com/centrifugal.centrifugo.api.Error".to_owned(),
            value: prost::Message::encode_to_vec(&pb::Error::from(error)),
        }],
    };
    let details = prost::Message::encode_to_vec(&details);
    Status::with_details(code, error.message, details.into())
}

/// The generator of the gRPC service; see the module documentation.
macro_rules! grpc_service {
    ($($name:ident: $variant:ident = $legacy:literal, $request:ty => $result:ty;)*) => {
        #[tonic::async_trait]
        impl CentrifugoApi for Service {
            $(async fn $name(
                &self,
                request: Request<$name::Request>,
            ) -> Result<Response<$name::Response>, Status> {
                let transport_errors = self.transport_errors(request.metadata());
                let request: $request = request.into_inner().into();
                let started = std::time::Instant::now();
                let outcome = executor::$name(&self.app, request).await;
                self.app.api_metrics.observe(
                    ApiProtocol::Grpc,
                    Method::$variant,
                    started,
                    outcome.as_ref().err(),
                );
                match outcome {
                    Err(error) if transport_errors => Err(transport_error(error)),
                    outcome => Ok(Response::new(answer(outcome))),
                }
            })*

            async fn batch(
                &self,
                request: Request<pb::BatchRequest>,
            ) -> Result<Response<pb::BatchResponse>, Status> {
                let request = request.into_inner();
                let batch = BatchRequest {
                    commands: request.commands.into_iter().map(|c| Some(command(c))).collect(),
                    parallel: request.parallel,
                };
                let result = executor::batch(&self.app, batch, ApiProtocol::Grpc).await;
                let replies = result.replies.into_iter().map(|r| reply(r.0)).collect();
                Ok(Response::new(pb::BatchResponse { replies }))
            }
        }

        /// A protobuf batch command as the HTTP API's batch command.
        fn command(c: pb::Command) -> Command {
            Command {
                $($name: c.$name.map(Into::into),)*
            }
        }

        /// One reply of a batch: the error, or the result in the method's field.
        fn reply(outcome: Result<Outcome, ApiError>) -> pb::Reply {
            match outcome {
                Err(error) => pb::Reply {
                    error: Some(error.into()),
                    ..Default::default()
                },
                $(Ok(Outcome::$variant(result)) => pb::Reply {
                    $name: Some(result.into()),
                    ..Default::default()
                },)*
            }
        }
    };
}

api_methods!(grpc_service);

/// Whether the metadata carries exactly `authorization: apikey <key>` (upstream compares
/// the whole value).
fn authorized(key: &str, metadata: &tonic::metadata::MetadataMap) -> bool {
    metadata
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|value| value.strip_prefix("apikey "))
        .is_some_and(|given| crate::api::secure_eq(key, given))
}

/// Serves the gRPC API on `listener` until `stop`, over TLS when `tls` is given.
pub(crate) async fn serve(
    app: App,
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    stop: CancellationToken,
) {
    let config = app.config().grpc_api.clone();
    let key = config.key.clone();
    let transport_errors = config.error_mode == "transport";
    let mut service = CentrifugoApiServer::new(Service {
        app,
        transport_errors,
    });
    if config.max_receive_message_size > 0 {
        service = service.max_decoding_message_size(config.max_receive_message_size as usize);
    }
    // Upstream checks the key only when one is configured.
    let check = move |request: Request<()>| {
        if key.is_empty() || authorized(&key, request.metadata()) {
            Ok(request)
        } else {
            Err(Status::unauthenticated("unauthenticated"))
        }
    };
    let service = tonic::service::interceptor::InterceptedService::new(service, check);
    let reflection = config.reflection.then(reflection).transpose();
    let (v1, v1alpha) = match reflection {
        Ok(services) => services.unzip(),
        Err(e) => {
            tracing::error!(error = %e, "gRPC API: the reflection service");
            (None, None)
        }
    };
    let router = tonic::transport::Server::builder()
        .add_service(service)
        .add_optional_service(v1)
        .add_optional_service(v1alpha);
    let served = match tls {
        None => {
            let incoming = tonic::transport::server::TcpIncoming::from(listener);
            router
                .serve_with_incoming_shutdown(incoming, stop.cancelled_owned())
                .await
        }
        Some(acceptor) => {
            let incoming = tls_incoming(listener, acceptor, stop.clone());
            router
                .serve_with_incoming_shutdown(incoming, stop.cancelled_owned())
                .await
        }
    };
    if let Err(e) = served {
        tracing::error!(error = %e, "gRPC API server failed");
    }
}

/// The descriptors of `proto/api.proto`, written by `cargo xtask codegen`.
const DESCRIPTORS: &[u8] = include_bytes!("generated/api.bin");

/// The reflection service in both versions clients ask for (as upstream registers it).
#[allow(clippy::type_complexity, reason = "the two generated server types")]
fn reflection() -> Result<
    (
        tonic_reflection::pb::v1::server_reflection_server::ServerReflectionServer<
            impl tonic_reflection::pb::v1::server_reflection_server::ServerReflection,
        >,
        tonic_reflection::pb::v1alpha::server_reflection_server::ServerReflectionServer<
            impl tonic_reflection::pb::v1alpha::server_reflection_server::ServerReflection,
        >,
    ),
    tonic_reflection::server::Error,
> {
    let builder = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(DESCRIPTORS)
    };
    Ok((builder().build_v1()?, builder().build_v1alpha()?))
}

/// The TLS connections of `listener`: each handshake runs in its own task, so a slow
/// client does not hold up the others.
pub(crate) fn tls_incoming(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    stop: CancellationToken,
) -> impl futures_util::Stream<Item = std::io::Result<TlsStream<TcpStream>>> {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<std::io::Result<TlsStream<TcpStream>>>(64);
    tokio::spawn(async move {
        loop {
            let accepted = tokio::select! {
                _ = stop.cancelled() => return,
                accepted = listener.accept() => accepted,
            };
            let stream = match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of file descriptors and similar: back off instead of spinning.
                    tracing::warn!(error = %e, "gRPC API: accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let (acceptor, tx) = (acceptor.clone(), tx.clone());
            tokio::spawn(async move {
                let handshake = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream));
                match handshake.await {
                    Ok(Ok(stream)) => {
                        let _ = tx.send(Ok(stream)).await;
                    }
                    Ok(Err(e)) => tracing::debug!(error = %e, "gRPC API: TLS handshake failed"),
                    Err(_) => tracing::debug!("gRPC API: TLS handshake timed out"),
                }
            });
        }
    });
    futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

#[cfg(test)]
mod tests {
    use tonic::metadata::MetadataMap;

    use super::*;

    #[test]
    fn api_key_from_the_authorization_metadata() {
        let with = |value: &'static str| {
            let mut m = MetadataMap::new();
            m.insert("authorization", value.parse().unwrap());
            m
        };
        assert!(authorized("k", &with("apikey k")));
        assert!(!authorized("k", &with("APIKEY k")));
        assert!(!authorized("k", &with("apikey  k")));
        assert!(!authorized("k", &with("apikey x")));
        assert!(!authorized("k", &with("bearer k")));
        assert!(!authorized("k", &with("apikey k more")));
        assert!(!authorized("k", &MetadataMap::new()));
    }
}
