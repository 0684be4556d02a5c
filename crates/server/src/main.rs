//! `gyre`: a drop-in replacement for Centrifugo v6.
//!
//! Glue and policy on top of the `gyre` library: configuration with Centrifugo's keys,
//! JWT authentication, namespaces and permissions, the server API.

mod cli;
mod cli_jwt;
mod config;
mod jwt;

use std::process::ExitCode;

fn main() -> ExitCode {
    cli::run()
}

/// Runs the server with a loaded configuration: the boundary between the CLI/config layer
/// and the server. Logs the loader's warnings (unknown keys and env vars, unsupported
/// features), then starts serving.
pub(crate) fn serve(loaded: config::Loaded) -> anyhow::Result<()> {
    init_logging(&loaded.config.log);
    for warning in &loaded.warnings {
        tracing::warn!("{warning}");
    }
    let http = &loaded.config.http_server;
    println!(
        "gyre {}: configuration loaded, server will start on {}:{}",
        env!("CARGO_PKG_VERSION"),
        http.address,
        http.port
    );
    Ok(())
}

/// Logging to stdout at `log.level` (`none` disables it; `fatal` logs errors only).
fn init_logging(log: &config::Log) {
    let level = match log.level.as_str() {
        "none" => return,
        "trace" => tracing::Level::TRACE,
        "debug" => tracing::Level::DEBUG,
        "warn" => tracing::Level::WARN,
        "error" | "fatal" => tracing::Level::ERROR,
        _ => tracing::Level::INFO,
    };
    let _ = tracing_subscriber::fmt().with_max_level(level).try_init();
}
