//! Splitting inbound frames into protocol messages and reading bench payloads.
//!
//! A server may coalesce any number of replies and pushes into one WebSocket frame
//! (JSON: objects joined by `\n`; Protobuf: varint-length-delimited records), so every
//! counter in this tool goes through [`split`] and counts each record exactly once.

use std::sync::LazyLock;

use bytes::Bytes;
use gyre_protocol::{Protocol, proto};
use memchr::memmem;

/// One message of a frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// The record as it stands in the frame (Protobuf: with its varint length prefix),
    /// ready for `gyre_protocol::decode_replies`.
    pub raw: Bytes,
    /// The encoded message alone.
    pub body: Bytes,
}

/// A frame that cannot be split.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SplitError {
    /// A Protobuf varint prefix runs past the end or over 10 bytes.
    BadVarint,
    /// A Protobuf record is longer than what is left of the frame.
    Truncated,
    /// A JSON frame holds an empty line (`\n\n`, or a leading `\n`).
    EmptyLine,
}

impl std::fmt::Display for SplitError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SplitError::BadVarint => "bad varint length prefix",
            SplitError::Truncated => "record longer than its frame",
            SplitError::EmptyLine => "empty line in JSON frame",
        })
    }
}

impl std::error::Error for SplitError {}

/// Iterates over the records of one frame. Ends after the first error.
pub fn split(protocol: Protocol, frame: Bytes) -> Split {
    Split {
        protocol,
        rest: frame,
        done: false,
    }
}

/// Iterator returned by [`split`].
#[derive(Debug)]
pub struct Split {
    protocol: Protocol,
    rest: Bytes,
    done: bool,
}

impl Iterator for Split {
    type Item = Result<Record, SplitError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done || self.rest.is_empty() {
            return None;
        }
        let res = match self.protocol {
            Protocol::Json => self.next_json(),
            Protocol::Protobuf => self.next_protobuf(),
        };
        if res.is_err() {
            self.done = true;
        }
        Some(res)
    }
}

impl Split {
    fn next_json(&mut self) -> Result<Record, SplitError> {
        let line = match memchr::memchr(b'\n', &self.rest) {
            Some(i) => {
                let line = self.rest.split_to(i);
                let _newline = self.rest.split_to(1);
                line
            }
            None => std::mem::take(&mut self.rest),
        };
        if line.is_empty() {
            return Err(SplitError::EmptyLine);
        }
        Ok(Record {
            raw: line.clone(),
            body: line,
        })
    }

    fn next_protobuf(&mut self) -> Result<Record, SplitError> {
        let (len, prefix) = read_varint(&self.rest)?;
        let total = prefix
            .checked_add(usize::try_from(len).map_err(|_| SplitError::Truncated)?)
            .ok_or(SplitError::Truncated)?;
        if total > self.rest.len() {
            return Err(SplitError::Truncated);
        }
        let raw = self.rest.split_to(total);
        let body = raw.slice(prefix..);
        Ok(Record { raw, body })
    }
}

/// Reads an unsigned LEB128 varint; returns the value and its length in bytes.
pub fn read_varint(buf: &[u8]) -> Result<(u64, usize), SplitError> {
    let mut value = 0u64;
    for (i, &b) in buf.iter().enumerate().take(10) {
        value |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Ok((value, i + 1));
        }
    }
    Err(SplitError::BadVarint)
}

/// The bench payload: a JSON object `{"s":SEQ,"t":SEND_NS,"p":"xxx…"}` padded with `x`
/// to the requested size (never shorter than the object without padding).
pub fn payload(seq: u64, send_ns: u64, size: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(size.max(48));
    out.extend_from_slice(b"{\"s\":");
    let mut num = itoa::Buffer::new();
    out.extend_from_slice(num.format(seq).as_bytes());
    out.extend_from_slice(b",\"t\":");
    out.extend_from_slice(num.format(send_ns).as_bytes());
    out.extend_from_slice(b",\"p\":\"");
    let pad = size.saturating_sub(out.len() + 2);
    out.resize(out.len() + pad, b'x');
    out.extend_from_slice(b"\"}");
    out
}

const MARKER: &[u8] = b"{\"s\":";

// Built once: building a searcher costs more than one search of a small message.
static MARKER_FINDER: LazyLock<memmem::Finder<'static>> =
    LazyLock::new(|| memmem::Finder::new(MARKER));
static PUB_FINDER: LazyLock<memmem::Finder<'static>> =
    LazyLock::new(|| memmem::Finder::new(b"\"pub\":{"));

/// Finds a bench payload inside an encoded message and returns `(seq, send_ns)`.
///
/// The payload is JSON and both protocols carry it verbatim (JSON embeds it raw,
/// Protobuf as the `data` bytes), so one scan serves both.
pub fn find_payload(msg: &[u8]) -> Option<(u64, u64)> {
    let start = MARKER_FINDER.find(msg)? + MARKER.len();
    payload_fields(&msg[start..])
}

/// `SEQ,"t":SEND_NS` at the start of `after_marker`.
fn payload_fields(after_marker: &[u8]) -> Option<(u64, u64)> {
    let (seq, used) = parse_u64(after_marker)?;
    let rest = after_marker[used..].strip_prefix(b",\"t\":")?;
    let (ts, _) = parse_u64(rest)?;
    Some((seq, ts))
}

fn parse_u64(b: &[u8]) -> Option<(u64, usize)> {
    let mut v = 0u64;
    let mut n = 0;
    for &c in b.iter().take(20) {
        if !c.is_ascii_digit() {
            break;
        }
        v = v.checked_mul(10)?.checked_add(u64::from(c - b'0'))?;
        n += 1;
    }
    (n > 0).then_some((v, n))
}

/// What one record of a server frame is, for the bench client.
#[derive(Debug, Clone, PartialEq)]
pub enum Inbound {
    /// A publication carrying a bench payload.
    Pub {
        /// Sequence number of the message.
        seq: u64,
        /// Send time, Unix nanoseconds.
        send_ns: u64,
    },
    /// A publication without a bench payload (someone else's traffic).
    ForeignPub,
    /// A server ping; the client must answer with a pong.
    Ping,
    /// A reply to a command: its id and the error, if any.
    Reply {
        /// Command id.
        id: u32,
        /// `(code, message)` of an error reply.
        error: Option<(u32, String)>,
    },
    /// A disconnect push: `(code, reason)`.
    Disconnect(u32, String),
    /// Any other push (join, leave, unsubscribe, message, …).
    OtherPush,
}

/// Classifies every record of `frame` in order, calling `f` with each. The same answers
/// as [`split`] + [`classify`], cheaper for JSON publications (the tool's hot path at
/// millions of deliveries a second): they are recognised on the frame's bytes without
/// cutting a `Bytes` (two reference-count updates) per record, and the payload is looked
/// for right where the server's encoding puts it.
pub fn scan(
    protocol: Protocol,
    frame: &Bytes,
    mut f: impl FnMut(Inbound),
) -> Result<(), ScanError> {
    if protocol != Protocol::Json {
        for rec in split(protocol, frame.clone()) {
            f(classify(protocol, &rec?)?);
        }
        return Ok(());
    }
    let mut start = 0;
    while start < frame.len() {
        let end = memchr::memchr(b'\n', &frame[start..]).map_or(frame.len(), |i| start + i);
        let line = &frame[start..end];
        if line.is_empty() {
            return Err(SplitError::EmptyLine.into());
        }
        match json_publication(line) {
            Some((seq, send_ns)) => f(Inbound::Pub { seq, send_ns }),
            None => {
                let record = frame.slice(start..end);
                f(classify(
                    protocol,
                    &Record {
                        raw: record.clone(),
                        body: record,
                    },
                )?);
            }
        }
        start = end + 1;
    }
    Ok(())
}

/// A frame [`scan`] could not read.
#[derive(Debug)]
pub enum ScanError {
    /// Not splittable into records.
    Split(SplitError),
    /// A record that does not decode.
    Decode(gyre_protocol::DecodeError),
}

impl From<SplitError> for ScanError {
    fn from(e: SplitError) -> Self {
        ScanError::Split(e)
    }
}

impl From<gyre_protocol::DecodeError> for ScanError {
    fn from(e: gyre_protocol::DecodeError) -> Self {
        ScanError::Decode(e)
    }
}

impl std::fmt::Display for ScanError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ScanError::Split(e) => e.fmt(f),
            ScanError::Decode(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for ScanError {}

/// `(seq, send_ns)` of a JSON publication push carrying a bench payload. Servers encode
/// it as `{"push":{"channel":"…","pub":{"data":{"s":…`: the channel name ends at the
/// first quote (bench channels have no escapes), the payload starts right after. Any
/// other layout goes through the general search.
fn json_publication(line: &[u8]) -> Option<(u64, u64)> {
    let rest = line.strip_prefix(b"{\"push\":{\"channel\":\"")?;
    let quote = memchr::memchr(b'"', rest)?;
    if let Some(publication) = rest[quote..].strip_prefix(b"\",\"pub\":{") {
        if let Some(found) = publication
            .strip_prefix(b"\"data\":")
            .and_then(|data| data.strip_prefix(MARKER))
            .and_then(payload_fields)
        {
            return Some(found);
        }
        return find_payload(publication);
    }
    PUB_FINDER.find(line)?;
    find_payload(line)
}

/// Classifies one record. JSON publications take a fast path (no full decode): the
/// server's push encoding is checked by its prefix and the payload by [`find_payload`];
/// everything else goes through `gyre_protocol::decode_replies`.
pub fn classify(
    protocol: Protocol,
    record: &Record,
) -> Result<Inbound, gyre_protocol::DecodeError> {
    if protocol == Protocol::Json {
        if record.body.starts_with(b"{\"push\":{\"channel\":")
            && PUB_FINDER.find(&record.body).is_some()
            && let Some((seq, send_ns)) = find_payload(&record.body)
        {
            return Ok(Inbound::Pub { seq, send_ns });
        }
        if &record.body[..] == b"{}" {
            return Ok(Inbound::Ping);
        }
    }
    let reply = gyre_protocol::decode_replies(protocol, record.raw.clone())
        .next()
        .unwrap_or(Err(gyre_protocol::DecodeError::Empty))?;
    Ok(classify_reply(reply))
}

fn classify_reply(reply: proto::Reply) -> Inbound {
    if reply.id > 0 {
        return Inbound::Reply {
            id: reply.id,
            error: reply.error.map(|e| (e.code, e.message)),
        };
    }
    let Some(push) = reply.push else {
        return Inbound::Ping;
    };
    if let Some(publication) = push.r#pub {
        return match find_payload(&publication.data) {
            Some((seq, send_ns)) => Inbound::Pub { seq, send_ns },
            None => Inbound::ForeignPub,
        };
    }
    if let Some(d) = push.disconnect {
        return Inbound::Disconnect(d.code, d.reason);
    }
    Inbound::OtherPush
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BytesMut;
    use gyre_protocol::{encode_push, encode_reply};

    fn push(channel: &str, data: Vec<u8>) -> proto::Push {
        proto::Push {
            channel: channel.into(),
            r#pub: Some(proto::Publication {
                data: data.into(),
                offset: 7,
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    /// A frame as a server writes it: `n` publications interleaved with a reply and a
    /// ping, joined by the protocol's separator.
    fn server_frame(protocol: Protocol, n: u64) -> Bytes {
        let mut out = BytesMut::new();
        let mut first = true;
        let mut sep = |out: &mut BytesMut| {
            if !std::mem::take(&mut first) {
                out.extend_from_slice(protocol.frame_separator());
            }
        };
        for seq in 0..n {
            sep(&mut out);
            encode_push(
                protocol,
                &push("ch", payload(seq, 1_000 + seq, 64)),
                &mut out,
            )
            .unwrap();
            if seq == 2 {
                sep(&mut out);
                let reply = proto::Reply {
                    id: 9,
                    subscribe: Some(proto::SubscribeResult::default()),
                    ..Default::default()
                };
                encode_reply(protocol, &reply, &mut out).unwrap();
                sep(&mut out);
                encode_reply(protocol, &proto::Reply::default(), &mut out).unwrap();
            }
        }
        out.freeze()
    }

    fn count(protocol: Protocol, frame: Bytes) -> (Vec<u64>, usize, usize) {
        let mut seqs = Vec::new();
        let (mut replies, mut pings) = (0, 0);
        for rec in split(protocol, frame) {
            match classify(protocol, &rec.unwrap()).unwrap() {
                Inbound::Pub { seq, send_ns } => {
                    assert_eq!(send_ns, 1_000 + seq);
                    seqs.push(seq);
                }
                Inbound::Reply { id: 9, error: None } => replies += 1,
                Inbound::Ping => pings += 1,
                other => panic!("unexpected {other:?}"),
            }
        }
        (seqs, replies, pings)
    }

    #[test]
    fn json_multi_line_frame_counts_each_message_once() {
        let frame = server_frame(Protocol::Json, 50);
        assert_eq!(frame.iter().filter(|&&b| b == b'\n').count(), 51);
        let (seqs, replies, pings) = count(Protocol::Json, frame);
        assert_eq!(seqs, (0..50).collect::<Vec<_>>());
        assert_eq!((replies, pings), (1, 1));
    }

    #[test]
    fn protobuf_multi_record_frame_counts_each_message_once() {
        let frame = server_frame(Protocol::Protobuf, 50);
        let (seqs, replies, pings) = count(Protocol::Protobuf, frame);
        assert_eq!(seqs, (0..50).collect::<Vec<_>>());
        assert_eq!((replies, pings), (1, 1));
    }

    #[test]
    fn single_message_frames() {
        for protocol in [Protocol::Json, Protocol::Protobuf] {
            let (seqs, _, _) = count(protocol, server_frame(protocol, 1));
            assert_eq!(seqs, [0]);
        }
        // The empty Protobuf reply (a ping) is the single byte 0x00.
        let recs: Vec<_> = split(Protocol::Protobuf, Bytes::from_static(&[0, 0])).collect();
        assert_eq!(recs.len(), 2);
        for rec in recs {
            assert_eq!(
                classify(Protocol::Protobuf, &rec.unwrap()),
                Ok(Inbound::Ping)
            );
        }
    }

    #[test]
    fn large_protobuf_records_use_multi_byte_prefixes() {
        let mut out = BytesMut::new();
        for seq in 0..3 {
            encode_push(
                Protocol::Protobuf,
                &push("c", payload(seq, 5, 4000)),
                &mut out,
            )
            .unwrap();
        }
        let recs: Vec<_> = split(Protocol::Protobuf, out.freeze())
            .map(Result::unwrap)
            .collect();
        assert_eq!(recs.len(), 3);
        assert!(recs.iter().all(|r| r.raw.len() - r.body.len() == 2));
    }

    #[test]
    fn broken_frames_are_errors_not_counts() {
        let mut it = split(Protocol::Json, Bytes::from_static(b"{}\n\n{}"));
        assert!(it.next().unwrap().is_ok());
        assert_eq!(it.next(), Some(Err(SplitError::EmptyLine)));
        assert_eq!(it.next(), None);

        let mut it = split(Protocol::Protobuf, Bytes::from_static(&[0x05, 1, 2]));
        assert_eq!(it.next(), Some(Err(SplitError::Truncated)));
        assert_eq!(it.next(), None);

        let mut it = split(Protocol::Protobuf, Bytes::from_static(&[0xff, 0xff]));
        assert_eq!(it.next(), Some(Err(SplitError::BadVarint)));
    }

    #[test]
    fn json_trailing_newline_adds_no_message() {
        let recs: Vec<_> = split(Protocol::Json, Bytes::from_static(b"{}\n{}\n")).collect();
        assert_eq!(recs.len(), 2);
    }

    #[test]
    fn payload_has_the_requested_size_and_round_trips() {
        for size in [1, 16, 48, 128, 1000] {
            let p = payload(123, 1_700_000_000_123_456_789, size);
            assert_eq!(p.len(), size.max(p.len()));
            if size >= 64 {
                assert_eq!(p.len(), size);
            }
            let v: serde_json::Value = serde_json::from_slice(&p).unwrap();
            assert_eq!(v["s"], 123);
            assert_eq!(find_payload(&p), Some((123, 1_700_000_000_123_456_789)));
        }
        assert_eq!(find_payload(b"{\"text\":\"hi\"}"), None);
    }

    #[test]
    fn json_fast_path_agrees_with_full_decode() {
        let mut out = BytesMut::new();
        encode_push(Protocol::Json, &push("a:b", payload(42, 99, 128)), &mut out).unwrap();
        let rec = split(Protocol::Json, out.freeze()).next().unwrap().unwrap();
        let fast = classify(Protocol::Json, &rec).unwrap();
        let full = classify_reply(
            gyre_protocol::decode_replies(Protocol::Json, rec.raw.clone())
                .next()
                .unwrap()
                .unwrap(),
        );
        assert_eq!(fast, full);
        assert_eq!(
            fast,
            Inbound::Pub {
                seq: 42,
                send_ns: 99
            }
        );
    }

    fn split_and_classify(protocol: Protocol, frame: Bytes) -> Vec<Inbound> {
        split(protocol, frame)
            .map(|r| classify(protocol, &r.unwrap()).unwrap())
            .collect()
    }

    #[test]
    fn scan_reads_frames_as_split_and_classify_do() {
        let foreign = push("c", b"{\"text\":\"hi\"}".to_vec());
        for protocol in [Protocol::Json, Protocol::Protobuf] {
            let mut frame = BytesMut::from(&server_frame(protocol, 6)[..]);
            frame.extend_from_slice(protocol.frame_separator());
            encode_push(protocol, &foreign, &mut frame).unwrap();
            let frame = frame.freeze();
            let mut scanned = Vec::new();
            scan(protocol, &frame, |i| scanned.push(i)).unwrap();
            let expected = split_and_classify(protocol, frame);
            assert_eq!(scanned, expected);
            assert_eq!(
                scanned
                    .iter()
                    .filter(|i| matches!(i, Inbound::Pub { .. }))
                    .count(),
                6
            );
            assert_eq!(scanned.last(), Some(&Inbound::ForeignPub));
        }
        // Keys in another order than Gyre's encoder writes them: found by the search.
        let reordered = Bytes::from(format!(
            "{{\"push\":{{\"channel\":\"x\",\"pub\":{{\"offset\":3,\"data\":{}}}}}}}",
            String::from_utf8(payload(5, 77, 64)).unwrap()
        ));
        let mut scanned = Vec::new();
        scan(Protocol::Json, &reordered, |i| scanned.push(i)).unwrap();
        assert_eq!(
            scanned,
            [Inbound::Pub {
                seq: 5,
                send_ns: 77
            }]
        );
        assert_eq!(
            scanned,
            split_and_classify(Protocol::Json, reordered.clone())
        );
        // Broken frames fail as they do in `split`.
        let empty_line = Bytes::from_static(b"{}\n\n{}");
        assert!(matches!(
            scan(Protocol::Json, &empty_line, |_| {}),
            Err(ScanError::Split(SplitError::EmptyLine))
        ));
        assert!(matches!(
            scan(Protocol::Json, &Bytes::from_static(b"{\"id\":"), |_| {}),
            Err(ScanError::Decode(_))
        ));
    }

    #[test]
    fn other_traffic_is_classified() {
        let foreign = push("c", b"{\"text\":\"hi\"}".to_vec());
        let disconnect = proto::Push {
            disconnect: Some(proto::Disconnect {
                code: 3008,
                reason: "slow".into(),
                ..Default::default()
            }),
            ..Default::default()
        };
        let error = proto::Reply {
            id: 2,
            error: Some(proto::Error {
                code: 103,
                message: "permission denied".into(),
                ..Default::default()
            }),
            ..Default::default()
        };
        for protocol in [Protocol::Json, Protocol::Protobuf] {
            let mut out = BytesMut::new();
            encode_push(protocol, &foreign, &mut out).unwrap();
            out.extend_from_slice(protocol.frame_separator());
            encode_push(protocol, &disconnect, &mut out).unwrap();
            out.extend_from_slice(protocol.frame_separator());
            encode_reply(protocol, &error, &mut out).unwrap();
            let got: Vec<_> = split(protocol, out.freeze())
                .map(|r| classify(protocol, &r.unwrap()).unwrap())
                .collect();
            assert_eq!(
                got,
                [
                    Inbound::ForeignPub,
                    Inbound::Disconnect(3008, "slow".into()),
                    Inbound::Reply {
                        id: 2,
                        error: Some((103, "permission denied".into()))
                    }
                ]
            );
        }
    }
}
