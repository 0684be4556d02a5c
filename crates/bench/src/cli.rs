//! Command line: subcommands, their flags, and running a scenario from them.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, anyhow};
use clap::{Args, Parser, Subcommand};
use gyre_protocol::Protocol;
use serde_json::Value;

use crate::api::ApiTarget;
use crate::client::Transport;
use crate::conns::{self, ConnectConfig, IdleConfig, parse_source_ips};
use crate::grpc::GrpcTarget;
use crate::load::{self, LoadConfig, PublishVia};

/// Load and benchmark tool for Gyre (and any Centrifugo v6 compatible server).
///
/// nats-bench style short flags are accepted: `-ns` = `--subs`, `-np` = `--pubs`,
/// `-ms` = `--size`.
#[derive(Debug, Parser)]
#[command(name = "gyre-bench", version)]
pub struct Cli {
    /// What to run.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// SUBS subscribers in one channel, PUBS publishers send MSGS messages.
    Fanout(FanoutArgs),
    /// Fixed publish rate for a fixed time; reports the latency distribution.
    Latency(LatencyArgs),
    /// Each subscriber in its own channel (or SUBS/C per channel), publishers spread over channels.
    ManyChannels(ManyChannelsArgs),
    /// Open N idle subscribed connections and report server memory per connection.
    Idle(IdleArgs),
    /// Connection storm: N connects, C at a time.
    Connect(ConnectArgs),
    /// Run the reference limit server.
    Reference(ServeArgs),
    /// Run the Gyre target server (permissive gyre::Node + WebSocket + /api/publish).
    GyreServer(ServeArgs),
    /// Run a backend for a server's HTTP connect proxy: every POST accepts the connection as --user.
    ConnectProxyBackend(ProxyBackendArgs),
    /// Run a scenario against servers A and B alternately; medians and ratio B/A.
    Compare(CompareArgs),
    /// Loss checker under faults: starts Gyre nodes and an engine, publishes numbered
    /// messages, cuts connections, kills nodes and engines; exits non-zero on a silent gap.
    Chaos(crate::chaos::ChaosArgs),
}

/// Flags shared by the publish/subscribe scenarios.
#[derive(Debug, Clone, Args)]
pub struct PubSubArgs {
    /// WebSocket endpoint.
    #[arg(
        short = 's',
        long = "server",
        default_value = "ws://127.0.0.1:8000/connection/websocket"
    )]
    pub server: String,
    /// Use the Protobuf protocol (subprotocol `centrifuge-protobuf`).
    #[arg(long)]
    pub protobuf: bool,
    /// Server API prefix for `POST {api}/publish` (default: `http://HOST:PORT/api` of
    /// --server), or `grpc://HOST:PORT` to publish through the gRPC server API.
    #[arg(long)]
    pub api: Option<String>,
    /// API key: the `X-API-Key` header, or over gRPC the metadata `authorization: apikey KEY`.
    #[arg(long, default_value = "")]
    pub api_key: String,
    /// Publish with client `publish` commands instead of the HTTP API.
    #[arg(long, conflicts_with = "api")]
    pub publish_via_clients: bool,
    /// Connect token (default: anonymous).
    #[arg(long, default_value = "")]
    pub token: String,
    /// Subscriber connections opened at once.
    #[arg(long, default_value_t = 256)]
    pub connect_concurrency: usize,
    /// Give up waiting for deliveries after this many seconds without progress.
    #[arg(long, default_value_t = 3.0)]
    pub drain_timeout: f64,
    /// Publishers pause while more than this many messages per subscriber are in
    /// flight (0 = never pause, as nats bench).
    #[arg(long, default_value_t = 1000)]
    pub window: u64,
    /// No progress bars.
    #[arg(short, long)]
    pub quiet: bool,
    /// Write an SVG with the latency distribution and throughput over time.
    #[arg(long)]
    pub plot: Option<PathBuf>,
    /// Server process id: report its CPU time per delivery (`{pid}` in `compare`).
    #[arg(long)]
    pub server_pid: Option<u32>,
    /// Transport of the subscribers: `http_stream` and `sse` use the address of
    /// --server (`/connection/http_stream`, `/connection/sse`, `/emulation`), JSON only.
    #[arg(long, value_enum, default_value_t = Transport::Websocket)]
    pub transport: Transport,
    /// Time each delivery by when its bytes reached this tool's socket (the kernel's
    /// receive timestamp) rather than by when the tool got round to reading them, so
    /// that the tool's own queueing on a busy core is left out. WebSocket only.
    #[arg(long)]
    pub socket_clock: bool,
    /// Write a CSV with one line per publication: when it was sent (ms after the first)
    /// and how long its first and its last delivery took (µs). A stall shows as a run of
    /// publications whose first delivery was late; a slow cycle over the connections as
    /// a late last delivery only.
    #[arg(long)]
    pub per_publication: Option<PathBuf>,
}

/// `fanout` flags.
#[derive(Debug, Clone, Args)]
pub struct FanoutArgs {
    /// Flags shared by the publish/subscribe scenarios.
    #[command(flatten)]
    pub common: PubSubArgs,
    /// Messages in total.
    #[arg(short = 'n', long = "msgs", default_value_t = 10_000)]
    pub msgs: u64,
    /// Subscriber connections (`-ns`).
    #[arg(long = "subs", default_value_t = 100)]
    pub subs: usize,
    /// Publishers (`-np`).
    #[arg(long = "pubs", default_value_t = 1)]
    pub pubs: usize,
    /// Message size in bytes (`-ms`).
    #[arg(long = "size", default_value_t = 128)]
    pub size: usize,
    /// Total publish rate in msgs/s (default: as fast as possible).
    #[arg(long)]
    pub rate: Option<f64>,
    /// Channel.
    pub channel: String,
}

/// `latency` flags.
#[derive(Debug, Clone, Args)]
pub struct LatencyArgs {
    /// Flags shared by the publish/subscribe scenarios.
    #[command(flatten)]
    pub common: PubSubArgs,
    /// Total publish rate in msgs/s.
    #[arg(short = 'r', long, default_value_t = 1000.0)]
    pub rate: f64,
    /// Seconds of publishing.
    #[arg(short = 'd', long, default_value_t = 5.0)]
    pub duration: f64,
    /// Subscriber connections (`-ns`).
    #[arg(long = "subs", default_value_t = 10)]
    pub subs: usize,
    /// Publishers (`-np`).
    #[arg(long = "pubs", default_value_t = 1)]
    pub pubs: usize,
    /// Message size in bytes (`-ms`).
    #[arg(long = "size", default_value_t = 128)]
    pub size: usize,
    /// Channel.
    pub channel: String,
}

/// `many-channels` flags.
#[derive(Debug, Clone, Args)]
pub struct ManyChannelsArgs {
    /// Flags shared by the publish/subscribe scenarios.
    #[command(flatten)]
    pub common: PubSubArgs,
    /// Messages in total.
    #[arg(short = 'n', long = "msgs", default_value_t = 10_000)]
    pub msgs: u64,
    /// Subscriber connections (`-ns`).
    #[arg(long = "subs", default_value_t = 100)]
    pub subs: usize,
    /// Publishers (`-np`).
    #[arg(long = "pubs", default_value_t = 1)]
    pub pubs: usize,
    /// Message size in bytes (`-ms`).
    #[arg(long = "size", default_value_t = 128)]
    pub size: usize,
    /// Number of channels (default: one per subscriber).
    #[arg(long)]
    pub channels: Option<usize>,
    /// Total publish rate in msgs/s (default: as fast as possible).
    #[arg(long)]
    pub rate: Option<f64>,
    /// Channel name prefix (channels are PREFIX-0 … PREFIX-(C-1)).
    pub channel: String,
}

/// `idle` flags.
#[derive(Debug, Clone, Args)]
pub struct IdleArgs {
    /// WebSocket endpoint.
    #[arg(
        short = 's',
        long = "server",
        default_value = "ws://127.0.0.1:8000/connection/websocket"
    )]
    pub server: String,
    /// Connections.
    #[arg(short = 'n', long = "conns", default_value_t = 1000)]
    pub conns: usize,
    /// Server process id, to read its RSS from /proc/PID/status.
    #[arg(long)]
    pub pid: Option<u32>,
    /// Seconds to hold the connections once all are open.
    #[arg(long, default_value_t = 5.0)]
    pub hold: f64,
    /// Local addresses to spread connections over: `127.0.0.1,127.0.0.2` or `127.0.0.1-127.0.0.4`.
    #[arg(long)]
    pub source_ips: Option<String>,
    /// Channel name (prefix `NAME-i` unless --shared-channel).
    #[arg(long, default_value = "idle")]
    pub channel: String,
    /// Subscribe every connection to the same channel.
    #[arg(long)]
    pub shared_channel: bool,
    /// Use the Protobuf protocol.
    #[arg(long)]
    pub protobuf: bool,
    /// Connect token.
    #[arg(long, default_value = "")]
    pub token: String,
    /// Connections opened at once.
    #[arg(short = 'c', long, default_value_t = 256)]
    pub concurrency: usize,
    /// No progress bar.
    #[arg(short, long)]
    pub quiet: bool,
}

/// `connect` flags.
#[derive(Debug, Clone, Args)]
pub struct ConnectArgs {
    /// WebSocket endpoint.
    #[arg(
        short = 's',
        long = "server",
        default_value = "ws://127.0.0.1:8000/connection/websocket"
    )]
    pub server: String,
    /// Connections in total.
    #[arg(short = 'n', long = "conns", default_value_t = 1000)]
    pub conns: usize,
    /// Connects in flight at once.
    #[arg(short = 'c', long, default_value_t = 100)]
    pub concurrency: usize,
    /// Also subscribe each connection to this channel.
    #[arg(long)]
    pub subscribe: Option<String>,
    /// Local addresses to spread connections over.
    #[arg(long)]
    pub source_ips: Option<String>,
    /// Use the Protobuf protocol.
    #[arg(long)]
    pub protobuf: bool,
    /// Connect token (empty = none: anonymous, or the server's connect proxy decides).
    #[arg(long, default_value = "")]
    pub token: String,
    /// Server process id: report its CPU time per connect (`{pid}` in `compare`).
    #[arg(long)]
    pub server_pid: Option<u32>,
    /// No progress bar.
    #[arg(short, long)]
    pub quiet: bool,
}

/// `reference` / `gyre-server` flags.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Port.
    #[arg(short, long, default_value_t = 8000)]
    pub port: u16,
    /// Address to bind.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// `gyre-server` only: hold each connection's first queued message this many
    /// milliseconds so that more messages share a frame (0 = write at once).
    #[arg(long, default_value_t = 0)]
    pub write_delay_ms: u64,
    /// `gyre-server` only: never let a broadcast write to a quiet socket itself (to
    /// measure what those direct writes save).
    #[arg(long)]
    pub no_direct_writes: bool,
}

/// `connect-proxy-backend` flags.
#[derive(Debug, Clone, Args)]
pub struct ProxyBackendArgs {
    /// Port.
    #[arg(short, long, default_value_t = 8001)]
    pub port: u16,
    /// Address to bind.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// User id of every accepted connection.
    #[arg(long, default_value = "42")]
    pub user: String,
}

/// `compare` flags.
#[derive(Debug, Clone, Args)]
pub struct CompareArgs {
    /// Command starting server A (`{port}` and `{addr}` are replaced).
    #[arg(long)]
    pub a: Option<String>,
    /// Command starting server B.
    #[arg(long)]
    pub b: Option<String>,
    /// Address of server A, `host:port` or a URL (default 127.0.0.1:18001).
    #[arg(long, alias = "a-url")]
    pub a_addr: Option<String>,
    /// Address of server B (default 127.0.0.1:18002).
    #[arg(long, alias = "b-url")]
    pub b_addr: Option<String>,
    /// Label of A.
    #[arg(long, default_value = "A")]
    pub a_name: String,
    /// Label of B.
    #[arg(long, default_value = "B")]
    pub b_name: String,
    /// `KEY=VALUE`: `{KEY}` in A's command and in the scenario stands for VALUE when
    /// running against A (repeatable; VALUE may hold `{addr}` etc.).
    #[arg(long = "a-var", value_name = "KEY=VALUE")]
    pub a_vars: Vec<String>,
    /// `KEY=VALUE` for B, as --a-var.
    #[arg(long = "b-var", value_name = "KEY=VALUE")]
    pub b_vars: Vec<String>,
    /// Runs per server (alternating A B A B …).
    #[arg(long, default_value_t = 5)]
    pub runs: usize,
    /// Pin started servers to this CPU (`taskset -c N`).
    #[arg(long)]
    pub server_cpu: Option<String>,
    /// Pin this tool to this CPU.
    #[arg(long)]
    pub client_cpu: Option<String>,
    /// Scenario and its flags; `{addr}`, `{host}`, `{port}`, `{pid}` and the --a-var /
    /// --b-var keys are replaced per server.
    #[arg(last = true, required = true)]
    pub scenario: Vec<String>,
}

/// Maps the nats-bench style `-ns`, `-np`, `-ms` to long flags.
pub fn normalize_args(args: impl IntoIterator<Item = String>) -> Vec<String> {
    args.into_iter()
        .map(|a| match a.as_str() {
            "-ns" => "--subs".to_owned(),
            "-np" => "--pubs".to_owned(),
            "-ms" => "--size".to_owned(),
            _ => a,
        })
        .collect()
}

/// Parses a command line (without the program name).
pub fn parse(args: &[String]) -> anyhow::Result<Cli> {
    let argv = std::iter::once("gyre-bench".to_owned()).chain(normalize_args(args.iter().cloned()));
    Cli::try_parse_from(argv).map_err(|e| anyhow!("{e}"))
}

fn protocol(protobuf: bool) -> Protocol {
    if protobuf {
        Protocol::Protobuf
    } else {
        Protocol::Json
    }
}

fn default_api(server: &str) -> anyhow::Result<String> {
    let rest = server
        .strip_prefix("ws://")
        .ok_or_else(|| anyhow!("only ws:// URLs are supported: {server}"))?;
    let hostport = rest.split('/').next().unwrap_or(rest);
    Ok(format!("http://{hostport}/api"))
}

impl PubSubArgs {
    fn load_config(&self, scenario: &'static str) -> anyhow::Result<LoadConfig> {
        if self.protobuf && self.transport != Transport::Websocket {
            anyhow::bail!("--transport {} is JSON only", self.transport.name());
        }
        if self.socket_clock && self.transport != Transport::Websocket {
            anyhow::bail!("--socket-clock works with --transport websocket only");
        }
        let via = if self.publish_via_clients {
            PublishVia::Clients
        } else {
            let api = match &self.api {
                Some(a) => a.clone(),
                None => default_api(&self.server)?,
            };
            if api.starts_with("grpc://") {
                PublishVia::Grpc(GrpcTarget::parse(&api, &self.api_key)?)
            } else {
                PublishVia::Api(ApiTarget::parse(&api, &self.api_key)?)
            }
        };
        Ok(LoadConfig {
            scenario,
            url: self.server.clone(),
            protocol: protocol(self.protobuf),
            token: self.token.clone(),
            channel: String::new(),
            channels: 1,
            subs: 1,
            pubs: 1,
            msgs: 1,
            size: 128,
            via,
            rate: None,
            window: self.window,
            connect_concurrency: self.connect_concurrency,
            drain_timeout: Duration::from_secs_f64(self.drain_timeout.max(0.1)),
            quiet: self.quiet,
            server_pid: self.server_pid,
            transport: self.transport,
            socket_clock: self.socket_clock,
            per_publication: self.per_publication.is_some(),
        })
    }
}

/// What a scenario produced.
#[derive(Debug)]
pub struct Outcome {
    /// The JSON result line.
    pub json: Value,
    /// Human-readable summary.
    pub text: String,
}

/// Runs a scenario subcommand (not `reference`, `gyre-server` or `compare`).
pub async fn run_scenario(command: &Command, force_quiet: bool) -> anyhow::Result<Outcome> {
    let (cfg, plot, spans) = match command {
        Command::Fanout(a) => {
            let mut cfg = a.common.load_config("fanout")?;
            cfg.channel = a.channel.clone();
            (cfg.subs, cfg.pubs, cfg.msgs, cfg.size, cfg.rate) =
                (a.subs, a.pubs, a.msgs, a.size, a.rate);
            (cfg, a.common.plot.clone(), a.common.per_publication.clone())
        }
        Command::Latency(a) => {
            let mut cfg = a.common.load_config("latency")?;
            cfg.channel = a.channel.clone();
            let msgs = (a.rate * a.duration).round().max(1.0) as u64;
            (cfg.subs, cfg.pubs, cfg.msgs, cfg.size, cfg.rate) =
                (a.subs, a.pubs, msgs, a.size, Some(a.rate));
            (cfg, a.common.plot.clone(), a.common.per_publication.clone())
        }
        Command::ManyChannels(a) => {
            let mut cfg = a.common.load_config("many-channels")?;
            cfg.channel = a.channel.clone();
            cfg.channels = a.channels.unwrap_or(a.subs).max(1);
            (cfg.subs, cfg.pubs, cfg.msgs, cfg.size, cfg.rate) =
                (a.subs, a.pubs, a.msgs, a.size, a.rate);
            (cfg, a.common.plot.clone(), a.common.per_publication.clone())
        }
        Command::Idle(a) => {
            let (json, text) = conns::idle(IdleConfig {
                url: a.server.clone(),
                protocol: protocol(a.protobuf),
                token: a.token.clone(),
                conns: a.conns,
                channel: a.channel.clone(),
                shared_channel: a.shared_channel,
                pid: a.pid,
                hold: Duration::from_secs_f64(a.hold.max(0.0)),
                source_ips: a
                    .source_ips
                    .as_deref()
                    .map(parse_source_ips)
                    .transpose()?
                    .unwrap_or_default(),
                concurrency: a.concurrency,
                quiet: a.quiet || force_quiet,
            })
            .await?;
            return Ok(Outcome { json, text });
        }
        Command::Connect(a) => {
            let (json, text) = conns::connect(ConnectConfig {
                url: a.server.clone(),
                protocol: protocol(a.protobuf),
                token: a.token.clone(),
                conns: a.conns,
                concurrency: a.concurrency,
                channel: a.subscribe.clone(),
                server_pid: a.server_pid,
                source_ips: a
                    .source_ips
                    .as_deref()
                    .map(parse_source_ips)
                    .transpose()?
                    .unwrap_or_default(),
                quiet: a.quiet || force_quiet,
            })
            .await?;
            return Ok(Outcome { json, text });
        }
        Command::Reference(_)
        | Command::GyreServer(_)
        | Command::ConnectProxyBackend(_)
        | Command::Compare(_)
        | Command::Chaos(_) => {
            anyhow::bail!("not a scenario")
        }
    };
    let mut cfg = cfg;
    cfg.quiet |= force_quiet;
    let title = format!(
        "{} — {} subs, {} pubs, {} msgs × {} B, {}",
        cfg.scenario,
        cfg.subs,
        cfg.pubs,
        cfg.msgs,
        cfg.size,
        conns::protocol_name(cfg.protocol)
    );
    let report = load::run(cfg).await?;
    if let Some(path) = plot {
        std::fs::write(
            &path,
            crate::plot::svg(&title, &report.latency, &report.timeline),
        )
        .with_context(|| format!("writing {}", path.display()))?;
    }
    if let Some(path) = spans {
        std::fs::write(&path, load::per_publication_csv(&report.per_publication))
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(Outcome {
        json: report.json,
        text: report.text,
    })
}

/// `host:port` to bind for `reference` / `gyre-server`.
pub fn bind_addr(a: &ServeArgs) -> anyhow::Result<SocketAddr> {
    format!("{}:{}", a.host, a.port)
        .parse()
        .with_context(|| format!("bad address {}:{}", a.host, a.port))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_owned).collect()
    }

    #[test]
    fn nats_style_flags_parse() {
        let cli = parse(&args("fanout -s ws://127.0.0.1:9/connection/websocket -n 50 -ns 20 -np 2 -ms 64 --protobuf --api http://127.0.0.1:9/api --api-key k chan")).unwrap();
        let Command::Fanout(a) = cli.command else {
            panic!()
        };
        assert_eq!((a.msgs, a.subs, a.pubs, a.size), (50, 20, 2, 64));
        assert!(a.common.protobuf);
        assert_eq!(a.channel, "chan");
        let cfg = a.common.load_config("fanout").unwrap();
        assert!(matches!(cfg.via, PublishVia::Api(ref t) if t.prefix == "/api" && t.key == "k"));
    }

    #[test]
    fn api_defaults_to_the_server_port_and_clients_conflict_with_api() {
        let cli = parse(&args("fanout -s ws://10.0.0.1:8000/connection/websocket x")).unwrap();
        let Command::Fanout(a) = cli.command else {
            panic!()
        };
        let cfg = a.common.load_config("fanout").unwrap();
        assert!(matches!(cfg.via, PublishVia::Api(ref t) if t.hostport == "10.0.0.1:8000"));
        assert!(parse(&args("fanout --api http://x/api --publish-via-clients x")).is_err());
    }

    #[test]
    fn grpc_api_urls_publish_through_the_grpc_api() {
        let cli = parse(&args(
            "fanout -s ws://127.0.0.1:9/connection/websocket --api grpc://127.0.0.1:10000 --api-key k x",
        ))
        .unwrap();
        let Command::Fanout(a) = cli.command else {
            panic!()
        };
        let cfg = a.common.load_config("fanout").unwrap();
        assert!(
            matches!(cfg.via, PublishVia::Grpc(ref t) if t.hostport == "127.0.0.1:10000" && t.key == "k")
        );
    }

    #[test]
    fn compare_takes_the_scenario_after_double_dash() {
        let cli = parse(&args("compare --a-url http://127.0.0.1:1 --b-addr 127.0.0.1:2 --runs 3 -- fanout -ns 10 -s ws://{addr}/connection/websocket ch")).unwrap();
        let Command::Compare(c) = cli.command else {
            panic!()
        };
        assert_eq!(c.runs, 3);
        assert_eq!(c.a_addr.as_deref(), Some("http://127.0.0.1:1"));
        assert_eq!(c.scenario[0], "fanout");
        assert_eq!(c.scenario[2], "10");
    }
}
