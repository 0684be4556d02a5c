//! PUB/SUB payloads of `<p>.client.<channel>`, byte-compatible with upstream centrifuge:
//!
//! * `<protobuf Publication>` — a publication without history (offset 0, no epoch);
//! * `__p1:<offset>:<epoch>__<protobuf Publication>` — a publication appended to history;
//! * `__d1:<offset>:<epoch>:<prev_len>:<prev>:<len>:<payload>` — the same, published with
//!   delta on, carrying the previous publication so receivers can compute a delta;
//! * `__j__<protobuf ClientInfo>` / `__l__<protobuf ClientInfo>` — join / leave.
//!
//! Parsing is pure (no IO) so it is unit-tested byte for byte.

use bytes::Bytes;
use gyre::{ClientInfo, Publication, StreamPosition};
use gyre_protocol::proto;
use prost::Message;

/// Why a PUB/SUB payload could not be understood.
#[derive(Debug, thiserror::Error)]
pub(crate) enum PayloadError {
    #[error("malformed position header")]
    Header,
    #[error("unknown payload type {0:?}")]
    UnknownType(char),
    #[error("protobuf: {0}")]
    Decode(#[from] prost::DecodeError),
}

/// A decoded PUB/SUB message of a client channel.
// Each value is handed to the handler right after decoding and never stored, so the size
// difference between variants costs nothing worth a Box.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, PartialEq)]
pub(crate) enum Push {
    Publication {
        publication: Publication,
        position: StreamPosition,
        use_delta: bool,
        prev: Option<Publication>,
    },
    Join(ClientInfo),
    Leave(ClientInfo),
}

const SEP: &[u8] = b"__";

/// Splits `digits:` off the front of `s`.
fn take_number(s: &[u8]) -> Option<(u64, &[u8])> {
    let colon = s.iter().position(|&b| b == b':')?;
    let n = std::str::from_utf8(&s[..colon]).ok()?.parse().ok()?;
    Some((n, &s[colon + 1..]))
}

/// Splits `<epoch>:` off the front of `s` (epochs are letters, never a colon).
fn take_epoch(s: &[u8]) -> Option<(String, &[u8])> {
    let colon = s.iter().position(|&b| b == b':')?;
    let epoch = std::str::from_utf8(&s[..colon]).ok()?.to_owned();
    Some((epoch, &s[colon + 1..]))
}

/// Splits `<len>:<bytes of len>` off the front of `s`.
fn take_sized(s: &[u8]) -> Option<(&[u8], &[u8])> {
    let (len, rest) = take_number(s)?;
    let len = usize::try_from(len).ok()?;
    (rest.len() >= len).then(|| rest.split_at(len))
}

pub(crate) fn parse(data: &Bytes) -> Result<Push, PayloadError> {
    if !data.starts_with(SEP) {
        // No header: a publication of a channel without history. Delta travels in the
        // protobuf `delta` flag in this case (upstream), and is not forwarded as such.
        let mut p = proto::Publication::decode(data.clone())?;
        let use_delta = std::mem::take(&mut p.delta);
        let epoch = std::mem::take(&mut p.epoch);
        let position = StreamPosition::new(p.offset, epoch);
        return Ok(Push::Publication {
            publication: publication_from_proto(p),
            position,
            use_delta,
            prev: None,
        });
    }
    let content = &data[SEP.len()..];
    match content.first().copied() {
        Some(kind @ (b'j' | b'l')) => {
            let rest = content
                .get(1..)
                .and_then(|r| r.strip_prefix(SEP))
                .ok_or(PayloadError::Header)?;
            let offset = data.len() - rest.len();
            let info = info_from_proto(proto::ClientInfo::decode(data.slice(offset..))?);
            Ok(if kind == b'j' {
                Push::Join(info)
            } else {
                Push::Leave(info)
            })
        }
        Some(b'p') => {
            let header = content.strip_prefix(b"p1:").ok_or(PayloadError::Header)?;
            let (offset, rest) = take_number(header).ok_or(PayloadError::Header)?;
            let end = rest
                .windows(SEP.len())
                .position(|w| w == SEP)
                .ok_or(PayloadError::Header)?;
            let epoch = std::str::from_utf8(&rest[..end])
                .map_err(|_| PayloadError::Header)?
                .to_owned();
            let body_start = data.len() - rest.len() + end + SEP.len();
            let mut p = proto::Publication::decode(data.slice(body_start..))?;
            if p.offset == 0 {
                p.offset = offset;
            }
            Ok(Push::Publication {
                publication: publication_from_proto(p),
                position: StreamPosition::new(offset, epoch),
                use_delta: false,
                prev: None,
            })
        }
        Some(b'd') => {
            let header = content.strip_prefix(b"d1:").ok_or(PayloadError::Header)?;
            let (offset, rest) = take_number(header).ok_or(PayloadError::Header)?;
            let (epoch, rest) = take_epoch(rest).ok_or(PayloadError::Header)?;
            let (prev, rest) = take_sized(rest).ok_or(PayloadError::Header)?;
            let rest = rest.strip_prefix(b":").ok_or(PayloadError::Header)?;
            let (body, _) = take_sized(rest).ok_or(PayloadError::Header)?;
            let mut p = proto::Publication::decode(body)?;
            if p.offset == 0 {
                p.offset = offset;
            }
            let prev = if prev.is_empty() {
                None
            } else {
                Some(publication_from_proto(proto::Publication::decode(prev)?))
            };
            Ok(Push::Publication {
                publication: publication_from_proto(p),
                position: StreamPosition::new(offset, epoch),
                use_delta: true,
                prev,
            })
        }
        Some(other) => Err(PayloadError::UnknownType(char::from(other))),
        None => Err(PayloadError::Header),
    }
}

/// `__j__<info>` or `__l__<info>`.
pub(crate) fn encode_join_leave(join: bool, info: &ClientInfo) -> Vec<u8> {
    let body = info_to_proto(info);
    let mut out = Vec::with_capacity(5 + body.encoded_len());
    out.extend_from_slice(if join { b"__j__" } else { b"__l__" });
    // Writing into a Vec cannot run out of space.
    body.encode(&mut out).expect("Vec grows as needed");
    out
}

/// `__p1:<offset>:<epoch>__<publication>`: what the publish script sends. Built here only to
/// check the script against it in tests and to document the format in one place.
#[cfg(test)]
pub(crate) fn encode_positioned(offset: u64, epoch: &str, publication: &[u8]) -> Vec<u8> {
    let mut out = format!("__p1:{offset}:{epoch}__").into_bytes();
    out.extend_from_slice(publication);
    out
}

pub(crate) fn info_to_proto(info: &ClientInfo) -> proto::ClientInfo {
    proto::ClientInfo {
        user: info.user.clone(),
        client: info.client.clone(),
        conn_info: info.conn_info.clone(),
        chan_info: info.chan_info.clone(),
    }
}

pub(crate) fn info_from_proto(p: proto::ClientInfo) -> ClientInfo {
    let mut info = ClientInfo::new(p.user, p.client);
    info.conn_info = p.conn_info;
    info.chan_info = p.chan_info;
    info
}

pub(crate) fn publication_from_proto(p: proto::Publication) -> Publication {
    let mut publication = Publication::new(p.data);
    publication.offset = p.offset;
    publication.info = p.info.map(info_from_proto);
    publication.tags = p.tags;
    publication.time = p.time;
    publication.key = p.key;
    publication.removed = p.removed;
    publication
}

/// Splits a map state value or map PUB/SUB message `<offset>:<epoch>:<rest>`.
pub(crate) fn split_positioned(data: &[u8]) -> Option<(u64, String, &[u8])> {
    let (offset, rest) = take_number(data)?;
    let (epoch, rest) = take_epoch(rest)?;
    Some((offset, epoch, rest))
}

/// Decodes a map state hash value `<offset>:<epoch>:<protobuf Publication>` into the
/// entry's publication (offset set from the prefix).
pub(crate) fn parse_map_state_value(data: &[u8]) -> Result<Publication, PayloadError> {
    let (offset, _, body) = split_positioned(data).ok_or(PayloadError::Header)?;
    let mut p = publication_from_proto(proto::Publication::decode(body)?);
    p.offset = offset;
    Ok(p)
}

/// Parses a PUB/SUB message of a map channel, as upstream's map broker sends them:
///
/// * `<offset>:<epoch>:<protobuf Publication>` (offset 0 and an empty epoch for a keyless
///   ephemeral broadcast);
/// * `d:<offset>:<epoch>:<prev_len>:<prev state value>:<len>:<protobuf Publication>`, a
///   delta publish carrying the key's previous state value (`<off>:<epoch>:<proto>`).
///
/// The publication's offset is the header's when the protobuf has none.
pub(crate) fn parse_map(data: &Bytes) -> Result<Push, PayloadError> {
    let (offset, epoch, body, use_delta, prev) = if let Some(rest) = data.strip_prefix(b"d:") {
        let (offset, rest) = take_number(rest).ok_or(PayloadError::Header)?;
        let (epoch, rest) = take_epoch(rest).ok_or(PayloadError::Header)?;
        let (prev, rest) = take_sized(rest).ok_or(PayloadError::Header)?;
        let rest = rest.strip_prefix(b":").ok_or(PayloadError::Header)?;
        let (body, _) = take_sized(rest).ok_or(PayloadError::Header)?;
        // A previous value that does not parse only costs the delta base.
        let prev = (!prev.is_empty())
            .then(|| parse_map_state_value(prev).ok())
            .flatten();
        (offset, epoch, body, true, prev)
    } else {
        let (offset, epoch, body) = split_positioned(data).ok_or(PayloadError::Header)?;
        (offset, epoch, body, false, None)
    };
    let mut p = proto::Publication::decode(body)?;
    if p.offset == 0 {
        p.offset = offset;
    }
    // Upstream sends the delta flag inside a keyless broadcast.
    let use_delta = use_delta || std::mem::take(&mut p.delta);
    Ok(Push::Publication {
        publication: publication_from_proto(p),
        position: StreamPosition::new(offset, epoch),
        use_delta,
        prev,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> proto::Publication {
        proto::Publication {
            data: Bytes::from_static(b"{\"x\":1}"),
            info: Some(proto::ClientInfo {
                user: "u".into(),
                client: "c".into(),
                ..Default::default()
            }),
            time: 1_700_000_000_000,
            ..Default::default()
        }
    }

    #[test]
    fn plain_publication_has_no_position() {
        let mut p = sample();
        p.delta = true;
        let Push::Publication {
            publication,
            position,
            use_delta,
            prev,
        } = parse(&Bytes::from(p.encode_to_vec())).unwrap()
        else {
            panic!("not a publication")
        };
        assert_eq!(position, StreamPosition::default());
        assert!(use_delta);
        assert!(prev.is_none());
        assert_eq!(&publication.data[..], b"{\"x\":1}");
        assert_eq!(publication.info, Some(ClientInfo::new("u", "c")));
    }

    #[test]
    fn positioned_publication() {
        let raw = encode_positioned(42, "ABCDefgh", &sample().encode_to_vec());
        assert!(raw.starts_with(b"__p1:42:ABCDefgh__"));
        let Push::Publication {
            publication,
            position,
            use_delta,
            ..
        } = parse(&Bytes::from(raw)).unwrap()
        else {
            panic!("not a publication")
        };
        assert_eq!(position, StreamPosition::new(42, "ABCDefgh"));
        assert_eq!(publication.offset, 42);
        assert!(!use_delta);
    }

    #[test]
    fn delta_publication_carries_previous() {
        let prev = proto::Publication {
            data: Bytes::from_static(b"old"),
            ..Default::default()
        }
        .encode_to_vec();
        let cur = sample().encode_to_vec();
        let mut raw = format!("__d1:7:EPOCHxyz:{}:", prev.len()).into_bytes();
        raw.extend_from_slice(&prev);
        raw.extend_from_slice(format!(":{}:", cur.len()).as_bytes());
        raw.extend_from_slice(&cur);
        let Push::Publication {
            publication,
            position,
            use_delta,
            prev,
        } = parse(&Bytes::from(raw)).unwrap()
        else {
            panic!("not a publication")
        };
        assert_eq!(position, StreamPosition::new(7, "EPOCHxyz"));
        assert_eq!(publication.offset, 7);
        assert!(use_delta);
        assert_eq!(prev.map(|p| p.data), Some(Bytes::from_static(b"old")));

        // First publication of a stream: empty previous payload.
        let mut raw = b"__d1:1:E:0::".to_vec();
        raw.extend_from_slice(format!("{}:", cur.len()).as_bytes());
        raw.extend_from_slice(&cur);
        let Push::Publication { prev, .. } = parse(&Bytes::from(raw)).unwrap() else {
            panic!("not a publication")
        };
        assert!(prev.is_none());
    }

    #[test]
    fn join_and_leave() {
        let mut info = ClientInfo::new("u1", "c1");
        info.conn_info = Bytes::from_static(b"{}");
        let join = encode_join_leave(true, &info);
        assert!(join.starts_with(b"__j__"));
        assert_eq!(parse(&Bytes::from(join)).unwrap(), Push::Join(info.clone()));
        let leave = encode_join_leave(false, &info);
        assert!(leave.starts_with(b"__l__"));
        assert_eq!(parse(&Bytes::from(leave)).unwrap(), Push::Leave(info));
    }

    #[test]
    fn map_payloads() {
        let mut body = sample();
        body.key = "k".into();
        let raw = body.encode_to_vec();
        let mut plain = b"7:abc:".to_vec();
        plain.extend_from_slice(&raw);
        let Push::Publication {
            publication,
            position,
            use_delta,
            prev,
        } = parse_map(&Bytes::from(plain)).unwrap()
        else {
            panic!("a publication")
        };
        assert_eq!(position, StreamPosition::new(7, "abc"));
        assert_eq!((publication.offset, publication.key.as_str()), (7, "k"));
        assert!(!use_delta && prev.is_none());

        let mut prev_value = b"6:abc:".to_vec();
        prev_value.extend_from_slice(&sample().encode_to_vec());
        let mut delta = format!("d:7:abc:{}:", prev_value.len()).into_bytes();
        delta.extend_from_slice(&prev_value);
        delta.extend_from_slice(format!(":{}:", raw.len()).as_bytes());
        delta.extend_from_slice(&raw);
        let Push::Publication {
            use_delta, prev, ..
        } = parse_map(&Bytes::from(delta)).unwrap()
        else {
            panic!("a publication")
        };
        assert!(use_delta);
        let prev = prev.expect("previous value");
        assert_eq!((prev.offset, prev.data), (6, sample().data));

        let mut broadcast = b"0::".to_vec();
        broadcast.extend_from_slice(&raw);
        let Push::Publication { position, .. } = parse_map(&Bytes::from(broadcast)).unwrap() else {
            panic!("a publication")
        };
        assert_eq!(position, StreamPosition::default());
        assert!(parse_map(&Bytes::from_static(b"nonsense")).is_err());
        assert!(parse_map(&Bytes::from_static(b"d:1:e:99:x")).is_err());
    }

    #[test]
    fn malformed_payloads_are_errors() {
        for raw in [
            &b"__"[..],
            b"__x__",
            b"__p1:abc:E__",
            b"__p1:1:E",
            b"__d1:1:E:5:ab",
            b"__j",
        ] {
            assert!(parse(&Bytes::copy_from_slice(raw)).is_err(), "{raw:?}");
        }
    }
}
