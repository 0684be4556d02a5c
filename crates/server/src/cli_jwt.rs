//! `gentoken`, `gensubtoken`, `checktoken`, `checksubtoken`: CLI plumbing (config loading,
//! Centrifugo's messages and exit behaviour) around the token functions of `crate::jwt::cli`.
//!
//! The four calls into `crate::jwt::cli` are the only coupling with the JWT module:
//! `gentoken(&Config, &str, i64) -> anyhow::Result<String>` (the token),
//! `gensubtoken(&Config, &str, &str, i64) -> anyhow::Result<String>` (the token),
//! `checktoken(&Config, &str) -> anyhow::Result<String>` and
//! `checksubtoken(&Config, &str) -> anyhow::Result<String>` (a human-readable verdict).

use std::io::Write as _;

use anyhow::bail;

use crate::cli::{CheckTokenArgs, TokenArgs, load_for_command};
use crate::config::Duration;

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
    let token = crate::jwt::cli::gentoken(&loaded.config, &args.user, args.ttl)?;
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
    let token = crate::jwt::cli::gensubtoken(&loaded.config, &args.user, channel, args.ttl)?;
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
    println!("{}", crate::jwt::cli::checktoken(&loaded.config, token)?);
    Ok(())
}

pub(crate) fn checksubtoken(args: &CheckTokenArgs) -> anyhow::Result<()> {
    let loaded = load_for_command(&args.config)?;
    let Some(token) = args.token.as_deref() else {
        bail!("provide token to check [gyre checksubtoken <TOKEN>]");
    };
    println!("{}", crate::jwt::cli::checksubtoken(&loaded.config, token)?);
    Ok(())
}
