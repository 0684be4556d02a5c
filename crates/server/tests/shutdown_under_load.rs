//! Graceful shutdown under load loses no acknowledged publication: publishers hammer one
//! node's HTTP API while it gets SIGTERM; every publication it acknowledged is in the
//! channel's history (Redis) and was delivered to a subscriber on another node.

mod support;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use serde_json::{Value, json};
use support::Server;
use support::cluster::{
    API_KEY, RedisCleanup, api, connect_as, eventually, node_config, unique_prefix,
};

/// Publishes `{"n": n}` to `channel` at `base` until the node stops answering; every
/// acknowledged `n` goes into `acked`.
async fn publish_until_refused(
    base: String,
    channel: &'static str,
    next: Arc<AtomicU64>,
    acked: Arc<Mutex<BTreeSet<u64>>>,
) {
    let http = reqwest::Client::new();
    loop {
        let n = next.fetch_add(1, Ordering::Relaxed);
        let sent = http
            .post(format!("{base}/api/publish"))
            .header("X-API-Key", API_KEY)
            .timeout(Duration::from_secs(10))
            .body(json!({"channel": channel, "data": {"n": n}}).to_string())
            .send()
            .await;
        let Ok(response) = sent else { return };
        let status = response.status();
        let Ok(text) = response.text().await else {
            return;
        };
        let Ok(body) = serde_json::from_str::<Value>(&text) else {
            return;
        };
        if status != 200 || body.get("error").is_some() || body.get("result").is_none() {
            return;
        }
        acked.lock().insert(n);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_under_load_loses_no_acknowledged_publication() {
    let prefix = unique_prefix("shutdown");
    let _cleanup = RedisCleanup {
        port: 6379,
        prefix: prefix.clone(),
    };
    let mut config = node_config(json!({"engine": {"type": "redis", "redis": {
        "address": ["redis://127.0.0.1:6379"],
        "prefix": prefix
    }}}));
    config["channel"]["namespaces"][0]["history_size"] = json!(1_000_000);
    let stopping = Server::start(config.clone());
    let staying = Server::start(config);
    let (mut subscriber, _) = connect_as(&staying.ws_url(), "watcher").await;
    subscriber
        .call("subscribe", json!({"channel": "rec:load"}))
        .await
        .ok();

    let next = Arc::new(AtomicU64::new(0));
    let acked = Arc::new(Mutex::new(BTreeSet::new()));
    let publishers: Vec<_> = (0..4)
        .map(|_| {
            tokio::spawn(publish_until_refused(
                stopping.http_url(),
                "rec:load",
                next.clone(),
                acked.clone(),
            ))
        })
        .collect();
    // Under load: SIGTERM once a few hundred publications went through.
    let under_load = eventually(Duration::from_secs(20), || async {
        (acked.lock().len() >= 300).then_some(())
    })
    .await;
    assert!(under_load.is_some(), "publishing did not get going");
    let status = std::process::Command::new("kill")
        .args(["-TERM", &stopping.pid().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    for p in publishers {
        tokio::time::timeout(Duration::from_secs(30), p)
            .await
            .expect("publishers stop once the node is gone")
            .unwrap();
    }
    let acked: Vec<u64> = acked.lock().iter().copied().collect();
    assert!(acked.len() >= 300);

    // Every acknowledged publication is in history, read on the node that stays.
    let history = api(
        &staying,
        "history",
        json!({"channel": "rec:load", "limit": -1}),
    )
    .await;
    let stored: BTreeSet<u64> = history["publications"]
        .as_array()
        .expect("publications")
        .iter()
        .map(|p| p["data"]["n"].as_u64().unwrap())
        .collect();
    let missing: Vec<_> = acked.iter().filter(|n| !stored.contains(n)).collect();
    assert!(
        missing.is_empty(),
        "acknowledged but not in history: {missing:?}"
    );

    // And the subscriber on the other node got each of them.
    let mut delivered = BTreeSet::new();
    while delivered.len() < stored.len() {
        let p = subscriber
            .publication("rec:load")
            .await
            .expect("the subscriber stays connected");
        delivered.insert(p["data"]["n"].as_u64().unwrap());
    }
    let undelivered: Vec<_> = acked.iter().filter(|n| !delivered.contains(n)).collect();
    assert!(
        undelivered.is_empty(),
        "acknowledged, not delivered: {undelivered:?}"
    );
}
