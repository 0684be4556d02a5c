//! Shared fixtures: a recording handler, unique prefixes and a disposable nats-server.

#![allow(dead_code, unreachable_pub)]

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use gyre::{
    Broker, BrokerEventHandler, ClientInfo, ControlEventHandler, Publication, StreamPosition,
};
use gyre_nats::{NatsBroker, NatsConfig};
use tokio::sync::mpsc;

/// Bound of every test.
pub const TEST_TIMEOUT: Duration = Duration::from_secs(15);

/// What a handler saw.
#[derive(Debug, Clone, PartialEq)]
pub enum Seen {
    Publication {
        channel: String,
        publication: Publication,
        position: StreamPosition,
        delta: bool,
    },
    Join(String, ClientInfo),
    Leave(String, ClientInfo),
    Resubscribed,
    Control(Bytes),
}

/// Records every call into a channel.
#[derive(Debug)]
pub struct Recorder {
    tx: mpsc::UnboundedSender<Seen>,
}

impl Recorder {
    pub fn new() -> (Arc<Recorder>, mpsc::UnboundedReceiver<Seen>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (Arc::new(Recorder { tx }), rx)
    }
}

impl BrokerEventHandler for Recorder {
    fn handle_publication(
        &self,
        channel: &str,
        publication: Publication,
        position: StreamPosition,
        use_delta: bool,
        prev: Option<Publication>,
    ) {
        assert!(prev.is_none(), "NATS carries no previous publication");
        let _ = self.tx.send(Seen::Publication {
            channel: channel.to_owned(),
            publication,
            position,
            delta: use_delta,
        });
    }

    fn handle_join(&self, channel: &str, info: ClientInfo) {
        let _ = self.tx.send(Seen::Join(channel.to_owned(), info));
    }

    fn handle_leave(&self, channel: &str, info: ClientInfo) {
        let _ = self.tx.send(Seen::Leave(channel.to_owned(), info));
    }

    fn handle_resubscribed(&self) {
        let _ = self.tx.send(Seen::Resubscribed);
    }
}

impl ControlEventHandler for Recorder {
    fn handle_control(&self, data: Bytes) {
        let _ = self.tx.send(Seen::Control(data));
    }
}

/// Next event, failing the test after `wait`.
pub async fn next(rx: &mut mpsc::UnboundedReceiver<Seen>, wait: Duration) -> Seen {
    tokio::time::timeout(wait, rx.recv())
        .await
        .expect("no event in time")
        .expect("handler dropped")
}

/// Next publication's channel and data, failing on anything else.
pub async fn next_pub(rx: &mut mpsc::UnboundedReceiver<Seen>) -> (String, Bytes) {
    match next(rx, Duration::from_secs(5)).await {
        Seen::Publication {
            channel,
            publication,
            ..
        } => (channel, publication.data),
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
pub async fn node(config: NatsConfig) -> (NatsBroker, mpsc::UnboundedReceiver<Seen>) {
    let broker = NatsBroker::connect(config).await.expect("connect to NATS");
    let (recorder, rx) = Recorder::new();
    broker.run(recorder).await.unwrap();
    (broker, rx)
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
