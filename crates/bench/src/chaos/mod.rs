//! `gyre-bench chaos`: a loss checker under injected faults.
//!
//! Starts a cluster of Gyre nodes from a `gyre` binary on a shared engine
//! ([`cluster`]), subscribes N clients (the `gyre-client` SDK) with recovery to K
//! channels spread over the nodes, publishes numbered messages through the HTTP API of
//! every node in turn, and injects faults on a schedule: connections cut from the
//! client and from the server (API `disconnect`), nodes killed (`kill -9`) or shut down
//! (SIGTERM, clients get 3001) and restarted, the engine restarted or failed over. A
//! client that loses its connection reconnects to the next node and recovers from the
//! last position it saw, as an application behind a load balancer would.
//!
//! When the run ends every node is back, publishing stops, the subscribers drain, and
//! [`check`] proves for each subscriber that every acknowledged publication arrived
//! exactly once and in order, or that the client was told it could not be recovered.
//! A silent gap, a duplicate or a publication with the wrong position fails the run.

pub mod check;
pub mod cluster;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use gyre_client::{
    Client, ClientConfig, ClientEvent, Protocol, StreamPosition, SubscriptionConfig,
    SubscriptionEvent,
};
use hdrhistogram::Histogram;
use parking_lot::Mutex;
use serde_json::json;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::api::{ApiConn, ApiTarget};
use check::{ChannelAcks, Ev, Verdict};
use cluster::{Cluster, Engine, Setup};

/// `chaos` flags.
#[derive(Debug, Clone, Args)]
pub struct ChaosArgs {
    /// The `gyre` binary (default: `gyre` next to this program).
    #[arg(long)]
    pub gyre: Option<PathBuf>,
    /// Engine shared by the nodes.
    #[arg(long, value_enum, default_value_t = Engine::Redis)]
    pub engine: Engine,
    /// Gyre nodes.
    #[arg(long, default_value_t = 3)]
    pub nodes: usize,
    /// Subscriber connections (one subscription each).
    #[arg(long, default_value_t = 30)]
    pub subs: usize,
    /// Channels (subscriber i is in channel i mod CHANNELS, one publisher per channel).
    #[arg(long, default_value_t = 6)]
    pub channels: usize,
    /// Publications per second, all channels together.
    #[arg(long, default_value_t = 200.0)]
    pub rate: f64,
    /// Seconds of publishing under faults (then the cluster heals and drains).
    #[arg(short = 'd', long, default_value_t = 60.0)]
    pub duration: f64,
    /// Faults to inject, evenly spread over the duration, kinds in turn.
    #[arg(long, default_value_t = 30)]
    pub faults: usize,
    /// Fault kinds (comma separated; default: every kind the engine allows).
    #[arg(long, value_enum, value_delimiter = ',')]
    pub kinds: Vec<FaultKind>,
    /// Share of the subscribers hit by one client-side or server-side cut.
    #[arg(long, default_value_t = 0.2)]
    pub cut_share: f64,
    /// First fixed port: nodes listen on BASE.., Redis/Sentinel/NATS on BASE+100...
    #[arg(long, default_value_t = 22000)]
    pub base_port: u16,
    /// Directory for configs and logs (default: a fresh one under /tmp).
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Publications kept in each channel's history.
    #[arg(long, default_value_t = 10_000)]
    pub history_size: u64,
    /// `redis-server` binary (also runs the Sentinels).
    #[arg(long, default_value = "redis-server")]
    pub redis_server: PathBuf,
    /// `nats-server` binary.
    #[arg(long, default_value = "nats-server")]
    pub nats_server: PathBuf,
    /// Put each node in a network namespace of its own (veth pair to the host) and add
    /// the network faults between a node and Redis (`--engine redis`; needs root, `ip`, `tc`).
    #[arg(long)]
    pub netns: bool,
    /// Subscribers speak Protobuf instead of JSON.
    #[arg(long)]
    pub protobuf: bool,
    /// Sample every node's resident memory every 10 s and write it as an SVG plot here
    /// (and as CSV next to it), e.g. for a soak with only connection faults.
    #[arg(long)]
    pub rss_plot: Option<PathBuf>,
    /// Seconds between progress lines (0 = none).
    #[arg(long, default_value_t = 5.0)]
    pub progress: f64,
}

/// A kind of fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, clap::ValueEnum)]
pub enum FaultKind {
    /// Some clients close their connection and reconnect to another node.
    ClientCut,
    /// The server API `disconnect`s some clients (sent to another node than theirs).
    ServerDisconnect,
    /// A node is killed with SIGKILL and restarted.
    NodeKill,
    /// A node is shut down with SIGTERM (clients get 3001) and restarted.
    NodeTerm,
    /// The Redis server is killed with SIGKILL and restarted empty.
    RedisRestart,
    /// Sentinel fails the Redis master over to the replica.
    SentinelFailover,
    /// The NATS server is killed and restarted.
    NatsRestart,
    /// The link between one node and Redis slows to 64 kbit/s (queueing delay up to 1 s,
    /// then drops) for 3 s.
    NetSlow,
    /// The packets between one node and Redis vanish for 3 s.
    NetPartition,
}

impl FaultKind {
    fn name(self) -> &'static str {
        match self {
            FaultKind::ClientCut => "client_cut",
            FaultKind::ServerDisconnect => "server_disconnect",
            FaultKind::NodeKill => "node_kill",
            FaultKind::NodeTerm => "node_term",
            FaultKind::RedisRestart => "redis_restart",
            FaultKind::SentinelFailover => "sentinel_failover",
            FaultKind::NatsRestart => "nats_restart",
            FaultKind::NetSlow => "net_slow",
            FaultKind::NetPartition => "net_partition",
        }
    }

    fn applies(self, engine: Engine, netns: bool) -> bool {
        match self {
            FaultKind::NetSlow | FaultKind::NetPartition => netns && engine == Engine::Redis,
            FaultKind::RedisRestart => engine == Engine::Redis,
            FaultKind::SentinelFailover => engine == Engine::Sentinel,
            FaultKind::NatsRestart => engine == Engine::Nats,
            _ => true,
        }
    }
}

const ALL_KINDS: [FaultKind; 9] = [
    FaultKind::ClientCut,
    FaultKind::ServerDisconnect,
    FaultKind::NodeKill,
    FaultKind::NodeTerm,
    FaultKind::RedisRestart,
    FaultKind::SentinelFailover,
    FaultKind::NatsRestart,
    FaultKind::NetSlow,
    FaultKind::NetPartition,
];

#[derive(Debug, Default)]
struct Stats {
    acked: AtomicU64,
    failed: AtomicU64,
    deliveries: AtomicU64,
    reconnects: AtomicU64,
    recovered: AtomicU64,
    not_recovered: AtomicU64,
    resubscribes: AtomicU64,
}

/// What every task shares.
#[derive(Debug)]
struct Ctx {
    urls: Vec<String>,
    api: Vec<ApiTarget>,
    recoverable: bool,
    protocol: Protocol,
    stats: Stats,
    epochs: Mutex<HashMap<String, u32>>,
}

impl Ctx {
    fn epoch(&self, e: &str) -> u32 {
        let mut m = self.epochs.lock();
        let n = m.len() as u32;
        *m.entry(e.to_owned()).or_insert(n)
    }
}

/// The subscriber side the fault loop can reach.
#[derive(Debug, Default)]
struct SubShared {
    cut: Notify,
    /// Client id and node of the live connection.
    client: Mutex<Option<(String, usize)>>,
    /// Highest sequence number delivered.
    seen: AtomicU64,
}

#[derive(Debug)]
struct SubResult {
    events: Vec<Ev>,
    latency: Histogram<u64>,
}

fn histogram() -> Histogram<u64> {
    // Microseconds up to an hour, 3 significant digits.
    Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("static histogram bounds")
}

#[derive(serde::Deserialize)]
struct Payload {
    s: u64,
    t: u64,
}

enum End {
    Stop,
    Cut,
    Lost,
}

async fn subscriber(
    index: usize,
    channel: String,
    ctx: Arc<Ctx>,
    shared: Arc<SubShared>,
    stop: CancellationToken,
) -> SubResult {
    let mut events = Vec::new();
    let mut latency = histogram();
    let mut node = index % ctx.urls.len();
    let mut since: Option<StreamPosition> = None;
    while !stop.is_cancelled() {
        let (client, mut client_events) = Client::new(
            ctx.urls[node].clone(),
            ClientConfig {
                protocol: ctx.protocol,
                name: "gyre-chaos".into(),
                min_reconnect_delay: Duration::from_millis(100),
                max_reconnect_delay: Duration::from_millis(500),
                timeout: Duration::from_secs(3),
                ..Default::default()
            },
        );
        let config = SubscriptionConfig {
            recoverable: ctx.recoverable,
            positioned: ctx.recoverable,
            since: since.clone(),
            min_resubscribe_delay: Duration::from_millis(100),
            max_resubscribe_delay: Duration::from_millis(1000),
            ..Default::default()
        };
        let Ok((sub, mut sub_events)) = client.new_subscription(channel.clone(), config).await
        else {
            node = (node + 1) % ctx.urls.len();
            continue;
        };
        sub.subscribe();
        client.connect();
        let end = loop {
            tokio::select! {
                biased;
                () = stop.cancelled() => break End::Stop,
                () = shared.cut.notified() => break End::Cut,
                Some(ev) = client_events.recv() => match ev {
                    ClientEvent::Connected { client: id, .. } => {
                        *shared.client.lock() = Some((id, node));
                    }
                    ClientEvent::Connecting(d) if d.code != 0 => break End::Lost,
                    ClientEvent::Disconnected(_) => break End::Lost,
                    _ => {}
                },
                Some(ev) = sub_events.recv() => match ev {
                    SubscriptionEvent::Subscribed(sc) => {
                        let pos = sc.stream_position.clone().unwrap_or_default();
                        let recovered = sc.was_recovering && sc.recovered;
                        if sc.was_recovering {
                            let counter = if recovered {
                                &ctx.stats.recovered
                            } else {
                                &ctx.stats.not_recovered
                            };
                            counter.fetch_add(1, Relaxed);
                        }
                        events.push(Ev::Sub {
                            recovered,
                            epoch: ctx.epoch(&pos.epoch),
                            offset: pos.offset,
                        });
                        if ctx.recoverable {
                            since = match since.take() {
                                Some(mut s) if recovered => {
                                    s.epoch = pos.epoch;
                                    Some(s)
                                }
                                _ => Some(pos),
                            };
                        }
                    }
                    SubscriptionEvent::Publication(p) => {
                        let Ok(payload) = serde_json::from_slice::<Payload>(&p.data) else {
                            continue;
                        };
                        let now = crate::client::now_ns();
                        let _ = latency.record((now.saturating_sub(payload.t) / 1000).max(1));
                        events.push(Ev::Pub { seq: payload.s, offset: p.offset });
                        ctx.stats.deliveries.fetch_add(1, Relaxed);
                        shared.seen.fetch_max(payload.s, Relaxed);
                        if let Some(s) = since.as_mut() {
                            s.offset = p.offset;
                        }
                    }
                    SubscriptionEvent::Subscribing(u) if u.code >= 2 => {
                        ctx.stats.resubscribes.fetch_add(1, Relaxed);
                    }
                    SubscriptionEvent::Unsubscribed(_) => break End::Lost,
                    _ => {}
                },
                else => break End::Lost,
            }
        };
        client.disconnect();
        *shared.client.lock() = None;
        if let End::Stop = end {
            break;
        }
        ctx.stats.reconnects.fetch_add(1, Relaxed);
        node = (node + 1) % ctx.urls.len();
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    SubResult { events, latency }
}

async fn publisher(
    index: usize,
    channel: String,
    interval: Duration,
    ctx: Arc<Ctx>,
    acks: Arc<Mutex<ChannelAcks>>,
    last: Arc<AtomicU64>,
    stop: CancellationToken,
) {
    let mut conns: Vec<Option<ApiConn>> = (0..ctx.api.len()).map(|_| None).collect();
    let mut node = index % ctx.api.len();
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut seq = 0u64;
    loop {
        tokio::select! {
            biased;
            () = stop.cancelled() => return,
            _ = ticker.tick() => {}
        }
        seq += 1;
        let body = format!(
            r#"{{"channel":"{channel}","data":{{"s":{seq},"t":{}}}}}"#,
            crate::client::now_ns()
        );
        let target = &ctx.api[node];
        let slot = &mut conns[node];
        let call = async {
            if slot.is_none() {
                *slot = Some(ApiConn::connect(target).await?);
            }
            match slot.as_mut() {
                Some(c) => c.call("publish", body.as_bytes()).await,
                None => anyhow::bail!("no connection"),
            }
        };
        match tokio::time::timeout(Duration::from_secs(3), call).await {
            Ok(Ok(reply)) => {
                let v: serde_json::Value = serde_json::from_slice(&reply).unwrap_or_default();
                let offset = v["result"]["offset"].as_u64().unwrap_or(0);
                let epoch = ctx.epoch(v["result"]["epoch"].as_str().unwrap_or(""));
                acks.lock().ack(seq, epoch, offset);
                last.store(seq, Relaxed);
                ctx.stats.acked.fetch_add(1, Relaxed);
            }
            _ => {
                ctx.stats.failed.fetch_add(1, Relaxed);
                conns[node] = None;
            }
        }
        node = (node + 1) % ctx.api.len();
    }
}

/// VmRSS of a process in KiB.
fn rss_kb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn write_rss(path: &std::path::Path, samples: &[(String, Vec<(f64, f64)>)]) -> anyhow::Result<()> {
    let svg = crate::plot::series_svg("Resident memory of each node", "MiB", samples);
    std::fs::write(path, svg).with_context(|| format!("writing {}", path.display()))?;
    let mut csv = String::from("node,seconds,rss_mib\n");
    for (name, pts) in samples {
        for (t, mib) in pts {
            csv.push_str(&format!("{name},{t:.1},{mib:.2}\n"));
        }
    }
    std::fs::write(path.with_extension("csv"), csv)?;
    for (name, pts) in samples {
        if let (Some(first), Some(last)) = (pts.first(), pts.last()) {
            let peak = pts.iter().map(|p| p.1).fold(0.0, f64::max);
            println!(
                "rss {name}: {:.1} MiB at {:.0} s, {:.1} MiB at {:.0} s, peak {peak:.1} MiB",
                first.1, first.0, last.1, last.0
            );
        }
    }
    Ok(())
}

/// A small xorshift generator: fault targets need variety, not quality.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n.max(1) as u64) as usize
    }
}

/// Runs the checker; `Ok(false)` when it found loss, duplicates or corruption.
pub async fn run(a: &ChaosArgs) -> anyhow::Result<bool> {
    let kinds: Vec<FaultKind> = if a.kinds.is_empty() {
        ALL_KINDS
            .iter()
            .copied()
            .filter(|k| k.applies(a.engine, a.netns))
            .collect()
    } else {
        a.kinds.clone()
    };
    if let Some(k) = kinds.iter().find(|k| !k.applies(a.engine, a.netns)) {
        anyhow::bail!(
            "fault {} does not apply to {:?}{}",
            k.name(),
            a.engine,
            if a.netns { "" } else { " without --netns" }
        );
    }
    anyhow::ensure!(
        !a.netns || a.engine == Engine::Redis,
        "--netns needs --engine redis"
    );
    anyhow::ensure!(a.nodes >= 1 && a.subs >= 1 && a.channels >= 1, "empty run");
    anyhow::ensure!(a.rate > 0.0, "--rate must be positive");
    let gyre = match &a.gyre {
        Some(p) => p.clone(),
        None => std::env::current_exe()?
            .parent()
            .context("no directory around gyre-bench")?
            .join("gyre"),
    };
    let dir = a
        .dir
        .clone()
        .unwrap_or_else(|| std::env::temp_dir().join(format!("gyre-chaos-{}", a.base_port)));
    let _ = std::fs::remove_dir_all(&dir);
    let mut cluster = Cluster::start(Setup {
        gyre,
        redis_server: a.redis_server.clone(),
        nats_server: a.nats_server.clone(),
        dir: dir.clone(),
        base_port: a.base_port,
        nodes: a.nodes,
        engine: a.engine,
        history_size: a.history_size,
        netns: a.netns,
    })
    .await?;
    eprintln!(
        "chaos: {} nodes on {:?}, {} subscribers in {} channels, {} publications/s, {} faults in {} s ({}); logs in {}",
        a.nodes,
        a.engine,
        a.subs,
        a.channels,
        a.rate,
        a.faults,
        a.duration,
        kinds.iter().map(|k| k.name()).collect::<Vec<_>>().join(","),
        dir.display()
    );
    let outcome = drive(a, &kinds, &mut cluster).await;
    cluster.shutdown().await;
    outcome
}

async fn drive(a: &ChaosArgs, kinds: &[FaultKind], cluster: &mut Cluster) -> anyhow::Result<bool> {
    let started = Instant::now();
    let ctx = Arc::new(Ctx {
        urls: (0..cluster.len()).map(|i| cluster.ws_url(i)).collect(),
        api: (0..cluster.len())
            .map(|i| {
                ApiTarget::parse(
                    &format!(
                        "http://{}:{}/api",
                        cluster.node_host(i),
                        cluster.node_port(i)
                    ),
                    "",
                )
            })
            .collect::<anyhow::Result<_>>()?,
        recoverable: a.engine.recoverable(),
        protocol: if a.protobuf {
            Protocol::Protobuf
        } else {
            Protocol::Json
        },
        stats: Stats::default(),
        epochs: Mutex::new(HashMap::new()),
    });
    let run_id = crate::client::now_ns() % 1_000_000_007;
    let channels: Vec<String> = (0..a.channels)
        .map(|i| format!("chaos{run_id}-{i}"))
        .collect();
    let stop_subs = CancellationToken::new();
    let mut subs = Vec::new();
    for i in 0..a.subs {
        let shared = Arc::new(SubShared::default());
        let task = tokio::spawn(subscriber(
            i,
            channels[i % a.channels].clone(),
            ctx.clone(),
            shared.clone(),
            stop_subs.clone(),
        ));
        subs.push((shared, task));
    }
    // Publish only once everyone is subscribed, so that every subscriber owes every
    // publication from the first one.
    let all_in = cluster::wait_until(Duration::from_secs(20), || async {
        subs.iter().all(|(s, _)| s.client.lock().is_some())
    })
    .await;
    if all_in.is_err() {
        eprintln!("warning: not every subscriber connected within 20 s; going on");
    }
    tokio::time::sleep(Duration::from_millis(500)).await;

    let stop_pubs = CancellationToken::new();
    let interval = Duration::from_secs_f64(a.channels as f64 / a.rate);
    let mut pubs = Vec::new();
    let mut acks = Vec::new();
    let mut lasts = Vec::new();
    for (i, ch) in channels.iter().enumerate() {
        let (ack, last) = (
            Arc::new(Mutex::new(ChannelAcks::default())),
            Arc::new(AtomicU64::new(0)),
        );
        pubs.push(tokio::spawn(publisher(
            i,
            ch.clone(),
            interval,
            ctx.clone(),
            ack.clone(),
            last.clone(),
            stop_pubs.clone(),
        )));
        acks.push(ack);
        lasts.push(last);
    }

    // Progress lines.
    let progress = {
        let ctx = ctx.clone();
        let every = a.progress;
        let stop = stop_subs.clone();
        tokio::spawn(async move {
            if every <= 0.0 {
                return;
            }
            loop {
                tokio::select! {
                    () = stop.cancelled() => return,
                    () = tokio::time::sleep(Duration::from_secs_f64(every)) => {}
                }
                let s = &ctx.stats;
                eprintln!(
                    "[{:>6.1}s] acked {} failed {} deliveries {} reconnects {} recovered {}/{} resubscribes {}",
                    started.elapsed().as_secs_f64(),
                    s.acked.load(Relaxed),
                    s.failed.load(Relaxed),
                    s.deliveries.load(Relaxed),
                    s.reconnects.load(Relaxed),
                    s.recovered.load(Relaxed),
                    s.recovered.load(Relaxed) + s.not_recovered.load(Relaxed),
                    s.resubscribes.load(Relaxed),
                );
            }
        })
    };

    // Resident memory of the nodes (the pids of the start: a restarted node is no
    // longer sampled).
    let rss = a.rss_plot.as_ref().map(|_| {
        let pids: Vec<Option<u32>> = (0..cluster.len()).map(|i| cluster.node_pid(i)).collect();
        let stop = stop_subs.clone();
        tokio::spawn(async move {
            let mut samples: Vec<(String, Vec<(f64, f64)>)> = (0..pids.len())
                .map(|i| (format!("node {i}"), Vec::new()))
                .collect();
            loop {
                for (i, pid) in pids.iter().enumerate() {
                    if let Some(kb) = pid.and_then(rss_kb) {
                        samples[i]
                            .1
                            .push((started.elapsed().as_secs_f64(), kb as f64 / 1024.0));
                    }
                }
                tokio::select! {
                    () = stop.cancelled() => return samples,
                    () = tokio::time::sleep(Duration::from_secs(10)) => {}
                }
            }
        })
    });

    // Faults.
    let mut rng = Rng(crate::client::now_ns() | 1);
    let mut faults: BTreeMap<&'static str, u64> = BTreeMap::new();
    let mut fault_errors = Vec::new();
    let publish_start = Instant::now();
    let duration = Duration::from_secs_f64(a.duration);
    let spacing = duration.div_f64(a.faults.max(1) as f64);
    for n in 0..a.faults {
        let at = publish_start + spacing.mul_f64(n as f64 + 0.5);
        tokio::time::sleep_until(at.into()).await;
        if publish_start.elapsed() >= duration {
            break;
        }
        let kind = kinds[n % kinds.len()];
        let victim = (n / kinds.len()) % cluster.len();
        let cut = ((a.subs as f64 * a.cut_share).ceil() as usize).clamp(1, a.subs);
        let t = Instant::now();
        let result: anyhow::Result<()> = async {
            match kind {
                FaultKind::ClientCut => {
                    for _ in 0..cut {
                        subs[rng.below(subs.len())].0.cut.notify_one();
                    }
                }
                FaultKind::ServerDisconnect => {
                    for _ in 0..cut {
                        let Some((client, on)) =
                            subs[rng.below(subs.len())].0.client.lock().clone()
                        else {
                            continue;
                        };
                        // Through another node: the command travels over the engine.
                        let via = (on + 1 + rng.below(cluster.len().max(2) - 1)) % cluster.len();
                        let body = json!({"user": "", "client": client,
                            "disconnect": {"code": 3099, "reason": "chaos"}});
                        let mut c = ApiConn::connect(&ctx.api[via]).await?;
                        c.call("disconnect", body.to_string().as_bytes()).await?;
                    }
                }
                FaultKind::NodeKill => {
                    cluster.kill_node(victim).await;
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    cluster.start_node(victim).await?;
                }
                FaultKind::NodeTerm => {
                    cluster.stop_node(victim).await;
                    cluster.start_node(victim).await?;
                }
                FaultKind::RedisRestart => cluster.restart_redis(Duration::from_secs(1)).await?,
                FaultKind::NatsRestart => cluster.restart_nats(Duration::from_secs(1)).await?,
                FaultKind::SentinelFailover => cluster.sentinel_failover().await?,
                FaultKind::NetSlow | FaultKind::NetPartition => {
                    let slow = kind == FaultKind::NetSlow;
                    cluster.net_impair(victim, slow).await?;
                    tokio::time::sleep(Duration::from_secs(3)).await;
                    cluster.net_heal(victim, slow).await?;
                }
            }
            Ok(())
        }
        .await;
        *faults.entry(kind.name()).or_default() += 1;
        match result {
            Ok(()) => eprintln!(
                "[{:>6.1}s] fault {}: {} ({} ms)",
                started.elapsed().as_secs_f64(),
                n + 1,
                kind.name(),
                t.elapsed().as_millis()
            ),
            Err(e) => {
                eprintln!("fault {} ({}) failed: {e:#}", n + 1, kind.name());
                fault_errors.push(format!("{}: {e:#}", kind.name()));
            }
        }
    }
    let remaining = duration.saturating_sub(publish_start.elapsed());
    tokio::time::sleep(remaining).await;

    // Heal, let everyone settle on the healed cluster, then stop publishing and drain.
    cluster.heal().await?;
    let settled = cluster::wait_until(Duration::from_secs(20), || async {
        subs.iter().all(|(s, _)| s.client.lock().is_some())
    })
    .await;
    if settled.is_err() {
        eprintln!("warning: not every subscriber reconnected within 20 s of the end");
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop_pubs.cancel();
    for p in pubs {
        let _ = p.await;
    }
    let drained = cluster::wait_until(Duration::from_secs(20), || async {
        subs.iter()
            .enumerate()
            .all(|(i, (s, _))| s.seen.load(Relaxed) >= lasts[i % a.channels].load(Relaxed))
    })
    .await;
    if drained.is_err() {
        eprintln!("warning: some subscribers did not reach the last publication within 20 s");
    }
    stop_subs.cancel();
    let _ = progress.await;
    if let (Some(task), Some(path)) = (rss, &a.rss_plot) {
        let samples = task.await.context("RSS sampler")?;
        write_rss(path, &samples)?;
    }

    let mut total = Verdict::default();
    let mut latency = histogram();
    let mut worst: Vec<(usize, Verdict)> = Vec::new();
    for (i, (_, task)) in subs.into_iter().enumerate() {
        let r = task.await.context("subscriber task")?;
        let acks = acks[i % a.channels].lock();
        let v = check::check(&r.events, &acks, ctx.recoverable);
        if !v.clean() {
            worst.push((i, v));
        }
        total.add(&v);
        let _ = latency.add(&r.latency);
    }
    let s = &ctx.stats;
    let pass = total.clean() && fault_errors.is_empty();
    let q = |p: f64| latency.value_at_quantile(p) as f64 / 1000.0;
    let fault_count: u64 = faults.values().sum();
    let by_kind = faults
        .iter()
        .map(|(k, n)| format!("{k} {n}"))
        .collect::<Vec<_>>()
        .join(", ");
    println!(
        "chaos {engine:?}: {nodes} nodes, {subs} subscribers in {ch} channels, {secs:.1} s\n\
         publications: {acked} acknowledged, {failed} failed (not acknowledged)\n\
         deliveries:   {delivered}\n\
         faults:       {fault_count} ({by_kind}), {errs} could not be injected\n\
         reconnects:   {reconnects}; recoveries {rok} ok, {rfail} failed (client told); resubscribes asked by the server {resub}\n\
         verdict:      silent gaps {gaps}, duplicates {dups}, wrong position {mism}, segments after a told gap {told}, reordered (no history) {reord}\n\
         latency publish->deliver (ms): p50 {p50:.2}, p99 {p99:.2}, p99.9 {p999:.2}, max {max:.2}\n\
         result:       {result}",
        engine = a.engine,
        nodes = a.nodes,
        subs = a.subs,
        ch = a.channels,
        secs = started.elapsed().as_secs_f64(),
        acked = s.acked.load(Relaxed),
        failed = s.failed.load(Relaxed),
        delivered = total.delivered,
        errs = fault_errors.len(),
        reconnects = s.reconnects.load(Relaxed),
        rok = s.recovered.load(Relaxed),
        rfail = s.not_recovered.load(Relaxed),
        resub = s.resubscribes.load(Relaxed),
        gaps = total.silent_gaps,
        dups = total.duplicates,
        mism = total.mismatched,
        told = total.told,
        reord = total.reordered,
        p50 = q(0.5),
        p99 = q(0.99),
        p999 = q(0.999),
        max = latency.max() as f64 / 1000.0,
        result = if pass { "PASS" } else { "FAIL" },
    );
    for (i, v) in worst.iter().take(10) {
        println!(
            "  subscriber {i} (channel {}): {v:?}",
            channels[i % a.channels]
        );
    }
    for e in &fault_errors {
        println!("  fault error: {e}");
    }
    let report = json!({
        "scenario": "chaos",
        "engine": format!("{:?}", a.engine).to_lowercase(),
        "nodes": a.nodes,
        "subs": a.subs,
        "channels": a.channels,
        "seconds": started.elapsed().as_secs_f64(),
        "acked": s.acked.load(Relaxed),
        "failed_publishes": s.failed.load(Relaxed),
        "deliveries": total.delivered,
        "faults": faults,
        "fault_errors": fault_errors.len(),
        "reconnects": s.reconnects.load(Relaxed),
        "recoveries_ok": s.recovered.load(Relaxed),
        "recoveries_failed": s.not_recovered.load(Relaxed),
        "silent_gaps": total.silent_gaps,
        "duplicates": total.duplicates,
        "mismatched": total.mismatched,
        "reordered": total.reordered,
        "p99_ms": q(0.99),
        "pass": pass,
    });
    println!("{}", crate::stats::json_line(&report));
    Ok(pass)
}
