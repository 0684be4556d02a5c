//! Codec errors: one enum per direction.

/// Why a message could not be encoded.
///
/// On a server connection any of these means the message cannot be delivered in the
/// connection's protocol: close with [`Disconnect::INAPPROPRIATE_PROTOCOL`](crate::Disconnect::INAPPROPRIATE_PROTOCOL).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// A `bytes` field is not valid JSON, so it cannot be embedded in a JSON message.
    #[error("field `{field}` is not valid JSON")]
    InvalidJson {
        /// JSON key of the offending field (innermost).
        field: &'static str,
    },
    /// A `bytes` field that travels as a JSON string is not valid UTF-8.
    #[error("field `{field}` is not valid UTF-8")]
    InvalidUtf8 {
        /// JSON key of the offending field.
        field: &'static str,
    },
    /// The Protobuf encoder failed (the output buffer could not grow).
    #[error("protobuf encoding failed: {0}")]
    Protobuf(#[from] prost::EncodeError),
}

/// Why an inbound frame could not be decoded.
///
/// A server closes the connection with
/// [`Disconnect::BAD_REQUEST`](crate::Disconnect::BAD_REQUEST) on any of these.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The frame holds no message at all.
    #[error("empty frame")]
    Empty,
    /// A JSON frame contains an empty line (e.g. `\n\n`, or a lone `\n`).
    #[error("empty line in JSON frame")]
    EmptyLine,
    /// A JSON line is not a valid message.
    #[error("malformed JSON: {0}")]
    Json(String),
    /// A Protobuf length prefix is not a valid varint (overflow or cut short).
    #[error("malformed length prefix")]
    BadVarint,
    /// A Protobuf length prefix announces more bytes than the frame has left.
    #[error("record of {declared} bytes exceeds the {remaining} bytes left in the frame")]
    Truncated {
        /// Length announced by the prefix.
        declared: u64,
        /// Bytes actually left after the prefix.
        remaining: usize,
    },
    /// A Protobuf record is not a valid message.
    #[error("malformed protobuf: {0}")]
    Protobuf(#[from] prost::DecodeError),
}

impl From<serde_json::Error> for DecodeError {
    fn from(e: serde_json::Error) -> Self {
        DecodeError::Json(e.to_string())
    }
}
