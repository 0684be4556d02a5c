//! Exact wire bytes for the messages SDKs see most, in both encodings.

use std::collections::HashMap;

use bytes::{Bytes, BytesMut};
use gyre_protocol::{
    Protocol, decode_commands, decode_replies, encode_command, encode_push, encode_reply, proto,
};

fn reply_json(reply: &proto::Reply) -> String {
    let mut out = BytesMut::new();
    encode_reply(Protocol::Json, reply, &mut out).expect("encodes");
    String::from_utf8(out.to_vec()).expect("utf-8")
}

fn reply_pb(reply: &proto::Reply) -> Vec<u8> {
    let mut out = BytesMut::new();
    encode_reply(Protocol::Protobuf, reply, &mut out).expect("encodes");
    out.to_vec()
}

fn command_json(cmd: &proto::Command) -> String {
    let mut out = BytesMut::new();
    encode_command(Protocol::Json, cmd, &mut out).expect("encodes");
    String::from_utf8(out.to_vec()).expect("utf-8")
}

fn command_pb(cmd: &proto::Command) -> Vec<u8> {
    let mut out = BytesMut::new();
    encode_command(Protocol::Protobuf, cmd, &mut out).expect("encodes");
    out.to_vec()
}

/// Checks that `text` encodes from `reply` and decodes back to it, in both protocols.
fn assert_reply(reply: &proto::Reply, text: &str) {
    assert_eq!(reply_json(reply), text);
    let back: Vec<_> = decode_replies(Protocol::Json, Bytes::copy_from_slice(text.as_bytes()))
        .collect::<Result<_, _>>()
        .expect("decodes");
    assert_eq!(back, std::slice::from_ref(reply));
    let pb = reply_pb(reply);
    let back: Vec<_> = decode_replies(Protocol::Protobuf, Bytes::from(pb))
        .collect::<Result<_, _>>()
        .expect("decodes");
    assert_eq!(back, std::slice::from_ref(reply));
}

fn assert_command(cmd: &proto::Command, text: &str) {
    assert_eq!(command_json(cmd), text);
    let back: Vec<_> = decode_commands(Protocol::Json, Bytes::copy_from_slice(text.as_bytes()))
        .collect::<Result<_, _>>()
        .expect("decodes");
    assert_eq!(back, std::slice::from_ref(cmd));
    let pb = command_pb(cmd);
    let back: Vec<_> = decode_commands(Protocol::Protobuf, Bytes::from(pb))
        .collect::<Result<_, _>>()
        .expect("decodes");
    assert_eq!(back, std::slice::from_ref(cmd));
}

fn info(user: &str, client: &str) -> proto::ClientInfo {
    proto::ClientInfo {
        user: user.into(),
        client: client.into(),
        ..Default::default()
    }
}

fn push_reply(push: proto::Push) -> proto::Reply {
    proto::Reply {
        push: Some(push),
        ..Default::default()
    }
}

fn connect_command() -> proto::Command {
    proto::Command {
        id: 1,
        connect: Some(proto::ConnectRequest {
            token: "t".into(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn connect_reply() -> proto::Reply {
    proto::Reply {
        id: 1,
        connect: Some(proto::ConnectResult {
            client: "c".into(),
            ping: 25,
            pong: true,
            ..Default::default()
        }),
        ..Default::default()
    }
}

#[test]
fn connect_command_protobuf_bytes() {
    assert_eq!(
        command_pb(&connect_command()),
        [0x07, 0x08, 0x01, 0x22, 0x03, 0x0a, 0x01, 0x74]
    );
}

#[test]
fn connect_reply_protobuf_bytes() {
    assert_eq!(
        reply_pb(&connect_reply()),
        [
            0x0b, 0x08, 0x01, 0x2a, 0x07, 0x0a, 0x01, 0x63, 0x38, 0x19, 0x40, 0x01
        ]
    );
}

#[test]
fn ping_and_pong_are_empty() {
    let ping = proto::Reply::default();
    assert_reply(&ping, "{}");
    assert_eq!(reply_pb(&ping), [0x00]);
    let pong = proto::Command::default();
    assert_command(&pong, "{}");
    assert_eq!(command_pb(&pong), [0x00]);
}

#[test]
fn connect_json() {
    assert_command(&connect_command(), r#"{"id":1,"connect":{"token":"t"}}"#);
    let mut cmd = connect_command();
    let req = cmd.connect.as_mut().expect("set");
    req.name = "js".into();
    req.data = Bytes::from_static(br#"{"a":1}"#);
    req.subs.insert(
        "news".into(),
        proto::SubscribeRequest {
            recover: true,
            offset: 3,
            epoch: "e".into(),
            ..Default::default()
        },
    );
    assert_command(
        &cmd,
        r#"{"id":1,"connect":{"token":"t","data":{"a":1},"subs":{"news":{"recover":true,"epoch":"e","offset":3}},"name":"js"}}"#,
    );

    assert_reply(
        &connect_reply(),
        r#"{"id":1,"connect":{"client":"c","ping":25,"pong":true}}"#,
    );
    let mut reply = connect_reply();
    let res = reply.connect.as_mut().expect("set");
    res.version = "6.9.1 OSS".into();
    res.expires = true;
    res.ttl = 300;
    res.subs.insert(
        "news".into(),
        proto::SubscribeResult {
            recoverable: true,
            epoch: "e".into(),
            offset: 3,
            ..Default::default()
        },
    );
    assert_reply(
        &reply,
        r#"{"id":1,"connect":{"client":"c","version":"6.9.1 OSS","expires":true,"ttl":300,"subs":{"news":{"recoverable":true,"epoch":"e","offset":3}},"ping":25,"pong":true}}"#,
    );
}

#[test]
fn subscribe_with_recovery_json() {
    let cmd = proto::Command {
        id: 2,
        subscribe: Some(proto::SubscribeRequest {
            channel: "chat".into(),
            recover: true,
            epoch: "xyz".into(),
            offset: 5,
            flag: 1,
            ..Default::default()
        }),
        ..Default::default()
    };
    assert_command(
        &cmd,
        r#"{"id":2,"subscribe":{"channel":"chat","recover":true,"epoch":"xyz","offset":5,"flag":1}}"#,
    );

    let reply = proto::Reply {
        id: 2,
        subscribe: Some(proto::SubscribeResult {
            recoverable: true,
            epoch: "xyz".into(),
            publications: vec![proto::Publication {
                data: Bytes::from_static(br#"{"n":6}"#),
                offset: 6,
                ..Default::default()
            }],
            recovered: true,
            offset: 5,
            positioned: true,
            was_recovering: true,
            ..Default::default()
        }),
        ..Default::default()
    };
    assert_reply(
        &reply,
        r#"{"id":2,"subscribe":{"recoverable":true,"epoch":"xyz","publications":[{"data":{"n":6},"offset":6}],"recovered":true,"offset":5,"positioned":true,"was_recovering":true}}"#,
    );
}

#[test]
fn publication_push_json() {
    let push = proto::Push {
        channel: "chat".into(),
        r#pub: Some(proto::Publication {
            data: Bytes::from_static(br#"{"t":"hi"}"#),
            info: Some(proto::ClientInfo {
                conn_info: Bytes::from_static(br#"{"name":"ann"}"#),
                ..info("1", "c1")
            }),
            offset: 7,
            tags: HashMap::from([("k".to_string(), "v".to_string())]),
            ..Default::default()
        }),
        ..Default::default()
    };
    let text = r#"{"push":{"channel":"chat","pub":{"data":{"t":"hi"},"info":{"user":"1","client":"c1","conn_info":{"name":"ann"}},"offset":7,"tags":{"k":"v"}}}}"#;
    assert_reply(&push_reply(push.clone()), text);

    let mut out = BytesMut::new();
    encode_push(Protocol::Json, &push, &mut out).expect("encodes");
    assert_eq!(&out[..], text.as_bytes());
    let mut out = BytesMut::new();
    encode_push(Protocol::Protobuf, &push, &mut out).expect("encodes");
    assert_eq!(out.to_vec(), reply_pb(&push_reply(push)));
}

#[test]
fn join_and_leave_push_json() {
    let join = proto::Push {
        channel: "chat".into(),
        join: Some(proto::Join {
            info: Some(info("", "c1")),
        }),
        ..Default::default()
    };
    assert_reply(
        &push_reply(join),
        r#"{"push":{"channel":"chat","join":{"info":{"user":"","client":"c1"}}}}"#,
    );
    let leave = proto::Push {
        channel: "chat".into(),
        leave: Some(proto::Leave {
            info: Some(info("42", "")),
        }),
        ..Default::default()
    };
    assert_reply(
        &push_reply(leave),
        r#"{"push":{"channel":"chat","leave":{"info":{"user":"42","client":""}}}}"#,
    );
}

#[test]
fn disconnect_unsubscribe_and_refresh_push_json() {
    let disconnect = proto::Push {
        disconnect: Some(gyre_protocol::Disconnect::SHUTDOWN.to_proto()),
        ..Default::default()
    };
    assert_reply(
        &push_reply(disconnect),
        r#"{"push":{"disconnect":{"code":3001,"reason":"shutdown"}}}"#,
    );
    let unsubscribe = proto::Push {
        channel: "chat".into(),
        unsubscribe: Some(gyre_protocol::Unsubscribe::SERVER.to_proto()),
        ..Default::default()
    };
    assert_reply(
        &push_reply(unsubscribe),
        r#"{"push":{"channel":"chat","unsubscribe":{"code":2000,"reason":"server unsubscribe"}}}"#,
    );
    let refresh = proto::Push {
        refresh: Some(proto::Refresh {
            expires: true,
            ttl: 300,
        }),
        ..Default::default()
    };
    assert_reply(
        &push_reply(refresh),
        r#"{"push":{"refresh":{"expires":true,"ttl":300}}}"#,
    );
}

#[test]
fn always_emitted_fields_json() {
    let history = proto::Reply {
        id: 4,
        history: Some(proto::HistoryResult::default()),
        ..Default::default()
    };
    assert_reply(
        &history,
        r#"{"id":4,"history":{"publications":[],"epoch":"","offset":0}}"#,
    );
    let stats = proto::Reply {
        id: 5,
        presence_stats: Some(proto::PresenceStatsResult::default()),
        ..Default::default()
    };
    assert_reply(
        &stats,
        r#"{"id":5,"presence_stats":{"num_clients":0,"num_users":0}}"#,
    );
    let presence = proto::Reply {
        id: 6,
        presence: Some(proto::PresenceResult::default()),
        ..Default::default()
    };
    assert_reply(&presence, r#"{"id":6,"presence":{"presence":{}}}"#);
    let presence = proto::Reply {
        id: 6,
        presence: Some(proto::PresenceResult {
            presence: HashMap::from([("c1".to_string(), info("1", "c1"))]),
        }),
        ..Default::default()
    };
    assert_reply(
        &presence,
        r#"{"id":6,"presence":{"presence":{"c1":{"user":"1","client":"c1"}}}}"#,
    );
}

#[test]
fn empty_results_json() {
    let publish = proto::Reply {
        id: 5,
        publish: Some(proto::PublishResult {}),
        ..Default::default()
    };
    assert_reply(&publish, r#"{"id":5,"publish":{}}"#);
    let unsubscribe = proto::Reply {
        id: 6,
        unsubscribe: Some(proto::UnsubscribeResult {}),
        ..Default::default()
    };
    assert_reply(&unsubscribe, r#"{"id":6,"unsubscribe":{}}"#);
}

#[test]
fn error_reply_json() {
    let reply = proto::Reply {
        id: 4,
        error: Some(gyre_protocol::Error::NOT_AVAILABLE.to_proto()),
        ..Default::default()
    };
    assert_reply(
        &reply,
        r#"{"id":4,"error":{"code":108,"message":"not available"}}"#,
    );
    let reply = proto::Reply {
        id: 4,
        error: Some(gyre_protocol::Error::INTERNAL.to_proto()),
        ..Default::default()
    };
    assert_reply(
        &reply,
        r#"{"id":4,"error":{"code":100,"message":"internal server error","temporary":true}}"#,
    );
}

#[test]
fn map_keys_sorted_and_negative_numbers_json() {
    let push = proto::Push {
        id: -3,
        r#pub: Some(proto::Publication {
            tags: HashMap::from([
                ("b".to_string(), "2".to_string()),
                ("a".to_string(), "1".to_string()),
                ("c".to_string(), "3".to_string()),
            ]),
            score: -9,
            time: i64::MAX,
            ..Default::default()
        }),
        ..Default::default()
    };
    assert_reply(
        &push_reply(push),
        r#"{"push":{"id":-3,"pub":{"tags":{"a":"1","b":"2","c":"3"},"time":9223372036854775807,"score":-9}}}"#,
    );
}

#[test]
fn string_escaping_json() {
    let reply = proto::Reply {
        id: 1,
        error: Some(proto::Error {
            code: 1,
            message: "q\"b\\n\n\t\u{1}\u{1f}é😀</>".into(),
            temporary: false,
        }),
        ..Default::default()
    };
    assert_reply(
        &reply,
        "{\"id\":1,\"error\":{\"code\":1,\"message\":\"q\\\"b\\\\n\\n\\t\\u0001\\u001fé😀</>\"}}",
    );
}
