//! The PostgreSQL stream broker against the broker conformance suite, plus what is its
//! own: upstream's table and function names, JSONB payloads, shared tables between
//! variants. Runs on the real PostgreSQL, each test in its own schema.

#[path = "stream_support/mod.rs"]
mod support;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use gyre::{BoxFuture, Broker, BrokerError, HistoryOptions, PublishOptions};
use gyre_postgres::stream::{PgStreamBroker, PgStreamConfig};
use gyre_testkit::conformance::{BrokerEngine, TestNode};
use gyre_testkit::{Recorder, broker_conformance, eventually};
use support::Schema;

broker_conformance! {
    engine: pg, clock: Real,
    pubsub: run,
    multi_node: run,
    history: run,
    versioning: run,
    idempotency: run,
}

/// Nodes of one case share the case's schema.
struct Pg {
    schema: Schema,
}

fn config(schema: &Schema) -> PgStreamConfig {
    let mut c = PgStreamConfig::new(schema.dsn());
    c.binary_data = true;
    c.num_shards = 2;
    c.pool_size = 4;
    c.use_notify = true;
    c.poll_interval = Duration::from_millis(50);
    c
}

async fn pg(test: &str) -> Pg {
    Pg {
        schema: Schema::create(test).await,
    }
}

async fn start(config: PgStreamConfig) -> Arc<TestNode> {
    let broker = PgStreamBroker::connect(config).await.expect("connect");
    let closer = broker.clone();
    Arc::new(
        TestNode::start(Arc::new(broker))
            .await
            .on_drop(move || closer.close()),
    )
}

impl BrokerEngine for Pg {
    fn node(&self) -> BoxFuture<'_, Arc<TestNode>> {
        Box::pin(start(config(&self.schema)))
    }
}

const WAIT: Duration = Duration::from_secs(5);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tables_and_functions_carry_upstream_names() {
    let schema = Schema::create("names").await;
    let broker = PgStreamBroker::connect(config(&schema)).await.unwrap();
    assert_eq!(broker.stream_table(), "cf_binary_stream");
    let (client, conn) = tokio_postgres::connect(&schema.dsn(), tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    let tables: Vec<String> = client
        .query(
            "SELECT table_name::TEXT FROM information_schema.tables \
             WHERE table_schema = current_schema() AND table_name NOT LIKE '%\\_20%' \
             ORDER BY 1",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    for variant in ["cf_stream", "cf_binary_stream"] {
        for suffix in [
            "",
            "_meta",
            "_idempotency",
            "_shard_lock",
            "_schema_version",
        ] {
            let name = format!("{variant}{suffix}");
            assert!(tables.contains(&name), "{name} missing from {tables:?}");
        }
    }
    for function in [
        "publish",
        "publish_strict",
        "publish_join",
        "publish_leave",
        "remove_history",
        "top_position",
    ] {
        let name = format!("cf_stream_{function}");
        let found: i64 = client
            .query_one(
                "SELECT count(*) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace \
                 WHERE n.nspname = current_schema() AND p.proname = $1",
                &[&name],
            )
            .await
            .unwrap()
            .get(0);
        assert_eq!(found, 1, "{name}");
    }
    // Today's partition exists under upstream's name.
    let today: String = client
        .query_one(
            "SELECT 'cf_binary_stream_' || to_char(now() AT TIME ZONE 'UTC', 'YYYY_MM_DD')",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    let parts: i64 = client
        .query_one(
            "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = current_schema() AND c.relname = $1",
            &[&today],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(parts, 1, "partition {today}");

    // A publish is a row of the stream table and a meta row with the stream's top, and
    // the SQL function upstream calls reads the same position.
    let r = broker
        .publish(
            "ch",
            Bytes::from_static(b"x"),
            PublishOptions::new().history(10, Duration::from_secs(60)),
        )
        .await
        .unwrap();
    let row = client
        .query_one("SELECT * FROM cf_binary_stream_top_position('ch')", &[])
        .await
        .unwrap();
    assert_eq!(row.get::<_, i64>(0), 1);
    assert_eq!(row.get::<_, String>(1), r.position.epoch);
    let data: Vec<u8> = client
        .query_one(
            "SELECT data FROM cf_binary_stream WHERE channel = 'ch' AND channel_offset = 1",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(data, b"x");
    broker.close();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jsonb_variant_keeps_json_and_refuses_other_payloads() {
    let schema = Schema::create("jsonb").await;
    let mut c = config(&schema);
    c.binary_data = false;
    let broker = PgStreamBroker::connect(c).await.unwrap();
    assert_eq!(broker.stream_table(), "cf_stream");
    let rec = Recorder::new();
    broker.run(rec.clone()).await.unwrap();
    broker.subscribe("ch").await.unwrap();
    let opts = PublishOptions::new().history(10, Duration::from_secs(60));
    broker
        .publish("ch", Bytes::from_static(br#"{"a":[1,2]}"#), opts.clone())
        .await
        .unwrap();
    let bad = broker
        .publish("ch", Bytes::from_static(b"not json"), opts.clone())
        .await;
    assert!(matches!(bad, Err(BrokerError::BadRequest(_))), "{bad:?}");
    let h = broker.history("ch", HistoryOptions::new(-1)).await.unwrap();
    assert_eq!(h.position.offset, 1, "the refused publish took no offset");
    let value: serde_json::Value = serde_json::from_slice(&h.publications[0].data).unwrap();
    assert_eq!(value, serde_json::json!({"a": [1, 2]}));
    assert!(eventually(WAIT, || rec.offsets("ch") == vec![1]).await);
    let delivered: serde_json::Value = serde_json::from_slice(&rec.datas("ch")[0]).unwrap();
    assert_eq!(delivered, value);
    broker.close();
}
