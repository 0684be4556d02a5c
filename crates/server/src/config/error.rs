//! Errors of loading and validating the configuration.

use std::path::PathBuf;

/// Why the configuration could not be loaded. Every variant names the file, env var or key
/// path at fault.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ConfigError {
    #[error("error reading config file {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("error parsing config file {path} as {format}: {message}")]
    Parse {
        path: PathBuf,
        format: &'static str,
        message: String,
    },
    #[error("unsupported config file extension for {path}: use .json, .yaml, .yml or .toml")]
    UnsupportedFormat { path: PathBuf },
    #[error("error processing env: {var}={value:?}: {reason}")]
    Env {
        var: String,
        value: String,
        reason: String,
    },
    #[error("invalid value for {key}{}: {message}", in_file(.file.as_deref()))]
    Invalid {
        key: String,
        message: String,
        /// The config file the value may come from (the value of a key can also come
        /// from a default or a flag; env values are reported as [`ConfigError::Env`]).
        file: Option<PathBuf>,
    },
    #[error(
        "refusing to run: {keys} configured but not supported by Gyre, which would decide \
         differently who may connect, subscribe, publish or call RPC; set \
         gyre.allow_unsupported to true or pass --allow-unsupported to run without it"
    )]
    UnsupportedAccess { keys: String },
}

impl ConfigError {
    pub(crate) fn invalid(key: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Invalid {
            key: key.into(),
            message: message.into(),
            file: None,
        }
    }

    /// Names the config file in a key's error, when a file was read.
    pub(crate) fn in_file(self, file_found: bool, path: &Option<PathBuf>) -> Self {
        match self {
            Self::Invalid { key, message, .. } if file_found => Self::Invalid {
                key,
                message,
                file: path.clone(),
            },
            other => other,
        }
    }
}

fn in_file(file: Option<&std::path::Path>) -> String {
    file.map(|path| format!(" in {}", path.display()))
        .unwrap_or_default()
}

/// A channel's namespace is not configured (client error 102 "unknown channel").
#[allow(
    dead_code,
    reason = "API for the server modules (client, HTTP API) that use the configuration"
)]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown channel namespace: {namespace}")]
pub(crate) struct UnknownNamespace {
    pub(crate) namespace: String,
}
