//! Checks shared by the fuzz targets.
//!
//! Each check decodes one frame, then re-encodes every message that decoded and asserts
//! the re-encoded form decodes again to the same message.

use bytes::{Bytes, BytesMut};
use gyre_protocol::{
    Protocol, decode_commands, decode_replies, encode_command, encode_reply, proto,
};

/// Decodes `data` as a command frame and checks the re-encoding round trip.
pub fn check_commands(protocol: Protocol, data: &[u8]) {
    let mut decoded = Vec::new();
    for res in decode_commands(protocol, Bytes::copy_from_slice(data)) {
        match res {
            Ok(cmd) => decoded.push(cmd),
            Err(_) => break,
        }
    }
    for cmd in decoded {
        let mut out = BytesMut::new();
        encode_command(protocol, &cmd, &mut out)
            .expect("a decoded command re-encodes in its own protocol");
        let again: Vec<proto::Command> = decode_commands(protocol, out.freeze())
            .collect::<Result<_, _>>()
            .expect("a re-encoded command decodes");
        assert_eq!(again, [cmd.clone()]);
        // The other protocol must not panic either (it may refuse non-JSON payloads).
        let mut other = BytesMut::new();
        let _ = encode_command(other_protocol(protocol), &cmd, &mut other);
    }
}

/// Decodes `data` as a reply frame and checks the re-encoding round trip.
pub fn check_replies(protocol: Protocol, data: &[u8]) {
    let mut decoded = Vec::new();
    for res in decode_replies(protocol, Bytes::copy_from_slice(data)) {
        match res {
            Ok(reply) => decoded.push(reply),
            Err(_) => break,
        }
    }
    for reply in decoded {
        let mut out = BytesMut::new();
        encode_reply(protocol, &reply, &mut out)
            .expect("a decoded reply re-encodes in its own protocol");
        let again: Vec<proto::Reply> = decode_replies(protocol, out.freeze())
            .collect::<Result<_, _>>()
            .expect("a re-encoded reply decodes");
        assert_eq!(again, [reply.clone()]);
        let mut other = BytesMut::new();
        let _ = encode_reply(other_protocol(protocol), &reply, &mut other);
    }
}

fn other_protocol(protocol: Protocol) -> Protocol {
    match protocol {
        Protocol::Json => Protocol::Protobuf,
        Protocol::Protobuf => Protocol::Json,
    }
}

/// Decodes `data` as a `POST /emulation` body in both protocols; a decoded request
/// re-encodes to one that decodes the same, and its commands are decoded too.
pub fn check_emulation_request(data: &[u8]) {
    for protocol in [Protocol::Json, Protocol::Protobuf] {
        let Ok(req) = gyre_protocol::decode_emulation_request(protocol, Bytes::copy_from_slice(data))
        else {
            continue;
        };
        let mut out = BytesMut::new();
        if gyre_protocol::encode_emulation_request(protocol, &req, &mut out).is_ok() {
            let again = gyre_protocol::decode_emulation_request(protocol, out.freeze())
                .expect("a re-encoded emulation request decodes");
            assert_eq!(again, req);
        }
        check_commands(protocol, &req.data);
    }
    if let Ok(query) = std::str::from_utf8(data) {
        let _ = gyre::__fuzz::sse_connect_param(query);
    }
}
