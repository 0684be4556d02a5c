//! encode → decode → equal, for arbitrary messages of the whole schema, both encodings.

mod support;

use bytes::BytesMut;
use gyre_protocol::{
    Protocol, decode_commands, decode_replies, encode_command, encode_push, encode_reply, proto,
};
use proptest::collection::vec;
use proptest::prelude::*;

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 256,
        ..ProptestConfig::default()
    }
}

fn roundtrip_replies(protocol: Protocol, replies: &[proto::Reply]) -> Result<(), TestCaseError> {
    let mut frame = BytesMut::new();
    for (i, reply) in replies.iter().enumerate() {
        if i > 0 {
            frame.extend_from_slice(protocol.frame_separator());
        }
        encode_reply(protocol, reply, &mut frame).expect("encodable");
    }
    if protocol == Protocol::Json {
        let newlines = frame.iter().filter(|&&b| b == b'\n').count();
        prop_assert_eq!(
            newlines,
            replies.len() - 1,
            "only separators are raw newlines"
        );
    }
    let back: Vec<_> = decode_replies(protocol, frame.freeze())
        .collect::<Result<_, _>>()
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
    prop_assert_eq!(back, replies);
    Ok(())
}

fn roundtrip_commands(
    protocol: Protocol,
    commands: &[proto::Command],
) -> Result<(), TestCaseError> {
    let mut frame = BytesMut::new();
    for (i, command) in commands.iter().enumerate() {
        if i > 0 {
            frame.extend_from_slice(protocol.frame_separator());
        }
        encode_command(protocol, command, &mut frame).expect("encodable");
    }
    if protocol == Protocol::Json {
        // A single trailing newline is accepted too.
        frame.extend_from_slice(b"\n");
        prop_assert_eq!(
            frame.iter().filter(|&&b| b == b'\n').count(),
            commands.len()
        );
    }
    let back: Vec<_> = decode_commands(protocol, frame.freeze())
        .collect::<Result<_, _>>()
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
    prop_assert_eq!(back, commands);
    Ok(())
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn json_replies(replies in vec(support::reply(Protocol::Json), 1..4)) {
        roundtrip_replies(Protocol::Json, &replies)?;
    }

    #[test]
    fn protobuf_replies(replies in vec(support::reply(Protocol::Protobuf), 1..4)) {
        roundtrip_replies(Protocol::Protobuf, &replies)?;
    }

    #[test]
    fn json_commands(commands in vec(support::command(Protocol::Json), 1..4)) {
        roundtrip_commands(Protocol::Json, &commands)?;
    }

    #[test]
    fn protobuf_commands(commands in vec(support::command(Protocol::Protobuf), 1..4)) {
        roundtrip_commands(Protocol::Protobuf, &commands)?;
    }

    /// `encode_push` is `encode_reply` of `Reply { push }`, byte for byte.
    #[test]
    fn push_shortcut_matches_reply(json in support::push(Protocol::Json), pb in support::push(Protocol::Protobuf)) {
        for (protocol, push) in [(Protocol::Json, json), (Protocol::Protobuf, pb)] {
            let mut a = BytesMut::new();
            encode_push(protocol, &push, &mut a).expect("encodable");
            let mut b = BytesMut::new();
            let reply = proto::Reply { push: Some(push), ..Default::default() };
            encode_reply(protocol, &reply, &mut b).expect("encodable");
            prop_assert_eq!(a, b);
        }
    }

    /// Our JSON is standard JSON: serde_json parses it into an object.
    #[test]
    fn json_output_is_valid_json(reply in support::reply(Protocol::Json)) {
        let mut out = BytesMut::new();
        encode_reply(Protocol::Json, &reply, &mut out).expect("encodable");
        let value: serde_json::Value = serde_json::from_slice(&out).expect("valid JSON");
        prop_assert!(value.is_object());
    }

    /// Payloads with raw newlines (pretty-printed JSON) lose them and nothing else.
    #[test]
    fn pretty_payloads_are_flattened(value in support::json_value()) {
        let parsed: serde_json::Value = serde_json::from_slice(&value).expect("valid");
        let pretty = serde_json::to_vec_pretty(&parsed).expect("serializable");
        let push = proto::Push {
            r#pub: Some(proto::Publication { data: pretty.into(), ..Default::default() }),
            ..Default::default()
        };
        let mut out = BytesMut::new();
        encode_push(Protocol::Json, &push, &mut out).expect("encodable");
        prop_assert!(!out.contains(&b'\n'));
        let back = decode_replies(Protocol::Json, out.freeze()).next().expect("one").expect("decodes");
        let data = back.push.and_then(|p| p.r#pub).expect("pub").data;
        let reparsed: serde_json::Value = serde_json::from_slice(&data).expect("valid");
        prop_assert_eq!(reparsed, parsed);
    }
}
