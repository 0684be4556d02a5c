//! Emulated transports across nodes: a client keeps its HTTP stream open on node A while
//! every `/emulation` request goes to nodes B and C, which forward the commands to A over
//! the engine's control channel (Redis, NATS). The client sees no difference: connect,
//! subscribe, a publication sent through C's API, unsubscribe.

mod support;

use std::time::Duration;

use serde_json::{Value, json};
use support::cluster::{
    RedisCleanup, api, node_config, start_nodes, unique_prefix, wait_for_cluster,
};
use support::{Server, policy};

/// How long a reply may take to arrive on the stream.
const WAIT: Duration = Duration::from_secs(10);

/// The JSON messages of an open HTTP stream, one line each.
struct Stream {
    response: reqwest::Response,
    buffered: Vec<u8>,
}

impl Stream {
    async fn open(node: &Server, connect: Value) -> Stream {
        let response = reqwest::Client::new()
            .post(format!("{}/connection/http_stream", node.http_url()))
            .body(connect.to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        Stream {
            response,
            buffered: Vec::new(),
        }
    }

    /// The next message; fails after [`WAIT`] or at the end of the stream.
    async fn next(&mut self) -> Value {
        loop {
            if let Some(end) = self.buffered.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = self.buffered.drain(..=end).collect();
                return serde_json::from_slice(&line[..end]).unwrap();
            }
            let chunk = tokio::time::timeout(WAIT, self.response.chunk())
                .await
                .expect("a message in time")
                .unwrap()
                .expect("the stream is still open");
            self.buffered.extend_from_slice(&chunk);
        }
    }

    /// The next message that is not a ping (`{}`).
    async fn next_message(&mut self) -> Value {
        loop {
            let m = self.next().await;
            if m != json!({}) {
                return m;
            }
        }
    }
}

/// POSTs `commands` (newline-joined JSON) for `session` of `node` to `via`'s
/// `/emulation`; returns the status.
async fn emulate(via: &Server, node: &str, session: &str, commands: &[Value]) -> u16 {
    let data = commands
        .iter()
        .map(Value::to_string)
        .collect::<Vec<_>>()
        .join("\n");
    let body = json!({"node": node, "session": session, "data": data});
    reqwest::Client::new()
        .post(format!("{}/emulation", via.http_url()))
        .body(body.to_string())
        .timeout(Duration::from_secs(15))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

fn emulated(engine: Value) -> Value {
    let mut config = node_config(engine);
    gyre_testkit::merge_config(&mut config, json!({"http_stream": {"enabled": true}}));
    config
}

async fn a_stream_on_one_node_takes_commands_through_the_others(engine: Value) {
    let nodes = start_nodes(&emulated(engine), 3);
    let (a, b, c) = (&nodes[0], &nodes[1], &nodes[2]);
    wait_for_cluster(&nodes).await;

    let connect = json!({"id": 1, "connect": {"token": policy::connect_token("alice", json!({}))}});
    let mut stream = Stream::open(a, connect).await;
    let reply = stream.next_message().await;
    let node = reply["connect"]["node"].as_str().expect("connect.node");
    let session = reply["connect"]["session"]
        .as_str()
        .expect("connect.session");
    let (node, session) = (node.to_owned(), session.to_owned());
    let info = api(a, "info", json!({})).await;
    let a_id = info["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["num_clients"] == 1)
        .and_then(|n| n["uid"].as_str())
        .expect("the node holding the client");
    assert_eq!(node, a_id, "the stream is on A");

    // Subscribe through B: the reply comes down A's stream.
    let subscribe = json!({"id": 2, "subscribe": {"channel": "plain:room"}});
    assert_eq!(emulate(b, &node, &session, &[subscribe]).await, 204);
    let reply = stream.next_message().await;
    assert_eq!(reply["id"], 2, "{reply}");
    assert!(reply.get("subscribe").is_some(), "{reply}");

    // A publication through C's API reaches the client on A.
    api(
        c,
        "publish",
        json!({"channel": "plain:room", "data": {"n": 1}}),
    )
    .await;
    let push = stream.next_message().await;
    assert_eq!(push["push"]["channel"], "plain:room", "{push}");
    assert_eq!(push["push"]["pub"]["data"]["n"], 1, "{push}");

    // Two commands in one request through C, answered in order.
    let commands = [
        json!({"id": 3, "unsubscribe": {"channel": "plain:room"}}),
        json!({"id": 4, "subscribe": {"channel": "plain:other"}}),
    ];
    assert_eq!(emulate(c, &node, &session, &commands).await, 204);
    let first = stream.next_message().await;
    let second = stream.next_message().await;
    assert_eq!(
        (first["id"].clone(), second["id"].clone()),
        (json!(3), json!(4))
    );
    assert!(second.get("subscribe").is_some(), "{second}");
    let channels = api(b, "channels", json!({})).await;
    let names: Vec<&String> = channels["channels"].as_object().unwrap().keys().collect();
    assert_eq!(names, ["plain:other"], "{channels}");

    // A node that is not in the cluster: 404, on which the SDK reconnects.
    let ping = json!({"id": 5, "presence": {"channel": "plain:other"}});
    assert_eq!(emulate(b, "no-such-node", &session, &[ping]).await, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn emulation_is_routed_over_redis() {
    let prefix = unique_prefix("emulation");
    let _cleanup = RedisCleanup {
        port: 6379,
        prefix: prefix.clone(),
    };
    a_stream_on_one_node_takes_commands_through_the_others(json!({"engine": {
        "type": "redis",
        "redis": {"address": ["redis://127.0.0.1:6379"], "prefix": prefix}
    }}))
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn emulation_is_routed_over_nats() {
    let prefix = unique_prefix("emulation");
    a_stream_on_one_node_takes_commands_through_the_others(json!({"broker": {
        "enabled": true,
        "type": "nats",
        "nats": {"url": "nats://127.0.0.1:4222", "prefix": prefix}
    }}))
    .await;
}
