//! End-to-end tests: a real hyper server serving `WsHandler`, tokio-tungstenite (or raw
//! TCP, for what a conforming client cannot send) as the client.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use gyre_protocol::Disconnect;
use hyper_util::rt::TokioIo;
use parking_lot::Mutex;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::{Instant, timeout};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{self, Message as WsMessage};
use tokio_tungstenite::{WebSocketStream, client_async};

use super::config::WsConfig;
use super::conn::{self, ConnParams};
use super::frame::tests::client_frame;
use super::handler::WsHandler;
use crate::metrics::FrameType;
use crate::queue::Outbound;
use crate::transport::{Protocol, Session, SessionFactory, TransportInfo};

// ---- a fake node ------------------------------------------------------------------------

#[derive(Debug, Clone, Default)]
struct Behaviour {
    /// Messages queued before the connection task first writes.
    prequeue: Vec<&'static str>,
    /// `handle_message` returns this error for the message `"boom"` (after queueing `"last"`).
    boom: Option<Disconnect>,
    /// The session's timer fires after this long and closes with the disconnect.
    timer: Option<(Duration, Disconnect)>,
    /// Each inbound message is echoed this many times.
    echo_times: usize,
    /// `new_session` refuses the connection.
    refuse: Option<Disconnect>,
}

#[derive(Debug)]
struct SessionInner {
    outbound: Arc<Outbound>,
    behaviour: Behaviour,
    info: TransportInfo,
    deadline: Mutex<Option<Instant>>,
    finished: AtomicUsize,
    finished_with: Mutex<Option<Disconnect>>,
}

#[derive(Debug, Clone)]
struct TestSession(Arc<SessionInner>);

impl Session for TestSession {
    fn outbound(&self) -> &Arc<Outbound> {
        &self.0.outbound
    }

    fn connect_unidirectional(
        &self,
        _request: gyre_protocol::proto::ConnectRequest,
    ) -> impl Future<Output = Result<(), crate::session::ConnectRefused>> + Send + 'static {
        std::future::ready(Ok(()))
    }

    fn handle_message(
        &self,
        data: Bytes,
    ) -> impl Future<Output = Result<(), Disconnect>> + Send + 'static {
        let this = self.clone();
        async move {
            // Yield once so the transport really has to keep this future in flight.
            tokio::task::yield_now().await;
            if &data[..] == b"boom"
                && let Some(d) = this.0.behaviour.boom.clone()
            {
                this.0
                    .outbound
                    .push(Bytes::from_static(b"last"), FrameType::Unknown);
                return Err(d);
            }
            for _ in 0..this.0.behaviour.echo_times.max(1) {
                this.0.outbound.push(data.clone(), FrameType::Unknown);
            }
            Ok(())
        }
    }

    fn next_deadline(&self) -> Option<Instant> {
        *self.0.deadline.lock()
    }

    fn on_timer(&self) -> impl Future<Output = Result<(), Disconnect>> + Send + 'static {
        let this = self.clone();
        async move {
            *this.0.deadline.lock() = None;
            match this.0.behaviour.timer.clone() {
                Some((_, d)) => Err(d),
                None => Ok(()),
            }
        }
    }

    async fn finish(self, disconnect: Disconnect) {
        {
            self.0.finished.fetch_add(1, Ordering::SeqCst);
            *self.0.finished_with.lock() = Some(disconnect);
        }
    }
}

#[derive(Debug, Default)]
struct TestFactory {
    behaviour: Behaviour,
    queue_max: usize,
    sessions: Mutex<Vec<TestSession>>,
}

impl SessionFactory for TestFactory {
    type Session = TestSession;

    fn new_session(
        &self,
        info: TransportInfo,
        _request: &http::request::Parts,
    ) -> Result<TestSession, Disconnect> {
        if let Some(d) = self.behaviour.refuse.clone() {
            return Err(d);
        }
        let outbound = Arc::new(Outbound::new(self.queue_max));
        for m in &self.behaviour.prequeue {
            outbound.push(Bytes::from_static(m.as_bytes()), FrameType::Unknown);
        }
        let deadline = self
            .behaviour
            .timer
            .as_ref()
            .map(|(after, _)| Instant::now() + *after);
        let session = TestSession(Arc::new(SessionInner {
            outbound,
            behaviour: self.behaviour.clone(),
            info,
            deadline: Mutex::new(deadline),
            finished: AtomicUsize::new(0),
            finished_with: Mutex::new(None),
        }));
        self.sessions.lock().push(session.clone());
        Ok(session)
    }
}

impl TestFactory {
    fn with(behaviour: Behaviour) -> Arc<Self> {
        Arc::new(TestFactory {
            behaviour,
            queue_max: 1 << 20,
            sessions: Mutex::default(),
        })
    }

    fn session(&self, i: usize) -> TestSession {
        self.sessions.lock()[i].clone()
    }

    /// Waits until session `i` was finished, then checks it was finished exactly once.
    async fn finished(&self, i: usize) -> Disconnect {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let session = self.sessions.lock().get(i).cloned();
            if let Some(s) = session
                && s.0.finished.load(Ordering::SeqCst) > 0
            {
                {
                    // Give a second call a chance to show up.
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    assert_eq!(
                        s.0.finished.load(Ordering::SeqCst),
                        1,
                        "finish called twice"
                    );
                    return s.0.finished_with.lock().clone().expect("recorded");
                }
            }
            assert!(Instant::now() < deadline, "session {i} never finished");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

// ---- server and clients -----------------------------------------------------------------

/// A stream type the handler cannot downcast to `TcpStream`: exercises the generic path.
/// It also takes at most `WRAPPED_WRITE_MAX` bytes per write, so that every frame is
/// written in pieces and resumed from the middle.
#[derive(Debug)]
struct Wrapped(TcpStream);

const WRAPPED_WRITE_MAX: usize = 13;

impl AsyncRead for Wrapped {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for Wrapped {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        let n = buf.len().min(WRAPPED_WRITE_MAX);
        std::pin::Pin::new(&mut self.0).poll_write(cx, &buf[..n])
    }
    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.0).poll_flush(cx)
    }
    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

async fn serve_with(factory: Arc<TestFactory>, config: WsConfig, wrap: bool) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let handler = WsHandler::new(factory, config);
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let handler = handler.clone();
            let service = hyper::service::service_fn(move |req| {
                let mut handler = handler.clone();
                async move { tower_service::Service::call(&mut handler, req).await }
            });
            tokio::spawn(async move {
                let builder = hyper::server::conn::http1::Builder::new();
                let _ = if wrap {
                    builder
                        .serve_connection(TokioIo::new(Wrapped(stream)), service)
                        .with_upgrades()
                        .await
                } else {
                    builder
                        .serve_connection(TokioIo::new(stream), service)
                        .with_upgrades()
                        .await
                };
            });
        }
    });
    addr.to_string()
}

async fn serve(factory: Arc<TestFactory>) -> String {
    serve_with(factory, WsConfig::default(), false).await
}

type Client = WebSocketStream<TcpStream>;

async fn connect(addr: &str, path: &str, headers: &[(&str, &str)]) -> tungstenite::Result<Client> {
    let mut request = format!("ws://{addr}{path}").into_client_request()?;
    for (k, v) in headers {
        request.headers_mut().insert(
            http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
            http::HeaderValue::from_str(v).unwrap(),
        );
    }
    let stream = TcpStream::connect(addr).await.unwrap();
    let (ws, _) = client_async(request, stream).await?;
    Ok(ws)
}

async fn next(ws: &mut Client) -> WsMessage {
    timeout(Duration::from_secs(10), ws.next())
        .await
        .expect("no message in time")
        .expect("stream ended")
        .expect("read error")
}

/// Reads up to the server's close frame, then keeps reading so that tungstenite sends its
/// close reply, until the server ends the connection.
async fn expect_close(ws: &mut Client) -> (u16, String) {
    loop {
        match next(ws).await {
            WsMessage::Close(Some(f)) => {
                let started = Instant::now();
                while let Some(Ok(_)) = timeout(Duration::from_secs(10), ws.next()).await.unwrap() {
                }
                // The server ended on our close reply, not on its 5 s close wait.
                assert!(
                    started.elapsed() < Duration::from_secs(2),
                    "server lingered"
                );
                return (f.code.into(), f.reason.to_string());
            }
            WsMessage::Close(None) => panic!("close without code"),
            WsMessage::Ping(_) | WsMessage::Pong(_) => continue,
            other => panic!("expected close, got {other:?}"),
        }
    }
}

/// Raw client: performs the handshake by hand so the test can then send frames a
/// conforming client never would.
async fn raw_connect(addr: &str, path: &str) -> TcpStream {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let req = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut b = [0u8; 1];
        s.read_exact(&mut b).await.unwrap();
        head.push(b[0]);
    }
    let head = String::from_utf8(head).unwrap();
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    assert!(head.contains("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="), "{head}");
    s
}

/// Reads one unmasked server frame: (opcode, payload).
async fn raw_frame(s: &mut TcpStream) -> (u8, Vec<u8>) {
    let mut h = [0u8; 2];
    timeout(Duration::from_secs(10), s.read_exact(&mut h))
        .await
        .expect("no frame in time")
        .unwrap();
    assert_eq!(h[1] & 0x80, 0, "server frames are never masked");
    let len = match h[1] & 0x7F {
        126 => usize::from(s.read_u16().await.unwrap()),
        127 => s.read_u64().await.unwrap() as usize,
        n => usize::from(n),
    };
    let mut payload = vec![0u8; len];
    s.read_exact(&mut payload).await.unwrap();
    (h[0] & 0x0F, payload)
}

fn close_code_of(payload: &[u8]) -> u16 {
    u16::from_be_bytes([payload[0], payload[1]])
}

const MASK: [u8; 4] = [1, 2, 3, 4];

// ---- tests ------------------------------------------------------------------------------

#[tokio::test]
async fn json_echo_and_client_close() {
    let factory = TestFactory::with(Behaviour::default());
    let addr = serve(Arc::clone(&factory)).await;
    let mut ws = connect(&addr, "/connection/websocket", &[]).await.unwrap();
    ws.send(WsMessage::text(r#"{"id":1}"#)).await.unwrap();
    assert_eq!(next(&mut ws).await, WsMessage::text(r#"{"id":1}"#));
    let info = factory.session(0).0.info.clone();
    assert_eq!(info.name, "websocket");
    assert_eq!(info.protocol, Protocol::Json);
    assert!(!info.native_ping_pong && !info.emulation);

    ws.close(Some(CloseFrame {
        code: CloseCode::Normal,
        reason: "bye".into(),
    }))
    .await
    .unwrap();
    // The server echoes the close; the client then sees the end of the stream.
    let echoed = timeout(Duration::from_secs(10), ws.next()).await.unwrap();
    match echoed {
        Some(Ok(WsMessage::Close(Some(f)))) => assert_eq!(f.code, CloseCode::Normal),
        other => panic!("expected echoed close, got {other:?}"),
    }
    assert_eq!(factory.finished(0).await, Disconnect::CONNECTION_CLOSED);
}

#[tokio::test]
async fn protobuf_by_query_and_by_subprotocol() {
    for wrap in [false, true] {
        let factory = TestFactory::with(Behaviour::default());
        let addr = serve_with(Arc::clone(&factory), WsConfig::default(), wrap).await;

        let mut ws = connect(&addr, "/connection/websocket?format=protobuf", &[])
            .await
            .unwrap();
        ws.send(WsMessage::binary(vec![7, 8, 1])).await.unwrap();
        assert_eq!(next(&mut ws).await, WsMessage::binary(vec![7, 8, 1]));
        assert_eq!(factory.session(0).0.info.protocol, Protocol::Protobuf);

        // tungstenite fails the handshake unless the subprotocol is echoed.
        let mut ws = connect(
            &addr,
            "/connection/websocket",
            &[("Sec-WebSocket-Protocol", "centrifuge-protobuf")],
        )
        .await
        .unwrap();
        ws.send(WsMessage::binary(vec![0])).await.unwrap();
        assert_eq!(next(&mut ws).await, WsMessage::binary(vec![0]));
        assert_eq!(factory.session(1).0.info.protocol, Protocol::Protobuf);
    }
}

#[tokio::test]
async fn queued_messages_go_out_as_one_frame() {
    let lines = vec![
        "{\"a\":1}",
        "{\"b\":2}",
        "{\"c\":3}",
        "{\"d\":4}",
        "{\"e\":5}",
    ];
    let factory = TestFactory::with(Behaviour {
        prequeue: lines.clone(),
        ..Behaviour::default()
    });
    let addr = serve(Arc::clone(&factory)).await;
    let mut ws = connect(&addr, "/connection/websocket", &[]).await.unwrap();
    assert_eq!(next(&mut ws).await, WsMessage::text(lines.join("\n")));

    // Protobuf: concatenated, binary frame; with a per-frame cap, split accordingly.
    let factory = TestFactory::with(Behaviour {
        prequeue: vec!["ab", "cd", "ef"],
        ..Behaviour::default()
    });
    let config = WsConfig {
        max_messages_in_frame: 2,
        ..WsConfig::default()
    };
    let addr = serve_with(Arc::clone(&factory), config, false).await;
    let mut ws = connect(&addr, "/connection/websocket?cf_protocol=protobuf", &[])
        .await
        .unwrap();
    assert_eq!(next(&mut ws).await, WsMessage::binary(b"abcd".to_vec()));
    assert_eq!(next(&mut ws).await, WsMessage::binary(b"ef".to_vec()));
}

#[tokio::test]
async fn batched_frames_survive_short_writes() {
    // A small batch is copied into one buffer for a single write; when the socket takes
    // only part of it, the rest must follow from the right byte, in both encodings.
    let lines = vec!["{\"a\":1}", "{\"bb\":22}", "{\"ccc\":333}"];
    let factory = TestFactory::with(Behaviour {
        prequeue: lines.clone(),
        ..Behaviour::default()
    });
    let addr = serve_with(Arc::clone(&factory), WsConfig::default(), true).await;
    let mut ws = connect(&addr, "/connection/websocket", &[]).await.unwrap();
    assert_eq!(next(&mut ws).await, WsMessage::text(lines.join("\n")));

    let factory = TestFactory::with(Behaviour {
        prequeue: vec!["ab", "cde", "f"],
        ..Behaviour::default()
    });
    let addr = serve_with(Arc::clone(&factory), WsConfig::default(), true).await;
    let mut ws = connect(&addr, "/connection/websocket?cf_protocol=protobuf", &[])
        .await
        .unwrap();
    assert_eq!(next(&mut ws).await, WsMessage::binary(b"abcdef".to_vec()));
}

#[tokio::test]
async fn large_batches_survive_partial_writes() {
    // Many messages, several MiB in total: the socket takes them in pieces, which walks
    // the (segment, offset) bookkeeping of vectored writes through every boundary.
    let factory = Arc::new(TestFactory {
        behaviour: Behaviour {
            echo_times: 200,
            ..Behaviour::default()
        },
        queue_max: 64 << 20,
        sessions: Mutex::default(),
    });
    let addr = serve(Arc::clone(&factory)).await;
    let mut ws = connect(&addr, "/connection/websocket", &[]).await.unwrap();
    let payload = "x".repeat(30_000);
    ws.send(WsMessage::text(payload.clone())).await.unwrap();
    let mut got = 0;
    while got < 200 {
        match next(&mut ws).await {
            WsMessage::Text(t) => {
                for line in t.as_str().split('\n') {
                    assert_eq!(line, payload);
                    got += 1;
                }
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(got, 200);
}

#[tokio::test]
async fn queue_overflow_closes_with_slow() {
    let factory = Arc::new(TestFactory {
        behaviour: Behaviour {
            echo_times: 3,
            ..Behaviour::default()
        },
        queue_max: 10,
        sessions: Mutex::default(),
    });
    let addr = serve(Arc::clone(&factory)).await;
    let mut ws = connect(&addr, "/connection/websocket", &[]).await.unwrap();
    ws.send(WsMessage::text("12345")).await.unwrap();
    assert_eq!(expect_close(&mut ws).await, (3008, "slow".to_string()));
    // The client (tungstenite) answers the close; the server finishes with the cause.
    assert_eq!(factory.finished(0).await, Disconnect::SLOW);
}

#[tokio::test]
async fn handle_message_error_flushes_then_closes() {
    let d = Disconnect::new(4501, "boom");
    let factory = TestFactory::with(Behaviour {
        boom: Some(d.clone()),
        ..Behaviour::default()
    });
    let addr = serve(Arc::clone(&factory)).await;
    let mut ws = connect(&addr, "/connection/websocket", &[]).await.unwrap();
    ws.send(WsMessage::text("one")).await.unwrap();
    ws.send(WsMessage::text("boom")).await.unwrap();
    ws.send(WsMessage::text("never handled")).await.unwrap();
    assert_eq!(next(&mut ws).await, WsMessage::text("one"));
    assert_eq!(next(&mut ws).await, WsMessage::text("last"));
    assert_eq!(expect_close(&mut ws).await, (4501, "boom".to_string()));
    assert_eq!(factory.finished(0).await, d);
}

#[tokio::test]
async fn session_timer_closes_with_its_disconnect() {
    let d = Disconnect::new(3012, "no pong");
    let factory = TestFactory::with(Behaviour {
        timer: Some((Duration::from_millis(50), d.clone())),
        ..Behaviour::default()
    });
    let addr = serve(Arc::clone(&factory)).await;
    let mut ws = connect(&addr, "/connection/websocket", &[]).await.unwrap();
    let started = Instant::now();
    assert_eq!(expect_close(&mut ws).await, (3012, "no pong".to_string()));
    assert!(started.elapsed() >= Duration::from_millis(30));
    assert_eq!(factory.finished(0).await, d);
}

#[tokio::test]
async fn refused_session_gets_close_frame() {
    let factory = TestFactory::with(Behaviour {
        refuse: Some(Disconnect::SHUTDOWN),
        ..Behaviour::default()
    });
    let addr = serve(Arc::clone(&factory)).await;
    let mut ws = connect(&addr, "/connection/websocket", &[]).await.unwrap();
    assert_eq!(expect_close(&mut ws).await, (3001, "shutdown".to_string()));
}

#[tokio::test]
async fn oversized_message_closes_with_1009() {
    let factory = TestFactory::with(Behaviour::default());
    let config = WsConfig {
        message_size_limit: 1000,
        ..WsConfig::default()
    };
    let addr = serve_with(Arc::clone(&factory), config, false).await;
    let mut ws = connect(&addr, "/connection/websocket", &[]).await.unwrap();
    ws.send(WsMessage::text("small")).await.unwrap();
    assert_eq!(next(&mut ws).await, WsMessage::text("small"));
    ws.send(WsMessage::text("x".repeat(1001))).await.unwrap();
    assert_eq!(expect_close(&mut ws).await.0, 1009);
    assert_eq!(factory.finished(0).await, Disconnect::CONNECTION_CLOSED);

    // Default limit (64 KiB): a 70 000-byte message.
    let factory = TestFactory::with(Behaviour::default());
    let addr = serve(Arc::clone(&factory)).await;
    let mut ws = connect(&addr, "/connection/websocket", &[]).await.unwrap();
    ws.send(WsMessage::binary(vec![0u8; 70_000])).await.unwrap();
    assert_eq!(expect_close(&mut ws).await.0, 1009);
}

#[tokio::test]
async fn unmasked_frame_and_bad_utf8_close_with_rfc_codes() {
    let factory = TestFactory::with(Behaviour::default());
    let addr = serve(Arc::clone(&factory)).await;

    let mut s = raw_connect(&addr, "/connection/websocket").await;
    s.write_all(&[0x81, 0x02, b'h', b'i']).await.unwrap();
    let (op, payload) = raw_frame(&mut s).await;
    assert_eq!((op, close_code_of(&payload)), (0x8, 1002));

    let mut s = raw_connect(&addr, "/connection/websocket").await;
    // A message before the bad one is still handled, in order.
    s.write_all(&client_frame(0x81, b"ok", MASK)).await.unwrap();
    s.write_all(&client_frame(0x81, &[0xC3, 0x28], MASK))
        .await
        .unwrap();
    assert_eq!(raw_frame(&mut s).await, (0x1, b"ok".to_vec()));
    let (op, payload) = raw_frame(&mut s).await;
    assert_eq!((op, close_code_of(&payload)), (0x8, 1007));
    // Then the server drops the connection.
    let mut rest = Vec::new();
    let n = timeout(Duration::from_secs(10), s.read_to_end(&mut rest))
        .await
        .unwrap();
    assert!(n.is_err() || rest.is_empty());
    assert_eq!(factory.finished(0).await, Disconnect::CONNECTION_CLOSED);
    assert_eq!(factory.finished(1).await, Disconnect::CONNECTION_CLOSED);
}

#[tokio::test]
async fn ping_is_answered_and_fragments_reassembled() {
    let factory = TestFactory::with(Behaviour::default());
    let addr = serve(Arc::clone(&factory)).await;
    let mut s = raw_connect(&addr, "/connection/websocket").await;
    let mut data = client_frame(0x01, b"{\"he", MASK);
    data.extend(client_frame(0x89, b"pp", MASK));
    data.extend(client_frame(0x80, b"y\":1}", MASK));
    // Byte by byte: the parser must not care how the stream is cut.
    for b in data {
        s.write_all(&[b]).await.unwrap();
    }
    assert_eq!(raw_frame(&mut s).await, (0xA, b"pp".to_vec()));
    assert_eq!(raw_frame(&mut s).await, (0x1, b"{\"hey\":1}".to_vec()));
    // A close without status is answered with an empty close.
    s.write_all(&client_frame(0x88, b"", MASK)).await.unwrap();
    assert_eq!(raw_frame(&mut s).await, (0x8, vec![]));
    assert_eq!(factory.finished(0).await, Disconnect::CONNECTION_CLOSED);
}

#[tokio::test]
async fn native_ping_pong_mode() {
    let factory = TestFactory::with(Behaviour::default());
    let config = WsConfig {
        native_ping_interval: Duration::from_millis(100),
        native_pong_timeout: Duration::from_millis(100),
        // The raw client below never answers the close: do not wait 5 s for it.
        close_wait: Duration::from_millis(200),
        ..WsConfig::default()
    };
    let addr = serve_with(Arc::clone(&factory), config, false).await;

    // tungstenite answers pings by itself: the connection stays up past several deadlines.
    let mut ws = connect(
        &addr,
        "/connection/websocket?cf_ws_frame_ping_pong=true",
        &[],
    )
    .await
    .unwrap();
    assert!(factory.session(0).0.info.native_ping_pong);
    assert!(matches!(next(&mut ws).await, WsMessage::Ping(_)));
    let until = Instant::now() + Duration::from_millis(500);
    while Instant::now() < until {
        if let Ok(m) = timeout(Duration::from_millis(50), ws.next()).await {
            assert!(matches!(m, Some(Ok(WsMessage::Ping(_)))), "{m:?}");
        }
    }
    ws.send(WsMessage::text("still here")).await.unwrap();
    loop {
        match next(&mut ws).await {
            WsMessage::Ping(_) => continue,
            other => break assert_eq!(other, WsMessage::text("still here")),
        }
    }

    // A client that never answers is dropped with 3012 after interval + pong timeout.
    let mut s = raw_connect(&addr, "/connection/websocket?cf_ws_frame_ping_pong=true").await;
    assert_eq!(raw_frame(&mut s).await, (0x9, vec![]));
    let (op, payload) = raw_frame(&mut s).await;
    assert_eq!((op, close_code_of(&payload)), (0x8, 3012));
    assert_eq!(factory.finished(1).await, Disconnect::NO_PONG);
}

#[tokio::test]
async fn bad_handshake_and_foreign_origin() {
    let factory = TestFactory::with(Behaviour::default());
    let addr = serve(Arc::clone(&factory)).await;

    let mut s = TcpStream::connect(&addr).await.unwrap();
    s.write_all(b"GET /connection/websocket HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut response = Vec::new();
    timeout(Duration::from_secs(10), s.read_to_end(&mut response))
        .await
        .unwrap()
        .unwrap();
    let response = String::from_utf8_lossy(&response);
    assert!(response.starts_with("HTTP/1.1 400"), "{response}");

    match connect(
        &addr,
        "/connection/websocket",
        &[("Origin", "https://evil.example")],
    )
    .await
    {
        Err(tungstenite::Error::Http(r)) => assert_eq!(r.status(), 403),
        other => panic!("expected 403, got {:?}", other.map(|_| ())),
    }
    let same = format!("http://{addr}");
    assert!(
        connect(&addr, "/connection/websocket", &[("Origin", &same)])
            .await
            .is_ok()
    );
    assert_eq!(factory.sessions.lock().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundred_concurrent_clients() {
    let factory = TestFactory::with(Behaviour::default());
    let addr = serve(Arc::clone(&factory)).await;
    let mut tasks = Vec::new();
    for i in 0..100 {
        let addr = addr.clone();
        tasks.push(tokio::spawn(async move {
            let mut ws = connect(&addr, "/connection/websocket", &[]).await.unwrap();
            for round in 0..5 {
                let text = format!("{{\"client\":{i},\"round\":{round}}}");
                ws.send(WsMessage::text(text.clone())).await.unwrap();
                assert_eq!(next(&mut ws).await, WsMessage::text(text));
            }
            ws.close(None).await.unwrap();
            while let Some(Ok(_)) = ws.next().await {}
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    for i in 0..100 {
        assert_eq!(factory.finished(i).await, Disconnect::CONNECTION_CLOSED);
    }
}

#[tokio::test]
async fn connection_future_is_small() {
    let factory = TestFactory::with(Behaviour::default());
    let info = TransportInfo {
        name: "websocket",
        protocol: Protocol::Json,
        emulation: false,
        unidirectional: false,
        native_ping_pong: false,
    };
    let parts = http::Request::new(()).into_parts().0;
    let params = ConnParams {
        protocol: Protocol::Json,
        native_ping_pong: false,
        deflate: true,
    };
    // With compression negotiated: the connection holds only its settings, no zlib state.
    let config = Arc::new(WsConfig {
        compression: Some(super::deflate::DeflateConfig {
            level: 1,
            min_size: 0,
            decompressed_limit: 655_360,
            cache: true,
        }),
        ..WsConfig::default()
    });
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let client = TcpStream::connect(listener.local_addr().unwrap())
        .await
        .unwrap();
    let (server, _) = listener.accept().await.unwrap();

    // The long-lived task of every connection on hyper's http1 server (TcpStream path).
    let session = factory.new_session(info.clone(), &parts);
    let tcp = conn::run(server, Bytes::new(), session, params, Arc::clone(&config));
    // Any other IO (TLS, hyper_util's auto server): hyper's `Upgraded` wrapped in TokioIo.
    let (duplex, _other) = tokio::io::duplex(64);
    let session = factory.new_session(info, &parts);
    let generic = conn::run(duplex, Bytes::new(), session, params, config);
    let tcp_size = std::mem::size_of_val(&tcp);
    let generic_size = std::mem::size_of_val(&generic);
    println!(
        "connection future: {tcp_size} bytes (TcpStream), {generic_size} bytes (DuplexStream)"
    );
    assert!(tcp_size < 1024, "{tcp_size}");
    assert!(generic_size < 1024, "{generic_size}");
    drop(client);
}

#[tokio::test]
async fn client_that_stops_reading_hits_write_timeout() {
    let factory = Arc::new(TestFactory {
        behaviour: Behaviour {
            echo_times: 400,
            ..Behaviour::default()
        },
        queue_max: 64 << 20,
        sessions: Mutex::default(),
    });
    let config = WsConfig {
        write_timeout: Duration::from_millis(200),
        ..WsConfig::default()
    };
    let addr = serve_with(Arc::clone(&factory), config, false).await;
    let mut s = raw_connect(&addr, "/connection/websocket").await;
    // 400 echoes of 60 KB (24 MB) cannot fit in the socket buffers of a client that
    // never reads.
    let payload = vec![b'x'; 60_000];
    s.write_all(&client_frame(0x81, &payload, MASK))
        .await
        .unwrap();
    let started = Instant::now();
    assert_eq!(factory.finished(0).await, Disconnect::WRITE_ERROR);
    assert!(started.elapsed() >= Duration::from_millis(200));
    drop(s);
}

// ---- permessage-deflate -----------------------------------------------------------------

fn deflate_config(min_size: usize, decompressed_limit: usize) -> WsConfig {
    WsConfig {
        message_size_limit: 65536,
        compression: Some(super::deflate::DeflateConfig {
            level: 1,
            min_size,
            decompressed_limit,
            cache: true,
        }),
        ..WsConfig::default()
    }
}

/// Raw handshake offering permessage-deflate as browsers do; returns the response head.
async fn raw_connect_deflate(addr: &str) -> (TcpStream, String) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let req = format!(
        "GET /connection/websocket HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\n\
         Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
         Sec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n"
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut b = [0u8; 1];
        s.read_exact(&mut b).await.unwrap();
        head.push(b[0]);
    }
    let head = String::from_utf8(head).unwrap();
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    (s, head.to_ascii_lowercase())
}

/// One server frame with its first byte: (FIN/RSV/opcode byte, payload).
async fn raw_frame_with_bits(s: &mut TcpStream) -> (u8, Vec<u8>) {
    let mut h = [0u8; 2];
    timeout(Duration::from_secs(10), s.read_exact(&mut h))
        .await
        .expect("no frame in time")
        .unwrap();
    let len = match h[1] & 0x7F {
        126 => usize::from(s.read_u16().await.unwrap()),
        127 => s.read_u64().await.unwrap() as usize,
        n => usize::from(n),
    };
    let mut payload = vec![0u8; len];
    s.read_exact(&mut payload).await.unwrap();
    (h[0], payload)
}

/// A client's compressed message: raw DEFLATE with the sync-flush tail stripped.
fn client_deflate(data: &[u8]) -> Vec<u8> {
    use flate2::{Compress, Compression, FlushCompress};
    let mut c = Compress::new(Compression::new(6), false);
    let mut out = Vec::with_capacity(data.len() + 64);
    c.compress_vec(data, &mut out, FlushCompress::Sync).unwrap();
    assert!(out.ends_with(&[0, 0, 0xff, 0xff]));
    out.truncate(out.len() - 4);
    out
}

/// What a client does with a compressed frame: append the tail and inflate.
fn client_inflate(payload: &[u8]) -> Vec<u8> {
    use flate2::{Decompress, FlushDecompress};
    let mut d = Decompress::new(false);
    let input = [payload, &[0, 0, 0xff, 0xff]].concat();
    let mut out = Vec::with_capacity(1 << 20);
    d.decompress_vec(&input, &mut out, FlushDecompress::Sync)
        .expect("valid deflate");
    out
}

#[tokio::test]
async fn deflate_round_trip_over_a_socket() {
    for wrap in [false, true] {
        let factory = TestFactory::with(Behaviour {
            prequeue: vec![
                r#"{"a":"hello hello hello"}"#,
                r#"{"b":"hello hello hello"}"#,
            ],
            echo_times: 2,
            ..Behaviour::default()
        });
        let addr = serve_with(Arc::clone(&factory), deflate_config(0, 0), wrap).await;
        let (mut s, head) = raw_connect_deflate(&addr).await;
        assert!(
            head.contains(
                "sec-websocket-extensions: permessage-deflate; server_no_context_takeover; \
                 client_no_context_takeover"
            ),
            "{head}"
        );
        // The messages queued before the first write: one compressed frame (RSV1).
        let (b0, payload) = raw_frame_with_bits(&mut s).await;
        assert_eq!(b0, 0xC1, "FIN + RSV1 + text");
        assert_eq!(
            client_inflate(&payload),
            br#"{"a":"hello hello hello"}
{"b":"hello hello hello"}"#
        );
        // A compressed command is inflated before the session sees it; the echoes come
        // back compressed.
        let command = r#"{"id":1,"publish":{"channel":"x","data":"zzzzzzzzzzzzzzzzzzzzzz"}}"#;
        s.write_all(&client_frame(
            0xC1,
            &client_deflate(command.as_bytes()),
            MASK,
        ))
        .await
        .unwrap();
        let mut got = Vec::new();
        while got.len() < 2 {
            let (b0, payload) = raw_frame_with_bits(&mut s).await;
            assert_eq!(b0, 0xC1);
            let text = String::from_utf8(client_inflate(&payload)).unwrap();
            got.extend(text.split('\n').map(str::to_owned));
        }
        assert_eq!(got, vec![command.to_string(), command.to_string()]);
        // An uncompressed message is fine as well.
        s.write_all(&client_frame(0x81, b"plain", MASK))
            .await
            .unwrap();
        let mut got = Vec::new();
        while got.len() < 2 {
            let (_, payload) = raw_frame_with_bits(&mut s).await;
            let text = String::from_utf8(client_inflate(&payload)).unwrap();
            got.extend(text.split('\n').map(str::to_owned));
        }
        assert_eq!(got, vec!["plain", "plain"]);
    }
}

#[tokio::test]
async fn deflate_min_size_and_off_by_default() {
    // Frames of at most 30 bytes stay uncompressed.
    let factory = TestFactory::with(Behaviour::default());
    let addr = serve_with(Arc::clone(&factory), deflate_config(30, 0), false).await;
    let (mut s, _) = raw_connect_deflate(&addr).await;
    s.write_all(&client_frame(0x81, b"short", MASK))
        .await
        .unwrap();
    assert_eq!(raw_frame_with_bits(&mut s).await, (0x81, b"short".to_vec()));
    let long = "l".repeat(31);
    s.write_all(&client_frame(0x81, long.as_bytes(), MASK))
        .await
        .unwrap();
    let (b0, payload) = raw_frame_with_bits(&mut s).await;
    assert_eq!(b0, 0xC1);
    assert_eq!(client_inflate(&payload), long.as_bytes());

    // Compression off (the default): nothing negotiated, RSV1 is a protocol error.
    let factory = TestFactory::with(Behaviour::default());
    let addr = serve(Arc::clone(&factory)).await;
    let (mut s, head) = raw_connect_deflate(&addr).await;
    assert!(!head.contains("sec-websocket-extensions"), "{head}");
    s.write_all(&client_frame(0xC1, &client_deflate(b"hello"), MASK))
        .await
        .unwrap();
    let (b0, payload) = raw_frame_with_bits(&mut s).await;
    assert_eq!((b0, close_code_of(&payload)), (0x88, 1002));
}

#[tokio::test]
async fn deflate_bad_input_closes_with_rfc_codes() {
    let factory = TestFactory::with(Behaviour::default());
    let addr = serve_with(Arc::clone(&factory), deflate_config(0, 100_000), false).await;

    // A bomb: 10 MB of zeros in a few KB, under the 64 KiB wire limit: 1009.
    let (mut s, _) = raw_connect_deflate(&addr).await;
    let bomb = client_deflate(&vec![b' '; 10 << 20]);
    assert!(bomb.len() < 65536, "{}", bomb.len());
    s.write_all(&client_frame(0xC1, &bomb, MASK)).await.unwrap();
    let (b0, payload) = raw_frame_with_bits(&mut s).await;
    assert_eq!((b0, close_code_of(&payload)), (0x88, 1009));

    // Not DEFLATE: 1007.
    let (mut s, _) = raw_connect_deflate(&addr).await;
    s.write_all(&client_frame(0xC2, &[0xff, 0xff, 0xff, 0xff], MASK))
        .await
        .unwrap();
    let (b0, payload) = raw_frame_with_bits(&mut s).await;
    assert_eq!((b0, close_code_of(&payload)), (0x88, 1007));

    // RSV1 on a ping: 1002.
    let (mut s, _) = raw_connect_deflate(&addr).await;
    s.write_all(&client_frame(0xC9, b"", MASK)).await.unwrap();
    let (b0, payload) = raw_frame_with_bits(&mut s).await;
    assert_eq!((b0, close_code_of(&payload)), (0x88, 1002));

    for i in 0..3 {
        assert_eq!(factory.finished(i).await, Disconnect::CONNECTION_CLOSED);
    }
}

// ---- producers writing to the socket themselves --------------------------------------

fn write_now() -> crate::queue::WriteNow {
    crate::queue::WriteNow {
        now: std::time::Instant::now(),
        quiet: Duration::ZERO,
        defer: false,
    }
}

/// Waits until the connection's writer has parked, so the socket is free for producers.
async fn parked(session: &TestSession) {
    for _ in 0..200 {
        if session.0.outbound.writer_parked() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("writer never parked");
}

#[tokio::test]
async fn producers_write_single_frames_to_a_parked_connection() {
    use crate::queue::PushOutcome;
    for (path, binary) in [
        ("/connection/websocket", false),
        ("/connection/websocket?cf_protocol=protobuf", true),
    ] {
        let factory = TestFactory::with(Behaviour::default());
        let addr = serve(Arc::clone(&factory)).await;
        let mut ws = connect(&addr, path, &[]).await.unwrap();
        ws.send(WsMessage::text("hi")).await.unwrap();
        assert_eq!(next(&mut ws).await.into_data(), Bytes::from_static(b"hi"));
        let session = factory.session(0);
        parked(&session).await;
        let outcome = session.0.outbound.push_now(
            Bytes::from_static(b"direct"),
            FrameType::Unknown,
            write_now(),
        );
        assert_eq!(outcome, PushOutcome::Written, "{path}");
        let got = next(&mut ws).await;
        assert_eq!(got.is_binary(), binary, "{path}");
        assert_eq!(got.into_data(), Bytes::from_static(b"direct"));
        // A deferred message goes out on its flush, in a frame of its own.
        parked(&session).await;
        let later = crate::queue::WriteNow {
            now: std::time::Instant::now() + Duration::from_secs(1),
            defer: true,
            ..write_now()
        };
        let outcome =
            session
                .0
                .outbound
                .push_now(Bytes::from_static(b"deferred"), FrameType::Unknown, later);
        assert_eq!(outcome, PushOutcome::Deferred, "{path}");
        assert!(session.0.outbound.flush_deferred(), "{path}");
        let got = next(&mut ws).await;
        assert_eq!(got.is_binary(), binary, "{path}");
        assert_eq!(got.into_data(), Bytes::from_static(b"deferred"));
        // The writer still works afterwards.
        ws.send(WsMessage::text("again")).await.unwrap();
        assert_eq!(
            next(&mut ws).await.into_data(),
            Bytes::from_static(b"again")
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn direct_and_queued_writes_never_tear_frames() {
    // A producer thread writes big messages itself whenever the writer is parked (and
    // the socket fills up, so frames are left half-written for the writer to finish),
    // while the connection task answers the client's messages through the queue.
    let factory = TestFactory::with(Behaviour::default());
    let addr = serve(Arc::clone(&factory)).await;
    let mut ws = connect(&addr, "/connection/websocket", &[]).await.unwrap();
    ws.send(WsMessage::text("hi")).await.unwrap();
    assert_eq!(next(&mut ws).await.into_data(), Bytes::from_static(b"hi"));
    let outbound = Arc::clone(&factory.session(0).0.outbound);
    const PRODUCED: usize = 300;
    let producer = std::thread::spawn(move || {
        let mut written = 0;
        for i in 0..PRODUCED {
            let body = format!("p{i:04}:{}", "x".repeat(20_000));
            if outbound.push_now(Bytes::from(body), FrameType::Unknown, write_now())
                == crate::queue::PushOutcome::Written
            {
                written += 1;
            }
            if i % 10 == 0 {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        written
    });
    let mut echoes_sent = 0;
    let (mut produced, mut echoed) = (0usize, 0usize);
    while produced < PRODUCED || echoed < echoes_sent {
        if echoes_sent < 50 {
            ws.send(WsMessage::text(format!("e{echoes_sent:04}")))
                .await
                .unwrap();
            echoes_sent += 1;
        }
        let msg = next(&mut ws).await;
        let WsMessage::Text(text) = msg else {
            panic!("unexpected {msg:?}")
        };
        for line in text.as_str().split('\n') {
            if let Some(rest) = line.strip_prefix('p') {
                let (n, body) = rest.split_once(':').expect("intact producer message");
                assert_eq!(n.parse::<usize>().unwrap(), produced, "producer order");
                assert_eq!(body.len(), 20_000);
                produced += 1;
            } else {
                assert_eq!(line, format!("e{echoed:04}"), "echo order");
                echoed += 1;
            }
        }
    }
    let written = producer.join().unwrap();
    assert!(written > 0, "no message was written directly");
    assert_eq!((produced, echoed), (PRODUCED, 50));
}

#[tokio::test]
async fn writers_offer_the_core_every_turn_of_small_frames_but_not_when_behind() {
    use crate::transport::turns::{FRAMES_PER_TURN, offered_on_this_thread};
    // The test's runtime runs the connection's writer on this thread.
    let factory = TestFactory::with(Behaviour::default());
    let addr = serve(Arc::clone(&factory)).await;
    let mut ws = connect(&addr, "/connection/websocket", &[]).await.unwrap();
    let before = offered_on_this_thread();
    for i in 0..2 * FRAMES_PER_TURN {
        ws.send(WsMessage::text(format!("m{i}"))).await.unwrap();
        assert_eq!(next(&mut ws).await.into_data(), format!("m{i}").as_bytes());
    }
    assert_eq!(offered_on_this_thread() - before, 2);

    // One message echoed 200 times leaves as frames of many messages: a writer that far
    // behind keeps the core.
    let factory = TestFactory::with(Behaviour {
        echo_times: 200,
        ..Behaviour::default()
    });
    let addr = serve(Arc::clone(&factory)).await;
    let mut ws = connect(&addr, "/connection/websocket", &[]).await.unwrap();
    let before = offered_on_this_thread();
    for _ in 0..FRAMES_PER_TURN {
        ws.send(WsMessage::text("x")).await.unwrap();
        let mut lines = 0;
        while lines < 200 {
            let frame = next(&mut ws).await.into_data();
            lines += frame.split(|&b| b == b'\n').count();
        }
    }
    assert_eq!(offered_on_this_thread(), before);
}
