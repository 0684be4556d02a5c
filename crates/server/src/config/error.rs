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
    #[error("invalid value for {key}: {message}")]
    Invalid { key: String, message: String },
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
        }
    }
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
