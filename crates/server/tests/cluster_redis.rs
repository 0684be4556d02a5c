//! Three `gyre` nodes sharing Redis act as one: fan-out in order, presence, history and
//! recovery on another node, `/api/info`, cross-node disconnect/unsubscribe and the
//! `channels` survey. The same scenario runs against the shared standalone Redis, a
//! three-master Redis Cluster and two sharded standalone servers started by the test.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use gyre_testkit::redis_server::{RedisServer, start_redis_cluster};
use serde_json::{Value, json};
use support::Server;
use support::cluster::{
    RedisCleanup, api, connect_as, eventually, node_config, received, redis_keys, start_nodes,
    unique_prefix, wait_for_cluster,
};

/// The `n` of `{"n": n}` publication data.
fn n_of(publication: &Value) -> u64 {
    publication["data"]["n"]
        .as_u64()
        .unwrap_or_else(|| panic!("no data.n in {publication}"))
}

/// The offset of a publication or a result (absent when 0).
fn offset_of(v: &Value) -> u64 {
    v["offset"].as_u64().unwrap_or(0)
}

/// API publish of `{"n": n}` to `channel` on `node`; returns (offset, epoch).
async fn publish(node: &Server, channel: &str, n: u64) -> (u64, String) {
    let r = api(
        node,
        "publish",
        json!({"channel": channel, "data": {"n": n}}),
    )
    .await;
    let epoch = r["epoch"].as_str().expect("publish epoch").to_owned();
    assert!(!epoch.is_empty(), "{r}");
    (offset_of(&r), epoch)
}

/// The subscriber counts of `channels` on `node`.
async fn channels(node: &Server) -> BTreeMap<String, u64> {
    let r = api(node, "channels", json!({})).await;
    r["channels"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v["num_clients"].as_u64().unwrap_or(0)))
                .collect()
        })
        .unwrap_or_default()
}

/// The scenario shared by every Redis topology; returns the running nodes.
async fn three_nodes_act_as_one(engine: Value) -> Vec<Server> {
    let nodes = start_nodes(&node_config(engine), 3);
    let (a, b, c) = (&nodes[0], &nodes[1], &nodes[2]);

    // A subscriber on every node, each also in a channel of its own.
    let (mut on_a, id_a) = connect_as(&a.ws_url(), "alice").await;
    let (mut on_b, id_b) = connect_as(&b.ws_url(), "bob").await;
    let (mut on_c, id_c) = connect_as(&c.ws_url(), "carol").await;
    for (client, own) in [
        (&mut on_a, "plain:a"),
        (&mut on_b, "plain:b"),
        (&mut on_c, "plain:c"),
    ] {
        client
            .call("subscribe", json!({"channel": "rec:fan"}))
            .await
            .ok();
        client.call("subscribe", json!({"channel": own})).await.ok();
    }

    // `/api/info` on every node lists the same three nodes, with the clients of all.
    let ids = wait_for_cluster(&nodes).await;
    assert_eq!(ids.len(), 3);
    let total = eventually(Duration::from_secs(8), || async {
        let info = api(a, "info", json!({})).await;
        let clients: u64 = info["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["num_clients"].as_u64().unwrap_or(0))
            .sum();
        (clients == 3).then_some(info)
    })
    .await;
    assert!(total.is_some(), "node counts never added up to 3 clients");

    // Publications on A reach the subscribers of every node, in order.
    let mut published = Vec::new();
    for n in 1..=5 {
        published.push(publish(a, "rec:fan", n).await);
    }
    let epoch = published[0].1.clone();
    let expected: Vec<(u64, u64)> = (1..=5).map(|n| (n, n)).collect();
    assert!(published.iter().all(|(_, e)| *e == epoch), "{published:?}");
    assert_eq!(
        published.iter().map(|p| p.0).collect::<Vec<_>>(),
        [1, 2, 3, 4, 5]
    );
    for client in [&mut on_a, &mut on_b, &mut on_c] {
        assert_eq!(received(client, "rec:fan", 5).await, expected);
    }

    // Presence and its stats aggregate all nodes, asked anywhere.
    let presence = api(b, "presence", json!({"channel": "rec:fan"})).await;
    let mut members: Vec<(String, String)> = presence["presence"]
        .as_object()
        .expect("presence map")
        .iter()
        .map(|(id, info)| {
            assert_eq!(info["client"].as_str(), Some(id.as_str()), "{presence}");
            (
                id.clone(),
                info["user"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    members.sort();
    let mut want = vec![
        (id_a.clone(), "alice".to_owned()),
        (id_b.clone(), "bob".to_owned()),
        (id_c.clone(), "carol".to_owned()),
    ];
    want.sort();
    assert_eq!(members, want, "{presence}");
    let stats = api(c, "presence_stats", json!({"channel": "rec:fan"})).await;
    assert_eq!(stats, json!({"num_clients": 3, "num_users": 3}));

    // `channels` on A surveys B and C.
    let want: BTreeMap<String, u64> = [
        ("rec:fan", 3),
        ("plain:a", 1),
        ("plain:b", 1),
        ("plain:c", 1),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    assert_eq!(channels(a).await, want);

    // History and recovery on a different node: subscribe on A, go away, come back on C.
    let (mut roamer, _) = connect_as(&a.ws_url(), "dave").await;
    let first = roamer
        .call(
            "subscribe",
            json!({"channel": "rec:roam", "recoverable": true}),
        )
        .await
        .ok();
    assert_eq!(first["recoverable"], json!(true), "{first}");
    let roam_epoch = first["epoch"].as_str().expect("epoch").to_owned();
    assert_eq!(publish(b, "rec:roam", 1).await, (1, roam_epoch.clone()));
    assert_eq!(received(&mut roamer, "rec:roam", 1).await, [(1, 1)]);
    drop(roamer);
    for n in 2..=3 {
        assert_eq!(publish(b, "rec:roam", n).await, (n, roam_epoch.clone()));
    }
    let (mut roamer, _) = connect_as(&c.ws_url(), "dave").await;
    let back = roamer
        .call(
            "subscribe",
            json!({"channel": "rec:roam", "recoverable": true, "recover": true,
                   "epoch": roam_epoch, "offset": 1}),
        )
        .await
        .ok();
    assert_eq!(back["recovered"], json!(true), "{back}");
    assert_eq!(back["epoch"], json!(roam_epoch), "{back}");
    let missed: Vec<(u64, u64)> = back["publications"]
        .as_array()
        .expect("recovered publications")
        .iter()
        .map(|p| (offset_of(p), n_of(p)))
        .collect();
    assert_eq!(missed, [(2, 2), (3, 3)], "{back}");
    // The reply's offset is the client's (gyre) or the top (Centrifugo); either way the
    // client sits at the top once it applied the recovered publications.
    assert!([1, 3].contains(&offset_of(&back)), "{back}");
    // And it goes on live from there.
    assert_eq!(publish(a, "rec:roam", 4).await, (4, roam_epoch.clone()));
    assert_eq!(received(&mut roamer, "rec:roam", 1).await, [(4, 4)]);
    let history = api(c, "history", json!({"channel": "rec:roam", "limit": -1})).await;
    let offsets: Vec<u64> = history["publications"]
        .as_array()
        .expect("history")
        .iter()
        .map(offset_of)
        .collect();
    assert_eq!(offsets, [1, 2, 3, 4], "{history}");
    assert_eq!(history["epoch"], json!(roam_epoch));

    // An unsubscribe asked on A reaches bob's connection on B.
    api(
        a,
        "unsubscribe",
        json!({"user": "bob", "channel": "plain:b"}),
    )
    .await;
    loop {
        let push = on_b.push().await.expect("bob stays connected");
        if push.get("unsubscribe").is_some() {
            assert_eq!(push["channel"], json!("plain:b"), "{push}");
            break;
        }
    }

    // A disconnect asked on A closes carol's connection on C with that code.
    api(
        a,
        "disconnect",
        json!({"user": "carol", "disconnect": {"code": 4001, "reason": "cluster test"}}),
    )
    .await;
    assert_eq!(on_c.closed().await, (4001, "cluster test".to_owned()));
    // The others stay, and presence forgets carol.
    assert_eq!(publish(a, "rec:fan", 6).await, (6, epoch.clone()));
    for client in [&mut on_a, &mut on_b] {
        assert_eq!(received(client, "rec:fan", 1).await, [(6, 6)]);
    }
    let stats = eventually(Duration::from_secs(5), || async {
        let stats = api(a, "presence_stats", json!({"channel": "rec:fan"})).await;
        (stats == json!({"num_clients": 2, "num_users": 2})).then_some(())
    })
    .await;
    assert!(stats.is_some(), "presence still counts carol");
    nodes
}

/// Publishes to 40 channels at once so that every shard / master gets some.
async fn spread(node: &Server) {
    let channels: Vec<String> = (0..40).map(|i| format!("rec:spread{i}")).collect();
    let r = api(
        node,
        "broadcast",
        json!({"channels": channels, "data": {"n": 1}}),
    )
    .await;
    let responses = r["responses"].as_array().expect("broadcast responses");
    assert_eq!(responses.len(), 40);
    for response in responses {
        assert!(response.get("error").is_none(), "{r}");
    }
}

/// Whether the Redis at `port` holds history streams under `prefix`.
fn has_streams(port: u16, prefix: &str) -> bool {
    redis_keys(port, prefix)
        .iter()
        .any(|k| k.starts_with(&format!("{prefix}.stream.")))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn standalone_redis() {
    let prefix = unique_prefix("standalone");
    let _cleanup = RedisCleanup {
        port: 6379,
        prefix: prefix.clone(),
    };
    three_nodes_act_as_one(json!({"engine": {"type": "redis", "redis": {
        "address": ["redis://127.0.0.1:6379"],
        "prefix": prefix
    }}}))
    .await;
    assert!(has_streams(6379, &prefix));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_cluster() {
    let masters = start_redis_cluster();
    let prefix = unique_prefix("cluster");
    // Centrifugo's documented form: `host:port` seeds.
    let seeds: Vec<String> = masters.iter().map(RedisServer::host_port).collect();
    let nodes = three_nodes_act_as_one(json!({"engine": {"type": "redis", "redis": {
        "cluster_address": seeds,
        "prefix": prefix
    }}}))
    .await;
    spread(&nodes[1]).await;
    for master in &masters {
        assert!(
            has_streams(master.port, &prefix),
            "no streams on master {}",
            master.port
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sharded_redis() {
    let shards = [RedisServer::start(false), RedisServer::start(false)];
    let prefix = unique_prefix("sharded");
    let nodes = three_nodes_act_as_one(json!({"engine": {"type": "redis", "redis": {
        "address": [shards[0].url(), shards[1].url()],
        "prefix": prefix
    }}}))
    .await;
    spread(&nodes[2]).await;
    for shard in &shards {
        assert!(
            has_streams(shard.port, &prefix),
            "no streams on shard {}",
            shard.port
        );
    }
}
