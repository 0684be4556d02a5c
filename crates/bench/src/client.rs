//! The bench client: a bare WebSocket connection ([`ws`]), or an
//! HTTP-streaming / SSE stream ([`emulated`](crate::emulated)), speaking just enough of
//! the Centrifugal protocol (connect, subscribe, publish, pong), one task per connection.

use std::net::{IpAddr, SocketAddr};

use anyhow::{Context, anyhow, bail};
use bytes::{Bytes, BytesMut};
use gyre_protocol::{Protocol, encode_command, proto};
use tokio::net::{TcpSocket, TcpStream};

use crate::emulated::{Kind, StreamWire};
use crate::frame::{self, Inbound};
use crate::ws::{self, Event, WsWire};

/// The transport of the bench connections.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Transport {
    /// WebSocket at the `--server` URL.
    #[default]
    Websocket,
    /// Bidirectional HTTP-streaming: `POST /connection/http_stream` on the same
    /// address, later commands through `POST /emulation`.
    #[value(name = "http_stream", alias = "http-stream")]
    HttpStream,
    /// Server-sent events: `GET /connection/sse?cf_connect=…` on the same address,
    /// later commands through `POST /emulation`.
    Sse,
}

impl Transport {
    /// Name in reports.
    pub fn name(self) -> &'static str {
        match self {
            Transport::Websocket => "websocket",
            Transport::HttpStream => "http_stream",
            Transport::Sse => "sse",
        }
    }
}

/// How to open connections.
#[derive(Debug, Clone)]
pub struct Dialer {
    /// `ws://host:port/path` of the server.
    pub url: String,
    /// The server address, resolved once.
    pub addr: SocketAddr,
    /// Encoding of every connection.
    pub protocol: Protocol,
    /// Connect token (empty = anonymous).
    pub token: String,
    /// Local addresses to spread connections over (empty = the OS picks).
    pub source_ips: Vec<IpAddr>,
    /// How much buffer room each socket read asks for (allocated on the first read).
    pub read_buffer: usize,
    /// WebSocket, or a streamed transport on the same address (JSON only).
    pub transport: Transport,
    /// Subscribers time deliveries by the kernel's receive timestamp (WebSocket only).
    pub socket_clock: bool,
}

impl Dialer {
    /// Resolves `url` once.
    pub async fn new(url: &str, protocol: Protocol) -> anyhow::Result<Dialer> {
        let rest = url
            .strip_prefix("ws://")
            .ok_or_else(|| anyhow!("only ws:// URLs are supported: {url}"))?;
        let hostport = rest.split('/').next().unwrap_or(rest);
        let addr = tokio::net::lookup_host(hostport)
            .await
            .with_context(|| format!("resolving {hostport}"))?
            .next()
            .ok_or_else(|| anyhow!("{hostport} resolves to nothing"))?;
        Ok(Dialer {
            url: url.to_owned(),
            addr,
            protocol,
            token: String::new(),
            source_ips: Vec::new(),
            read_buffer: 16 * 1024,
            transport: Transport::Websocket,
            socket_clock: false,
        })
    }

    /// Opens connection number `index` (used to pick a source address) and completes
    /// the WebSocket handshake; a streamed transport sends nothing until the first
    /// commands, which open the stream.
    pub async fn open(&self, index: usize) -> anyhow::Result<Conn> {
        let stream = match self.source_ips.get(index % self.source_ips.len().max(1)) {
            Some(ip) => {
                let socket = match ip {
                    IpAddr::V4(_) => TcpSocket::new_v4()?,
                    IpAddr::V6(_) => TcpSocket::new_v6()?,
                };
                socket.bind(SocketAddr::new(*ip, 0))?;
                socket.connect(self.addr).await?
            }
            None => TcpStream::connect(self.addr).await?,
        };
        stream.set_nodelay(true)?;
        let kind = match self.transport {
            Transport::Websocket => None,
            Transport::HttpStream => Some(Kind::HttpStream),
            Transport::Sse => Some(Kind::Sse),
        };
        if let Some(kind) = kind {
            if self.protocol != Protocol::Json {
                bail!("{} is benchmarked with JSON only", self.transport.name());
            }
            return Ok(Conn {
                wire: Wire::Stream(Box::new(StreamWire::new(kind, self.addr, stream))),
                protocol: self.protocol,
                next_id: 1,
            });
        }
        let subprotocol = (self.protocol == Protocol::Protobuf).then_some("centrifuge-protobuf");
        let mut ws = WsWire::connect(stream, &self.url, subprotocol, self.read_buffer).await?;
        if self.socket_clock {
            ws.stamp_arrivals()?;
        }
        Ok(Conn {
            wire: Wire::Ws(ws),
            protocol: self.protocol,
            next_id: 1,
        })
    }

    /// Opens a connection and sends `connect` (plus `subscribe` to each of `channels`
    /// in the same frame, as the JS SDK does); returns once every reply arrived.
    /// Gives up after [`OPEN_TIMEOUT`]: a server out of file descriptors leaves
    /// connections in its accept backlog, and a run must end by itself.
    pub async fn open_subscribed(&self, index: usize, channels: &[String]) -> anyhow::Result<Conn> {
        let open = async {
            let mut conn = self.open(index).await?;
            conn.handshake(&self.token, channels).await?;
            Ok(conn)
        };
        match tokio::time::timeout(OPEN_TIMEOUT, open).await {
            Ok(result) => result,
            Err(_) => anyhow::bail!("no connect reply within {OPEN_TIMEOUT:?}"),
        }
    }
}

/// How long opening a connection (TCP, WebSocket handshake, `connect` and `subscribe`
/// replies) may take.
pub const OPEN_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Counters a reading connection updates per frame.
pub trait Sink {
    /// One publication with a bench payload arrived; `now_ns` is the frame's receive
    /// time (Unix ns).
    fn publication(&mut self, seq: u64, send_ns: u64, now_ns: u64);
    /// One frame of `bytes` bytes was read (after its publications were counted).
    fn frame(&mut self, bytes: usize);
}

/// An open bench connection.
#[derive(Debug)]
pub struct Conn {
    wire: Wire,
    protocol: Protocol,
    next_id: u32,
}

#[derive(Debug)]
enum Wire {
    Ws(WsWire),
    Stream(Box<StreamWire>),
}

/// Unix time in nanoseconds.
pub fn now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

impl Conn {
    /// Encoding of this connection.
    pub fn protocol(&self) -> Protocol {
        self.protocol
    }

    fn command(&mut self, fill: impl FnOnce(&mut proto::Command), out: &mut BytesMut) -> u32 {
        let id = self.next_id;
        self.next_id += 1;
        let mut cmd = proto::Command {
            id,
            ..Default::default()
        };
        fill(&mut cmd);
        if !out.is_empty() {
            out.extend_from_slice(self.protocol.frame_separator());
        }
        encode_command(self.protocol, &cmd, out).expect("bench commands always encode");
        id
    }

    async fn send_frame(&mut self, frame: BytesMut) -> anyhow::Result<()> {
        let ws = match &mut self.wire {
            Wire::Ws(ws) => ws,
            Wire::Stream(s) => return s.send(&frame).await,
        };
        let opcode = match self.protocol {
            Protocol::Json => ws::OP_TEXT,
            Protocol::Protobuf => ws::OP_BINARY,
        };
        ws.send(opcode, &frame).await
    }

    /// Sends `connect` + one `subscribe` per channel in one frame and waits for all replies.
    pub async fn handshake(&mut self, token: &str, channels: &[String]) -> anyhow::Result<()> {
        let mut out = BytesMut::new();
        let mut pending = vec![self.command(
            |c| {
                c.connect = Some(proto::ConnectRequest {
                    token: token.to_owned(),
                    name: "gyre-bench".into(),
                    ..Default::default()
                })
            },
            &mut out,
        )];
        for ch in channels {
            pending.push(self.command(
                |c| {
                    c.subscribe = Some(proto::SubscribeRequest {
                        channel: ch.clone(),
                        ..Default::default()
                    })
                },
                &mut out,
            ));
        }
        let connect_id = pending[0];
        self.send_frame(out).await?;
        while !pending.is_empty() {
            let frame = self.next_frame().await?;
            for rec in frame::split(self.protocol, frame) {
                let rec = rec?;
                match frame::classify(self.protocol, &rec)? {
                    Inbound::Reply { id, error } => {
                        if let Some((code, message)) = error {
                            bail!("command {id} failed: {code} {message}");
                        }
                        if id == connect_id
                            && let Wire::Stream(s) = &mut self.wire
                        {
                            let reply: serde_json::Value = serde_json::from_slice(&rec.body)?;
                            let field = |k: &str| {
                                reply["connect"][k].as_str().unwrap_or_default().to_owned()
                            };
                            s.set_session(field("node"), field("session"));
                        }
                        pending.retain(|&p| p != id);
                    }
                    Inbound::Disconnect(code, reason) => bail!("disconnected: {code} {reason}"),
                    Inbound::Ping => self.pong().await?,
                    _ => {}
                }
            }
        }
        Ok(())
    }

    /// Publishes `data` into `channel` and waits for the reply.
    pub async fn publish(&mut self, channel: &str, data: Vec<u8>) -> anyhow::Result<()> {
        let mut out = BytesMut::new();
        let id = self.command(
            |c| {
                c.publish = Some(proto::PublishRequest {
                    channel: channel.to_owned(),
                    data: data.into(),
                    ..Default::default()
                })
            },
            &mut out,
        );
        self.send_frame(out).await?;
        loop {
            let frame = self.next_frame().await?;
            for rec in frame::split(self.protocol, frame) {
                match frame::classify(self.protocol, &rec?)? {
                    Inbound::Reply { id: got, error } if got == id => {
                        if let Some((code, message)) = error {
                            bail!("publish failed: {code} {message}");
                        }
                        return Ok(());
                    }
                    Inbound::Disconnect(code, reason) => bail!("disconnected: {code} {reason}"),
                    Inbound::Ping => self.pong().await?,
                    _ => {}
                }
            }
        }
    }

    async fn pong(&mut self) -> anyhow::Result<()> {
        let frame = match self.protocol {
            Protocol::Json => BytesMut::from(&b"{}"[..]),
            Protocol::Protobuf => BytesMut::from(&[0u8][..]),
        };
        self.send_frame(frame).await
    }

    /// The payload of the next data frame (answers WebSocket pings on the way).
    async fn next_frame(&mut self) -> anyhow::Result<Bytes> {
        let ws = match &mut self.wire {
            Wire::Ws(ws) => ws,
            Wire::Stream(s) => return s.next_frame().await,
        };
        match ws.next().await? {
            Event::Data(payload) => Ok(payload),
            Event::Close(code, reason) => bail!("closed by server: {code} {reason}"),
        }
    }

    /// Reads until `stop` fires or the connection ends, feeding `sink`. Server pings
    /// are answered. Returns the reason reading ended early, if it did.
    pub async fn read_until<S: Sink>(
        &mut self,
        sink: &mut S,
        stop: &tokio_util::sync::CancellationToken,
    ) -> Option<String> {
        loop {
            let frame = tokio::select! {
                biased;
                frame = self.next_frame() => frame,
                () = stop.cancelled() => return None,
            };
            let frame = match frame {
                Ok(f) => f,
                Err(e) => return Some(e.to_string()),
            };
            let len = frame.len();
            let now = match &self.wire {
                Wire::Ws(ws) => ws.arrived_ns(),
                Wire::Stream(_) => None,
            }
            .unwrap_or_else(now_ns);
            let mut ping = false;
            let mut disconnect = None;
            let scanned = frame::scan(self.protocol, &frame, |inbound| match inbound {
                Inbound::Pub { seq, send_ns } => sink.publication(seq, send_ns, now),
                Inbound::Ping => ping = true,
                Inbound::Disconnect(code, reason) if disconnect.is_none() => {
                    disconnect = Some(format!("disconnected: {code} {reason}"));
                }
                _ => {}
            });
            if let Err(e) = scanned {
                return Some(e.to_string());
            }
            if disconnect.is_some() {
                return disconnect;
            }
            sink.frame(len);
            if ping && let Err(e) = self.pong().await {
                return Some(e.to_string());
            }
        }
    }

    /// Closes the connection politely, without waiting long.
    pub async fn close(self) {
        match self.wire {
            Wire::Ws(ws) => ws.close().await,
            Wire::Stream(s) => s.close().await,
        }
    }
}
