//! Decoders face the network: they must return errors, never panic, on any input.

mod support;

use bytes::{Bytes, BytesMut};
use gyre_protocol::{
    Protocol, decode_commands, decode_emulation_request, decode_replies, encode_command,
    encode_reply,
};
use proptest::collection::vec;
use proptest::prelude::*;

const PROTOCOLS: [Protocol; 2] = [Protocol::Json, Protocol::Protobuf];

/// Decodes `frame` every way there is; counts results so the work is not optimised out.
fn decode_everything(frame: &[u8]) -> usize {
    let mut n = 0;
    for protocol in PROTOCOLS {
        let frame = Bytes::copy_from_slice(frame);
        let commands: Vec<_> = decode_commands(protocol, frame.clone()).collect();
        let replies: Vec<_> = decode_replies(protocol, frame.clone()).collect();
        // Iteration stops at the first error.
        for results in [
            commands.iter().map(|r| r.is_err()).collect::<Vec<_>>(),
            replies.iter().map(|r| r.is_err()).collect(),
        ] {
            assert!(results.iter().rev().skip(1).all(|err| !err));
            assert!(!results.is_empty(), "every frame yields at least one item");
        }
        n += commands.len() + replies.len();
        n += usize::from(decode_emulation_request(protocol, frame).is_ok());
    }
    n
}

/// A mutation applied to a valid frame.
#[derive(Debug, Clone)]
enum Mutation {
    Flip { at: usize, bit: u8 },
    Set { at: usize, byte: u8 },
    Insert { at: usize, byte: u8 },
    Remove { at: usize },
    Truncate { at: usize },
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let byte = prop_oneof![
        any::<u8>(),
        Just(b'\n'),
        Just(b'"'),
        Just(b'{'),
        Just(b'}'),
        Just(0x80),
        Just(0xff)
    ];
    prop_oneof![
        (any::<usize>(), 0u8..8).prop_map(|(at, bit)| Mutation::Flip { at, bit }),
        (any::<usize>(), byte.clone()).prop_map(|(at, byte)| Mutation::Set { at, byte }),
        (any::<usize>(), byte).prop_map(|(at, byte)| Mutation::Insert { at, byte }),
        any::<usize>().prop_map(|at| Mutation::Remove { at }),
        any::<usize>().prop_map(|at| Mutation::Truncate { at }),
    ]
}

fn apply(frame: &mut Vec<u8>, mutations: &[Mutation]) {
    for m in mutations {
        let len = frame.len();
        match *m {
            Mutation::Flip { at, bit } if len > 0 => frame[at % len] ^= 1 << bit,
            Mutation::Set { at, byte } if len > 0 => frame[at % len] = byte,
            Mutation::Insert { at, byte } => frame.insert(at % (len + 1), byte),
            Mutation::Remove { at } if len > 0 => {
                frame.remove(at % len);
            }
            Mutation::Truncate { at } => frame.truncate(at % (len + 1)),
            _ => {}
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1024, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes(frame in vec(any::<u8>(), 0..256)) {
        decode_everything(&frame);
    }

    #[test]
    fn json_like_text(frame in vec(prop_oneof![
        Just(b'{'), Just(b'}'), Just(b'['), Just(b']'), Just(b'"'), Just(b':'), Just(b','),
        Just(b'\n'), Just(b' '), Just(b'\\'), Just(b'0'), Just(b'-'), Just(b'e'), Just(0xc3),
    ], 0..64)) {
        decode_everything(&frame);
    }

    #[test]
    fn mutated_command_frames(
        json in vec(support::command(Protocol::Json), 1..3),
        pb in vec(support::command(Protocol::Protobuf), 1..3),
        mutations in vec(mutation(), 1..4),
    ) {
        for (protocol, commands) in [(Protocol::Json, json), (Protocol::Protobuf, pb)] {
            let mut frame = BytesMut::new();
            for c in &commands {
                frame.extend_from_slice(protocol.frame_separator());
                encode_command(protocol, c, &mut frame).expect("encodable");
            }
            let mut frame = frame.to_vec();
            apply(&mut frame, &mutations);
            decode_everything(&frame);
        }
    }

    #[test]
    fn mutated_reply_frames(
        json in support::reply(Protocol::Json),
        pb in support::reply(Protocol::Protobuf),
        mutations in vec(mutation(), 1..4),
    ) {
        for (protocol, reply) in [(Protocol::Json, json), (Protocol::Protobuf, pb)] {
            let mut frame = BytesMut::new();
            encode_reply(protocol, &reply, &mut frame).expect("encodable");
            let mut frame = frame.to_vec();
            apply(&mut frame, &mutations);
            decode_everything(&frame);
        }
    }
}

#[test]
fn deeply_nested_input_is_an_error() {
    // serde_json limits recursion, so hostile nesting cannot overflow the stack.
    let mut frame = b"{\"id\":1,\"rpc\":{\"data\":".to_vec();
    frame.extend(std::iter::repeat_n(b'[', 100_000));
    assert!(decode_commands(Protocol::Json, Bytes::from(frame)).all(|r| r.is_err()));

    let mut frame = b"{\"id\":1,\"subscribe\":{\"tf\":".to_vec();
    frame.extend(std::iter::repeat_n(&b"{\"nodes\":["[..], 10_000).flatten());
    assert!(decode_commands(Protocol::Json, Bytes::from(frame)).all(|r| r.is_err()));

    // Protobuf: prost limits recursion to 100 levels of nested messages.
    let mut msg: Vec<u8> = Vec::new();
    for _ in 0..200 {
        let mut outer = vec![0x32];
        prost::encoding::encode_varint(msg.len() as u64, &mut outer);
        outer.extend_from_slice(&msg);
        msg = outer;
    }
    // Wrap as SubscribeRequest.tf (13) inside Command.subscribe (5).
    let mut tf = vec![0x6a];
    prost::encoding::encode_varint(msg.len() as u64, &mut tf);
    tf.extend_from_slice(&msg);
    let mut cmd = vec![0x08, 0x01, 0x2a];
    prost::encoding::encode_varint(tf.len() as u64, &mut cmd);
    cmd.extend_from_slice(&tf);
    let mut frame = Vec::new();
    prost::encoding::encode_varint(cmd.len() as u64, &mut frame);
    frame.extend_from_slice(&cmd);
    assert!(decode_commands(Protocol::Protobuf, Bytes::from(frame)).all(|r| r.is_err()));
}
