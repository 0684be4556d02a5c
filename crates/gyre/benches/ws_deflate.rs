//! Fan-out over real WebSocket connections with permessage-deflate off and on: server CPU
//! per delivery and bytes on the wire per delivery.
//!
//! One thread runs the server (a `Node` and the `WebSocketHandler` on hyper, on a
//! current-thread runtime), another runs the subscribers: raw clients that inflate what
//! they receive and count the publications. The server publishes one publication at a
//! time and yields between them; with few subscribers every delivery is then a frame of
//! its own, with hundreds the connections fall behind and frames carry several
//! publications (compressed as one stream without the cache, message by message with
//! it). Server CPU is the time the server thread
//! spent on a CPU (`/proc/thread-self/schedstat`) from the first publication until every
//! subscriber had the last one; publishing itself is included, in every mode alike.
//!
//! Modes: `off` (no compression), `deflate` (compression with the per-thread cache of
//! compressed messages) and `deflate-nocache` (every connection compresses its own copy).
//!
//! `cargo bench -p gyre --bench ws_deflate -- [subscribers] [publications] [runs]`

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use gyre::{
    ConnectReply, Credentials, Node, PublishOptions, SubscribeOptions, SubscribeReply,
    WebSocketConfig, WebSocketHandler,
};
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Barrier, Semaphore, oneshot};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Off,
    Deflate,
    DeflateNoCache,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Off => "off",
            Mode::Deflate => "deflate",
            Mode::DeflateNoCache => "deflate-nocache",
        }
    }
}

struct Run {
    server_ns: u64,
    wire_bytes: u64,
    deliveries: u64,
}

/// Nanoseconds the calling thread has spent on a CPU.
fn thread_cpu_ns() -> u64 {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").expect("schedstat");
    stat.split_whitespace()
        .next()
        .and_then(|v| v.parse().ok())
        .expect("schedstat run time")
}

/// A publication of about 750 bytes as applications send them: a small list of records
/// with repeated keys, different every time.
fn payload(i: usize) -> Bytes {
    let items: Vec<String> = (0..6)
        .map(|k| {
            format!(
                r#"{{"id":{},"name":"item-{k}","status":"active","price":{}.{:02},"qty":{},"updated_at":"2026-12-06T18:{:02}:{:02}Z"}}"#,
                i * 10 + k,
                100 + (i * 7 + k) % 900,
                (i + k) % 100,
                (i * 3 + k) % 50,
                i % 60,
                k * 7 % 60
            )
        })
        .collect();
    Bytes::from(format!(
        r#"{{"seq":{i},"type":"snapshot","source":"inventory","items":[{}]}}"#,
        items.join(",")
    ))
}

fn masked(payload: &[u8]) -> Vec<u8> {
    let mask = [0x11u8, 0x22, 0x33, 0x44];
    let mut f = vec![0x81];
    if payload.len() < 126 {
        f.push(0x80 | payload.len() as u8);
    } else {
        f.push(0x80 | 126);
        f.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    }
    f.extend_from_slice(&mask);
    f.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    f
}

/// Reads one server frame; returns its payload (inflated if compressed) and its size on
/// the wire.
async fn read_frame(
    r: &mut BufReader<TcpStream>,
    inflate: &mut flate2::Decompress,
    out: &mut Vec<u8>,
) -> usize {
    let mut h = [0u8; 2];
    r.read_exact(&mut h).await.expect("frame header");
    let (len, ext) = match h[1] & 0x7F {
        126 => (usize::from(r.read_u16().await.unwrap()), 2),
        127 => (r.read_u64().await.unwrap() as usize, 8),
        n => (usize::from(n), 0),
    };
    let mut payload = vec![0u8; len];
    r.read_exact(&mut payload).await.expect("frame payload");
    out.clear();
    if h[0] & 0x40 != 0 {
        inflate.reset(false);
        payload.extend_from_slice(&[0, 0, 0xff, 0xff]);
        out.reserve(len * 8 + 1024);
        inflate
            .decompress_vec(&payload, out, flate2::FlushDecompress::Sync)
            .expect("inflates");
    } else {
        out.extend_from_slice(&payload);
    }
    2 + ext + len
}

async fn subscriber(
    addr: std::net::SocketAddr,
    offer: bool,
    publications: usize,
    ready: Arc<Barrier>,
    wire: Arc<AtomicU64>,
    connecting: Arc<Semaphore>,
) {
    // A few handshakes at a time: hundreds at once overflow the listen backlog.
    let permit = connecting.acquire_owned().await.unwrap();
    let mut s = TcpStream::connect(addr).await.expect("connect");
    let ext = if offer {
        "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"
    } else {
        ""
    };
    let request = format!(
        "GET /connection/websocket HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\n\
         Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
         Sec-WebSocket-Version: 13\r\n{ext}\r\n"
    );
    s.write_all(request.as_bytes()).await.unwrap();
    s.write_all(&masked(
        br#"{"id":1,"connect":{}}
{"id":2,"subscribe":{"channel":"bench"}}"#,
    ))
    .await
    .unwrap();
    let mut r = BufReader::with_capacity(16 * 1024, s);
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        head.push(r.read_u8().await.unwrap());
    }
    let mut inflate = flate2::Decompress::new(false);
    let mut out = Vec::new();
    let mut replies = 0;
    while replies < 2 {
        read_frame(&mut r, &mut inflate, &mut out).await;
        replies += out.split(|&b| b == b'\n').count();
    }
    drop(permit);
    ready.wait().await;
    let mut got = 0;
    let mut bytes = 0;
    while got < publications {
        bytes += read_frame(&mut r, &mut inflate, &mut out).await;
        got += out
            .split(|&b| b == b'\n')
            .filter(|m| m.windows(6).any(|w| w == b"\"pub\":"))
            .count();
    }
    wire.fetch_add(bytes as u64, Ordering::Relaxed);
}

fn run(mode: Mode, subscribers: usize, publications: usize) -> Run {
    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    let (done_tx, done_rx) = oneshot::channel::<()>();
    let ready = Arc::new(Barrier::new(subscribers + 1));
    let server_ready = Arc::clone(&ready);
    let server = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let node = Node::builder().build();
            node.on_connecting(|_| async { Ok(ConnectReply::new(Credentials::new(""))) });
            node.on_connect(|client| {
                client.on_subscribe(|_| async { Ok(SubscribeReply::new(SubscribeOptions::new())) });
            });
            node.run().await.expect("node runs");
            let mut config = WebSocketConfig::default();
            config.compression = mode != Mode::Off;
            config.compression_cache = mode == Mode::Deflate;
            let handler = WebSocketHandler::new(node.clone(), config);
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            addr_tx.send(listener.local_addr().unwrap()).unwrap();
            tokio::spawn(async move {
                while let Ok((stream, _)) = listener.accept().await {
                    let service = TowerToHyperService::new(handler.clone());
                    tokio::spawn(async move {
                        let _ = hyper::server::conn::http1::Builder::new()
                            .serve_connection(TokioIo::new(stream), service)
                            .with_upgrades()
                            .await;
                    });
                }
            });
            server_ready.wait().await;
            let start = thread_cpu_ns();
            for i in 0..publications {
                node.publish("bench", payload(i), PublishOptions::new())
                    .await
                    .expect("publish");
                // Every connection writes this publication before the next one is made.
                tokio::task::yield_now().await;
            }
            done_rx.await.expect("subscribers finish");
            thread_cpu_ns() - start
        })
    });
    let addr = addr_rx.recv().unwrap();
    let wire = Arc::new(AtomicU64::new(0));
    let clients = {
        let wire = Arc::clone(&wire);
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let connecting = Arc::new(Semaphore::new(32));
                let mut tasks = Vec::new();
                for _ in 0..subscribers {
                    tasks.push(tokio::spawn(subscriber(
                        addr,
                        mode != Mode::Off,
                        publications,
                        Arc::clone(&ready),
                        Arc::clone(&wire),
                        Arc::clone(&connecting),
                    )));
                }
                for t in tasks {
                    tokio::time::timeout(Duration::from_secs(600), t)
                        .await
                        .expect("subscriber in time")
                        .expect("subscriber ok");
                }
                let _ = done_tx.send(());
            })
        })
    };
    clients.join().unwrap();
    let server_ns = server.join().unwrap();
    Run {
        server_ns,
        wire_bytes: wire.load(Ordering::Relaxed),
        deliveries: (subscribers * publications) as u64,
    }
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn main() {
    // `cargo bench` passes `--bench`; numbers are positional.
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let subscribers = args.first().copied().unwrap_or(500);
    let publications = args.get(1).copied().unwrap_or(1000);
    let runs = args.get(2).copied().unwrap_or(3);
    println!(
        "ws_deflate: {subscribers} subscribers x {publications} publications, {runs} runs per mode, payload {} bytes",
        payload(0).len()
    );
    let mut results = Vec::new();
    for mode in [Mode::Off, Mode::Deflate, Mode::DeflateNoCache] {
        let mut cpu = Vec::new();
        let mut bytes = Vec::new();
        for _ in 0..runs {
            let r = run(mode, subscribers, publications);
            let us = r.server_ns as f64 / 1000.0 / r.deliveries as f64;
            let b = r.wire_bytes as f64 / r.deliveries as f64;
            println!(
                "  {:<16} server CPU {us:.3} µs/delivery, {b:.1} bytes/delivery",
                mode.name()
            );
            cpu.push(us);
            bytes.push(b);
        }
        results.push((mode, median(&mut cpu), median(&mut bytes)));
    }
    let off = results[0].1;
    println!("median per mode (ratio of server CPU to off):");
    for (mode, us, b) in results {
        println!(
            "  {:<16} {us:.3} µs/delivery ({:.2}x), {b:.1} bytes/delivery",
            mode.name(),
            us / off
        );
    }
}
