//! The server the end-to-end suite runs against.
//!
//! ```text
//! gyre-e2e-server --port 0     # prints "listening on 127.0.0.1:<port>" once ready
//! ```
//!
//! Handlers and routes: see the `gyre-testkit` crate docs.

use std::net::SocketAddr;

use anyhow::{Context, bail};

fn parse_port() -> anyhow::Result<u16> {
    let mut port = 0;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--port" => {
                let value = args.next().context("--port needs a value")?;
                port = value
                    .parse()
                    .with_context(|| format!("--port {value}: not a port"))?;
            }
            "-h" | "--help" => {
                println!("usage: gyre-e2e-server [--port N]   (0 = any free port)");
                std::process::exit(0);
            }
            other => bail!("unknown argument {other:?} (usage: gyre-e2e-server [--port N])"),
        }
    }
    Ok(port)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();

    let port = parse_port()?;
    let node = gyre_testkit::e2e_node();
    node.run().await.context("starting the broker")?;
    let app = gyre_testkit::e2e_app(node.clone());

    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], port)))
        .await
        .with_context(|| format!("binding 127.0.0.1:{port}"))?;
    let addr = listener.local_addr()?;
    println!("listening on {addr}");

    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            let _ = tokio::signal::ctrl_c().await;
            node.shutdown().await;
        })
        .await?;
    Ok(())
}
