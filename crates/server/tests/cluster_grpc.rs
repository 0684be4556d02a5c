//! Three `gyre` nodes on the shared Redis, each also serving the gRPC server API: a
//! publication made through node 1's gRPC API reaches the WebSocket subscribers of all
//! three nodes, and is in the history every node reads.

mod support;

use std::time::{Duration, Instant};

use gyre_testkit::{free_port, merge_config};
use serde_json::{Value, json};
use support::Server;
use support::cluster::{
    RedisCleanup, api, connect_as, node_config, received, redis_keys, unique_prefix,
    wait_for_cluster,
};
use tonic::transport::Channel;

#[allow(missing_docs, unreachable_pub, clippy::all, reason = "generated code")]
mod pb {
    include!("grpc_support/centrifugal.centrifugo.api.rs");
}

use pb::centrifugo_api_client::CentrifugoApiClient;

const GRPC_KEY: &str = "cluster-grpc-key";

/// The generated messages serialize their payloads through this; nothing here serializes
/// them, so the raw bytes will do.
fn json_bytes<S: serde::Serializer>(bytes: &bytes::Bytes, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_bytes(bytes)
}

/// A node of `config` that also serves the gRPC API; returns it with the gRPC port. The
/// HTTP port is picked after the gRPC one and may be the same: then it starts again.
fn start_grpc_node(config: &Value) -> (Server, u16) {
    for _ in 0..5 {
        let port = free_port();
        let mut node = config.clone();
        merge_config(
            &mut node,
            json!({"grpc_api": {
                "enabled": true, "address": "127.0.0.1", "port": port, "key": GRPC_KEY
            }}),
        );
        let server = Server::start(node);
        if server.port() == port {
            continue;
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            let log = server.logs();
            if log.contains("serving the gRPC server API") {
                assert!(log.contains(&format!("127.0.0.1:{port}")), "{log}");
                return (server, port);
            }
            if log.contains("in use") {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    panic!("a node's gRPC API did not start");
}

async fn grpc_client(port: u16) -> CentrifugoApiClient<Channel> {
    let endpoint = Channel::from_shared(format!("http://127.0.0.1:{port}")).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match endpoint.connect().await {
            Ok(channel) => return CentrifugoApiClient::new(channel),
            Err(e) if Instant::now() > deadline => panic!("gRPC API not reachable: {e:?}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

/// gRPC publish of `{"n": n}` to `channel`; returns (offset, epoch).
async fn grpc_publish(
    client: &mut CentrifugoApiClient<Channel>,
    channel: &str,
    n: u64,
) -> (u64, String) {
    let mut request = tonic::Request::new(pb::PublishRequest {
        channel: channel.to_owned(),
        data: json!({ "n": n }).to_string().into(),
        ..Default::default()
    });
    let key = format!("apikey {GRPC_KEY}").parse().unwrap();
    request.metadata_mut().insert("authorization", key);
    let response = client
        .publish(request)
        .await
        .expect("gRPC publish")
        .into_inner();
    assert!(response.error.is_none(), "{response:?}");
    let result = response.result.expect("publish result");
    assert!(!result.epoch.is_empty(), "{result:?}");
    (result.offset, result.epoch)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_publish_on_one_node_reaches_clients_on_all() {
    let prefix = unique_prefix("grpc");
    let _cleanup = RedisCleanup {
        port: 6379,
        prefix: prefix.clone(),
    };
    let config = node_config(json!({"engine": {"type": "redis", "redis": {
        "address": ["redis://127.0.0.1:6379"],
        "prefix": prefix
    }}}));
    let started: Vec<(Server, u16)> = (0..3).map(|_| start_grpc_node(&config)).collect();
    let grpc_port = started[0].1;
    let nodes: Vec<Server> = started.into_iter().map(|(server, _)| server).collect();

    let mut clients = Vec::new();
    for (node, user) in nodes.iter().zip(["alice", "bob", "carol"]) {
        let (mut client, _) = connect_as(&node.ws_url(), user).await;
        let reply = client
            .call("subscribe", json!({"channel": "rec:grpc"}))
            .await;
        assert!(reply.error().is_none(), "subscribe on {}", node.port());
        clients.push(client);
    }
    assert_eq!(wait_for_cluster(&nodes).await.len(), 3);

    let mut client = grpc_client(grpc_port).await;
    let mut published = Vec::new();
    for n in 1..=3 {
        published.push(grpc_publish(&mut client, "rec:grpc", n).await);
    }
    let epoch = published[0].1.clone();
    assert_eq!(
        published,
        (1..=3).map(|n| (n, epoch.clone())).collect::<Vec<_>>()
    );
    let expected: Vec<(u64, u64)> = (1..=3).map(|n| (n, n)).collect();
    for (i, ws) in clients.iter_mut().enumerate() {
        assert_eq!(
            received(ws, "rec:grpc", 3).await,
            expected,
            "node {}",
            i + 1
        );
    }

    // The stream lives in the shared Redis: node 3 reads what node 1 published.
    let history = api(
        &nodes[2],
        "history",
        json!({"channel": "rec:grpc", "limit": -1}),
    )
    .await;
    assert_eq!(history["epoch"], json!(epoch), "{history}");
    assert_eq!(history["offset"], json!(3), "{history}");
    assert!(
        redis_keys(6379, &prefix)
            .iter()
            .any(|k| k.starts_with(&format!("{prefix}.stream."))),
        "no stream under {prefix}"
    );
}
