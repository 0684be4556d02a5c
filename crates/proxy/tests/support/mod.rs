//! What the proxy tests run against: a backend answering proxy calls from one script over
//! HTTP (JSON), HTTPS or gRPC while recording what it was asked, and a node served over
//! WebSocket with a small client for it.

#![allow(
    dead_code,
    unreachable_pub,
    reason = "test support: each test binary uses a part, nothing is exported"
)]

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, State};
use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use gyre::{Node, WebSocketConfig, WebSocketHandler};
use gyre_proxy::{Proxy, ProxyConfig, ProxyHandlers};
use serde_json::Value;
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

/// `proto/proxy.proto` with the service's server side (`cargo xtask codegen`).
#[allow(missing_docs, unreachable_pub, clippy::all, reason = "generated code")]
pub mod pb {
    include!("centrifugal.centrifugo.proxy.rs");
}

/// How long any awaited event may take.
pub const WAIT: Duration = Duration::from_secs(5);

/// `bytes` fields as the JSON value they hold, as the HTTP flavour carries them.
pub mod raw_json {
    use bytes::Bytes;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};
    use serde_json::value::RawValue;

    pub fn serialize<S: Serializer>(bytes: &Bytes, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::Error;
        let text = std::str::from_utf8(bytes).map_err(S::Error::custom)?;
        let raw: &RawValue = serde_json::from_str(text).map_err(S::Error::custom)?;
        raw.serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Bytes, D::Error> {
        let raw = Box::<RawValue>::deserialize(d)?;
        if raw.get() == "null" {
            return Ok(Bytes::new());
        }
        Ok(Bytes::from(
            String::from(Box::<str>::from(raw)).into_bytes(),
        ))
    }
}

pub fn is_false(b: &bool) -> bool {
    !*b
}

pub fn is_zero<T: Default + PartialEq>(n: &T) -> bool {
    *n == T::default()
}

/// The two ways to reach a backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavour {
    Http,
    Grpc,
}

/// One call the backend received.
#[derive(Debug, Clone)]
pub struct Call {
    /// `connect`, `refresh`, `subscribe`, `publish`, `rpc` or `sub_refresh`.
    pub event: String,
    /// The request in the HTTP flavour's JSON (gRPC requests are converted).
    pub body: Value,
    /// HTTP headers, or gRPC metadata.
    pub headers: http::HeaderMap,
    /// How many calls of the same event came before this one.
    pub index: usize,
}

impl Call {
    /// A header or metadata value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// What the backend does with a call.
#[derive(Debug, Clone)]
pub struct Answer {
    body: Value,
    delay: Duration,
}

impl Answer {
    /// Answers with this response (the HTTP flavour's JSON).
    pub fn json(body: Value) -> Self {
        Answer {
            body,
            delay: Duration::ZERO,
        }
    }

    /// Waits this long before answering.
    pub fn after(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }
}

type Script = dyn Fn(&Call) -> Answer + Send + Sync;

struct Shared {
    script: Box<Script>,
    calls: tokio::sync::watch::Sender<Vec<Call>>,
}

impl Shared {
    async fn answer(&self, event: &str, body: Value, headers: http::HeaderMap) -> Value {
        let mut call = Call {
            event: event.to_owned(),
            body,
            headers,
            index: 0,
        };
        self.calls.send_modify(|calls| {
            call.index = calls.iter().filter(|c| c.event == event).count();
            calls.push(call.clone());
        });
        let answer = (self.script)(&call);
        tokio::time::sleep(answer.delay).await;
        answer.body
    }
}

/// A backend listening on 127.0.0.1.
pub struct Backend {
    flavour: Flavour,
    base: String,
    shared: Arc<Shared>,
    calls: tokio::sync::watch::Receiver<Vec<Call>>,
}

impl Backend {
    /// Starts a plaintext backend of this flavour.
    pub async fn start(
        flavour: Flavour,
        script: impl Fn(&Call) -> Answer + Send + Sync + 'static,
    ) -> Backend {
        Self::start_with(flavour, None, script).await
    }

    /// Starts a backend behind TLS with the test certificate for `localhost`.
    pub async fn start_tls(
        flavour: Flavour,
        script: impl Fn(&Call) -> Answer + Send + Sync + 'static,
    ) -> Backend {
        Self::start_with(flavour, Some(()), script).await
    }

    async fn start_with(
        flavour: Flavour,
        tls: Option<()>,
        script: impl Fn(&Call) -> Answer + Send + Sync + 'static,
    ) -> Backend {
        let (tx, rx) = tokio::sync::watch::channel(Vec::new());
        let shared = Arc::new(Shared {
            script: Box::new(script),
            calls: tx,
        });
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let host = if tls.is_some() {
            format!("localhost:{}", addr.port())
        } else {
            addr.to_string()
        };
        let base = match (flavour, tls.is_some()) {
            (Flavour::Http, false) => format!("http://{host}"),
            (Flavour::Http, true) => format!("https://{host}"),
            (Flavour::Grpc, _) => format!("grpc://{host}"),
        };
        match flavour {
            Flavour::Http => serve_http(listener, shared.clone(), tls.is_some()),
            Flavour::Grpc => serve_grpc(listener, shared.clone(), tls.is_some()),
        }
        Backend {
            flavour,
            base,
            shared,
            calls: rx,
        }
    }

    /// The endpoint for `event`: a path per event over HTTP, one address over gRPC.
    pub fn endpoint(&self, event: &str) -> String {
        match self.flavour {
            Flavour::Http => format!("{}/{event}", self.base),
            Flavour::Grpc => self.base.clone(),
        }
    }

    /// Default options for `event`'s endpoint.
    pub fn config(&self, event: &str) -> ProxyConfig {
        ProxyConfig::new(self.endpoint(event))
    }

    /// A proxy with default options for `event`.
    pub fn proxy(&self, event: &str) -> Proxy {
        Proxy::new(self.config(event)).unwrap()
    }

    /// The `index`-th call of `event` (from 0), once it has arrived.
    pub async fn call(&self, event: &str, index: usize) -> Call {
        let mut rx = self.calls.clone();
        let calls = tokio::time::timeout(
            WAIT,
            rx.wait_for(|calls| calls.iter().filter(|c| c.event == event).count() > index),
        )
        .await
        .unwrap_or_else(|_| panic!("no {event} call #{index} in time"))
        .unwrap();
        calls
            .iter()
            .filter(|c| c.event == event)
            .nth(index)
            .cloned()
            .unwrap()
    }

    /// How many calls of `event` arrived so far.
    pub fn count(&self, event: &str) -> usize {
        self.calls
            .borrow()
            .iter()
            .filter(|c| c.event == event)
            .count()
    }
}

/// A port nothing listens on.
pub async fn closed_port() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap()
}

const TLS_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/tls");

/// The CA that signed the test backend's certificate.
pub fn test_ca_pem() -> String {
    std::fs::read_to_string(format!("{TLS_DIR}/ca.pem")).unwrap()
}

fn tls_acceptor() -> tokio_rustls::TlsAcceptor {
    use tokio_rustls::rustls;
    use tokio_rustls::rustls::pki_types::pem::PemObject;
    use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};

    let certs = CertificateDer::pem_file_iter(format!("{TLS_DIR}/cert.pem"))
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_file(format!("{TLS_DIR}/key.pem")).unwrap();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
    tokio_rustls::TlsAcceptor::from(Arc::new(config))
}

fn serve_http(listener: TcpListener, shared: Arc<Shared>, tls: bool) {
    async fn handle(
        State(shared): State<Arc<Shared>>,
        Path(event): Path<String>,
        headers: http::HeaderMap,
        body: Bytes,
    ) -> axum::Json<Value> {
        let body = serde_json::from_slice(&body).unwrap_or(Value::Null);
        axum::Json(shared.answer(&event, body, headers).await)
    }
    let app = axum::Router::new()
        .route("/{event}", axum::routing::post(handle))
        .with_state(shared);
    if !tls {
        tokio::spawn(async move { axum::serve(listener, app).await });
        return;
    }
    let acceptor = tls_acceptor();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let (acceptor, app) = (acceptor.clone(), app.clone());
            tokio::spawn(async move {
                // A client that rejects the certificate ends the handshake.
                let Ok(stream) = acceptor.accept(stream).await else {
                    return;
                };
                let service = hyper_util::service::TowerToHyperService::new(app);
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
            });
        }
    });
}

struct GrpcBackend(Arc<Shared>);

macro_rules! grpc_methods {
    ($($method:ident: $request:ident => $response:ident, $event:literal;)*) => {
        #[tonic::async_trait]
        impl pb::centrifugo_proxy_server::CentrifugoProxy for GrpcBackend {$(
            async fn $method(
                &self,
                request: tonic::Request<pb::$request>,
            ) -> Result<tonic::Response<pb::$response>, tonic::Status> {
                let headers = request.metadata().clone().into_headers();
                let body = serde_json::to_value(request.get_ref()).unwrap();
                let answer = self.0.answer($event, body, headers).await;
                serde_json::from_value(answer)
                    .map(tonic::Response::new)
                    .map_err(|e| tonic::Status::internal(e.to_string()))
            }
        )*}
    };
}

grpc_methods! {
    connect: ConnectRequest => ConnectResponse, "connect";
    refresh: RefreshRequest => RefreshResponse, "refresh";
    subscribe: SubscribeRequest => SubscribeResponse, "subscribe";
    publish: PublishRequest => PublishResponse, "publish";
    rpc: RpcRequest => RpcResponse, "rpc";
    sub_refresh: SubRefreshRequest => SubRefreshResponse, "sub_refresh";
    map_publish: MapPublishRequest => MapPublishResponse, "map_publish";
    map_remove: MapRemoveRequest => MapRemoveResponse, "map_remove";
    shared_poll_refresh: SharedPollRefreshRequest => SharedPollRefreshResponse, "shared_poll_refresh";
}

fn serve_grpc(listener: TcpListener, shared: Arc<Shared>, tls: bool) {
    let service = pb::centrifugo_proxy_server::CentrifugoProxyServer::new(GrpcBackend(shared));
    let mut builder = tonic::transport::Server::builder();
    if tls {
        let identity = tonic::transport::Identity::from_pem(
            std::fs::read(format!("{TLS_DIR}/cert.pem")).unwrap(),
            std::fs::read(format!("{TLS_DIR}/key.pem")).unwrap(),
        );
        builder = builder
            .tls_config(tonic::transport::ServerTlsConfig::new().identity(identity))
            .unwrap();
    }
    let incoming = tonic::transport::server::TcpIncoming::from(listener);
    tokio::spawn(async move {
        builder
            .add_service(service)
            .serve_with_incoming(incoming)
            .await
    });
}

/// A node with `handlers` installed, served over WebSocket; the URL to connect to.
pub async fn serve(handlers: ProxyHandlers) -> (Node, String) {
    let node = Node::builder().build();
    handlers.install(&node);
    node.run().await.unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let ws = WebSocketHandler::new(node.clone(), WebSocketConfig::default());
    let app = axum::Router::new().route_service("/connection/websocket", ws);
    tokio::spawn(async move { axum::serve(listener, app).await });
    (node, format!("ws://{addr}/connection/websocket"))
}

/// A JSON-protocol WebSocket client.
pub struct Ws {
    stream: tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<TcpStream>>,
    /// Messages read but not yet taken.
    pending: VecDeque<Value>,
    /// Pushes read while waiting for a reply.
    pushes: VecDeque<Value>,
}

impl Ws {
    /// Opens a connection with these extra headers on the upgrade request.
    pub async fn open(url: &str, headers: &[(&str, &str)]) -> Ws {
        let mut request = url.into_client_request().unwrap();
        for (name, value) in headers {
            request.headers_mut().append(
                http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                value.parse().unwrap(),
            );
        }
        let (stream, _) = tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(request))
            .await
            .expect("WebSocket open in time")
            .unwrap();
        Ws {
            stream,
            pending: VecDeque::new(),
            pushes: VecDeque::new(),
        }
    }

    /// Sends one command.
    pub async fn send(&mut self, command: Value) {
        self.stream
            .send(Message::text(command.to_string()))
            .await
            .unwrap();
    }

    /// The next message (reply or push), pings left out; `None` once closed.
    async fn next(&mut self) -> Option<Value> {
        loop {
            if let Some(v) = self.pending.pop_front() {
                if v.as_object().is_some_and(|o| o.is_empty()) {
                    continue;
                }
                return Some(v);
            }
            let frame = tokio::time::timeout(WAIT, self.stream.next())
                .await
                .expect("a message in time");
            match frame {
                Some(Ok(Message::Text(text))) => {
                    for line in text.split('\n').filter(|l| !l.is_empty()) {
                        self.pending.push_back(serde_json::from_str(line).unwrap());
                    }
                }
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return None,
                Some(Ok(_)) => {}
            }
        }
    }

    /// Sends a command and returns its reply (pushes read meanwhile are kept).
    pub async fn command(&mut self, id: u64, command: Value) -> Value {
        let mut command = command;
        command["id"] = id.into();
        self.send(command).await;
        loop {
            let message = self.next().await.expect("a reply before close");
            if message["id"] == id {
                return message;
            }
            if let Some(push) = message.get("push") {
                self.pushes.push_back(push.clone());
            }
        }
    }

    /// Connects with this connect command body and returns the reply.
    pub async fn connect(&mut self, connect: Value) -> Value {
        self.command(1, serde_json::json!({ "connect": connect }))
            .await
    }

    /// The next push.
    pub async fn push(&mut self) -> Value {
        if let Some(push) = self.pushes.pop_front() {
            return push;
        }
        loop {
            let message = self.next().await.expect("a push before close");
            if message.get("push").is_some() {
                return message["push"].clone();
            }
        }
    }

    /// The close frame's code and reason, skipping other messages.
    pub async fn closed(&mut self) -> (u16, String) {
        loop {
            let frame = tokio::time::timeout(WAIT, self.stream.next())
                .await
                .expect("close in time");
            match frame {
                Some(Ok(Message::Close(Some(frame)))) => {
                    return (u16::from(frame.code), frame.reason.to_string());
                }
                Some(Ok(Message::Close(None))) | None => return (1005, String::new()),
                Some(Ok(_)) => {}
                Some(Err(e)) => panic!("error before close: {e}"),
            }
        }
    }
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}
