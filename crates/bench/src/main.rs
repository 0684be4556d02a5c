//! `gyre-bench` binary: see `gyre-bench --help`.

use anyhow::Context;
use gyre_bench::cli::{self, Command};
use gyre_bench::{compare, conns, gyre_server, proxy_backend, reference};

fn main() -> anyhow::Result<()> {
    use clap::Parser;
    let cli = cli::Cli::parse_from(
        std::iter::once("gyre-bench".to_owned())
            .chain(cli::normalize_args(std::env::args().skip(1))),
    );
    if let Command::Compare(c) = &cli.command
        && let Some(cpu) = &c.client_cpu
    {
        compare::pin_self(cpu)?;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("building the tokio runtime")?;
    runtime.block_on(run(cli))
}

async fn run(cli: cli::Cli) -> anyhow::Result<()> {
    match &cli.command {
        Command::Reference(a) => {
            conns::raise_nofile();
            let addr = reference::spawn(cli::bind_addr(a)?).await?;
            eprintln!(
                "reference server listening on {addr} (WebSocket /connection/websocket, POST /api/publish)"
            );
            std::future::pending::<()>().await;
            Ok(())
        }
        Command::GyreServer(a) => {
            conns::raise_nofile();
            let delay = std::time::Duration::from_millis(a.write_delay_ms);
            let (_node, addr) =
                gyre_server::spawn(cli::bind_addr(a)?, delay, !a.no_direct_writes).await?;
            eprintln!(
                "gyre server listening on {addr} (WebSocket /connection/websocket, POST /api/publish)"
            );
            std::future::pending::<()>().await;
            Ok(())
        }
        Command::ConnectProxyBackend(a) => {
            conns::raise_nofile();
            let addr = format!("{}:{}", a.host, a.port)
                .parse()
                .with_context(|| format!("bad address {}:{}", a.host, a.port))?;
            let backend = proxy_backend::spawn(addr, &a.user).await?;
            eprintln!(
                "connect proxy backend listening on {} (every POST accepts the connection as user {:?})",
                backend.addr, a.user
            );
            std::future::pending::<()>().await;
            Ok(())
        }
        Command::Compare(c) => {
            let json = compare::compare(c).await?;
            println!("{}", gyre_bench::stats::json_line(&json));
            Ok(())
        }
        Command::Chaos(a) => {
            if !gyre_bench::chaos::run(a).await? {
                std::process::exit(1);
            }
            Ok(())
        }
        scenario => {
            let outcome = cli::run_scenario(scenario, false).await?;
            print!("{}", outcome.text);
            println!("{}", gyre_bench::stats::json_line(&outcome.json));
            Ok(())
        }
    }
}
