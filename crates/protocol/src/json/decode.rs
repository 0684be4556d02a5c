//! JSON reading on top of serde_json, with the Centrifugal rules: `null` means absent,
//! unknown keys are skipped, `bytes` fields are captured as raw JSON text, and every
//! message must be a JSON object.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::hash::BuildHasher;
use std::marker::PhantomData;

use bytes::Bytes;
use serde::de::{self, Deserialize, Deserializer, Visitor};
use serde_json::value::RawValue;

/// A value that can be read from the value of a JSON object key.
pub(crate) trait FromJson<'de>: Sized {
    /// Reads the value; `null` yields the proto3 default.
    fn from_json<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error>;
}

/// Adapts [`FromJson`] to serde so it can be used as a map value or sequence element.
pub(crate) struct Wrap<T>(pub(crate) T);

impl<'de, T: FromJson<'de>> Deserialize<'de> for Wrap<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        T::from_json(d).map(Wrap)
    }
}

macro_rules! nullable_scalar {
    ($($t:ty),*) => {$(
        impl<'de> FromJson<'de> for $t {
            fn from_json<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                Ok(Option::<$t>::deserialize(d)?.unwrap_or_default())
            }
        }
    )*};
}

nullable_scalar!(u32, i32, u64, i64, bool, String);

impl<'de> FromJson<'de> for Bytes {
    /// Captures the raw JSON text of the value, whatever its type.
    fn from_json<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(match Option::<&'de RawValue>::deserialize(d)? {
            Some(raw) => Bytes::copy_from_slice(raw.get().as_bytes()),
            None => Bytes::new(),
        })
    }
}

impl<'de, T: FromJson<'de>> FromJson<'de> for Option<T> {
    fn from_json<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Option::<Wrap<T>>::deserialize(d)?.map(|w| w.0))
    }
}

impl<'de, T: FromJson<'de>> FromJson<'de> for Vec<T> {
    fn from_json<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Option::<Vec<Wrap<T>>>::deserialize(d)?
            .map(|v| v.into_iter().map(|w| w.0).collect())
            .unwrap_or_default())
    }
}

impl<'de, V, S> FromJson<'de> for HashMap<String, V, S>
where
    V: FromJson<'de>,
    S: BuildHasher + Default,
{
    fn from_json<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Option::<HashMap<String, Wrap<V>, S>>::deserialize(d)?
            .map(|m| m.into_iter().map(|(k, w)| (k, w.0)).collect())
            .unwrap_or_default())
    }
}

/// An object key, borrowed from the input when it has no escapes.
pub(crate) struct Key<'de>(pub(crate) Cow<'de, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object key")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Key(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(Key(Cow::Owned(v)))
            }
        }
        d.deserialize_str(KeyVisitor)
    }
}

/// Reads a JSON object field by field; `M` implements [`JsonFields`].
pub(crate) struct ObjectVisitor<M>(PhantomData<M>);

impl<M> ObjectVisitor<M> {
    pub(crate) fn new() -> Self {
        ObjectVisitor(PhantomData)
    }
}

/// Per-message field dispatch used by [`ObjectVisitor`].
pub(crate) trait JsonFields<'de>: Default {
    /// Name used in error messages.
    const NAME: &'static str;
    /// Reads the value of `key` into `self`, or skips it if the key is unknown.
    fn read_field<A: de::MapAccess<'de>>(&mut self, key: &str, map: &mut A)
    -> Result<(), A::Error>;
}

impl<'de, M: JsonFields<'de>> Visitor<'de> for ObjectVisitor<M> {
    type Value = M;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a {} object", M::NAME)
    }

    fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<M, A::Error> {
        let mut msg = M::default();
        while let Some(Key(key)) = map.next_key::<Key<'de>>()? {
            msg.read_field(&key, &mut map)?;
        }
        Ok(msg)
    }
}

/// Reads the next map value with [`FromJson`].
pub(crate) fn next<'de, T: FromJson<'de>, A: de::MapAccess<'de>>(
    map: &mut A,
) -> Result<T, A::Error> {
    Ok(map.next_value::<Wrap<T>>()?.0)
}

/// Skips the next map value.
pub(crate) fn skip<'de, A: de::MapAccess<'de>>(map: &mut A) -> Result<(), A::Error> {
    map.next_value::<de::IgnoredAny>().map(|_| ())
}
