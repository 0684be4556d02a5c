//! `/metrics` of the real `gyre` binary after a workload: every family the Grafana
//! dashboard queries is declared, the ones the workload drives have non-zero samples, and
//! histograms carry Centrifugo's buckets. The workload: WebSocket connect, subscribe,
//! publish, a recovery, an RPC through the event proxy, HTTP API calls (one of them
//! `channels`, which surveys the nodes), a gRPC API call and a server ping answered by
//! a pong.

mod support;

#[allow(missing_docs, unreachable_pub, clippy::all, reason = "generated code")]
mod pb {
    include!("grpc_support/centrifugal.centrifugo.api.rs");
}

/// Payload bytes as JSON (the generated types serialize with it).
fn json_bytes<S: serde::Serializer>(bytes: &bytes::Bytes, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&String::from_utf8_lossy(bytes))
}

/// A fixed port in this suite's range for the gRPC API.
const GRPC_PORT: u16 = 21012;

/// Publishes once through the gRPC API, waiting for it to listen.
async fn grpc_publish(channel: &str) {
    let url = format!("http://127.0.0.1:{GRPC_PORT}");
    let endpoint = tonic::transport::Channel::from_shared(url).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let channel_conn = loop {
        match endpoint.connect().await {
            Ok(c) => break c,
            Err(e) if std::time::Instant::now() > deadline => panic!("gRPC API: {e:?}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    };
    let mut client = pb::centrifugo_api_client::CentrifugoApiClient::new(channel_conn);
    let mut request = tonic::Request::new(pb::PublishRequest {
        channel: channel.to_owned(),
        data: bytes::Bytes::from_static(br#"{"g":1}"#),
        ..Default::default()
    });
    request
        .metadata_mut()
        .insert("authorization", "apikey gk".parse().unwrap());
    let reply = client.publish(request).await.unwrap().into_inner();
    assert!(reply.error.is_none(), "{:?}", reply.error);
}

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

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
        "client": {
            "allow_anonymous_connect_without_token": true,
            "ping_interval": "1s", "pong_timeout": "500ms",
            "connection_limit": 1
        },
        "prometheus": {
            "enabled": true, "instrument_http_handlers": true,
            "recovered_publications_histogram": true
        },
        "http_api": {"key": "k"},
        "grpc_api": {"enabled": true, "address": "127.0.0.1", "port": GRPC_PORT, "key": "gk"}
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

    grpc_publish("news").await;
    assert!(client.publication("news").await.is_some());

    // `channels` surveys the nodes (this one alone here).
    let channels = http
        .post(format!("{}/api/channels", server.http_url()))
        .header("X-API-Key", "k")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(channels.status(), 200);

    // The node holds `client.connection_limit` (1) clients: a second one is refused.
    let refused = http
        .get(format!("{}/connection/websocket", server.http_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 503);

    // The first ping comes within a ping interval; the helper answers it with a pong.
    assert!(matches!(
        client.push_within(Duration::from_millis(2500)).await,
        Ok(None)
    ));

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
            "centrifugo_api_command_duration_seconds_histogram",
            "_count{protocol=\"grpc\",method=\"publish\""
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

    // Frame types as upstream names them, on both directions.
    let sent = |frame: &str| {
        total(
            "centrifugo_transport_messages_sent",
            &format!("{{transport=\"websocket\",frame_type=\"{frame}\",channel_namespace=\"\"}}"),
        )
    };
    assert_eq!(sent("connect"), 1.0);
    assert_eq!(sent("subscribe"), 3.0);
    assert_eq!(sent("rpc"), 1.0);
    assert!(sent("push_publication") >= 2.0);
    assert!(sent("server_ping") >= 1.0);
    let received = |frame: &str| {
        total(
            "centrifugo_transport_messages_received",
            &format!("{{transport=\"websocket\",frame_type=\"{frame}\",channel_namespace=\"\"}}"),
        )
    };
    assert_eq!(received("connect"), 1.0);
    assert_eq!(received("publish"), 1.0);
    assert!(received("client_pong") >= 1.0);
    assert!(
        total(
            "centrifugo_transport_messages_received_size",
            "frame_type=\"publish\""
        ) > 20.0
    );
    assert_eq!(
        total("centrifugo_transport_messages_sent", "frame_type=\"\""),
        0.0
    );

    // Ping/pong round trips per transport.
    assert_eq!(
        families["centrifugo_client_ping_pong_duration_seconds"].0,
        "histogram"
    );
    assert!(
        total(
            "centrifugo_client_ping_pong_duration_seconds",
            "_count{transport=\"websocket\"}"
        ) >= 1.0
    );

    // Publications reach this node's broker subscriber: the lag since their publish.
    assert!(
        total(
            "centrifugo_node_pub_sub_lag_seconds",
            "_count{channel_namespace=\"\"}"
        ) >= 4.0
    );
    let lag_buckets: Vec<&str> = families["centrifugo_node_pub_sub_lag_seconds"]
        .1
        .iter()
        .filter_map(|(s, _)| s.split("le=\"").nth(1)?.split('"').next())
        .collect();
    assert_eq!(
        lag_buckets,
        [
            "0.001", "0.005", "0.01", "0.025", "0.05", "0.1", "0.2", "0.5", "1", "2", "5", "10",
            "+Inf"
        ]
    );

    // The `channels` survey, as a summary and a histogram.
    assert_eq!(
        families["centrifugo_node_survey_duration_seconds"].0,
        "summary"
    );
    assert!(
        total(
            "centrifugo_node_survey_duration_seconds_histogram",
            "_count{op=\"channels\"}"
        ) >= 1.0
    );
    assert!(
        total(
            "centrifugo_node_action_count",
            "{action=\"survey\",channel_namespace=\"\"}"
        ) >= 1.0
    );

    // The deprecated summaries carry quantile lines: numbers where there were
    // observations, NaN where none.
    let quantile = |family: &str, series: &str| -> f64 {
        families[family]
            .1
            .iter()
            .find(|(s, _)| s == series)
            .unwrap_or_else(|| panic!("no {series}"))
            .1
    };
    let publish_p99 = quantile(
        "centrifugo_client_command_duration_seconds",
        "centrifugo_client_command_duration_seconds{method=\"publish\",channel_namespace=\"\",quantile=\"0.99\"}",
    );
    assert!(publish_p99 > 0.0 && publish_p99 < 10.0, "{publish_p99}");
    assert!(
        quantile(
            "centrifugo_client_command_duration_seconds",
            "centrifugo_client_command_duration_seconds{method=\"presence\",channel_namespace=\"\",quantile=\"0.5\"}",
        )
        .is_nan()
    );
    assert!(
        quantile(
            "centrifugo_api_command_duration_seconds",
            "centrifugo_api_command_duration_seconds{protocol=\"http\",method=\"publish\",quantile=\"0.5\"}",
        ) > 0.0
    );
    assert!(
        quantile(
            "centrifugo_proxy_duration_seconds",
            "centrifugo_proxy_duration_seconds{protocol=\"http\",type=\"rpc\",name=\"default\",quantile=\"0.999\"}",
        ) > 0.0
    );
    assert!(
        quantile(
            "centrifugo_node_survey_duration_seconds",
            "centrifugo_node_survey_duration_seconds{op=\"channels\",quantile=\"0.5\"}",
        ) > 0.0
    );

    // `prometheus.instrument_http_handlers`: requests by matched route, method, status.
    let requests = &families["centrifugo_node_incoming_http_requests_total"].1;
    assert!(
        total(
            "centrifugo_node_incoming_http_requests_total",
            "{path=\"/api/publish\",method=\"POST\",status=\"200\"}"
        ) >= 3.0,
        "{requests:?}"
    );
    assert!(
        total(
            "centrifugo_node_incoming_http_requests_total",
            "{path=\"/connection/websocket\",method=\"GET\""
        ) >= 1.0,
        "{requests:?}"
    );

    // `prometheus.recovered_publications_histogram`: the recovery above brought two.
    let recovered_pubs = &families["centrifugo_client_recovered_publications"];
    assert_eq!(recovered_pubs.0, "histogram");
    let bucket = |le: &str| {
        total(
            "centrifugo_client_recovered_publications",
            &format!("_bucket{{channel_namespace=\"\",le=\"{le}\"}}"),
        )
    };
    assert_eq!(bucket("1"), 0.0, "{recovered_pubs:?}");
    assert_eq!(bucket("2"), 1.0, "{recovered_pubs:?}");
    assert_eq!(
        total(
            "centrifugo_client_recovered_publications",
            "_sum{channel_namespace=\"\"}"
        ),
        2.0
    );
    let recovered_buckets: Vec<&str> = recovered_pubs
        .1
        .iter()
        .filter_map(|(s, _)| s.split("le=\"").nth(1)?.split('"').next())
        .collect();
    assert_eq!(
        recovered_buckets,
        [
            "0", "1", "2", "3", "5", "10", "20", "50", "100", "250", "500", "1000", "2000", "5000",
            "10000", "+Inf"
        ]
    );

    // `node_client_connection_limit` counts the refused connection, and only it.
    assert_eq!(
        families["centrifugo_node_client_connection_limit"],
        (
            "counter".to_owned(),
            vec![("centrifugo_node_client_connection_limit".to_owned(), 1.0)]
        )
    );

    // Without a Redis broker there are no Redis PUB/SUB errors to declare.
    assert!(!families.contains_key("centrifugo_broker_redis_pub_sub_errors"));

    // Redis PUB/SUB drops: registered as upstream registers them, zero (Gyre's reader
    // has no buffer that drops; see the metric's comment in the library).
    assert_eq!(
        families["centrifugo_broker_redis_pub_sub_dropped_messages"]
            .1
            .len(),
        2
    );
}

/// With the Redis engine: a message on a subscribed PUB/SUB channel that does not decode
/// counts in `broker_redis_pub_sub_errors` (`handle_client_message`), and the buffered
/// messages gauge is declared (without samples: Gyre's reader has no hand-off buffer).
#[tokio::test]
async fn redis_pub_sub_errors_count_undecodable_messages() {
    use support::cluster::{RedisCleanup, unique_prefix};
    let prefix = unique_prefix("metrics");
    let _cleanup = RedisCleanup {
        port: 6379,
        prefix: prefix.clone(),
    };
    let server = Server::start(json!({
        "engine": {"type": "redis", "redis": {
            "address": ["redis://127.0.0.1:6379"], "prefix": prefix}},
        "channel": {"without_namespace": {
            "allow_subscribe_for_anonymous": true, "allow_subscribe_for_client": true}},
        "client": {"allow_anonymous_connect_without_token": true},
        "prometheus": {"enabled": true}
    }));
    let http = reqwest::Client::new();
    let scrape = || async {
        let text = http
            .get(format!("{}/metrics", server.http_url()))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        parse(&text)
    };
    let before = scrape().await;
    assert_eq!(
        before["centrifugo_broker_redis_pub_sub_errors"],
        ("counter".to_owned(), vec![])
    );
    assert_eq!(
        before["centrifugo_broker_redis_pub_sub_buffered_messages"],
        ("gauge".to_owned(), vec![])
    );

    let (mut client, reply) = WsClient::connect(&server.ws_url(), json!({})).await;
    reply.ok();
    client
        .call("subscribe", json!({"channel": "garbled"}))
        .await
        .ok();
    // Not a protobuf publication (nor a join/leave header): the reader drops it.
    let receivers = gyre_testkit::redis_server::redis_cli(
        6379,
        &[
            "PUBLISH",
            &format!("{prefix}.client.garbled"),
            "not protobuf",
        ],
    );
    assert_eq!(receivers.as_deref(), Some("1"));

    let series =
        "centrifugo_broker_redis_pub_sub_errors{broker_name=\"\",error=\"handle_client_message\"}";
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let after = scrape().await;
        let samples = &after["centrifugo_broker_redis_pub_sub_errors"].1;
        if samples.iter().any(|(s, v)| s == series && *v == 1.0) {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{samples:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
