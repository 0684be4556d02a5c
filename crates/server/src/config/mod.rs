//! Configuration with Centrifugo v6 keys, defaults, file formats, env and flags.
//!
//! [`load`] builds the configuration in layers, as a JSON value tree, then deserializes it:
//! defaults (`Config::default()`) ← file (`.json`, `.yaml`/`.yml`, `.toml`, by extension; a
//! missing file is tolerated) ← env vars (`CENTRIFUGO_*`, see [`env`](mod@env)) ← command-line flags.
//! Keys that are zero after layering get their default, as in Centrifugo. Unknown keys and
//! env vars, ignored aliases and features Gyre does not implement yet become warnings;
//! invalid values are a [`ConfigError`] naming the key.

pub(crate) mod channels;
pub(crate) mod doc;
mod duration;
pub(crate) mod env;
mod error;
mod format;
mod schema;
mod sections;
mod tree;
mod unsupported;
mod validate;

use std::path::PathBuf;

use serde_json::Value;

pub(crate) use duration::Duration;
pub(crate) use env::{Env, KnownVars};
pub(crate) use error::ConfigError;
#[allow(
    unused_imports,
    reason = "API for the server modules that resolve channels"
)]
pub(crate) use error::UnknownNamespace;
pub(crate) use format::Format;
#[allow(
    unused_imports,
    reason = "the full configuration tree is API for the server modules"
)]
pub(crate) use sections::*;
pub(crate) use unsupported::{Unsupported, unsupported, unsupported_features};

/// Default config file name (`-c/--config`).
pub(crate) const DEFAULT_CONFIG_FILE: &str = "config.json";

/// Inputs of [`load`].
#[derive(Debug, Clone)]
pub(crate) struct LoadOptions {
    /// Config file; `None` reads no file.
    pub(crate) path: Option<PathBuf>,
    /// Values set on the command line, by dotted key path (`http_server.port`).
    pub(crate) flags: Vec<(String, Value)>,
    /// Environment to read `CENTRIFUGO_*`/`GYRE_*` variables from.
    pub(crate) env: Env,
}

impl LoadOptions {
    /// Reads `path` (if any) and the process environment, no flags.
    pub(crate) fn new(path: Option<PathBuf>) -> Self {
        Self {
            path,
            flags: Vec::new(),
            env: Env::from_process(),
        }
    }
}

/// A loaded and validated configuration.
#[derive(Debug, Clone)]
pub(crate) struct Loaded {
    pub(crate) config: Config,
    /// Human-readable warnings to log at start (unknown keys/env vars, unsupported features
    /// that decide no access).
    pub(crate) warnings: Vec<String>,
    /// Configured features Gyre does not implement (`checkconfig --strict` fails on any;
    /// the server refuses to run with one that decides access, see [`Loaded::refusal`]).
    pub(crate) unsupported: Vec<Unsupported>,
    /// Unknown keys in the file (`checkconfig --strict` fails on them).
    pub(crate) unknown_keys: Vec<String>,
    /// Unknown `CENTRIFUGO_*`/`GYRE_*` env vars.
    pub(crate) unknown_env: Vec<String>,
    /// Whether the config file existed.
    pub(crate) file_found: bool,
    /// Every env var name the configuration understands (for `defaultenv`).
    pub(crate) known_env: KnownVars,
    /// The final value tree, as deserialized.
    pub(crate) tree: Value,
}

impl Loaded {
    /// Errors to log at start: one per configured feature that Gyre does not implement and
    /// that decides who may connect, subscribe, publish or call RPC.
    pub(crate) fn access_errors(&self) -> Vec<String> {
        self.unsupported
            .iter()
            .filter(|u| u.instead.is_some())
            .map(Unsupported::message)
            .collect()
    }

    /// Why the server must not run with this configuration: a feature from
    /// [`Loaded::access_errors`] without the `gyre.allow_unsupported` opt-in.
    pub(crate) fn refusal(&self) -> Option<ConfigError> {
        let keys: Vec<&str> = self
            .unsupported
            .iter()
            .filter(|u| u.instead.is_some())
            .map(|u| u.key)
            .collect();
        (!keys.is_empty() && !self.config.gyre.allow_unsupported).then(|| {
            ConfigError::UnsupportedAccess {
                keys: keys.join(", "),
            }
        })
    }
}

/// Loads, layers and validates the configuration.
pub(crate) fn load(options: LoadOptions) -> Result<Loaded, ConfigError> {
    let path = options.path.clone();
    let loaded = load_unvalidated(options)?;
    validate::validate(&loaded.config).map_err(|e| e.in_file(loaded.file_found, &path))?;
    Ok(loaded)
}

/// [`load`] without the semantic validation (used by `defaultconfig`, which validates itself).
pub(crate) fn load_unvalidated(options: LoadOptions) -> Result<Loaded, ConfigError> {
    let file = match &options.path {
        Some(path) => format::read_file(path)?,
        None => None,
    };
    load_parsed(file, options)
}

/// [`load_unvalidated`] with the file already read (`None`: no file).
fn load_parsed(file: Option<Value>, options: LoadOptions) -> Result<Loaded, ConfigError> {
    let fields = schema::root();
    let defaults = default_tree();
    let mut tree = defaults.clone();

    let mut unknown_keys = Vec::new();
    let mut file_found = false;
    if let Some(mut file) = file {
        let path = options.path.clone().unwrap_or_default();
        file_found = true;
        if !file.is_null() && !file.is_object() {
            return Err(ConfigError::Parse {
                path: path.clone(),
                format: Format::from_path(&path).map_or("unknown", Format::name),
                message: "top level must be a map of keys".to_owned(),
            });
        }
        tree::normalize(&mut file, fields, "", &mut unknown_keys);
        tree::merge(&mut tree, file);
    }

    let mut known_env = KnownVars::new();
    let mut warnings = env::apply(&mut tree, fields, &options.env, &mut known_env)?;
    let unknown_env = env::unknown_vars(&options.env, &known_env);

    // Before flags: Centrifugo fills defaults during env processing, which skips flagged keys.
    tree::fill_zero_defaults(&mut tree, &defaults, fields, "");
    for (path, value) in options.flags {
        tree::set_path(&mut tree, &path, value);
    }
    tree::finish_string_maps(&mut tree, fields, "", &options.env)?;

    tree::weaken(&mut tree, fields);
    tree::check_types(&tree, fields, "").map_err(|e| e.in_file(file_found, &options.path))?;
    let config: Config = serde_path_to_error::deserialize(&tree).map_err(|e| {
        let key = e.path().to_string();
        ConfigError::invalid(key, e.into_inner().to_string()).in_file(file_found, &options.path)
    })?;

    for key in &unknown_keys {
        warnings.push(format!("unknown key in configuration: {key}"));
    }
    for var in &unknown_env {
        warnings.push(format!("unknown environment variable: {var}"));
    }
    let unsupported = unsupported(&config);
    warnings.extend(
        unsupported
            .iter()
            .filter(|u| u.instead.is_none())
            .map(Unsupported::message),
    );

    Ok(Loaded {
        config,
        warnings,
        unsupported,
        unknown_keys,
        unknown_env,
        file_found,
        known_env,
        tree,
    })
}

/// The fuzz target's way in: parses `data` as a file of the format named by `extension`
/// and loads and validates it with an empty environment; every outcome but a panic is
/// fine.
pub(crate) fn fuzz_load(extension: &str, data: &[u8]) {
    let path = std::path::PathBuf::from(format!("fuzz.{extension}"));
    let Some(format) = Format::from_path(&path) else {
        return;
    };
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(file) = format.parse(text) else {
        return;
    };
    let options = LoadOptions {
        path: Some(path.clone()),
        flags: Vec::new(),
        env: Env::default(),
    };
    if let Ok(loaded) = load_parsed(Some(file), options) {
        let _ = validate::validate(&loaded.config);
        let _ = loaded.access_errors();
    }
}

/// Reads a config file into a value tree with keys normalised (no defaults, env or flags);
/// a missing file gives `null`.
pub(crate) fn read_normalized(path: &std::path::Path) -> Result<Value, ConfigError> {
    let mut value = format::read_file(path)?.unwrap_or(Value::Null);
    tree::normalize(&mut value, schema::root(), "", &mut Vec::new());
    Ok(value)
}

/// The default configuration as a value tree.
pub(crate) fn default_tree() -> Value {
    serde_json::to_value(Config::default()).expect("the default configuration serializes")
}

#[cfg(test)]
mod snapshot_tests;
#[cfg(test)]
mod tests;
