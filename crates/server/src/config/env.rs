//! Environment variables, mapped the way Centrifugo v6 maps them.
//!
//! The name of every key is `CENTRIFUGO_` + its path upper-cased and joined with `_`
//! (`client.token.hmac_secret_key` → `CENTRIFUGO_CLIENT_TOKEN_HMAC_SECRET_KEY`). Names are
//! derived from the schema, never split back, so keys containing `_` are unambiguous.
//! Values are parsed by the key's type: Go `ParseBool`, Go `ParseInt` (base prefixes),
//! Go durations, string lists split on spaces, string maps and object lists as JSON. Named
//! lists (`CHANNEL_NAMESPACES`, `RPC_NAMESPACES`, `PROXIES`, `CONSUMERS`) also take a
//! space-separated list of names, and each item (from the file or from env) then reads
//! `<LIST>_<NAME>_<KEY>` with `.` and `-` in the name replaced by `_`. An empty variable is
//! unset.
//!
//! `GYRE_<REST>` is an alias of `CENTRIFUGO_<REST>` for every key. When both are set,
//! `CENTRIFUGO_` wins (a Centrifugo deployment keeps behaving as before) and a warning names
//! the ignored `GYRE_` variable.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use regex::Regex;
use serde_json::{Map, Value};

use super::duration::Duration;
use super::error::ConfigError;
use super::schema::Shape;

pub(crate) const PREFIX: &str = "CENTRIFUGO";
pub(crate) const ALIAS_PREFIX: &str = "GYRE";

/// A snapshot of environment variables.
#[derive(Debug, Clone, Default)]
pub(crate) struct Env {
    vars: BTreeMap<String, String>,
}

impl Env {
    /// The process environment (variables that are not valid UTF-8 are skipped).
    pub(crate) fn from_process() -> Self {
        Self::from_pairs(
            std::env::vars_os()
                .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?))),
        )
    }

    pub(crate) fn from_pairs<K: Into<String>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        Self {
            vars: pairs
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        }
    }

    /// Exact lookup, empty values included.
    pub(crate) fn raw(&self, name: &str) -> Option<&str> {
        self.vars.get(name).map(String::as_str)
    }

    /// Looks up a canonical `CENTRIFUGO_*` name, falling back to its `GYRE_*` alias; empty
    /// values count as unset. Returns the variable actually used and its value.
    fn lookup(&self, canonical: &str) -> Option<(String, &str)> {
        if let Some(v) = self.raw(canonical).filter(|v| !v.is_empty()) {
            return Some((canonical.to_owned(), v));
        }
        let alias = alias_of(canonical);
        self.raw(&alias)
            .filter(|v| !v.is_empty())
            .map(|v| (alias, v))
    }
}

fn alias_of(canonical: &str) -> String {
    format!("{ALIAS_PREFIX}{}", &canonical[PREFIX.len()..])
}

/// What the loader knows about one env var name.
#[derive(Debug, Clone)]
pub(crate) struct KnownVar {
    /// JSON pointer of the key in the configuration tree (`/client/token/hmac_secret_key`).
    pub(crate) pointer: String,
    pub(crate) shape: &'static Shape,
}

/// Every env var name the configuration understands, sorted.
pub(crate) type KnownVars = BTreeMap<String, KnownVar>;

/// Applies env vars onto `tree` (already defaults ← file), recording every known name and
/// returning warnings (alias conflicts).
pub(crate) fn apply(
    tree: &mut Value,
    fields: &'static [(&'static str, Shape)],
    env: &Env,
    known: &mut KnownVars,
) -> Result<Vec<String>, ConfigError> {
    let mut warnings = Vec::new();
    if let Value::Object(map) = tree {
        walk(map, fields, PREFIX, "", env, known, &mut warnings)?;
    }
    Ok(warnings)
}

fn walk(
    obj: &mut Map<String, Value>,
    fields: &'static [(&'static str, Shape)],
    prefix: &str,
    pointer: &str,
    env: &Env,
    known: &mut KnownVars,
    warnings: &mut Vec<String>,
) -> Result<(), ConfigError> {
    for (key, shape) in fields {
        let name = format!("{prefix}_{}", key.to_ascii_uppercase());
        let ptr = format!("{pointer}/{key}");
        if let Shape::Struct(children) = shape {
            let existed = obj.contains_key(*key);
            let child = obj.entry(*key).or_insert_with(|| Value::Object(Map::new()));
            if let Value::Object(child_map) = child {
                walk(child_map, children, &name, &ptr, env, known, warnings)?;
                if !existed && child_map.is_empty() {
                    obj.remove(*key);
                }
            }
            continue;
        }
        known.insert(
            name.clone(),
            KnownVar {
                pointer: ptr.clone(),
                shape,
            },
        );
        if let Some((var, raw)) = env.lookup(&name) {
            if var == name {
                let alias = alias_of(&name);
                if env.raw(&alias).is_some_and(|v| !v.is_empty() && v != raw) {
                    warnings.push(format!(
                        "env var {alias} ignored: {name} is set and takes precedence"
                    ));
                }
            }
            let existing = obj.remove(*key);
            let parsed = parse(shape, raw, existing).map_err(|reason| ConfigError::Env {
                var: var.clone(),
                value: raw.to_owned(),
                reason,
            })?;
            obj.insert((*key).to_owned(), parsed);
        }
        if let Shape::List { item, named: true } = shape
            && let Some(Value::Array(items)) = obj.get_mut(*key)
        {
            for (i, elem) in items.iter_mut().enumerate() {
                let Value::Object(elem_map) = elem else {
                    continue;
                };
                let item_name = elem_map
                    .get("name")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                let item_prefix =
                    format!("{name}_{}", name_for_env(item_name).to_ascii_uppercase());
                walk(
                    elem_map,
                    item,
                    &item_prefix,
                    &format!("{ptr}/{i}"),
                    env,
                    known,
                    warnings,
                )?;
            }
        }
    }
    Ok(())
}

/// Centrifugo's `NameForEnv`: `.` and `-` become `_`.
pub(crate) fn name_for_env(name: &str) -> String {
    name.replace(['.', '-'], "_")
}

/// Parses one env value for a key of the given shape. `existing` is the value the key had
/// (named lists given as names append to it, like Centrifugo).
fn parse(shape: &Shape, raw: &str, existing: Option<Value>) -> Result<Value, String> {
    Ok(match shape {
        Shape::Bool => Value::Bool(parse_go_bool(raw).ok_or("invalid syntax for a boolean")?),
        Shape::Int => Value::from(parse_go_int(raw).ok_or("invalid syntax for an integer")?),
        Shape::Uint => {
            let n = parse_go_int(raw).ok_or("invalid syntax for an unsigned integer")?;
            Value::from(u64::try_from(n).map_err(|_| "value out of range")?)
        }
        Shape::Str => Value::String(raw.to_owned()),
        Shape::Duration => {
            Duration::parse(raw).map_err(|e| e.to_string())?;
            Value::String(raw.to_owned())
        }
        Shape::StrList => {
            if raw.trim().is_empty() {
                Value::Array(Vec::new())
            } else {
                Value::Array(
                    raw.split(' ')
                        .map(|s| Value::String(s.to_owned()))
                        .collect(),
                )
            }
        }
        Shape::StrMap => {
            let map: BTreeMap<String, String> = serde_json::from_str(raw)
                .map_err(|e| format!("expected a JSON object of strings: {e}"))?;
            serde_json::to_value(map).map_err(|e| e.to_string())?
        }
        Shape::List { named, .. } => {
            if !named || (raw.starts_with('[') && raw.ends_with(']')) {
                let items: Vec<Value> =
                    serde_json::from_str(raw).map_err(|e| format!("expected a JSON array: {e}"))?;
                Value::Array(items)
            } else {
                let mut items = match existing {
                    Some(Value::Array(items)) => items,
                    _ => Vec::new(),
                };
                for name in raw.split(' ') {
                    let mut item = Map::new();
                    item.insert("name".to_owned(), Value::String(name.to_owned()));
                    items.push(Value::Object(item));
                }
                Value::Array(items)
            }
        }
        Shape::Struct(_) => return Err("a section cannot be set from one variable".to_owned()),
    })
}

/// Go `strconv.ParseBool`.
pub(crate) fn parse_go_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// Go `strconv.ParseInt(s, 0, 64)`: optional sign, `0x`/`0o`/`0b`/leading-`0` prefixes,
/// `_` separators only after a prefix.
pub(crate) fn parse_go_int(s: &str) -> Option<i64> {
    let (neg, body) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let lower = body.to_ascii_lowercase();
    let (radix, digits, prefixed) = if let Some(d) = lower.strip_prefix("0x") {
        (16, d.to_owned(), true)
    } else if let Some(d) = lower.strip_prefix("0o") {
        (8, d.to_owned(), true)
    } else if let Some(d) = lower.strip_prefix("0b") {
        (2, d.to_owned(), true)
    } else if lower.len() > 1 && lower.starts_with('0') {
        (8, lower[1..].to_owned(), true)
    } else {
        (10, lower.clone(), false)
    };
    if digits.contains('_') && (!prefixed || digits.ends_with('_') || digits.contains("__")) {
        return None;
    }
    let digits = digits.replace('_', "");
    if digits.is_empty() || digits.starts_with(['+', '-']) {
        return None;
    }
    let magnitude = u64::from_str_radix(&digits, radix).ok()?;
    if neg {
        if magnitude == 1 << 63 {
            Some(i64::MIN)
        } else {
            i64::try_from(magnitude).ok().map(|v| -v)
        }
    } else {
        i64::try_from(magnitude).ok()
    }
}

/// Env vars with our prefixes that no key uses. Like Centrifugo, skips variables that
/// Kubernetes injects for services (`CENTRIFUGO_*_PORT*`, `CENTRIFUGO_*_SERVICE_*`) and
/// `CENTRIFUGO_VAR_*` (values for `${...}` expansion).
pub(crate) fn unknown_vars(env: &Env, known: &KnownVars) -> Vec<String> {
    static K8S: OnceLock<Regex> = OnceLock::new();
    let k8s = K8S.get_or_init(|| {
        Regex::new(r"^CENTRIFUGO(?:_[A-Z0-9_]+)?_(PORT|SERVICE_)").expect("valid regex")
    });
    let mut unknown = Vec::new();
    for name in env.vars.keys() {
        let canonical = if name.starts_with("CENTRIFUGO_") {
            name.clone()
        } else if let Some(rest) = name.strip_prefix("GYRE_") {
            format!("CENTRIFUGO_{rest}")
        } else {
            continue;
        };
        if k8s.is_match(&canonical) || canonical.starts_with("CENTRIFUGO_VAR_") {
            continue;
        }
        if !known.contains_key(&canonical) {
            unknown.push(name.clone());
        }
    }
    unknown
}

/// Formats a value for `defaultenv` the way `centrifugo defaultenv` prints it.
pub(crate) fn format_value(value: &Value, shape: &Shape) -> String {
    let quote_json = |v: &Value| format!("\"{}\"", v.to_string().replace('"', "\\\""));
    match (shape, value) {
        (Shape::Str, Value::String(s)) => format!("\"{s}\""),
        (Shape::StrList, Value::Array(items)) => {
            if items.is_empty() {
                "\"\"".to_owned()
            } else {
                items
                    .iter()
                    .map(|v| format!("\"{}\"", v.as_str().unwrap_or_default()))
                    .collect::<Vec<_>>()
                    .join(" ")
            }
        }
        (Shape::List { named: true, .. }, Value::Array(items)) => {
            let names: Vec<&str> = items
                .iter()
                .map(|i| i.get("name").and_then(Value::as_str).unwrap_or_default())
                .collect();
            format!("{:?}", names.join(" "))
        }
        (Shape::List { .. } | Shape::StrMap, v) => quote_json(v),
        (_, Value::String(s)) => s.clone(),
        (_, Value::Null) => String::new(),
        (_, v) => v.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_bool_syntax() {
        for t in ["1", "t", "T", "TRUE", "true", "True"] {
            assert_eq!(parse_go_bool(t), Some(true), "{t}");
        }
        for f in ["0", "f", "F", "FALSE", "false", "False"] {
            assert_eq!(parse_go_bool(f), Some(false), "{f}");
        }
        for bad in ["yes", "on", "tRuE", "", " true"] {
            assert_eq!(parse_go_bool(bad), None, "{bad}");
        }
    }

    #[test]
    fn go_int_syntax() {
        assert_eq!(parse_go_int("8000"), Some(8000));
        assert_eq!(parse_go_int("-12"), Some(-12));
        assert_eq!(parse_go_int("+7"), Some(7));
        assert_eq!(parse_go_int("0x10"), Some(16));
        assert_eq!(parse_go_int("0o17"), Some(15));
        assert_eq!(parse_go_int("017"), Some(15));
        assert_eq!(parse_go_int("0b101"), Some(5));
        assert_eq!(parse_go_int("0x_1_0"), Some(16));
        assert_eq!(parse_go_int("0"), Some(0));
        assert_eq!(parse_go_int("-9223372036854775808"), Some(i64::MIN));
        for bad in [
            "",
            "1_000",
            "12a",
            "--1",
            "9223372036854775808",
            "0x",
            "1.5",
            " 1",
        ] {
            assert_eq!(parse_go_int(bad), None, "{bad}");
        }
    }

    #[test]
    fn k8s_and_var_env_are_not_unknown() {
        let env = Env::from_pairs([
            ("CENTRIFUGO_PORT_8000_TCP", "x"),
            ("CENTRIFUGO_SERVICE_HOST", "x"),
            ("CENTRIFUGO_VAR_SECRET", "x"),
            ("CENTRIFUGO_NOPE", "x"),
            ("GYRE_NOPE_EITHER", "x"),
            ("OTHER", "x"),
        ]);
        assert_eq!(
            unknown_vars(&env, &KnownVars::new()),
            vec!["CENTRIFUGO_NOPE".to_owned(), "GYRE_NOPE_EITHER".to_owned()]
        );
    }
}
