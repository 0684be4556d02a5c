//! Connection scenarios: `idle` (memory per idle connection) and `connect` (storm).

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use gyre_protocol::Protocol;
use serde_json::{Value, json};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use crate::client::{Dialer, Sink};
use crate::load::progress;
use crate::stats::{commas, latency_json, latency_line, new_histogram};

struct NullSink;

impl Sink for NullSink {
    fn publication(&mut self, _seq: u64, _send_ns: u64, _now_ns: u64) {}
    fn frame(&mut self, _bytes: usize) {}
}

/// Raises this process's open-file limit: to 1,048,576 (soft and hard) when allowed
/// (root), else as far as the hard limit goes. Returns the soft limit now in force.
pub fn raise_nofile() -> u64 {
    const WANT: u64 = 1 << 20;
    if rlimit::setrlimit(rlimit::Resource::NOFILE, WANT, WANT).is_ok() {
        return WANT;
    }
    rlimit::increase_nofile_limit(u64::MAX).unwrap_or(0)
}

/// Resident set size of `pid` in bytes, from `/proc/PID/status` (`VmRSS`).
pub fn rss_bytes(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("reading /proc/{pid}/status"))?;
    parse_vmrss(&status).with_context(|| format!("no VmRSS in /proc/{pid}/status"))
}

/// CPU time (user + system, all threads) consumed so far by `pid`, in seconds, from
/// `/proc/PID/stat` (Linux reports it in USER_HZ = 100 ticks per second).
pub fn cpu_secs(pid: u32) -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("reading /proc/{pid}/stat"))?;
    parse_cpu_ticks(&stat)
        .map(|t| t as f64 / 100.0)
        .with_context(|| format!("bad /proc/{pid}/stat"))
}

fn parse_cpu_ticks(stat: &str) -> Option<u64> {
    // Fields after the command name (which may contain spaces) start at field 3.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

fn parse_vmrss(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line
        .trim_start_matches("VmRSS:")
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kb * 1024)
}

/// `127.0.0.1,127.0.0.2` or a range `127.0.0.1-127.0.0.8`.
pub fn parse_source_ips(spec: &str) -> anyhow::Result<Vec<IpAddr>> {
    let mut out = Vec::new();
    for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        if let Some((a, b)) = part.split_once('-') {
            let (a, b): (std::net::Ipv4Addr, std::net::Ipv4Addr) = (a.parse()?, b.parse()?);
            let (a, b) = (u32::from(a), u32::from(b));
            if b < a || b - a > 65_536 {
                bail!("bad address range {part}");
            }
            out.extend((a..=b).map(|v| IpAddr::V4(v.into())));
        } else {
            out.push(part.parse()?);
        }
    }
    Ok(out)
}

/// Settings of the `idle` scenario.
#[derive(Debug, Clone)]
pub struct IdleConfig {
    /// Server URL.
    pub url: String,
    /// Encoding.
    pub protocol: Protocol,
    /// Connect token.
    pub token: String,
    /// Connections to open.
    pub conns: usize,
    /// Channel (or prefix when not shared).
    pub channel: String,
    /// All connections in one channel instead of one channel each.
    pub shared_channel: bool,
    /// Server process to read RSS from.
    pub pid: Option<u32>,
    /// How long to hold the connections open once all are up.
    pub hold: Duration,
    /// Local addresses to spread connections over.
    pub source_ips: Vec<IpAddr>,
    /// Connections being opened at once.
    pub concurrency: usize,
    /// No progress bar.
    pub quiet: bool,
}

/// Opens `conns` idle subscribed connections, holds them, reports server memory.
pub async fn idle(cfg: IdleConfig) -> anyhow::Result<(Value, String)> {
    let nofile = raise_nofile();
    let mut dialer = Dialer::new(&cfg.url, cfg.protocol).await?;
    dialer.token = cfg.token.clone();
    dialer.source_ips = cfg.source_ips.clone();
    dialer.read_buffer = 4096;
    let dialer = Arc::new(dialer);
    let rss = |pid: Option<u32>| pid.map(rss_bytes).transpose();
    let rss_before = rss(cfg.pid)?;
    let stop = CancellationToken::new();
    let gate = Arc::new(Semaphore::new(cfg.concurrency.max(1)));
    let (ok, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let first_error = Arc::new(parking_lot::Mutex::new(None::<String>));
    let dropped = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::with_capacity(cfg.conns);
    let start = Instant::now();
    for i in 0..cfg.conns {
        let (dialer, stop, gate) = (dialer.clone(), stop.clone(), gate.clone());
        let (ok, failed, first_error, dropped) = (
            ok.clone(),
            failed.clone(),
            first_error.clone(),
            dropped.clone(),
        );
        let channel = if cfg.shared_channel {
            cfg.channel.clone()
        } else {
            format!("{}-{i}", cfg.channel)
        };
        tasks.push(tokio::spawn(async move {
            let opened = {
                let _permit = gate.acquire().await;
                dialer.open_subscribed(i, &[channel]).await
            };
            match opened {
                Ok(mut conn) => {
                    ok.fetch_add(1, Ordering::Relaxed);
                    if conn.read_until(&mut NullSink, &stop).await.is_some() {
                        dropped.fetch_add(1, Ordering::Relaxed);
                    }
                }
                Err(e) => {
                    failed.fetch_add(1, Ordering::Relaxed);
                    first_error.lock().get_or_insert_with(|| format!("{e:#}"));
                }
            }
        }));
    }
    let mp = progress(cfg.quiet);
    let pb = mp.add(indicatif::ProgressBar::new(cfg.conns as u64));
    loop {
        let done = ok.load(Ordering::Relaxed) + failed.load(Ordering::Relaxed);
        pb.set_position(done as u64);
        if done >= cfg.conns {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    pb.finish_and_clear();
    let connect_secs = start.elapsed().as_secs_f64();
    let rss_connected = rss(cfg.pid)?;
    tokio::time::sleep(cfg.hold).await;
    let rss_after = rss(cfg.pid)?;
    let open = ok.load(Ordering::Relaxed) - dropped.load(Ordering::Relaxed);
    stop.cancel();
    for t in tasks {
        let _ = t.await;
    }
    let per_conn = match (rss_before, rss_after) {
        (Some(b), Some(a)) if open > 0 => Some(a.saturating_sub(b) as f64 / open as f64),
        _ => None,
    };
    let json = json!({
        "scenario": "idle",
        "url": cfg.url,
        "protocol": protocol_name(cfg.protocol),
        "conns": cfg.conns,
        "connected": ok.load(Ordering::Relaxed),
        "failed": failed.load(Ordering::Relaxed),
        "dropped_while_holding": dropped.load(Ordering::Relaxed),
        "connect_secs": (connect_secs * 1000.0).round() / 1000.0,
        "hold_secs": cfg.hold.as_secs_f64(),
        "pid": cfg.pid,
        "rss_before": rss_before,
        "rss_connected": rss_connected,
        "rss_after": rss_after,
        "bytes_per_conn": per_conn.map(f64::round),
        "nofile_limit": nofile,
        "first_error": *first_error.lock(),
    });
    let mut text = format!(
        "idle {}: {} of {} connected ({} failed, {} dropped) in {connect_secs:.2} s, held {:.1} s\n",
        cfg.url,
        ok.load(Ordering::Relaxed),
        cfg.conns,
        failed.load(Ordering::Relaxed),
        dropped.load(Ordering::Relaxed),
        cfg.hold.as_secs_f64()
    );
    if let (Some(b), Some(c), Some(a), Some(p)) = (rss_before, rss_connected, rss_after, per_conn) {
        text.push_str(&format!(
            "Server RSS: {:.1} MiB before, {:.1} MiB connected, {:.1} MiB after hold → {} bytes per connection\n",
            b as f64 / 1048576.0,
            c as f64 / 1048576.0,
            a as f64 / 1048576.0,
            commas(p)
        ));
    }
    if let Some(e) = &*first_error.lock() {
        text.push_str(&format!("First error: {e}\n"));
    }
    Ok((json, text))
}

/// Settings of the `connect` scenario.
#[derive(Debug, Clone)]
pub struct ConnectConfig {
    /// Server URL.
    pub url: String,
    /// Encoding.
    pub protocol: Protocol,
    /// Connect token.
    pub token: String,
    /// Connections in total.
    pub conns: usize,
    /// Connects in flight at once.
    pub concurrency: usize,
    /// Also subscribe each connection to this channel.
    pub channel: Option<String>,
    /// Server process whose CPU time is measured over the storm.
    pub server_pid: Option<u32>,
    /// Local addresses to spread connections over.
    pub source_ips: Vec<IpAddr>,
    /// No progress bar.
    pub quiet: bool,
}

/// Connection storm: `conns` connects (TCP + WebSocket + `connect` command, and
/// `subscribe` if asked), `concurrency` at a time; connections stay open until the end.
pub async fn connect(cfg: ConnectConfig) -> anyhow::Result<(Value, String)> {
    raise_nofile();
    let mut dialer = Dialer::new(&cfg.url, cfg.protocol).await?;
    dialer.token = cfg.token.clone();
    dialer.source_ips = cfg.source_ips.clone();
    dialer.read_buffer = 4096;
    let dialer = Arc::new(dialer);
    let next = Arc::new(AtomicUsize::new(0));
    let mp = progress(cfg.quiet);
    let pb = mp.add(indicatif::ProgressBar::new(cfg.conns as u64));
    let channels: Vec<String> = cfg.channel.iter().cloned().collect();
    let cpu_at_start = cfg.server_pid.and_then(|pid| cpu_secs(pid).ok());
    let start = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..cfg.concurrency.max(1).min(cfg.conns.max(1)) {
        let (dialer, next, pb, channels) =
            (dialer.clone(), next.clone(), pb.clone(), channels.clone());
        let conns = cfg.conns;
        workers.push(tokio::spawn(async move {
            let mut hist = new_histogram();
            let mut kept = Vec::new();
            let mut errors: Vec<String> = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= conns {
                    break;
                }
                let t0 = Instant::now();
                match dialer.open_subscribed(i, &channels).await {
                    Ok(conn) => {
                        hist.saturating_record(t0.elapsed().as_nanos() as u64);
                        kept.push(conn);
                    }
                    Err(e) => errors.push(format!("{e:#}")),
                }
                pb.inc(1);
            }
            (hist, kept, errors)
        }));
    }
    let mut hist = new_histogram();
    let mut kept = Vec::new();
    let mut errors = Vec::new();
    for w in workers {
        let (h, k, e) = w.await?;
        hist.add(&h).expect("same bounds");
        kept.extend(k);
        errors.extend(e);
    }
    let secs = start.elapsed().as_secs_f64();
    let cpu_at_end = cfg.server_pid.and_then(|pid| cpu_secs(pid).ok());
    pb.finish_and_clear();
    let ok = kept.len();
    let server_cpu = cpu_at_start.zip(cpu_at_end).map(|(a, b)| b - a);
    let cpu_per_connect = server_cpu
        .filter(|_| ok > 0)
        .map(|c| (c * 1e6 / ok as f64 * 10.0).round() / 10.0);
    drop(kept);
    let rate = ok as f64 / secs.max(1e-9);
    let failures = errors.len();
    errors.sort();
    errors.dedup();
    errors.truncate(5);
    let json = json!({
        "scenario": "connect",
        "url": cfg.url,
        "protocol": protocol_name(cfg.protocol),
        "conns": cfg.conns,
        "concurrency": cfg.concurrency,
        "subscribe": cfg.channel.is_some(),
        "connected": ok,
        "failures": failures,
        "secs": (secs * 1000.0).round() / 1000.0,
        "connects_per_sec": rate.round(),
        "latency_us": latency_json(&hist),
        "server_cpu_secs": server_cpu.map(|c| (c * 100.0).round() / 100.0),
        "server_cpu_util": server_cpu.map(|c| (c / secs.max(1e-9) * 100.0).round() / 100.0),
        "server_cpu_us_per_connect": cpu_per_connect,
        "first_errors": errors,
    });
    let mut text = format!(
        "connect {}: {} connects ({} failed) at concurrency {} in {secs:.2} s → {} connects/sec\nConnect latency: {}\n",
        cfg.url,
        ok,
        failures,
        cfg.concurrency,
        commas(rate),
        latency_line(&hist)
    );
    if let (Some(c), Some(per)) = (server_cpu, cpu_per_connect) {
        text.push_str(&format!(
            "Server CPU: {c:.2} s ({:.0}% of one core), {per} µs per connect\n",
            c / secs.max(1e-9) * 100.0
        ));
    }
    for e in json["first_errors"].as_array().into_iter().flatten() {
        text.push_str(&format!("Error: {}\n", e.as_str().unwrap_or_default()));
    }
    Ok((json, text))
}

/// `json` / `protobuf`.
pub fn protocol_name(p: Protocol) -> &'static str {
    match p {
        Protocol::Json => "json",
        Protocol::Protobuf => "protobuf",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_vmrss() {
        let status = "Name:\tgyre\nVmPeak:\t  9999 kB\nVmRSS:\t    1234 kB\nThreads:\t2\n";
        assert_eq!(parse_vmrss(status), Some(1234 * 1024));
        assert_eq!(parse_vmrss("Name: x\n"), None);
        assert!(rss_bytes(std::process::id()).unwrap() > 0);
    }

    #[test]
    fn reads_cpu_time() {
        let stat = "123 (my (odd) name) S 1 2 3 4 5 6 7 8 9 10 250 70 0 0 20 0 1 0";
        assert_eq!(parse_cpu_ticks(stat), Some(320));
        assert_eq!(parse_cpu_ticks("1 (x) S 1"), None);
        let spin = std::time::Instant::now();
        while spin.elapsed() < std::time::Duration::from_millis(30) {}
        assert!(cpu_secs(std::process::id()).unwrap() > 0.0);
    }

    #[test]
    fn parses_source_ips() {
        let ips = parse_source_ips("127.0.0.1-127.0.0.3,127.0.1.1").unwrap();
        let ips: Vec<String> = ips.iter().map(ToString::to_string).collect();
        assert_eq!(ips, ["127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.1.1"]);
        assert!(parse_source_ips("127.0.0.5-127.0.0.1").is_err());
    }
}
