//! `gentoken`, `gensubtoken`, `checktoken`, `checksubtoken`: CLI plumbing (config loading,
//! Centrifugo's messages and exit behaviour) around the token functions of `crate::jwt::cli`.
//!
//! Connection tokens use `client.token`; subscription tokens use
//! `client.subscription_token` when it is enabled, like the server does.

use std::io::Write as _;

use anyhow::bail;

use crate::cli::{CheckTokenArgs, TokenArgs, load_for_command};
use crate::config::Duration;
use crate::jwt::VerifierConfig;

/// Runs a token check, which may fetch a JWKS, on a small runtime of its own.
fn block_on<T>(f: impl std::future::Future<Output = T>) -> anyhow::Result<T> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    Ok(rt.block_on(f))
}

/// `with expiration TTL 168h0m0s` / `without expiration`, as Centrifugo prints it.
fn expiration(ttl_seconds: i64) -> String {
    if ttl_seconds >= 0 {
        format!("with expiration TTL {}", Duration::from_secs(ttl_seconds))
    } else {
        "without expiration".to_owned()
    }
}

fn who(user: &str) -> String {
    if user.is_empty() {
        "anonymous user".to_owned()
    } else {
        format!("user \"{user}\"")
    }
}

fn print_token(quiet: bool, token: &str, description: String) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    if quiet {
        write!(out, "{token}")?;
    } else {
        writeln!(out, "{description}:\n{token}")?;
    }
    Ok(())
}

pub(crate) fn gentoken(args: &TokenArgs) -> anyhow::Result<()> {
    let loaded = load_for_command(&args.config)?;
    let token = crate::jwt::cli::gentoken(
        &VerifierConfig::for_connections(&loaded.config.client),
        &args.user,
        args.ttl,
    )?;
    print_token(
        args.quiet,
        &token,
        format!(
            "HMAC SHA-256 JWT for {} {}",
            who(&args.user),
            expiration(args.ttl)
        ),
    )
}

pub(crate) fn gensubtoken(args: &TokenArgs, channel: &str) -> anyhow::Result<()> {
    if channel.is_empty() {
        bail!("channel is required");
    }
    let loaded = load_for_command(&args.config)?;
    let token = crate::jwt::cli::gensubtoken(
        &VerifierConfig::for_subscriptions(&loaded.config.client),
        &args.user,
        channel,
        args.ttl,
    )?;
    print_token(
        args.quiet,
        &token,
        format!(
            "HMAC SHA-256 JWT for {} and channel \"{channel}\" {}",
            who(&args.user),
            expiration(args.ttl)
        ),
    )
}

pub(crate) fn checktoken(args: &CheckTokenArgs) -> anyhow::Result<()> {
    let loaded = load_for_command(&args.config)?;
    let Some(token) = args.token.as_deref() else {
        bail!("provide token to check [gyre checktoken <TOKEN>]");
    };
    let cfg = VerifierConfig::for_connections(&loaded.config.client);
    println!("{}", block_on(crate::jwt::cli::checktoken(&cfg, token))??);
    Ok(())
}

pub(crate) fn checksubtoken(args: &CheckTokenArgs) -> anyhow::Result<()> {
    let loaded = load_for_command(&args.config)?;
    let Some(token) = args.token.as_deref() else {
        bail!("provide token to check [gyre checksubtoken <TOKEN>]");
    };
    let cfg = VerifierConfig::for_subscriptions(&loaded.config.client);
    println!(
        "{}",
        block_on(crate::jwt::cli::checksubtoken(&cfg, token))??
    );
    Ok(())
}
