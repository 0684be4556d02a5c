//! One WebSocket connection: a single task that reads, dispatches to the session, writes
//! the session's queue and runs its timer.
//!
//! Memory is the design constraint here (the goal is a few KiB per idle connection):
//! * reads go into a per-thread scratch buffer inside `poll`, so nothing is held between
//!   reads; the parser keeps only a partially received message (see `frame.rs`);
//! * a frame is written straight from the queued `Bytes` with vectored writes, the header
//!   in a 10-byte array; no write buffer exists;
//! * the whole connection is one hand-written state machine (`Conn::poll`) rather than a
//!   `select!` loop, so the future holds each piece of state once, and the session's own
//!   futures (`handle_message`, `on_timer`, `finish`) are boxed only while they run.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::future::{Future, poll_fn};
use std::io::{self, IoSlice};
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_util::future::Either;
use gyre_protocol::Disconnect;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::time::{Instant, Sleep};

use super::config::WsConfig;
use super::deflate::{self, DeflateConfig};
use super::frame::{
    self, FrameHeader, Message, OP_BINARY, OP_PING, OP_PONG, OP_TEXT, ParseError, Parser,
};
use crate::queue::Drained;
use crate::transport::{Protocol, Session};

/// Size of the per-thread read buffer. Inbound traffic is small commands; 16 KiB takes a
/// burst of them in one syscall without costing anything per connection.
const SCRATCH_SIZE: usize = 16 * 1024;

/// Most slices handed to one `writev` (Linux accepts 1024; more slices than this just take
/// another call).
const MAX_IOVECS: usize = 64;

/// Rounds of `Conn::poll` before it yields. A session whose deadline never moves, or a
/// peer that keeps the socket busy, must not monopolise a runtime thread.
const MAX_ROUNDS: usize = 64;

/// Largest frame written through the per-thread gather buffer.
const GATHER_SIZE: usize = 64 * 1024;

thread_local! {
    static GATHER: RefCell<Vec<u8>> = RefCell::new(Vec::with_capacity(GATHER_SIZE));
    static SCRATCH: RefCell<Box<[u8]>> = RefCell::new(vec![0u8; SCRATCH_SIZE].into_boxed_slice());
}

type SessionFuture = Pin<Box<dyn Future<Output = Result<(), Disconnect>> + Send>>;

/// Per-connection parameters decided by the handshake.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ConnParams {
    pub(crate) protocol: Protocol,
    pub(crate) native_ping_pong: bool,
    /// permessage-deflate was negotiated.
    pub(crate) deflate: bool,
}

/// Runs a connection to its end and calls `session.finish` exactly once.
///
/// `pre_read` holds bytes the HTTP layer read past the upgrade request. A refused session
/// (`Err`) gets a close frame with the disconnect and nothing else.
///
/// A plain `fn` on purpose: the arguments of an `async fn` stay in its future for its
/// whole life, so the setup happens here and only `Conn` goes into the future.
pub(crate) fn run<IO, S>(
    io: IO,
    pre_read: Bytes,
    session: Result<S, Disconnect>,
    params: ConnParams,
    config: Arc<WsConfig>,
) -> impl Future<Output = ()> + Send
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    S: Session,
{
    let session = match session {
        Ok(s) => s,
        Err(d) => return Either::Right(refuse(io, d, config)),
    };
    let mut conn = Conn::new(io, session, params, config);
    if let Err(e) = conn.parser.feed(&pre_read, &mut conn.inbound) {
        conn.read_end = Some(ReadEnd::Failed(e));
    }
    drop(pre_read);
    Either::Left(drive(conn))
}

/// Not an `async fn` (hence the `allow`): that would move `conn` from its argument slot into a second slot of
/// the future (rust-lang/rust#62958) and double the size of every connection. An
/// `async move` block uses the captured value in place.
#[allow(clippy::manual_async_fn)]
fn drive<IO, S>(mut conn: Conn<IO, S>) -> impl Future<Output = ()> + Send
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    S: Session,
{
    async move {
        let disconnect = {
            let outbound = Arc::clone(conn.session.outbound());
            let mut wait = pin!(outbound.wait());
            // Re-armed with `reset` to whichever deadline is next; the far-away start is never
            // polled (a sleep registers with the timer only when first polled).
            let mut sleep = pin!(tokio::time::sleep_until(far_future()));
            poll_fn(|cx| {
                loop {
                    match conn.poll(cx, wait.as_mut(), sleep.as_mut()) {
                        Step::Rearm => wait.set(outbound.wait()),
                        Step::Pending => return Poll::Pending,
                        Step::Done(d) => return Poll::Ready(d),
                    }
                }
            })
            .await
        };
        // Nobody but this task touches the socket from here on.
        conn.session.outbound().detach_direct();
        // The session must see none of its futures alive in `finish`.
        let (mut io, session, config) = conn.into_parts();
        // A clean shutdown matters for TLS (close_notify); on TCP it is one syscall.
        let _ = tokio::time::timeout(config.write_timeout, io.shutdown()).await;
        drop(io);
        Box::pin(session.finish(disconnect)).await;
    }
}

/// Writes a close frame for a session that was refused, then ends the connection.
/// A plain `fn` for the same reason as [`drive`].
#[allow(clippy::manual_async_fn)]
fn refuse<IO>(
    mut io: IO,
    disconnect: Disconnect,
    config: Arc<WsConfig>,
) -> impl Future<Output = ()> + Send
where
    IO: AsyncWrite + Unpin + Send,
{
    async move {
        if disconnect.code != Disconnect::CONNECTION_CLOSED.code {
            let frame = frame::close_frame(close_code(&disconnect), &disconnect.reason);
            let _ = tokio::time::timeout(config.write_timeout, io.write_all(&frame)).await;
        }
        let _ = tokio::time::timeout(config.write_timeout, io.shutdown()).await;
    }
}

/// WebSocket close code for a disconnect (every Centrifugo code fits; anything that would
/// not is reported as an internal error rather than truncated into a different code).
fn close_code(d: &Disconnect) -> u16 {
    u16::try_from(d.code).unwrap_or(1011)
}

fn far_future() -> Instant {
    Instant::now() + std::time::Duration::from_secs(86400 * 365)
}

/// What `Conn::poll` asks its caller to do.
pub(crate) enum Step {
    Pending,
    /// The queue's wait future completed: make a new one and poll again.
    Rearm,
    Done(Disconnect),
}

#[derive(Debug, Clone, Copy)]
enum ReadEnd {
    /// EOF or a read error: the peer is gone.
    Eof,
    /// The peer broke the protocol.
    Failed(ParseError),
    /// The protocol error was answered with a close frame; nothing more is read.
    Parked,
}

/// What happens once a frame is fully written.
/// The disconnect itself is in `Conn::closing_with`; keeping it out of here keeps every
/// pending write small.
#[derive(Debug, Clone, Copy)]
enum Then {
    Nothing,
    /// End the connection now (we answered the peer's close, or refused bad input).
    Finish,
    /// Our close frame is out: wait for the peer's close, then end.
    Linger,
}

enum WriteKind {
    /// Header, then the drained batch (joined with `\n` when `joined`); `len` is the
    /// payload's.
    Data {
        header: FrameHeader,
        len: usize,
        seg: usize,
        joined: bool,
    },
    /// A complete control frame.
    Control(Bytes),
}

struct Write {
    kind: WriteKind,
    /// Bytes already written of the current segment (Data) or of the frame (Control).
    off: usize,
    then: Then,
}

/// Native ping/pong (`cf_ws_frame_ping_pong=true`) bookkeeping.
#[derive(Debug, Clone, Copy)]
struct NativePing {
    next_ping: Instant,
    read_deadline: Instant,
}

struct Conn<IO, S> {
    io: IO,
    session: S,
    config: Arc<WsConfig>,
    json: bool,
    /// permessage-deflate was negotiated (the settings are in `config.compression`; a
    /// flag keeps every connection a few words smaller).
    deflate: bool,
    parser: Parser,
    /// Parsed messages not dispatched yet (at most one read's worth).
    inbound: VecDeque<Message>,
    handling: Option<SessionFuture>,
    timer: Option<SessionFuture>,
    /// Messages of the data frame being written (empty and unallocated when idle).
    batch: Vec<Bytes>,
    cur: Option<Write>,
    needs_flush: bool,
    pong: Option<Bytes>,
    ping_due: bool,
    /// A close frame to write as soon as the current frame is out.
    close_next: Option<(Bytes, Then)>,
    /// Set once a close frame is scheduled: nothing else may follow it on the wire.
    writes_closed: bool,
    /// No more dispatching or session timers: a close is under way. Inbound data is
    /// still read (and dropped) so the peer's close frame can be seen.
    stopped: bool,
    /// Why we are closing, for when the peer vanishes before our close frame is out.
    closing_with: Option<Disconnect>,
    peer_closed: bool,
    read_end: Option<ReadEnd>,
    /// Our close frame is out; the peer has until then to answer it.
    linger_until: Option<Instant>,
    write_deadline: Option<Instant>,
    /// With a write delay: when the messages queued now may be written.
    delay_until: Option<Instant>,
    native: Option<NativePing>,
    done: Option<Disconnect>,
}

impl<IO, S> Conn<IO, S>
where
    IO: AsyncRead + AsyncWrite + Unpin,
    S: Session,
{
    /// Drops everything else (in-flight session futures included) right here.
    fn into_parts(self) -> (IO, S, Arc<WsConfig>) {
        (self.io, self.session, self.config)
    }

    fn new(io: IO, session: S, params: ConnParams, config: Arc<WsConfig>) -> Self {
        let native = params.native_ping_pong.then(|| {
            let now = Instant::now();
            NativePing {
                next_ping: now + config.native_ping_interval,
                read_deadline: now + config.native_ping_interval + config.native_pong_timeout,
            }
        });
        let deflate = config.compression.filter(|_| params.deflate);
        let mut parser = Parser::new(config.message_size_limit);
        if let Some(d) = deflate {
            parser = parser.with_deflate(d.decompressed_limit);
        }
        let deflate = deflate.is_some();
        Conn {
            io,
            session,
            json: params.protocol == Protocol::Json,
            deflate,
            parser,
            config,
            inbound: VecDeque::new(),
            handling: None,
            timer: None,
            batch: Vec::new(),
            cur: None,
            needs_flush: false,
            pong: None,
            ping_due: false,
            close_next: None,
            writes_closed: false,
            stopped: false,
            closing_with: None,
            peer_closed: false,
            read_end: None,
            linger_until: None,
            write_deadline: None,
            delay_until: None,
            native,
            done: None,
        }
    }

    /// Drives everything that can make progress; returns `Pending` only after every
    /// source that is still active was polled and registered the waker.
    fn poll<W: Future<Output = ()>>(
        &mut self,
        cx: &mut Context<'_>,
        wait: Pin<&mut W>,
        mut sleep: Pin<&mut Sleep>,
    ) -> Step {
        let mut wait = Some(wait);
        for _ in 0..MAX_ROUNDS {
            if let Some(d) = self.done.take() {
                return Step::Done(d);
            }
            let mut progress = false;

            match self.poll_write(cx) {
                Ok(WriteState::Progress) => progress = true,
                Ok(WriteState::Blocked) => {}
                Ok(WriteState::Idle) => {
                    if !self.writes_closed
                        && let Some(w) = wait.take()
                        && w.poll(cx).is_ready()
                    {
                        return Step::Rearm;
                    }
                }
                Err(()) => {
                    self.done = Some(self.write_failed());
                    continue;
                }
            }

            progress |= self.poll_read(cx);
            progress |= self.dispatch(cx);
            progress |= self.poll_timers(cx, sleep.as_mut());

            if !progress && self.done.is_none() {
                return Step::Pending;
            }
        }
        // Still busy: let other connections run, and come back right away.
        cx.waker().wake_by_ref();
        Step::Pending
    }

    // ---- writing -------------------------------------------------------------------

    fn poll_write(&mut self, cx: &mut Context<'_>) -> Result<WriteState, ()> {
        let mut progress = false;
        loop {
            if self.cur.is_none() && !self.next_write() {
                if self.needs_flush {
                    match Pin::new(&mut self.io).poll_flush(cx) {
                        Poll::Ready(Ok(())) => self.needs_flush = false,
                        Poll::Ready(Err(_)) => return Err(()),
                        Poll::Pending => {
                            self.arm_write_deadline();
                            return Ok(WriteState::Blocked);
                        }
                    }
                }
                self.write_deadline = None;
                return Ok(if progress {
                    WriteState::Progress
                } else {
                    WriteState::Idle
                });
            }
            match self.write_some(cx) {
                Poll::Ready(Ok(finished)) => {
                    progress = true;
                    self.needs_flush = true;
                    if finished {
                        self.write_deadline = None;
                        self.complete_write();
                        if self.done.is_some() {
                            return Ok(WriteState::Progress);
                        }
                    }
                }
                Poll::Ready(Err(_)) => return Err(()),
                Poll::Pending => {
                    self.arm_write_deadline();
                    return Ok(if progress {
                        WriteState::Progress
                    } else {
                        WriteState::Blocked
                    });
                }
            }
        }
    }

    fn arm_write_deadline(&mut self) {
        if self.write_deadline.is_none() {
            self.write_deadline = Some(Instant::now() + self.config.write_timeout);
        }
    }

    /// Picks the next frame: control frames first, then whatever the session queued.
    fn next_write(&mut self) -> bool {
        // Producers keep off the socket from now until the queue is found empty; one of
        // them may have left part of a frame on the wire, which nothing may interrupt.
        if let Some(rest) = self.session.outbound().claim() {
            self.cur = Some(Write {
                kind: WriteKind::Control(rest),
                off: 0,
                then: Then::Nothing,
            });
            return true;
        }
        if let Some((frame, then)) = self.close_next.take() {
            self.cur = Some(Write {
                kind: WriteKind::Control(frame),
                off: 0,
                then,
            });
            return true;
        }
        if self.writes_closed {
            return false;
        }
        if let Some(frame) = self.pong.take() {
            self.cur = Some(Write {
                kind: WriteKind::Control(frame),
                off: 0,
                then: Then::Nothing,
            });
            return true;
        }
        if self.ping_due {
            self.ping_due = false;
            self.cur = Some(Write {
                kind: WriteKind::Control(frame::control_frame(OP_PING, &[])),
                off: 0,
                then: Then::Nothing,
            });
            return true;
        }
        let outbound = self.session.outbound();
        if !self.config.write_delay.is_zero() && outbound.has_messages_without_close() {
            // Hold the first queued message briefly so that what follows shares its frame
            // and its write: at medium rates that is what keeps fan-out off the syscall
            // limit. A pending close is never delayed.
            let now = Instant::now();
            match self.delay_until {
                None => {
                    self.delay_until = Some(now + self.config.write_delay);
                    return false;
                }
                Some(t) if now < t => return false,
                Some(_) => self.delay_until = None,
            }
        }
        match outbound.drain(self.config.max_messages_in_frame, &mut self.batch) {
            Drained::Messages => {
                let mut len: usize = self.batch.iter().map(Bytes::len).sum();
                if self.json {
                    len += self.batch.len() - 1;
                }
                let opcode = if self.json { OP_TEXT } else { OP_BINARY };
                let compression = self.config.compression.filter(|_| self.deflate);
                let (header, joined) = match compression.filter(|d: &DeflateConfig| d.wants(len)) {
                    Some(d) => {
                        // The batch becomes the compressed segments, separators included.
                        let segments = deflate::compress_batch(&d, &self.batch, self.json);
                        self.batch.clear();
                        self.batch.extend(segments);
                        len = self.batch.iter().map(Bytes::len).sum();
                        (FrameHeader::compressed(opcode, len), false)
                    }
                    None => (FrameHeader::new(opcode, len), self.json),
                };
                self.cur = Some(Write {
                    kind: WriteKind::Data {
                        header,
                        len,
                        seg: 0,
                        joined,
                    },
                    off: 0,
                    then: Then::Nothing,
                });
                true
            }
            Drained::Close(d) => {
                self.close_with(d);
                self.next_write()
            }
            Drained::Empty => {
                // Give the batch's slots back: an idle connection keeps no write state.
                self.batch = Vec::new();
                false
            }
        }
    }

    /// Server-initiated close: flushes nothing more, sends a close frame with the
    /// disconnect, then waits for the peer's close. Code 3000 means a plain close without
    /// a frame (upstream never sends it).
    fn close_with(&mut self, d: Disconnect) {
        self.stopped = true;
        if self.writes_closed {
            return;
        }
        self.writes_closed = true;
        self.pong = None;
        self.ping_due = false;
        self.closing_with = Some(d.clone());
        if d.code == Disconnect::CONNECTION_CLOSED.code {
            self.done = Some(d);
            return;
        }
        let frame = frame::close_frame(close_code(&d), &d.reason);
        self.close_next = Some((frame, Then::Linger));
    }

    /// Closes with a frame we choose (answer to the peer's close, or a framing error) and
    /// ends the connection as soon as it is written.
    fn close_then_finish(&mut self, frame: Bytes) {
        self.stopped = true;
        if self.writes_closed {
            return;
        }
        self.writes_closed = true;
        self.pong = None;
        self.ping_due = false;
        self.closing_with = Some(Disconnect::CONNECTION_CLOSED);
        self.close_next = Some((frame, Then::Finish));
    }

    /// The socket cannot be written. If a close was already decided (e.g. 3008 "slow",
    /// whose close frame is what could not be written), that stays the reason.
    fn write_failed(&mut self) -> Disconnect {
        self.closing_with.take().unwrap_or(Disconnect::WRITE_ERROR)
    }

    /// Why the connection ends once the close in progress is done.
    fn closing_disconnect(&mut self) -> Disconnect {
        self.closing_with
            .take()
            .unwrap_or(Disconnect::CONNECTION_CLOSED)
    }

    fn complete_write(&mut self) {
        let Some(w) = self.cur.take() else { return };
        if matches!(w.kind, WriteKind::Data { .. }) {
            crate::transport::turns::give_way(self.batch.len());
            self.batch.clear();
        }
        match w.then {
            Then::Nothing => {}
            Then::Finish => self.done = Some(self.closing_disconnect()),
            Then::Linger => {
                if self.peer_closed || self.read_end.is_some() {
                    self.done = Some(self.closing_disconnect());
                } else {
                    self.linger_until = Some(Instant::now() + self.config.close_wait);
                }
            }
        }
    }

    /// Writes as much of the current frame as the socket takes. `Ok(true)` = frame done.
    fn write_some(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<bool>> {
        let Some(w) = self.cur.as_mut() else {
            return Poll::Ready(Ok(true));
        };
        match &mut w.kind {
            WriteKind::Control(frame) => {
                let rest = &frame[w.off..];
                let n = match Pin::new(&mut self.io).poll_write(cx, rest) {
                    Poll::Ready(Ok(0)) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                    Poll::Ready(Ok(n)) => n,
                    Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                    Poll::Pending => return Poll::Pending,
                };
                w.off += n;
                Poll::Ready(Ok(w.off >= frame.len()))
            }
            WriteKind::Data {
                header,
                len,
                seg,
                joined,
            } => {
                let joined = *joined;
                let polled = if *seg == 0 && w.off == 0 && self.batch.len() > 1 {
                    gather_write(&mut self.io, cx, header, *len, &self.batch, joined)
                } else {
                    None
                };
                let polled = match polled {
                    Some(p) => p,
                    None => {
                        let mut slices = [IoSlice::new(&[]); MAX_IOVECS];
                        let mut count = 0;
                        let mut i = *seg;
                        let mut first = true;
                        while count < MAX_IOVECS {
                            let Some(bytes) = segment(header, &self.batch, joined, i) else {
                                break;
                            };
                            let bytes = if first { &bytes[w.off..] } else { bytes };
                            first = false;
                            if !bytes.is_empty() {
                                slices[count] = IoSlice::new(bytes);
                                count += 1;
                            }
                            i += 1;
                        }
                        if count == 0 {
                            return Poll::Ready(Ok(true));
                        }
                        Pin::new(&mut self.io).poll_write_vectored(cx, &slices[..count])
                    }
                };
                let mut n = match polled {
                    Poll::Ready(Ok(0)) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                    Poll::Ready(Ok(n)) => n,
                    Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                    Poll::Pending => return Poll::Pending,
                };
                // Advance (segment, offset) past the bytes the socket took.
                while let Some(bytes) = segment(header, &self.batch, joined, *seg) {
                    let left = bytes.len() - w.off;
                    if n < left {
                        w.off += n;
                        return Poll::Ready(Ok(false));
                    }
                    n -= left;
                    *seg += 1;
                    w.off = 0;
                }
                Poll::Ready(Ok(true))
            }
        }
    }

    // ---- reading -------------------------------------------------------------------

    fn poll_read(&mut self, cx: &mut Context<'_>) -> bool {
        if self.read_end.is_some() || !self.inbound.is_empty() {
            return false;
        }
        // Backpressure: while the session handles a message, the socket is not read.
        if self.handling.is_some() && !self.stopped {
            return false;
        }
        SCRATCH.with(|scratch| {
            let mut scratch = scratch.borrow_mut();
            let mut buf = ReadBuf::new(&mut scratch[..]);
            match Pin::new(&mut self.io).poll_read(cx, &mut buf) {
                Poll::Pending => false,
                Poll::Ready(Err(_)) => {
                    self.read_end = Some(ReadEnd::Eof);
                    true
                }
                Poll::Ready(Ok(())) if buf.filled().is_empty() => {
                    self.read_end = Some(ReadEnd::Eof);
                    true
                }
                Poll::Ready(Ok(())) => {
                    if let Err(e) = self.parser.feed(buf.filled(), &mut self.inbound) {
                        self.read_end = Some(ReadEnd::Failed(e));
                    }
                    true
                }
            }
        })
    }

    // ---- dispatching ---------------------------------------------------------------

    fn dispatch(&mut self, cx: &mut Context<'_>) -> bool {
        let mut progress = false;
        if let Some(fut) = self.handling.as_mut()
            && let Poll::Ready(result) = fut.as_mut().poll(cx)
        {
            self.handling = None;
            progress = true;
            if let Err(d) = result {
                // Through the queue, so replies queued before the error go out first.
                self.session.outbound().close(d);
                self.stopped = true;
            }
        }
        while self.handling.is_none() || self.stopped {
            let Some(message) = self.inbound.pop_front() else {
                break;
            };
            progress = true;
            match message {
                Message::Text(data) | Message::Binary(data) => {
                    if self.stopped {
                        continue;
                    }
                    let mut fut: SessionFuture = Box::pin(self.session.handle_message(data));
                    match fut.as_mut().poll(cx) {
                        Poll::Ready(Ok(())) => {}
                        Poll::Ready(Err(d)) => {
                            self.session.outbound().close(d);
                            self.stopped = true;
                        }
                        Poll::Pending => self.handling = Some(fut),
                    }
                }
                Message::Ping(payload) => {
                    if !self.writes_closed {
                        self.pong = Some(frame::control_frame(OP_PONG, &payload));
                    }
                }
                Message::Pong => {
                    if let Some(native) = self.native.as_mut() {
                        native.read_deadline = Instant::now()
                            + self.config.native_ping_interval
                            + self.config.native_pong_timeout;
                    }
                }
                Message::Close { code, .. } => {
                    self.peer_closed = true;
                    if self.linger_until.take().is_some() {
                        // Our close was out and this is the answer: handshake complete.
                        self.done = Some(self.closing_disconnect());
                        return true;
                    }
                    let reply = match code {
                        Some(code) => frame::close_frame(code, ""),
                        None => frame::empty_close_frame(),
                    };
                    self.close_then_finish(reply);
                }
            }
        }
        if self.inbound.is_empty() && (self.handling.is_none() || self.stopped) {
            progress |= self.on_read_end();
        }
        progress
    }

    /// Acts on EOF or a framing error once everything read before it was dispatched.
    fn on_read_end(&mut self) -> bool {
        match self.read_end {
            None => false,
            Some(ReadEnd::Eof) => {
                if self.done.is_some() {
                    return false;
                }
                self.linger_until = None;
                self.done = Some(self.closing_disconnect());
                true
            }
            Some(ReadEnd::Failed(e)) => {
                if self.writes_closed {
                    // Already closing for another reason: the peer is just gone.
                    self.read_end = Some(ReadEnd::Eof);
                    return true;
                }
                tracing::debug!(error = %e, "websocket protocol error");
                self.close_then_finish(frame::close_frame(e.close_code(), e.close_reason()));
                // Reading is over, but the connection ends only once the close frame is out.
                self.read_end = Some(ReadEnd::Parked);
                true
            }
            Some(ReadEnd::Parked) => false,
        }
    }

    // ---- timers --------------------------------------------------------------------

    fn poll_timers(&mut self, cx: &mut Context<'_>, mut sleep: Pin<&mut Sleep>) -> bool {
        let mut progress = false;
        if let Some(fut) = self.timer.as_mut()
            && let Poll::Ready(result) = fut.as_mut().poll(cx)
        {
            self.timer = None;
            progress = true;
            if let Err(d) = result {
                self.session.outbound().close(d);
                self.stopped = true;
            }
        }
        let session_deadline = if self.stopped || self.timer.is_some() {
            None
        } else {
            self.session.next_deadline()
        };
        let native = self.native.filter(|_| !self.stopped);
        let deadline = [
            session_deadline,
            self.write_deadline,
            self.linger_until,
            // Only while no frame is being written: a delay that ran out while a write is
            // blocked must not keep waking the task.
            self.delay_until.filter(|_| self.cur.is_none()),
            native.map(|n| n.next_ping),
            native.map(|n| n.read_deadline),
        ]
        .into_iter()
        .flatten()
        .min();
        let Some(deadline) = deadline else {
            return progress;
        };
        if sleep.deadline() != deadline {
            sleep.as_mut().reset(deadline);
        }
        if sleep.as_mut().poll(cx).is_pending() {
            return progress;
        }
        let now = Instant::now();
        if self.write_deadline.is_some_and(|t| t <= now) {
            self.done = Some(self.write_failed());
            return true;
        }
        if self.linger_until.is_some_and(|t| t <= now) {
            self.done = Some(self.closing_disconnect());
            return true;
        }
        if session_deadline.is_some_and(|t| t <= now) {
            let mut fut: SessionFuture = Box::pin(self.session.on_timer());
            match fut.as_mut().poll(cx) {
                Poll::Ready(Ok(())) => {}
                Poll::Ready(Err(d)) => {
                    self.session.outbound().close(d);
                    self.stopped = true;
                }
                Poll::Pending => self.timer = Some(fut),
            }
        }
        if let Some(n) = self.native.as_mut().filter(|_| !self.stopped) {
            if n.read_deadline <= now {
                // The client stopped answering pings.
                self.session.outbound().close(Disconnect::NO_PONG);
                self.stopped = true;
            } else if n.next_ping <= now {
                n.next_ping = now + self.config.native_ping_interval;
                self.ping_due = true;
            }
        }
        true
    }
}

enum WriteState {
    Progress,
    Blocked,
    Idle,
}

/// Writes a whole batched frame from one contiguous copy in the thread's scratch buffer;
/// `None` when the frame does not fit it. Copying a few kilobytes is cheaper than handing
/// the kernel one slice per message (and one per `\n` separator): the socket copy then
/// walks one buffer. A short write resumes from the batch itself, so nothing is kept.
fn gather_write<IO: AsyncWrite + Unpin>(
    io: &mut IO,
    cx: &mut Context<'_>,
    header: &FrameHeader,
    payload_len: usize,
    batch: &[Bytes],
    json: bool,
) -> Option<Poll<io::Result<usize>>> {
    if header.as_bytes().len() + payload_len > GATHER_SIZE {
        return None;
    }
    GATHER.with(|buf| {
        let mut buf = buf.borrow_mut();
        buf.clear();
        buf.extend_from_slice(header.as_bytes());
        for (i, m) in batch.iter().enumerate() {
            if json && i > 0 {
                buf.push(b'\n');
            }
            buf.extend_from_slice(m);
        }
        Some(Pin::new(io).poll_write(cx, &buf))
    })
}

/// Segment `i` of a data frame: the header, then each message, with `\n` between JSON
/// messages.
fn segment<'a>(
    header: &'a FrameHeader,
    batch: &'a [Bytes],
    json: bool,
    i: usize,
) -> Option<&'a [u8]> {
    if i == 0 {
        return Some(header.as_bytes());
    }
    let j = i - 1;
    if !json {
        return batch.get(j).map(|b| &b[..]);
    }
    if j.is_multiple_of(2) {
        batch.get(j / 2).map(|b| &b[..])
    } else if j / 2 + 1 < batch.len() {
        Some(b"\n")
    } else {
        None
    }
}
