//! Command line, compatible with `centrifugo` v6: the same flags for running the server and
//! the same subcommands (`genconfig`, `checkconfig`, `defaultconfig`, `defaultenv`,
//! `version`, `gentoken`, `gensubtoken`, `checktoken`, `checksubtoken`).
//!
//! Flags overlay the configuration through [`config::LoadOptions::flags`], after file and env.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, anyhow, bail};
use clap::{Args, Parser, Subcommand};
use rand::Rng as _;
use serde_json::{Value, json};

use crate::config::{self, Format, LoadOptions, Loaded};

/// The Centrifugo release whose configuration and CLI Gyre follows.
pub(crate) const CENTRIFUGO_COMPAT_VERSION: &str = "6.9.1";

#[derive(Debug, Parser)]
#[command(
    name = "gyre",
    version,
    about = "Gyre: a drop-in replacement for the Centrifugo v6 real-time messaging server",
    args_conflicts_with_subcommands = true
)]
pub(crate) struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    serve: ServeArgs,
}

/// Flags of the default action (run the server), as in Centrifugo's `DefineFlags`.
#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    /// Path to config file (JSON, YAML or TOML by extension).
    #[arg(short = 'c', long = "config", default_value = config::DEFAULT_CONFIG_FILE)]
    config: PathBuf,
    /// Optional path to create PID file.
    #[arg(long = "pid_file")]
    pid_file: Option<String>,
    /// Interface address to listen on.
    #[arg(short = 'a', long = "http_server.address")]
    address: Option<String>,
    /// Port to bind HTTP server to.
    #[arg(short = 'p', long = "http_server.port")]
    port: Option<String>,
    /// Custom interface address to listen on for internal endpoints.
    #[arg(long = "http_server.internal_address")]
    internal_address: Option<String>,
    /// Custom port for internal endpoints.
    #[arg(long = "http_server.internal_port")]
    internal_port: Option<String>,
    /// Engine to use: memory or redis.
    #[arg(long = "engine.type")]
    engine_type: Option<String>,
    /// Enable broker.
    #[arg(long = "broker.enabled", num_args = 0..=1, default_missing_value = "true", require_equals = true)]
    broker_enabled: Option<bool>,
    /// Broker to use: memory, redis or nats.
    #[arg(long = "broker.type")]
    broker_type: Option<String>,
    /// Enable presence manager.
    #[arg(long = "presence_manager.enabled", num_args = 0..=1, default_missing_value = "true", require_equals = true)]
    presence_manager_enabled: Option<bool>,
    /// Presence manager to use: memory or redis.
    #[arg(long = "presence_manager.type")]
    presence_manager_type: Option<String>,
    /// Map broker to use: memory, redis or postgres.
    #[arg(long = "map_broker.type")]
    map_broker_type: Option<String>,
    /// Set the log level: trace, debug, info, warn, error, fatal or none.
    #[arg(long = "log.level")]
    log_level: Option<String>,
    /// Optional log file - if not specified logs go to STDOUT.
    #[arg(long = "log.file")]
    log_file: Option<String>,
    /// Port to bind GRPC API server to.
    #[arg(long = "grpc_api.port")]
    grpc_api_port: Option<i64>,
    /// Port to bind unidirectional GRPC server to.
    #[arg(long = "uni_grpc.port")]
    uni_grpc_port: Option<i64>,
    /// Run even with configured features Gyre does not implement that decide who may
    /// connect, subscribe, publish or call RPC (sets `gyre.allow_unsupported`; Gyre only).
    #[arg(long = "allow-unsupported")]
    allow_unsupported: bool,
    #[command(flatten)]
    switches: Switches,
}

/// Boolean flags: `--admin.enabled` or `--admin.enabled=false`.
#[derive(Debug, Args)]
struct Switches {
    /// Enable debug endpoints.
    #[arg(long = "debug.enabled", num_args = 0..=1, default_missing_value = "true", require_equals = true)]
    debug_enabled: Option<bool>,
    /// Enable admin web interface.
    #[arg(long = "admin.enabled", num_args = 0..=1, default_missing_value = "true", require_equals = true)]
    admin_enabled: Option<bool>,
    /// Expose admin web interface on external port.
    #[arg(long = "admin.external", num_args = 0..=1, default_missing_value = "true", require_equals = true)]
    admin_external: Option<bool>,
    /// Use insecure admin mode – no auth required for admin socket.
    #[arg(long = "admin.insecure", num_args = 0..=1, default_missing_value = "true", require_equals = true)]
    admin_insecure: Option<bool>,
    /// Enable Prometheus metrics endpoint.
    #[arg(long = "prometheus.enabled", num_args = 0..=1, default_missing_value = "true", require_equals = true)]
    prometheus_enabled: Option<bool>,
    /// Enable health check endpoint.
    #[arg(long = "health.enabled", num_args = 0..=1, default_missing_value = "true", require_equals = true)]
    health_enabled: Option<bool>,
    /// Enable Swagger UI endpoint describing server HTTP API.
    #[arg(long = "swagger.enabled", num_args = 0..=1, default_missing_value = "true", require_equals = true)]
    swagger_enabled: Option<bool>,
    /// Enable connection init endpoint.
    #[arg(long = "init.enabled", num_args = 0..=1, default_missing_value = "true", require_equals = true)]
    init_enabled: Option<bool>,
    /// Start in insecure client mode.
    #[arg(long = "client.insecure", num_args = 0..=1, default_missing_value = "true", require_equals = true)]
    client_insecure: Option<bool>,
    /// Use insecure API mode.
    #[arg(long = "http_api.insecure", num_args = 0..=1, default_missing_value = "true", require_equals = true)]
    http_api_insecure: Option<bool>,
    /// Expose API handler on external port.
    #[arg(long = "http_api.external", num_args = 0..=1, default_missing_value = "true", require_equals = true)]
    http_api_external: Option<bool>,
    /// Enable GRPC API server.
    #[arg(long = "grpc_api.enabled", num_args = 0..=1, default_missing_value = "true", require_equals = true)]
    grpc_api_enabled: Option<bool>,
    /// Enable unidirectional GRPC endpoint.
    #[arg(long = "uni_grpc.enabled", num_args = 0..=1, default_missing_value = "true", require_equals = true)]
    uni_grpc_enabled: Option<bool>,
    /// Enable unidirectional websocket endpoint.
    #[arg(long = "uni_websocket.enabled", num_args = 0..=1, default_missing_value = "true", require_equals = true)]
    uni_websocket_enabled: Option<bool>,
    /// Enable unidirectional SSE (EventSource) endpoint.
    #[arg(long = "uni_sse.enabled", num_args = 0..=1, default_missing_value = "true", require_equals = true)]
    uni_sse_enabled: Option<bool>,
    /// Enable unidirectional HTTP-streaming endpoint.
    #[arg(long = "uni_http_stream.enabled", num_args = 0..=1, default_missing_value = "true", require_equals = true)]
    uni_http_stream_enabled: Option<bool>,
    /// Enable bidirectional SSE (EventSource) endpoint (with emulation layer).
    #[arg(long = "sse.enabled", num_args = 0..=1, default_missing_value = "true", require_equals = true)]
    sse_enabled: Option<bool>,
    /// Enable bidirectional HTTP-streaming endpoint (with emulation layer).
    #[arg(long = "http_stream.enabled", num_args = 0..=1, default_missing_value = "true", require_equals = true)]
    http_stream_enabled: Option<bool>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Generate minimal configuration file to start with.
    Genconfig {
        /// Path to output config file.
        #[arg(short = 'c', long = "config", default_value = config::DEFAULT_CONFIG_FILE)]
        config: PathBuf,
    },
    /// Check configuration file.
    Checkconfig {
        /// Path to config file to check.
        #[arg(short = 'c', long = "config", default_value = config::DEFAULT_CONFIG_FILE)]
        config: PathBuf,
        /// Strict check: fail on unknown keys, unknown env vars and every configured
        /// feature Gyre does not implement.
        #[arg(short = 's', long)]
        strict: bool,
    },
    /// Generate full configuration file with defaults.
    Defaultconfig {
        /// Path to default config file to generate.
        #[arg(short = 'c', long = "config", default_value = config::DEFAULT_CONFIG_FILE)]
        config: PathBuf,
        /// Path to the base config file to use.
        #[arg(short = 'b', long = "base")]
        base: Option<PathBuf>,
        /// Dry run mode (do not write file and just print generated config to stdout).
        #[arg(short = 'd', long = "dry-run")]
        dry_run: bool,
    },
    /// Generate full environment var list with defaults.
    Defaultenv {
        /// Path to the base config file to use.
        #[arg(short = 'b', long = "base")]
        base: Option<PathBuf>,
        /// Only output environment variables for values which were non zero in base config file.
        #[arg(long = "base-non-zero-only")]
        base_non_zero_only: bool,
    },
    /// Show the configuration reference: every key with its type, default and env var
    /// (an HTML page served on localhost, or Markdown on stdout with --markdown).
    Configdoc {
        /// Output Markdown to stdout.
        #[arg(short = 'm', long = "markdown")]
        markdown: bool,
        /// Filter by top-level section name.
        #[arg(short = 's', long = "section")]
        section: Option<String>,
        /// Port to serve the HTML page on (127.0.0.1).
        #[arg(short = 'p', long = "port", default_value_t = 6060)]
        port: u16,
        /// Base heading level of the Markdown output.
        #[arg(short = 'l', long = "base-level", default_value_t = 0)]
        base_level: usize,
    },
    /// Print version information.
    Version,
    /// Generate sample connection JWT for user.
    Gentoken(TokenArgs),
    /// Generate sample subscription JWT for user and channel.
    Gensubtoken {
        #[command(flatten)]
        token: TokenArgs,
        /// Channel.
        #[arg(short = 's', long = "channel", default_value = "")]
        channel: String,
    },
    /// Check connection JWT.
    Checktoken(CheckTokenArgs),
    /// Check subscription JWT.
    Checksubtoken(CheckTokenArgs),
}

#[derive(Debug, Args)]
pub(crate) struct TokenArgs {
    /// Path to config file.
    #[arg(short = 'c', long = "config", default_value = config::DEFAULT_CONFIG_FILE)]
    pub(crate) config: PathBuf,
    /// User ID, by default anonymous.
    #[arg(short = 'u', long = "user", default_value = "")]
    pub(crate) user: String,
    /// Token TTL in seconds, use -1 for token without expiration.
    #[arg(short = 't', long = "ttl", default_value_t = 3600 * 24 * 7, allow_negative_numbers = true)]
    pub(crate) ttl: i64,
    /// Only output the token without anything else.
    #[arg(short = 'q', long = "quiet")]
    pub(crate) quiet: bool,
}

#[derive(Debug, Args)]
pub(crate) struct CheckTokenArgs {
    /// Path to config file.
    #[arg(short = 'c', long = "config", default_value = config::DEFAULT_CONFIG_FILE)]
    pub(crate) config: PathBuf,
    /// The token to check.
    pub(crate) token: Option<String>,
}

/// Parses the command line and runs the chosen command; errors print `error: ...` and exit 1
/// like Centrifugo.
pub(crate) fn run() -> ExitCode {
    let cli = Cli::parse();
    match dispatch(cli) {
        Ok(()) => ExitCode::SUCCESS,
        // The reader went away (`gyre defaultenv | head -1`): what it wanted was written.
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            let _ = writeln!(std::io::stdout().lock(), "error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// `gyre configdoc`: Markdown to stdout, or the HTML page served until interrupted.
fn configdoc(
    markdown: bool,
    section: Option<&str>,
    port: u16,
    base_level: usize,
) -> anyhow::Result<()> {
    if markdown {
        write!(
            std::io::stdout().lock(),
            "{}",
            config::doc::markdown(section, base_level)
        )?;
        return Ok(());
    }
    let page = config::doc::html(section);
    let listener = std::net::TcpListener::bind(("127.0.0.1", port))
        .with_context(|| format!("error listening on 127.0.0.1:{port}"))?;
    let addr = listener.local_addr()?;
    writeln!(
        std::io::stdout().lock(),
        "configuration reference at http://{addr}/ (Ctrl+C to stop)"
    )?;
    for stream in listener.incoming() {
        let Ok(mut stream) = stream else { continue };
        // One small page: read the request head, answer it, close.
        let _ = stream.set_read_timeout(Some(std::time::Duration::from_secs(5)));
        let mut head = [0u8; 4096];
        let _ = std::io::Read::read(&mut stream, &mut head);
        let _ = write!(
            stream,
            "HTTP/1.1 200 OK\r\ncontent-type: text/html; charset=utf-8\r\n\
             content-length: {}\r\nconnection: close\r\n\r\n{page}",
            page.len()
        );
    }
    Ok(())
}

fn dispatch(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        None => {
            let flags = cli.serve.flags()?;
            let options = LoadOptions {
                flags,
                ..LoadOptions::new(Some(cli.serve.config))
            };
            let loaded = config::load(options.clone())?;
            crate::app::serve(loaded, options)
        }
        Some(Command::Genconfig { config }) => genconfig(&config),
        Some(Command::Checkconfig { config, strict }) => checkconfig(&config, strict),
        Some(Command::Defaultconfig {
            config,
            base,
            dry_run,
        }) => defaultconfig(&config, base, dry_run),
        Some(Command::Defaultenv {
            base,
            base_non_zero_only,
        }) => defaultenv(base, base_non_zero_only),
        Some(Command::Configdoc {
            markdown,
            section,
            port,
            base_level,
        }) => configdoc(markdown, section.as_deref(), port, base_level),
        Some(Command::Version) => {
            writeln!(std::io::stdout().lock(), "{}", version_text())?;
            Ok(())
        }
        Some(Command::Gentoken(args)) => crate::cli_jwt::gentoken(&args),
        Some(Command::Gensubtoken { token, channel }) => {
            crate::cli_jwt::gensubtoken(&token, &channel)
        }
        Some(Command::Checktoken(args)) => crate::cli_jwt::checktoken(&args),
        Some(Command::Checksubtoken(args)) => crate::cli_jwt::checksubtoken(&args),
    }
}

impl ServeArgs {
    /// Flags that were given, as dotted key paths with typed values.
    fn flags(&self) -> anyhow::Result<Vec<(String, Value)>> {
        let mut out: Vec<(String, Value)> = Vec::new();
        let mut string = |key: &str, v: &Option<String>| {
            if let Some(v) = v {
                out.push((key.to_owned(), Value::String(v.clone())));
            }
        };
        string("pid_file", &self.pid_file);
        string("http_server.address", &self.address);
        string("http_server.internal_address", &self.internal_address);
        string("http_server.internal_port", &self.internal_port);
        string("engine.type", &self.engine_type);
        string("broker.type", &self.broker_type);
        string("presence_manager.type", &self.presence_manager_type);
        string("map_broker.type", &self.map_broker_type);
        string("log.level", &self.log_level);
        string("log.file", &self.log_file);
        if let Some(port) = &self.port {
            let port: i64 = port
                .parse()
                .with_context(|| format!("invalid --http_server.port {port:?}"))?;
            out.push(("http_server.port".to_owned(), json!(port)));
        }
        for (key, v) in [
            ("grpc_api.port", self.grpc_api_port),
            ("uni_grpc.port", self.uni_grpc_port),
        ] {
            if let Some(v) = v {
                out.push((key.to_owned(), json!(v)));
            }
        }
        if self.allow_unsupported {
            out.push(("gyre.allow_unsupported".to_owned(), Value::Bool(true)));
        }
        let s = &self.switches;
        for (key, v) in [
            ("broker.enabled", self.broker_enabled),
            ("presence_manager.enabled", self.presence_manager_enabled),
            ("debug.enabled", s.debug_enabled),
            ("admin.enabled", s.admin_enabled),
            ("admin.external", s.admin_external),
            ("admin.insecure", s.admin_insecure),
            ("prometheus.enabled", s.prometheus_enabled),
            ("health.enabled", s.health_enabled),
            ("swagger.enabled", s.swagger_enabled),
            ("init.enabled", s.init_enabled),
            ("client.insecure", s.client_insecure),
            ("http_api.insecure", s.http_api_insecure),
            ("http_api.external", s.http_api_external),
            ("grpc_api.enabled", s.grpc_api_enabled),
            ("uni_grpc.enabled", s.uni_grpc_enabled),
            ("uni_websocket.enabled", s.uni_websocket_enabled),
            ("uni_sse.enabled", s.uni_sse_enabled),
            ("uni_http_stream.enabled", s.uni_http_stream_enabled),
            ("sse.enabled", s.sse_enabled),
            ("http_stream.enabled", s.http_stream_enabled),
        ] {
            if let Some(v) = v {
                out.push((key.to_owned(), Value::Bool(v)));
            }
        }
        Ok(out)
    }
}

/// `gyre version` output: our version, then the Centrifugo release we are compatible with.
pub(crate) fn version_text() -> String {
    let v = env!("CARGO_PKG_VERSION");
    format!("Gyre v{v}\nCentrifugo v{CENTRIFUGO_COMPAT_VERSION} compatible (Gyre v{v}, Rust)")
}

/// Loads the configuration a subcommand works with (file, env; no flags).
pub(crate) fn load_for_command(path: &Path) -> anyhow::Result<Loaded> {
    config::load(LoadOptions::new(Some(path.to_owned()))).context("error getting config")
}

fn format_of(path: &Path) -> anyhow::Result<Format> {
    Format::from_path(path).ok_or_else(|| {
        anyhow!("output config file must have one of supported extensions: json, toml, yaml, yml")
    })
}

/// A random 64-character alphanumeric secret.
fn secret() -> String {
    rand::rng()
        .sample_iter(rand::distr::Alphanumeric)
        .take(64)
        .map(char::from)
        .collect()
}

/// Creates `path` for writing; fails if it exists. Owner-only permissions where supported.
fn create_new(path: &Path) -> anyhow::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    options.open(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            anyhow!("output config file already exists: {}", path.display())
        } else {
            anyhow!("error creating {}: {e}", path.display())
        }
    })
}

fn genconfig(path: &Path) -> anyhow::Result<()> {
    let format = format_of(path)?;
    let doc = json!({
        "client": {
            "token": { "hmac_secret_key": secret() },
            "allowed_origins": [],
        },
        "admin": { "enabled": false, "password": secret(), "secret": secret() },
        "http_api": { "key": secret() },
    });
    let text = format.render(&doc).map_err(|e| anyhow!(e))?;
    let mut file = create_new(path)?;
    file.write_all(text.as_bytes())
        .with_context(|| format!("error writing {}", path.display()))?;
    drop(file);
    if let Err(e) = config::load(LoadOptions::new(Some(path.to_owned()))) {
        let _ = std::fs::remove_file(path);
        bail!("error validating config: {e}");
    }
    Ok(())
}

fn checkconfig(path: &Path, strict: bool) -> anyhow::Result<()> {
    let loaded = load_for_command(path)?;
    if !loaded.file_found {
        bail!("config file not found");
    }
    for warning in &loaded.warnings {
        eprintln!("warning: {warning}");
    }
    for error in loaded.access_errors() {
        eprintln!("error: {error}");
    }
    if strict && !loaded.unknown_keys.is_empty() {
        bail!("unknown keys in config: {}", loaded.unknown_keys.join(", "));
    }
    if strict && !loaded.unknown_env.is_empty() {
        bail!(
            "unknown environment variables: {}",
            loaded.unknown_env.join(", ")
        );
    }
    let unsupported = config::unsupported_features(&loaded.config);
    if strict && !unsupported.is_empty() {
        bail!(
            "features configured but not supported by Gyre: {}",
            unsupported.join(", ")
        );
    }
    if let Some(refusal) = loaded.refusal() {
        bail!(refusal);
    }
    Ok(())
}

fn defaultconfig(path: &Path, base: Option<PathBuf>, dry_run: bool) -> anyhow::Result<()> {
    if !dry_run && path.exists() {
        bail!("target file already exists");
    }
    let format = format_of(path)?;
    let loaded = config::load(LoadOptions::new(base))?;
    let text = format.render(&loaded.config).map_err(|e| anyhow!(e))?;
    if dry_run {
        writeln!(std::io::stdout().lock(), "{text}")?;
        return Ok(());
    }
    let mut file = create_new(path)?;
    file.write_all(text.as_bytes())
        .with_context(|| format!("error writing {}", path.display()))
}

fn defaultenv(base: Option<PathBuf>, base_non_zero_only: bool) -> anyhow::Result<()> {
    let file_tree = match &base {
        Some(path) if base_non_zero_only => config::read_normalized(path)?,
        _ => Value::Null,
    };
    let loaded = config::load(LoadOptions::new(base))?;
    let mut out = std::io::stdout().lock();
    for (name, var) in &loaded.known_env {
        if base_non_zero_only && file_tree.pointer(&var.pointer).is_none_or(is_zero_value) {
            continue;
        }
        let value = loaded.tree.pointer(&var.pointer).unwrap_or(&Value::Null);
        writeln!(
            out,
            "{name}={}",
            config::env::format_value(value, var.shape)
        )?;
    }
    Ok(())
}

fn is_zero_value(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
    }
}
