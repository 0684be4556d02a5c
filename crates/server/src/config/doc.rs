//! The configuration reference (`gyre configdoc`): every key with its type, default and
//! env var, derived from the same schema the loader uses, so it cannot drift from what
//! Gyre reads.

use std::fmt::Write as _;

use serde_json::Value;

use super::env::{PREFIX, name_for_env};
use super::schema::{Shape, root};
use super::tree::{item_defaults, join};

/// One documented key (or section heading).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct KeyDoc {
    /// Dotted path; items of lists appear as `list[].key`.
    pub(crate) path: String,
    /// Nesting depth, 1 for top-level keys.
    pub(crate) level: usize,
    /// Human-readable type.
    pub(crate) kind: &'static str,
    /// The default as JSON, empty for sections.
    pub(crate) default: String,
    /// The environment variable that sets the key, if there is one.
    pub(crate) env: Option<String>,
}

/// Every key of the configuration, in declaration (upstream) order.
pub(crate) fn keys() -> Vec<KeyDoc> {
    let mut out = Vec::new();
    let defaults = super::default_tree();
    walk(
        root(),
        &defaults,
        "",
        1,
        &mut |path| Some(format!("{PREFIX}_{}", env_part(path))),
        &mut out,
    );
    out
}

fn env_part(path: &str) -> String {
    name_for_env(path).to_ascii_uppercase()
}

fn walk(
    fields: &[(&'static str, Shape)],
    defaults: &Value,
    path: &str,
    level: usize,
    env: &mut dyn FnMut(&str) -> Option<String>,
    out: &mut Vec<KeyDoc>,
) {
    for (key, shape) in fields {
        let key_path = join(path, key);
        let default = defaults.get(*key).unwrap_or(&Value::Null);
        let var = env(&key_path);
        match shape {
            Shape::Struct(children) => {
                out.push(KeyDoc {
                    path: key_path.clone(),
                    level,
                    kind: "section",
                    default: String::new(),
                    env: None,
                });
                walk(children, default, &key_path, level + 1, env, out);
            }
            Shape::List { item, named } => {
                out.push(KeyDoc {
                    path: key_path.clone(),
                    level,
                    kind: if *named {
                        "list of named objects (env: JSON array or space-separated names)"
                    } else {
                        "list of objects (env: JSON array)"
                    },
                    default: render(default),
                    env: var.clone(),
                });
                let item_default = item_defaults(&key_path);
                let item_path = format!("{key_path}[]");
                // Keys of a named item are set per item: <LIST>_<NAME>_<KEY>.
                let mut item_env = |p: &str| {
                    let rest = p.strip_prefix(&item_path)?.trim_start_matches('.');
                    (*named && rest != "name").then(|| {
                        format!(
                            "{}_<NAME>_{}",
                            var.as_deref().unwrap_or_default(),
                            env_part(rest)
                        )
                    })
                };
                walk(
                    item,
                    &item_default,
                    &item_path,
                    level + 1,
                    &mut item_env,
                    out,
                );
            }
            _ => out.push(KeyDoc {
                path: key_path,
                level,
                kind: kind(shape),
                default: render(default),
                env: var,
            }),
        }
    }
}

fn kind(shape: &Shape) -> &'static str {
    match shape {
        Shape::Bool => "boolean",
        Shape::Int => "integer",
        Shape::Uint => "non-negative integer",
        Shape::Str => "string",
        Shape::Duration => "duration (\"25s\", \"1m30s\" or integer nanoseconds)",
        Shape::StrList => "list of strings (a single string is split on commas and spaces)",
        Shape::StrMap => "map of strings",
        Shape::Struct(_) => "section",
        Shape::List { .. } => "list of objects",
    }
}

fn render(v: &Value) -> String {
    match v {
        Value::Null => "null".to_owned(),
        other => other.to_string(),
    }
}

const INTRO: &str = "Every key Gyre reads, with its type, default and environment variable. \
Keys and defaults are Centrifugo v6's; `GYRE_` works wherever `CENTRIFUGO_` does. Keys under \
`gyre` and `engine.memory` are Gyre's own (marked \"Gyre extension\").";

/// Key paths (and everything under them) that Centrifugo does not have.
const EXTENSIONS: &[&str] = &["gyre", "engine.memory"];

fn is_extension(path: &str) -> bool {
    EXTENSIONS.iter().any(|ext| {
        path.strip_prefix(ext)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('.'))
    })
}

/// The reference as Markdown; `section` keeps only keys under that top-level key,
/// `base_level` shifts heading levels (to embed the text in another document).
pub(crate) fn markdown(section: Option<&str>, base_level: usize) -> String {
    let mut out = String::from("# Gyre configuration reference\n\n");
    let _ = writeln!(out, "{INTRO}\n");
    for key in selected(section) {
        let hashes = "#".repeat((key.level + 1 + base_level).min(6));
        let _ = writeln!(out, "{hashes} `{}`\n", key.path);
        if key.kind == "section" {
            continue;
        }
        let _ = write!(out, "Type: {}. Default: `{}`.", key.kind, key.default);
        if is_extension(&key.path) {
            out.push_str(" Gyre extension.");
        }
        if let Some(env) = &key.env {
            let _ = write!(out, " Env: `{env}`.");
        }
        out.push_str("\n\n");
    }
    out
}

/// The reference as one self-contained HTML page with a filter box.
pub(crate) fn html(section: Option<&str>) -> String {
    let mut rows = String::new();
    for key in selected(section) {
        let class = if key.kind == "section" {
            " class=\"section\""
        } else {
            ""
        };
        let _ = writeln!(
            rows,
            "<tr{class}><td style=\"padding-left:{}em\"><code>{}</code></td><td>{}</td>\
             <td><code>{}</code></td><td><code>{}</code></td></tr>",
            (key.level - 1) * 2,
            escape(&key.path),
            escape(&if is_extension(&key.path) {
                format!("{} (Gyre extension)", key.kind)
            } else {
                key.kind.to_owned()
            }),
            escape(&key.default),
            escape(key.env.as_deref().unwrap_or("")),
        );
    }
    format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Gyre configuration reference</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
:root {{ color-scheme: light dark; font-family: system-ui, sans-serif; }}
body {{ margin: 2rem; }}
table {{ border-collapse: collapse; width: 100%; }}
td, th {{ text-align: left; padding: .25rem .5rem; border-bottom: 1px solid #8884; vertical-align: top; }}
tr.section td {{ font-weight: 600; }}
input {{ font-size: 1rem; padding: .3rem; width: 24rem; max-width: 100%; }}
</style></head><body>
<h1>Gyre configuration reference</h1>
<p>{intro}</p>
<p><label>Filter keys: <input id="filter" type="search" autofocus></label></p>
<table><thead><tr><th>Key</th><th>Type</th><th>Default</th><th>Env</th></tr></thead>
<tbody id="keys">
{rows}</tbody></table>
<script>
document.getElementById('filter').addEventListener('input', (e) => {{
  const q = e.target.value.toLowerCase();
  for (const row of document.querySelectorAll('#keys tr')) {{
    row.hidden = q !== '' && !row.textContent.toLowerCase().includes(q);
  }}
}});
</script>
</body></html>
"#,
        intro = escape(INTRO),
    )
}

fn selected(section: Option<&str>) -> impl Iterator<Item = KeyDoc> {
    let section = section.map(str::to_owned);
    keys().into_iter().filter(move |k| {
        section.as_deref().is_none_or(|s| {
            k.path == s
                || k.path
                    .strip_prefix(s)
                    .is_some_and(|rest| rest.starts_with(['.', '[']))
        })
    })
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Env, LoadOptions, load_unvalidated};

    #[test]
    fn every_env_var_the_loader_knows_is_documented() {
        let loaded = load_unvalidated(LoadOptions {
            path: None,
            flags: Vec::new(),
            env: Env::default(),
        })
        .unwrap();
        let documented: std::collections::BTreeSet<String> =
            keys().into_iter().filter_map(|k| k.env).collect();
        for name in loaded.known_env.keys() {
            assert!(documented.contains(name), "{name} is not documented");
        }
    }

    #[test]
    fn keys_carry_defaults_and_item_env_names() {
        let keys = keys();
        let find = |p: &str| {
            keys.iter()
                .find(|k| k.path == p)
                .unwrap_or_else(|| panic!("{p}"))
        };
        let port = find("http_server.port");
        assert_eq!(port.default, "8000");
        assert_eq!(port.env.as_deref(), Some("CENTRIFUGO_HTTP_SERVER_PORT"));
        assert_eq!(find("client.channel_limit").default, "128");
        let presence = find("channel.namespaces[].presence");
        assert_eq!(
            presence.env.as_deref(),
            Some("CENTRIFUGO_CHANNEL_NAMESPACES_<NAME>_PRESENCE")
        );
        assert_eq!(presence.kind, "boolean");
        assert_eq!(find("channel.namespaces[].name").env, None);
    }

    #[test]
    fn markdown_filters_by_section_and_html_escapes() {
        let md = markdown(Some("client"), 0);
        assert!(md.contains("## `client`\n"));
        assert!(md.contains("`client.ping_interval`"));
        assert!(!md.contains("`http_server.port`"));
        let page = html(None);
        assert!(page.contains("<code>channel.namespaces[].presence</code>"));
        assert!(page.contains("&lt;NAME&gt;"));
    }

    #[test]
    fn gyre_extensions_are_marked() {
        let md = markdown(Some("engine"), 0);
        assert!(md.contains("`engine.memory.data_dir`"), "{md}");
        let data_dir = md.split("`engine.memory.data_dir`").nth(1).unwrap();
        let line = data_dir.lines().find(|l| l.starts_with("Type:")).unwrap();
        assert!(line.contains("Default: `\"\"`"), "{line}");
        assert!(line.contains("Gyre extension."), "{line}");
        assert!(line.contains("CENTRIFUGO_ENGINE_MEMORY_DATA_DIR"), "{line}");
        // Centrifugo's own keys are not marked.
        let redis = md.split("`engine.redis.prefix`").nth(1).unwrap();
        let line = redis.lines().find(|l| l.starts_with("Type:")).unwrap();
        assert!(!line.contains("Gyre extension"), "{line}");
        assert!(html(Some("engine")).contains("string (Gyre extension)"));
        assert!(is_extension("gyre.allow_unsupported"));
        assert!(!is_extension("gyre_like"));
    }
}
