//! `gentoken`, `gensubtoken`, `checktoken`, `checksubtoken`: CLI plumbing (config loading,
//! Centrifugo's messages and exit behaviour) around the token functions of `crate::jwt::cli`.
//!
//! Connection tokens use `client.token`; subscription tokens use
//! `client.subscription_token` when it is enabled, like the server does.

use std::io::Write as _;

use anyhow::bail;

use crate::cli::{CheckTokenArgs, TokenArgs, load_for_command};
use crate::jwt::VerifierConfig;
use crate::jwt::cli::describe_generated;

/// Runs a token check, which may fetch a JWKS, on a small runtime of its own.
fn block_on<T>(f: impl std::future::Future<Output = T>) -> anyhow::Result<T> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    Ok(rt.block_on(f))
}

fn print_token(quiet: bool, token: &str, description: String) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    if quiet {
        write!(out, "{token}")?;
    } else {
        writeln!(out, "{description}")?;
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
    let description = describe_generated(&args.user, None, args.ttl, &token);
    print_token(args.quiet, &token, description)
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
    let description = describe_generated(&args.user, Some(channel), args.ttl, &token);
    print_token(args.quiet, &token, description)
}

pub(crate) fn checktoken(args: &CheckTokenArgs) -> anyhow::Result<()> {
    let loaded = load_for_command(&args.config)?;
    let Some(token) = args.token.as_deref() else {
        bail!("provide token to check [gyre checktoken <TOKEN>]");
    };
    let cfg = VerifierConfig::for_connections(&loaded.config.client);
    let text = block_on(crate::jwt::cli::checktoken(&cfg, token))??;
    writeln!(std::io::stdout().lock(), "{text}")?;
    Ok(())
}

pub(crate) fn checksubtoken(args: &CheckTokenArgs) -> anyhow::Result<()> {
    let loaded = load_for_command(&args.config)?;
    let Some(token) = args.token.as_deref() else {
        bail!("provide token to check [gyre checksubtoken <TOKEN>]");
    };
    let cfg = VerifierConfig::for_subscriptions(&loaded.config.client);
    let text = block_on(crate::jwt::cli::checksubtoken(&cfg, token))??;
    writeln!(std::io::stdout().lock(), "{text}")?;
    Ok(())
}
