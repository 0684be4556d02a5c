//! [`WsHandler`]: the tower `Service` that answers upgrade requests and spawns one task per
//! accepted connection.

use std::convert::Infallible;
use std::future::{Ready, ready};
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use super::config::WsConfig;
use super::conn::{self, ConnParams};
use super::direct::SharedTcp;
use super::frame::{OP_BINARY, OP_TEXT};
use super::handshake::{self, HttpResponse};
use crate::transport::{Protocol, Session, SessionFactory, TransportInfo};

/// Serves the WebSocket endpoint (`/connection/websocket`) for any HTTP server that
/// supports hyper upgrades: axum (`Router::route_service`), hyper's `http1` connection
/// with `.with_upgrades()`, or `hyper_util`'s auto connection.
#[derive(Debug)]
pub(crate) struct WsHandler<F> {
    inner: Arc<Inner<F>>,
}

#[derive(Debug)]
struct Inner<F> {
    factory: Arc<F>,
    config: Arc<WsConfig>,
}

impl<F> Clone for WsHandler<F> {
    fn clone(&self) -> Self {
        WsHandler {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<F: SessionFactory> WsHandler<F> {
    pub(crate) fn new(factory: Arc<F>, config: WsConfig) -> Self {
        WsHandler {
            inner: Arc::new(Inner {
                factory,
                config: Arc::new(config),
            }),
        }
    }

    /// Answers one request; on success the connection task is spawned on the current
    /// tokio runtime and runs once hyper hands over the socket.
    pub(crate) fn handle<B>(&self, mut request: http::Request<B>) -> HttpResponse {
        let on_upgrade = request.extensions_mut().remove::<OnUpgrade>();
        let (parts, body) = request.into_parts();
        // Nothing of the body is needed, and it must not live as long as the connection.
        drop(body);
        let accepted = match handshake::accept(&parts, &self.inner.config) {
            Ok(a) => a,
            Err(response) => return *response,
        };
        let Some(on_upgrade) = on_upgrade else {
            // Served by a connection that cannot upgrade (HTTP/2, or hyper without
            // `with_upgrades`): say so instead of answering 101 and hanging.
            let mut r = HttpResponse::new(http_body_util::Full::new(Bytes::from_static(
                b"websocket: connection does not support upgrades",
            )));
            *r.status_mut() = http::StatusCode::INTERNAL_SERVER_ERROR;
            return r;
        };
        let params = ConnParams {
            protocol: accepted.protocol,
            native_ping_pong: accepted.native_ping_pong,
            deflate: accepted.deflate,
        };
        tokio::spawn(serve(
            on_upgrade,
            Box::new(parts),
            Arc::clone(&self.inner.factory),
            Arc::clone(&self.inner.config),
            params,
        ));
        accepted.response
    }
}

/// The upgrade task: waits for hyper to hand over the socket, makes the session, and
/// spawns the connection task.
///
/// `parts` is boxed because arguments stay in an `async fn`'s future for its whole life:
/// boxed, the headers cost 8 bytes there once freed, instead of ~200.
pub(crate) async fn serve<F: SessionFactory>(
    on_upgrade: OnUpgrade,
    parts: Box<http::request::Parts>,
    factory: Arc<F>,
    config: Arc<WsConfig>,
    params: ConnParams,
) {
    let upgraded = match on_upgrade.await {
        Ok(u) => u,
        Err(e) => {
            tracing::debug!(error = %e, "websocket upgrade failed");
            return;
        }
    };
    let info = TransportInfo {
        name: "websocket",
        protocol: params.protocol,
        emulation: false,
        unidirectional: false,
        native_ping_pong: params.native_ping_pong,
        // WebSocket carries the disconnect in its close frame.
    };
    let session = factory.new_session(info, &parts);
    // Headers and URI are not needed any more: free them before the long-lived part.
    drop(parts);
    drop(factory);
    // With hyper's plain http1 server the upgraded IO is our own `TcpStream`: take it back
    // to drop hyper's boxed wrapper. Any other IO (TLS, hyper_util's auto server, which
    // wraps the stream) keeps the `Upgraded` object; both paths read the same way.
    //
    // The connection runs in a task of its own so that its future is exactly the
    // connection state machine: this task (and everything it held) is freed right away.
    match upgraded.downcast::<TokioIo<TcpStream>>() {
        Ok(parts) => {
            let opcode = match params.protocol {
                Protocol::Json => OP_TEXT,
                Protocol::Protobuf => OP_BINARY,
            };
            let io = SharedTcp::new(parts.io.into_inner(), opcode);
            // Producers write single frames: not with compression (the deflate context
            // belongs to the task) nor with a write delay (which asks for batching).
            if config.direct_writes
                && !params.deflate
                && config.write_delay.is_zero()
                && let Ok(session) = &session
            {
                session.outbound().attach_direct(io.frames());
            }
            tokio::spawn(conn::run(io, parts.read_buf, session, params, config));
        }
        Err(upgraded) => {
            let io = TokioIo::new(upgraded);
            tokio::spawn(conn::run(io, Bytes::new(), session, params, config));
        }
    }
}

impl<F: SessionFactory, B> tower_service::Service<http::Request<B>> for WsHandler<F> {
    type Response = HttpResponse;
    type Error = Infallible;
    type Future = Ready<Result<HttpResponse, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        ready(Ok(self.handle(request)))
    }
}
