//! The processes of a chaos run: Gyre nodes started from a `gyre` binary with generated
//! configs, and the engine they share — a Redis server, a Redis master + replica watched
//! by three Sentinels, or a NATS server — all on ports of the caller's choosing, all
//! killed when the run ends. Only processes started here are ever signalled.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, bail};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};

/// Which engine the nodes share.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Engine {
    /// One Redis server (`engine.type: redis`).
    Redis,
    /// A Redis master and a replica under three Sentinels.
    Sentinel,
    /// A NATS server as broker (`broker.type: nats`): no history, no recovery.
    Nats,
}

impl Engine {
    /// Channels are recoverable (history in the engine).
    pub fn recoverable(self) -> bool {
        !matches!(self, Engine::Nats)
    }
}

/// Sentinel master name.
const MASTER: &str = "chaosmaster";

/// A started process that is killed when dropped.
#[derive(Debug)]
struct Proc {
    child: Option<Child>,
    name: String,
}

impl Proc {
    fn spawn(name: &str, program: &Path, args: &[String], log: &Path) -> anyhow::Result<Proc> {
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .with_context(|| format!("opening {}", log.display()))?;
        let child = Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {name} ({})", program.display()))?;
        Ok(Proc {
            child: Some(child),
            name: name.to_owned(),
        })
    }

    fn pid(&self) -> Option<u32> {
        self.child.as_ref().and_then(|c| c.id())
    }

    /// `kill -9` and reap.
    async fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill().await;
        }
    }

    /// SIGTERM, then waits up to `grace` for the exit (SIGKILL after that).
    async fn terminate(&mut self, grace: Duration) {
        let Some(mut c) = self.child.take() else {
            return;
        };
        if let Some(pid) = c.id() {
            let _ = Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status()
                .await;
        }
        if tokio::time::timeout(grace, c.wait()).await.is_err() {
            eprintln!("{} ignored SIGTERM for {grace:?}; killing it", self.name);
            let _ = c.kill().await;
        }
    }
}

/// Where to find binaries and put files.
#[derive(Debug, Clone)]
pub struct Setup {
    /// The `gyre` binary.
    pub gyre: PathBuf,
    /// `redis-server`.
    pub redis_server: PathBuf,
    /// `nats-server`.
    pub nats_server: PathBuf,
    /// Logs, configs and Sentinel state.
    pub dir: PathBuf,
    /// First port; nodes use `base..base+nodes`, engines `base+100…`.
    pub base_port: u16,
    /// Number of Gyre nodes.
    pub nodes: usize,
    /// Engine.
    pub engine: Engine,
    /// Publications kept per channel.
    pub history_size: u64,
    /// Run every node in a network namespace of its own, joined to the host by a veth
    /// pair, so that the path between one node and Redis can be delayed or cut
    /// (`tc netem`) without touching anything else. Needs root and `ip`/`tc`.
    pub netns: bool,
}

/// The running cluster.
#[derive(Debug)]
pub struct Cluster {
    setup: Setup,
    nodes: Vec<Option<Proc>>,
    redis: Vec<Option<Proc>>,
    sentinels: Vec<Proc>,
    nats: Option<Proc>,
    namespaces: Vec<String>,
}

impl Cluster {
    /// Starts the engine, then the nodes; returns once every node accepts connections.
    pub async fn start(setup: Setup) -> anyhow::Result<Cluster> {
        std::fs::create_dir_all(&setup.dir)
            .with_context(|| format!("creating {}", setup.dir.display()))?;
        let mut c = Cluster {
            nodes: (0..setup.nodes).map(|_| None).collect(),
            redis: Vec::new(),
            sentinels: Vec::new(),
            nats: None,
            namespaces: Vec::new(),
            setup,
        };
        if c.setup.netns {
            for i in 0..c.setup.nodes {
                c.create_netns(i).await?;
            }
        }
        match c.setup.engine {
            Engine::Redis => {
                c.redis.push(None);
                c.start_redis(0).await?;
            }
            Engine::Sentinel => {
                c.redis.push(None);
                c.redis.push(None);
                c.start_redis(0).await?;
                c.start_redis(1).await?;
                for i in 0..3 {
                    c.start_sentinel(i).await?;
                }
                // The nodes ask the Sentinels for the master: let them agree first.
                wait_until(Duration::from_secs(10), || async {
                    c.sentinel_master().await.ok().flatten().is_some()
                })
                .await
                .context("sentinels never named a master")?;
            }
            Engine::Nats => c.start_nats().await?,
        }
        for i in 0..c.setup.nodes {
            c.start_node(i).await?;
        }
        Ok(c)
    }

    /// Number of nodes.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Always false: a cluster has at least one node.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// HTTP port of node `i`.
    pub fn node_port(&self, i: usize) -> u16 {
        self.setup.base_port + i as u16
    }

    /// Address node `i` listens on.
    pub fn node_host(&self, i: usize) -> String {
        if self.setup.netns {
            self.veth_addr(i, 2, false)
        } else {
            "127.0.0.1".to_owned()
        }
    }

    /// WebSocket URL of node `i`.
    pub fn ws_url(&self, i: usize) -> String {
        format!(
            "ws://{}:{}/connection/websocket",
            self.node_host(i),
            self.node_port(i)
        )
    }

    /// Address of the host (`end` 1) or namespace (`end` 2) side of one of node `i`'s
    /// veth pairs (`redis`: the pair that carries its Redis traffic, else the pair its
    /// clients use): a /30 of its own in 10.x.y.0, x from the base port so that parallel
    /// runs do not clash.
    fn veth_addr(&self, i: usize, end: u8, redis: bool) -> String {
        let y = i + if redis { 100 } else { 0 };
        format!("10.{}.{y}.{end}", 100 + self.setup.base_port % 100)
    }

    fn netns_name(&self, i: usize) -> String {
        format!("gyc{}n{i}", self.setup.base_port)
    }

    /// Host-side and namespace-side interface names (at most 15 bytes) of a pair.
    fn veth_names(&self, i: usize, redis: bool) -> (String, String) {
        let (h, n) = if redis { ('r', 's') } else { ('h', 'v') };
        let b = self.setup.base_port;
        (format!("gyc{b}{h}{i}"), format!("gyc{b}{n}{i}"))
    }

    /// A namespace for node `i` with two veth pairs to the host: one its clients use, one
    /// to Redis, so that the Redis path can be cut or slowed on its own. (Without `netem`
    /// in the kernel, a cut is the host end of the pair going down — packets vanish, no
    /// reset — and a slow link is a token bucket.)
    async fn create_netns(&mut self, i: usize) -> anyhow::Result<()> {
        let ns = self.netns_name(i);
        // Leftovers of an interrupted run with the same ports.
        let _ = ip(&["netns", "del", &ns]).await;
        ip(&["netns", "add", &ns]).await?;
        self.namespaces.push(ns.clone());
        ip(&["-n", &ns, "link", "set", "lo", "up"]).await?;
        for redis in [false, true] {
            let (host, inner) = self.veth_names(i, redis);
            let _ = ip(&["link", "del", &host]).await;
            ip(&["link", "add", &host, "type", "veth", "peer", "name", &inner]).await?;
            ip(&["link", "set", &inner, "netns", &ns]).await?;
            let outer = format!("{}/30", self.veth_addr(i, 1, redis));
            ip(&["addr", "add", &outer, "dev", &host]).await?;
            ip(&["link", "set", &host, "up"]).await?;
            let addr = format!("{}/30", self.veth_addr(i, 2, redis));
            ip(&["-n", &ns, "addr", "add", &addr, "dev", &inner]).await?;
            ip(&["-n", &ns, "link", "set", &inner, "up"]).await?;
        }
        Ok(())
    }

    /// Cuts (`slow` false) or slows to a trickle (`slow` true) the path between node `i`
    /// and Redis until [`net_heal`](Self::net_heal); the clients' path is untouched.
    pub async fn net_impair(&self, i: usize, slow: bool) -> anyhow::Result<()> {
        anyhow::ensure!(self.setup.netns, "network faults need --netns");
        let ns = self.netns_name(i);
        let (host, inner) = self.veth_names(i, true);
        if !slow {
            return ip(&["link", "set", &host, "down"]).await;
        }
        // 64 kbit/s with up to a second of queue, both ways: delays, then drops.
        let tbf = "root tbf rate 64kbit burst 1600 latency 1000ms";
        tc(Some(&ns), &format!("qdisc add dev {inner} {tbf}")).await?;
        tc(None, &format!("qdisc add dev {host} {tbf}")).await
    }

    /// Undoes [`net_impair`](Self::net_impair).
    pub async fn net_heal(&self, i: usize, slow: bool) -> anyhow::Result<()> {
        let ns = self.netns_name(i);
        let (host, inner) = self.veth_names(i, true);
        if !slow {
            return ip(&["link", "set", &host, "up"]).await;
        }
        tc(Some(&ns), &format!("qdisc del dev {inner} root")).await?;
        tc(None, &format!("qdisc del dev {host} root")).await
    }

    /// Node `i` is running.
    pub fn node_up(&self, i: usize) -> bool {
        self.nodes[i].is_some()
    }

    fn redis_port(&self, i: usize) -> u16 {
        self.setup.base_port + 100 + i as u16
    }

    fn sentinel_port(&self, i: usize) -> u16 {
        self.setup.base_port + 110 + i as u16
    }

    fn nats_port(&self) -> u16 {
        self.setup.base_port + 120
    }

    fn log(&self, name: &str) -> PathBuf {
        self.setup.dir.join(format!("{name}.log"))
    }

    async fn start_redis(&mut self, i: usize) -> anyhow::Result<()> {
        let port = self.redis_port(i);
        let mut args: Vec<String> = [
            "--port",
            &port.to_string(),
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        args.push(self.setup.dir.display().to_string());
        if self.setup.netns {
            // Clients from the namespaces are not loopback: protected mode would turn them
            // away. Redis listens only on loopback and on the veth pairs made here.
            args.push("--protected-mode".into());
            args.push("no".into());
        }
        args.push("--bind".into());
        args.push("127.0.0.1".into());
        if self.setup.netns {
            for n in 0..self.setup.nodes {
                args.push(self.veth_addr(n, 1, true));
            }
        }
        args.push("--dbfilename".into());
        args.push(format!("redis-{i}.rdb"));
        if i > 0 {
            args.push("--replicaof".into());
            args.push(format!("127.0.0.1 {}", self.redis_port(0)));
        }
        let name = format!("redis-{i}");
        let p = Proc::spawn(&name, &self.setup.redis_server, &args, &self.log(&name))?;
        self.redis[i] = Some(p);
        wait_port(port).await.with_context(|| name.clone())?;
        Ok(())
    }

    async fn start_sentinel(&mut self, i: usize) -> anyhow::Result<()> {
        let port = self.sentinel_port(i);
        let conf = self.setup.dir.join(format!("sentinel-{i}.conf"));
        // Sentinel rewrites its file as it learns the topology: a fresh one per run.
        std::fs::write(
            &conf,
            format!(
                "port {port}\nbind 127.0.0.1\ndir {dir}\n\
                 sentinel monitor {MASTER} 127.0.0.1 {master} 2\n\
                 sentinel down-after-milliseconds {MASTER} 1000\n\
                 sentinel failover-timeout {MASTER} 4000\n\
                 sentinel parallel-syncs {MASTER} 1\n",
                dir = self.setup.dir.display(),
                master = self.redis_port(0),
            ),
        )?;
        let name = format!("sentinel-{i}");
        let args = vec![conf.display().to_string(), "--sentinel".to_owned()];
        let p = Proc::spawn(&name, &self.setup.redis_server, &args, &self.log(&name))?;
        self.sentinels.push(p);
        wait_port(port).await.with_context(|| name.clone())?;
        Ok(())
    }

    async fn start_nats(&mut self) -> anyhow::Result<()> {
        let port = self.nats_port();
        let args = vec![
            "-a".to_owned(),
            "127.0.0.1".to_owned(),
            "-p".to_owned(),
            port.to_string(),
        ];
        let p = Proc::spawn("nats", &self.setup.nats_server, &args, &self.log("nats"))?;
        self.nats = Some(p);
        wait_port(port).await.context("nats")?;
        Ok(())
    }

    /// Where node `i` reaches Redis: over its veth pair when it has a namespace.
    fn redis_host(&self, i: usize) -> String {
        if self.setup.netns {
            self.veth_addr(i, 1, true)
        } else {
            "127.0.0.1".to_owned()
        }
    }

    fn node_config(&self, i: usize) -> serde_json::Value {
        use serde_json::json;
        let prefix = format!("chaos{}", self.setup.base_port);
        let mut c = json!({
            "http_server": {"address": self.node_host(i), "port": self.node_port(i)},
            "log": {"level": "info"},
            "client": {"insecure": true},
            "http_api": {"insecure": true},
            "shutdown": {"timeout": "5s"},
        });
        let redis = match self.setup.engine {
            Engine::Redis => Some(json!({
                "address": [format!("redis://{}:{}", self.redis_host(i), self.redis_port(0))],
                "prefix": prefix,
            })),
            Engine::Sentinel => Some(json!({
                "sentinel_address": (0..3)
                    .map(|s| format!("127.0.0.1:{}", self.sentinel_port(s)))
                    .collect::<Vec<_>>(),
                "sentinel_master_name": MASTER,
                "prefix": prefix,
            })),
            Engine::Nats => None,
        };
        if let Some(redis) = redis {
            c["engine"] = json!({"type": "redis", "redis": redis});
            c["channel"] = json!({"without_namespace": {
                "history_size": self.setup.history_size,
                "history_ttl": "600s",
                "force_recovery": true,
                "allow_subscribe_for_client": true,
            }});
        } else {
            c["broker"] = json!({"enabled": true, "type": "nats", "nats": {
                "url": format!("nats://127.0.0.1:{}", self.nats_port()),
                "prefix": prefix,
            }});
            c["channel"] = json!({"without_namespace": {"allow_subscribe_for_client": true}});
        }
        c
    }

    /// Starts node `i` (again) and waits until it accepts connections.
    pub async fn start_node(&mut self, i: usize) -> anyhow::Result<()> {
        let conf = self.setup.dir.join(format!("node-{i}.json"));
        std::fs::write(&conf, serde_json::to_vec_pretty(&self.node_config(i))?)?;
        let name = format!("node-{i}");
        let mut args = vec!["--config".to_owned(), conf.display().to_string()];
        let program = if self.setup.netns {
            // `ip netns exec` execs the program: the pid stays the node's.
            let mut a = vec![
                "netns".to_owned(),
                "exec".to_owned(),
                self.netns_name(i),
                self.setup.gyre.display().to_string(),
            ];
            a.append(&mut args);
            args = a;
            PathBuf::from("ip")
        } else {
            self.setup.gyre.clone()
        };
        let p = Proc::spawn(&name, &program, &args, &self.log(&name))?;
        self.nodes[i] = Some(p);
        wait_addr(&self.node_host(i), self.node_port(i))
            .await
            .with_context(|| format!("{name} did not start; see {}", self.log(&name).display()))
    }

    /// `kill -9` node `i`.
    pub async fn kill_node(&mut self, i: usize) {
        if let Some(mut p) = self.nodes[i].take() {
            p.kill().await;
        }
    }

    /// SIGTERM node `i` and wait for it to exit.
    pub async fn stop_node(&mut self, i: usize) {
        if let Some(mut p) = self.nodes[i].take() {
            p.terminate(Duration::from_secs(10)).await;
        }
    }

    /// Process id of node `i`.
    pub fn node_pid(&self, i: usize) -> Option<u32> {
        self.nodes[i].as_ref().and_then(Proc::pid)
    }

    /// `kill -9` the (standalone) Redis server, wait `down`, start it again empty.
    pub async fn restart_redis(&mut self, down: Duration) -> anyhow::Result<()> {
        if let Some(mut p) = self.redis[0].take() {
            p.kill().await;
        }
        tokio::time::sleep(down).await;
        self.start_redis(0).await
    }

    /// `kill -9` the NATS server, wait `down`, start it again.
    pub async fn restart_nats(&mut self, down: Duration) -> anyhow::Result<()> {
        if let Some(mut p) = self.nats.take() {
            p.kill().await;
        }
        tokio::time::sleep(down).await;
        self.start_nats().await
    }

    /// The master the Sentinels name, as `host:port`.
    async fn sentinel_master(&self) -> anyhow::Result<Option<String>> {
        for i in 0..self.sentinels.len() {
            let addr = format!("127.0.0.1:{}", self.sentinel_port(i));
            if let Ok(reply) =
                resp_command(&addr, &["SENTINEL", "get-master-addr-by-name", MASTER]).await
            {
                let parts: Vec<&str> = reply
                    .split("\r\n")
                    .filter(|l| !l.is_empty() && !l.starts_with('*') && !l.starts_with('$'))
                    .collect();
                if parts.len() == 2 {
                    return Ok(Some(format!("{}:{}", parts[0], parts[1])));
                }
            }
        }
        Ok(None)
    }

    /// Asks a Sentinel for a failover and waits until the Sentinels name the new master
    /// and it accepts writes.
    pub async fn sentinel_failover(&mut self) -> anyhow::Result<()> {
        let before = self.sentinel_master().await?;
        let addr = format!("127.0.0.1:{}", self.sentinel_port(0));
        let reply = resp_command(&addr, &["SENTINEL", "FAILOVER", MASTER]).await?;
        if !reply.starts_with("+OK") {
            bail!("SENTINEL FAILOVER: {}", reply.trim());
        }
        let changed = wait_until(Duration::from_secs(20), || async {
            let now = self.sentinel_master().await.ok().flatten();
            now.is_some() && now != before
        })
        .await;
        if changed.is_err() {
            bail!("no new master 20 s after SENTINEL FAILOVER");
        }
        // The promoted replica answers `role` as master once the switch is complete.
        let master = self.sentinel_master().await?.unwrap_or_default();
        wait_until(Duration::from_secs(10), || async {
            resp_command(&master, &["ROLE"])
                .await
                .is_ok_and(|r| r.contains("master"))
        })
        .await
        .context("the new master never took the role")?;
        Ok(())
    }

    /// Starts every node that is down (end of a run).
    pub async fn heal(&mut self) -> anyhow::Result<()> {
        for i in 0..self.nodes.len() {
            if self.nodes[i].is_none() {
                self.start_node(i).await?;
            }
        }
        Ok(())
    }

    /// Stops everything (nodes first).
    pub async fn shutdown(&mut self) {
        for i in 0..self.nodes.len() {
            self.kill_node(i).await;
        }
        for p in self.redis.iter_mut().flatten() {
            p.kill().await;
        }
        for p in &mut self.sentinels {
            p.kill().await;
        }
        if let Some(p) = &mut self.nats {
            p.kill().await;
        }
        for ns in self.namespaces.drain(..) {
            // Deleting the namespace deletes the veth pair with it.
            if let Err(e) = ip(&["netns", "del", &ns]).await {
                eprintln!("removing network namespace {ns}: {e:#}");
            }
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        // Processes die with their `Child` (kill_on_drop); namespaces would outlive the
        // run (an error or a panic half-way) unless removed here.
        for ns in self.namespaces.drain(..) {
            let _ = std::process::Command::new("ip")
                .args(["netns", "del", &ns])
                .status();
        }
    }
}

/// Polls `f` every 100 ms until it holds or `limit` passes.
pub async fn wait_until<F, Fut>(limit: Duration, mut f: F) -> anyhow::Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if f().await {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            bail!("timed out after {limit:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits up to 20 s for 127.0.0.1:`port` to accept a TCP connection.
async fn wait_port(port: u16) -> anyhow::Result<()> {
    wait_addr("127.0.0.1", port).await
}

/// Waits up to 20 s for `host:port` to accept a TCP connection.
async fn wait_addr(host: &str, port: u16) -> anyhow::Result<()> {
    wait_until(Duration::from_secs(20), || async move {
        TcpStream::connect((host, port)).await.is_ok()
    })
    .await
    .with_context(|| format!("nothing listening on {host}:{port}"))
}

/// Runs `ip ARGS`; fails with its stderr.
async fn ip(args: &[&str]) -> anyhow::Result<()> {
    run_tool("ip", args).await
}

/// Runs `tc` (inside namespace `ns` when given) with a space-separated command line.
async fn tc(ns: Option<&str>, line: &str) -> anyhow::Result<()> {
    let mut args: Vec<&str> = Vec::new();
    if let Some(ns) = ns {
        args.extend(["netns", "exec", ns, "tc"]);
        args.extend(line.split_whitespace());
        return run_tool("ip", &args).await;
    }
    args.extend(line.split_whitespace());
    run_tool("tc", &args).await
}

async fn run_tool(program: &str, args: &[&str]) -> anyhow::Result<()> {
    let out = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .await
        .with_context(|| format!("running {program}"))?;
    if !out.status.success() {
        bail!(
            "{program} {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// Sends one RESP command and returns the raw reply (enough for status and short arrays).
async fn resp_command(addr: &str, args: &[&str]) -> anyhow::Result<String> {
    let go = async {
        let mut s = TcpStream::connect(addr).await?;
        let mut req = format!("*{}\r\n", args.len());
        for a in args {
            req.push_str(&format!("${}\r\n{a}\r\n", a.len()));
        }
        s.write_all(req.as_bytes()).await?;
        let mut buf = vec![0u8; 4096];
        let n = s.read(&mut buf).await?;
        // A short array may come in two segments; give it a moment.
        let mut out = buf[..n].to_vec();
        if let Ok(Ok(m)) = tokio::time::timeout(Duration::from_millis(20), s.read(&mut buf)).await {
            out.extend_from_slice(&buf[..m]);
        }
        anyhow::Ok(String::from_utf8_lossy(&out).into_owned())
    };
    tokio::time::timeout(Duration::from_secs(2), go)
        .await
        .context("Redis command timed out")?
}
