//! The Protobuf encoding of the protocol: varint-length-delimited records.

use bytes::{Buf, Bytes, BytesMut};
use prost::Message;

use crate::error::{DecodeError, EncodeError};

/// Writes `msg` with its unsigned LEB128 length prefix.
pub(crate) fn encode<M: Message>(msg: &M, out: &mut BytesMut) -> Result<(), EncodeError> {
    msg.encode_length_delimited(out)?;
    Ok(())
}

/// Splits the next record off `rest` and decodes it.
///
/// Returns the error and leaves `rest` unspecified when the prefix or record is bad; the
/// caller stops iterating after any error.
pub(crate) fn decode_next<M: Message + Default>(rest: &mut Bytes) -> Result<M, DecodeError> {
    let declared = read_varint(rest)?;
    let remaining = rest.remaining();
    let len = usize::try_from(declared)
        .ok()
        .filter(|len| *len <= remaining)
        .ok_or(DecodeError::Truncated {
            declared,
            remaining,
        })?;
    let record = rest.split_to(len);
    Ok(M::decode(record)?)
}

/// Reads an unsigned LEB128 varint of at most 10 bytes that fits in a `u64`.
fn read_varint(rest: &mut Bytes) -> Result<u64, DecodeError> {
    let mut value: u64 = 0;
    for i in 0..10 {
        let Some(&byte) = rest.get(i) else {
            return Err(DecodeError::BadVarint);
        };
        let bits = u64::from(byte & 0x7f);
        if i == 9 && bits > 1 {
            return Err(DecodeError::BadVarint);
        }
        value |= bits << (7 * i);
        if byte & 0x80 == 0 {
            rest.advance(i + 1);
            return Ok(value);
        }
    }
    Err(DecodeError::BadVarint)
}

/// Decodes a protobuf emulation request body (no length prefix: a plain message).
pub(crate) fn decode_plain<M: Message + Default>(body: Bytes) -> Result<M, DecodeError> {
    Ok(M::decode(body)?)
}
