//! The messages of `proto/proxy.proto` (package `centrifugal.centrifugo.proxy`), shared by
//! both flavours: Protobuf on the gRPC flavour, JSON on the HTTP flavour.

#![allow(
    missing_docs,
    dead_code,
    unreachable_pub,
    clippy::all,
    clippy::pedantic,
    reason = "generated code"
)]

include!("generated/centrifugal.centrifugo.proxy.rs");

/// `bytes` fields that carry application data are raw JSON in the HTTP flavour, as in
/// Centrifugo (`{"data": {"text": "hi"}}`, not base64): the bytes are written as they are
/// and read back as the JSON text of the value. A JSON `null` reads as empty.
pub(crate) mod raw_json {
    use bytes::Bytes;
    use serde::{Deserialize, Deserializer, Serializer};
    use serde_json::value::RawValue;

    pub(crate) fn serialize<S: Serializer>(bytes: &Bytes, s: S) -> Result<S::Ok, S::Error> {
        use serde::Serialize;
        use serde::ser::Error;
        let text = std::str::from_utf8(bytes).map_err(S::Error::custom)?;
        let raw: &RawValue = serde_json::from_str(text).map_err(S::Error::custom)?;
        raw.serialize(s)
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Bytes, D::Error> {
        let raw = Box::<RawValue>::deserialize(d)?;
        if raw.get() == "null" {
            return Ok(Bytes::new());
        }
        Ok(Bytes::from(
            String::from(Box::<str>::from(raw)).into_bytes(),
        ))
    }
}

pub(crate) fn is_false(b: &bool) -> bool {
    !*b
}

pub(crate) fn is_zero<T: Default + PartialEq>(n: &T) -> bool {
    *n == T::default()
}
