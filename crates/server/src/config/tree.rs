//! Operations on the configuration as a `serde_json::Value` tree, guided by the [`Shape`]
//! schema: key normalisation and unknown-key detection, layering, Go-style defaults and
//! `${CENTRIFUGO_VAR_*}` expansion in string maps.

use serde_json::{Map, Value};

use super::duration::Duration;
use super::env::{Env, parse_go_bool, parse_go_int};
use super::error::ConfigError;
use super::schema::{Shape, field};

pub(crate) fn join(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_owned()
    } else {
        format!("{parent}.{key}")
    }
}

/// Prepares a value read from a file: keys of known sections are matched case-insensitively
/// (viper lower-cases every key) and every key the schema does not know is reported, with
/// Centrifugo's path syntax (`channel.namespaces.[0].foo`).
pub(crate) fn normalize(
    value: &mut Value,
    fields: &[(&'static str, Shape)],
    path: &str,
    unknown: &mut Vec<String>,
) {
    let Value::Object(map) = value else { return };
    let entries = std::mem::take(map);
    for (key, mut child) in entries {
        let lower = key.to_ascii_lowercase();
        match field(fields, &lower) {
            Some(shape) => {
                let child_path = join(path, &lower);
                normalize_shape(&mut child, shape, &child_path, unknown);
                map.insert(lower, child);
            }
            None => {
                unknown.push(join(path, &key));
                map.insert(key, child);
            }
        }
    }
}

fn normalize_shape(value: &mut Value, shape: &Shape, path: &str, unknown: &mut Vec<String>) {
    match shape {
        Shape::Struct(fields) => normalize(value, fields, path, unknown),
        Shape::List { item, .. } => {
            if let Value::Array(items) = value {
                for (i, elem) in items.iter_mut().enumerate() {
                    normalize(elem, item, &join(path, &format!("[{i}]")), unknown);
                }
            }
        }
        _ => {}
    }
}

/// Layers `over` onto `base`: objects merge key by key, anything else replaces; `null`
/// (an empty YAML key) leaves the base value in place.
pub(crate) fn merge(base: &mut Value, over: Value) {
    match (base, over) {
        (_, Value::Null) => {}
        (Value::Object(base), Value::Object(over)) => {
            for (key, value) in over {
                match base.get_mut(&key) {
                    Some(slot) => merge(slot, value),
                    None => {
                        if !value.is_null() {
                            base.insert(key, value);
                        }
                    }
                }
            }
        }
        (slot, value) => *slot = value,
    }
}

/// Sets a dotted path, creating objects on the way.
pub(crate) fn set_path(root: &mut Value, path: &str, value: Value) {
    let mut cur = root;
    for part in path.split('.') {
        if !cur.is_object() {
            *cur = Value::Object(Map::new());
        }
        let Value::Object(map) = cur else {
            unreachable!("just made an object")
        };
        cur = map.entry(part.to_owned()).or_insert(Value::Null);
    }
    *cur = value;
}

/// True for Go zero values of the given shape.
fn is_zero(value: &Value, shape: &Shape) -> bool {
    match value {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => {
            s.is_empty()
                || (matches!(shape, Shape::Duration)
                    && Duration::parse(s).is_ok_and(Duration::is_zero))
        }
        Value::Array(a) => a.is_empty() && matches!(shape, Shape::StrList),
        Value::Object(_) => false,
    }
}

/// Centrifugo applies a key's `default:` whenever the loaded value is the Go zero value, so
/// `client.channel_limit: 0` still means 128. This reproduces that, including inside
/// items of named lists (Centrifugo processes each namespace, proxy and consumer the same way).
pub(crate) fn fill_zero_defaults(
    value: &mut Value,
    defaults: &Value,
    fields: &[(&'static str, Shape)],
    path: &str,
) {
    let Value::Object(map) = value else { return };
    for (key, shape) in fields {
        let default = defaults.get(*key).unwrap_or(&Value::Null);
        let child_path = join(path, key);
        match shape {
            Shape::Struct(children) => {
                if let Some(child) = map.get_mut(*key) {
                    fill_zero_defaults(child, default, children, &child_path);
                }
            }
            Shape::List { item, named: true } => {
                if let Some(Value::Array(items)) = map.get_mut(*key) {
                    let item_default = item_defaults(&child_path);
                    for (i, elem) in items.iter_mut().enumerate() {
                        fill_zero_defaults(
                            elem,
                            &item_default,
                            item,
                            &join(&child_path, &format!("[{i}]")),
                        );
                    }
                }
            }
            _ => {
                if let Some(current) = map.get_mut(*key)
                    && is_zero(current, shape)
                    && !is_zero(default, shape)
                {
                    *current = default.clone();
                }
            }
        }
    }
}

/// Defaults of one item of a named list, by the list's key path.
pub(crate) fn item_defaults(list_path: &str) -> Value {
    use super::sections::{ChannelNamespace, Consumer, NamedProxy, RpcNamespace};
    let value = match list_path {
        "channel.namespaces" => serde_json::to_value(ChannelNamespace::default()),
        "rpc.namespaces" => serde_json::to_value(RpcNamespace::default()),
        "proxies" => serde_json::to_value(NamedProxy::default()),
        "consumers" => serde_json::to_value(Consumer::default()),
        _ => Ok(Value::Null),
    };
    value.unwrap_or(Value::Null)
}

/// Normalises string maps (object or list of `{key, value}`) to objects and expands
/// `${CENTRIFUGO_VAR_<NAME>}` references from the environment; a missing variable is an error.
pub(crate) fn finish_string_maps(
    value: &mut Value,
    fields: &[(&'static str, Shape)],
    path: &str,
    env: &Env,
) -> Result<(), ConfigError> {
    let Value::Object(map) = value else {
        return Ok(());
    };
    for (key, shape) in fields {
        let Some(child) = map.get_mut(*key) else {
            continue;
        };
        let child_path = join(path, key);
        match shape {
            Shape::Struct(children) => finish_string_maps(child, children, &child_path, env)?,
            Shape::List { item, .. } => {
                if let Value::Array(items) = child {
                    for (i, elem) in items.iter_mut().enumerate() {
                        finish_string_maps(elem, item, &join(&child_path, &format!("[{i}]")), env)?;
                    }
                }
            }
            Shape::StrMap => *child = string_map(child, &child_path, env)?,
            _ => {}
        }
    }
    Ok(())
}

fn string_map(value: &Value, path: &str, env: &Env) -> Result<Value, ConfigError> {
    let mut out = Map::new();
    match value {
        Value::Null => {}
        Value::Object(m) => {
            for (k, v) in m {
                let Value::String(s) = v else {
                    return Err(ConfigError::invalid(
                        join(path, k),
                        "expected a string value",
                    ));
                };
                out.insert(k.clone(), Value::String(s.clone()));
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                let key = item.get("key").and_then(Value::as_str);
                let val = item.get("value").and_then(Value::as_str);
                let (Some(key), Some(val)) = (key, val) else {
                    return Err(ConfigError::invalid(
                        format!("{path}.[{i}]"),
                        "expected an object with string \"key\" and \"value\"",
                    ));
                };
                if out.contains_key(key) {
                    return Err(ConfigError::invalid(
                        format!("{path}.[{i}]"),
                        format!("duplicate key {key:?}"),
                    ));
                }
                out.insert(key.to_owned(), Value::String(val.to_owned()));
            }
        }
        _ => return Err(ConfigError::invalid(path, "expected a map of strings")),
    }
    for (k, v) in &mut out {
        if let Value::String(s) = v {
            *s = expand_vars(s, env).map_err(|var| {
                ConfigError::invalid(
                    join(path, k),
                    format!("environment variable {var:?} not found"),
                )
            })?;
        }
    }
    Ok(Value::Object(out))
}

/// Replaces every `${CENTRIFUGO_VAR_<NAME>}` with the variable's value; `Err(name)` when one
/// is not set.
pub(crate) fn expand_vars(s: &str, env: &Env) -> Result<String, String> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(start) = rest.find("${CENTRIFUGO_VAR_") {
        let Some(len) = rest[start..].find('}') else {
            break;
        };
        let name = &rest[start + 2..start + len];
        out.push_str(&rest[..start]);
        match env.raw(name) {
            Some(v) => out.push_str(v),
            None => return Err(name.to_owned()),
        }
        rest = &rest[start + len + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Converts values given in a looser form than their key's shape, as Centrifugo's decoder
/// (viper with weakly typed input) does for config files: a single string for a list of
/// strings (split on commas and white space, which also covers every form Centrifugo
/// lifts into a one-item list), `"true"`/`"1"` for booleans, `"8000"` for integers, and
/// numbers or booleans for strings. Anything that still does not fit is left for
/// [`check_types`] to report.
pub(crate) fn weaken(value: &mut Value, fields: &[(&'static str, Shape)]) {
    let Value::Object(map) = value else { return };
    for (key, shape) in fields {
        let Some(v) = map.get_mut(*key) else { continue };
        match shape {
            Shape::Struct(children) => weaken(v, children),
            Shape::List { item, .. } => {
                if let Value::Array(items) = v {
                    for elem in items {
                        weaken(elem, item);
                    }
                }
            }
            _ => {
                if let Some(loose) = weak_value(shape, v) {
                    *v = loose;
                }
            }
        }
    }
}

/// The strict form of one loosely typed scalar, or `None` when it is already strict or
/// cannot be converted.
fn weak_value(shape: &Shape, v: &Value) -> Option<Value> {
    match (shape, v) {
        (Shape::StrList, Value::String(s)) => Some(Value::Array(
            s.split(|c: char| c == ',' || c.is_whitespace())
                .filter(|part| !part.is_empty())
                .map(|part| Value::String(part.to_owned()))
                .collect(),
        )),
        (Shape::StrList, Value::Array(items)) if !items.iter().all(Value::is_string) => {
            let strings: Option<Vec<Value>> = items
                .iter()
                .map(|item| scalar_string(item).map(Value::String))
                .collect();
            strings.map(Value::Array)
        }
        (Shape::Bool, Value::String(s)) if s.is_empty() => Some(Value::Bool(false)),
        (Shape::Bool, Value::String(s)) => parse_go_bool(s).map(Value::Bool),
        (Shape::Bool, Value::Number(n)) => n.as_f64().map(|f| Value::Bool(f != 0.0)),
        (Shape::Int, Value::String(s)) => parse_go_int(s.trim()).map(Value::from),
        (Shape::Uint, Value::String(s)) => parse_go_int(s.trim())
            .and_then(|n| u64::try_from(n).ok())
            .map(Value::from),
        (Shape::Int | Shape::Uint, Value::Bool(b)) => Some(Value::from(u8::from(*b))),
        (Shape::Str, Value::Number(_) | Value::Bool(_)) => scalar_string(v).map(Value::String),
        _ => None,
    }
}

/// A number or boolean written the way Go's weak decoding writes it into a string.
fn scalar_string(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(if *b { "1" } else { "0" }.to_owned()),
        _ => None,
    }
}

/// Checks every value against its key's shape, so type errors name the exact key (serde's
/// own path stops at flattened sections).
pub(crate) fn check_types(
    value: &Value,
    fields: &[(&'static str, Shape)],
    path: &str,
) -> Result<(), ConfigError> {
    let Value::Object(map) = value else {
        return Ok(());
    };
    for (key, shape) in fields {
        let Some(v) = map.get(*key) else { continue };
        let key_path = join(path, key);
        let expected = match (shape, v) {
            (Shape::Struct(children), Value::Object(_)) => {
                check_types(v, children, &key_path)?;
                continue;
            }
            (Shape::List { item, .. }, Value::Array(items)) => {
                for (i, elem) in items.iter().enumerate() {
                    let elem_path = format!("{key_path}.[{i}]");
                    if !elem.is_object() {
                        return Err(ConfigError::invalid(elem_path, "expected an object"));
                    }
                    check_types(elem, item, &elem_path)?;
                }
                continue;
            }
            (Shape::Bool, Value::Bool(_))
            | (Shape::Str, Value::String(_))
            | (Shape::StrMap, Value::Object(_))
            | (Shape::Duration, Value::Number(_)) => continue,
            (Shape::Int, Value::Number(n)) if n.is_i64() => continue,
            (Shape::Uint, Value::Number(n)) if n.is_u64() => continue,
            (Shape::StrList, Value::Array(items)) if items.iter().all(Value::is_string) => continue,
            (Shape::Duration, Value::String(s)) => match Duration::parse(s) {
                Ok(_) => continue,
                Err(e) => return Err(ConfigError::invalid(key_path, e.to_string())),
            },
            (Shape::Struct(_), _) => "a section (map of keys)",
            (Shape::List { .. }, _) => "a list of objects",
            (Shape::Bool, _) => "a boolean",
            (Shape::Int, _) => "an integer",
            (Shape::Uint, _) => "a non-negative integer",
            (Shape::Str, _) => "a string",
            (Shape::Duration, _) => "a duration like \"25s\" or integer nanoseconds",
            (Shape::StrList, _) => "a list of strings",
            (Shape::StrMap, _) => "a map of strings",
        };
        return Err(ConfigError::invalid(
            key_path,
            format!("expected {expected}, got {v}"),
        ));
    }
    Ok(())
}
