//! `/metrics` of the real `gyre` binary after a workload: every family the Grafana
//! dashboard queries is declared, the ones the workload drives have non-zero samples, and
//! histograms carry Centrifugo's buckets. The workload: WebSocket connect, subscribe,
//! publish, a recovery, an RPC through the event proxy, and HTTP API calls.

mod support;

use std::collections::{BTreeSet, HashMap};

use serde_json::json;
use support::{Server, WsClient};

/// Family name → (type, samples as (series, value)).
fn parse(text: &str) -> HashMap<String, (String, Vec<(String, f64)>)> {
    let mut families: HashMap<String, (String, Vec<(String, f64)>)> = HashMap::new();
    let mut helped = BTreeSet::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            helped.insert(rest.split(' ').next().unwrap().to_owned());
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap();
            assert!(helped.contains(name), "TYPE without HELP for {name}");
            families.insert(name.to_owned(), (kind.to_owned(), Vec::new()));
        } else if !line.is_empty() {
            let (series, value) = line.rsplit_once(' ').unwrap();
            let name = series.split('{').next().unwrap();
            let family = families
                .keys()
                .filter(|f| name.starts_with(f.as_str()))
                .max_by_key(|f| f.len())
                .cloned()
                .unwrap_or_else(|| panic!("sample {line} before its TYPE"));
            let v = value.parse::<f64>().unwrap_or(f64::INFINITY);
            families
                .get_mut(&family)
                .unwrap()
                .1
                .push((series.to_owned(), v));
        }
    }
    families
}

/// An RPC proxy backend answering every call with `{"result": {"data": {"ok": true}}}`.
async fn rpc_backend() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = axum::Router::new()
        .fallback(|| async { axum::Json(json!({"result": {"data": {"ok": true}}})) });
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    format!("http://{addr}/rpc")
}

#[tokio::test]
async fn dashboard_families_exist_after_a_workload() {
    let rpc_endpoint = rpc_backend().await;
    let server = Server::start(json!({
        "client": {"allow_anonymous_connect_without_token": true},
        "channel": {
            "without_namespace": {
                "allow_subscribe_for_anonymous": true, "allow_subscribe_for_client": true,
                "allow_publish_for_anonymous": true, "allow_publish_for_client": true},
            "namespaces": [{
                "name": "hist", "history_size": 10, "history_ttl": "300s",
                "force_recovery": true,
                "allow_subscribe_for_anonymous": true, "allow_subscribe_for_client": true}]
        },
        "rpc": {
            "proxy": {"endpoint": rpc_endpoint, "timeout": "3s"},
            "without_namespace": {"proxy_enabled": true}
        },
        "prometheus": {"enabled": true},
        "http_api": {"key": "k"}
    }));
    let (mut client, reply) = WsClient::connect(&server.ws_url(), json!({"name": "t"})).await;
    reply.ok();
    client
        .call("subscribe", json!({"channel": "news"}))
        .await
        .ok();
    client
        .call("publish", json!({"channel": "news", "data": {"a": 1}}))
        .await
        .ok();
    assert!(client.publication("news").await.is_some());
    let http = reqwest::Client::new();
    let api = http
        .post(format!("{}/api/publish", server.http_url()))
        .header("X-API-Key", "k")
        .body(json!({"channel": "news", "data": {"b": 2}}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(api.status(), 200);
    assert!(client.publication("news").await.is_some());

    // A recovery that brings back two missed publications.
    let subscribed = client
        .call("subscribe", json!({"channel": "hist:a"}))
        .await
        .ok();
    let epoch = subscribed["epoch"].clone();
    client
        .call("unsubscribe", json!({"channel": "hist:a"}))
        .await
        .ok();
    for n in 0..2 {
        let status = http
            .post(format!("{}/api/publish", server.http_url()))
            .header("X-API-Key", "k")
            .body(json!({"channel": "hist:a", "data": {"n": n}}).to_string())
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status, 200);
    }
    let recovered = client
        .call(
            "subscribe",
            json!({"channel": "hist:a", "recover": true, "offset": 0, "epoch": epoch}),
        )
        .await
        .ok();
    assert_eq!(recovered["recovered"], true, "{recovered}");
    assert_eq!(recovered["publications"].as_array().map(Vec::len), Some(2));

    // An RPC through the event proxy.
    let rpc = client
        .call("rpc", json!({"method": "echo", "data": {}}))
        .await
        .ok();
    assert_eq!(rpc["data"]["ok"], true, "{rpc}");

    let text = http
        .get(format!("{}/metrics", server.http_url()))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let families = parse(&text);

    let dashboard: serde_json::Value =
        serde_json::from_str(include_str!("../../../misc/grafana/gyre.json")).unwrap();
    let re = |expr: &str| -> Vec<String> {
        expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .filter(|w| w.starts_with("centrifugo_") || w.starts_with("process_"))
            .map(str::to_owned)
            .collect()
    };
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().unwrap() {
            for name in re(target["expr"].as_str().unwrap()) {
                let family = ["_bucket", "_count", "_sum"]
                    .iter()
                    .find_map(|s| name.strip_suffix(s).filter(|f| families.contains_key(*f)))
                    .unwrap_or(&name);
                assert!(
                    families.contains_key(family),
                    "{name} of panel {} is not exposed",
                    panel["title"]
                );
            }
        }
    }

    let total = |family: &str, filter: &str| -> f64 {
        families[family]
            .1
            .iter()
            .filter(|(s, _)| s.contains(filter))
            .map(|(_, v)| v)
            .sum()
    };
    assert!(total("centrifugo_node_messages_sent_count", "publication") >= 2.0);
    assert!(total("centrifugo_node_messages_received_count", "publication") >= 2.0);
    assert!(
        total(
            "centrifugo_client_command_duration_seconds_histogram",
            "_count{method=\"publish\""
        ) >= 1.0
    );
    assert!(
        total(
            "centrifugo_client_connections_accepted",
            "client_name=\"unregistered\""
        ) >= 1.0
    );
    assert!(total("centrifugo_transport_messages_sent", "websocket") >= 3.0);
    assert!(total("centrifugo_transport_messages_received", "websocket") >= 3.0);
    assert!(
        total(
            "centrifugo_api_command_duration_seconds_histogram",
            "_count{protocol=\"http\",method=\"publish\""
        ) >= 1.0
    );
    assert!(
        total(
            "centrifugo_client_recover",
            "{recovered=\"yes\",channel_namespace=\"\",has_recovered_publications=\"yes\"}"
        ) >= 1.0
    );
    assert!(
        total(
            "centrifugo_proxy_duration_seconds_histogram",
            "_count{protocol=\"http\",type=\"rpc\",name=\"default\"}"
        ) >= 1.0
    );
    assert_eq!(total("centrifugo_proxy_errors", "type=\"rpc\""), 0.0);
    assert!(total("process_resident_memory_bytes", "") > 0.0);
    assert_eq!(
        families["centrifugo_client_command_duration_seconds"].0,
        "summary"
    );

    let buckets: Vec<&str> = families["centrifugo_client_command_duration_seconds_histogram"]
        .1
        .iter()
        .filter(|(s, _)| s.contains("method=\"connect\""))
        .filter_map(|(s, _)| s.split("le=\"").nth(1)?.split('"').next())
        .collect();
    assert_eq!(
        buckets,
        [
            "0.0001", "0.00025", "0.0005", "0.001", "0.005", "0.01", "0.025", "0.05", "0.1",
            "0.25", "0.5", "1", "2.5", "5", "10", "+Inf"
        ]
    );
    assert!(!text.contains("_total_total"));
}
