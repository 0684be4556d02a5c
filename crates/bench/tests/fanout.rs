//! The fanout scenario in-process against the reference server and the Gyre target
//! server: every delivery is counted exactly once and nothing is lost.

use std::time::Duration;

use gyre_bench::api::ApiTarget;
use gyre_bench::client::{Dialer, Transport};
use gyre_bench::load::{self, LoadConfig, PublishVia};
use gyre_bench::stats::json_line;
use gyre_protocol::Protocol;
use serde_json::Value;

fn config(addr: std::net::SocketAddr, protocol: Protocol, via_api: bool) -> LoadConfig {
    LoadConfig {
        scenario: "fanout",
        url: format!("ws://{addr}/connection/websocket"),
        protocol,
        token: String::new(),
        channel: "bench".into(),
        channels: 1,
        subs: 20,
        pubs: 2,
        msgs: 200,
        size: 128,
        via: if via_api {
            PublishVia::Api(ApiTarget::parse(&format!("http://{addr}/api"), "key").unwrap())
        } else {
            PublishVia::Clients
        },
        rate: None,
        window: 0,
        connect_concurrency: 20,
        drain_timeout: Duration::from_secs(3),
        quiet: true,
        server_pid: Some(std::process::id()),
        transport: Transport::Websocket,
        socket_clock: false,
        per_publication: false,
    }
}

fn assert_complete(report: &load::LoadReport, subs: u64, msgs: u64) {
    let line = json_line(&report.json);
    assert!(line.starts_with(r#"{"scenario":"#), "{line}");
    let v: Value = serde_json::from_str(&line).expect("result line parses");
    assert_eq!(v["expected"], subs * msgs, "{line}");
    assert_eq!(v["received"], subs * msgs, "{line}");
    assert_eq!(v["lost"], 0, "{line}");
    assert_eq!(v["duplicates"], 0, "{line}");
    assert_eq!(v["strays"], 0, "{line}");
    assert_eq!(v["errors"], 0, "{line}");
    assert_eq!(v["published"], msgs, "{line}");
    assert_eq!(v["latency_us"]["count"], subs * msgs, "{line}");
    assert!(v["sub_msgs_per_sec"].as_f64().unwrap() > 0.0);
    assert!(v["server_cpu_secs"].is_number(), "{line}");
    assert_eq!(report.latency.len(), subs * msgs);
    let timeline: u64 = report.timeline.iter().map(|t| t.1).sum();
    assert_eq!(timeline, subs * msgs);
    load::check_complete(report).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fanout_against_reference_counts_every_delivery_once() {
    let addr = gyre_bench::reference::spawn("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    for (protocol, via_api) in [(Protocol::Json, true), (Protocol::Protobuf, false)] {
        let report = load::run(config(addr, protocol, via_api)).await.unwrap();
        assert_complete(&report, 20, 200);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_socket_clock_times_every_delivery_and_says_so() {
    let addr = gyre_bench::reference::spawn("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let mut cfg = config(addr, Protocol::Json, true);
    cfg.socket_clock = true;
    cfg.per_publication = true;
    let report = load::run(cfg).await.unwrap();
    assert_complete(&report, 20, 200);
    let v: Value = serde_json::from_str(&json_line(&report.json)).unwrap();
    assert_eq!(v["clock"], "socket");
    // Every publication has its span, in sequence order, first delivery before last.
    let seqs: Vec<u64> = report.per_publication.iter().map(|s| s.0).collect();
    assert_eq!(seqs, (0..200).collect::<Vec<u64>>());
    for &(seq, sent, first, last) in &report.per_publication {
        assert!(
            sent > 0 && first <= last,
            "publication {seq}: {first} > {last}"
        );
    }
    let csv = load::per_publication_csv(&report.per_publication);
    assert_eq!(csv.lines().count(), 201, "{csv}");
    assert!(csv.starts_with("seq,sent_ms,first_delivery_us,last_delivery_us\n0,"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fanout_against_gyre_counts_every_delivery_once() {
    let (_node, addr) = gyre_bench::gyre_server::spawn(
        "127.0.0.1:0".parse().unwrap(),
        std::time::Duration::ZERO,
        true,
    )
    .await
    .unwrap();
    for (protocol, via_api) in [
        (Protocol::Json, true),
        (Protocol::Protobuf, true),
        (Protocol::Json, false),
    ] {
        let report = load::run(config(addr, protocol, via_api)).await.unwrap();
        assert_complete(&report, 20, 200);
        // Batched frames happen: fewer frames than deliveries is allowed, more is not.
        assert!(report.json["frames"].as_u64().unwrap() <= 20 * 200 + 20 * 2);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fanout_over_http_stream_and_sse_counts_every_delivery_once() {
    let (_node, addr) = gyre_bench::gyre_server::spawn(
        "127.0.0.1:0".parse().unwrap(),
        std::time::Duration::ZERO,
        true,
    )
    .await
    .unwrap();
    for transport in [Transport::HttpStream, Transport::Sse] {
        for via_api in [true, false] {
            let mut cfg = config(addr, Protocol::Json, via_api);
            cfg.transport = transport;
            let report = load::run(cfg).await.unwrap();
            assert_eq!(report.json["transport"], transport.name());
            assert_complete(&report, 20, 200);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streamed_connections_send_later_commands_through_emulation() {
    let (_node, addr) = gyre_bench::gyre_server::spawn(
        "127.0.0.1:0".parse().unwrap(),
        std::time::Duration::ZERO,
        true,
    )
    .await
    .unwrap();
    for transport in [Transport::HttpStream, Transport::Sse] {
        let mut dialer = Dialer::new(&format!("ws://{addr}/connection/websocket"), Protocol::Json)
            .await
            .unwrap();
        dialer.transport = transport;
        let mut conn = dialer.open_subscribed(0, &[]).await.unwrap();
        // The publish goes through POST /emulation; its reply comes back on the stream.
        tokio::time::timeout(
            Duration::from_secs(5),
            conn.publish("emulated", br#"{"x":1}"#.to_vec()),
        )
        .await
        .expect("publish reply in time")
        .unwrap();
        // A refused command comes back as an error on the stream, not as a hang.
        let refused = tokio::time::timeout(
            Duration::from_secs(5),
            conn.publish("", br#"{"x":1}"#.to_vec()),
        )
        .await
        .expect("publish reply in time");
        assert!(refused.is_err(), "{transport:?}");
        conn.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_channels_delivers_each_message_to_its_channel_only() {
    let addr = gyre_bench::reference::spawn("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let mut cfg = config(addr, Protocol::Json, true);
    cfg.scenario = "many-channels";
    cfg.channels = 7;
    cfg.subs = 14;
    cfg.msgs = 100;
    let report = load::run(cfg).await.unwrap();
    // Each message reaches the 2 subscribers of its channel.
    assert_eq!(report.json["expected"], 200);
    assert_eq!(report.json["received"], 200);
    assert_eq!(report.json["strays"], 0);
    load::check_complete(&report).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_server_reports_loss_instead_of_hanging() {
    // Subscribers connect to the reference server, but publishing goes to an API
    // endpoint that answers 404: the run must end and report the publish error.
    let addr = gyre_bench::reference::spawn("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let mut cfg = config(addr, Protocol::Json, true);
    cfg.via = PublishVia::Api(ApiTarget::parse(&format!("http://{addr}/nope"), "").unwrap());
    cfg.subs = 3;
    cfg.drain_timeout = Duration::from_millis(300);
    let report = tokio::time::timeout(Duration::from_secs(10), load::run(cfg))
        .await
        .expect("run ends")
        .unwrap();
    assert_eq!(report.json["published"], 0);
    assert_eq!(report.json["errors"], 2);
    assert!(load::check_complete(&report).is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_and_connect_scenarios_run() {
    let (_node, addr) = gyre_bench::gyre_server::spawn(
        "127.0.0.1:0".parse().unwrap(),
        std::time::Duration::ZERO,
        true,
    )
    .await
    .unwrap();
    let url = format!("ws://{addr}/connection/websocket");
    let (json, _) = gyre_bench::conns::idle(gyre_bench::conns::IdleConfig {
        url: url.clone(),
        protocol: Protocol::Json,
        token: String::new(),
        conns: 50,
        channel: "idle".into(),
        shared_channel: false,
        pid: Some(std::process::id()),
        hold: Duration::from_millis(100),
        source_ips: gyre_bench::conns::parse_source_ips("127.0.0.1,127.0.0.2").unwrap(),
        concurrency: 10,
        quiet: true,
    })
    .await
    .unwrap();
    assert_eq!(json["connected"], 50, "{json}");
    assert_eq!(json["failed"], 0, "{json}");
    assert!(json["bytes_per_conn"].is_number(), "{json}");

    let (json, _) = gyre_bench::conns::connect(gyre_bench::conns::ConnectConfig {
        url,
        protocol: Protocol::Protobuf,
        token: String::new(),
        conns: 40,
        concurrency: 8,
        channel: Some("c".into()),
        server_pid: Some(std::process::id()),
        source_ips: Vec::new(),
        quiet: true,
    })
    .await
    .unwrap();
    assert_eq!(json["connected"], 40, "{json}");
    assert!(json["server_cpu_us_per_connect"].is_number(), "{json}");
    assert_eq!(json["failures"], 0, "{json}");
    assert_eq!(json["latency_us"]["count"], 40, "{json}");
}
