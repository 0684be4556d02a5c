//! The library's modules import one way: each top-level module may use only the modules
//! listed before it in [`ORDER`]. This test reads the sources and fails on an import that
//! goes upwards (say `use crate::node` in `client`), or on a top-level module missing
//! from the list. Test code (`tests.rs` files, `#[cfg(test)] mod tests { … }` blocks) may
//! reach anywhere. See ARCHITECTURE.md at the repository root for the picture.

use std::collections::HashMap;
use std::path::Path;

/// Top-level modules, lowest first.
const ORDER: &[&str] = &[
    // Foundations: values, extension points and counters; no connection state.
    "metrics",
    "filter",
    "broker",
    "presence",
    "controller",
    "recovery",
    "events",
    "config",
    // The publish path, bottom to top.
    "wire",
    "queue",
    "hub",
    "shared_poll",
    "shared",
    "session",
    "client",
    "node",
    "transport",
    "local",
];

/// Names `lib.rs` re-exports at the crate root (`crate::Node`), by the module they come
/// from.
fn root_names(lib: &str) -> HashMap<String, String> {
    let mut names = HashMap::new();
    let mut rest = lib;
    while let Some(at) = rest.find("pub use ") {
        rest = &rest[at + "pub use ".len()..];
        let end = rest.find(';').unwrap_or(rest.len());
        let item = &rest[..end];
        if let Some((module, list)) = item.split_once("::") {
            let list = list.trim().trim_start_matches('{').trim_end_matches('}');
            for name in list.split(',') {
                let name = name.trim();
                if !name.is_empty() {
                    names.insert(name.to_owned(), module.trim().to_owned());
                }
            }
        }
        rest = &rest[end..];
    }
    names
}

/// The source without its test blocks and comment lines.
fn production_code(source: &str) -> String {
    let mut code = source.to_owned();
    while let Some(start) = code.find("#[cfg(test)]\nmod tests {") {
        // Test modules are indented: the first `}` in column 0 closes it.
        let end = code[start..]
            .find("\n}")
            .map_or(code.len(), |i| start + i + 2);
        code.replace_range(start..end, "");
    }
    code.lines()
        .filter(|line| !line.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The top-level modules (or root names) `code` refers to with `prefix` (`crate::`, or
/// `super::` in a top-level module's own file).
fn crate_paths(code: &str, prefix: &str) -> Vec<String> {
    let ident = |s: &str| -> String {
        s.chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect()
    };
    let mut out = Vec::new();
    let mut rest = code;
    while let Some(at) = rest.find(prefix) {
        // `super::` must not match the tail of an identifier.
        let whole = rest[..at]
            .chars()
            .next_back()
            .is_none_or(|c| !(c.is_alphanumeric() || c == '_'));
        rest = &rest[at + prefix.len()..];
        if !whole {
            continue;
        }
        if let Some(group) = rest.strip_prefix('{') {
            // `crate::{a::B, C}`: the first segment of every top-level item.
            let mut depth = 0;
            let mut item_start = true;
            for (i, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => item_start = true,
                    c if item_start && !c.is_whitespace() => {
                        out.push(ident(&group[i..]));
                        item_start = false;
                    }
                    _ => {}
                }
            }
        } else {
            out.push(ident(rest));
        }
    }
    out
}

/// Every import that breaks the order, as `file: module -> used`.
fn violations(files: &[(String, String)], lib: &str) -> Vec<String> {
    let roots = root_names(lib);
    let rank = |m: &str| ORDER.iter().position(|o| *o == m);
    let mut found = Vec::new();
    for (path, source) in files {
        let module = path
            .split('/')
            .next()
            .unwrap_or_default()
            .trim_end_matches(".rs");
        let Some(own) = rank(module) else {
            found.push(format!("{path}: module `{module}` is not in ORDER"));
            continue;
        };
        let code = production_code(source);
        let mut names = crate_paths(&code, "crate::");
        // In `x.rs` or `x/mod.rs`, `super` is the crate root.
        if !path.trim_end_matches("/mod.rs").contains('/') {
            names.extend(crate_paths(&code, "super::"));
        }
        for name in names {
            let used = if name.starts_with(char::is_uppercase) {
                match roots.get(&name) {
                    Some(m) => m.clone(),
                    None => continue,
                }
            } else {
                name
            };
            // External crates re-exported at the root (gyre_protocol) have no rank.
            if let Some(theirs) = rank(&used)
                && theirs > own
            {
                found.push(format!("{path}: {module} -> {used}"));
            }
        }
    }
    found
}

fn sources(dir: &Path, prefix: &str, out: &mut Vec<(String, String)>) {
    for entry in std::fs::read_dir(dir).expect("read src") {
        let entry = entry.expect("dir entry");
        let name = entry.file_name().to_string_lossy().into_owned();
        let path = entry.path();
        let relative = format!("{prefix}{name}");
        if path.is_dir() {
            sources(&path, &format!("{relative}/"), out);
        } else if name.ends_with(".rs")
            && name != "tests.rs"
            && relative != "lib.rs"
            && relative != "module_order.rs"
        {
            out.push((relative, std::fs::read_to_string(&path).expect("read file")));
        }
    }
}

#[test]
fn modules_import_one_way() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, "", &mut files);
    assert!(files.len() > 20, "found only {} source files", files.len());
    let lib = include_str!("lib.rs");
    let found = violations(&files, lib);
    assert!(
        found.is_empty(),
        "imports against the module order:\n{found:#?}"
    );
}

#[test]
fn an_upward_import_is_caught() {
    let lib = include_str!("lib.rs");
    let file = |path: &str, source: &str| (path.to_owned(), source.to_owned());
    let bad = [
        file("client/mod.rs", "use crate::node::Node;\n"),
        file("hub/mod.rs", "use crate::{broker::Publication, Client};\n"),
        file("queue.rs", "fn f() { crate::hub::Hub::default(); }\n"),
        file("client/commands/x.rs", "use crate::{Node, Error};\n"),
        file("newcomer.rs", "use crate::broker::Broker;\n"),
        file("wire.rs", "use super::hub::Hub;\n"),
    ];
    assert_eq!(
        violations(&bad, lib),
        vec![
            "client/mod.rs: client -> node",
            "hub/mod.rs: hub -> client",
            "queue.rs: queue -> hub",
            "client/commands/x.rs: client -> node",
            "newcomer.rs: module `newcomer` is not in ORDER",
            "wire.rs: wire -> hub",
        ]
    );
    let fine = [
        file(
            "hub/mod.rs",
            "use crate::queue::Outbound;\nuse crate::Error;\n",
        ),
        file("client/mod.rs", "// use crate::node::Node;\n"),
        file("client/commands/x.rs", "use super::super::ClientInner;\n"),
        file(
            "node/mod.rs",
            "use crate::hub::Hub;\n#[cfg(test)]\nmod tests {\n    use crate::LocalConnection;\n}\n",
        ),
    ];
    assert_eq!(violations(&fine, lib), Vec::<String>::new());
}
