//! The gRPC server API against the real binary, with a client generated from the same
//! proto file: every method answers as `/api/<method>` does on the same server.

mod api_support;

use std::time::{Duration, Instant};

use api_support::Server;
use serde::Serialize;
use serde_json::{Value, json};
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Certificate, Channel, ClientTlsConfig};

#[allow(missing_docs, unreachable_pub, clippy::all, reason = "generated code")]
mod pb {
    include!("grpc_support/centrifugal.centrifugo.api.rs");
}

use pb::centrifugo_api_client::CentrifugoApiClient;

const GRPC_KEY: &str = "grpc-key";

/// Payload bytes as the JSON value they hold (the HTTP API writes them so).
fn json_bytes<S: serde::Serializer>(bytes: &bytes::Bytes, s: S) -> Result<S::Ok, S::Error> {
    if bytes.is_empty() {
        return s.serialize_none();
    }
    match serde_json::from_slice::<Value>(bytes) {
        Ok(value) => value.serialize(s),
        Err(_) => s.serialize_str(&String::from_utf8_lossy(bytes)),
    }
}

/// Sends `authorization: apikey <key>` when a key is given.
#[derive(Clone)]
struct Key(Option<&'static str>);

impl Interceptor for Key {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(key) = self.0 {
            let value = format!("apikey {key}").parse().unwrap();
            request.metadata_mut().insert("authorization", value);
        }
        Ok(request)
    }
}

type Client = CentrifugoApiClient<InterceptedService<Channel, Key>>;

struct Setup {
    server: Server,
    port: u16,
}

impl Setup {
    /// Starts `gyre` with the gRPC API on a free port. The main listener's port is picked
    /// after that one, and may be the same: then it starts again on other ports.
    fn start() -> Setup {
        Setup::start_with(json!({}))
    }

    /// [`Setup::start`] with `grpc_api` settings merged over the test's.
    fn start_with(grpc_api: Value) -> Setup {
        for _ in 0..5 {
            let port = gyre_testkit::free_port();
            let mut grpc =
                json!({"enabled": true, "address": "127.0.0.1", "port": port, "key": GRPC_KEY});
            gyre_testkit::merge_config(&mut grpc, grpc_api.clone());
            let server = Server::start(json!({
                "grpc_api": grpc,
                "log": {"level": "info"},
                "channel": {
                    "without_namespace": {"presence": true},
                    "namespaces": [
                        {"name": "hist", "history_size": 10, "history_ttl": "300s"},
                        {"name": "plain"}
                    ]
                }
            }));
            if server.addr.port() == port {
                continue;
            }
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                let log = std::fs::read_to_string(&server.log).unwrap_or_default();
                if log.contains("serving the gRPC server API") {
                    assert!(log.contains(&format!("127.0.0.1:{port}")), "{log}");
                    return Setup { server, port };
                }
                if log.contains("in use") {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        panic!("the gRPC API did not start");
    }

    async fn client(&self, key: Option<&'static str>) -> Client {
        self.connect(key, None).await
    }

    /// A client over `tls` when given (then `https://`).
    async fn connect(&self, key: Option<&'static str>, tls: Option<ClientTlsConfig>) -> Client {
        let scheme = if tls.is_some() { "https" } else { "http" };
        let url = format!("{scheme}://127.0.0.1:{}", self.port);
        let mut endpoint = Channel::from_shared(url).unwrap();
        if let Some(tls) = tls {
            endpoint = endpoint.tls_config(tls).unwrap();
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match endpoint.connect().await {
                Ok(channel) => return CentrifugoApiClient::with_interceptor(channel, Key(key)),
                Err(e) if Instant::now() > deadline => panic!(
                    "gRPC API not reachable: {e:?}\n{}",
                    std::fs::read_to_string(&self.server.log).unwrap_or_default()
                ),
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    }
}

/// A JSON answer without what protobuf cannot tell from absent (zero numbers, empty
/// strings, lists and tag maps, nulls) and without node uptimes, which tick.
fn normalize(value: Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .filter(|(k, v)| k != "uptime" && !(k == "tags" && v == &json!({})))
                .map(|(k, v)| (k, normalize(v)))
                .filter(|(_, v)| {
                    !matches!(v, Value::Null | Value::Bool(false))
                        && v != &json!(0)
                        && v != &json!("")
                        && v != &json!([])
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(normalize).collect()),
        other => other,
    }
}

fn grpc_json<T: Serialize>(response: Result<tonic::Response<T>, tonic::Status>) -> Value {
    let response = response.expect("gRPC call succeeds");
    normalize(serde_json::to_value(response.into_inner()).unwrap())
}

/// Calls `/api/<method>` with `body` and the gRPC method with `request`, and checks that
/// the answers agree.
macro_rules! same {
    ($setup:expr, $client:expr, $method:ident, $body:expr, $request:expr) => {{
        let http = normalize($setup.server.api(stringify!($method), $body).await);
        let grpc = grpc_json($client.$method($request).await);
        assert_eq!(grpc, http, "{}", stringify!($method));
        http
    }};
}

fn data(value: Value) -> bytes::Bytes {
    bytes::Bytes::from(value.to_string())
}

#[tokio::test]
async fn every_method_answers_as_the_http_api() {
    let setup = Setup::start();
    let mut client = setup.client(Some(GRPC_KEY)).await;
    let mut ws = setup.server.connect().await;
    let reply = ws.call(json!({"subscribe": {"channel": "room"}})).await;
    assert!(reply.get("error").is_none(), "{reply}");

    // Publish into history: the two calls are the first and second publication.
    let http = setup
        .server
        .result("publish", json!({"channel": "hist:a", "data": {"n": 1}}))
        .await;
    let grpc = client
        .publish(pb::PublishRequest {
            channel: "hist:a".into(),
            data: data(json!({"n": 2})),
            tags: [("k".to_owned(), "v".to_owned())].into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(grpc.error.is_none(), "{grpc:?}");
    let grpc = grpc.result.unwrap();
    assert_eq!(http["offset"], 1);
    assert_eq!(grpc.offset, 2);
    assert_eq!(http["epoch"], grpc.epoch);

    same!(
        setup,
        client,
        publish,
        json!({"channel": "plain:a", "data": {"x": 1}}),
        pb::PublishRequest {
            channel: "plain:a".into(),
            data: data(json!({"x": 1})),
            ..Default::default()
        }
    );
    let unknown = same!(
        setup,
        client,
        publish,
        json!({"channel": "nope:a", "data": {}}),
        pb::PublishRequest {
            channel: "nope:a".into(),
            data: data(json!({})),
            ..Default::default()
        }
    );
    assert_eq!(unknown["error"]["code"], 102);
    let broadcast = same!(
        setup,
        client,
        broadcast,
        json!({"channels": ["plain:a", "nope:b"], "data": {"b": 1}}),
        pb::BroadcastRequest {
            channels: vec!["plain:a".into(), "nope:b".into()],
            data: data(json!({"b": 1})),
            ..Default::default()
        }
    );
    assert_eq!(
        broadcast["result"]["responses"].as_array().unwrap().len(),
        2
    );
    same!(
        setup,
        client,
        subscribe,
        json!({"channel": "plain:s", "user": "nobody"}),
        pb::SubscribeRequest {
            channel: "plain:s".into(),
            user: "nobody".into(),
            ..Default::default()
        }
    );
    same!(
        setup,
        client,
        subscribe,
        json!({"user": "nobody"}),
        pb::SubscribeRequest {
            user: "nobody".into(),
            ..Default::default()
        }
    );
    same!(
        setup,
        client,
        unsubscribe,
        json!({"channel": "plain:s", "user": "nobody"}),
        pb::UnsubscribeRequest {
            channel: "plain:s".into(),
            user: "nobody".into(),
            ..Default::default()
        }
    );
    same!(
        setup,
        client,
        disconnect,
        json!({"user": "nobody", "disconnect": {"code": 4000, "reason": "bye"}}),
        pb::DisconnectRequest {
            user: "nobody".into(),
            disconnect: Some(pb::Disconnect {
                code: 4000,
                reason: "bye".into()
            }),
            ..Default::default()
        }
    );
    let history = same!(
        setup,
        client,
        history,
        json!({"channel": "hist:a", "limit": -1}),
        pb::HistoryRequest {
            channel: "hist:a".into(),
            limit: -1,
            ..Default::default()
        }
    );
    assert_eq!(
        history["result"]["publications"][1]["data"],
        json!({"n": 2})
    );
    assert_eq!(
        history["result"]["publications"][1]["tags"],
        json!({"k": "v"})
    );
    same!(
        setup,
        client,
        history,
        json!({"channel": "hist:a", "limit": 5, "since": {"offset": 1, "epoch": http["epoch"]}}),
        pb::HistoryRequest {
            channel: "hist:a".into(),
            limit: 5,
            since: Some(pb::StreamPosition {
                offset: 1,
                epoch: grpc.epoch.clone()
            }),
            ..Default::default()
        }
    );
    same!(
        setup,
        client,
        history,
        json!({"channel": "plain:a"}),
        pb::HistoryRequest {
            channel: "plain:a".into(),
            ..Default::default()
        }
    );
    same!(
        setup,
        client,
        history_remove,
        json!({"channel": "nope:x"}),
        pb::HistoryRemoveRequest {
            channel: "nope:x".into()
        }
    );
    let presence = same!(
        setup,
        client,
        presence,
        json!({"channel": "room"}),
        pb::PresenceRequest {
            channel: "room".into()
        }
    );
    assert_eq!(presence["result"]["presence"].as_object().unwrap().len(), 1);
    same!(
        setup,
        client,
        presence_stats,
        json!({"channel": "room"}),
        pb::PresenceStatsRequest {
            channel: "room".into()
        }
    );
    same!(
        setup,
        client,
        presence,
        json!({"channel": "plain:room"}),
        pb::PresenceRequest {
            channel: "plain:room".into()
        }
    );
    let info = same!(setup, client, info, json!({}), pb::InfoRequest {});
    assert_eq!(info["result"]["nodes"][0]["num_clients"], 1);
    same!(
        setup,
        client,
        rpc,
        json!({"method": "nothing", "params": {"a": 1}}),
        pb::RpcRequest {
            method: "nothing".into(),
            params: data(json!({"a": 1}))
        }
    );
    same!(
        setup,
        client,
        refresh,
        json!({"user": "nobody", "expired": true}),
        pb::RefreshRequest {
            user: "nobody".into(),
            expired: true,
            ..Default::default()
        }
    );
    let channels = same!(
        setup,
        client,
        channels,
        json!({}),
        pb::ChannelsRequest::default()
    );
    assert_eq!(channels["result"]["channels"]["room"]["num_clients"], 1);
    same!(
        setup,
        client,
        channels,
        json!({"pattern": "ro*"}),
        pb::ChannelsRequest {
            pattern: "ro*".into()
        }
    );
}

#[tokio::test]
async fn batch_answers_as_the_http_batch() {
    let setup = Setup::start();
    let mut client = setup.client(Some(GRPC_KEY)).await;
    for parallel in [false, true] {
        let body = json!({"parallel": parallel, "commands": [
            {"publish": {"channel": "plain:a", "data": {"x": 1}}},
            {"presence_stats": {"channel": "room"}},
            {"history": {"channel": "nope:x"}},
            {"info": {}},
            {},
            {"channels": {"pattern": "*"}},
        ]});
        let (status, http) = setup.server.post("/api/batch", &[], &body).await;
        assert_eq!(status, 200, "{http}");
        let command = |c: pb::Command| c;
        let request = pb::BatchRequest {
            parallel,
            commands: vec![
                command(pb::Command {
                    publish: Some(pb::PublishRequest {
                        channel: "plain:a".into(),
                        data: data(json!({"x": 1})),
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
                pb::Command {
                    presence_stats: Some(pb::PresenceStatsRequest {
                        channel: "room".into(),
                    }),
                    ..Default::default()
                },
                pb::Command {
                    history: Some(pb::HistoryRequest {
                        channel: "nope:x".into(),
                        ..Default::default()
                    }),
                    ..Default::default()
                },
                pb::Command {
                    info: Some(pb::InfoRequest {}),
                    ..Default::default()
                },
                pb::Command::default(),
                pb::Command {
                    channels: Some(pb::ChannelsRequest {
                        pattern: "*".into(),
                    }),
                    ..Default::default()
                },
            ],
        };
        let grpc = grpc_json(client.batch(request).await);
        assert_eq!(grpc, normalize(http.clone()), "parallel {parallel}");
        let replies = http["replies"].as_array().unwrap();
        assert_eq!(replies.len(), 6);
        assert_eq!(replies[2]["error"]["code"], 102);
        assert_eq!(replies[4]["error"]["code"], 104);
        assert!(replies[5].get("channels").is_some(), "{http}");
    }
}

#[tokio::test]
async fn a_wrong_or_missing_key_is_unauthenticated() {
    let setup = Setup::start();
    for key in [None, Some("wrong")] {
        let mut client = setup.client(key).await;
        let status = client.info(pb::InfoRequest {}).await.expect_err("refused");
        assert_eq!(status.code(), tonic::Code::Unauthenticated, "{key:?}");
        let status = client
            .batch(pb::BatchRequest::default())
            .await
            .expect_err("refused");
        assert_eq!(status.code(), tonic::Code::Unauthenticated, "{key:?}");
    }
    let mut client = setup.client(Some(GRPC_KEY)).await;
    assert!(client.info(pb::InfoRequest {}).await.is_ok());
}

#[tokio::test]
async fn a_grpc_publication_reaches_a_websocket_subscriber() {
    let setup = Setup::start();
    let mut client = setup.client(Some(GRPC_KEY)).await;
    let mut ws = setup.server.connect().await;
    let reply = ws
        .call(json!({"subscribe": {"channel": "hist:live"}}))
        .await;
    assert!(reply.get("error").is_none(), "{reply}");
    let answer = client
        .publish(pb::PublishRequest {
            channel: "hist:live".into(),
            data: data(json!({"hello": "grpc"})),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(answer.error.is_none(), "{answer:?}");
    assert_eq!(answer.result.unwrap().offset, 1);
    let push = tokio::time::timeout(Duration::from_secs(5), ws.next_push())
        .await
        .expect("publication pushed");
    assert_eq!(push["channel"], "hist:live", "{push}");
    assert_eq!(push["pub"]["data"], json!({"hello": "grpc"}), "{push}");
    assert_eq!(push["pub"]["offset"], 1, "{push}");
}

#[tokio::test]
async fn serves_over_tls() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/tls/grpc");
    let setup = Setup::start_with(json!({"tls": {
        "enabled": true,
        "cert_pem": format!("{dir}/cert.pem"),
        "key_pem": format!("{dir}/key.pem"),
    }}));
    let log = std::fs::read_to_string(&setup.server.log).unwrap();
    assert!(
        log.contains("tls=true") || log.contains("\"tls\":true"),
        "{log}"
    );
    assert!(!log.contains("grpc_api.tls"), "{log}");
    let ca = std::fs::read(format!("{dir}/ca.pem")).unwrap();
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(ca))
        .domain_name("localhost");
    let mut client = setup.connect(Some(GRPC_KEY), Some(tls)).await;
    let info = client.info(pb::InfoRequest {}).await.unwrap().into_inner();
    assert!(info.error.is_none(), "{info:?}");
    assert_eq!(info.result.unwrap().nodes.len(), 1);
    // Plain text on the TLS port gets nowhere.
    let plain = Channel::from_shared(format!("http://127.0.0.1:{}", setup.port))
        .unwrap()
        .connect()
        .await;
    if let Ok(channel) = plain {
        let mut client = CentrifugoApiClient::new(channel);
        assert!(client.info(pb::InfoRequest {}).await.is_err());
    }
}

#[tokio::test]
async fn reflection_lists_the_service_when_enabled() {
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
    use tonic_reflection::pb::v1::{ServerReflectionRequest, ServerReflectionResponse};

    async fn list(setup: &Setup) -> Result<ServerReflectionResponse, tonic::Status> {
        let channel = Channel::from_shared(format!("http://127.0.0.1:{}", setup.port))
            .unwrap()
            .connect()
            .await
            .unwrap();
        let request = ServerReflectionRequest {
            host: String::new(),
            message_request: Some(MessageRequest::ListServices(String::new())),
        };
        let mut client = ServerReflectionClient::new(channel);
        let mut answers = client
            .server_reflection_info(futures_util::stream::iter([request]))
            .await?
            .into_inner();
        Ok(answers.message().await?.expect("one answer"))
    }

    let setup = Setup::start_with(json!({"reflection": true}));
    // Connects only once the listener is up.
    setup.client(Some(GRPC_KEY)).await;
    let answer = list(&setup).await.unwrap();
    let Some(MessageResponse::ListServicesResponse(services)) = answer.message_response else {
        panic!("{answer:?}");
    };
    let names: Vec<_> = services.service.iter().map(|s| s.name.as_str()).collect();
    assert!(
        names.contains(&"centrifugal.centrifugo.api.CentrifugoApi"),
        "{names:?}"
    );

    let setup = Setup::start();
    setup.client(Some(GRPC_KEY)).await;
    let status = list(&setup).await.expect_err("no reflection");
    assert_eq!(status.code(), tonic::Code::Unimplemented);
}

#[tokio::test]
async fn max_receive_message_size_refuses_larger_requests() {
    let setup = Setup::start_with(json!({"max_receive_message_size": 1000}));
    let mut client = setup.client(Some(GRPC_KEY)).await;
    let publish = |size: usize| pb::PublishRequest {
        channel: "plain:big".into(),
        data: data(json!("x".repeat(size))),
        ..Default::default()
    };
    let small = client.publish(publish(100)).await.unwrap().into_inner();
    assert!(small.error.is_none(), "{small:?}");
    let status = client.publish(publish(2000)).await.expect_err("too large");
    assert!(
        matches!(
            status.code(),
            tonic::Code::OutOfRange | tonic::Code::ResourceExhausted
        ),
        "{status:?}"
    );
}

/// `google.rpc.Status`, what the binary details of a status hold.
#[derive(Clone, PartialEq, prost::Message)]
struct RpcStatus {
    #[prost(int32, tag = "1")]
    code: i32,
    #[prost(string, tag = "2")]
    message: String,
    #[prost(message, repeated, tag = "3")]
    details: Vec<AnyMessage>,
}

/// `google.protobuf.Any`.
#[derive(Clone, PartialEq, prost::Message)]
struct AnyMessage {
    #[prost(string, tag = "1")]
    type_url: String,
    #[prost(bytes = "vec", tag = "2")]
    value: Vec<u8>,
}

fn unknown_channel() -> pb::PublishRequest {
    pb::PublishRequest {
        channel: "nope:a".into(),
        data: data(json!({})),
        ..Default::default()
    }
}

/// The API error carried by a transport-mode status.
fn status_error(status: &tonic::Status) -> pb::Error {
    let details: RpcStatus = prost::Message::decode(status.details()).unwrap();
    assert_eq!(details.code, status.code() as i32);
    assert_eq!(details.details.len(), 1);
    let any = &details.details[0];
    assert_eq!(
        any.type_url,
        "type.googleapis.com/centrifugal.centrifugo.api.Error"
    );
    prost::Message::decode(&any.value[..]).unwrap()
}

#[tokio::test]
async fn transport_error_mode_answers_errors_as_statuses() {
    let setup = Setup::start();
    let mut client = setup.client(Some(GRPC_KEY)).await;
    // By default, and without the metadata, the error is in the reply.
    let reply = client
        .publish(unknown_channel())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(reply.error.unwrap().code, 102);

    let mut request = tonic::Request::new(unknown_channel());
    request
        .metadata_mut()
        .insert("x-centrifugo-error-mode", "transport".parse().unwrap());
    let status = client.publish(request).await.expect_err("a status");
    assert_eq!(status.code(), tonic::Code::NotFound, "{status:?}");
    assert_eq!(status.message(), "unknown channel");
    let error = status_error(&status);
    assert_eq!(
        (error.code, error.message.as_str()),
        (102, "unknown channel")
    );

    // A success is a reply as always.
    let mut request = tonic::Request::new(pb::InfoRequest {});
    request
        .metadata_mut()
        .insert("x-centrifugo-error-mode", "transport".parse().unwrap());
    assert!(client.info(request).await.is_ok());

    // The configured mode needs no metadata; batch replies keep their errors.
    let setup = Setup::start_with(json!({"error_mode": "transport"}));
    let mut client = setup.client(Some(GRPC_KEY)).await;
    let status = client
        .history(pb::HistoryRequest {
            channel: "plain:a".into(),
            ..Default::default()
        })
        .await
        .expect_err("a status");
    assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");
    assert_eq!(status_error(&status).code, 108);
    let batch = client
        .batch(pb::BatchRequest {
            commands: vec![pb::Command {
                publish: Some(unknown_channel()),
                ..Default::default()
            }],
            parallel: false,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(batch.replies[0].error.as_ref().unwrap().code, 102);
}
