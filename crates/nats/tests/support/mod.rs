//! Shared fixtures: the suite's NATS engine, reading recorded events, unique prefixes and
//! a disposable nats-server.

#![allow(dead_code, unreachable_pub)]

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use gyre::{BoxFuture, Broker};
use gyre_nats::{NatsBroker, NatsConfig};
use gyre_testkit::conformance::{BrokerEngine, TestNode};
use gyre_testkit::{Reader, Recorder, Seen};

/// Bound of every test.
pub const TEST_TIMEOUT: Duration = Duration::from_secs(15);

/// Next event, failing the test after `wait`. NATS carries no previous publication.
pub async fn next(rx: &mut Reader, wait: Duration) -> Seen {
    let seen = rx.next(wait).await;
    if let Seen::Publication(d) = &seen {
        assert!(d.prev.is_none(), "NATS carries no previous publication");
    }
    seen
}

/// Next publication's channel and data, failing on anything else.
pub async fn next_pub(rx: &mut Reader) -> (String, Bytes) {
    match next(rx, Duration::from_secs(5)).await {
        Seen::Publication(d) => (d.channel, d.publication.data),
        other => panic!("expected a publication, got {other:?}"),
    }
}

/// A subject prefix no other test uses.
pub fn unique_prefix() -> String {
    format!("gyretest{}", uuid::Uuid::new_v4().simple())
}

/// The shared NATS server of the test environment.
pub fn nats_url() -> String {
    std::env::var("NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".to_owned())
}

/// A connected and running broker with its recorded events.
pub async fn node(config: NatsConfig) -> (NatsBroker, Reader) {
    let broker = NatsBroker::connect(config).await.expect("connect to NATS");
    let recorder = Recorder::new();
    broker.run(recorder.clone()).await.unwrap();
    (broker, recorder.reader())
}

/// The conformance suite's view of NATS: every node of one case uses the case's own
/// subject prefix on the shared server.
pub struct Nats {
    config: NatsConfig,
}

/// NATS with a fresh subject prefix.
pub async fn nats(_test: &str) -> Nats {
    Nats {
        config: NatsConfig::new(nats_url()).prefix(unique_prefix()),
    }
}

impl BrokerEngine for Nats {
    fn node(&self) -> BoxFuture<'_, Arc<TestNode>> {
        Box::pin(async {
            let broker = NatsBroker::connect(self.config.clone())
                .await
                .expect("connect to NATS");
            Arc::new(TestNode::start(Arc::new(broker)).await)
        })
    }
}

/// A nats-server of our own on a spare loopback port; killed by PID when dropped.
#[derive(Debug)]
pub struct NatsServer {
    pub port: u16,
    child: Option<std::process::Child>,
}

impl NatsServer {
    pub fn start() -> NatsServer {
        // A spare port can be taken again before nats-server binds it (tests in one
        // binary start servers concurrently): then the server exits, and another port is
        // tried.
        for _ in 0..5 {
            let port = TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            let mut server = NatsServer { port, child: None };
            if server.spawn_and_wait() {
                return server;
            }
        }
        panic!("nats-server did not start on any of 5 spare ports");
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Starts the server (again) on the same port and waits until it accepts.
    pub fn restart(&mut self) {
        assert!(
            self.spawn_and_wait(),
            "nats-server exited: port {} taken",
            self.port
        );
    }

    /// Starts nats-server and waits until it greets on the port. False when it exited
    /// first (the port is taken).
    fn spawn_and_wait(&mut self) -> bool {
        assert!(self.child.is_none(), "already running");
        let bin =
            std::env::var("NATS_SERVER_BIN").unwrap_or_else(|_| "/usr/sbin/nats-server".into());
        let mut child = std::process::Command::new(bin)
            .args(["-a", "127.0.0.1", "-p", &self.port.to_string()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start nats-server");
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        loop {
            if child.try_wait().expect("nats-server status").is_some() {
                return false;
            }
            if greets(self.port) {
                // Still ours: a server that lost the port to another exits right away.
                if child.try_wait().expect("nats-server status").is_none() {
                    self.child = Some(child);
                    return true;
                }
                return false;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "nats-server did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kills the server (SIGKILL to its PID) and reaps it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Whether a NATS server answers on `port` with its `INFO` greeting. A bare TCP connect
/// is not enough: a probe from an ephemeral port can connect to itself.
fn greets(port: u16) -> bool {
    use std::io::Read;
    let Ok(mut probe) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = probe.set_read_timeout(Some(Duration::from_millis(500)));
    let mut head = [0u8; 4];
    probe.read_exact(&mut head).is_ok() && &head == b"INFO"
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.kill();
    }
}
