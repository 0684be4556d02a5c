//! The WebSocket wire of a bench connection: the client side of RFC 6455 over a plain
//! `TcpStream`, only as much as a bench client needs.
//!
//! A load tool that costs as much per frame as the server it measures puts its own
//! queueing into every latency figure. A general-purpose WebSocket client zero-fills its
//! read buffer before each read and copies every frame out of it; here a frame's
//! payload is cut out of the read buffer without a copy, and a read fills only
//! capacity that tokio never initialises. Server pings are answered as they are read.
//!
//! With [`WsWire::stamp_arrivals`] each read also returns when its bytes reached the
//! socket (the kernel's receive timestamp), so that a delivery can be timed without the
//! wait for this tool's own turn on a busy core.

use std::cell::RefCell;
use std::io;
use std::os::fd::{AsRawFd, RawFd};

use anyhow::{Context, anyhow, bail};
use base64::Engine;
use bytes::{Buf, Bytes, BytesMut};
use nix::sys::socket::{ControlMessageOwned, MsgFlags, recvmsg, setsockopt, sockopt};
use sha1::{Digest, Sha1};
use tokio::io::{AsyncReadExt, AsyncWriteExt, Interest};
use tokio::net::TcpStream;

const OP_CONTINUATION: u8 = 0x0;
/// Opcode of a text frame.
pub const OP_TEXT: u8 = 0x1;
/// Opcode of a binary frame.
pub const OP_BINARY: u8 = 0x2;
const OP_CLOSE: u8 = 0x8;
const OP_PING: u8 = 0x9;
const OP_PONG: u8 = 0xA;

/// The longest handshake response accepted.
const MAX_HEAD: usize = 16 * 1024;
/// The longest message accepted (bench messages are small; this bounds a broken peer).
const MAX_MESSAGE: usize = 64 * 1024 * 1024;

/// What the server sent.
#[derive(Debug, PartialEq)]
pub enum Event {
    /// A whole text or binary message.
    Data(Bytes),
    /// A close frame: its code (1005 when it had none) and reason.
    Close(u16, String),
}

/// One client WebSocket connection.
#[derive(Debug)]
pub struct WsWire {
    tcp: TcpStream,
    frames: FrameReader,
    /// How much room each read asks for.
    chunk: usize,
    mask: u32,
    /// Reads ask the kernel when their bytes arrived.
    stamped: bool,
    /// When the bytes of the latest read reached the socket (Unix ns), if stamped.
    arrived_ns: Option<u64>,
}

thread_local! {
    /// Where stamped reads land before they join a connection's buffer: `recvmsg` wants
    /// initialised memory, and zeroing a connection's read room before every read is
    /// what this wire exists to avoid. One per thread, zeroed once.
    static SCRATCH: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// The reading half: server frames out of the bytes read so far (no I/O, so that it can
/// be fuzzed on its own).
#[derive(Debug, Default)]
pub struct FrameReader {
    buf: BytesMut,
    /// The payload so far of a fragmented message.
    partial: Option<BytesMut>,
    /// A ping payload to answer before reading on.
    pong: Option<Bytes>,
}

impl WsWire {
    /// Upgrades `tcp` to a WebSocket at `url` (`ws://host:port/path`), offering
    /// `subprotocol` if given. Bytes the server sent after its response are kept.
    pub async fn connect(
        mut tcp: TcpStream,
        url: &str,
        subprotocol: Option<&str>,
        chunk: usize,
    ) -> anyhow::Result<WsWire> {
        let rest = url
            .strip_prefix("ws://")
            .ok_or_else(|| anyhow!("only ws:// URLs are supported: {url}"))?;
        let (host, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        let key = base64::engine::general_purpose::STANDARD.encode(rand::random::<[u8; 16]>());
        let mut request = format!(
            "GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
        );
        if let Some(p) = subprotocol {
            request.push_str(&format!("Sec-WebSocket-Protocol: {p}\r\n"));
        }
        request.push_str("\r\n");
        tcp.write_all(request.as_bytes()).await?;

        let mut buf = BytesMut::with_capacity(1024);
        let head_len = loop {
            if let Some(i) = memchr::memmem::find(&buf, b"\r\n\r\n") {
                break i + 4;
            }
            if buf.len() > MAX_HEAD {
                bail!("handshake response longer than {MAX_HEAD} bytes");
            }
            if tcp.read_buf(&mut buf).await? == 0 {
                bail!("connection closed during the WebSocket handshake");
            }
        };
        let head = buf.split_to(head_len);
        let head = std::str::from_utf8(&head).context("handshake response is not UTF-8")?;
        let status = head.lines().next().unwrap_or_default();
        if status.split_whitespace().nth(1) != Some("101") {
            bail!("WebSocket upgrade refused: {status}");
        }
        let expected = accept_key(&key);
        let accept = header(head, "sec-websocket-accept");
        if accept != Some(expected.as_str()) {
            bail!("bad Sec-WebSocket-Accept {accept:?}");
        }
        Ok(WsWire {
            tcp,
            frames: FrameReader {
                buf,
                ..FrameReader::default()
            },
            chunk: chunk.max(512),
            mask: rand::random(),
            stamped: false,
            arrived_ns: None,
        })
    }

    /// From now on every read records when its bytes reached the socket
    /// (`SO_TIMESTAMPNS`); see [`arrived_ns`](Self::arrived_ns).
    pub fn stamp_arrivals(&mut self) -> anyhow::Result<()> {
        setsockopt(&self.tcp, sockopt::ReceiveTimestampns, &true)
            .context("asking for receive timestamps (SO_TIMESTAMPNS)")?;
        self.stamped = true;
        Ok(())
    }

    /// When the bytes that completed the latest message reached the socket (Unix ns):
    /// the kernel's stamp of the newest segment in the read that brought them, so never
    /// earlier than the message's own arrival. `None` unless
    /// [`stamp_arrivals`](Self::stamp_arrivals) was called, and for reads in the first
    /// moments after the first socket of the machine asked (the kernel turns stamping on
    /// in the background).
    pub fn arrived_ns(&self) -> Option<u64> {
        self.arrived_ns
    }

    async fn read_stamped(&mut self) -> io::Result<usize> {
        loop {
            self.tcp.readable().await?;
            let fd = self.tcp.as_raw_fd();
            let (chunk, buf) = (self.chunk, &mut self.frames.buf);
            let read = self.tcp.try_io(Interest::READABLE, || {
                SCRATCH.with_borrow_mut(|scratch| {
                    if scratch.len() < chunk {
                        scratch.resize(chunk, 0);
                    }
                    let (n, stamp) = recv_stamped(fd, &mut scratch[..chunk])?;
                    buf.extend_from_slice(&scratch[..n]);
                    Ok((n, stamp))
                })
            });
            match read {
                Ok((n, stamp)) => {
                    self.arrived_ns = stamp;
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// Sends one unfragmented frame with `opcode` (masked, as a client must).
    pub async fn send(&mut self, opcode: u8, payload: &[u8]) -> anyhow::Result<()> {
        let frame = self.encode(opcode, payload);
        self.tcp.write_all(&frame).await?;
        Ok(())
    }

    fn encode(&mut self, opcode: u8, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(payload.len() + 14);
        out.push(0x80 | opcode);
        match payload.len() {
            n @ 0..=125 => out.push(0x80 | n as u8),
            n @ 126..=0xFFFF => {
                out.push(0x80 | 126);
                out.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                out.push(0x80 | 127);
                out.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        // A new key per frame: xorshift is enough, the key only has to vary.
        self.mask ^= self.mask << 13;
        self.mask ^= self.mask >> 17;
        self.mask ^= self.mask << 5;
        let key = self.mask.to_be_bytes();
        out.extend_from_slice(&key);
        out.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
        out
    }

    /// The next message or close frame; answers pings on the way.
    pub async fn next(&mut self) -> anyhow::Result<Event> {
        loop {
            if let Some(payload) = self.frames.pong.take() {
                self.send(OP_PONG, &payload).await?;
            }
            if let Some(event) = self.frames.parse()? {
                return Ok(event);
            }
            if self.frames.pong.is_some() {
                continue;
            }
            self.frames.buf.reserve(self.chunk);
            let n = if self.stamped {
                self.read_stamped().await?
            } else {
                self.tcp.read_buf(&mut self.frames.buf).await?
            };
            if n == 0 {
                bail!("connection closed");
            }
        }
    }

    /// Sends a close frame (1000) and waits briefly for the server to close.
    pub async fn close(mut self) {
        let polite = async {
            self.send(OP_CLOSE, &1000u16.to_be_bytes()).await?;
            while !matches!(self.next().await?, Event::Close(..)) {}
            anyhow::Ok(())
        };
        let _ = tokio::time::timeout(std::time::Duration::from_millis(200), polite).await;
    }
}

impl FrameReader {
    /// Appends bytes read from the socket.
    pub fn feed(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// The payload of a ping read by [`parse`](Self::parse), to answer with a pong.
    pub fn take_pong(&mut self) -> Option<Bytes> {
        self.pong.take()
    }

    /// Takes whole frames off the buffer until one completes a message, a close frame
    /// arrives, or a ping needs its answer (then `None` with the pong pending).
    pub fn parse(&mut self) -> anyhow::Result<Option<Event>> {
        loop {
            let Some((fin, opcode, header, len)) = frame_head(&self.buf)? else {
                return Ok(None);
            };
            if len > MAX_MESSAGE {
                bail!("frame of {len} bytes is over the {MAX_MESSAGE} byte limit");
            }
            if self.buf.len() < header + len {
                self.buf.reserve(header + len - self.buf.len());
                return Ok(None);
            }
            self.buf.advance(header);
            let payload = self.buf.split_to(len);
            match opcode {
                OP_TEXT | OP_BINARY if self.partial.is_some() => {
                    bail!("new message inside a fragmented one")
                }
                OP_TEXT | OP_BINARY if fin => return Ok(Some(Event::Data(payload.freeze()))),
                OP_TEXT | OP_BINARY => self.partial = Some(payload),
                OP_CONTINUATION => {
                    let Some(mut partial) = self.partial.take() else {
                        bail!("continuation frame without a message to continue");
                    };
                    if partial.len() + payload.len() > MAX_MESSAGE {
                        bail!("fragmented message over the {MAX_MESSAGE} byte limit");
                    }
                    partial.extend_from_slice(&payload);
                    if fin {
                        return Ok(Some(Event::Data(partial.freeze())));
                    }
                    self.partial = Some(partial);
                }
                OP_CLOSE => {
                    let (code, reason) = match payload.len() {
                        0 => (1005, String::new()),
                        1 => bail!("close frame with a one-byte payload"),
                        _ => (
                            u16::from_be_bytes([payload[0], payload[1]]),
                            String::from_utf8_lossy(&payload[2..]).into_owned(),
                        ),
                    };
                    return Ok(Some(Event::Close(code, reason)));
                }
                OP_PING => {
                    self.pong = Some(payload.freeze());
                    return Ok(None);
                }
                OP_PONG => {}
                other => bail!("unknown opcode {other:#x}"),
            }
        }
    }
}

/// One `recvmsg` into `buf`: the bytes read and the receive timestamp of the newest
/// segment they came from (Unix ns), if the kernel gave one.
fn recv_stamped(fd: RawFd, buf: &mut [u8]) -> io::Result<(usize, Option<u64>)> {
    let mut iov = [io::IoSliceMut::new(buf)];
    let mut space = nix::cmsg_space!(nix::sys::time::TimeSpec);
    let msg = recvmsg::<()>(fd, &mut iov, Some(&mut space), MsgFlags::empty())?;
    let mut stamp = None;
    for cmsg in msg.cmsgs()? {
        if let ControlMessageOwned::ScmTimestampns(t) = cmsg {
            stamp = Some(t.tv_sec() as u64 * 1_000_000_000 + t.tv_nsec() as u64);
        }
    }
    Ok((msg.bytes, stamp))
}

/// `(fin, opcode, header length, payload length)` of the frame at the start of `buf`,
/// `None` while its header is incomplete.
fn frame_head(buf: &[u8]) -> anyhow::Result<Option<(bool, u8, usize, usize)>> {
    let [b0, b1, ..] = *buf else {
        return Ok(None);
    };
    if b0 & 0x70 != 0 {
        bail!("frame with RSV bits set (no extension was negotiated)");
    }
    if b1 & 0x80 != 0 {
        bail!("masked frame from the server");
    }
    let (header, len) = match b1 & 0x7f {
        126 => match buf.get(2..4) {
            Some(b) => (4, u64::from(u16::from_be_bytes([b[0], b[1]]))),
            None => return Ok(None),
        },
        127 => match buf.get(2..10) {
            Some(b) => (10, u64::from_be_bytes(b.try_into().expect("eight bytes"))),
            None => return Ok(None),
        },
        n => (2, u64::from(n)),
    };
    let len = usize::try_from(len).unwrap_or(usize::MAX);
    Ok(Some((b0 & 0x80 != 0, b0 & 0x0f, header, len)))
}

fn accept_key(key: &str) -> String {
    let mut sha = Sha1::new();
    sha.update(key.as_bytes());
    sha.update(b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11");
    base64::engine::general_purpose::STANDARD.encode(sha.finalize())
}

/// The value of header `name` (lower case) in a response head.
fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().skip(1).find_map(|line| {
        let (k, v) = line.split_once(':')?;
        k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    /// A server side written by hand: answers the upgrade, then sends `frames`.
    async fn serve(frames: Vec<Vec<u8>>) -> (String, tokio::task::JoinHandle<Vec<u8>>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!(
            "ws://{}/connection/websocket",
            listener.local_addr().unwrap()
        );
        let task = tokio::spawn(async move {
            let (mut s, mut out) = accept_upgrade(&listener).await;
            // The first frame rides in the same segment as the response head.
            for f in frames {
                out.extend_from_slice(&f);
            }
            s.write_all(&out).await.unwrap();
            let mut got = Vec::new();
            let _ = tokio::time::timeout(
                std::time::Duration::from_millis(300),
                s.read_to_end(&mut got),
            )
            .await;
            got
        });
        (url, task)
    }

    /// Accepts one connection and reads its upgrade request; returns the socket and
    /// the response head to send.
    async fn accept_upgrade(listener: &TcpListener) -> (TcpStream, Vec<u8>) {
        let (mut s, _) = listener.accept().await.unwrap();
        let mut head = Vec::new();
        while memchr::memmem::find(&head, b"\r\n\r\n").is_none() {
            let mut b = [0u8; 512];
            let n = s.read(&mut b).await.unwrap();
            head.extend_from_slice(&b[..n]);
        }
        let text = String::from_utf8(head).unwrap();
        assert!(text.starts_with("GET /connection/websocket HTTP/1.1\r\n"));
        let key = header(&text, "sec-websocket-key").unwrap();
        let out = format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Accept: {}\r\n\r\n",
            accept_key(key)
        )
        .into_bytes();
        (s, out)
    }

    fn server_frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
        let mut f = vec![if fin { 0x80 } else { 0 } | opcode];
        match payload.len() {
            n @ 0..=125 => f.push(n as u8),
            n @ 126..=0xFFFF => {
                f.push(126);
                f.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                f.push(127);
                f.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        f.extend_from_slice(payload);
        f
    }

    /// Unmasks the client frames the server received: `(opcode, payload)` each.
    fn client_frames(mut bytes: &[u8]) -> Vec<(u8, Vec<u8>)> {
        let mut out = Vec::new();
        while bytes.len() >= 2 {
            assert_eq!(bytes[1] & 0x80, 0x80, "client frames are masked");
            let (header, len) = match bytes[1] & 0x7f {
                126 => (4, u16::from_be_bytes([bytes[2], bytes[3]]) as usize),
                n => (2, n as usize),
            };
            let key = &bytes[header..header + 4];
            let body = &bytes[header + 4..header + 4 + len];
            out.push((
                bytes[0] & 0x0f,
                body.iter()
                    .enumerate()
                    .map(|(i, b)| b ^ key[i % 4])
                    .collect(),
            ));
            bytes = &bytes[header + 4 + len..];
        }
        out
    }

    #[tokio::test]
    async fn stamped_reads_tell_when_the_bytes_arrived_not_when_they_were_read() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let url = format!("ws://{addr}/connection/websocket");
        // Each request makes the server send one frame and say when it started to.
        let (send, mut requests) = tokio::sync::mpsc::channel::<&'static [u8]>(1);
        let (sent, mut sent_at) = tokio::sync::mpsc::channel::<u64>(1);
        let server = tokio::spawn(async move {
            let (mut s, head) = accept_upgrade(&listener).await;
            s.write_all(&head).await.unwrap();
            while let Some(payload) = requests.recv().await {
                let before = crate::client::now_ns();
                s.write_all(&server_frame(true, OP_TEXT, payload))
                    .await
                    .unwrap();
                sent.send(before).await.unwrap();
            }
        });
        let tcp = TcpStream::connect(addr).await.unwrap();
        let mut ws = WsWire::connect(tcp, &url, None, 1024).await.unwrap();
        assert_eq!(ws.arrived_ns(), None);
        ws.stamp_arrivals().unwrap();
        // The kernel turns stamping on shortly after the first socket asks for it.
        let mut stamped = false;
        for _ in 0..200 {
            send.send(b"warm-up").await.unwrap();
            sent_at.recv().await.unwrap();
            assert_eq!(
                ws.next().await.unwrap(),
                Event::Data(Bytes::from("warm-up"))
            );
            if ws.arrived_ns().is_some() {
                stamped = true;
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        assert!(stamped, "no read was stamped within two seconds");

        send.send(b"late").await.unwrap();
        let before = sent_at.recv().await.unwrap();
        // The frame sits in the socket while this tool is busy elsewhere.
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        assert_eq!(ws.next().await.unwrap(), Event::Data(Bytes::from("late")));
        let read_at = crate::client::now_ns();
        let arrived = ws.arrived_ns().unwrap();
        assert!(
            arrived >= before,
            "arrived {arrived} before it was sent {before}"
        );
        assert!(
            read_at - arrived >= 90_000_000,
            "the stamp is the read time ({} ms before it), not the arrival",
            (read_at - arrived) / 1_000_000
        );
        drop((send, ws));
        server.await.unwrap();
    }

    #[tokio::test]
    async fn reads_messages_fragments_and_pings_and_masks_what_it_sends() {
        let big = vec![b'x'; 70_000];
        let frames = vec![
            server_frame(true, OP_TEXT, b"{\"a\":1}"),
            server_frame(true, OP_PING, b"p1"),
            server_frame(false, OP_BINARY, b"he"),
            server_frame(false, OP_CONTINUATION, b"ll"),
            server_frame(true, OP_CONTINUATION, b"o"),
            server_frame(true, OP_BINARY, &big),
            server_frame(true, OP_CLOSE, b"\x0f\xa0bye"),
        ];
        let (url, server) = serve(frames).await;
        let tcp = TcpStream::connect(url[5..].split('/').next().unwrap())
            .await
            .unwrap();
        let mut ws = WsWire::connect(tcp, &url, None, 1024).await.unwrap();
        assert_eq!(
            ws.next().await.unwrap(),
            Event::Data(Bytes::from("{\"a\":1}"))
        );
        assert_eq!(ws.next().await.unwrap(), Event::Data(Bytes::from("hello")));
        assert_eq!(ws.next().await.unwrap(), Event::Data(Bytes::from(big)));
        assert_eq!(
            ws.next().await.unwrap(),
            Event::Close(4000, "bye".to_owned())
        );
        ws.send(OP_TEXT, &[7u8; 300]).await.unwrap();
        drop(ws);
        let sent = client_frames(&server.await.unwrap());
        assert_eq!(
            sent,
            vec![(OP_PONG, b"p1".to_vec()), (OP_TEXT, vec![7u8; 300])]
        );
    }

    #[test]
    fn a_frame_split_across_reads_comes_out_once_whole() {
        let mut frame = server_frame(true, OP_TEXT, &[b'a'; 300]);
        frame.extend_from_slice(&server_frame(true, OP_PING, b"p"));
        let mut reader = FrameReader::default();
        // Header only, then part of the 2-byte extended length, then the rest.
        reader.feed(&frame[..1]);
        assert_eq!(reader.parse().unwrap(), None);
        reader.feed(&frame[1..3]);
        assert_eq!(reader.parse().unwrap(), None);
        reader.feed(&frame[3..200]);
        assert_eq!(reader.parse().unwrap(), None);
        reader.feed(&frame[200..]);
        assert_eq!(
            reader.parse().unwrap(),
            Some(Event::Data(Bytes::from(vec![b'a'; 300])))
        );
        assert_eq!(reader.parse().unwrap(), None);
        assert_eq!(reader.take_pong(), Some(Bytes::from_static(b"p")));
        assert_eq!(reader.parse().unwrap(), None);
        assert_eq!(reader.take_pong(), None);
    }

    #[tokio::test]
    async fn refuses_a_bad_accept_key_and_masked_server_frames() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut b = [0u8; 1024];
            let _ = s.read(&mut b).await.unwrap();
            s.write_all(b"HTTP/1.1 101 OK\r\nSec-WebSocket-Accept: nope\r\n\r\n")
                .await
                .unwrap();
        });
        let tcp = TcpStream::connect(addr).await.unwrap();
        let err = WsWire::connect(tcp, &format!("ws://{addr}/"), None, 1024)
            .await
            .unwrap_err();
        assert!(err.to_string().contains("Sec-WebSocket-Accept"), "{err}");

        let mut masked = server_frame(true, OP_TEXT, b"x");
        masked[1] |= 0x80;
        let (url, _server) = serve(vec![masked]).await;
        let tcp = TcpStream::connect(url[5..].split('/').next().unwrap())
            .await
            .unwrap();
        let mut ws = WsWire::connect(tcp, &url, None, 1024).await.unwrap();
        let err = ws.next().await.unwrap_err();
        assert!(err.to_string().contains("masked"), "{err}");
    }
}
