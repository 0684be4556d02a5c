//! The running server as an operator sees it: graceful shutdown, metrics, health, the
//! internal port and TLS.

mod support;

use serde_json::json;
use support::{Server, WsClient};

fn open_config() -> serde_json::Value {
    json!({
        "client": {"allow_anonymous_connect_without_token": true},
        "channel": {"without_namespace": {"allow_subscribe_for_anonymous": true, "allow_subscribe_for_client": true}},
        "health": {"enabled": true},
        "prometheus": {"enabled": true},
        "http_api": {"key": "k"}
    })
}

#[tokio::test]
async fn sigterm_tells_clients_to_reconnect_elsewhere() {
    let server = Server::start(open_config());
    let (mut client, reply) = WsClient::connect(&server.ws_url(), json!({})).await;
    reply.ok();
    // SIGTERM, as an orchestrator stops a container.
    let status = std::process::Command::new("kill")
        .args(["-TERM", &server.pid().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let (code, reason) = client.closed().await;
    assert_eq!((code, reason.as_str()), (3001, "shutdown"));
}

#[tokio::test]
async fn metrics_use_centrifugo_names_and_health_answers() {
    let server = Server::start(open_config());
    let (mut client, reply) = WsClient::connect(&server.ws_url(), json!({})).await;
    reply.ok();
    client
        .call("subscribe", json!({"channel": "news"}))
        .await
        .ok();
    let http = reqwest::Client::new();
    let health = http
        .get(format!("{}/health", server.http_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    assert_eq!(health.text().await.unwrap(), "{}");
    let metrics = http
        .get(format!("{}/metrics", server.http_url()))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for line in [
        "centrifugo_node_num_clients 1",
        "centrifugo_node_num_subscriptions 1",
        "centrifugo_client_connections_accepted{transport=\"websocket\",accept_protocol=\"\",client_name=\"unnamed\",client_version=\"unversioned\"} 1",
        "centrifugo_client_command_duration_seconds_count{method=\"subscribe\",channel_namespace=\"\"} 1",
    ] {
        assert!(
            metrics.lines().any(|l| l == line),
            "missing {line}:\n{metrics}"
        );
    }
    assert!(metrics.contains("# TYPE centrifugo_node_messages_sent_count counter"));
}

#[tokio::test]
async fn api_moves_to_the_internal_port_when_one_is_set() {
    let internal = gyre_testkit::free_port();
    let mut config = open_config();
    config["http_server"] =
        json!({"internal_port": internal.to_string(), "internal_address": "127.0.0.1"});
    let server = Server::start(config);
    let http = reqwest::Client::new();
    let publish = |base: String| {
        http.post(format!("{base}/api/publish"))
            .header("X-API-Key", "k")
            .body(r#"{"channel":"news","data":{}}"#)
            .send()
    };
    // Not on the client port…
    let external = publish(server.http_url()).await.unwrap();
    assert_eq!(external.status(), 404);
    // …but on the internal one (it may need a moment to bind).
    let mut answer = None;
    for _ in 0..50 {
        if let Ok(r) = publish(format!("http://127.0.0.1:{internal}")).await {
            answer = Some(r);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let answer = answer.expect("internal port answers");
    assert_eq!(answer.status(), 200);
    assert_eq!(answer.text().await.unwrap(), r#"{"result":{}}"#);
}

#[tokio::test]
async fn tls_from_pem_files() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/tls");
    let mut config = open_config();
    config["http_server"] = json!({"tls": {
        "enabled": true,
        "cert_pem": format!("{dir}/cert.pem"),
        "key_pem": format!("{dir}/key.pem"),
    }});
    let server = Server::start(config);
    let http = reqwest::Client::builder()
        .tls_danger_accept_invalid_certs(true)
        .build()
        .unwrap();
    let health = http
        .get(format!("https://127.0.0.1:{}/health", server.port()))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    // Plain HTTP on a TLS port gets no answer.
    assert!(
        reqwest::get(format!("http://127.0.0.1:{}/health", server.port()))
            .await
            .is_err()
    );
}

/// Every JSON log line of `log` that carries `message`.
fn json_lines(log: &str, message: &str) -> Vec<serde_json::Value> {
    log.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["message"] == message)
        .collect()
}

#[tokio::test]
async fn logs_say_what_starts_where_and_why_clients_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let log_file = dir.path().join("gyre-json.log");
    let mut config = open_config();
    config["client"] = json!({"token": {"hmac_secret_key": "secret"}});
    config["channel"] = json!({"without_namespace": {}});
    config["log"] = json!({"file": log_file.to_str().unwrap()});
    let server = Server::start(config);
    // A connect with a token signed by someone else, and a subscribe without permission.
    let bad = support::hs256("not-the-secret", json!({"sub": "mallory"}));
    let (mut refused, reply) = WsClient::connect(&server.ws_url(), json!({"token": bad})).await;
    assert_eq!(reply.closed(), Some(3500), "a foreign token is refused");
    drop(refused.closed().await);
    let good = support::hs256("secret", json!({"sub": "alice"}));
    let (mut alice, reply) = WsClient::connect(&server.ws_url(), json!({"token": good})).await;
    let alice_id = reply.ok()["client"].as_str().unwrap().to_owned();
    let sub = alice
        .call("subscribe", json!({"channel": "secret-room"}))
        .await;
    assert_eq!(sub.error(), Some(103));

    // The log line of the refusal is written as the reply goes out: wait for it.
    let deadline = std::time::Instant::now() + support::TIMEOUT;
    let log = loop {
        let log = std::fs::read_to_string(&log_file).unwrap_or_default();
        if log.contains("subscribe refused") || std::time::Instant::now() > deadline {
            break log;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    let start = json_lines(&log, "starting Gyre");
    assert_eq!(start.len(), 1, "{log}");
    assert_eq!(start[0]["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(start[0]["level"], "INFO");
    let file = json_lines(&log, "using config file");
    assert!(
        file[0]["path"].as_str().unwrap().ends_with("config.json"),
        "{log}"
    );
    let engines = &json_lines(&log, "engines")[0];
    assert_eq!(
        (&engines["engine"], &engines["broker"]),
        (&json!("memory"), &json!("memory"))
    );
    let urls: Vec<String> = json_lines(&log, "endpoint enabled")
        .iter()
        .map(|v| v["url"].as_str().unwrap().to_owned())
        .collect();
    for path in ["/connection/websocket", "/api", "/health", "/metrics"] {
        let want = format!("{}{path}", server.http_url());
        assert!(urls.contains(&want), "{want} not in {urls:?}");
    }
    let connect = json_lines(&log, "connect refused with disconnect");
    assert_eq!(connect.len(), 1, "{log}");
    assert_eq!(connect[0]["level"], "INFO");
    assert_eq!(connect[0]["code"], 3500);
    assert!(!connect[0]["reason"].as_str().unwrap().is_empty());
    let subscribe = json_lines(&log, "subscribe refused");
    assert_eq!(subscribe[0]["level"], "INFO");
    assert_eq!(subscribe[0]["client"], alice_id.as_str());
    assert_eq!(subscribe[0]["channel"], "secret-room");
}
