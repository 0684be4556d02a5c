//! Wire types and codecs of the Centrifugal client protocol v2.
//!
//! No I/O and no runtime: encoders write into `BytesMut`, decoders read `Bytes`.
//!
//! * **JSON**: one object per message, several messages of a frame joined by a single
//!   `\n`. `bytes` fields are raw embedded JSON (never base64), defaults are omitted
//!   (except the few fields Centrifugo always emits), and no encoded message ever contains
//!   a raw `\n` byte.
//! * **Protobuf**: each message prefixed with its length as an unsigned LEB128 varint,
//!   records concatenated in one frame.
//!
//! ```
//! use bytes::{Buf, BufMut, Bytes, BytesMut};
//! use gyre_protocol::{Protocol, decode_commands, encode_reply, proto};
//!
//! let frame = Bytes::from_static(b"{\"id\":1,\"connect\":{\"token\":\"t\"}}");
//! let cmds: Vec<_> = decode_commands(Protocol::Json, frame).collect::<Result<_, _>>().unwrap();
//! assert_eq!(cmds[0].connect.as_ref().unwrap().token, "t");
//!
//! let reply = proto::Reply {
//!     id: 1,
//!     connect: Some(proto::ConnectResult { client: "c".into(), ping: 25, pong: true, ..Default::default() }),
//!     ..Default::default()
//! };
//! let mut out = BytesMut::new();
//! encode_reply(Protocol::Json, &reply, &mut out).unwrap();
//! assert_eq!(&out[..], br#"{"id":1,"connect":{"client":"c","ping":25,"pong":true}}"#);
//! ```

mod codes;
mod error;
pub mod fossil;
mod json;
mod protobuf;

use std::fmt;

use bytes::{Buf, BufMut, Bytes, BytesMut};

/// Protobuf types generated from `proto/client.proto` by `cargo xtask codegen`.
#[allow(missing_docs, clippy::all)]
pub mod proto {
    include!("generated/centrifugal.centrifuge.protocol.rs");
}

/// Node-to-node control messages generated from `proto/control.proto`.
#[allow(missing_docs, clippy::all)]
pub mod control {
    include!("generated/controlpb.rs");
}

pub use codes::{Disconnect, Error, Unsubscribe};
pub use error::{DecodeError, EncodeError};

/// The encoding of a connection, fixed for its whole life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Protocol {
    /// Newline-joined JSON objects, payloads embedded as raw JSON.
    #[default]
    Json,
    /// Varint-length-delimited Protobuf messages.
    Protobuf,
}

impl Protocol {
    /// What goes between two encoded messages of one outbound frame: `b"\n"` for JSON,
    /// nothing for Protobuf (records are self-delimiting).
    ///
    /// ```
    /// use gyre_protocol::Protocol;
    /// assert_eq!(Protocol::Json.frame_separator(), b"\n");
    /// assert!(Protocol::Protobuf.frame_separator().is_empty());
    /// ```
    pub fn frame_separator(self) -> &'static [u8] {
        match self {
            Protocol::Json => b"\n",
            Protocol::Protobuf => b"",
        }
    }
}

/// `data` as a quoted JSON string, the form of `Publication.data` on JSON connections of
/// a delta subscription (full payloads and fossil deltas alike); `None` when `data` is
/// not UTF-8 and so cannot be carried as a string the SDK re-encodes byte for byte.
///
/// ```
/// let s = gyre_protocol::json_string(b"{\"a\":1}\n").unwrap();
/// assert_eq!(&s[..], br#""{\"a\":1}\n""#);
/// ```
pub fn json_string(data: &[u8]) -> Option<Bytes> {
    let text = std::str::from_utf8(data).ok()?;
    let mut out = BytesMut::with_capacity(data.len() + 2);
    json::write_str(text, &mut out);
    Some(out.freeze())
}

/// Appends one encoded `Reply` to `out`.
///
/// JSON: one object, no trailing newline and no raw `\n` byte anywhere; fails with
/// [`EncodeError::InvalidJson`] if a `bytes` payload is not valid JSON (a server closes
/// with [`Disconnect::INAPPROPRIATE_PROTOCOL`]). Protobuf: varint length prefix followed
/// by the message. On error `out` is left unchanged.
pub fn encode_reply(
    protocol: Protocol,
    reply: &proto::Reply,
    out: &mut BytesMut,
) -> Result<(), EncodeError> {
    match protocol {
        Protocol::Json => json::encode(reply, out),
        Protocol::Protobuf => protobuf::encode(reply, out),
    }
}

/// Appends one encoded `Command` to `out`; same rules as [`encode_reply`].
///
/// ```
/// use bytes::BytesMut;
/// use gyre_protocol::{Protocol, encode_command, proto};
///
/// let cmd = proto::Command {
///     id: 1,
///     connect: Some(proto::ConnectRequest { token: "t".into(), ..Default::default() }),
///     ..Default::default()
/// };
/// let mut out = BytesMut::new();
/// encode_command(Protocol::Protobuf, &cmd, &mut out).unwrap();
/// assert_eq!(&out[..], [0x07, 0x08, 0x01, 0x22, 0x03, 0x0a, 0x01, 0x74]);
/// ```
pub fn encode_command(
    protocol: Protocol,
    command: &proto::Command,
    out: &mut BytesMut,
) -> Result<(), EncodeError> {
    match protocol {
        Protocol::Json => json::encode(command, out),
        Protocol::Protobuf => protobuf::encode(command, out),
    }
}

/// Appends one encoded push, i.e. `Reply { push }` with no id.
///
/// ```
/// use bytes::BytesMut;
/// use gyre_protocol::{Protocol, encode_push, proto};
///
/// let push = proto::Push {
///     channel: "chat".into(),
///     r#pub: Some(proto::Publication { data: "{\"t\":\"hi\"}".into(), ..Default::default() }),
///     ..Default::default()
/// };
/// let mut out = BytesMut::new();
/// encode_push(Protocol::Json, &push, &mut out).unwrap();
/// assert_eq!(&out[..], br#"{"push":{"channel":"chat","pub":{"data":{"t":"hi"}}}}"#);
/// ```
pub fn encode_push(
    protocol: Protocol,
    push: &proto::Push,
    out: &mut BytesMut,
) -> Result<(), EncodeError> {
    match protocol {
        Protocol::Json => {
            let start = out.len();
            out.extend_from_slice(b"{\"push\":");
            match json::encode(push, out) {
                Ok(()) => {
                    out.extend_from_slice(b"}");
                    Ok(())
                }
                Err(e) => {
                    out.truncate(start);
                    Err(e)
                }
            }
        }
        Protocol::Protobuf => {
            // `Reply { push }`: length prefix, tag of field 4 (wire type 2), then the
            // push as a length-delimited field. Avoids cloning the push into a Reply.
            use prost::Message;
            let push_len = push.encoded_len();
            let reply_len = 1 + prost::length_delimiter_len(push_len) + push_len;
            out.reserve(prost::length_delimiter_len(reply_len) + reply_len);
            prost::encoding::encode_varint(reply_len as u64, out);
            out.put_u8(0x22);
            push.encode_length_delimited(out)?;
            Ok(())
        }
    }
}

/// Decodes the commands of one inbound transport message (one WebSocket frame, one
/// HTTP body), in order.
///
/// Both protocols yield one `Err(DecodeError::Empty)` for an empty frame, so a caller that
/// disconnects on any error also rejects frames without commands. After the first error
/// the iterator ends.
///
/// ```
/// use bytes::Bytes;
/// use gyre_protocol::{DecodeError, Protocol, decode_commands};
///
/// let frame = Bytes::from_static(b"{\"id\":1,\"ping\":{}}\n{}\n");
/// let ids: Vec<u32> = decode_commands(Protocol::Json, frame).map(|c| c.unwrap().id).collect();
/// assert_eq!(ids, [1, 0]);
///
/// let mut bad = decode_commands(Protocol::Json, Bytes::from_static(b"{}\n\n"));
/// assert!(bad.next().unwrap().is_ok());
/// assert_eq!(bad.next(), Some(Err(DecodeError::EmptyLine)));
/// assert_eq!(bad.next(), None);
/// ```
pub fn decode_commands(protocol: Protocol, frame: Bytes) -> CommandDecoder {
    CommandDecoder(FrameDecoder::new(protocol, frame))
}

/// Decodes the replies of one frame (client side), in order; same rules as
/// [`decode_commands`].
pub fn decode_replies(protocol: Protocol, frame: Bytes) -> ReplyDecoder {
    ReplyDecoder(FrameDecoder::new(protocol, frame))
}

/// Decodes the JSON connect request of a unidirectional connection (the first WebSocket
/// message, an HTTP body or the `cf_connect` query value): a bare `ConnectRequest`
/// object, not a command. A literal `null` is an empty request, as upstream treats it.
///
/// ```
/// use gyre_protocol::decode_connect_request;
///
/// let req = decode_connect_request(br#"{"token":"t","subs":{"news":{"recover":true,"offset":5}}}"#).unwrap();
/// assert_eq!(req.token, "t");
/// assert_eq!(req.subs["news"].offset, 5);
/// assert!(decode_connect_request(b"null").unwrap().token.is_empty());
/// assert!(decode_connect_request(b"[1]").is_err());
/// ```
pub fn decode_connect_request(json: &[u8]) -> Result<proto::ConnectRequest, DecodeError> {
    Ok(json::decode::<Option<proto::ConnectRequest>>(json)?.unwrap_or_default())
}

/// Decodes the body of a `POST /emulation` request.
///
/// JSON: `{"node":"…","session":"…","data":"<commands>"}` where `data` is a JSON
/// *string*; the returned `data` holds its unescaped text (the newline-joined JSON
/// commands), ready for [`decode_commands`]. Protobuf: a plain (not length-prefixed)
/// `EmulationRequest` whose `data` holds varint-delimited commands.
///
/// ```
/// use bytes::Bytes;
/// use gyre_protocol::{Protocol, decode_emulation_request};
///
/// let body = Bytes::from_static(br#"{"node":"n","session":"s","data":"{\"id\":2}\n{}"}"#);
/// let req = decode_emulation_request(Protocol::Json, body).unwrap();
/// assert_eq!(&req.data[..], b"{\"id\":2}\n{}");
/// ```
pub fn decode_emulation_request(
    protocol: Protocol,
    body: Bytes,
) -> Result<proto::EmulationRequest, DecodeError> {
    match protocol {
        Protocol::Json => json::decode_emulation(&body),
        Protocol::Protobuf => protobuf::decode_plain(body),
    }
}

/// Encodes the body of a `POST /emulation` request (client side), the inverse of
/// [`decode_emulation_request`]. JSON fails with [`EncodeError::InvalidUtf8`] if `data`
/// (the encoded commands) is not UTF-8.
pub fn encode_emulation_request(
    protocol: Protocol,
    request: &proto::EmulationRequest,
    out: &mut BytesMut,
) -> Result<(), EncodeError> {
    match protocol {
        Protocol::Json => json::encode_emulation(request, out),
        Protocol::Protobuf => {
            use prost::Message;
            request.encode(out)?;
            Ok(())
        }
    }
}

/// Shared frame-splitting state of [`CommandDecoder`] and [`ReplyDecoder`].
struct FrameDecoder {
    protocol: Protocol,
    /// The part of the frame not consumed yet.
    rest: Bytes,
    /// Whether anything was yielded (distinguishes an empty frame).
    started: bool,
    done: bool,
}

impl FrameDecoder {
    fn new(protocol: Protocol, frame: Bytes) -> Self {
        FrameDecoder {
            protocol,
            rest: frame,
            started: false,
            done: false,
        }
    }

    fn next<M>(&mut self) -> Option<Result<M, DecodeError>>
    where
        M: prost::Message + Default + for<'de> json::FromJson<'de>,
    {
        if self.done {
            return None;
        }
        let first = !self.started;
        self.started = true;
        let res = match self.protocol {
            Protocol::Json => self.next_json(first),
            Protocol::Protobuf => {
                if self.rest.is_empty() {
                    self.done = true;
                    return first.then_some(Err(DecodeError::Empty));
                }
                protobuf::decode_next(&mut self.rest)
            }
        };
        if res.is_err() {
            self.done = true;
        }
        Some(res)
    }

    fn next_json<M>(&mut self, first: bool) -> Result<M, DecodeError>
    where
        M: for<'de> json::FromJson<'de>,
    {
        if first && self.rest.is_empty() {
            self.done = true;
            return Err(DecodeError::Empty);
        }
        let line = match self.rest.iter().position(|&b| b == b'\n') {
            Some(i) => {
                let line = self.rest.split_to(i);
                self.rest.advance(1);
                // A single trailing newline ends the frame.
                if self.rest.is_empty() {
                    self.done = true;
                }
                line
            }
            None => {
                self.done = true;
                std::mem::take(&mut self.rest)
            }
        };
        if line.is_empty() {
            return Err(DecodeError::EmptyLine);
        }
        json::decode(&line)
    }
}

/// Iterator over the commands of one frame, returned by [`decode_commands`].
pub struct CommandDecoder(FrameDecoder);

impl CommandDecoder {
    /// Bytes of the frame not decoded yet: the difference before and after a command
    /// is that command's size on the wire (with its separator).
    pub fn remaining(&self) -> usize {
        self.0.rest.len()
    }
}

impl Iterator for CommandDecoder {
    type Item = Result<proto::Command, DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.0.next()
    }
}

impl fmt::Debug for CommandDecoder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CommandDecoder")
            .field("protocol", &self.0.protocol)
            .field("remaining", &self.0.rest.len())
            .finish()
    }
}

/// Iterator over the replies of one frame, returned by [`decode_replies`].
pub struct ReplyDecoder(FrameDecoder);

impl Iterator for ReplyDecoder {
    type Item = Result<proto::Reply, DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.0.next()
    }
}

impl fmt::Debug for ReplyDecoder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReplyDecoder")
            .field("protocol", &self.0.protocol)
            .field("remaining", &self.0.rest.len())
            .finish()
    }
}
