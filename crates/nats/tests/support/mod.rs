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
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut server = NatsServer { port, child: None };
        server.restart();
        server
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Starts the server (again) on the same port and waits until it accepts.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "already running");
        let bin =
            std::env::var("NATS_SERVER_BIN").unwrap_or_else(|_| "/usr/sbin/nats-server".into());
        let child = std::process::Command::new(bin)
            .args(["-a", "127.0.0.1", "-p", &self.port.to_string()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start nats-server");
        self.child = Some(child);
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
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

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.kill();
    }
}
