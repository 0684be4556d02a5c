//! The unidirectional gRPC transport (`uni_grpc`) of the real binary, with a tonic client
//! generated from the same proto file: connect push, a publication on a server-side
//! subscription, the `disconnect` push and the end of the stream, refusals, bad input,
//! and TLS.

mod support;

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::cluster::{API_KEY, api};
use support::policy::{SECRET, connect_token};
use support::{Server, TIMEOUT};
use tonic::transport::{Certificate, Channel, ClientTlsConfig};

#[allow(missing_docs, unreachable_pub, clippy::all, reason = "generated code")]
mod pb {
    include!("unigrpc_support/centrifugal.centrifugo.unistream.rs");
}

use pb::centrifugo_uni_stream_client::CentrifugoUniStreamClient;

const MAX_MESSAGE: usize = 4096;

struct Setup {
    server: Server,
    port: u16,
}

impl Setup {
    /// Starts `gyre` with `uni_grpc` (settings merged over the test's) on a free port.
    fn start(uni_grpc: Value) -> Setup {
        for _ in 0..5 {
            let port = gyre_testkit::free_port();
            let mut section = json!({
                "enabled": true,
                "address": "127.0.0.1",
                "port": port,
                "max_receive_message_size": MAX_MESSAGE,
            });
            gyre_testkit::merge_config(&mut section, uni_grpc.clone());
            let server = Server::start(json!({
                "log": {"level": "info"},
                "http_api": {"key": API_KEY},
                "client": {"token": {"hmac_secret_key": SECRET}},
                "uni_grpc": section,
                "channel": {"namespaces": [
                    {"name": "rec", "history_size": 10, "history_ttl": "300s", "force_recovery": true}
                ]}
            }));
            if server.port() == port {
                continue;
            }
            let deadline = Instant::now() + TIMEOUT;
            while Instant::now() < deadline {
                let log = server.logs();
                if log.contains("serving uni_grpc connections") {
                    assert!(log.contains(&format!("127.0.0.1:{port}")), "{log}");
                    return Setup { server, port };
                }
                if log.contains("in use") {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        panic!("uni_grpc did not start");
    }

    async fn client(&self, tls: Option<ClientTlsConfig>) -> CentrifugoUniStreamClient<Channel> {
        let scheme = if tls.is_some() { "https" } else { "http" };
        let mut endpoint = Channel::from_shared(format!("{scheme}://127.0.0.1:{}", self.port))
            .unwrap()
            .timeout(TIMEOUT);
        if let Some(tls) = tls {
            endpoint = endpoint.tls_config(tls).unwrap();
        }
        CentrifugoUniStreamClient::new(endpoint.connect().await.unwrap())
    }
}

type Pushes = tonic::Streaming<pb::Push>;

async fn consume(
    client: &mut CentrifugoUniStreamClient<Channel>,
    request: pb::ConnectRequest,
) -> Pushes {
    client.consume(request).await.unwrap().into_inner()
}

/// The next push; `None` when the stream ended with status OK.
async fn next(pushes: &mut Pushes) -> Option<pb::Push> {
    tokio::time::timeout(TIMEOUT, pushes.message())
        .await
        .expect("no push in time")
        .expect("stream failed")
}

fn token(user: &str, channels: &[&str]) -> pb::ConnectRequest {
    pb::ConnectRequest {
        token: connect_token(user, json!({"channels": channels})),
        ..Default::default()
    }
}

#[tokio::test]
async fn publications_then_disconnect_push_then_end() {
    let setup = Setup::start(json!({}));
    let mut client = setup.client(None).await;
    let mut pushes = consume(&mut client, token("ann", &["rec:a"])).await;

    let connect = next(&mut pushes)
        .await
        .unwrap()
        .connect
        .expect("connect push");
    assert!(!connect.client.is_empty());
    assert_eq!((connect.ping, connect.pong), (0, false));
    assert!(connect.subs["rec:a"].recoverable);

    api(
        &setup.server,
        "publish",
        json!({"channel": "rec:a", "data": {"n": 1}}),
    )
    .await;
    let push = next(&mut pushes).await.unwrap();
    assert_eq!(push.channel, "rec:a");
    let publication = push.r#pub.expect("publication");
    assert_eq!(&publication.data[..], br#"{"n":1}"#);
    assert_eq!(publication.offset, 1);

    api(
        &setup.server,
        "disconnect",
        json!({"user": "ann", "disconnect": {"code": 4001, "reason": "bye"}}),
    )
    .await;
    let d = next(&mut pushes)
        .await
        .unwrap()
        .disconnect
        .expect("disconnect push");
    assert_eq!((d.code, d.reason.as_str()), (4001, "bye"));
    assert!(next(&mut pushes).await.is_none());

    // Recovery from the connect request's `subs` position.
    api(
        &setup.server,
        "publish",
        json!({"channel": "rec:a", "data": {"n": 2}}),
    )
    .await;
    let mut request = token("ann", &["rec:a"]);
    request.subs.insert(
        "rec:a".into(),
        pb::SubscribeRequest {
            recover: true,
            epoch: connect.subs["rec:a"].epoch.clone(),
            offset: 1,
        },
    );
    let mut pushes = consume(&mut client, request).await;
    let connect = next(&mut pushes).await.unwrap().connect.unwrap();
    let sub = &connect.subs["rec:a"];
    assert!(sub.recovered, "{sub:?}");
    assert_eq!(sub.publications.len(), 1);
    assert_eq!(&sub.publications[0].data[..], br#"{"n":2}"#);
}

#[tokio::test]
async fn refusals_and_bad_input() {
    let setup = Setup::start(json!({}));
    let mut client = setup.client(None).await;

    let bad = pb::ConnectRequest {
        token: "nope".into(),
        ..Default::default()
    };
    let mut pushes = consume(&mut client, bad).await;
    let d = next(&mut pushes).await.unwrap().disconnect.unwrap();
    assert_eq!((d.code, d.reason.as_str()), (3500, "invalid token"));
    assert!(next(&mut pushes).await.is_none());

    let big = pb::ConnectRequest {
        token: "x".repeat(2 * MAX_MESSAGE),
        ..Default::default()
    };
    let status = client.consume(big).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::OutOfRange, "{status:?}");

    // Bytes that are no ConnectRequest, sent through a codec that passes them as they are.
    let mut grpc = tonic::client::Grpc::new(
        Channel::from_shared(format!("http://127.0.0.1:{}", setup.port))
            .unwrap()
            .connect()
            .await
            .unwrap(),
    );
    grpc.ready().await.unwrap();
    let path = "/centrifugal.centrifugo.unistream.CentrifugoUniStream/Consume"
        .parse()
        .unwrap();
    let garbage = pb::Message {
        // Field 1 of Message is bytes; as a ConnectRequest it is a string: not UTF-8.
        data: bytes::Bytes::from_static(b"\xff\xfe"),
    };
    let answer = grpc
        .server_streaming(
            tonic::Request::new(garbage),
            path,
            tonic_prost::ProstCodec::<pb::Message, pb::Push>::default(),
        )
        .await;
    let status = answer.unwrap_err();
    assert_eq!(status.code(), tonic::Code::Internal, "{status:?}");

    // Still serving.
    let mut pushes = consume(&mut client, token("bob", &[])).await;
    assert!(next(&mut pushes).await.unwrap().connect.is_some());
    let log = setup.server.logs();
    assert!(!log.contains("panicked"), "{log}");
}

#[tokio::test]
async fn serves_over_tls() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/tls/grpc");
    let setup = Setup::start(json!({"tls": {
        "enabled": true,
        "cert_pem": format!("{dir}/cert.pem"),
        "key_pem": format!("{dir}/key.pem"),
    }}));
    let log = setup.server.logs();
    assert!(
        log.contains("tls=true") || log.contains("\"tls\":true"),
        "{log}"
    );
    let ca = std::fs::read(format!("{dir}/ca.pem")).unwrap();
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(ca))
        .domain_name("localhost");
    let mut client = setup.client(Some(tls)).await;
    let mut pushes = consume(&mut client, token("cy", &[])).await;
    assert!(next(&mut pushes).await.unwrap().connect.is_some());
}
