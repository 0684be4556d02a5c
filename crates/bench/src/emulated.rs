//! The wire of an HTTP-streaming or SSE bench connection, over a raw `TcpStream` like
//! the API client: the first commands open the stream (`POST /connection/http_stream`
//! body, or `GET /connection/sse?cf_connect=…`), later ones go through
//! `POST /emulation` on a keep-alive connection of their own. Inbound bytes are
//! de-chunked and cut into whole messages, handed on newline-joined so that
//! [`frame::split`](crate::frame::split) reads them as it reads a JSON WebSocket frame.

use std::net::SocketAddr;

use anyhow::{Context, anyhow, bail};
use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Path of the HTTP-streaming endpoint.
pub const HTTP_STREAM_PATH: &str = "/connection/http_stream";
/// Path of the SSE endpoint.
pub const SSE_PATH: &str = "/connection/sse";
/// Path of the endpoint for the commands after the first ones.
pub const EMULATION_PATH: &str = "/emulation";

/// Which streamed transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Newline-delimited JSON in a chunked `POST` response.
    HttpStream,
    /// `data: …\n\n` events in a chunked `GET` response.
    Sse,
}

/// Where the chunked-transfer decoder stands.
#[derive(Debug, Clone, Copy)]
enum Chunk {
    /// Before the response head.
    Head,
    /// Expecting a chunk-size line.
    Size,
    /// Inside a chunk, this many bytes to go.
    Data(usize),
    /// After a chunk's data, expecting its `\r\n`.
    DataEnd,
    /// A body without chunked encoding: everything until EOF.
    Raw,
}

/// One streamed connection.
#[derive(Debug)]
pub struct StreamWire {
    kind: Kind,
    addr: SocketAddr,
    tcp: TcpStream,
    started: bool,
    state: Chunk,
    /// Bytes read from the socket, not yet de-chunked.
    raw: BytesMut,
    /// De-chunked body bytes not yet cut into messages.
    body: BytesMut,
    node: String,
    session: String,
    emulation: Option<EmulationConn>,
}

impl StreamWire {
    /// A wire over an open TCP connection; nothing is sent until [`send`](Self::send).
    pub fn new(kind: Kind, addr: SocketAddr, tcp: TcpStream) -> StreamWire {
        StreamWire {
            kind,
            addr,
            tcp,
            started: false,
            state: Chunk::Head,
            raw: BytesMut::with_capacity(32 * 1024),
            body: BytesMut::with_capacity(32 * 1024),
            node: String::new(),
            session: String::new(),
            emulation: None,
        }
    }

    /// Records the `node` and `session` of the connect reply, for `/emulation`.
    pub fn set_session(&mut self, node: String, session: String) {
        self.node = node;
        self.session = session;
    }

    /// Sends newline-joined JSON commands: the first call opens the stream, later ones
    /// are `POST /emulation` requests.
    pub async fn send(&mut self, commands: &[u8]) -> anyhow::Result<()> {
        if !self.started {
            self.started = true;
            let host = self.addr.to_string();
            let req = match self.kind {
                Kind::HttpStream => {
                    let mut req = format!(
                        "POST {HTTP_STREAM_PATH} HTTP/1.1\r\nHost: {host}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n",
                        commands.len()
                    )
                    .into_bytes();
                    req.extend_from_slice(commands);
                    req
                }
                Kind::Sse => format!(
                    "GET {SSE_PATH}?cf_connect={} HTTP/1.1\r\nHost: {host}\r\nAccept: text/event-stream\r\n\r\n",
                    percent_encode(commands)
                )
                .into_bytes(),
            };
            self.tcp.write_all(&req).await?;
            return Ok(());
        }
        if self.session.is_empty() {
            bail!("no session from the connect reply: cannot use {EMULATION_PATH}");
        }
        let data = std::str::from_utf8(commands).context("commands are not UTF-8")?;
        let body = serde_json::to_vec(&serde_json::json!({
            "node": self.node,
            "session": self.session,
            "data": data,
        }))?;
        // One retry on a fresh connection: the server may have closed an idle keep-alive.
        for attempt in 0..2 {
            if self.emulation.is_none() {
                self.emulation = Some(EmulationConn::connect(self.addr).await?);
            }
            let conn = self.emulation.as_mut().expect("just set");
            match conn.post(&body).await {
                Ok(()) => return Ok(()),
                Err(e) if attempt == 0 && e.downcast_ref::<std::io::Error>().is_some() => {
                    self.emulation = None;
                }
                Err(e) => return Err(e),
            }
        }
        unreachable!("the second attempt returns")
    }

    /// The next whole messages of the stream, newline-joined.
    pub async fn next_frame(&mut self) -> anyhow::Result<Bytes> {
        loop {
            self.dechunk()?;
            if let Some(frame) = self.cut() {
                return Ok(frame);
            }
            if self.tcp.read_buf(&mut self.raw).await? == 0 {
                bail!("stream closed by server");
            }
        }
    }

    /// Moves what `raw` holds of the body into `body`.
    fn dechunk(&mut self) -> anyhow::Result<()> {
        loop {
            match self.state {
                Chunk::Head => {
                    let Some(end) = memchr::memmem::find(&self.raw, b"\r\n\r\n") else {
                        return Ok(());
                    };
                    let head = self.raw.split_to(end + 4);
                    let head = std::str::from_utf8(&head).context("response head is not UTF-8")?;
                    let status = head.split(' ').nth(1).unwrap_or_default();
                    if status != "200" {
                        bail!(
                            "stream request answered {:?}",
                            head.lines().next().unwrap_or_default()
                        );
                    }
                    let chunked = head.lines().any(|l| {
                        l.split_once(':').is_some_and(|(n, v)| {
                            n.eq_ignore_ascii_case("transfer-encoding")
                                && v.trim().eq_ignore_ascii_case("chunked")
                        })
                    });
                    self.state = if chunked { Chunk::Size } else { Chunk::Raw };
                }
                Chunk::Size => {
                    let Some(end) = memchr::memmem::find(&self.raw, b"\r\n") else {
                        return Ok(());
                    };
                    let line = self.raw.split_to(end + 2);
                    let line = std::str::from_utf8(&line[..end]).context("bad chunk size")?;
                    let hex = line.split(';').next().unwrap_or_default().trim();
                    let size = usize::from_str_radix(hex, 16)
                        .map_err(|_| anyhow!("bad chunk size {line:?}"))?;
                    if size == 0 {
                        bail!("stream ended by server");
                    }
                    self.state = Chunk::Data(size);
                }
                Chunk::Data(left) => {
                    if self.raw.is_empty() {
                        return Ok(());
                    }
                    let n = left.min(self.raw.len());
                    self.body.extend_from_slice(&self.raw[..n]);
                    self.raw.advance(n);
                    self.state = if n == left {
                        Chunk::DataEnd
                    } else {
                        Chunk::Data(left - n)
                    };
                }
                Chunk::DataEnd => {
                    if self.raw.len() < 2 {
                        return Ok(());
                    }
                    if &self.raw[..2] != b"\r\n" {
                        bail!("chunk not followed by CRLF");
                    }
                    self.raw.advance(2);
                    self.state = Chunk::Size;
                }
                Chunk::Raw => {
                    let raw = self.raw.split();
                    self.body.extend_from_slice(&raw);
                    return Ok(());
                }
            }
        }
    }

    /// Takes the whole messages at the front of `body`, if any.
    fn cut(&mut self) -> Option<Bytes> {
        match self.kind {
            Kind::HttpStream => {
                let end = memchr::memrchr(b'\n', &self.body)?;
                let lines = self.body.split_to(end + 1).freeze();
                if !lines.starts_with(b"\n") && memchr::memmem::find(&lines, b"\n\n").is_none() {
                    return Some(lines);
                }
                // Blank lines between messages are dropped: a JSON frame has none.
                let mut out = BytesMut::with_capacity(lines.len());
                for line in lines[..].split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
                    out.extend_from_slice(line);
                    out.extend_from_slice(b"\n");
                }
                (!out.is_empty()).then(|| out.freeze())
            }
            Kind::Sse => {
                let end = memchr::memmem::rfind(&self.body, b"\n\n")?;
                let events = self.body.split_to(end + 2);
                let mut out = BytesMut::with_capacity(events.len());
                for line in events[..].split(|&b| b == b'\n') {
                    let line = line.strip_suffix(b"\r").unwrap_or(line);
                    if let Some(data) = line.strip_prefix(b"data:") {
                        let data = data.strip_prefix(b" ").unwrap_or(data);
                        if !data.is_empty() {
                            out.extend_from_slice(data);
                            out.extend_from_slice(b"\n");
                        }
                    }
                }
                (!out.is_empty()).then(|| out.freeze())
            }
        }
    }

    /// Closes the stream.
    pub async fn close(mut self) {
        let _ = self.tcp.shutdown().await;
    }
}

/// A keep-alive connection for `POST /emulation`.
#[derive(Debug)]
struct EmulationConn {
    tcp: TcpStream,
    host: String,
    buf: BytesMut,
}

impl EmulationConn {
    async fn connect(addr: SocketAddr) -> anyhow::Result<EmulationConn> {
        let tcp = TcpStream::connect(addr).await?;
        tcp.set_nodelay(true)?;
        Ok(EmulationConn {
            tcp,
            host: addr.to_string(),
            buf: BytesMut::with_capacity(1024),
        })
    }

    /// Posts `body`; the server answers 204 once it handled the commands.
    async fn post(&mut self, body: &[u8]) -> anyhow::Result<()> {
        let mut req = format!(
            "POST {EMULATION_PATH} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            self.host,
            body.len()
        )
        .into_bytes();
        req.extend_from_slice(body);
        self.tcp.write_all(&req).await?;
        let end = loop {
            if let Some(i) = memchr::memmem::find(&self.buf, b"\r\n\r\n") {
                break i + 4;
            }
            if self.tcp.read_buf(&mut self.buf).await? == 0 {
                return Err(std::io::Error::from(std::io::ErrorKind::UnexpectedEof).into());
            }
        };
        let head = self.buf.split_to(end);
        let head = String::from_utf8_lossy(&head);
        let status = head.split(' ').nth(1).unwrap_or_default().to_owned();
        let length: usize = head
            .lines()
            .find_map(|l| {
                let (n, v) = l.split_once(':')?;
                n.eq_ignore_ascii_case("content-length")
                    .then(|| v.trim().parse().ok())?
            })
            .unwrap_or(0);
        while self.buf.len() < length {
            if self.tcp.read_buf(&mut self.buf).await? == 0 {
                bail!("emulation response cut short");
            }
        }
        self.buf.advance(length);
        if !status.starts_with('2') {
            bail!(
                "{EMULATION_PATH} answered {:?}",
                head.lines().next().unwrap_or_default()
            );
        }
        Ok(())
    }
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
pub fn percent_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 3);
    for &b in bytes {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_encoding_keeps_unreserved_only() {
        assert_eq!(
            percent_encode(b"{\"a\":1}\nx-_.~"),
            "%7B%22a%22%3A1%7D%0Ax-_.~"
        );
    }
}
