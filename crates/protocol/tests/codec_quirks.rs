//! Centrifugo JSON quirks and frame-splitting rules.

use bytes::{Bytes, BytesMut};
use gyre_protocol::{
    DecodeError, EncodeError, Protocol, decode_commands, decode_emulation_request, decode_replies,
    encode_command, encode_emulation_request, encode_reply, proto,
};

fn commands(protocol: Protocol, frame: &[u8]) -> Vec<Result<proto::Command, DecodeError>> {
    decode_commands(protocol, Bytes::copy_from_slice(frame)).collect()
}

fn one_command(frame: &str) -> proto::Command {
    let mut all = commands(Protocol::Json, frame.as_bytes());
    assert_eq!(all.len(), 1, "{all:?}");
    all.remove(0).expect("decodes")
}

fn publish_reply(data: &'static [u8]) -> proto::Reply {
    proto::Reply {
        push: Some(proto::Push {
            channel: "c".into(),
            r#pub: Some(proto::Publication {
                data: Bytes::from_static(data),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn encode_json(reply: &proto::Reply) -> Result<BytesMut, EncodeError> {
    let mut out = BytesMut::new();
    encode_reply(Protocol::Json, reply, &mut out).map(|()| out)
}

#[test]
fn raw_newlines_are_stripped_from_payloads() {
    let out = encode_json(&publish_reply(b"{\"a\":\n1,\n\"b\":[\r\n2]}\n")).expect("valid JSON");
    assert!(!out.contains(&b'\n'));
    assert_eq!(
        &out[..],
        b"{\"push\":{\"channel\":\"c\",\"pub\":{\"data\":{\"a\":1,\"b\":[\r2]}}}}"
    );
}

#[test]
fn escaped_newlines_inside_payload_strings_are_kept() {
    let out = encode_json(&publish_reply(br#"{"text":"line1\nline2"}"#)).expect("valid JSON");
    assert_eq!(
        &out[..],
        br#"{"push":{"channel":"c","pub":{"data":{"text":"line1\nline2"}}}}"#
    );
    let back = decode_replies(Protocol::Json, out.freeze())
        .next()
        .expect("one")
        .expect("decodes");
    let data = back.push.and_then(|p| p.r#pub).expect("pub").data;
    assert_eq!(&data[..], br#"{"text":"line1\nline2"}"#);
}

#[test]
fn non_json_payload_is_an_encode_error_and_leaves_output_untouched() {
    let mut out = BytesMut::from(&b"prefix"[..]);
    let err = encode_reply(Protocol::Json, &publish_reply(b"\x00\x01binary"), &mut out);
    assert_eq!(err, Err(EncodeError::InvalidJson { field: "data" }));
    assert_eq!(&out[..], b"prefix");

    for bad in [
        &b"{\"a\":"[..],
        b"tru",
        b"{\"s\":\"raw\nnewline\"}",
        b"1 2",
        b" ",
    ] {
        let mut reply = publish_reply(b"1");
        reply
            .push
            .as_mut()
            .and_then(|p| p.r#pub.as_mut())
            .expect("pub")
            .data = Bytes::copy_from_slice(bad);
        assert!(
            encode_json(&reply).is_err(),
            "{:?}",
            String::from_utf8_lossy(bad)
        );
    }
    // The same payload is fine on Protobuf.
    let mut out = BytesMut::new();
    encode_reply(
        Protocol::Protobuf,
        &publish_reply(b"\x00\x01binary"),
        &mut out,
    )
    .expect("binary ok");

    let info = proto::Reply {
        push: Some(proto::Push {
            join: Some(proto::Join {
                info: Some(proto::ClientInfo {
                    chan_info: Bytes::from_static(b"not json"),
                    ..Default::default()
                }),
            }),
            ..Default::default()
        }),
        ..Default::default()
    };
    assert_eq!(
        encode_json(&info).err(),
        Some(EncodeError::InvalidJson { field: "chan_info" })
    );
}

#[test]
fn scalar_payloads_are_embedded_verbatim() {
    for payload in [
        &b"\"just a string\""[..],
        b"[1,2]",
        b"42",
        b"null",
        b"true",
        b"\"\"",
    ] {
        let out = encode_json(&publish_reply(payload)).expect("valid JSON");
        let mut expected = b"{\"push\":{\"channel\":\"c\",\"pub\":{\"data\":".to_vec();
        expected.extend_from_slice(payload);
        expected.extend_from_slice(b"}}}");
        assert_eq!(&out[..], &expected[..]);
    }
}

#[test]
fn null_values_are_absent() {
    let cmd = one_command(
        r#"{"id":3,"publish":{"channel":null,"data":null,"type":null,"removed":null},"subscribe":null}"#,
    );
    assert_eq!(
        cmd,
        proto::Command {
            id: 3,
            publish: Some(proto::PublishRequest::default()),
            ..Default::default()
        }
    );
    let cmd = one_command(r#"{"id":null,"connect":{"subs":null,"headers":null}}"#);
    assert_eq!(cmd.id, 0);
    assert_eq!(cmd.connect, Some(proto::ConnectRequest::default()));
}

#[test]
fn unknown_keys_are_skipped_and_camel_case_is_not_an_alias() {
    let cmd = one_command(
        r#"{"id":7,"future":{"x":[1,{"y":null}]},"presenceStats":{"channel":"a"},"presence_stats":{"channel":"b","extra":1}}"#,
    );
    assert_eq!(
        cmd,
        proto::Command {
            id: 7,
            presence_stats: Some(proto::PresenceStatsRequest {
                channel: "b".into()
            }),
            ..Default::default()
        }
    );
    let cmd =
        one_command(r#"{"id":2,"subscribe":{"channel":"x","joinLeave":true,"join_leave":false}}"#);
    assert!(!cmd.subscribe.expect("subscribe").join_leave);
}

#[test]
fn bytes_fields_capture_raw_text() {
    let cmd = one_command(r#"{"id":1,"rpc":{"method":"m","data": {"b" : [1, 2.50, "\u00e9"]} }}"#);
    let rpc = cmd.rpc.expect("rpc");
    assert_eq!(&rpc.data[..], br#"{"b" : [1, 2.50, "\u00e9"]}"#);
    assert_eq!(rpc.method, "m");
}

#[test]
fn commands_of_one_frame_come_out_in_order() {
    let frame = b"{\"id\":1,\"connect\":{\"token\":\"t\"}}\n{\"id\":2,\"subscribe\":{\"channel\":\"chat\"}}";
    let ids: Vec<_> = commands(Protocol::Json, frame)
        .into_iter()
        .map(|c| c.expect("decodes"))
        .map(|c| (c.id, c.connect.is_some(), c.subscribe.is_some()))
        .collect();
    assert_eq!(ids, [(1, true, false), (2, false, true)]);

    let mut pb = BytesMut::new();
    for id in [1, 2, 3] {
        let cmd = proto::Command {
            id,
            ..Default::default()
        };
        encode_command(Protocol::Protobuf, &cmd, &mut pb).expect("encodes");
    }
    let ids: Vec<_> = commands(Protocol::Protobuf, &pb)
        .into_iter()
        .map(|c| c.expect("decodes").id)
        .collect();
    assert_eq!(ids, [1, 2, 3]);
}

#[test]
fn json_frame_splitting_rules() {
    let ok = |frame: &[u8]| -> usize {
        let all = commands(Protocol::Json, frame);
        assert!(all.iter().all(Result::is_ok), "{all:?}");
        all.len()
    };
    assert_eq!(ok(b"{}\n"), 1);
    assert_eq!(ok(b"{}\n{}\n"), 2);
    assert_eq!(ok(b"  {\"id\":1} \r\n\t{}"), 2);

    assert_eq!(commands(Protocol::Json, b""), [Err(DecodeError::Empty)]);
    assert_eq!(
        commands(Protocol::Json, b"\n"),
        [Err(DecodeError::EmptyLine)]
    );
    let res = commands(Protocol::Json, b"{}\n\n");
    assert_eq!(res.len(), 2);
    assert!(res[0].is_ok());
    assert_eq!(res[1], Err(DecodeError::EmptyLine));
    let res = commands(Protocol::Json, b"{}\n\n{}");
    assert_eq!(res.len(), 2, "iteration stops at the first error");
    assert_eq!(res[1], Err(DecodeError::EmptyLine));

    for bad in [
        &b"{\"id\":1"[..],
        b"[]",
        b"[1]",
        b"1",
        b"null",
        b"{} {}",
        b"   ",
        b"{\"id\":-1}",
        b"{\"id\":1.5}",
    ] {
        let res = commands(Protocol::Json, bad);
        assert!(
            matches!(res[..], [Err(DecodeError::Json(_))]),
            "{res:?} for {bad:?}"
        );
    }
    // Messages are objects, also when nested.
    let res = commands(Protocol::Json, br#"{"id":1,"connect":["t"]}"#);
    assert!(matches!(res[..], [Err(DecodeError::Json(_))]));
    // A message spanning two lines is two broken lines.
    let res = commands(Protocol::Json, b"{\"id\":1,\n\"ping\":{}}");
    assert!(matches!(res[..], [Err(DecodeError::Json(_))]));
}

#[test]
fn invalid_utf8_is_rejected() {
    let res = commands(
        Protocol::Json,
        b"{\"id\":1,\"publish\":{\"channel\":\"\xff\"}}",
    );
    assert!(matches!(res[..], [Err(DecodeError::Json(_))]));
    let res = commands(
        Protocol::Json,
        b"{\"id\":1,\"publish\":{\"data\":\"\xc3\x28\"}}",
    );
    assert!(matches!(res[..], [Err(DecodeError::Json(_))]));
    // Protobuf string field 1 of ConnectRequest with invalid UTF-8.
    let res = commands(Protocol::Protobuf, &[0x05, 0x22, 0x03, 0x0a, 0x01, 0xff]);
    assert!(matches!(res[..], [Err(DecodeError::Protobuf(_))]));
}

#[test]
fn protobuf_frame_errors() {
    assert_eq!(commands(Protocol::Protobuf, b""), [Err(DecodeError::Empty)]);
    let replies: Vec<_> = decode_replies(Protocol::Protobuf, Bytes::new()).collect();
    assert_eq!(replies, [Err(DecodeError::Empty)]);
    assert_eq!(
        commands(Protocol::Protobuf, &[0x80]),
        [Err(DecodeError::BadVarint)]
    );
    assert_eq!(
        commands(Protocol::Protobuf, &[0xff; 11]),
        [Err(DecodeError::BadVarint)]
    );
    assert_eq!(
        commands(
            Protocol::Protobuf,
            &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02]
        ),
        [Err(DecodeError::BadVarint)]
    );
    assert_eq!(
        commands(Protocol::Protobuf, &[0x05, 0x08, 0x01]),
        [Err(DecodeError::Truncated {
            declared: 5,
            remaining: 2
        })]
    );
    // A good record followed by a truncated one.
    let res = commands(Protocol::Protobuf, &[0x02, 0x08, 0x01, 0x03, 0x08]);
    assert_eq!(res.len(), 2);
    assert_eq!(res[0].as_ref().map(|c| c.id), Ok(1));
    assert!(matches!(res[1], Err(DecodeError::Truncated { .. })));
    // Unknown fields are skipped: field 99 varint.
    let res = commands(Protocol::Protobuf, &[0x05, 0x08, 0x04, 0x98, 0x06, 0x01]);
    assert_eq!(res.len(), 1);
    assert_eq!(res[0].as_ref().map(|c| c.id), Ok(4));
    // Garbage inside a record.
    let res = commands(Protocol::Protobuf, &[0x02, 0x0f, 0xff]);
    assert!(matches!(res[..], [Err(DecodeError::Protobuf(_))]));
    // Empty records are pongs.
    assert_eq!(
        commands(Protocol::Protobuf, &[0x00, 0x00]),
        [Ok(proto::Command::default()), Ok(proto::Command::default())]
    );
}

#[test]
fn emulation_request_json_carries_commands_as_a_string() {
    let body = br#"{"node":"n1","session":"s1","data":"{\"id\":2,\"subscribe\":{\"channel\":\"a\"}}\n{}","other":1}"#;
    let req = decode_emulation_request(Protocol::Json, Bytes::from_static(body)).expect("decodes");
    assert_eq!(req.node, "n1");
    assert_eq!(req.session, "s1");
    assert_eq!(
        &req.data[..],
        b"{\"id\":2,\"subscribe\":{\"channel\":\"a\"}}\n{}"
    );
    let cmds: Vec<_> = decode_commands(Protocol::Json, req.data.clone())
        .collect::<Result<_, _>>()
        .expect("decodes");
    assert_eq!(cmds.len(), 2);

    let mut out = BytesMut::new();
    encode_emulation_request(Protocol::Json, &req, &mut out).expect("encodes");
    assert_eq!(
        &out[..],
        br#"{"node":"n1","session":"s1","data":"{\"id\":2,\"subscribe\":{\"channel\":\"a\"}}\n{}"}"#
    );
    let back = decode_emulation_request(Protocol::Json, out.freeze()).expect("decodes");
    assert_eq!(back, req);

    let bad = proto::EmulationRequest {
        data: Bytes::from_static(b"\xff"),
        ..Default::default()
    };
    assert_eq!(
        encode_emulation_request(Protocol::Json, &bad, &mut BytesMut::new()),
        Err(EncodeError::InvalidUtf8 { field: "data" })
    );
    assert!(
        decode_emulation_request(Protocol::Json, Bytes::from_static(b"{\"data\":{}}")).is_err()
    );
    assert!(decode_emulation_request(Protocol::Json, Bytes::from_static(b"[]")).is_err());
}

#[test]
fn emulation_request_protobuf_is_a_plain_message() {
    let mut data = BytesMut::new();
    encode_command(Protocol::Protobuf, &proto::Command::default(), &mut data).expect("encodes");
    let req = proto::EmulationRequest {
        node: "n".into(),
        session: "s".into(),
        data: data.freeze(),
    };
    let mut out = BytesMut::new();
    encode_emulation_request(Protocol::Protobuf, &req, &mut out).expect("encodes");
    assert_eq!(
        &out[..],
        [0x0a, 0x01, b'n', 0x12, 0x01, b's', 0x1a, 0x01, 0x00]
    );
    let back = decode_emulation_request(Protocol::Protobuf, out.freeze()).expect("decodes");
    assert_eq!(back, req);
}
