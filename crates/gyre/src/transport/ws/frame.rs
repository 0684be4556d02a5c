//! RFC 6455 framing, server side, without I/O.
//!
//! [`Parser`] consumes whatever bytes the socket produced (any split, any size) and yields
//! complete messages. It keeps no read buffer of its own: a partial frame header lives in a
//! 14-byte array, and payload bytes are unmasked straight into the message being assembled,
//! so a connection that is between messages holds no heap memory here at all.
//!
//! The writer side only builds headers ([`FrameHeader`]); payloads stay in their own
//! `Bytes` so the connection can hand header and payloads to one vectored write.
//!
//! Why our own framer and not tungstenite (which the tests, the client SDK and the bench's
//! reference server use): per-connection memory and batched writes.
//! A tungstenite (0.30) socket allocates its read buffer when it is created and copies
//! every outgoing frame, payload included, into its own write buffer; a frame's payload
//! is one contiguous message, so a batch of queued shared `Bytes` would first be
//! concatenated for every subscriber, then copied again. Here an idle
//! connection holds no buffer at all (reads go through a per-thread scratch buffer in
//! `conn.rs`), and one frame is a 2–10 byte header plus everything queued, written from
//! the shared `Bytes` themselves (one vectored write, or one copy into a per-thread buffer
//! for batches up to 64 KiB). BENCHMARKS.md ("Memory per idle connection"):
//! about 3.5 KB per connection against 6.7 KB for the tokio-tungstenite reference; and
//! ("Fan-out throughput") 410 ns of server CPU per delivery against the reference's 535 ns.

use std::collections::VecDeque;

use bytes::{Bytes, BytesMut};

/// Opcodes (RFC 6455 §5.2).
pub(crate) const OP_CONTINUATION: u8 = 0x0;
pub(crate) const OP_TEXT: u8 = 0x1;
pub(crate) const OP_BINARY: u8 = 0x2;
pub(crate) const OP_CLOSE: u8 = 0x8;
pub(crate) const OP_PING: u8 = 0x9;
pub(crate) const OP_PONG: u8 = 0xA;

/// Close codes the server itself sends for framing problems.
pub(crate) const CLOSE_PROTOCOL_ERROR: u16 = 1002;
pub(crate) const CLOSE_INVALID_DATA: u16 = 1007;
pub(crate) const CLOSE_TOO_BIG: u16 = 1009;

/// The longest close reason: a control payload is at most 125 bytes, 2 of them the code.
pub(crate) const MAX_CLOSE_REASON: usize = 123;

/// Never reserve more than this up front on the word of a frame header: the bytes may
/// never come, and with no size limit a header can announce 2^63 bytes.
const MAX_PREALLOC: usize = 64 * 1024;

/// One complete inbound message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Message {
    /// A text message (UTF-8 already validated).
    Text(Bytes),
    /// A binary message.
    Binary(Bytes),
    /// A ping; the payload must be echoed in the pong.
    Ping(Bytes),
    /// A pong (its payload is not needed: we only send empty pings).
    Pong,
    /// The peer starts or answers the closing handshake. `code` is `None` when the frame
    /// had no payload.
    Close {
        /// Status code, already checked to be one a peer may send.
        code: Option<u16>,
        /// Reason text (valid UTF-8, at most 123 bytes).
        reason: String,
    },
}

/// Why the inbound stream is unusable. The connection closes with [`ParseError::close_code`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum ParseError {
    #[error("client frame is not masked")]
    Unmasked,
    #[error("reserved bits set without a negotiated extension")]
    ReservedBits,
    #[error("unknown opcode {0:#x}")]
    BadOpcode(u8),
    #[error("control frame payload longer than 125 bytes")]
    ControlTooLong,
    #[error("fragmented control frame")]
    ControlFragmented,
    #[error("continuation frame without a message to continue")]
    UnexpectedContinuation,
    #[error("new data frame while a fragmented message is open")]
    ExpectedContinuation,
    #[error("64-bit payload length with the most significant bit set")]
    BadLength,
    #[error("close frame with a 1-byte payload")]
    BadClosePayload,
    #[error("close frame with invalid code {0}")]
    BadCloseCode(u16),
    #[error("message exceeds the size limit")]
    TooBig,
    #[error("text message or close reason is not valid UTF-8")]
    InvalidUtf8,
    #[error("compressed bit on a control or continuation frame")]
    CompressedBitMisplaced,
    #[error("compressed message is not valid DEFLATE data")]
    InvalidCompressed,
}

impl ParseError {
    /// The close code RFC 6455 prescribes for this failure.
    pub(crate) fn close_code(self) -> u16 {
        match self {
            ParseError::TooBig => CLOSE_TOO_BIG,
            ParseError::InvalidUtf8 | ParseError::InvalidCompressed => CLOSE_INVALID_DATA,
            _ => CLOSE_PROTOCOL_ERROR,
        }
    }

    /// A short close reason to go with [`ParseError::close_code`].
    pub(crate) fn close_reason(self) -> &'static str {
        match self {
            ParseError::TooBig => "message too big",
            ParseError::InvalidUtf8 => "invalid utf-8",
            ParseError::InvalidCompressed => "invalid compressed data",
            _ => "protocol error",
        }
    }
}

/// Where the parser is inside the current frame.
#[derive(Debug, Clone, Copy)]
enum State {
    /// Collecting the frame header (2 to 14 bytes).
    Header { buf: [u8; 14], have: u8 },
    /// Streaming the payload of a frame whose header was accepted.
    Payload {
        opcode: u8,
        fin: bool,
        mask: [u8; 4],
        /// Position in the 4-byte mask cycle (payload bytes consumed so far, mod 4).
        phase: u8,
        remaining: u64,
    },
    /// A previous error or a close frame ended the stream; further input is ignored.
    Done,
}

/// Incremental server-side frame parser.
#[derive(Debug)]
pub(crate) struct Parser {
    state: State,
    /// Limit on an assembled data message (0 = none).
    limit: usize,
    /// Payload of the data message being assembled (all its fragments so far).
    msg: BytesMut,
    /// Opcode of the open data message (`OP_TEXT`/`OP_BINARY`), or 0 when none is open.
    msg_opcode: u8,
    /// Payload of the control frame being received; allocated only while one is.
    ctrl: Vec<u8>,
    /// permessage-deflate was negotiated: RSV1 marks a compressed message.
    deflate: bool,
    /// The open data message is compressed (RSV1 on its first frame).
    msg_compressed: bool,
    /// Limit on a compressed message once inflated (0 = none).
    inflated_limit: usize,
}

impl Parser {
    /// A parser that refuses data messages longer than `limit` bytes (0 = unlimited).
    pub(crate) fn new(limit: usize) -> Self {
        Parser {
            state: State::Header {
                buf: [0; 14],
                have: 0,
            },
            limit,
            msg: BytesMut::new(),
            msg_opcode: 0,
            ctrl: Vec::new(),
            deflate: false,
            msg_compressed: false,
            inflated_limit: 0,
        }
    }

    /// Accepts compressed messages (RSV1), as negotiated with permessage-deflate; they may
    /// inflate to at most `inflated_limit` bytes (0 = no limit). `limit` still bounds the
    /// bytes on the wire.
    pub(crate) fn with_deflate(mut self, inflated_limit: usize) -> Self {
        self.deflate = true;
        self.inflated_limit = inflated_limit;
        self
    }

    /// Whether the parser holds heap memory for a message that has not completed yet.
    #[cfg(test)]
    pub(crate) fn is_mid_message(&self) -> bool {
        self.msg_opcode != 0 || !matches!(self.state, State::Header { have: 0, .. })
    }

    /// Consumes `input` entirely, appending every message it completes to `out`.
    ///
    /// After an error, or once a close frame was parsed, the parser ignores all further
    /// input (the connection is closing): messages completed before that point are still
    /// in `out`, in order.
    pub(crate) fn feed(
        &mut self,
        mut input: &[u8],
        out: &mut VecDeque<Message>,
    ) -> Result<(), ParseError> {
        while !input.is_empty() {
            match self.state {
                State::Done => return Ok(()),
                State::Header { mut buf, mut have } => {
                    let need = header_len(&buf[..usize::from(have)]);
                    let take = (need - usize::from(have)).min(input.len());
                    buf[usize::from(have)..usize::from(have) + take]
                        .copy_from_slice(&input[..take]);
                    have += take as u8;
                    input = &input[take..];
                    // The first two bytes decide the header's length: check them as soon as
                    // they are here, before buffering anything on their word.
                    if have >= 2
                        && usize::from(have) - take < 2
                        && let Err(e) = self.check_first_bytes(buf[0], buf[1])
                    {
                        self.state = State::Done;
                        return Err(e);
                    }
                    let need = header_len(&buf[..usize::from(have)]);
                    if usize::from(have) < need {
                        self.state = State::Header { buf, have };
                        continue;
                    }
                    if let Err(e) = self.start_payload(&buf[..need], out) {
                        self.state = State::Done;
                        return Err(e);
                    }
                }
                State::Payload {
                    opcode,
                    fin,
                    mask,
                    phase,
                    remaining,
                } => {
                    let take = usize::try_from(remaining)
                        .unwrap_or(usize::MAX)
                        .min(input.len());
                    let chunk = &input[..take];
                    if opcode >= OP_CLOSE {
                        let start = self.ctrl.len();
                        self.ctrl.extend_from_slice(chunk);
                        apply_mask(&mut self.ctrl[start..], mask, phase);
                    } else {
                        let start = self.msg.len();
                        self.msg.extend_from_slice(chunk);
                        apply_mask(&mut self.msg[start..], mask, phase);
                    }
                    input = &input[take..];
                    self.advance_payload(opcode, fin, mask, phase, remaining, take, out)?;
                }
            }
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn advance_payload(
        &mut self,
        opcode: u8,
        fin: bool,
        mask: [u8; 4],
        phase: u8,
        remaining: u64,
        took: usize,
        out: &mut VecDeque<Message>,
    ) -> Result<(), ParseError> {
        let remaining = remaining - took as u64;
        if remaining > 0 {
            self.state = State::Payload {
                opcode,
                fin,
                mask,
                phase: ((usize::from(phase) + took) % 4) as u8,
                remaining,
            };
            return Ok(());
        }
        self.state = State::Header {
            buf: [0; 14],
            have: 0,
        };
        let result = self.complete_frame(opcode, fin, out);
        if result.is_err() {
            self.state = State::Done;
        }
        result
    }

    fn check_first_bytes(&self, b0: u8, b1: u8) -> Result<(), ParseError> {
        // RSV1 is permessage-deflate's, and only on the first frame of a data message.
        let rsv1 = b0 & 0x40 != 0;
        if b0 & 0x30 != 0 || (rsv1 && !self.deflate) {
            return Err(ParseError::ReservedBits);
        }
        let opcode = b0 & 0x0F;
        if rsv1 && !matches!(opcode, OP_TEXT | OP_BINARY) {
            return Err(ParseError::CompressedBitMisplaced);
        }
        let fin = b0 & 0x80 != 0;
        let len7 = b1 & 0x7F;
        match opcode {
            OP_CLOSE | OP_PING | OP_PONG => {
                if !fin {
                    return Err(ParseError::ControlFragmented);
                }
                if len7 > 125 {
                    return Err(ParseError::ControlTooLong);
                }
            }
            OP_CONTINUATION => {
                if self.msg_opcode == 0 {
                    return Err(ParseError::UnexpectedContinuation);
                }
            }
            OP_TEXT | OP_BINARY => {
                if self.msg_opcode != 0 {
                    return Err(ParseError::ExpectedContinuation);
                }
            }
            other => return Err(ParseError::BadOpcode(other)),
        }
        if b1 & 0x80 == 0 {
            return Err(ParseError::Unmasked);
        }
        Ok(())
    }

    /// The header is complete (and its first two bytes were checked): validate the length
    /// and enter the payload state.
    fn start_payload(
        &mut self,
        header: &[u8],
        out: &mut VecDeque<Message>,
    ) -> Result<(), ParseError> {
        let fin = header[0] & 0x80 != 0;
        let opcode = header[0] & 0x0F;
        let (len, mask_at) = match header[1] & 0x7F {
            126 => (u64::from(u16::from_be_bytes([header[2], header[3]])), 4),
            127 => {
                let mut b = [0u8; 8];
                b.copy_from_slice(&header[2..10]);
                let len = u64::from_be_bytes(b);
                if len >> 63 != 0 {
                    return Err(ParseError::BadLength);
                }
                (len, 10)
            }
            n => (u64::from(n), 2),
        };
        let mut mask = [0u8; 4];
        mask.copy_from_slice(&header[mask_at..mask_at + 4]);

        if opcode >= OP_CLOSE {
            // At most 125 bytes (checked with the first two header bytes).
            self.ctrl = Vec::with_capacity(len as usize);
        } else {
            // The declared length is checked before a single payload byte is buffered.
            let total = (self.msg.len() as u64).saturating_add(len);
            if self.limit > 0 && total > self.limit as u64 {
                return Err(ParseError::TooBig);
            }
            if opcode != OP_CONTINUATION {
                self.msg_opcode = opcode;
                self.msg_compressed = header[0] & 0x40 != 0;
            }
            let want = usize::try_from(len).unwrap_or(usize::MAX).min(MAX_PREALLOC);
            self.msg.reserve(want);
        }
        if len == 0 {
            self.state = State::Header {
                buf: [0; 14],
                have: 0,
            };
            return self.complete_frame(opcode, fin, out);
        }
        self.state = State::Payload {
            opcode,
            fin,
            mask,
            phase: 0,
            remaining: len,
        };
        Ok(())
    }

    fn complete_frame(
        &mut self,
        opcode: u8,
        fin: bool,
        out: &mut VecDeque<Message>,
    ) -> Result<(), ParseError> {
        match opcode {
            OP_PING => {
                out.push_back(Message::Ping(Bytes::from(std::mem::take(&mut self.ctrl))));
            }
            OP_PONG => {
                self.ctrl = Vec::new();
                out.push_back(Message::Pong);
            }
            OP_CLOSE => {
                let payload = std::mem::take(&mut self.ctrl);
                let message = parse_close(&payload)?;
                out.push_back(message);
                // Nothing after a close frame is meaningful (RFC 6455 §5.5.1).
                self.state = State::Done;
            }
            _ => {
                if !fin {
                    return Ok(());
                }
                // `take` (not `split`) so the parser keeps no reference to the buffer the
                // message now owns: an idle connection must not pin its last message.
                let mut payload = std::mem::take(&mut self.msg).freeze();
                let kind = std::mem::replace(&mut self.msg_opcode, 0);
                if std::mem::take(&mut self.msg_compressed) {
                    payload =
                        super::deflate::decompress(&payload, self.inflated_limit).map_err(|e| {
                            match e {
                                super::deflate::InflateError::TooBig => ParseError::TooBig,
                                super::deflate::InflateError::Invalid => {
                                    ParseError::InvalidCompressed
                                }
                            }
                        })?;
                }
                if kind == OP_TEXT {
                    if std::str::from_utf8(&payload).is_err() {
                        return Err(ParseError::InvalidUtf8);
                    }
                    out.push_back(Message::Text(payload));
                } else {
                    out.push_back(Message::Binary(payload));
                }
            }
        }
        Ok(())
    }
}

/// Length of the header whose first bytes are `have` (2 when fewer than 2 are known).
fn header_len(have: &[u8]) -> usize {
    if have.len() < 2 {
        return 2;
    }
    let ext = match have[1] & 0x7F {
        126 => 2,
        127 => 8,
        _ => 0,
    };
    // Every accepted client frame carries a 4-byte mask (unmasked ones are refused as soon
    // as the second byte is seen).
    2 + ext + 4
}

fn parse_close(payload: &[u8]) -> Result<Message, ParseError> {
    match payload.len() {
        0 => Ok(Message::Close {
            code: None,
            reason: String::new(),
        }),
        1 => Err(ParseError::BadClosePayload),
        _ => {
            let code = u16::from_be_bytes([payload[0], payload[1]]);
            if !close_code_allowed(code) {
                return Err(ParseError::BadCloseCode(code));
            }
            let reason = std::str::from_utf8(&payload[2..])
                .map_err(|_| ParseError::InvalidUtf8)?
                .to_owned();
            Ok(Message::Close {
                code: Some(code),
                reason,
            })
        }
    }
}

/// Codes a peer may put on the wire: 1004–1006 and 1015 are reserved for reporting,
/// 1016–2999 are reserved for future RFCs, 3000–4999 belong to libraries and applications.
fn close_code_allowed(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999)
}

/// XORs `buf` with the mask, starting `phase` bytes into the mask cycle.
pub(crate) fn apply_mask(buf: &mut [u8], mask: [u8; 4], phase: u8) {
    let mut m = mask;
    m.rotate_left(usize::from(phase) % 4);
    let m8 = u64::from_ne_bytes([m[0], m[1], m[2], m[3], m[0], m[1], m[2], m[3]]);
    let mut chunks = buf.chunks_exact_mut(8);
    for chunk in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(chunk);
        chunk.copy_from_slice(&(u64::from_ne_bytes(w) ^ m8).to_ne_bytes());
    }
    // Chunks of 8 keep the mask phase aligned, so the tail restarts at `m[0]`.
    for (i, b) in chunks.into_remainder().iter_mut().enumerate() {
        *b ^= m[i % 4];
    }
}

/// An unmasked server frame header: 2, 4 or 10 bytes in a small array, written in front of
/// payload slices that stay where they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FrameHeader {
    buf: [u8; 10],
    len: u8,
}

impl FrameHeader {
    /// Header of a final frame whose payload is compressed (RSV1, RFC 7692 §6).
    pub(crate) fn compressed(opcode: u8, payload_len: usize) -> Self {
        let mut h = FrameHeader::new(opcode, payload_len);
        h.buf[0] |= 0x40;
        h
    }

    /// Header of a final (unfragmented) frame with this opcode and payload length.
    pub(crate) fn new(opcode: u8, payload_len: usize) -> Self {
        let mut buf = [0u8; 10];
        buf[0] = 0x80 | (opcode & 0x0F);
        let len = if payload_len < 126 {
            buf[1] = payload_len as u8;
            2
        } else if let Ok(n) = u16::try_from(payload_len) {
            buf[1] = 126;
            buf[2..4].copy_from_slice(&n.to_be_bytes());
            4
        } else {
            buf[1] = 127;
            buf[2..10].copy_from_slice(&(payload_len as u64).to_be_bytes());
            10
        };
        FrameHeader { buf, len }
    }

    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.buf[..usize::from(self.len)]
    }
}

/// A complete control frame (header + payload ≤ 125 bytes), e.g. a pong.
pub(crate) fn control_frame(opcode: u8, payload: &[u8]) -> Bytes {
    let payload = &payload[..payload.len().min(125)];
    let mut frame = Vec::with_capacity(2 + payload.len());
    frame.extend_from_slice(FrameHeader::new(opcode, payload.len()).as_bytes());
    frame.extend_from_slice(payload);
    Bytes::from(frame)
}

/// A complete close frame. `reason` is cut to at most 123 bytes on a char boundary, so the
/// frame stays a valid control frame and the reason stays valid UTF-8.
pub(crate) fn close_frame(code: u16, reason: &str) -> Bytes {
    let reason = truncate_reason(reason);
    let mut payload = Vec::with_capacity(2 + reason.len());
    payload.extend_from_slice(&code.to_be_bytes());
    payload.extend_from_slice(reason.as_bytes());
    control_frame(OP_CLOSE, &payload)
}

/// An empty close frame (used to answer a close that carried no status code).
pub(crate) fn empty_close_frame() -> Bytes {
    control_frame(OP_CLOSE, &[])
}

pub(crate) fn truncate_reason(reason: &str) -> &str {
    if reason.len() <= MAX_CLOSE_REASON {
        return reason;
    }
    let mut end = MAX_CLOSE_REASON;
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    &reason[..end]
}

/// Parses a whole client byte stream at once. This is the entry point for fuzzing: it must
/// never panic, whatever `data` holds.
pub(crate) fn parse_all(data: &[u8], limit: usize) -> (Vec<Message>, Option<ParseError>) {
    parse_with(Parser::new(limit), data)
}

/// [`parse_all`] with permessage-deflate negotiated (fuzz entry point as well).
pub(crate) fn parse_all_deflate(
    data: &[u8],
    limit: usize,
    inflated_limit: usize,
) -> (Vec<Message>, Option<ParseError>) {
    parse_with(Parser::new(limit).with_deflate(inflated_limit), data)
}

fn parse_with(mut parser: Parser, data: &[u8]) -> (Vec<Message>, Option<ParseError>) {
    let mut out = VecDeque::new();
    let err = parser.feed(data, &mut out).err();
    (out.into(), err)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Builds a masked client frame (what a browser sends).
    pub(crate) fn client_frame(first: u8, payload: &[u8], mask: [u8; 4]) -> Vec<u8> {
        let mut f = vec![first];
        let n = payload.len();
        if n < 126 {
            f.push(0x80 | n as u8);
        } else if n <= 0xFFFF {
            f.push(0x80 | 126);
            f.extend_from_slice(&(n as u16).to_be_bytes());
        } else {
            f.push(0x80 | 127);
            f.extend_from_slice(&(n as u64).to_be_bytes());
        }
        f.extend_from_slice(&mask);
        f.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        f
    }

    const M: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

    fn parse(data: &[u8]) -> (Vec<Message>, Option<ParseError>) {
        parse_all(data, 65536)
    }

    #[test]
    fn rfc_example_masked_hello() {
        // RFC 6455 §5.7: a single-frame masked text message "Hello".
        let data = [
            0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
        ];
        assert_eq!(
            parse(&data),
            (vec![Message::Text(Bytes::from_static(b"Hello"))], None)
        );
    }

    #[test]
    fn fragments_with_interleaved_ping() {
        let mut data = client_frame(0x01, b"Hel", M);
        data.extend(client_frame(0x89, b"p", M));
        data.extend(client_frame(0x00, b"lo", M));
        data.extend(client_frame(0x8A, b"", M));
        data.extend(client_frame(0x80, b"!", M));
        let (msgs, err) = parse(&data);
        assert_eq!(err, None);
        assert_eq!(
            msgs,
            vec![
                Message::Ping(Bytes::from_static(b"p")),
                Message::Pong,
                Message::Text(Bytes::from_static(b"Hello!")),
            ]
        );
    }

    #[test]
    fn extended_lengths() {
        for n in [125usize, 126, 127, 65535, 65536] {
            let payload: Vec<u8> = (0..n).map(|i| i as u8).collect();
            let data = client_frame(0x82, &payload, M);
            let (msgs, err) = parse_all(&data, 0);
            assert_eq!(err, None, "len {n}");
            assert_eq!(msgs, vec![Message::Binary(Bytes::from(payload))]);
        }
    }

    #[test]
    fn unmasked_frame_is_protocol_error() {
        let (msgs, err) = parse(&[0x81, 0x02, b'h', b'i']);
        assert!(msgs.is_empty());
        assert_eq!(err, Some(ParseError::Unmasked));
        assert_eq!(ParseError::Unmasked.close_code(), 1002);
    }

    #[test]
    fn header_violations() {
        let cases: &[(u8, u8, ParseError)] = &[
            (0xC1, 0x80, ParseError::ReservedBits),
            (0x83, 0x80, ParseError::BadOpcode(3)),
            (0x8B, 0x80, ParseError::BadOpcode(0xB)),
            (0x09, 0x80, ParseError::ControlFragmented),
            (0x89, 0x80 | 126, ParseError::ControlTooLong),
            (0x80, 0x80, ParseError::UnexpectedContinuation),
        ];
        for &(b0, b1, want) in cases {
            let (_, err) = parse(&[b0, b1]);
            assert_eq!(err, Some(want), "{b0:#x} {b1:#x}");
            assert_eq!(want.close_code(), 1002);
        }
        // A new data frame while a fragmented one is open.
        let mut data = client_frame(0x01, b"a", M);
        data.extend(client_frame(0x81, b"b", M));
        assert_eq!(parse(&data).1, Some(ParseError::ExpectedContinuation));
        // 64-bit length with the top bit set.
        let mut data = vec![0x82, 0xFF];
        data.extend_from_slice(&u64::MAX.to_be_bytes());
        data.extend_from_slice(&M);
        assert_eq!(parse_all(&data, 0).1, Some(ParseError::BadLength));
    }

    fn deflated(data: &[u8]) -> Vec<u8> {
        let config = super::super::deflate::DeflateConfig {
            level: 1,
            min_size: 0,
            decompressed_limit: 0,
            cache: false,
        };
        super::super::deflate::compress_message(&config, &Bytes::copy_from_slice(data)).to_vec()
    }

    #[test]
    fn compressed_messages() {
        let text = "ééé hello hello hello hello";
        let z = deflated(text.as_bytes());
        // RSV1 without negotiation: 1002.
        let (msgs, err) = parse(&client_frame(0xC1, &z, M));
        assert!(msgs.is_empty());
        assert_eq!(err, Some(ParseError::ReservedBits));
        assert_eq!(ParseError::ReservedBits.close_code(), 1002);
        // Negotiated: inflated, then checked as UTF-8.
        let (msgs, err) = parse_all_deflate(&client_frame(0xC1, &z, M), 1000, 1000);
        assert_eq!(err, None);
        assert_eq!(msgs, vec![Message::Text(Bytes::from(text))]);
        // Uncompressed messages still pass, and RSV2/RSV3 never do.
        let (msgs, err) = parse_all_deflate(&client_frame(0x82, b"raw", M), 1000, 1000);
        assert_eq!(
            (msgs, err),
            (vec![Message::Binary(Bytes::from_static(b"raw"))], None)
        );
        for b0 in [0xA1u8, 0x91, 0xE1] {
            let err = parse_all_deflate(&client_frame(b0, &z, M), 0, 0).1;
            assert_eq!(err, Some(ParseError::ReservedBits), "{b0:#x}");
        }
        // Fragmented: RSV1 on the first frame only.
        let mut data = client_frame(0x41, &z[..3], M);
        data.extend(client_frame(0x80, &z[3..], M));
        assert_eq!(
            parse_all_deflate(&data, 0, 0).0,
            vec![Message::Text(Bytes::from(text))]
        );
        let mut data = client_frame(0x41, &z[..3], M);
        data.extend(client_frame(0xC0, &z[3..], M));
        let err = parse_all_deflate(&data, 0, 0).1;
        assert_eq!(err, Some(ParseError::CompressedBitMisplaced));
        assert_eq!(ParseError::CompressedBitMisplaced.close_code(), 1002);
        // On a control frame.
        let err = parse_all_deflate(&client_frame(0xC9, b"", M), 0, 0).1;
        assert_eq!(err, Some(ParseError::CompressedBitMisplaced));
        // Garbage: 1007.
        let err = parse_all_deflate(&client_frame(0xC2, &[0xff, 0xff, 0xff], M), 0, 0).1;
        assert_eq!(err, Some(ParseError::InvalidCompressed));
        assert_eq!(ParseError::InvalidCompressed.close_code(), 1007);
        // Compressed text that inflates to invalid UTF-8: 1007 as well.
        let err = parse_all_deflate(&client_frame(0xC1, &deflated(&[0xC3, 0x28]), M), 0, 0).1;
        assert_eq!(err, Some(ParseError::InvalidUtf8));
        // A bomb: 1 MB of zeros in about 10 KB (level 1), under the wire limit but over the
        // inflated one: 1009.
        let bomb = deflated(&vec![0u8; 1 << 20]);
        assert!(bomb.len() < 16384, "{}", bomb.len());
        let (msgs, err) = parse_all_deflate(&client_frame(0xC2, &bomb, M), 65536, 655_360);
        assert!(msgs.is_empty());
        assert_eq!(err, Some(ParseError::TooBig));
        assert_eq!(ParseError::TooBig.close_code(), 1009);
        // The wire limit still counts compressed bytes.
        let err = parse_all_deflate(&client_frame(0xC2, &bomb, M), 100, 0).1;
        assert_eq!(err, Some(ParseError::TooBig));
    }

    #[test]
    fn compressed_header_sets_rsv1() {
        assert_eq!(FrameHeader::compressed(OP_TEXT, 5).as_bytes(), &[0xC1, 5]);
    }

    #[test]
    fn declared_length_over_limit_refused_before_payload() {
        // Only the header: the limit must be enforced without waiting for the payload.
        let mut data = vec![0x82, 0x80 | 127];
        data.extend_from_slice(&(1u64 << 40).to_be_bytes());
        data.extend_from_slice(&M);
        let (msgs, err) = parse(&data);
        assert!(msgs.is_empty());
        assert_eq!(err, Some(ParseError::TooBig));
        assert_eq!(ParseError::TooBig.close_code(), 1009);

        let at_limit = client_frame(0x82, &[7u8; 100], M);
        assert_eq!(parse_all(&at_limit, 100).1, None);
        let over = client_frame(0x82, &[7u8; 101], M);
        assert_eq!(parse_all(&over, 100).1, Some(ParseError::TooBig));
    }

    #[test]
    fn many_fragments_over_limit() {
        let mut data = client_frame(0x02, &[1; 40], M);
        data.extend(client_frame(0x00, &[1; 40], M));
        data.extend(client_frame(0x00, &[1; 40], M));
        data.extend(client_frame(0x80, &[1; 40], M));
        let (msgs, err) = parse_all(&data, 100);
        assert!(msgs.is_empty());
        assert_eq!(err, Some(ParseError::TooBig));
    }

    #[test]
    fn invalid_utf8_text_is_1007() {
        let data = client_frame(0x81, &[0xC3, 0x28], M);
        let (_, err) = parse(&data);
        assert_eq!(err, Some(ParseError::InvalidUtf8));
        assert_eq!(ParseError::InvalidUtf8.close_code(), 1007);
        // A code point split across fragments is fine.
        let mut data = client_frame(0x01, &[0xC3], M);
        data.extend(client_frame(0x80, &[0xA9], M));
        assert_eq!(
            parse(&data),
            (
                vec![Message::Text(Bytes::from_static("é".as_bytes()))],
                None
            )
        );
        // Binary messages are not checked.
        let data = client_frame(0x82, &[0xFF], M);
        assert_eq!(parse(&data).1, None);
    }

    #[test]
    fn close_payloads() {
        let (msgs, err) = parse(&client_frame(0x88, b"", M));
        assert_eq!(err, None);
        assert_eq!(
            msgs,
            vec![Message::Close {
                code: None,
                reason: String::new()
            }]
        );
        let mut p = 1000u16.to_be_bytes().to_vec();
        p.extend_from_slice(b"bye");
        assert_eq!(
            parse(&client_frame(0x88, &p, M)).0,
            vec![Message::Close {
                code: Some(1000),
                reason: "bye".into()
            }]
        );
        assert_eq!(
            parse(&client_frame(0x88, &[3], M)).1,
            Some(ParseError::BadClosePayload)
        );
        for bad in [0u16, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000] {
            assert_eq!(
                parse(&client_frame(0x88, &bad.to_be_bytes(), M)).1,
                Some(ParseError::BadCloseCode(bad)),
                "{bad}"
            );
        }
        for good in [1000u16, 1001, 1003, 1007, 1011, 3000, 4999] {
            assert_eq!(parse(&client_frame(0x88, &good.to_be_bytes(), M)).1, None);
        }
        let mut p = 1000u16.to_be_bytes().to_vec();
        p.extend_from_slice(&[0xFF, 0xFE]);
        assert_eq!(
            parse(&client_frame(0x88, &p, M)).1,
            Some(ParseError::InvalidUtf8)
        );
    }

    #[test]
    fn input_after_close_is_ignored() {
        let mut data = client_frame(0x88, &1000u16.to_be_bytes(), M);
        data.extend_from_slice(&[0xFF, 0x00]);
        let (msgs, err) = parse(&data);
        assert_eq!(err, None);
        assert_eq!(msgs.len(), 1);
    }

    #[test]
    fn idle_parser_holds_no_message_buffer() {
        let mut p = Parser::new(0);
        let mut out = VecDeque::new();
        p.feed(&client_frame(0x81, b"hello", M), &mut out).unwrap();
        assert!(!p.is_mid_message());
        assert_eq!(p.msg.capacity(), 0);
        assert_eq!(p.ctrl.capacity(), 0);
        p.feed(&client_frame(0x81, b"hel", M)[..5], &mut out)
            .unwrap();
        assert!(p.is_mid_message());
    }

    #[test]
    fn header_encoding() {
        assert_eq!(FrameHeader::new(OP_TEXT, 5).as_bytes(), &[0x81, 5]);
        assert_eq!(
            FrameHeader::new(OP_BINARY, 126).as_bytes(),
            &[0x82, 126, 0, 126]
        );
        assert_eq!(
            FrameHeader::new(OP_BINARY, 65536).as_bytes(),
            &[0x82, 127, 0, 0, 0, 0, 0, 1, 0, 0]
        );
    }

    #[test]
    fn close_reason_truncated_on_char_boundary() {
        let long = "é".repeat(100); // 200 bytes, 2 per char
        let frame = close_frame(3008, &long);
        assert_eq!(frame[0], 0x88);
        let len = usize::from(frame[1]);
        assert!(len <= 125);
        assert_eq!(frame.len(), 2 + len);
        assert_eq!(&frame[2..4], &3008u16.to_be_bytes());
        let reason = std::str::from_utf8(&frame[4..]).expect("valid utf-8");
        assert_eq!(reason.len(), 122); // 123 would split a char
        assert_eq!(truncate_reason("slow"), "slow");
        assert_eq!(truncate_reason(&"a".repeat(200)).len(), 123);
    }

    #[test]
    fn mask_phase_matches_bytewise() {
        let data: Vec<u8> = (0..37).collect();
        for phase in 0..4u8 {
            let mut fast = data.clone();
            apply_mask(&mut fast, M, phase);
            let slow: Vec<u8> = data
                .iter()
                .enumerate()
                .map(|(i, b)| b ^ M[(i + usize::from(phase)) % 4])
                .collect();
            assert_eq!(fast, slow, "phase {phase}");
        }
    }

    fn frame_strategy() -> impl Strategy<Value = Vec<u8>> {
        // A valid stream: messages of random kind and size, data messages randomly
        // fragmented, with pings in between fragments.
        prop::collection::vec(
            (
                0u8..3,
                prop::collection::vec(any::<u8>(), 0..300),
                1usize..4,
                any::<[u8; 4]>(),
            ),
            1..6,
        )
        .prop_map(|msgs| {
            let mut stream = Vec::new();
            for (kind, payload, pieces, mask) in msgs {
                if kind == 2 {
                    stream.extend(client_frame(0x89, &payload[..payload.len().min(125)], mask));
                    continue;
                }
                let (op, payload) = if kind == 0 {
                    (
                        OP_TEXT,
                        String::from_utf8_lossy(&payload).into_owned().into_bytes(),
                    )
                } else {
                    (OP_BINARY, payload)
                };
                let step = payload.len().div_ceil(pieces).max(1);
                let chunks: Vec<&[u8]> = if payload.is_empty() {
                    vec![&[]]
                } else {
                    payload.chunks(step).collect()
                };
                for (i, c) in chunks.iter().enumerate() {
                    let fin = if i + 1 == chunks.len() { 0x80 } else { 0 };
                    let opcode = if i == 0 { op } else { OP_CONTINUATION };
                    stream.extend(client_frame(fin | opcode, c, mask));
                    if i == 0 && chunks.len() > 1 {
                        stream.extend(client_frame(0x8A, b"x", mask));
                    }
                }
            }
            stream
        })
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(data in prop::collection::vec(any::<u8>(), 0..2048),
                                       limit in 0usize..512) {
            let _ = parse_all(&data, limit);
        }

        #[test]
        fn arbitrary_split_streams_never_panic(
            data in prop::collection::vec(any::<u8>(), 0..2048),
            cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..8),
        ) {
            let mut p = Parser::new(256);
            let mut out = VecDeque::new();
            let mut points: Vec<usize> = cuts.iter().map(|c| c.index(data.len() + 1)).collect();
            points.sort_unstable();
            let mut prev = 0;
            for at in points.into_iter().chain([data.len()]) {
                if p.feed(&data[prev..at], &mut out).is_err() {
                    break;
                }
                prev = at;
            }
        }

        #[test]
        fn rechunking_yields_same_messages(stream in frame_strategy(),
                                           cut_a in any::<prop::sample::Index>(),
                                           cut_b in any::<prop::sample::Index>()) {
            let whole = parse_all(&stream, 0);
            prop_assert_eq!(&whole.1, &None);
            prop_assert!(!whole.0.is_empty());
            let mut points = [cut_a.index(stream.len() + 1), cut_b.index(stream.len() + 1)];
            points.sort_unstable();
            let mut p = Parser::new(0);
            let mut out = VecDeque::new();
            p.feed(&stream[..points[0]], &mut out).unwrap();
            p.feed(&stream[points[0]..points[1]], &mut out).unwrap();
            p.feed(&stream[points[1]..], &mut out).unwrap();
            prop_assert_eq!(Vec::from(out), whole.0.clone());
            // Byte by byte as well: the worst split there is.
            let mut p = Parser::new(0);
            let mut out = VecDeque::new();
            for b in &stream {
                p.feed(std::slice::from_ref(b), &mut out).unwrap();
            }
            prop_assert_eq!(Vec::from(out), whole.0);
        }
    }
}
