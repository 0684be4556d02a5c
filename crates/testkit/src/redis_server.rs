//! Disposable `redis-server` processes for tests: standalone or a three-master cluster,
//! on spare loopback ports, killed by PID when dropped. Driven with `redis-cli`, so the
//! tests of any crate can use them.

use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A free loopback port whose Redis cluster bus port (+10000) is free too.
pub fn free_redis_port() -> u16 {
    loop {
        let l = TcpListener::bind("127.0.0.1:0").expect("free port");
        let port = l.local_addr().expect("local addr").port();
        if port < 55000 && TcpListener::bind(("127.0.0.1", port + 10000)).is_ok() {
            return port;
        }
    }
}

/// Runs `redis-cli -p <port> <args>`; its stdout, `None` when it failed.
pub fn redis_cli(port: u16, args: &[&str]) -> Option<String> {
    let out = Command::new("redis-cli")
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(args)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    (out.status.success() && !text.starts_with("ERR") && !text.contains("Could not connect"))
        .then_some(text)
}

/// A `redis-server` child process without persistence, killed (by PID) on drop.
#[derive(Debug)]
pub struct RedisServer {
    /// The port it listens on (127.0.0.1).
    pub port: u16,
    cluster: bool,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

impl RedisServer {
    /// Starts a server on a spare port and waits until it answers PING.
    pub fn start(cluster: bool) -> RedisServer {
        let mut server = RedisServer {
            port: free_redis_port(),
            cluster,
            dir: tempfile::tempdir().expect("temp dir"),
            child: None,
        };
        server.spawn();
        server
    }

    /// `redis://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// `127.0.0.1:<port>`.
    pub fn host_port(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn spawn(&mut self) {
        let mut cmd = Command::new("redis-server");
        cmd.args(["--port", &self.port.to_string()])
            .args(["--bind", "127.0.0.1"])
            .args(["--save", ""])
            .args(["--appendonly", "no"])
            .arg("--dir")
            .arg(self.dir.path());
        if self.cluster {
            cmd.args(["--cluster-enabled", "yes"])
                .args(["--cluster-config-file", "nodes.conf"]);
        }
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server starts");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(5);
        while redis_cli(self.port, &["PING"]).as_deref() != Some("PONG") {
            assert!(
                Instant::now() < deadline,
                "redis-server on {} did not answer PING",
                self.port
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `kill -9`: the server vanishes without a goodbye (and, without persistence, with
    /// all its data).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-9", &child.id().to_string()])
                .status();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port (empty).
    pub fn restart(&mut self) {
        self.kill();
        // The port is free once the process is gone; wait until nothing listens.
        let deadline = Instant::now() + Duration::from_secs(5);
        while TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
            assert!(Instant::now() < deadline, "port {} still in use", self.port);
            std::thread::sleep(Duration::from_millis(20));
        }
        self.spawn();
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Three cluster-enabled masters joined into one Redis Cluster with all slots covered.
pub fn start_redis_cluster() -> Vec<RedisServer> {
    let servers: Vec<RedisServer> = (0..3).map(|_| RedisServer::start(true)).collect();
    let mut cmd = Command::new("redis-cli");
    cmd.args(["--cluster", "create"]);
    for s in &servers {
        cmd.arg(s.host_port());
    }
    let out = cmd
        .args(["--cluster-replicas", "0", "--cluster-yes"])
        .stdin(Stdio::null())
        .output()
        .expect("redis-cli runs");
    assert!(
        out.status.success(),
        "redis-cli --cluster create failed: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while !servers.iter().all(|s| {
        redis_cli(s.port, &["CLUSTER", "INFO"]).is_some_and(|i| i.contains("cluster_state:ok"))
    }) {
        assert!(
            Instant::now() < deadline,
            "the cluster did not reach state ok"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    servers
}
