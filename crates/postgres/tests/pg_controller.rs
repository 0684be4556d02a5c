//! The PostgreSQL controller between two nodes: broadcasts reach every node (the sender
//! included), a message for one node reaches only it, across shards; a second `run` is
//! refused. Runs on the real PostgreSQL, each test in its own schema.

#[path = "stream_support/mod.rs"]
mod support;

use std::time::Duration;

use bytes::Bytes;
use gyre::{BrokerError, Controller};
use gyre_postgres::controller::{PgController, PgControllerConfig};
use gyre_testkit::{Recorder, eventually};
use support::Schema;

const WAIT: Duration = Duration::from_secs(5);

fn config(schema: &Schema, num_shards: u16, use_notify: bool) -> PgControllerConfig {
    let mut c = PgControllerConfig::new(schema.dsn());
    c.num_shards = num_shards;
    c.use_notify = use_notify;
    c.pool_size = 2;
    c
}

async fn broadcast_and_direct(num_shards: u16, use_notify: bool) {
    let schema = Schema::create(&format!("control_{num_shards}")).await;
    let a = PgController::connect(config(&schema, num_shards, use_notify))
        .await
        .unwrap();
    let b = PgController::connect(config(&schema, num_shards, use_notify))
        .await
        .unwrap();
    let (ra, rb) = (Recorder::new(), Recorder::new());
    a.run("node-a", ra.clone()).await.unwrap();
    b.run("node-b", rb.clone()).await.unwrap();
    assert!(matches!(
        a.run("node-a", ra.clone()).await,
        Err(BrokerError::BadRequest(_))
    ));
    a.publish_control(Bytes::from_static(b"all"), None)
        .await
        .unwrap();
    a.publish_control(Bytes::from_static(b"to-b"), Some("node-b"))
        .await
        .unwrap();
    b.publish_control(Bytes::from_static(b"to-a"), Some("node-a"))
        .await
        .unwrap();
    assert!(eventually(WAIT, || ra.control().len() == 2 && rb.control().len() == 2).await);
    let mut got_a = ra.control();
    let mut got_b = rb.control();
    // Shards are read independently: only a shard keeps order.
    got_a.sort();
    got_b.sort();
    assert_eq!(
        got_a,
        vec![Bytes::from_static(b"all"), Bytes::from_static(b"to-a")]
    );
    assert_eq!(
        got_b,
        vec![Bytes::from_static(b"all"), Bytes::from_static(b"to-b")]
    );
    // Nothing more arrives (no message read twice, none for another node).
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(ra.control().len(), 2);
    assert_eq!(rb.control().len(), 2);

    // A node started later reads only what is sent after it starts.
    let c = PgController::connect(config(&schema, num_shards, use_notify))
        .await
        .unwrap();
    let rc = Recorder::new();
    c.run("node-c", rc.clone()).await.unwrap();
    for i in 0..50u8 {
        b.publish_control(Bytes::from(vec![i]), None).await.unwrap();
    }
    assert!(eventually(WAIT, || rc.control().len() == 50).await);
    if num_shards == 1 {
        // One shard keeps the send order.
        assert_eq!(
            rc.control(),
            (0..50u8).map(|i| Bytes::from(vec![i])).collect::<Vec<_>>()
        );
    }
    assert!(
        eventually(WAIT, || ra.control().len() == 52
            && rb.control().len() == 52)
        .await
    );
    for ctl in [&a, &b, &c] {
        ctl.close();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg_control_one_shard_polling() {
    broadcast_and_direct(1, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg_control_sharded_with_notify() {
    broadcast_and_direct(3, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg_control_uses_upstream_table_and_function() {
    let schema = Schema::create("control_names").await;
    let a = PgController::connect(config(&schema, 1, false))
        .await
        .unwrap();
    let ra = Recorder::new();
    a.run("node-a", ra.clone()).await.unwrap();
    // A message written by another implementation through the shared function.
    let (client, conn) = tokio_postgres::connect(&schema.dsn(), tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    client
        .execute(
            "SELECT cf_controller_publish($1::BYTEA, 'node-a', 1)",
            &[&&b"direct"[..]],
        )
        .await
        .unwrap();
    client
        .execute(
            "SELECT cf_controller_publish($1::BYTEA, 'node-z', 1)",
            &[&&b"elsewhere"[..]],
        )
        .await
        .unwrap();
    assert!(eventually(WAIT, || !ra.control().is_empty()).await);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(ra.control(), vec![Bytes::from_static(b"direct")]);
    a.close();
}
