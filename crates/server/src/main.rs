//! `gyre`: a drop-in replacement for Centrifugo v6.
//!
//! Glue and policy on top of the `gyre` library: configuration with Centrifugo's keys,
//! JWT authentication, namespaces and permissions, the server API.

mod config;
mod jwt;

fn main() -> anyhow::Result<()> {
    Ok(())
}
