//! Snapshots of the configuration's shape: the key tree with the kind of every key, the
//! defaults (also of one item of every list) and what `defaultenv` prints with no input.
//!
//! They pin the behaviour of the declarations in `sections/`: a change to a key, a kind or a
//! default shows up here as a diff. After an intended change, regenerate the files with
//! `GYRE_UPDATE_SNAPSHOTS=1 cargo test -p gyre-server config::snapshot_tests` and review
//! the diff.

use std::path::PathBuf;

use serde_json::{Map, Value};

use super::schema::{self, Shape};
use super::*;

fn snapshot_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("src/config/snapshots")
        .join(name)
}

/// Compares `actual` with the committed file, or rewrites the file when asked to.
fn check(name: &str, actual: &str) {
    let path = snapshot_path(name);
    if std::env::var_os("GYRE_UPDATE_SNAPSHOTS").is_some() {
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    if expected == actual {
        return;
    }
    let first = expected
        .lines()
        .zip(actual.lines())
        .position(|(e, a)| e != a)
        .unwrap_or_else(|| expected.lines().count().min(actual.lines().count()));
    panic!(
        "{} differs from the current configuration at line {}:\n  committed: {:?}\n  current:   {:?}\n\
         If the change is intended, regenerate with \
         `GYRE_UPDATE_SNAPSHOTS=1 cargo test -p gyre-server config::snapshot_tests` and review the diff.",
        path.display(),
        first + 1,
        expected.lines().nth(first).unwrap_or("<end of file>"),
        actual.lines().nth(first).unwrap_or("<end of file>"),
    );
}

fn kind(shape: &Shape) -> &'static str {
    match shape {
        Shape::Bool => "bool",
        Shape::Int => "int",
        Shape::Uint => "uint",
        Shape::Str => "str",
        Shape::Duration => "duration",
        Shape::StrList => "str_list",
        Shape::StrMap => "str_map",
        Shape::Struct(_) => "struct",
        Shape::List { named: true, .. } => "named_list",
        Shape::List { named: false, .. } => "list",
    }
}

/// One line per key, in declaration order: `path: kind`; list items as `path[].key`.
fn schema_lines(fields: &[(&'static str, Shape)], prefix: &str, out: &mut Vec<Value>) {
    for (key, shape) in fields {
        let path = format!("{prefix}{key}");
        out.push(Value::String(format!("{path}: {}", kind(shape))));
        match shape {
            Shape::Struct(children) => schema_lines(children, &format!("{path}."), out),
            Shape::List { item, .. } => schema_lines(item, &format!("{path}[]."), out),
            _ => {}
        }
    }
}

/// An input where every section is present and every list holds one item with all its
/// nested lists holding one item too, so that deserializing it shows the item defaults.
fn one_of_everything(fields: &[(&'static str, Shape)]) -> Map<String, Value> {
    let mut map = Map::new();
    for (key, shape) in fields {
        match shape {
            Shape::Struct(children) => {
                map.insert(
                    (*key).to_owned(),
                    Value::Object(one_of_everything(children)),
                );
            }
            Shape::List { item, .. } => {
                let item = Value::Object(one_of_everything(item));
                map.insert((*key).to_owned(), Value::Array(vec![item]));
            }
            _ => {}
        }
    }
    map
}

#[test]
fn schema_snapshot() {
    let mut lines = Vec::new();
    schema_lines(schema::root(), "", &mut lines);
    let text = serde_json::to_string_pretty(&lines).unwrap() + "\n";
    check("schema.json", &text);
}

#[test]
fn defaults_snapshot() {
    let text = serde_json::to_string_pretty(&Config::default()).unwrap() + "\n";
    check("defaults.json", &text);
}

#[test]
fn item_defaults_snapshot() {
    let input = Value::Object(one_of_everything(schema::root()));
    let config: Config = serde_json::from_value(input).unwrap();
    let text = serde_json::to_string_pretty(&config).unwrap() + "\n";
    check("defaults_with_items.json", &text);
}

#[test]
fn defaultenv_snapshot() {
    let loaded = load(LoadOptions {
        path: None,
        flags: Vec::new(),
        env: Env::default(),
    })
    .unwrap();
    let mut text = String::new();
    for (name, var) in &loaded.known_env {
        let value = loaded.tree.pointer(&var.pointer).unwrap_or(&Value::Null);
        text.push_str(&format!("{name}={}\n", env::format_value(value, var.shape)));
    }
    check("defaultenv.txt", &text);
}
