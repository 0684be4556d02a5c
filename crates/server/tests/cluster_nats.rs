//! Three `gyre` nodes with the NATS broker (`broker.type: nats`) act as one: fan-out of
//! API publications to the subscribers of every node in order, `/api/info` lists the
//! three nodes, and disconnect, unsubscribe and the `channels` survey cross nodes.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Value, json};
use support::cluster::{
    api, connect_as, node_config, received, start_nodes, unique_prefix, wait_for_cluster,
};

fn nats_engine(prefix: &str) -> Value {
    json!({"broker": {
        "enabled": true,
        "type": "nats",
        "nats": {"url": "nats://127.0.0.1:4222", "prefix": prefix}
    }})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_over_nats() {
    let prefix = unique_prefix("nats");
    let nodes = start_nodes(&node_config(nats_engine(&prefix)), 3);
    let (a, b, c) = (&nodes[0], &nodes[1], &nodes[2]);

    let (mut on_a, _) = connect_as(&a.ws_url(), "alice").await;
    let (mut on_b, _) = connect_as(&b.ws_url(), "bob").await;
    let (mut on_c, _) = connect_as(&c.ws_url(), "carol").await;
    for (client, own) in [
        (&mut on_a, "plain:a"),
        (&mut on_b, "plain:b"),
        (&mut on_c, "plain:c"),
    ] {
        client
            .call("subscribe", json!({"channel": "plain:fan"}))
            .await
            .ok();
        client.call("subscribe", json!({"channel": own})).await.ok();
    }

    // Heartbeats over NATS: every node lists the same three nodes.
    let ids = wait_for_cluster(&nodes).await;
    assert_eq!(ids.len(), 3);

    // Publications on A reach every node's subscriber in publish order (NATS carries no
    // history: no offsets).
    for n in 1..=20 {
        let r = api(
            a,
            "publish",
            json!({"channel": "plain:fan", "data": {"n": n}}),
        )
        .await;
        assert_eq!(r, json!({}), "no stream position without history");
    }
    let expected: Vec<(u64, u64)> = (1..=20).map(|n| (0, n)).collect();
    for client in [&mut on_a, &mut on_b, &mut on_c] {
        assert_eq!(received(client, "plain:fan", 20).await, expected);
    }
    // Published on C, received on A and B.
    api(
        c,
        "publish",
        json!({"channel": "plain:fan", "data": {"n": 21}}),
    )
    .await;
    for client in [&mut on_a, &mut on_b, &mut on_c] {
        assert_eq!(received(client, "plain:fan", 1).await, [(0, 21)]);
    }

    // The `channels` survey on A gets the answers of B and C over NATS.
    let r = api(a, "channels", json!({})).await;
    let channels: BTreeMap<String, u64> = r["channels"]
        .as_object()
        .expect("channels")
        .iter()
        .map(|(k, v)| (k.clone(), v["num_clients"].as_u64().unwrap_or(0)))
        .collect();
    let want: BTreeMap<String, u64> = [
        ("plain:fan", 3),
        ("plain:a", 1),
        ("plain:b", 1),
        ("plain:c", 1),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    assert_eq!(channels, want, "{r}");

    // An unsubscribe asked on B reaches carol on C; a disconnect asked on A, bob on B.
    api(
        b,
        "unsubscribe",
        json!({"user": "carol", "channel": "plain:c"}),
    )
    .await;
    loop {
        let push = on_c.push().await.expect("carol stays connected");
        if push.get("unsubscribe").is_some() {
            assert_eq!(push["channel"], json!("plain:c"), "{push}");
            break;
        }
    }
    api(
        a,
        "disconnect",
        json!({"user": "bob", "disconnect": {"code": 4002, "reason": "nats test"}}),
    )
    .await;
    assert_eq!(on_b.closed().await, (4002, "nats test".to_owned()));
    // Only bob went.
    api(
        a,
        "publish",
        json!({"channel": "plain:fan", "data": {"n": 22}}),
    )
    .await;
    for client in [&mut on_a, &mut on_c] {
        assert_eq!(received(client, "plain:fan", 1).await, [(0, 22)]);
    }
    assert!(on_c.quiet_for(Duration::from_millis(200)).await);
}
