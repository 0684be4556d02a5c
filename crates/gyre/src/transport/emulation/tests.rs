//! The emulation endpoints driven as services, without sockets: requests go in as
//! `http::Request`s, the streamed bodies are read frame by frame and decoded with the
//! real codec. Then properties of the sans-IO pieces.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use gyre_protocol::{Protocol, proto};
use http::{Method, StatusCode};
use http_body_util::{BodyExt, Full};
use proptest::prelude::*;

use super::request::{Framing, percent_decode, query_param};
use super::{
    EmulationConfig, EmulationHandler, HttpStreamHandler, ResponseBody, SseHandler, StreamConfig,
};
use crate::{
    Config, ConnectReply, Credentials, Disconnect, Node, SubscribeOptions, SubscribeReply,
};

const WAIT: Duration = Duration::from_secs(5);

async fn node() -> Node {
    node_with(Config::default()).await
}

async fn node_with(config: Config) -> Node {
    let node = Node::builder().config(config).build();
    node.on_connecting(|event| async move { Ok(ConnectReply::new(Credentials::new(event.token))) });
    node.on_connect(|client| {
        client.on_subscribe(|_| async { Ok(SubscribeReply::new(SubscribeOptions::new())) });
    });
    node.run().await.unwrap();
    node
}

fn request(method: Method, uri: &str, body: impl Into<Bytes>) -> http::Request<Full<Bytes>> {
    http::Request::builder()
        .method(method)
        .uri(uri)
        .body(Full::new(body.into()))
        .unwrap()
}

fn protobuf(mut r: http::Request<Full<Bytes>>) -> http::Request<Full<Bytes>> {
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/octet-stream"),
    );
    r
}

/// The next chunk of a streamed body; `None` at its end. Fails after [`WAIT`].
async fn chunk(body: &mut ResponseBody) -> Option<Bytes> {
    let frame = tokio::time::timeout(WAIT, body.frame())
        .await
        .expect("a chunk in time")?;
    Some(frame.unwrap().into_data().unwrap())
}

/// Reads chunks until `n` replies decoded from them (a chunk holds whole messages).
async fn replies(body: &mut ResponseBody, protocol: Protocol, n: usize) -> Vec<proto::Reply> {
    let mut out = Vec::new();
    while out.len() < n {
        let c = chunk(body).await.expect("stream still open");
        if protocol == Protocol::Json {
            assert!(c.ends_with(b"\n"), "{c:?}");
        }
        for r in gyre_protocol::decode_replies(protocol, c) {
            out.push(r.unwrap());
        }
    }
    out
}

fn connect_json() -> Bytes {
    Bytes::from_static(br#"{"id":1,"connect":{"token":"42"}}"#)
}

fn encode_commands(protocol: Protocol, commands: &[proto::Command]) -> Bytes {
    let mut out = BytesMut::new();
    for (i, c) in commands.iter().enumerate() {
        if protocol == Protocol::Json && i > 0 {
            out.extend_from_slice(b"\n");
        }
        gyre_protocol::encode_command(protocol, c, &mut out).unwrap();
    }
    out.freeze()
}

fn emulation_body(protocol: Protocol, node: &str, session: &str, data: Bytes) -> Bytes {
    let mut out = BytesMut::new();
    let req = proto::EmulationRequest {
        node: node.into(),
        session: session.into(),
        data,
    };
    gyre_protocol::encode_emulation_request(protocol, &req, &mut out).unwrap();
    out.freeze()
}

fn subscribe(id: u32, channel: &str) -> proto::Command {
    proto::Command {
        id,
        subscribe: Some(proto::SubscribeRequest {
            channel: channel.into(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Opens an HTTP stream; returns its body and the connect result.
async fn open_stream(node: &Node, protocol: Protocol) -> (ResponseBody, proto::ConnectResult) {
    let handler = HttpStreamHandler::new(node.clone(), StreamConfig::default());
    let connect = proto::Command {
        id: 1,
        connect: Some(proto::ConnectRequest {
            token: "42".into(),
            ..Default::default()
        }),
        ..Default::default()
    };
    let mut r = request(
        Method::POST,
        "/connection/http_stream",
        encode_commands(protocol, &[connect]),
    );
    if protocol == Protocol::Protobuf {
        r = protobuf(r);
    }
    let response = handler.handle(r).await;
    assert_eq!(response.status(), StatusCode::OK);
    let mut body = response.into_body();
    let reply = replies(&mut body, protocol, 1).await.remove(0);
    (body, reply.connect.expect("connect reply"))
}

async fn wait_clients(node: &Node, n: usize) {
    tokio::time::timeout(WAIT, async {
        while node.info().num_clients != n {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{} clients, want {n}", node.info().num_clients));
}

#[tokio::test]
async fn http_stream_carries_replies_to_commands_sent_through_emulation() {
    for protocol in [Protocol::Json, Protocol::Protobuf] {
        let node = node().await;
        let (mut body, connect) = open_stream(&node, protocol).await;
        assert_eq!(connect.node, node.id());
        assert!(!connect.session.is_empty());
        assert_ne!(
            connect.session, connect.client,
            "the session id is not public"
        );

        let emulation = EmulationHandler::new(node.clone(), EmulationConfig::default());
        let data = encode_commands(protocol, &[subscribe(2, "a"), subscribe(3, "b")]);
        let mut r = request(
            Method::POST,
            "/emulation",
            emulation_body(protocol, node.id(), &connect.session, data),
        );
        if protocol == Protocol::Protobuf {
            r = protobuf(r);
        }
        let response = emulation.handle(r).await;
        assert_eq!(response.status(), StatusCode::NO_CONTENT);
        let got = replies(&mut body, protocol, 2).await;
        assert_eq!(got.iter().map(|r| r.id).collect::<Vec<_>>(), [2, 3]);
        assert!(got.iter().all(|r| r.subscribe.is_some()), "{got:?}");
        assert_eq!(node.channels().len(), 2);
    }
}

#[tokio::test]
async fn sse_get_takes_connect_from_the_query_and_writes_data_events() {
    let node = node().await;
    let sse = SseHandler::new(node.clone(), StreamConfig::default());
    let uri = "/connection/sse?cf_connect=%7B%22id%22%3A1%2C%22connect%22%3A%7B%22token%22%3A%2242%22%7D%7D";
    let response = sse.handle(request(Method::GET, uri, "")).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()[http::header::CONTENT_TYPE],
        "text/event-stream; charset=utf-8"
    );
    let mut body = response.into_body();
    assert_eq!(chunk(&mut body).await.unwrap(), "\r\n");
    let event = chunk(&mut body).await.unwrap();
    let text = std::str::from_utf8(&event).unwrap();
    let json = text
        .strip_prefix("data: ")
        .and_then(|t| t.strip_suffix("\n\n"))
        .unwrap_or_else(|| panic!("not one data event: {text:?}"));
    let reply: serde_json::Value = serde_json::from_str(json).unwrap();
    assert_eq!(reply["id"], 1);
    assert_eq!(reply["connect"]["node"], node.id());

    // POST carries the commands in the body instead.
    let response = sse
        .handle(request(Method::POST, "/connection/sse", connect_json()))
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    wait_clients(&node, 2).await;
}

#[tokio::test]
async fn pings_go_down_the_stream_and_pongs_come_back_through_emulation() {
    // As Centrifugo requires, the pong timeout is shorter than the ping interval.
    let node = node_with(Config {
        ping_interval: Duration::from_millis(400),
        pong_timeout: Duration::from_millis(200),
        ..Config::default()
    })
    .await;
    let (mut body, connect) = open_stream(&node, Protocol::Json).await;
    assert!(connect.pong, "{connect:?}");
    let emulation = EmulationHandler::new(node.clone(), EmulationConfig::default());
    // Three pings answered: the connection lives on.
    for _ in 0..3 {
        let ping = chunk(&mut body).await.expect("a ping");
        assert_eq!(&ping[..], b"{}\n");
        let pong = emulation_body(Protocol::Json, node.id(), &connect.session, "{}".into());
        let r = emulation
            .handle(request(Method::POST, "/emulation", pong))
            .await;
        assert_eq!(r.status(), StatusCode::NO_CONTENT);
    }
    // The next one goes unanswered.
    assert_eq!(&chunk(&mut body).await.expect("a ping")[..], b"{}\n");
    let push = replies(&mut body, Protocol::Json, 1).await.remove(0);
    assert_eq!(
        push.push.and_then(|p| p.disconnect).map(|d| d.code),
        Some(Disconnect::NO_PONG.code)
    );
    assert_eq!(chunk(&mut body).await, None);
}

#[tokio::test]
async fn a_gone_client_ends_its_session() {
    let node = node().await;
    let (body, _) = open_stream(&node, Protocol::Json).await;
    wait_clients(&node, 1).await;
    drop(body);
    wait_clients(&node, 0).await;
}

#[tokio::test]
async fn a_server_disconnect_is_pushed_then_the_stream_ends() {
    let node = node().await;
    let (mut body, _) = open_stream(&node, Protocol::Json).await;
    node.disconnect("42", Disconnect::FORCE_RECONNECT).await;
    let push = replies(&mut body, Protocol::Json, 1).await.remove(0);
    let d = push
        .push
        .and_then(|p| p.disconnect)
        .expect("disconnect push");
    assert_eq!(d.code, Disconnect::FORCE_RECONNECT.code);
    assert_eq!(chunk(&mut body).await, None, "the stream ends");
    wait_clients(&node, 0).await;
}

#[tokio::test]
async fn malformed_commands_disconnect_with_bad_request() {
    let node = node().await;
    // In the first request.
    let handler = HttpStreamHandler::new(node.clone(), StreamConfig::default());
    let response = handler
        .handle(request(
            Method::POST,
            "/connection/http_stream",
            "{not json",
        ))
        .await;
    let mut body = response.into_body();
    let push = replies(&mut body, Protocol::Json, 1).await.remove(0);
    assert_eq!(
        push.push.and_then(|p| p.disconnect).map(|d| d.code),
        Some(Disconnect::BAD_REQUEST.code)
    );
    assert_eq!(chunk(&mut body).await, None);

    // Through emulation: the envelope is fine, the commands are not.
    let (mut body, connect) = open_stream(&node, Protocol::Json).await;
    let emulation = EmulationHandler::new(node.clone(), EmulationConfig::default());
    let bad = emulation_body(Protocol::Json, node.id(), &connect.session, "{]".into());
    let response = emulation
        .handle(request(Method::POST, "/emulation", bad))
        .await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let push = replies(&mut body, Protocol::Json, 1).await.remove(0);
    assert_eq!(
        push.push.and_then(|p| p.disconnect).map(|d| d.code),
        Some(Disconnect::BAD_REQUEST.code)
    );
    assert_eq!(chunk(&mut body).await, None);
}

/// Two nodes on an in-process control bus; the second one is known to the first.
async fn two_nodes() -> (Node, Node) {
    let bus = std::sync::Arc::new(crate::node::test_bus::Bus::default());
    let on_bus = || async {
        let controller = crate::node::test_bus::BusController(bus.clone());
        let node = Node::builder()
            .controller_arc(std::sync::Arc::new(controller))
            .build();
        node.on_connecting(|e| async move { Ok(ConnectReply::new(Credentials::new(e.token))) });
        node.on_connect(|client| {
            client.on_subscribe(|_| async { Ok(SubscribeReply::new(SubscribeOptions::new())) });
        });
        node.run().await.unwrap();
        node
    };
    let first = on_bus().await;
    let second = on_bus().await;
    // The second node's first heartbeat, sent as it starts, introduces it to the first.
    tokio::time::timeout(WAIT, async {
        while !first.knows_node(second.id()) {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("the first node hears of the second");
    (first, second)
}

#[tokio::test]
async fn emulation_requests_reach_the_node_holding_the_session() {
    for protocol in [Protocol::Json, Protocol::Protobuf] {
        let (receiver, holder) = two_nodes().await;
        let (mut body, connect) = open_stream(&holder, protocol).await;
        assert_eq!(connect.node, holder.id());

        let emulation = EmulationHandler::new(receiver.clone(), EmulationConfig::default());
        let data = encode_commands(protocol, &[subscribe(2, "a"), subscribe(3, "b")]);
        let mut r = request(
            Method::POST,
            "/emulation",
            emulation_body(protocol, holder.id(), &connect.session, data),
        );
        if protocol == Protocol::Protobuf {
            r = protobuf(r);
        }
        assert_eq!(emulation.handle(r).await.status(), StatusCode::NO_CONTENT);
        let got = replies(&mut body, protocol, 2).await;
        assert_eq!(got.iter().map(|r| r.id).collect::<Vec<_>>(), [2, 3]);
        assert!(got.iter().all(|r| r.subscribe.is_some()), "{got:?}");
        assert_eq!(holder.channels().len(), 2);
        assert!(receiver.channels().is_empty());

        // A session the other node does not hold: accepted and dropped, as upstream.
        let mut r = request(
            Method::POST,
            "/emulation",
            emulation_body(protocol, holder.id(), "no-such-session", Bytes::new()),
        );
        if protocol == Protocol::Protobuf {
            r = protobuf(r);
        }
        assert_eq!(emulation.handle(r).await.status(), StatusCode::NO_CONTENT);
    }
}

#[tokio::test]
async fn forwarded_json_commands_travel_as_a_json_string() {
    let (_, holder) = two_nodes().await;
    let (mut body, connect) = open_stream(&holder, Protocol::Json).await;
    // What an upstream node sends: the client's `data` kept as a JSON string.
    let commands = encode_commands(Protocol::Json, &[subscribe(2, "a")]);
    let quoted = serde_json::to_vec(std::str::from_utf8(&commands).unwrap()).unwrap();
    let req = proto::EmulationRequest {
        node: holder.id().into(),
        session: connect.session.clone(),
        data: quoted.into(),
    };
    let encoded = Bytes::from(prost::Message::encode_to_vec(&req));
    assert_eq!(holder.handle_forwarded_emulation(encoded).await, 0);
    let got = replies(&mut body, Protocol::Json, 1).await;
    assert!(got[0].subscribe.is_some(), "{got:?}");

    // Raw commands where a JSON string is due: refused with upstream's code 1.
    let raw = proto::EmulationRequest {
        data: commands,
        ..req.clone()
    };
    let encoded = Bytes::from(prost::Message::encode_to_vec(&raw));
    assert_eq!(holder.handle_forwarded_emulation(encoded).await, 1);
    let gone = proto::EmulationRequest {
        session: "gone".into(),
        ..req
    };
    let encoded = Bytes::from(prost::Message::encode_to_vec(&gone));
    assert_eq!(holder.handle_forwarded_emulation(encoded).await, 2);
}

#[tokio::test]
async fn emulation_answers_bad_requests_with_statuses() {
    let node = node().await;
    let (_body, connect) = open_stream(&node, Protocol::Json).await;
    let config = EmulationConfig {
        max_request_body_size: 256,
    };
    let emulation = EmulationHandler::new(node.clone(), config);
    let post = |body: Bytes| request(Method::POST, "/emulation", body);
    let status = |r: http::Response<ResponseBody>| r.status();
    let ping = encode_commands(
        Protocol::Json,
        &[proto::Command {
            id: 9,
            ..Default::default()
        }],
    );

    // Not an EmulationRequest.
    assert_eq!(
        status(emulation.handle(post("[1,2]".into())).await),
        StatusCode::BAD_REQUEST
    );
    // Protobuf garbage.
    let garbage = protobuf(post(Bytes::from_static(&[0xff, 0xff, 0xff])));
    assert_eq!(
        status(emulation.handle(garbage).await),
        StatusCode::BAD_REQUEST
    );
    // Over the limit.
    let big = emulation_body(
        Protocol::Json,
        node.id(),
        &connect.session,
        "x".repeat(300).into(),
    );
    assert_eq!(
        status(emulation.handle(post(big)).await),
        StatusCode::PAYLOAD_TOO_LARGE
    );
    // A node not in the cluster: the client must reconnect (the SDK closes its
    // transport on 404).
    let elsewhere = emulation_body(Protocol::Json, "other-node", &connect.session, ping.clone());
    assert_eq!(
        status(emulation.handle(post(elsewhere)).await),
        StatusCode::NOT_FOUND
    );
    // A session this node does not hold: accepted and dropped, as upstream.
    let unknown = emulation_body(Protocol::Json, node.id(), "no-such-session", ping.clone());
    assert_eq!(
        status(emulation.handle(post(unknown)).await),
        StatusCode::NO_CONTENT
    );
    // The client id is not a session id.
    let by_client = emulation_body(Protocol::Json, node.id(), &connect.client, ping.clone());
    assert_eq!(
        status(emulation.handle(post(by_client)).await),
        StatusCode::NO_CONTENT
    );
    // Protobuf envelope for a JSON session.
    let mixed = protobuf(post(emulation_body(
        Protocol::Protobuf,
        node.id(),
        &connect.session,
        ping,
    )));
    assert_eq!(
        status(emulation.handle(mixed).await),
        StatusCode::BAD_REQUEST
    );
    // Methods.
    for method in [Method::GET, Method::PUT, Method::DELETE] {
        let r = emulation.handle(request(method, "/emulation", "")).await;
        assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);
    }
    let preflight = emulation
        .handle(request(Method::OPTIONS, "/emulation", ""))
        .await;
    assert_eq!(preflight.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        preflight.headers()[http::header::ACCESS_CONTROL_ALLOW_METHODS],
        "POST, OPTIONS"
    );
    // Still connected through all of it.
    assert_eq!(node.info().num_clients, 1);
}

#[tokio::test]
async fn streams_refuse_large_bodies_and_wrong_methods() {
    let node = node().await;
    let config = StreamConfig {
        max_request_body_size: 64,
        ..StreamConfig::default()
    };
    let stream = HttpStreamHandler::new(node.clone(), config.clone());
    let sse = SseHandler::new(node.clone(), config);
    let big = Bytes::from(format!(
        r#"{{"id":1,"connect":{{"token":"{}"}}}}"#,
        "4".repeat(100)
    ));
    let r = stream
        .handle(request(
            Method::POST,
            "/connection/http_stream",
            big.clone(),
        ))
        .await;
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let r = sse
        .handle(request(Method::POST, "/connection/sse", big))
        .await;
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);

    for method in [Method::GET, Method::PUT] {
        let r = stream
            .handle(request(method, "/connection/http_stream", connect_json()))
            .await;
        assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);
    }
    let r = stream
        .handle(request(Method::OPTIONS, "/connection/http_stream", ""))
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let r = sse
        .handle(request(Method::PUT, "/connection/sse", ""))
        .await;
    assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);
    for uri in [
        "/connection/sse",
        "/connection/sse?cf_connect=",
        "/connection/sse?x=1",
    ] {
        let r = sse.handle(request(Method::GET, uri, "")).await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{uri}");
    }
    assert_eq!(node.info().num_clients, 0);
}

#[tokio::test]
async fn a_node_shutting_down_refuses_with_a_disconnect_push() {
    let node = node().await;
    node.shutdown().await;
    let stream = HttpStreamHandler::new(node.clone(), StreamConfig::default());
    let response = stream
        .handle(request(
            Method::POST,
            "/connection/http_stream",
            connect_json(),
        ))
        .await;
    let body = response.into_body().collect().await.unwrap().to_bytes();
    let reply = gyre_protocol::decode_replies(Protocol::Json, body)
        .next()
        .unwrap()
        .unwrap();
    assert_eq!(
        reply.push.and_then(|p| p.disconnect).map(|d| d.code),
        Some(Disconnect::SHUTDOWN.code)
    );
}

/// Percent-encodes every byte that is not unreserved, as `URLSearchParams` would.
fn percent_encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn arb_reply() -> impl Strategy<Value = proto::Reply> {
    (
        any::<u32>(),
        ".{0,40}",
        proptest::collection::vec(any::<u8>(), 0..64),
    )
        .prop_map(|(id, channel, data)| proto::Reply {
            id,
            push: Some(proto::Push {
                channel,
                r#pub: Some(proto::Publication {
                    data: data.into(),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        })
}

proptest! {
    /// Length-prefixed Protobuf frames of any batch split back into the same replies.
    #[test]
    fn protobuf_frames_round_trip(replies in proptest::collection::vec(arb_reply(), 1..8)) {
        let messages: Vec<Bytes> = replies
            .iter()
            .map(|r| {
                let mut b = BytesMut::new();
                gyre_protocol::encode_reply(Protocol::Protobuf, r, &mut b).unwrap();
                b.freeze()
            })
            .collect();
        let frame = Framing::Protobuf.encode(&messages);
        let back: Vec<proto::Reply> = gyre_protocol::decode_replies(Protocol::Protobuf, frame)
            .map(Result::unwrap)
            .collect();
        prop_assert_eq!(back, replies);
    }

    /// JSON lines and SSE events hold each message once, in order, whole.
    #[test]
    fn text_framings_keep_messages(messages in proptest::collection::vec("[^\n]{0,30}", 1..8)) {
        let bytes: Vec<Bytes> = messages.iter().map(|m| Bytes::from(m.clone())).collect();
        let lines = Framing::JsonLines.encode(&bytes);
        let want: String = messages.iter().map(|m| format!("{m}\n")).collect();
        prop_assert_eq!(&lines[..], want.as_bytes());
        let events = Framing::Sse.encode(&bytes);
        let want: String = messages.iter().map(|m| format!("data: {m}\n\n")).collect();
        prop_assert_eq!(&events[..], want.as_bytes());
    }

    /// Emulation requests survive encoding and decoding in both protocols.
    #[test]
    fn emulation_requests_round_trip(node in ".{0,20}", session in ".{0,40}", data in ".{0,200}") {
        for protocol in [Protocol::Json, Protocol::Protobuf] {
            let body = emulation_body(protocol, &node, &session, Bytes::from(data.clone()));
            let req = gyre_protocol::decode_emulation_request(protocol, body).unwrap();
            prop_assert_eq!(&req.node, &node);
            prop_assert_eq!(&req.session, &session);
            prop_assert_eq!(&req.data[..], data.as_bytes());
        }
    }

    /// Any body is an error or a request, never a panic.
    #[test]
    fn emulation_decoder_takes_any_bytes(body in proptest::collection::vec(any::<u8>(), 0..300)) {
        for protocol in [Protocol::Json, Protocol::Protobuf] {
            let _ = gyre_protocol::decode_emulation_request(protocol, Bytes::from(body.clone()));
        }
    }

    /// `cf_connect` comes back as it was sent, whatever it holds.
    #[test]
    fn query_values_round_trip(value in ".{0,100}", other in "[a-z]{0,8}") {
        let query = format!("a={other}&cf_connect={}&b=1", percent_encode(&value));
        prop_assert_eq!(query_param(&query, "cf_connect"), Some(value));
    }

    /// Any query is a value or nothing, never a panic.
    #[test]
    fn query_decoder_takes_any_text(query in ".{0,100}") {
        let _ = query_param(&query, "cf_connect");
        let _ = percent_decode(&query);
    }
}
