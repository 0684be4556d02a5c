//! Asynchronous consumers of the real `gyre` binary against the machine's PostgreSQL
//! (127.0.0.1:5432, db `test`), Redis (127.0.0.1:6379) and NATS JetStream (127.0.0.1:4222).
//!
//! Each test uses its own outbox table, stream or JetStream stream (named after the process
//! and a counter) and removes it at the end. In each: a command written to the source
//! becomes a publication a connected client receives; a malformed message is skipped and
//! the next one still runs; and after the server is killed (SIGKILL) and started again,
//! the commands written meanwhile run exactly once: the channel's history holds every
//! publication once, in order.

mod support;

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use serde_json::{Value, json};
use support::{Server, TIMEOUT, WsClient};

const API_KEY: &str = "consumers-test-key";

fn unique(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!(
        "{prefix}_{}_{}_{nanos}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

fn config(consumer: Value) -> Value {
    json!({
        "client": {"allow_anonymous_connect_without_token": true},
        "http_api": {"key": API_KEY},
        "prometheus": {"enabled": true},
        "channel": {"namespaces": [{
            "name": "outbox", "history_size": 100, "history_ttl": "300s",
            "allow_subscribe_for_anonymous": true, "allow_subscribe_for_client": true
        }]},
        "consumers": [consumer],
    })
}

async fn api(server: &Server, method: &str, body: Value) -> Value {
    let text = reqwest::Client::new()
        .post(format!("{}/api/{method}", server.http_url()))
        .header("X-API-Key", API_KEY)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    serde_json::from_str(&text).unwrap()
}

/// The `n` of every publication in the channel's history, oldest first.
async fn history(server: &Server, channel: &str) -> Vec<i64> {
    let reply = api(server, "history", json!({"channel": channel, "limit": -1})).await;
    reply["result"]["publications"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|p| p["data"]["n"].as_i64().unwrap())
        .collect()
}

/// Waits until the channel's history is `want` (and stays so for a moment, so that a
/// duplicate arriving late is caught).
async fn history_becomes(server: &Server, channel: &str, want: &[i64]) {
    let deadline = tokio::time::Instant::now() + TIMEOUT * 2;
    loop {
        let got = history(server, channel).await;
        if got == want {
            tokio::time::sleep(Duration::from_millis(700)).await;
            assert_eq!(history(server, channel).await, want, "late duplicates");
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "history of {channel}: {got:?}, want {want:?}\nlogs:\n{}",
            server.logs()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A connected anonymous client subscribed to `channel`.
async fn subscriber(server: &Server, channel: &str) -> WsClient {
    let (mut client, reply) = WsClient::connect(&server.ws_url(), json!({})).await;
    reply.ok();
    client
        .call("subscribe", json!({"channel": channel}))
        .await
        .ok();
    client
}

async fn next_n(client: &mut WsClient, channel: &str) -> i64 {
    let publication = tokio::time::timeout(TIMEOUT, client.publication(channel))
        .await
        .expect("a publication in time")
        .expect("connection open");
    publication["data"]["n"].as_i64().unwrap()
}

fn publish(channel: &str, n: i64) -> Value {
    json!({"channel": channel, "data": {"n": n}})
}

/// The consumer's processed and error counters on `/metrics`.
async fn consumer_metrics(server: &Server, name: &str) -> (f64, f64) {
    let text = reqwest::get(format!("{}/metrics", server.http_url()))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let value = |family: &str| {
        let series = format!("centrifugo_consumers_{family}{{consumer_name=\"{name}\"}} ");
        text.lines()
            .find_map(|l| l.strip_prefix(&series))
            .unwrap_or_else(|| panic!("{series} missing:\n{text}"))
            .parse::<f64>()
            .unwrap()
    };
    (value("messages_processed_total"), value("errors_total"))
}

mod postgres {
    use tokio_postgres::{Client, NoTls};

    use super::*;

    /// The machine's PostgreSQL (trust auth here; `.ci/run` sets this password where it
    /// has to create the cluster itself).
    const DSN: &str = "postgresql://postgres:postgres@127.0.0.1:5432/test";

    async fn db() -> Client {
        let (client, connection) = tokio_postgres::connect(DSN, NoTls)
            .await
            .expect("PostgreSQL on 127.0.0.1:5432 (db test)");
        tokio::spawn(connection);
        client
    }

    async fn insert(db: &Client, table: &str, method: &str, payload: &str, partition: i32) {
        db.execute(
            &format!(
                "INSERT INTO {table} (method, payload, partition) VALUES ($1, $2::text::jsonb, $3)"
            ),
            &[&method, &payload, &partition],
        )
        .await
        .unwrap();
    }

    async fn rows(db: &Client, table: &str) -> i64 {
        db.query_one(&format!("SELECT count(*) FROM {table}"), &[])
            .await
            .unwrap()
            .get(0)
    }

    #[tokio::test]
    async fn outbox_rows_become_publications_once_across_a_restart() {
        let db = db().await;
        let table = unique("gyre_outbox");
        db.batch_execute(&format!(
            "CREATE TABLE {table} (
                id BIGSERIAL PRIMARY KEY,
                method text NOT NULL,
                payload JSONB NOT NULL,
                partition INTEGER NOT NULL DEFAULT 0,
                created_at TIMESTAMP WITH TIME ZONE DEFAULT CURRENT_TIMESTAMP NOT NULL
            )"
        ))
        .await
        .unwrap();
        let consumer = json!({
            "name": "pg_outbox", "enabled": true, "type": "postgresql",
            "postgresql": {
                "dsn": DSN, "outbox_table_name": table, "num_partitions": 2,
                "partition_select_limit": 3, "partition_poll_interval": "100ms",
            }
        });
        let channel = format!("outbox:{table}");
        let server = Server::start(config(consumer.clone()));
        let mut client = subscriber(&server, &channel).await;

        let p = |n| publish(&channel, n).to_string();
        insert(&db, &table, "publish", &p(1), 0).await;
        // Malformed: a request the executor cannot read, an unknown method, a request it
        // refuses (unknown namespace). Each is skipped; the rows after them still run.
        insert(&db, &table, "publish", r#"{"channel": 5}"#, 0).await;
        insert(&db, &table, "no_such_method", &p(99), 0).await;
        insert(
            &db,
            &table,
            "publish",
            r#"{"channel": "nowhere:x", "data": {}}"#,
            0,
        )
        .await;
        insert(&db, &table, "publish", &p(2), 0).await;
        // Without a method column value the payload is a {method, payload} envelope.
        let envelope = json!({"method": "publish", "payload": publish(&channel, 3)});
        insert(&db, &table, "", &envelope.to_string(), 0).await;
        assert_eq!(next_n(&mut client, &channel).await, 1);
        assert_eq!(next_n(&mut client, &channel).await, 2);
        assert_eq!(next_n(&mut client, &channel).await, 3);
        history_becomes(&server, &channel, &[1, 2, 3]).await;
        assert_eq!(
            rows(&db, &table).await,
            0,
            "executed and skipped rows are deleted"
        );
        let (processed, _) = consumer_metrics(&server, "pg_outbox").await;
        assert_eq!(processed, 6.0);

        // Killed; rows written while it is down run once it is back, each once.
        drop(client);
        drop(server);
        for n in 4..=8 {
            insert(&db, &table, "publish", &p(n), 0).await;
        }
        // The other partition is consumed too.
        insert(
            &db,
            &table,
            "publish",
            &publish(&format!("{channel}-p1"), 9).to_string(),
            1,
        )
        .await;
        let server = Server::start(config(consumer));
        history_becomes(&server, &format!("{channel}-p1"), &[9]).await;
        // The memory engine lost the old history with the process: the new one holds
        // exactly the rows written while it was down, in order.
        history_becomes(&server, &channel, &[4, 5, 6, 7, 8]).await;
        assert_eq!(rows(&db, &table).await, 0);

        db.batch_execute(&format!("DROP TABLE {table}"))
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn notifications_wake_the_partition_worker() {
        let db = db().await;
        let table = unique("gyre_outbox_notify");
        let notify = unique("gyre_outbox_channel");
        db.batch_execute(&format!(
            "CREATE TABLE {table} (id BIGSERIAL PRIMARY KEY, method text NOT NULL,
             payload JSONB NOT NULL, partition INTEGER NOT NULL DEFAULT 0)"
        ))
        .await
        .unwrap();
        // A poll interval far beyond the test's patience: only the NOTIFY can wake it.
        let consumer = json!({
            "name": "pg_notify", "enabled": true, "type": "postgresql",
            "postgresql": {
                "dsn": DSN, "outbox_table_name": table,
                "partition_poll_interval": "1h",
                "partition_notification_channel": notify,
            }
        });
        let channel = format!("outbox:{table}");
        let server = Server::start(config(consumer));
        // Let the first (empty) poll pass and the worker fall asleep.
        tokio::time::sleep(Duration::from_millis(500)).await;
        insert(&db, &table, "publish", &publish(&channel, 1).to_string(), 0).await;
        db.batch_execute(&format!("NOTIFY {notify}, '0'"))
            .await
            .unwrap();
        history_becomes(&server, &channel, &[1]).await;
        db.batch_execute(&format!("DROP TABLE {table}"))
            .await
            .unwrap();
    }
}

mod redis_stream {
    use redis::aio::MultiplexedConnection;

    use super::*;

    async fn redis() -> MultiplexedConnection {
        redis::Client::open("redis://127.0.0.1:6379")
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .expect("Redis on 127.0.0.1:6379")
    }

    async fn xadd(r: &mut MultiplexedConnection, stream: &str, fields: &[(&str, String)]) {
        let mut cmd = redis::cmd("XADD");
        cmd.arg(stream).arg("*");
        for (k, v) in fields {
            cmd.arg(*k).arg(v);
        }
        let _: String = cmd.query_async(r).await.unwrap();
    }

    async fn pending(r: &mut MultiplexedConnection, stream: &str, group: &str) -> i64 {
        let reply: Vec<Value2> = redis::cmd("XPENDING")
            .arg(stream)
            .arg(group)
            .query_async(r)
            .await
            .unwrap();
        match reply.first() {
            Some(Value2::Int(n)) => *n,
            other => panic!("XPENDING: {other:?}"),
        }
    }

    use redis::Value as Value2;

    #[tokio::test]
    async fn stream_entries_become_publications_once_across_a_restart() {
        let mut r = redis().await;
        let stream = unique("gyre-test-consumer-stream");
        let group = "gyre_group";
        let consumer = json!({
            "name": "redis_in", "enabled": true, "type": "redis_stream",
            "redis_stream": {
                "address": ["127.0.0.1:6379"], "streams": [stream], "consumer_group": group,
                "visibility_timeout": "1s", "num_workers": 1,
            }
        });
        let channel = format!("outbox:{stream}");
        let server = Server::start(config(consumer.clone()));
        let mut client = subscriber(&server, &channel).await;
        let p = |n| publish(&channel, n).to_string();

        xadd(
            &mut r,
            &stream,
            &[("method", "publish".into()), ("payload", p(1))],
        )
        .await;
        // Malformed: no payload field, a payload that is not JSON, an envelope without
        // a method.
        xadd(&mut r, &stream, &[("method", "publish".into())]).await;
        xadd(&mut r, &stream, &[("payload", "not json".into())]).await;
        xadd(&mut r, &stream, &[("payload", r#"{"payload": {}}"#.into())]).await;
        let envelope = json!({"method": "publish", "payload": publish(&channel, 2)});
        xadd(&mut r, &stream, &[("payload", envelope.to_string())]).await;
        assert_eq!(next_n(&mut client, &channel).await, 1);
        assert_eq!(next_n(&mut client, &channel).await, 2);
        history_becomes(&server, &channel, &[1, 2]).await;
        support_eventually(|| async { pending(&mut redis().await, &stream, group).await == 0 })
            .await;
        let (processed, _) = consumer_metrics(&server, "redis_in").await;
        assert_eq!(processed, 5.0, "malformed entries are acked too");

        // Killed; entries added meanwhile run once after the restart.
        drop(client);
        drop(server);
        for n in 3..=5 {
            xadd(
                &mut r,
                &stream,
                &[("method", "publish".into()), ("payload", p(n))],
            )
            .await;
        }
        let server = Server::start(config(consumer.clone()));
        history_becomes(&server, &channel, &[3, 4, 5]).await;
        drop(server);

        // An entry taken by a consumer that died before acking it: after the visibility
        // timeout this node claims it and runs it.

        let channel2 = format!("{channel}-claimed");
        xadd(
            &mut r,
            &stream,
            &[
                ("method", "publish".into()),
                ("payload", publish(&channel2, 7).to_string()),
            ],
        )
        .await;
        let taken: Value2 = redis::cmd("XREADGROUP")
            .arg("GROUP")
            .arg(group)
            .arg("a-consumer-that-dies")
            .arg("COUNT")
            .arg(1)
            .arg("STREAMS")
            .arg(&stream)
            .arg(">")
            .query_async(&mut r)
            .await
            .unwrap();
        assert!(!matches!(taken, Value2::Nil), "the entry was taken");
        assert_eq!(pending(&mut r, &stream, group).await, 1);
        let server = Server::start(config(consumer));
        history_becomes(&server, &channel2, &[7]).await;
        support_eventually(|| async { pending(&mut redis().await, &stream, group).await == 0 })
            .await;

        let _: i64 = redis::cmd("DEL")
            .arg(&stream)
            .query_async(&mut r)
            .await
            .unwrap();
    }
}

mod redis_publication_data {
    use super::*;

    #[tokio::test]
    async fn publication_data_mode_publishes_the_entry_as_data() {
        let mut r = redis::Client::open("redis://127.0.0.1:6379")
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .unwrap();
        let stream = unique("gyre-test-consumer-data");
        let consumer = json!({
            "name": "redis_data", "enabled": true, "type": "redis_stream",
            "redis_stream": {
                "address": ["redis://127.0.0.1:6379"], "streams": [stream],
                "consumer_group": "g", "publication_data_mode": {"enabled": true},
            }
        });
        let channel = format!("outbox:{stream}");
        let server = Server::start(config(consumer));
        let xadd = |fields: Vec<(&'static str, String)>| {
            let mut cmd = redis::cmd("XADD");
            cmd.arg(&stream).arg("*");
            for (k, v) in fields {
                cmd.arg(k).arg(v);
            }
            cmd
        };
        // Two channels make a broadcast; a bad delta flag is skipped.
        let _: String = xadd(vec![
            ("payload", r#"{"n": 1}"#.into()),
            ("centrifugo-channels", format!("{channel},{channel}-b")),
            ("centrifugo-tag-kind", "first".into()),
        ])
        .query_async(&mut r)
        .await
        .unwrap();
        let _: String = xadd(vec![
            ("payload", r#"{"n": 99}"#.into()),
            ("centrifugo-channels", channel.clone()),
            ("centrifugo-delta", "maybe".into()),
        ])
        .query_async(&mut r)
        .await
        .unwrap();
        let _: String = xadd(vec![
            ("payload", r#"{"n": 2}"#.into()),
            ("centrifugo-channels", channel.clone()),
        ])
        .query_async(&mut r)
        .await
        .unwrap();
        history_becomes(&server, &channel, &[1, 2]).await;
        history_becomes(&server, &format!("{channel}-b"), &[1]).await;
        let reply = api(&server, "history", json!({"channel": channel, "limit": 1})).await;
        assert_eq!(reply["result"]["publications"][0]["tags"]["kind"], "first");
        let _: i64 = redis::cmd("DEL")
            .arg(&stream)
            .query_async(&mut r)
            .await
            .unwrap();
    }
}

mod nats_jetstream {
    use async_nats::jetstream;

    use super::*;

    #[tokio::test]
    async fn jetstream_messages_become_publications_once_across_a_restart() {
        let nats = async_nats::connect("nats://127.0.0.1:4222")
            .await
            .expect("NATS on 127.0.0.1:4222");
        let js = jetstream::new(nats);
        let name = unique("GYRE_TEST_CONSUMER");
        let subject = format!("gyre.test.{name}");
        js.create_stream(jetstream::stream::Config {
            name: name.clone(),
            subjects: vec![format!("{subject}.>")],
            ..Default::default()
        })
        .await
        .expect("JetStream enabled on 127.0.0.1:4222");
        let consumer = json!({
            "name": "nats_in", "enabled": true, "type": "nats_jetstream",
            "nats_jetstream": {
                "url": "nats://127.0.0.1:4222", "stream_name": name,
                "subjects": [format!("{subject}.commands")],
                "durable_consumer_name": format!("{name}_durable"),
            }
        });
        let channel = format!("outbox:{name}");
        let server = Server::start(config(consumer.clone()));
        let mut client = subscriber(&server, &channel).await;
        let send = |payload: String, method: Option<&str>| {
            let js = js.clone();
            let subject = format!("{subject}.commands");
            let method = method.map(str::to_owned);
            async move {
                let mut headers = async_nats::HeaderMap::new();
                if let Some(m) = method {
                    headers.insert("centrifugo-method", m.as_str());
                }
                js.publish_with_headers(subject, headers, payload.into())
                    .await
                    .unwrap()
                    .await
                    .unwrap();
            }
        };
        let p = |n| publish(&channel, n).to_string();
        send(p(1), Some("publish")).await;
        send("{not json".into(), None).await;
        send(r#"{"channel": []}"#.into(), Some("publish")).await;
        send(
            json!({"method": "publish", "payload": publish(&channel, 2)}).to_string(),
            None,
        )
        .await;
        assert_eq!(next_n(&mut client, &channel).await, 1);
        assert_eq!(next_n(&mut client, &channel).await, 2);
        history_becomes(&server, &channel, &[1, 2]).await;
        let (processed, _) = consumer_metrics(&server, "nats_in").await;
        assert_eq!(processed, 4.0);

        // Killed; messages published meanwhile wait in the durable consumer.
        drop(client);
        drop(server);
        for n in 3..=5 {
            send(p(n), Some("publish")).await;
        }
        let server = Server::start(config(consumer));
        history_becomes(&server, &channel, &[3, 4, 5]).await;
        drop(server);
        js.delete_stream(&name).await.unwrap();
    }
}

/// Polls `check` until it holds (at most twice the usual timeout).
async fn support_eventually<F, Fut>(mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + TIMEOUT * 2;
    while !check().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "condition not reached"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
