//! Redis Sentinel against real processes: a master, a replica and three Sentinels
//! started by the test. After a failover the broker must write to the new master and
//! continue the same stream there. (Under continuous load, `gyre-bench chaos --engine
//! sentinel` found nodes whose command connection stayed on the demoted master, every
//! publication failing with READONLY; the broker now asks the Sentinels again on such
//! errors.)

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use gyre::{Broker, HistoryOptions, PublishOptions};
use gyre_redis::{RedisBroker, RedisConfig};
use gyre_testkit::Recorder;
use gyre_testkit::redis_server::{RedisServer, free_redis_port, redis_cli};

const MASTER: &str = "gyretestmaster";

/// A `redis-server --sentinel`, killed by PID on drop.
struct Sentinel {
    port: u16,
    child: Child,
}

impl Sentinel {
    fn start(dir: &Path, index: usize, master_port: u16) -> Sentinel {
        let port = free_redis_port();
        let conf = dir.join(format!("sentinel-{index}.conf"));
        std::fs::write(
            &conf,
            format!(
                "port {port}\nbind 127.0.0.1\ndir {}\n\
                 sentinel monitor {MASTER} 127.0.0.1 {master_port} 2\n\
                 sentinel down-after-milliseconds {MASTER} 1000\n\
                 sentinel failover-timeout {MASTER} 4000\n",
                dir.display()
            ),
        )
        .unwrap();
        let child = Command::new("redis-server")
            .arg(&conf)
            .arg("--sentinel")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server --sentinel starts");
        let deadline = Instant::now() + Duration::from_secs(5);
        while redis_cli(port, &["PING"]).as_deref() != Some("PONG") {
            assert!(
                Instant::now() < deadline,
                "sentinel on {port} did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Sentinel { port, child }
    }

    /// The port of the master this Sentinel names.
    fn master_port(&self) -> Option<u16> {
        let out = redis_cli(self.port, &["SENTINEL", "get-master-addr-by-name", MASTER])?;
        out.lines().nth(1)?.trim().parse().ok()
    }
}

impl Drop for Sentinel {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-9", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

async fn wait_for(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if f() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    f()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publishes_go_to_the_new_master_after_a_failover() {
    let master = RedisServer::start(false);
    let replica = RedisServer::start(false);
    redis_cli(
        replica.port,
        &["REPLICAOF", "127.0.0.1", &master.port.to_string()],
    )
    .expect("REPLICAOF");
    // Sentinels rewrite their config files: a fresh directory per test process.
    let dir = std::env::temp_dir().join(format!("gyre-sentinel-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let sentinels: Vec<Sentinel> = (0..3)
        .map(|i| Sentinel::start(&dir, i, master.port))
        .collect();
    // The replica must be known to the Sentinels (and in sync) before a failover.
    assert!(
        wait_for(Duration::from_secs(15), || {
            redis_cli(sentinels[0].port, &["SENTINEL", "replicas", MASTER])
                .is_some_and(|r| r.contains(&replica.port.to_string()))
                && redis_cli(replica.port, &["INFO", "replication"])
                    .is_some_and(|r| r.contains("master_link_status:up"))
        })
        .await,
        "the Sentinels never saw the replica"
    );

    let mut config = RedisConfig::sentinel(
        sentinels
            .iter()
            .map(|s| format!("redis://127.0.0.1:{}", s.port)),
        MASTER,
    )
    .prefix("sentinel-failover");
    config.io_timeout = Duration::from_secs(1);
    config.connect_timeout = Duration::from_millis(500);
    let broker = RedisBroker::new(config).await.unwrap();
    Broker::run(&broker, Recorder::new()).await.unwrap();
    let opts = PublishOptions::new().history(100, Duration::from_secs(60));
    let first = broker
        .publish("ch", Bytes::from("before"), opts.clone())
        .await
        .unwrap();
    assert_eq!(first.position.offset, 1);

    assert_eq!(
        redis_cli(sentinels[0].port, &["SENTINEL", "FAILOVER", MASTER]).as_deref(),
        Some("OK")
    );
    assert!(
        wait_for(Duration::from_secs(20), || sentinels[0].master_port()
            == Some(replica.port)
            && redis_cli(replica.port, &["ROLE"])
                .is_some_and(|r| r.starts_with("master")))
        .await,
        "the replica was never promoted"
    );
    // ...and the old master demoted: until then it still takes writes (and loses them
    // when it resyncs: asynchronous replication, the same for every Redis client).
    assert!(
        wait_for(Duration::from_secs(20), || redis_cli(
            master.port,
            &["ROLE"]
        )
        .is_some_and(|r| r.starts_with("slave")))
        .await,
        "the old master was never demoted"
    );

    // A publication or two may fail while the broker learns of the failover; then every
    // one must succeed, on the promoted replica, continuing the same stream.
    let deadline = Instant::now() + Duration::from_secs(10);
    let after = loop {
        match broker
            .publish("ch", Bytes::from("after"), opts.clone())
            .await
        {
            Ok(r) => break r,
            Err(e) => {
                assert!(Instant::now() < deadline, "still failing: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    assert_eq!(after.position.epoch, first.position.epoch);
    assert_eq!(after.position.offset, 2);
    for _ in 0..5 {
        broker
            .publish("ch", Bytes::from("more"), opts.clone())
            .await
            .expect("publishing keeps working after the failover");
    }
    let history = broker.history("ch", HistoryOptions::new(-1)).await.unwrap();
    assert_eq!(history.publications.len(), 7);
    assert_eq!(
        redis_cli(replica.port, &["XLEN", "sentinel-failover.stream.ch"]).as_deref(),
        Some("7"),
        "the stream lives on the new master"
    );
    broker.close();
    drop(sentinels);
    drop(master);
    let _ = std::fs::remove_dir_all(&dir);
}
