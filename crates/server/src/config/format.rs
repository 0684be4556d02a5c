//! Config file formats, chosen by file extension like Centrifugo (viper) does.

use std::path::Path;

use serde::Serialize;
use serde_json::Value;

use super::error::ConfigError;

/// A config file format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    Json,
    Yaml,
    Toml,
}

impl Format {
    /// By extension: `.json`, `.yaml`/`.yml`, `.toml` (case-insensitive).
    pub(crate) fn from_path(path: &Path) -> Option<Self> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        match ext.as_str() {
            "json" => Some(Self::Json),
            "yaml" | "yml" => Some(Self::Yaml),
            "toml" => Some(Self::Toml),
            _ => None,
        }
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Json => "JSON",
            Self::Yaml => "YAML",
            Self::Toml => "TOML",
        }
    }

    /// Parses a document into a value tree.
    pub(crate) fn parse(self, text: &str) -> Result<Value, String> {
        match self {
            Self::Json => serde_json::from_str(text).map_err(|e| e.to_string()),
            Self::Yaml => {
                if text.trim().is_empty() {
                    return Ok(Value::Null);
                }
                yaml_serde::from_str(text).map_err(|e| e.to_string())
            }
            Self::Toml => toml::from_str(text).map_err(|e| e.to_string()),
        }
    }

    /// Serializes a value in this format (pretty-printed).
    pub(crate) fn render<T: Serialize>(self, value: &T) -> Result<String, String> {
        match self {
            Self::Json => serde_json::to_string_pretty(value)
                .map(|s| s + "\n")
                .map_err(|e| e.to_string()),
            Self::Yaml => yaml_serde::to_string(value).map_err(|e| e.to_string()),
            Self::Toml => toml::to_string_pretty(value).map_err(|e| e.to_string()),
        }
    }
}

/// Reads and parses a config file; `Ok(None)` when it does not exist (Centrifugo starts
/// with defaults then).
pub(crate) fn read_file(path: &Path) -> Result<Option<Value>, ConfigError> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(ConfigError::Read {
                path: path.to_owned(),
                source,
            });
        }
    };
    let format = Format::from_path(path).ok_or_else(|| ConfigError::UnsupportedFormat {
        path: path.to_owned(),
    })?;
    format
        .parse(&text)
        .map(Some)
        .map_err(|message| ConfigError::Parse {
            path: path.to_owned(),
            format: format.name(),
            message,
        })
}
