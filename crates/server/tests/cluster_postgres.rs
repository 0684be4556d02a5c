//! Two `gyre` nodes on PostgreSQL (`broker.type: postgres` and `controller.type:
//! postgres`, experimental as in Centrifugo): they see each other through the controller
//! table, an API publication on A reaches a client on B, recovery works from the stream
//! table, and a disconnect asked on A reaches a client on B. Runs on the shared
//! PostgreSQL (127.0.0.1:5432) in a schema of its own, dropped at the end.

mod support;

use std::time::Duration;

use serde_json::{Value, json};
use support::Server;
use support::cluster::{api, connect_as, node_config, received, start_nodes, wait_for_cluster};
use tokio_postgres::NoTls;

const SERVER: &str = "host=127.0.0.1 port=5432 user=postgres dbname=test";

/// A schema with a random suffix, dropped on drop (even when the test fails).
struct Schema(String);

impl Schema {
    async fn create() -> Schema {
        let name = format!("gyre_cluster_{:016x}", rand::random::<u64>());
        let (client, conn) = tokio_postgres::connect(SERVER, NoTls)
            .await
            .expect("PostgreSQL on 127.0.0.1:5432");
        tokio::spawn(conn);
        client
            .batch_execute(&format!("CREATE SCHEMA {name}"))
            .await
            .expect("create schema");
        Schema(name)
    }

    fn dsn(&self) -> String {
        format!("{SERVER} options='-c search_path={}'", self.0)
    }
}

impl Drop for Schema {
    fn drop(&mut self) {
        let name = self.0.clone();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                if let Ok((client, conn)) = tokio_postgres::connect(SERVER, NoTls).await {
                    tokio::spawn(conn);
                    let _ = client
                        .batch_execute(&format!("DROP SCHEMA IF EXISTS {name} CASCADE"))
                        .await;
                }
            });
        })
        .join()
        .ok();
    }
}

fn postgres_engines(dsn: &str) -> Value {
    json!({
        "broker": {
            "enabled": true,
            "type": "postgres",
            "postgres": {
                "dsn": dsn,
                "num_shards": 2,
                "pool_size": 4,
                "use_notify": true,
                "outbox": {"poll_interval": "50ms"}
            }
        },
        "controller": {
            "enabled": true,
            "type": "postgres",
            "postgres": {"dsn": dsn, "pool_size": 2, "use_notify": true}
        }
    })
}

fn offset_of(v: &Value) -> u64 {
    v["offset"].as_u64().unwrap_or(0)
}

fn n_of(publication: &Value) -> u64 {
    publication["data"]["n"]
        .as_u64()
        .unwrap_or_else(|| panic!("no data.n in {publication}"))
}

async fn publish(node: &Server, channel: &str, n: u64) -> (u64, String) {
    let r = api(
        node,
        "publish",
        json!({"channel": channel, "data": {"n": n}}),
    )
    .await;
    (offset_of(&r), r["epoch"].as_str().unwrap_or("").to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_over_postgres() {
    let schema = Schema::create().await;
    let nodes = start_nodes(&node_config(postgres_engines(&schema.dsn())), 2);
    let (a, b) = (&nodes[0], &nodes[1]);

    // Node info travels through the controller table: each node lists both.
    let ids = wait_for_cluster(&nodes).await;
    assert_eq!(ids.len(), 2);

    // A client on B gets what the API publishes on A, with stream positions.
    let (mut bob, _) = connect_as(&b.ws_url(), "bob").await;
    let sub = bob
        .call(
            "subscribe",
            json!({"channel": "rec:room", "recoverable": true}),
        )
        .await
        .ok();
    assert_eq!(sub["recoverable"], json!(true), "{sub}");
    let epoch = sub["epoch"].as_str().expect("epoch").to_owned();
    assert_eq!(epoch.len(), 8, "{sub}");
    assert_eq!(publish(a, "rec:room", 1).await, (1, epoch.clone()));
    assert_eq!(received(&mut bob, "rec:room", 1).await, [(1, 1)]);
    // Without history: delivered without an offset.
    bob.call("subscribe", json!({"channel": "plain:news"}))
        .await
        .ok();
    assert_eq!(publish(a, "plain:news", 7).await, (0, String::new()));
    assert_eq!(received(&mut bob, "plain:news", 1).await, [(0, 7)]);

    // Recovery: bob goes away, two publications on A, bob comes back on B.
    drop(bob);
    for n in 2..=3 {
        assert_eq!(publish(a, "rec:room", n).await, (n, epoch.clone()));
    }
    let (mut bob, _) = connect_as(&b.ws_url(), "bob").await;
    let back = bob
        .call(
            "subscribe",
            json!({"channel": "rec:room", "recoverable": true, "recover": true,
                   "epoch": epoch, "offset": 1}),
        )
        .await
        .ok();
    assert_eq!(back["recovered"], json!(true), "{back}");
    let missed: Vec<(u64, u64)> = back["publications"]
        .as_array()
        .expect("recovered publications")
        .iter()
        .map(|p| (offset_of(p), n_of(p)))
        .collect();
    assert_eq!(missed, [(2, 2), (3, 3)], "{back}");
    // History read through B's broker sees A's publications.
    let history = api(b, "history", json!({"channel": "rec:room", "limit": -1})).await;
    let offsets: Vec<u64> = history["publications"]
        .as_array()
        .expect("history")
        .iter()
        .map(offset_of)
        .collect();
    assert_eq!(offsets, [1, 2, 3], "{history}");

    // A disconnect asked on A reaches bob on B through the controller.
    let (mut alice, _) = connect_as(&a.ws_url(), "alice").await;
    alice
        .call("subscribe", json!({"channel": "plain:news"}))
        .await
        .ok();
    api(
        a,
        "disconnect",
        json!({"user": "bob", "disconnect": {"code": 4003, "reason": "pg test"}}),
    )
    .await;
    assert_eq!(bob.closed().await, (4003, "pg test".to_owned()));
    assert!(alice.quiet_for(Duration::from_millis(200)).await);
    drop(nodes);
}
