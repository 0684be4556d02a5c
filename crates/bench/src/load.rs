//! The publish/subscribe load engine behind `fanout`, `latency` and `many-channels`.
//!
//! SUBS subscribers connect and subscribe (subscriber `j` to channel `j % C`), then PUBS
//! publishers send MSGS messages: message `seq` goes to channel `seq % C`, publisher `p`
//! sends the sequence numbers `p, p + PUBS, p + 2·PUBS, …`. Every subscriber knows
//! exactly which sequence numbers it must receive, keeps a bitset of what it got, and
//! counts each one once: duplicates and strays are counted apart, never as received.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use gyre_protocol::Protocol;
use hdrhistogram::Histogram;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::{Value, json};
use tokio::sync::{Barrier, Semaphore};
use tokio_util::sync::CancellationToken;

use crate::api::{ApiConn, ApiTarget};
use crate::client::{Dialer, Sink, Transport, now_ns};
use crate::frame::payload;
use crate::grpc::{GrpcConn, GrpcTarget};
use crate::stats::{ShardedHistogram, Spread, commas, latency_json, latency_line};

/// How publishers publish.
#[derive(Debug, Clone)]
pub enum PublishVia {
    /// `POST {api}/publish` over keep-alive HTTP/1.1.
    Api(ApiTarget),
    /// `Publish` calls of the gRPC server API, one HTTP/2 connection per publisher.
    Grpc(GrpcTarget),
    /// `publish` commands over their own WebSocket connections.
    Clients,
}

/// Everything a load run needs.
#[derive(Debug, Clone)]
pub struct LoadConfig {
    /// Name in the report (`fanout`, `latency`, `many-channels`).
    pub scenario: &'static str,
    /// `ws://…/connection/websocket`.
    pub url: String,
    /// Encoding of the subscriber (and client publisher) connections.
    pub protocol: Protocol,
    /// Connect token (empty = anonymous).
    pub token: String,
    /// Channel name, or the prefix of `NAME-0 … NAME-(C-1)` when `channels > 1`.
    pub channel: String,
    /// Number of channels C.
    pub channels: usize,
    /// Subscriber connections.
    pub subs: usize,
    /// Publishers.
    pub pubs: usize,
    /// Messages in total.
    pub msgs: u64,
    /// Payload size in bytes.
    pub size: usize,
    /// How to publish.
    pub via: PublishVia,
    /// Total publish rate in msgs/s (None = as fast as possible).
    pub rate: Option<f64>,
    /// Publishers pause while more than this many messages per subscriber are in
    /// flight (0 = never pause).
    pub window: u64,
    /// Connections being opened at once.
    pub connect_concurrency: usize,
    /// After the last publish, how long to wait for deliveries without progress.
    pub drain_timeout: Duration,
    /// No progress bars.
    pub quiet: bool,
    /// Server process whose CPU time is measured over the publishing phase.
    pub server_pid: Option<u32>,
    /// Transport of the subscribers (client publishers always use WebSocket).
    pub transport: Transport,
    /// Deliveries are timed by the kernel's receive timestamp of their bytes.
    pub socket_clock: bool,
    /// Keep each publication's first and last delivery time (see
    /// [`LoadReport::per_publication`]).
    pub per_publication: bool,
}

impl LoadConfig {
    /// Name of channel `c`.
    pub fn channel_name(&self, c: usize) -> String {
        if self.channels <= 1 {
            self.channel.clone()
        } else {
            format!("{}-{c}", self.channel)
        }
    }

    /// How many of the sequence numbers `0..msgs` go to channel `c`.
    pub fn msgs_for_channel(&self, c: usize) -> u64 {
        let ch = self.channels.max(1) as u64;
        let c = c as u64;
        if c >= self.msgs {
            0
        } else {
            (self.msgs - c).div_ceil(ch)
        }
    }
}

/// Shards per histogram: a few per thread of the tool keep locking rare, and no more
/// than that keeps them in cache (each shard is a 240 KiB array, and a frame's samples
/// go to its subscriber's shard: with 16 shards on one thread, recording was 6% of the
/// tool's CPU).
fn histogram_shards() -> usize {
    std::thread::available_parallelism().map_or(4, |n| 2 * n.get())
}

/// Outcome of a load run.
#[derive(Debug)]
pub struct LoadReport {
    /// The one-line JSON result.
    pub json: Value,
    /// Human-readable lines.
    pub text: String,
    /// Latency histogram (ns).
    pub latency: Histogram<u64>,
    /// Deliveries per sampling bucket: `(seconds since publishing started, deliveries)`.
    pub timeline: Vec<(f64, u64)>,
    /// With [`LoadConfig::per_publication`]: for each delivered publication, in sequence
    /// order, `(seq, sent at (Unix ns), first delivery's latency, last delivery's latency)`
    /// (ns).
    pub per_publication: Vec<(u64, u64, u64, u64)>,
}

/// When one publication was sent and the span of its deliveries' latencies.
struct PubSpan {
    sent_ns: AtomicU64,
    first: AtomicU64,
    last: AtomicU64,
}

struct Shared {
    delivered: AtomicU64,
    published: AtomicU64,
    remaining: AtomicUsize,
    latency: ShardedHistogram,
    /// How long each publish call took until its reply (the publisher's view: for the
    /// API, what the server acknowledges after, e.g. a disk sync).
    calls: ShardedHistogram,
    /// Indexed by sequence number, when per-publication spans are kept.
    spans: Vec<PubSpan>,
}

/// A subscriber's counters; also its [`Sink`].
struct SubState {
    index: usize,
    channels: u64,
    pubs: u64,
    received: u64,
    expected: u64,
    duplicates: u64,
    strays: u64,
    /// Bit `seq / channels` set once `seq` arrived.
    seen: Vec<u64>,
    channel: u64,
    frames: u64,
    bytes: u64,
    last_recv: Option<Instant>,
    samples: Vec<u64>,
    reported: u64,
    done: bool,
    shared: Arc<Shared>,
}

impl Sink for SubState {
    fn publication(&mut self, seq: u64, send_ns: u64, now_ns: u64) {
        if seq % self.channels != self.channel || self.pubs == 0 {
            self.strays += 1;
            return;
        }
        let idx = seq / self.channels;
        let (word, bit) = ((idx / 64) as usize, 1u64 << (idx % 64));
        let Some(w) = self.seen.get_mut(word) else {
            self.strays += 1;
            return;
        };
        if *w & bit != 0 {
            self.duplicates += 1;
            return;
        }
        *w |= bit;
        self.received += 1;
        let latency = now_ns.saturating_sub(send_ns);
        self.samples.push(latency);
        if let Some(span) = self.shared.spans.get(seq as usize) {
            span.sent_ns.store(send_ns, Ordering::Relaxed);
            span.first.fetch_min(latency, Ordering::Relaxed);
            span.last.fetch_max(latency, Ordering::Relaxed);
        }
    }

    fn frame(&mut self, bytes: usize) {
        self.frames += 1;
        self.bytes += bytes as u64;
        if self.received == self.reported {
            return;
        }
        self.last_recv = Some(Instant::now());
        self.shared.latency.record(self.index, &mut self.samples);
        self.shared
            .delivered
            .fetch_add(self.received - self.reported, Ordering::Relaxed);
        self.reported = self.received;
        if !self.done && self.received >= self.expected {
            self.done = true;
            self.shared.remaining.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

struct SubResult {
    connected: bool,
    received: u64,
    expected: u64,
    duplicates: u64,
    strays: u64,
    frames: u64,
    bytes: u64,
    last_recv: Option<Instant>,
    error: Option<String>,
}

struct PubResult {
    sent: u64,
    finished: Instant,
    error: Option<String>,
}

fn bar(mp: &MultiProgress, len: u64, label: &str) -> ProgressBar {
    let pb = mp.add(ProgressBar::new(len));
    pb.set_style(
        ProgressStyle::with_template(&format!(
            "{label:>9} [{{bar:40}}] {{pos}}/{{len}} {{per_sec}} {{msg}}"
        ))
        .expect("valid template")
        .progress_chars("=> "),
    );
    pb
}

/// Progress bars on stderr, hidden when not a terminal or when quiet.
pub fn progress(quiet: bool) -> MultiProgress {
    use std::io::IsTerminal;
    if quiet || !std::io::stderr().is_terminal() {
        MultiProgress::with_draw_target(ProgressDrawTarget::hidden())
    } else {
        MultiProgress::new()
    }
}

/// Runs one load scenario to completion.
pub async fn run(cfg: LoadConfig) -> anyhow::Result<LoadReport> {
    if cfg.subs == 0 || cfg.pubs == 0 || cfg.msgs == 0 || cfg.channels == 0 {
        bail!("subs, pubs, msgs and channels must all be above zero");
    }
    let mut dialer = Dialer::new(&cfg.url, cfg.protocol).await?;
    dialer.token = cfg.token.clone();
    dialer.read_buffer = 32 * 1024;
    let pub_dialer = Arc::new(dialer.clone());
    dialer.transport = cfg.transport;
    dialer.socket_clock = cfg.socket_clock;
    let dialer = Arc::new(dialer);
    let cfg = Arc::new(cfg);
    let shared = Arc::new(Shared {
        delivered: AtomicU64::new(0),
        published: AtomicU64::new(0),
        remaining: AtomicUsize::new(cfg.subs),
        latency: ShardedHistogram::new(histogram_shards()),
        calls: ShardedHistogram::new(histogram_shards()),
        spans: if cfg.per_publication {
            (0..cfg.msgs)
                .map(|_| PubSpan {
                    sent_ns: AtomicU64::new(0),
                    first: AtomicU64::new(u64::MAX),
                    last: AtomicU64::new(0),
                })
                .collect()
        } else {
            Vec::new()
        },
    });
    let stop = CancellationToken::new();
    let mp = progress(cfg.quiet);

    // Subscribers.
    let connected = Arc::new(AtomicUsize::new(0));
    let failed = Arc::new(AtomicUsize::new(0));
    let gate = Arc::new(Semaphore::new(cfg.connect_concurrency.max(1)));
    let mut sub_tasks = Vec::with_capacity(cfg.subs);
    for index in 0..cfg.subs {
        let (dialer, cfg, shared, stop) =
            (dialer.clone(), cfg.clone(), shared.clone(), stop.clone());
        let (connected, failed, gate) = (connected.clone(), failed.clone(), gate.clone());
        sub_tasks.push(tokio::spawn(async move {
            let channel = index % cfg.channels;
            let expected = cfg.msgs_for_channel(channel);
            let mut state = SubState {
                index,
                channels: cfg.channels as u64,
                pubs: cfg.pubs as u64,
                received: 0,
                expected,
                duplicates: 0,
                strays: 0,
                seen: vec![0; expected.div_ceil(64) as usize],
                channel: channel as u64,
                frames: 0,
                bytes: 0,
                last_recv: None,
                samples: Vec::with_capacity(64),
                reported: 0,
                done: expected == 0,
                shared: shared.clone(),
            };
            let opened = {
                let _permit = gate.acquire().await;
                dialer
                    .open_subscribed(index, &[cfg.channel_name(channel)])
                    .await
            };
            let mut conn = match opened {
                Ok(c) => c,
                Err(e) => {
                    failed.fetch_add(1, Ordering::Relaxed);
                    shared.remaining.fetch_sub(1, Ordering::AcqRel);
                    return SubResult {
                        connected: false,
                        received: 0,
                        expected: 0,
                        duplicates: 0,
                        strays: 0,
                        frames: 0,
                        bytes: 0,
                        last_recv: None,
                        error: Some(format!("{e:#}")),
                    };
                }
            };
            if expected == 0 {
                shared.remaining.fetch_sub(1, Ordering::AcqRel);
            }
            connected.fetch_add(1, Ordering::Relaxed);
            let error = conn.read_until(&mut state, &stop).await;
            if error.is_some() && !state.done {
                state.done = true;
                shared.remaining.fetch_sub(1, Ordering::AcqRel);
            }
            SubResult {
                connected: true,
                received: state.received,
                expected,
                duplicates: state.duplicates,
                strays: state.strays,
                frames: state.frames,
                bytes: state.bytes,
                last_recv: state.last_recv,
                error,
            }
        }));
    }
    let connect_bar = bar(&mp, cfg.subs as u64, "subscribe");
    let connect_start = Instant::now();
    loop {
        let (ok, bad) = (
            connected.load(Ordering::Relaxed),
            failed.load(Ordering::Relaxed),
        );
        connect_bar.set_position((ok + bad) as u64);
        if bad > 0 {
            connect_bar.set_message(format!("{bad} failed"));
        }
        if ok + bad >= cfg.subs {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let connect_secs = connect_start.elapsed().as_secs_f64();
    connect_bar.finish();
    let subs_ok = connected.load(Ordering::Relaxed);
    if subs_ok == 0 {
        stop.cancel();
        let first = sub_tasks.remove(0).await?;
        bail!(
            "no subscriber could connect: {}",
            first.error.unwrap_or_default()
        );
    }

    // Publishers: connect all, then start together.
    let barrier = Arc::new(Barrier::new(cfg.pubs + 1));
    let fanout = subs_ok as f64 / cfg.channels as f64;
    let mut pub_tasks = Vec::with_capacity(cfg.pubs);
    for p in 0..cfg.pubs {
        let (dialer, cfg, shared, barrier) = (
            pub_dialer.clone(),
            cfg.clone(),
            shared.clone(),
            barrier.clone(),
        );
        let stop = stop.clone();
        pub_tasks.push(tokio::spawn(async move {
            publisher(p, &dialer, &cfg, &shared, &barrier, fanout, &stop).await
        }));
    }
    barrier.wait().await;
    let pub_start = Instant::now();
    let cpu_at_start = cpu_sample(cfg.server_pid);

    let total_expected: u64 = (0..cfg.subs)
        .map(|j| cfg.msgs_for_channel(j % cfg.channels))
        .sum();
    let pub_bar = bar(&mp, cfg.msgs, "publish");
    let recv_bar = bar(&mp, total_expected, "deliver");
    let mut timeline = Vec::new();
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    let mut last_delivered = 0;
    let mut last_published = 0;
    let mut last_progress = Instant::now();
    loop {
        tick.tick().await;
        let delivered = shared.delivered.load(Ordering::Relaxed);
        let published = shared.published.load(Ordering::Relaxed);
        timeline.push((
            pub_start.elapsed().as_secs_f64(),
            delivered - last_delivered,
        ));
        if delivered != last_delivered || published != last_published {
            last_progress = Instant::now();
        }
        last_delivered = delivered;
        last_published = published;
        pub_bar.set_position(published);
        recv_bar.set_position(delivered);
        if shared.remaining.load(Ordering::Acquire) == 0 {
            break;
        }
        // Nothing moves any more: either the publishers are done and the rest is lost,
        // or they wait on a window that cannot drain (subscribers gone).
        if last_progress.elapsed() > cfg.drain_timeout {
            break;
        }
    }
    let cpu_at_end = cpu_sample(cfg.server_pid);
    pub_bar.finish();
    recv_bar.finish();
    stop.cancel();

    let mut pubs = Vec::with_capacity(cfg.pubs);
    for t in pub_tasks {
        pubs.push(t.await?);
    }
    let mut subs = Vec::with_capacity(cfg.subs);
    for t in sub_tasks {
        subs.push(t.await?);
    }
    let cpu = CpuUse {
        server: cpu_at_start.0.zip(cpu_at_end.0).map(|(a, b)| b - a),
        client: cpu_at_start.1.zip(cpu_at_end.1).map(|(a, b)| b - a),
    };
    Ok(summarize(
        &cfg,
        pub_start,
        connect_secs,
        &pubs,
        &subs,
        &shared,
        timeline,
        cpu,
    ))
}

async fn publisher(
    p: usize,
    dialer: &Dialer,
    cfg: &LoadConfig,
    shared: &Shared,
    barrier: &Barrier,
    fanout: f64,
    stop: &CancellationToken,
) -> PubResult {
    enum Conn {
        Api(ApiConn),
        Grpc(GrpcConn),
        Ws(crate::client::Conn),
    }
    let conn = match &cfg.via {
        PublishVia::Api(target) => ApiConn::connect(target).await.map(Conn::Api),
        PublishVia::Grpc(target) => GrpcConn::connect(target).await.map(Conn::Grpc),
        PublishVia::Clients => dialer
            .open_subscribed(usize::MAX - p, &[])
            .await
            .map(Conn::Ws),
    };
    barrier.wait().await;
    let start = Instant::now();
    let mut conn = match conn {
        Ok(c) => c,
        Err(e) => {
            return PubResult {
                sent: 0,
                finished: start,
                error: Some(format!("{e:#}")),
            };
        }
    };
    let interval = cfg
        .rate
        .map(|r| Duration::from_secs_f64(cfg.pubs as f64 / r.max(1e-9)));
    let mut sent = 0u64;
    let mut seq = p as u64;
    let mut error = None;
    let mut calls = Vec::with_capacity(64);
    while seq < cfg.msgs && !stop.is_cancelled() {
        if let Some(iv) = interval {
            // Publisher p starts p/PUBS of an interval late so the total rate is even.
            let offset = iv.mul_f64(p as f64 / cfg.pubs as f64);
            tokio::time::sleep_until((start + offset + iv * sent as u32).into()).await;
        }
        if cfg.window > 0 {
            loop {
                let published = shared.published.load(Ordering::Relaxed) as f64;
                let delivered = shared.delivered.load(Ordering::Relaxed) as f64;
                if published - delivered / fanout <= cfg.window as f64 || stop.is_cancelled() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
        let data = payload(seq, now_ns(), cfg.size);
        let channel = cfg.channel_name((seq % cfg.channels as u64) as usize);
        let call = async {
            match &mut conn {
                Conn::Api(c) => c.publish(&channel, &data).await,
                Conn::Grpc(c) => c.publish(&channel, data).await,
                Conn::Ws(c) => c.publish(&channel, data).await,
            }
        };
        let called = Instant::now();
        let res = tokio::select! {
            res = call => res,
            () = stop.cancelled() => break,
        };
        if let Err(e) = res {
            error = Some(format!("{e:#}"));
            break;
        }
        calls.push(called.elapsed().as_nanos() as u64);
        if calls.len() == calls.capacity() {
            shared.calls.record(p, &mut calls);
        }
        shared.published.fetch_add(1, Ordering::Relaxed);
        sent += 1;
        seq += cfg.pubs as u64;
    }
    shared.calls.record(p, &mut calls);
    PubResult {
        sent,
        finished: Instant::now(),
        error,
    }
}

/// CPU seconds of the server (if its pid is known) and of this process.
fn cpu_sample(server: Option<u32>) -> (Option<f64>, Option<f64>) {
    (
        server.and_then(|pid| crate::conns::cpu_secs(pid).ok()),
        crate::conns::cpu_secs(std::process::id()).ok(),
    )
}

/// CPU seconds used during the publishing phase.
struct CpuUse {
    server: Option<f64>,
    client: Option<f64>,
}

#[allow(clippy::too_many_arguments)]
fn summarize(
    cfg: &LoadConfig,
    pub_start: Instant,
    connect_secs: f64,
    pubs: &[PubResult],
    subs: &[SubResult],
    shared: &Shared,
    timeline: Vec<(f64, u64)>,
    cpu: CpuUse,
) -> LoadReport {
    let secs = |t: Instant| {
        t.saturating_duration_since(pub_start)
            .as_secs_f64()
            .max(1e-9)
    };
    let mb = |msgs: f64| msgs * cfg.size as f64 / 1e6;

    let sent: u64 = pubs.iter().map(|p| p.sent).sum();
    let pub_end = pubs.iter().map(|p| p.finished).max().unwrap_or(pub_start);
    let pub_rate = sent as f64 / secs(pub_end);
    let per_pub: Vec<f64> = pubs
        .iter()
        .map(|p| p.sent as f64 / secs(p.finished))
        .collect();

    let connected: Vec<&SubResult> = subs.iter().filter(|s| s.connected).collect();
    let received: u64 = connected.iter().map(|s| s.received).sum();
    // Expected deliveries: every connected subscriber gets every message of its
    // channel that was actually published (a publisher error shortens the run).
    let expected: u64 = if sent == cfg.msgs {
        connected.iter().map(|s| s.expected).sum()
    } else {
        (sent as f64 * connected.len() as f64 / cfg.channels as f64).round() as u64
    };
    let duplicates: u64 = connected.iter().map(|s| s.duplicates).sum();
    let strays: u64 = connected.iter().map(|s| s.strays).sum();
    let frames: u64 = connected.iter().map(|s| s.frames).sum();
    let wire_bytes: u64 = connected.iter().map(|s| s.bytes).sum();
    let sub_end = connected
        .iter()
        .filter_map(|s| s.last_recv)
        .max()
        .unwrap_or(pub_start);
    let sub_rate = received as f64 / secs(sub_end);
    let per_sub: Vec<f64> = connected
        .iter()
        .map(|s| match s.last_recv {
            Some(t) => s.received as f64 / secs(t),
            None => 0.0,
        })
        .collect();
    let per_sub = Spread::of(&per_sub);
    let per_pub_spread = Spread::of(&per_pub);
    let lost = expected.saturating_sub(received);
    let connect_failures = subs.len() - connected.len();
    let mut errors: Vec<String> = subs
        .iter()
        .filter_map(|s| s.error.clone())
        .chain(pubs.iter().filter_map(|p| p.error.clone()))
        .collect();
    let error_count = errors.len();
    errors.sort();
    errors.dedup();
    errors.truncate(5);
    let latency = shared.latency.merged();
    let calls = shared.calls.merged();
    let protocol = match cfg.protocol {
        Protocol::Json => "json",
        Protocol::Protobuf => "protobuf",
    };
    let via = match cfg.via {
        PublishVia::Api(_) => "api",
        PublishVia::Grpc(_) => "grpc",
        PublishVia::Clients => "clients",
    };

    let per_delivery = |c: Option<f64>| {
        c.filter(|_| received > 0)
            .map(|c| (c * 1e9 / received as f64).round())
    };
    let run_secs = secs(sub_end.max(pub_end));
    let json = json!({
        "scenario": cfg.scenario,
        "url": cfg.url,
        "protocol": protocol,
        "transport": cfg.transport.name(),
        "publish_via": via,
        "subs": cfg.subs,
        "pubs": cfg.pubs,
        "channels": cfg.channels,
        "msgs": cfg.msgs,
        "size": cfg.size,
        "rate": cfg.rate,
        "window": cfg.window,
        "clock": if cfg.socket_clock { "socket" } else { "tool" },
        "connect_secs": (connect_secs * 1000.0).round() / 1000.0,
        "pub_msgs_per_sec": pub_rate.round(),
        "pub_mb_per_sec": (mb(pub_rate) * 100.0).round() / 100.0,
        "per_pub_msgs_per_sec": per_pub_spread.json(),
        "sub_msgs_per_sec": sub_rate.round(),
        "sub_mb_per_sec": (mb(sub_rate) * 100.0).round() / 100.0,
        "per_sub_msgs_per_sec": per_sub.json(),
        "latency_us": latency_json(&latency),
        "publish_call_us": latency_json(&calls),
        "published": sent,
        "expected": expected,
        "received": received,
        "lost": lost,
        "duplicates": duplicates,
        "strays": strays,
        "frames": frames,
        "msgs_per_frame": if frames > 0 { ((received + duplicates + strays) as f64 / frames as f64 * 10.0).round() / 10.0 } else { 0.0 },
        "wire_bytes": wire_bytes,
        "connect_failures": connect_failures,
        "errors": error_count,
        "first_errors": errors,
        "duration_secs": (run_secs * 1000.0).round() / 1000.0,
        "server_cpu_secs": cpu.server.map(|c| (c * 100.0).round() / 100.0),
        "server_cpu_util": cpu.server.map(|c| (c / run_secs * 100.0).round() / 100.0),
        "server_cpu_ns_per_delivery": per_delivery(cpu.server),
        "client_cpu_secs": cpu.client.map(|c| (c * 100.0).round() / 100.0),
        "client_cpu_ns_per_delivery": per_delivery(cpu.client),
    });

    let mut text = String::new();
    use std::fmt::Write;
    let _ = writeln!(
        text,
        "{} {}: {} subs × {} pubs over {} channel(s), {} msgs × {} B, {protocol}, subscribers over {}, publish via {via}",
        cfg.scenario,
        cfg.url,
        cfg.subs,
        cfg.pubs,
        cfg.channels,
        cfg.msgs,
        cfg.size,
        cfg.transport.name()
    );
    let _ = writeln!(
        text,
        "Pub stats: {} msgs/sec ~ {:.2} MB/sec",
        commas(pub_rate),
        mb(pub_rate)
    );
    if pubs.len() <= 16 {
        for (i, (p, r)) in pubs.iter().zip(&per_pub).enumerate() {
            let _ = writeln!(
                text,
                " [{}] {} msgs/sec ~ {:.2} MB/sec ({} msgs)",
                i + 1,
                commas(*r),
                mb(*r),
                p.sent
            );
        }
    }
    let _ = writeln!(
        text,
        " min {} | avg {} | max {} | stddev {} msgs",
        commas(per_pub_spread.min),
        commas(per_pub_spread.avg),
        commas(per_pub_spread.max),
        commas(per_pub_spread.stddev)
    );
    let _ = writeln!(
        text,
        "Sub stats: {} msgs/sec ~ {:.2} MB/sec ({} subscribers)",
        commas(sub_rate),
        mb(sub_rate),
        connected.len()
    );
    let _ = writeln!(
        text,
        " per subscriber: min {} | avg {} | max {} | stddev {} msgs/sec",
        commas(per_sub.min),
        commas(per_sub.avg),
        commas(per_sub.max),
        commas(per_sub.stddev)
    );
    let _ = writeln!(text, "Latency: {}", latency_line(&latency));
    let _ = writeln!(text, "Publish call: {}", latency_line(&calls));
    let _ = writeln!(
        text,
        "Delivered: {} of {} expected, lost {lost}, duplicates {duplicates}, strays {strays}; {} frames ({:.1} msgs/frame), connect {connect_secs:.2} s, {connect_failures} connect failures",
        commas(received as f64),
        commas(expected as f64),
        commas(frames as f64),
        json["msgs_per_frame"].as_f64().unwrap_or(0.0),
    );
    if let Some(c) = cpu.server {
        let _ = writeln!(
            text,
            "Server CPU: {c:.2} s ({:.0}% of one core), {} ns per delivery",
            c / run_secs * 100.0,
            commas(per_delivery(Some(c)).unwrap_or(0.0))
        );
    }
    if let Some(c) = cpu.client {
        let _ = writeln!(
            text,
            "Tool CPU: {c:.2} s ({:.0}% of one core), {} ns per delivery",
            c / run_secs * 100.0,
            commas(per_delivery(Some(c)).unwrap_or(0.0))
        );
    }
    for e in json["first_errors"].as_array().into_iter().flatten() {
        let _ = writeln!(text, "Error: {}", e.as_str().unwrap_or_default());
    }
    let per_publication = shared
        .spans
        .iter()
        .enumerate()
        .filter(|(_, s)| s.first.load(Ordering::Relaxed) != u64::MAX)
        .map(|(seq, s)| {
            (
                seq as u64,
                s.sent_ns.load(Ordering::Relaxed),
                s.first.load(Ordering::Relaxed),
                s.last.load(Ordering::Relaxed),
            )
        })
        .collect();
    LoadReport {
        json,
        text,
        latency,
        timeline,
        per_publication,
    }
}

/// [`LoadReport::per_publication`] as CSV: sequence number, ms after the first
/// publication was sent, first and last delivery's latency in µs.
pub fn per_publication_csv(spans: &[(u64, u64, u64, u64)]) -> String {
    use std::fmt::Write;
    let start = spans.iter().map(|s| s.1).min().unwrap_or(0);
    let mut out = String::from("seq,sent_ms,first_delivery_us,last_delivery_us\n");
    for &(seq, sent, first, last) in spans {
        let _ = writeln!(
            out,
            "{seq},{:.3},{:.1},{:.1}",
            (sent - start) as f64 / 1e6,
            first as f64 / 1e3,
            last as f64 / 1e3
        );
    }
    out
}

/// Convenience for tests and `compare`: check a report for loss and errors.
pub fn check_complete(report: &LoadReport) -> anyhow::Result<()> {
    let j = &report.json;
    let get = |k: &str| j[k].as_u64().with_context(|| format!("{k} missing"));
    if get("lost")? != 0 || get("errors")? != 0 || get("received")? != get("expected")? {
        bail!("incomplete run: {j}");
    }
    Ok(())
}
