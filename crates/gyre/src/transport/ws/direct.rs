//! A plain TCP WebSocket shared between its connection task and the producers of its
//! messages.
//!
//! The connection task owns reading, timers and every batched write. While it is parked
//! with nothing to write, a producer (the thread broadcasting a publication) may write a
//! single-message frame itself through [`DirectFrames`]; the queue's lock decides who may
//! write at any moment (see [`Outbound::push_now`](crate::queue::Outbound::push_now)).
//! Both go through tokio's readiness-aware `try_*` calls, so a socket a producer filled up
//! is noticed by the task's next write like any other full socket.

use std::cell::RefCell;
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use bytes::{BufMut, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use super::frame::FrameHeader;
use crate::queue::DirectWrite;

/// The connection task's side of a shared socket.
#[derive(Debug)]
pub(crate) struct SharedTcp(Arc<DirectFrames>);

impl SharedTcp {
    /// `opcode` (text or binary) is what producers' frames carry.
    pub(crate) fn new(stream: TcpStream, opcode: u8) -> Self {
        SharedTcp(Arc::new(DirectFrames { stream, opcode }))
    }

    /// The producers' handle: the same allocation, so sharing costs no memory.
    pub(crate) fn frames(&self) -> Arc<DirectFrames> {
        Arc::clone(&self.0)
    }
}

impl AsyncRead for SharedTcp {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        loop {
            ready!(self.0.stream.poll_read_ready(cx))?;
            // A WouldBlock clears the readiness, so the next round registers the waker.
            match self.0.stream.try_read(buf.initialize_unfilled()) {
                Ok(n) => {
                    buf.advance(n);
                    return Poll::Ready(Ok(()));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }
}

impl AsyncWrite for SharedTcp {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        loop {
            ready!(self.0.stream.poll_write_ready(cx))?;
            match self.0.stream.try_write(buf) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                r => return Poll::Ready(r),
            }
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        loop {
            ready!(self.0.stream.poll_write_ready(cx))?;
            match self.0.stream.try_write_vectored(bufs) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                r => return Poll::Ready(r),
            }
        }
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // Producers were detached before the task shuts down, so the stream is ours alone;
        // if it somehow is not, dropping it closes the socket all the same.
        match Arc::get_mut(&mut self.0) {
            Some(socket) => Pin::new(&mut socket.stream).poll_shutdown(cx),
            None => Poll::Ready(Ok(())),
        }
    }
}

/// A shared socket; producers write one message as one final frame through it.
#[derive(Debug)]
pub(crate) struct DirectFrames {
    stream: TcpStream,
    opcode: u8,
}

/// Frames up to this size are copied into one buffer and written with `write(2)`: for a
/// small message that is cheaper than handing the kernel a two-slice `writev`.
const COPY_MAX: usize = 2048;

thread_local! {
    static FRAME: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

impl DirectWrite for DirectFrames {
    fn write_frame(&self, message: &[u8]) -> io::Result<(usize, usize)> {
        let header = FrameHeader::new(self.opcode, message.len());
        let total = header.as_bytes().len() + message.len();
        if total <= COPY_MAX {
            let written = FRAME.with(|buf| {
                let mut buf = buf.borrow_mut();
                buf.clear();
                buf.extend_from_slice(header.as_bytes());
                buf.extend_from_slice(message);
                self.stream.try_write(&buf)
            })?;
            return Ok((written, total));
        }
        let slices = [IoSlice::new(header.as_bytes()), IoSlice::new(message)];
        let written = self.stream.try_write_vectored(&slices)?;
        Ok((written, total))
    }

    fn frame_rest(&self, message: &Bytes, written: usize) -> Bytes {
        let header = FrameHeader::new(self.opcode, message.len());
        let head = header.as_bytes();
        if written >= head.len() {
            return message.slice(written - head.len()..);
        }
        let mut rest = BytesMut::with_capacity(head.len() - written + message.len());
        rest.put_slice(&head[written..]);
        rest.put_slice(message);
        rest.freeze()
    }
}
