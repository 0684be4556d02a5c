//! `gyre`: a drop-in replacement for Centrifugo v6.
//!
//! Glue and policy on top of the `gyre` library: configuration with Centrifugo's keys,
//! JWT authentication, namespaces and permissions, the server API.

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

fn main() -> ExitCode {
    cli::run()
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
