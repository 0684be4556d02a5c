//! `gyre`: a drop-in replacement for Centrifugo v6.
//!
//! Glue and policy on top of the `gyre` library: configuration with Centrifugo's keys,
//! JWT authentication, namespaces and permissions, the server API.

mod api;
mod app;
mod cli;
mod cli_jwt;
mod config;
mod grpc;
mod jwt;
mod policy;
mod proxy;
mod unigrpc;

use std::process::ExitCode;

fn main() -> ExitCode {
    cli::run()
}

/// Logging to stdout at `log.level` (`none` disables it; `fatal` logs errors only).
pub(crate) fn init_logging(log: &config::Log) {
    let level = match log.level.as_str() {
        "none" => return,
        "trace" => tracing::Level::TRACE,
        "debug" => tracing::Level::DEBUG,
        "warn" => tracing::Level::WARN,
        "error" | "fatal" => tracing::Level::ERROR,
        _ => tracing::Level::INFO,
    };
    let _ = tracing_subscriber::fmt()
        .with_max_level(level)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
        .try_init();
}
