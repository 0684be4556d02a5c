//! The reference "limit" server: the smallest sensible tokio WebSocket broadcast server
//! that the bench clients can talk to.
//!
//! It answers `connect` / `subscribe` / `publish` with fixed minimal replies, accepts
//! `POST /api/publish` (raw HTTP/1.1, keep-alive), encodes each publication once per
//! protocol and appends the shared bytes to every subscriber's queue; each
//! connection's task drains its whole queue into one frame per write. No history, no
//! presence, no pings, no limits: what a trivial server can do is the figure Gyre is
//! measured against.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::{Context, bail};
use bytes::{Bytes, BytesMut};
use futures_util::{SinkExt, StreamExt};
use gyre_protocol::{Protocol, decode_commands, encode_push, encode_reply, proto};
use parking_lot::{Mutex, RwLock};
use serde::Deserialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

struct Peer {
    id: u64,
    protocol: Protocol,
    queue: Mutex<Vec<Bytes>>,
    wake: Notify,
}

#[derive(Default)]
struct State {
    channels: RwLock<HashMap<String, Vec<Arc<Peer>>>>,
    next_id: AtomicU64,
}

impl State {
    fn broadcast(&self, channel: &str, data: Bytes) {
        let channels = self.channels.read();
        let Some(peers) = channels.get(channel) else {
            return;
        };
        let push = proto::Push {
            channel: channel.to_owned(),
            r#pub: Some(proto::Publication {
                data,
                ..Default::default()
            }),
            ..Default::default()
        };
        let mut encoded: [Option<Bytes>; 2] = [None, None];
        for peer in peers {
            let slot = &mut encoded[peer.protocol as usize];
            let bytes = match slot {
                Some(b) => b.clone(),
                None => {
                    let mut out = BytesMut::new();
                    if encode_push(peer.protocol, &push, &mut out).is_err() {
                        continue;
                    }
                    slot.insert(out.freeze()).clone()
                }
            };
            let mut q = peer.queue.lock();
            q.push(bytes);
            if q.len() == 1 {
                drop(q);
                peer.wake.notify_one();
            }
        }
    }

    fn subscribe(&self, channel: &str, peer: &Arc<Peer>) {
        self.channels
            .write()
            .entry(channel.to_owned())
            .or_default()
            .push(peer.clone());
    }

    fn remove(&self, peer: &Peer, channels: &[String]) {
        let mut map = self.channels.write();
        for ch in channels {
            if let Some(v) = map.get_mut(ch) {
                v.retain(|p| p.id != peer.id);
                if v.is_empty() {
                    map.remove(ch);
                }
            }
        }
    }
}

/// Serves the reference server on `listener` until the process ends.
pub async fn serve(listener: TcpListener) -> anyhow::Result<()> {
    let state = Arc::new(State::default());
    loop {
        let (stream, _) = listener.accept().await?;
        let state = state.clone();
        tokio::spawn(async move {
            let _ = stream.set_nodelay(true);
            let mut head = [0u8; 4];
            let mut n = 0;
            while n < 4 {
                match stream.peek(&mut head).await {
                    Ok(0) | Err(_) => return,
                    Ok(got) => n = got,
                }
                if n < 4 {
                    tokio::time::sleep(std::time::Duration::from_millis(1)).await;
                }
            }
            let res = if &head == b"POST" {
                serve_api(stream, &state).await
            } else {
                serve_ws(stream, &state).await
            };
            if let Err(e) = res {
                tracing_free_log(&e);
            }
        });
    }
}

fn tracing_free_log(e: &anyhow::Error) {
    if std::env::var_os("GYRE_BENCH_DEBUG").is_some() {
        eprintln!("reference: {e:#}");
    }
}

/// Binds `127.0.0.1:port` (or `0.0.0.0:port`) and serves in the background.
pub async fn spawn(addr: SocketAddr) -> anyhow::Result<SocketAddr> {
    let listener = TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    tokio::spawn(serve(listener));
    Ok(local)
}

// The handshake callback's error type is tungstenite's `ErrorResponse`, not ours.
#[allow(clippy::result_large_err)]
async fn serve_ws(stream: TcpStream, state: &State) -> anyhow::Result<()> {
    let mut protocol = Protocol::Json;
    let callback = |req: &Request, mut resp: Response| {
        let query = req.uri().query().unwrap_or("");
        if query
            .split('&')
            .any(|kv| kv == "format=protobuf" || kv == "cf_protocol=protobuf")
        {
            protocol = Protocol::Protobuf;
        }
        let offered = req
            .headers()
            .get_all("Sec-WebSocket-Protocol")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .find_map(|p| match p {
                "centrifuge-protobuf" => Some("centrifuge-protobuf"),
                "centrifuge-json" => Some("centrifuge-json"),
                _ => None,
            });
        if let Some(p) = offered {
            if p == "centrifuge-protobuf" {
                protocol = Protocol::Protobuf;
            }
            resp.headers_mut()
                .insert("Sec-WebSocket-Protocol", HeaderValue::from_static(p));
        }
        Ok(resp)
    };
    let config = WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(0);
    let mut ws =
        tokio_tungstenite::accept_hdr_async_with_config(stream, callback, Some(config)).await?;
    let peer = Arc::new(Peer {
        id: state.next_id.fetch_add(1, Ordering::Relaxed),
        protocol,
        queue: Mutex::new(Vec::new()),
        wake: Notify::new(),
    });
    let mut subscribed: Vec<String> = Vec::new();
    let res: anyhow::Result<()> = async {
        let mut frame = BytesMut::new();
        loop {
            tokio::select! {
                () = peer.wake.notified() => {
                    let batch = std::mem::take(&mut *peer.queue.lock());
                    if batch.is_empty() {
                        continue;
                    }
                    frame.clear();
                    for (i, m) in batch.iter().enumerate() {
                        if i > 0 {
                            frame.extend_from_slice(protocol.frame_separator());
                        }
                        frame.extend_from_slice(m);
                    }
                    send(&mut ws, protocol, frame.split().freeze()).await?;
                }
                msg = ws.next() => {
                    let data = match msg {
                        Some(Ok(Message::Text(t))) => Bytes::from(t),
                        Some(Ok(Message::Binary(b))) => b,
                        Some(Ok(Message::Close(_))) | None => return Ok(()),
                        Some(Ok(_)) => continue,
                        Some(Err(e)) => return Err(e.into()),
                    };
                    let mut out = BytesMut::new();
                    for cmd in decode_commands(protocol, data) {
                        let cmd = cmd?;
                        let mut reply = proto::Reply { id: cmd.id, ..Default::default() };
                        if cmd.connect.is_some() {
                            reply.connect = Some(proto::ConnectResult {
                                client: format!("ref-{}", peer.id),
                                version: "reference".into(),
                                ..Default::default()
                            });
                        } else if let Some(sub) = cmd.subscribe {
                            state.subscribe(&sub.channel, &peer);
                            subscribed.push(sub.channel);
                            reply.subscribe = Some(proto::SubscribeResult::default());
                        } else if let Some(p) = cmd.publish {
                            state.broadcast(&p.channel, p.data);
                            reply.publish = Some(proto::PublishResult::default());
                        } else if cmd.id == 0 {
                            continue; // pong
                        } else {
                            reply.error = Some(proto::Error {
                                code: 108,
                                message: "not available".into(),
                                ..Default::default()
                            });
                        }
                        if !out.is_empty() {
                            out.extend_from_slice(protocol.frame_separator());
                        }
                        encode_reply(protocol, &reply, &mut out)?;
                    }
                    if !out.is_empty() {
                        send(&mut ws, protocol, out.freeze()).await?;
                    }
                }
            }
        }
    }
    .await;
    state.remove(&peer, &subscribed);
    res
}

async fn send(
    ws: &mut tokio_tungstenite::WebSocketStream<TcpStream>,
    protocol: Protocol,
    frame: Bytes,
) -> anyhow::Result<()> {
    let msg = match protocol {
        Protocol::Json => Message::Text(Utf8Bytes::try_from(frame)?),
        Protocol::Protobuf => Message::Binary(frame),
    };
    ws.send(msg).await?;
    Ok(())
}

#[derive(Deserialize)]
struct PublishBody<'a> {
    #[serde(borrow)]
    channel: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    data: &'a serde_json::value::RawValue,
}

async fn serve_api(mut stream: TcpStream, state: &State) -> anyhow::Result<()> {
    let mut buf = BytesMut::with_capacity(4096);
    loop {
        let head_end = loop {
            if let Some(i) = memchr::memmem::find(&buf, b"\r\n\r\n") {
                break i + 4;
            }
            if buf.len() > 64 * 1024 {
                bail!("request head too large");
            }
            if stream.read_buf(&mut buf).await? == 0 {
                return Ok(());
            }
        };
        let head = buf.split_to(head_end);
        let head = std::str::from_utf8(&head).context("request head is not UTF-8")?;
        let mut lines = head.split("\r\n");
        let request_line = lines.next().unwrap_or_default();
        let path = request_line.split(' ').nth(1).unwrap_or_default();
        let mut len = 0usize;
        for line in lines {
            if let Some((name, value)) = line.split_once(':')
                && name.eq_ignore_ascii_case("content-length")
            {
                len = value.trim().parse()?;
            }
        }
        while buf.len() < len {
            if stream.read_buf(&mut buf).await? == 0 {
                return Ok(());
            }
        }
        let body = buf.split_to(len);
        let (status, reply): (&str, &[u8]) = if path == "/api/publish" {
            match serde_json::from_slice::<PublishBody<'_>>(&body) {
                Ok(p) => {
                    let data = Bytes::copy_from_slice(p.data.get().as_bytes());
                    state.broadcast(&p.channel, data);
                    ("200 OK", b"{\"result\":{}}")
                }
                Err(_) => (
                    "400 Bad Request",
                    b"{\"error\":{\"code\":107,\"message\":\"bad request\"}}",
                ),
            }
        } else {
            (
                "404 Not Found",
                b"{\"error\":{\"code\":104,\"message\":\"not found\"}}",
            )
        };
        let mut out = Vec::with_capacity(128);
        out.extend_from_slice(b"HTTP/1.1 ");
        out.extend_from_slice(status.as_bytes());
        out.extend_from_slice(b"\r\nContent-Type: application/json\r\nContent-Length: ");
        out.extend_from_slice(itoa::Buffer::new().format(reply.len()).as_bytes());
        out.extend_from_slice(b"\r\n\r\n");
        out.extend_from_slice(reply);
        stream.write_all(&out).await?;
    }
}
