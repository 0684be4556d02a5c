//! `uni_websocket`: a WebSocket whose client sends one connect request and then only
//! listens (and answers pings).
//!
//! Unlike the bidirectional connection (`ws/conn.rs`, a hand-written state machine
//! tuned for memory), this is a plain `select!` loop over the same frame codec: a
//! unidirectional client reads much and writes nothing, and clarity wins here.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::future::{Ready, ready};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use gyre_protocol::Disconnect;
use http_body_util::Full;
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::Instant;

use super::config::UniWebSocketConfig;
use super::{bare_push, connect, disconnect_push, transport_info};
use crate::Node;
use crate::queue::Drained;
use crate::session::ConnectRefused;
use crate::transport::ws::deflate::{self, DeflateConfig};
use crate::transport::ws::frame::{self, Message, OP_PING, OP_PONG, OP_TEXT, Parser};
use crate::transport::ws::{WsConfig, handshake};
use crate::transport::{Session, SessionFactory};

type HttpResponse = http::Response<Full<Bytes>>;

/// How long to wait for the client's close frame after ours.
const CLOSE_WAIT: Duration = Duration::from_secs(5);

#[derive(Debug)]
struct Inner<F> {
    factory: Arc<F>,
    config: UniWebSocketConfig,
    /// The handshake's view of the settings (origin check).
    handshake: WsConfig,
}

/// The `uni_websocket` endpoint (`/connection/uni_websocket`) as a tower `Service`.
///
/// The connect request is the JSON of `?cf_connect=` or else the client's first
/// message; what follows is one push per text frame (or newline-joined with
/// [`UniWebSocketConfig::join_push_messages`]). The server sends WebSocket pings besides
/// the protocol's `{}` pings; a close frame carries the disconnect.
///
/// ```no_run
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// use gyre::{Node, UniWebSocketConfig, UniWebSocketHandler};
/// let node = Node::builder().build();
/// node.run().await?;
/// let ws = UniWebSocketHandler::new(node.clone(), UniWebSocketConfig::default());
/// // axum::Router::new().route_service("/connection/uni_websocket", ws)
/// # let _ = ws; Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct UniWebSocketHandler {
    inner: Arc<Inner<Node>>,
}

impl UniWebSocketHandler {
    /// A handler feeding connections to `node`.
    pub fn new(node: Node, config: UniWebSocketConfig) -> Self {
        let handshake = WsConfig {
            check_origin: config.check_origin.clone(),
            compression: config.compression.then(|| {
                DeflateConfig::new(
                    config.compression_level,
                    config.compression_min_size,
                    config.decompressed_message_size_limit,
                    config.message_size_limit,
                )
            }),
            ..WsConfig::default()
        };
        UniWebSocketHandler {
            inner: Arc::new(Inner {
                factory: Arc::new(node),
                config,
                handshake,
            }),
        }
    }
}

fn plain(status: http::StatusCode, body: &'static str) -> HttpResponse {
    let mut r = HttpResponse::new(Full::new(Bytes::from_static(body.as_bytes())));
    *r.status_mut() = status;
    r
}

impl<F: SessionFactory> Inner<F> {
    fn handle<B>(self: &Arc<Self>, mut request: http::Request<B>) -> HttpResponse {
        let on_upgrade = request.extensions_mut().remove::<OnUpgrade>();
        let (parts, body) = request.into_parts();
        drop(body);
        let connect = match connect::from_query(parts.uri.query()) {
            Ok(c) => c,
            Err(e) => {
                tracing::debug!(transport = "uni_websocket", error = %e, "malformed connect request");
                return plain(http::StatusCode::BAD_REQUEST, "invalid connect request");
            }
        };
        let mut accepted = match handshake::accept(&parts, &self.handshake) {
            Ok(a) => a,
            Err(response) => return *response,
        };
        // JSON only, whatever subprotocol the client offered.
        accepted
            .response
            .headers_mut()
            .remove(http::header::SEC_WEBSOCKET_PROTOCOL);
        let Some(on_upgrade) = on_upgrade else {
            return plain(
                http::StatusCode::INTERNAL_SERVER_ERROR,
                "websocket: connection does not support upgrades",
            );
        };
        let me = Arc::clone(self);
        let accepted_deflate = accepted.deflate;
        tokio::spawn(async move {
            let upgraded = match on_upgrade.await {
                Ok(u) => u,
                Err(e) => {
                    tracing::debug!(error = %e, "uni_websocket upgrade failed");
                    return;
                }
            };
            let session = me
                .factory
                .new_session(transport_info("uni_websocket"), &parts);
            drop(parts);
            let deflate = me.handshake.compression.filter(|_| accepted_deflate);
            run(
                TokioIo::new(upgraded),
                session,
                connect,
                me.config.clone(),
                deflate,
            )
            .await;
        });
        accepted.response
    }
}

impl<B> tower_service::Service<http::Request<B>> for UniWebSocketHandler {
    type Response = HttpResponse;
    type Error = Infallible;
    type Future = Ready<Result<HttpResponse, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        ready(Ok(self.inner.handle(request)))
    }
}

/// One connection.
struct Conn<IO> {
    io: IO,
    config: UniWebSocketConfig,
    /// Compression settings when permessage-deflate was negotiated.
    deflate: Option<DeflateConfig>,
    parser: Parser,
    inbound: VecDeque<Message>,
    read_buf: Box<[u8]>,
    /// No pong (or any frame) by then: the client is gone.
    read_deadline: Instant,
    next_ping: Instant,
}

/// How the connection loop ended.
enum End {
    /// Close with this disconnect (push, close frame, linger), as configured.
    Close(Disconnect),
    /// The peer closed or vanished, or a write failed: nothing more to send.
    Gone(Disconnect),
    /// Answer the peer's protocol violation with this close frame.
    Frame(Bytes),
}

impl<IO: AsyncRead + AsyncWrite + Unpin> Conn<IO> {
    async fn write_frame(&mut self, frame: &[u8]) -> Result<(), Disconnect> {
        match tokio::time::timeout(self.config.write_timeout, self.io.write_all(frame)).await {
            Ok(Ok(())) => Ok(()),
            _ => Err(Disconnect::WRITE_ERROR),
        }
    }

    /// One text frame with `pushes` joined by `\n`, compressed when negotiated and the
    /// payload is long enough.
    async fn write_text(&mut self, pushes: &[Bytes]) -> Result<(), Disconnect> {
        let len = pushes.iter().map(Bytes::len).sum::<usize>() + pushes.len().saturating_sub(1);
        let (header, segments, joined) = match self.deflate.filter(|d| d.wants(len)) {
            Some(d) => {
                let segments = deflate::compress_batch(&d, pushes, true);
                let len = segments.iter().map(Bytes::len).sum();
                (
                    frame::FrameHeader::compressed(OP_TEXT, len),
                    segments,
                    false,
                )
            }
            None => (frame::FrameHeader::new(OP_TEXT, len), pushes.to_vec(), true),
        };
        let mut out = BytesMut::with_capacity(header.as_bytes().len() + len);
        out.put_slice(header.as_bytes());
        for (i, s) in segments.iter().enumerate() {
            if joined && i > 0 {
                out.put_u8(b'\n');
            }
            out.put_slice(s);
        }
        self.write_frame(&out).await
    }

    /// Writes what the session queued; `Err` ends the connection.
    async fn write_batch(&mut self, batch: &mut Vec<Bytes>) -> Result<(), End> {
        let pushes: Vec<Bytes> = batch.drain(..).map(bare_push).collect();
        if self.config.join_push_messages {
            self.write_text(&pushes).await.map_err(End::Gone)
        } else {
            for push in pushes {
                self.write_text(std::slice::from_ref(&push))
                    .await
                    .map_err(End::Gone)?;
            }
            Ok(())
        }
    }

    fn alive(&mut self) {
        self.read_deadline = Instant::now() + self.config.ping_interval + self.config.pong_timeout;
    }

    /// Reads once; returns the messages now complete, or how the connection ends.
    async fn read(&mut self) -> Result<(), End> {
        let n = match self.io.read(&mut self.read_buf).await {
            Ok(0) | Err(_) => return Err(End::Gone(Disconnect::CONNECTION_CLOSED)),
            Ok(n) => n,
        };
        self.alive();
        self.parser
            .feed(&self.read_buf[..n], &mut self.inbound)
            .map_err(|e| End::Frame(frame::close_frame(e.close_code(), e.close_reason())))
    }

    /// Sends the disconnect push and the close frame, and waits for the peer's close.
    async fn close(&mut self, d: &Disconnect) {
        if d.code == Disconnect::CONNECTION_CLOSED.code {
            return;
        }
        if !self.config.disable_disconnect_push {
            let push = disconnect_push(d);
            if self.write_text(std::slice::from_ref(&push)).await.is_err() {
                return;
            }
        }
        if self.config.disable_closing_handshake {
            return;
        }
        let code = u16::try_from(d.code).unwrap_or(1011);
        if self
            .write_frame(&frame::close_frame(code, &d.reason))
            .await
            .is_err()
        {
            return;
        }
        let linger = async {
            loop {
                if self.read().await.is_err() {
                    return;
                }
                if self
                    .inbound
                    .drain(..)
                    .any(|m| matches!(m, Message::Close { .. }))
                {
                    return;
                }
            }
        };
        let _ = tokio::time::timeout(CLOSE_WAIT, linger).await;
    }
}

async fn run<IO, S>(
    io: IO,
    session: Result<S, Disconnect>,
    mut connect: Option<gyre_protocol::proto::ConnectRequest>,
    config: UniWebSocketConfig,
    deflate: Option<DeflateConfig>,
) where
    IO: AsyncRead + AsyncWrite + Unpin,
    S: Session,
{
    let now = Instant::now();
    let mut parser = Parser::new(config.message_size_limit);
    if let Some(d) = deflate {
        parser = parser.with_deflate(d.decompressed_limit);
    }
    let mut conn = Conn {
        io,
        deflate,
        parser,
        inbound: VecDeque::new(),
        read_buf: vec![0; 4096].into_boxed_slice(),
        read_deadline: now + config.ping_interval + config.pong_timeout,
        next_ping: now + config.ping_interval,
        config,
    };
    let session = match session {
        Ok(s) => s,
        Err(d) => {
            // Refused before it began (the node is shutting down): a close frame only.
            let code = u16::try_from(d.code).unwrap_or(1011);
            let _ = conn.write_frame(&frame::close_frame(code, &d.reason)).await;
            let _ = conn.io.shutdown().await;
            return;
        }
    };
    let outbound = Arc::clone(session.outbound());
    let mut connected = false;
    let mut batch = Vec::new();
    let end = 'conn: loop {
        if !connected && let Some(request) = connect.take() {
            if let Err(ConnectRefused { disconnect, .. }) =
                session.connect_unidirectional(request).await
            {
                break 'conn End::Close(disconnect);
            }
            connected = true;
        }
        while let Some(message) = conn.inbound.pop_front() {
            match message {
                Message::Text(data) | Message::Binary(data) => {
                    if connected || connect.is_some() {
                        // A unidirectional client has nothing more to say: ignored.
                        continue;
                    }
                    match connect::from_body(&data) {
                        Ok(request) => {
                            connect = Some(request);
                            continue 'conn;
                        }
                        Err(e) => {
                            tracing::debug!(transport = "uni_websocket", error = %e, "malformed connect request");
                            let d = Disconnect::BAD_REQUEST;
                            let code = u16::try_from(d.code).unwrap_or(1011);
                            break 'conn End::Frame(frame::close_frame(code, &d.reason));
                        }
                    }
                }
                Message::Ping(payload) => {
                    let pong = frame::control_frame(OP_PONG, &payload);
                    if let Err(d) = conn.write_frame(&pong).await {
                        break 'conn End::Gone(d);
                    }
                }
                Message::Pong => {}
                Message::Close { .. } => {
                    break 'conn End::Frame(frame::empty_close_frame());
                }
            }
        }
        match outbound.drain(0, &mut batch) {
            Drained::Messages => {
                if let Err(end) = conn.write_batch(&mut batch).await {
                    break end;
                }
                continue;
            }
            Drained::Close(d) => break End::Close(d),
            Drained::Empty => {}
        }
        let session_deadline = session.next_deadline();
        let wake = [
            Some(conn.read_deadline),
            Some(conn.next_ping),
            session_deadline,
        ]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or(conn.read_deadline);
        tokio::select! {
            () = outbound.wait() => {}
            read = conn.read() => {
                if let Err(end) = read {
                    break end;
                }
            }
            () = tokio::time::sleep_until(wake) => {
                let now = Instant::now();
                if now >= conn.read_deadline {
                    break End::Gone(Disconnect::CONNECTION_CLOSED);
                }
                if now >= conn.next_ping {
                    conn.next_ping = now + conn.config.ping_interval;
                    conn.read_deadline = conn.read_deadline.min(now + conn.config.pong_timeout);
                    if let Err(d) = conn.write_frame(&frame::control_frame(OP_PING, &[])).await {
                        break End::Gone(d);
                    }
                }
                if session_deadline.is_some_and(|d| d <= now)
                    && let Err(d) = session.on_timer().await
                {
                    outbound.close(d);
                }
            }
        }
    };
    let disconnect = match end {
        End::Close(d) => {
            conn.close(&d).await;
            d
        }
        End::Gone(d) => d,
        End::Frame(frame) => {
            let _ = conn.write_frame(&frame).await;
            Disconnect::CONNECTION_CLOSED
        }
    };
    let _ = tokio::time::timeout(conn.config.write_timeout, conn.io.shutdown()).await;
    drop(conn);
    session.finish(disconnect).await;
}
