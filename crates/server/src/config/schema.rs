//! The key tree of the configuration, as data.
//!
//! Every configuration struct implements [`Schema`] (in `types.rs`), listing its keys and the
//! shape of each value. The loader walks this tree together with the JSON value tree to
//! derive env var names (one per key), parse env values by type, find unknown keys and fill
//! Go-style defaults. This is what Centrifugo does with reflection over struct tags.

use std::sync::OnceLock;

use super::types::Config;

/// The shape of one configuration value.
#[derive(Debug, Clone)]
pub(crate) enum Shape {
    Bool,
    /// Signed integer (Go `int`, `int32`, `int64`).
    Int,
    /// Unsigned integer (Go `uint32`).
    Uint,
    Str,
    /// Go duration: string like `"25s"` or integer nanoseconds.
    Duration,
    /// List of strings; from env: space-separated.
    StrList,
    /// Map of string to string; from env: a JSON object. Also accepted as a list of
    /// `{key, value}` objects. Values may reference `${CENTRIFUGO_VAR_<NAME>}`.
    StrMap,
    /// Nested section.
    Struct(Vec<(&'static str, Shape)>),
    /// List of objects; from env: a JSON array. `named` lists (channel namespaces, RPC
    /// namespaces, proxies, consumers) also accept a space-separated list of names, and each
    /// item gets its own env vars `<LIST>_<NAME>_<KEY>`.
    List {
        item: Vec<(&'static str, Shape)>,
        named: bool,
    },
}

/// Implemented by every configuration struct: its keys in upstream order.
pub(crate) trait Schema {
    fn fields() -> Vec<(&'static str, Shape)>;
}

/// Keys of the whole configuration.
pub(crate) fn root() -> &'static [(&'static str, Shape)] {
    static ROOT: OnceLock<Vec<(&'static str, Shape)>> = OnceLock::new();
    ROOT.get_or_init(Config::fields)
}

/// Looks a child key up in a list of fields.
pub(crate) fn field<'a>(fields: &'a [(&'static str, Shape)], key: &str) -> Option<&'a Shape> {
    fields.iter().find(|(k, _)| *k == key).map(|(_, s)| s)
}
