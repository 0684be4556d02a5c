//! Centrifugo v6 configuration tree: one struct per upstream section, v6 key names and v6
//! defaults (the `default:` struct tags of `internal/configtypes`), grouped by topic.
//!
//! Every section is declared once, with `sections!` (below), which writes the struct (serde, with
//! `#[serde(default)]`), its `Default` impl and its [`Schema`] impl (the key tree that drives
//! env var names, unknown-key detection and `defaultenv`). The shape of a key is derived from
//! the Rust type of its field ([`HasShape`]), so a key cannot get a type in one place and a
//! different shape in another.
//!
//! # Adding a Centrifugo key
//!
//! One edit: add a line to the section's declaration, at the key's place in upstream order.
//!
//! ```text
//! WebSocket {
//!     ...
//!     write_timeout: Duration = "1s",
//!     new_key: i64 = 10,          // the new key, default 10
//!     other_key: bool,            // default: the type's zero value
//! }
//! ```
//!
//! - The field name is the key (`r#type` for `type`).
//! - Key types: `bool`, `i64`/`i32` (Go `int`), `u32` (Go `uint32`), `String`, [`Duration`]
//!   (default written as a Go duration string, `"25s"`), `Vec<String>` (default written as
//!   `["a", "b"]`), `BTreeMap<String, String>`, another section (nested keys), `Vec<Section>`
//!   (a list of objects), `Option<Section>`.
//! - `= default` is needed only where upstream's default is not the zero value; the field's
//!   doc then states it. The snapshot tests (`config/snapshots/`) show the change: regenerate
//!   them with `GYRE_UPDATE_SNAPSHOTS=1` and review the diff.
//! - `name: @flatten Section` inlines the keys of `Section` (a Go embedded struct).
//! - `@named Section { .. }` marks a section whose lists are named lists (env vars
//!   `<LIST>_<NAME>_<KEY>`).
//! - Other attributes on a field (`#[serde(...)]`, docs) are passed through.
//! - A new section is a new block in the topic's file, then a field of its type in its
//!   parent.

use serde::{Deserialize, Serialize};

use super::duration::Duration;
use super::schema::{HasShape, Schema, Shape};

/// Turns the default written in a section declaration into the field's value: string
/// literals for `String` and `Duration` fields, arrays of string literals for `Vec<String>`,
/// anything else as it is.
pub(crate) trait IntoDefault<T> {
    fn into_default(self) -> T;
}

impl<T> IntoDefault<T> for T {
    fn into_default(self) -> T {
        self
    }
}

impl IntoDefault<String> for &str {
    fn into_default(self) -> String {
        self.to_owned()
    }
}

impl IntoDefault<Duration> for &str {
    fn into_default(self) -> Duration {
        // A typo in a declared default fails every test that builds a configuration.
        self.parse()
            .expect("a section declares a valid Go duration default")
    }
}

impl<const N: usize> IntoDefault<Vec<String>> for [&str; N] {
    fn into_default(self) -> Vec<String> {
        self.iter().map(|s| (*s).to_owned()).collect()
    }
}

/// The key of a field: its name without the raw-identifier prefix.
pub(crate) fn key(field: &'static str) -> &'static str {
    field.strip_prefix("r#").unwrap_or(field)
}

/// Declares configuration sections; see the module documentation.
macro_rules! sections {
    ($(
        $(#[$meta:meta])*
        $(@$named:ident)?
        $name:ident {
            $(
                $(#[$field_meta:meta])*
                $field:ident : $(@$flatten:ident)? $ty:ty $(= $default:expr)?
            ),* $(,)?
        }
    )*) => {$(
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
        #[serde(default)]
        pub(crate) struct $name {
            $(
                $(#[$field_meta])*
                $(#[doc = concat!("Default: `", stringify!($default), "`.")])?
                $(
                    #[doc = concat!(
                        "Keys of `", stringify!($ty), "`, inlined (Go embedded struct)."
                    )]
                    #[serde($flatten)]
                )?
                pub(crate) $field: $ty,
            )*
        }

        impl Default for $name {
            fn default() -> Self {
                Self {
                    $($field: section_default!($ty $(, $default)?),)*
                }
            }
        }

        impl Schema for $name {
            const NAMED: bool = section_named!($($named)?);

            fn fields() -> Vec<(&'static str, Shape)> {
                [$(section_field!($field, $ty $(, $flatten)?)),*]
                    .into_iter()
                    .flatten()
                    .collect()
            }
        }

        impl HasShape for $name {
            fn shape() -> Shape {
                Shape::Struct(<Self as Schema>::fields())
            }
        }
    )*};
}

/// The default value of one field of a section.
macro_rules! section_default {
    ($ty:ty) => {
        <$ty as Default>::default()
    };
    ($ty:ty, $default:expr) => {
        <_ as IntoDefault<$ty>>::into_default($default)
    };
}

/// Whether a section is the item of a named list.
macro_rules! section_named {
    () => {
        false
    };
    (named) => {
        true
    };
}

/// The key of one field, or the inlined keys of a flattened one.
macro_rules! section_field {
    ($field:ident, $ty:ty) => {
        vec![(key(stringify!($field)), <$ty as HasShape>::shape())]
    };
    ($field:ident, $ty:ty, flatten) => {
        <$ty as Schema>::fields()
    };
}

mod admin;
mod api;
mod channel;
mod client;
mod consumers;
mod engines;
mod observability;
mod proxies;
mod server;
mod transports;

pub(crate) use admin::*;
pub(crate) use api::*;
pub(crate) use channel::*;
pub(crate) use client::*;
pub(crate) use consumers::*;
pub(crate) use engines::*;
pub(crate) use observability::*;
pub(crate) use proxies::*;
pub(crate) use server::*;
pub(crate) use transports::*;

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde_json::json;

    use super::*;

    sections! {
        /// Nested section with non-zero defaults.
        Inner {
            a: i64 = 3,
            b: Vec<String> = ["x", "y"],
        }

        /// Item of a named list.
        @named Item {
            name: String,
            inner: @flatten Inner,
            r#type: String = "memory",
            wait: Duration = "1m30s",
        }

        /// Every other kind of key.
        Outer {
            items: Vec<Item>,
            plain: Vec<Inner>,
            #[serde(skip_serializing_if = "Option::is_none")]
            maybe: Option<Inner>,
            map: BTreeMap<String, String>,
            code: u32,
            small: i32,
            flag: bool,
            nested: Inner,
        }
    }

    fn describe(fields: &[(&'static str, Shape)]) -> Vec<String> {
        fields
            .iter()
            .map(|(key, shape)| match shape {
                Shape::Struct(children) => format!("{key}{{{}}}", describe(children).join(",")),
                Shape::List { item, named } => {
                    format!("{key}[named={named}]{{{}}}", describe(item).join(","))
                }
                other => format!("{key}:{other:?}"),
            })
            .collect()
    }

    #[test]
    fn keys_come_from_field_names_and_types() {
        assert_eq!(
            describe(&Item::fields()),
            [
                "name:Str",
                "a:Int",
                "b:StrList",
                "type:Str",
                "wait:Duration"
            ]
        );
        assert_eq!(
            describe(&Outer::fields()),
            [
                "items[named=true]{name:Str,a:Int,b:StrList,type:Str,wait:Duration}",
                "plain[named=false]{a:Int,b:StrList}",
                "maybe{a:Int,b:StrList}",
                "map:StrMap",
                "code:Uint",
                "small:Int",
                "flag:Bool",
                "nested{a:Int,b:StrList}",
            ]
        );
        assert_eq!(
            [Item::NAMED, Inner::NAMED, Outer::NAMED],
            [true, false, false]
        );
    }

    #[test]
    fn declared_defaults_and_zero_values() {
        let item = Item::default();
        assert_eq!(item.inner.a, 3);
        assert_eq!(item.inner.b, ["x", "y"]);
        assert_eq!(item.r#type, "memory");
        assert_eq!(item.wait, Duration::from_secs(90));
        assert_eq!(item.name, "");
        let outer = Outer::default();
        assert!(outer.items.is_empty() && outer.maybe.is_none() && outer.map.is_empty());
        assert_eq!((outer.code, outer.small, outer.flag), (0, 0, false));
        assert_eq!(outer.nested, Inner::default());
    }

    #[test]
    fn serde_keys_match_the_key_tree() {
        assert_eq!(
            serde_json::to_value(Item::default()).unwrap(),
            json!({"name": "", "a": 3, "b": ["x", "y"], "type": "memory", "wait": "1m30s"})
        );
        let outer: Outer = serde_json::from_value(json!({
            "items": [{"name": "n", "a": 5}],
            "maybe": {},
        }))
        .unwrap();
        assert_eq!(outer.items[0].inner.a, 5);
        assert_eq!(outer.items[0].inner.b, ["x", "y"]);
        assert_eq!(outer.items[0].r#type, "memory");
        assert_eq!(outer.maybe, Some(Inner::default()));
        assert!(
            serde_json::to_value(Outer::default())
                .unwrap()
                .get("maybe")
                .is_none()
        );
    }
}
