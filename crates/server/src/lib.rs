//! `gyre`: a drop-in replacement for Centrifugo v6.
//!
//! Glue and policy on top of the `gyre` library: configuration with Centrifugo's keys,
//! JWT authentication, namespaces and permissions, the server API.
//!
//! The binary (`src/main.rs`) only calls [`run`]; this library target exists so that
//! the fuzz targets reach the decoders below (`__fuzz`). It is not a public API.

mod admin;
mod api;
mod app;
mod cli;
mod cli_jwt;
mod config;
mod consumers;
mod grpc;
mod jwt;
mod metrics;
mod policy;
mod proxy;
mod unigrpc;

use std::process::ExitCode;

/// Runs the `gyre` command line (what `main` does).
pub fn run() -> ExitCode {
    cli::run()
}

/// Entry points for the fuzz targets; not part of the API.
#[doc(hidden)]
pub mod __fuzz {
    /// Reads `data` as a configuration file of the format named by `extension`
    /// (`json`, `yaml`, `toml`) and validates it, as `gyre -c` does.
    pub fn config_file(extension: &str, data: &[u8]) {
        crate::config::fuzz_load(extension, data);
    }

    /// Decodes `data` as the body of every server-API method, of `/api/batch` and of the
    /// legacy `POST /api`.
    pub fn api_body(data: &[u8]) {
        crate::api::fuzz_decode(data);
    }

    /// Parses and verifies `token` as a connection and as a subscription JWT with HMAC
    /// keys (the signature check runs on whatever the token claims).
    pub fn jwt(token: &str) {
        crate::jwt::fuzz_verify(token);
    }
}

/// Logging as Centrifugo does it: at `log.level` (`none` disables it; `fatal` logs errors
/// only), human-readable on a terminal, JSON lines otherwise (what log collectors parse),
/// and JSON appended to `log.file` when one is set.
pub(crate) fn init_logging(log: &config::Log) -> anyhow::Result<()> {
    use anyhow::Context as _;

    let level = match log.level.as_str() {
        "none" => return Ok(()),
        "trace" => tracing::Level::TRACE,
        "debug" => tracing::Level::DEBUG,
        "warn" => tracing::Level::WARN,
        "error" | "fatal" => tracing::Level::ERROR,
        _ => tracing::Level::INFO,
    };
    let builder = tracing_subscriber::fmt().with_max_level(level);
    if !log.file.is_empty() {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log.file)
            .with_context(|| format!("error opening log file {}", log.file))?;
        let _ = builder
            .json()
            .flatten_event(true)
            .with_writer(std::sync::Mutex::new(file))
            .try_init();
    } else if std::io::IsTerminal::is_terminal(&std::io::stdout()) {
        let _ = builder.with_ansi(true).try_init();
    } else {
        let _ = builder.json().flatten_event(true).try_init();
    }
    if !matches!(
        log.level.as_str(),
        "none" | "trace" | "debug" | "info" | "warn" | "error" | "fatal"
    ) {
        tracing::warn!(level = %log.level, "unknown log level, defaulting to info");
    }
    Ok(())
}
