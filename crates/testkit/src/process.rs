//! Runs the `gyre` binary in tests: a command to completion ([`GyreBinary::run`]), a
//! server with a JSON configuration on a free loopback port ([`GyreBinary::start`]), or a
//! server until it prints a line ([`GyreBinary::serve_until`]).
//!
//! The binary's path comes from the caller (`env!("CARGO_BIN_EXE_gyre")` is only visible
//! to the server crate's own tests and benches).

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// How long [`GyreBinary::start`] waits for the server to listen.
const START_TIMEOUT: Duration = Duration::from_secs(20);
/// How many ports [`GyreBinary::start`] tries when another process takes the one probed.
const START_ATTEMPTS: usize = 5;

/// The `gyre` executable under test.
#[derive(Debug, Clone)]
pub struct GyreBinary {
    path: PathBuf,
}

impl GyreBinary {
    /// The executable at `path`.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        GyreBinary { path: path.into() }
    }

    /// A command running the binary in `dir` with an empty environment plus `env`.
    pub fn command(&self, dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Command {
        let mut cmd = Command::new(&self.path);
        cmd.args(args)
            .current_dir(dir)
            .env_clear()
            .envs(env.iter().copied())
            .stdin(Stdio::null());
        cmd
    }

    /// Runs the binary to completion and returns what it printed and its status.
    pub fn run(&self, dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
        self.command(dir, args, env).output().expect("gyre runs")
    }

    /// Runs the binary until a line of its standard output contains `line` (or 20 s
    /// pass), kills it and returns everything it printed up to then.
    pub fn serve_until(
        &self,
        dir: &Path,
        args: &[&str],
        env: &[(&str, &str)],
        line: &str,
    ) -> String {
        let mut child = self
            .command(dir, args, env)
            .stdout(Stdio::piped())
            .spawn()
            .expect("gyre starts");
        let (tx, rx) = std::sync::mpsc::channel();
        let out = child.stdout.take().expect("piped stdout");
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        let mut text = String::new();
        let deadline = Instant::now() + START_TIMEOUT;
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            let Ok(next) = rx.recv_timeout(left) else {
                break;
            };
            text.push_str(&next);
            text.push('\n');
            if next.contains(line) {
                break;
            }
        }
        let _ = child.kill();
        let _ = child.wait();
        text
    }

    /// Starts a server with `config` (any Centrifugo v6 JSON configuration) in a
    /// temporary directory; `http_server.address` and `http_server.port` are set to
    /// 127.0.0.1 and a free port. Returns once the port accepts connections; panics with
    /// the server's output if it exits or does not listen in time.
    pub fn start(&self, config: &Value) -> GyreProcess {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut last_log = String::new();
        for _ in 0..START_ATTEMPTS {
            let port = free_port();
            write_config(&dir.path().join("config.json"), config, port);
            let log = File::create(dir.path().join("gyre.log")).expect("log file");
            let mut child = self
                .command(
                    dir.path(),
                    &["--config", "config.json"],
                    &[], // an empty environment: nothing from the developer's shell leaks in
                )
                .stdout(log.try_clone().expect("log file"))
                .stderr(log)
                .spawn()
                .expect("gyre starts");
            let addr = SocketAddr::from(([127, 0, 0, 1], port));
            let deadline = Instant::now() + START_TIMEOUT;
            loop {
                if TcpStream::connect_timeout(&addr, Duration::from_millis(100)).is_ok() {
                    // The port may answer for another process that took it between the
                    // probe and our bind; ours then exits with "in use" right away.
                    std::thread::sleep(Duration::from_millis(50));
                    if let Ok(None) = child.try_wait() {
                        return GyreProcess { child, addr, dir };
                    }
                    break;
                }
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                if Instant::now() > deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!(
                        "gyre did not listen on {addr} in time:\n{}",
                        read_log(dir.path())
                    );
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.wait();
            last_log = read_log(dir.path());
            // Another process may have taken the port between the probe and the bind.
            if !last_log.contains("in use") {
                break;
            }
        }
        panic!("gyre exited at start:\n{last_log}");
    }
}

/// A running `gyre` server, killed (by PID) when dropped.
#[derive(Debug)]
pub struct GyreProcess {
    child: Child,
    addr: SocketAddr,
    /// Holds the configuration and the log; removed after the process is killed.
    dir: tempfile::TempDir,
}

impl GyreProcess {
    fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The address of the main listener (127.0.0.1 and the chosen port).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The port of the main listener.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// `http://127.0.0.1:<port>`.
    pub fn http_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `ws://127.0.0.1:<port>/connection/websocket`.
    pub fn ws_url(&self) -> String {
        format!("ws://{}/connection/websocket", self.addr)
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Path of the file the server's standard output and error go to.
    pub fn log_path(&self) -> PathBuf {
        self.dir().join("gyre.log")
    }

    /// What the server wrote to its standard output and error so far.
    pub fn logs(&self) -> String {
        read_log(self.dir())
    }

    /// Path of the configuration file the server reads.
    pub fn config_path(&self) -> PathBuf {
        self.dir().join("config.json")
    }

    /// Rewrites the configuration file (same address and port) and sends SIGHUP.
    pub fn reload(&self, config: &Value) {
        write_config(&self.config_path(), config, self.port());
        let status = Command::new("kill")
            .args(["-HUP", &self.pid().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success(), "SIGHUP to {}", self.pid());
    }
}

impl Drop for GyreProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Merges `overlay` into the configuration `base`: objects key by key, anything else
/// replaced.
pub fn merge_config(base: &mut Value, overlay: Value) {
    match (base, overlay) {
        (Value::Object(b), Value::Object(o)) => {
            for (k, v) in o {
                merge_config(b.entry(k).or_insert(Value::Null), v);
            }
        }
        (b, o) => *b = o,
    }
}

/// A loopback port nobody listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

fn write_config(path: &Path, config: &Value, port: u16) {
    let mut config = config.clone();
    let root = config.as_object_mut().expect("config is a JSON object");
    let http = root.entry("http_server").or_insert_with(|| json!({}));
    http["address"] = json!("127.0.0.1");
    http["port"] = json!(port);
    std::fs::write(path, serde_json::to_vec_pretty(&config).unwrap()).expect("write config");
}

fn read_log(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("gyre.log")).unwrap_or_default()
}
