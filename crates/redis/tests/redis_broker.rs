//! Redis against the broker conformance suite (stream and list history; without history
//! nothing may be written to Redis), plus what is Redis's own: the controller, and
//! byte-level compatibility of keys and payloads with upstream centrifuge. Runs on the
//! real Redis on 127.0.0.1:6379, each test under its own key prefix.

mod support;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use gyre::{
    Broker, BrokerError, ClientInfo, Controller, HistoryOptions, HistoryResult, Publication,
    PublishOptions, StreamPosition,
};
use gyre_protocol::proto;
use gyre_redis::{RedisBroker, RedisConfig};
use gyre_testkit::{Recorder, broker_conformance, eventually};
use prost::Message;
use support::{MAIN_REDIS, cleanup, redis, unique_prefix};

broker_conformance! {
    engine: redis, clock: Real,
    pubsub: run,
    multi_node: run,
    history: run,
    versioning: run,
    idempotency: run,
}

/// The same suite with history kept in lists instead of streams.
mod lists {
    use super::support::redis_lists;
    use gyre_testkit::broker_conformance;

    broker_conformance! {
        engine: redis_lists, clock: Real,
        pubsub: run,
        multi_node: run,
        history: run,
        versioning: skip "list history keeps no versions (as upstream)",
        idempotency: run,
    }
}

const WAIT: Duration = Duration::from_secs(5);

struct Node {
    broker: RedisBroker,
    rec: Arc<Recorder>,
}

impl Drop for Node {
    fn drop(&mut self) {
        self.broker.close();
    }
}

fn config(prefix: &str) -> RedisConfig {
    RedisConfig::new(MAIN_REDIS).prefix(prefix)
}

async fn node(prefix: &str) -> Node {
    let broker = RedisBroker::new(config(prefix)).await.unwrap();
    let rec = Recorder::new();
    Broker::run(&broker, rec.clone()).await.unwrap();
    Node { broker, rec }
}

fn hist60(size: usize) -> PublishOptions {
    PublishOptions::new().history(size, Duration::from_secs(60))
}

fn offsets(pubs: &[Publication]) -> Vec<u64> {
    pubs.iter().map(|p| p.offset).collect()
}

async fn read(b: &RedisBroker, ch: &str, opts: HistoryOptions) -> HistoryResult {
    b.history(ch, opts).await.unwrap()
}

#[tokio::test]
async fn redis_control_broadcast_and_direct() {
    let prefix = unique_prefix("control");
    let a = RedisBroker::new(config(&prefix)).await.unwrap();
    let b = RedisBroker::new(config(&prefix)).await.unwrap();
    let (ra, rb) = (Recorder::new(), Recorder::new());
    Controller::run(&a, "node-a", ra.clone()).await.unwrap();
    Controller::run(&b, "node-b", rb.clone()).await.unwrap();
    assert!(matches!(
        Controller::run(&a, "node-a", ra.clone()).await,
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
    assert_eq!(
        ra.control(),
        vec![Bytes::from_static(b"all"), Bytes::from_static(b"to-a")]
    );
    assert_eq!(
        rb.control(),
        vec![Bytes::from_static(b"all"), Bytes::from_static(b"to-b")]
    );
    // Control messages never reach the broker handler (none was set), and the control
    // channel is exactly upstream's.
    let client = redis::Client::open(MAIN_REDIS).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let receivers: i64 = redis::cmd("PUBLISH")
        .arg(format!("{prefix}.control"))
        .arg("raw")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(receivers, 2);
    assert!(eventually(WAIT, || ra.control().len() == 3).await);
    a.close();
    b.close();
}

/// Golden test of the wire formats against raw Redis commands, as a Centrifugo node
/// would see them.
#[tokio::test]
async fn redis_payloads_match_upstream_bytes() {
    let prefix = unique_prefix("golden");
    let n = node(&prefix).await;
    n.broker.subscribe("news").await.unwrap();
    let client = redis::Client::open(MAIN_REDIS).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();

    // 1. A raw `__p1:<offset>:<epoch>__<protobuf>` PUBLISH is decoded by our reader.
    let body = proto::Publication {
        data: Bytes::from_static(b"{\"v\":1}"),
        info: Some(proto::ClientInfo {
            user: "42".into(),
            client: "cid".into(),
            ..Default::default()
        }),
        time: 1_700_000_000_123,
        ..Default::default()
    }
    .encode_to_vec();
    let mut raw = b"__p1:17:ABCDEFGH__".to_vec();
    raw.extend_from_slice(&body);
    let _: i64 = redis::cmd("PUBLISH")
        .arg(format!("{prefix}.client.news"))
        .arg(&raw)
        .query_async(&mut conn)
        .await
        .unwrap();
    // And a raw plain one, and a raw join.
    let _: i64 = redis::cmd("PUBLISH")
        .arg(format!("{prefix}.client.news"))
        .arg(&body)
        .query_async(&mut conn)
        .await
        .unwrap();
    let mut join = b"__j__".to_vec();
    join.extend_from_slice(
        &proto::ClientInfo {
            user: "7".into(),
            client: "j".into(),
            ..Default::default()
        }
        .encode_to_vec(),
    );
    let _: i64 = redis::cmd("PUBLISH")
        .arg(format!("{prefix}.client.news"))
        .arg(&join)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(
        eventually(WAIT, || n.rec.publications().len() == 2
            && n.rec.joins().len() == 1)
        .await
    );
    {
        let d = n.rec.publications();
        assert_eq!(d[0].position, StreamPosition::new(17, "ABCDEFGH"));
        assert_eq!(d[0].publication.offset, 17);
        assert_eq!(&d[0].publication.data[..], b"{\"v\":1}");
        assert_eq!(d[0].publication.info, Some(ClientInfo::new("42", "cid")));
        assert_eq!(d[0].publication.time, 1_700_000_000_123);
        assert_eq!(d[1].position, StreamPosition::default());
        assert_eq!(n.rec.joins()[0].1, ClientInfo::new("7", "j"));
    }

    // 2. What our publish writes: exact PUB/SUB bytes, stream entry and meta hash.
    let mut sub = client.get_async_pubsub().await.unwrap();
    sub.subscribe(format!("{prefix}.client.news"))
        .await
        .unwrap();
    let r = n
        .broker
        .publish(
            "news",
            Bytes::from_static(b"hello"),
            hist60(10).client_info(ClientInfo::new("u", "c")),
        )
        .await
        .unwrap();
    n.broker
        .publish_leave("news", ClientInfo::new("u", "c"))
        .await
        .unwrap();
    let mut messages = sub.on_message();
    let first = tokio::time::timeout(WAIT, messages.next())
        .await
        .unwrap()
        .unwrap();
    let bytes = first.get_payload_bytes().to_vec();
    let header = format!("__p1:1:{}__", r.position.epoch);
    assert!(
        bytes.starts_with(header.as_bytes()),
        "{:?}",
        String::from_utf8_lossy(&bytes)
    );
    let published_body = &bytes[header.len()..];
    let decoded = proto::Publication::decode(published_body).unwrap();
    assert_eq!(&decoded.data[..], b"hello");
    assert_eq!(decoded.info.as_ref().map(|i| i.user.as_str()), Some("u"));
    assert_eq!(
        decoded.offset, 0,
        "the offset travels in the header, as upstream"
    );
    assert_eq!(
        decoded.encode_to_vec(),
        published_body,
        "canonical protobuf encoding"
    );
    let second = tokio::time::timeout(WAIT, messages.next())
        .await
        .unwrap()
        .unwrap();
    let mut leave = b"__l__".to_vec();
    leave.extend_from_slice(
        &proto::ClientInfo {
            user: "u".into(),
            client: "c".into(),
            ..Default::default()
        }
        .encode_to_vec(),
    );
    assert_eq!(second.get_payload_bytes(), &leave[..]);
    drop(messages);

    let entries: redis::Value = redis::cmd("XRANGE")
        .arg(format!("{prefix}.stream.news"))
        .arg("-")
        .arg("+")
        .query_async(&mut conn)
        .await
        .unwrap();
    let expect = redis::Value::Array(vec![redis::Value::Array(vec![
        redis::Value::BulkString(b"1-0".to_vec()),
        redis::Value::Array(vec![
            redis::Value::BulkString(b"d".to_vec()),
            redis::Value::BulkString(published_body.to_vec()),
        ]),
    ])]);
    assert_eq!(entries, expect);
    let meta: HashMap<String, String> = redis::cmd("HGETALL")
        .arg(format!("{prefix}.stream.meta.news"))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(meta.get("e"), Some(&r.position.epoch));
    assert_eq!(meta.get("s").map(String::as_str), Some("1"));
    let ttl: i64 = redis::cmd("TTL")
        .arg(format!("{prefix}.stream.news"))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!((1..=60).contains(&ttl), "stream TTL {ttl}");

    // 3. A stream written by "another node" (raw commands) is read by our history.
    let _: i64 = redis::cmd("HSET")
        .arg(format!("{prefix}.stream.meta.raw"))
        .arg("e")
        .arg("QWERTYUI")
        .arg("s")
        .arg(9)
        .query_async(&mut conn)
        .await
        .unwrap();
    let _: String = redis::cmd("XADD")
        .arg(format!("{prefix}.stream.raw"))
        .arg("9-0")
        .arg("d")
        .arg(&body)
        .query_async(&mut conn)
        .await
        .unwrap();
    let h = read(&n.broker, "raw", HistoryOptions::new(-1)).await;
    assert_eq!(h.position, StreamPosition::new(9, "QWERTYUI"));
    assert_eq!(offsets(&h.publications), vec![9]);
    assert_eq!(&h.publications[0].data[..], b"{\"v\":1}");
    cleanup(MAIN_REDIS, &prefix).await;
}

/// A node on Redis answers a newly seen node's first heartbeat with its own info, sent to
/// that node's channel `<prefix>.node.<uid>` as upstream's `pubNode(uid)` does, so that a
/// Centrifugo node and a Gyre node started together list each other at once. The other
/// node here is played with raw Redis commands, as a Centrifugo node would speak.
#[tokio::test]
async fn a_new_node_gets_node_info_directly_on_its_node_channel() {
    use gyre_protocol::control;

    let prefix = unique_prefix("nodeinfo");
    let mut config = gyre::Config::default();
    // Heartbeats an hour apart: whatever arrives below is the direct answer.
    config.node_info_interval = Duration::from_secs(3600);
    let broker = Arc::new(RedisBroker::new(self::config(&prefix)).await.unwrap());
    let node = gyre::Node::builder()
        .config(config)
        .broker_arc(broker.clone())
        .controller_arc(broker.clone())
        .build();
    node.run().await.unwrap();

    // The other node listens on its own channel, then announces itself on the control
    // channel the way upstream encodes a heartbeat.
    let client = redis::Client::open(MAIN_REDIS).unwrap();
    let mut sub = client.get_async_pubsub().await.unwrap();
    sub.subscribe(format!("{prefix}.node.other-node"))
        .await
        .unwrap();
    let heartbeat = control::Command {
        uid: "other-node".to_owned(),
        node: Some(control::Node {
            uid: "other-node".to_owned(),
            name: "centrifugo".to_owned(),
            version: "6.0.0".to_owned(),
            num_clients: 7,
            uptime: 1,
            ..Default::default()
        }),
        ..Default::default()
    };
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let _: i64 = redis::cmd("PUBLISH")
        .arg(format!("{prefix}.control"))
        .arg(heartbeat.encode_to_vec())
        .query_async(&mut conn)
        .await
        .unwrap();

    let mut messages = sub.on_message();
    let answer = tokio::time::timeout(WAIT, messages.next())
        .await
        .expect("node info within the wait, not after an hour")
        .expect("a message on the node channel");
    let answer = control::Command::decode(answer.get_payload_bytes()).unwrap();
    assert_eq!(answer.uid, node.id());
    let info = answer.node.expect("a node command");
    assert_eq!(info.uid, node.id());
    // And the Gyre node lists the other one.
    assert!(
        eventually(WAIT, || node
            .nodes()
            .iter()
            .any(|n| n.id == "other-node" && n.num_clients == 7))
        .await
    );
    // A second heartbeat from a known node is not answered again.
    let _: i64 = redis::cmd("PUBLISH")
        .arg(format!("{prefix}.control"))
        .arg(heartbeat.encode_to_vec())
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(
        tokio::time::timeout(Duration::from_millis(500), messages.next())
            .await
            .is_err()
    );
    drop(messages);
    node.shutdown().await;
    broker.close();
    cleanup(MAIN_REDIS, &prefix).await;
}
