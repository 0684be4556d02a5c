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

#[cfg(test)]
mod tests {
    use super::*;

    fn varint(bytes: &[u8]) -> Result<(u64, usize), DecodeError> {
        let mut rest = Bytes::copy_from_slice(bytes);
        read_varint(&mut rest).map(|v| (v, rest.len()))
    }

    #[test]
    fn varints_decode_within_u64() {
        assert_eq!(varint(&[0x00]), Ok((0, 0)));
        assert_eq!(varint(&[0x7f, 0xaa]), Ok((127, 1)));
        assert_eq!(varint(&[0xac, 0x02]), Ok((300, 0)));
        let max = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01];
        assert_eq!(varint(&max), Ok((u64::MAX, 0)));
    }

    #[test]
    fn bad_varints_are_errors() {
        assert_eq!(varint(&[]), Err(DecodeError::BadVarint));
        assert_eq!(varint(&[0x80, 0x80]), Err(DecodeError::BadVarint));
        let overflow = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02];
        assert_eq!(varint(&overflow), Err(DecodeError::BadVarint));
        assert_eq!(varint(&[0x80; 11]), Err(DecodeError::BadVarint));
    }

    #[test]
    fn encode_matches_prost_length_delimited() {
        let cmd = crate::proto::Command {
            id: 300,
            ..Default::default()
        };
        let mut out = BytesMut::new();
        encode(&cmd, &mut out).expect("encodes");
        assert_eq!(&out[..], [0x03, 0x08, 0xac, 0x02]);
        let mut rest = out.freeze();
        assert_eq!(decode_next::<crate::proto::Command>(&mut rest), Ok(cmd));
        assert!(rest.is_empty());
    }
}
