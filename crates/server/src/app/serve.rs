//! Listeners, the accept loops and the process signals.

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

use super::App;
use super::http::{not_found, routers};
use crate::config::{self, LoadOptions, Loaded};

/// Runs the server until SIGINT/SIGTERM. `reload` is how the configuration was loaded,
/// to load it again on SIGHUP.
pub(crate) fn serve(loaded: Loaded, reload: LoadOptions) -> anyhow::Result<()> {
    crate::init_logging(&loaded.config.log);
    for warning in &loaded.warnings {
        tracing::warn!("{warning}");
    }
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(run(loaded.config, reload))
}

fn listen_addr(address: &str, port: &str) -> anyhow::Result<SocketAddr> {
    let host = if address.is_empty() {
        "0.0.0.0"
    } else {
        address
    };
    let joined = if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    Ok(joined.parse()?)
}

async fn run(config: config::Config, reload: LoadOptions) -> anyhow::Result<()> {
    let http = config.http_server.clone();
    let shutdown_timeout = config
        .shutdown
        .timeout
        .to_std()
        .unwrap_or(Duration::from_secs(30));
    let app = App::new(config).await?;
    crate::policy::install(&app);
    app.node.run().await?;

    let main_addr = listen_addr(&http.address, &http.port.to_string())?;
    let internal_addr = if http.internal_port.is_empty() {
        None
    } else {
        let address = if http.internal_address.is_empty() {
            &http.address
        } else {
            &http.internal_address
        };
        Some(listen_addr(address, &http.internal_port)?).filter(|a| *a != main_addr)
    };
    let routers = routers(&app, internal_addr.is_some());
    let stop = CancellationToken::new();

    let main_tls = super::tls::acceptor(&http.tls)?;
    let main = TcpListener::bind(main_addr).await?;
    tracing::info!(address = %main.local_addr()?, tls = main_tls.is_some(), "serving client connections");
    tokio::spawn(accept_loop(main, routers.external, main_tls, stop.clone()));
    if let (Some(addr), Some(router)) = (internal_addr, routers.internal) {
        let internal_tls = super::tls::acceptor(&http.internal_tls)?;
        let internal = TcpListener::bind(addr).await?;
        tracing::info!(address = %internal.local_addr()?, tls = internal_tls.is_some(), "serving internal endpoints");
        tokio::spawn(accept_loop(internal, router, internal_tls, stop.clone()));
    }

    wait_for_signals(&app, &reload).await?;

    tracing::info!("shutting down");
    stop.cancel();
    app.node.shutdown().await;
    // Clients were told to reconnect elsewhere (3001); give their close frames a moment,
    // but never more than `shutdown.timeout`.
    let deadline = tokio::time::Instant::now() + shutdown_timeout;
    while app.node.info().num_clients > 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tracing::info!("bye");
    Ok(())
}

async fn accept_loop(
    listener: TcpListener,
    router: Router,
    tls: Option<TlsAcceptor>,
    stop: CancellationToken,
) {
    let router = router.fallback(not_found);
    loop {
        let accepted = tokio::select! {
            _ = stop.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        let (stream, _peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // Out of file descriptors and similar: back off instead of spinning.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let router = router.clone();
        let stop = stop.clone();
        match &tls {
            None => {
                tokio::spawn(serve_connection(stream, router, stop));
            }
            Some(acceptor) => {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let handshake =
                        tokio::time::timeout(Duration::from_secs(10), acceptor.accept(stream));
                    match handshake.await {
                        Ok(Ok(stream)) => serve_connection(stream, router, stop).await,
                        Ok(Err(e)) => tracing::debug!(error = %e, "TLS handshake failed"),
                        Err(_) => tracing::debug!("TLS handshake timed out"),
                    }
                });
            }
        }
    }
}

/// One HTTP/1.1 connection (with upgrades, for WebSocket) until it ends or the server
/// stops.
async fn serve_connection<I>(io: I, router: Router, stop: CancellationToken)
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service = TowerToHyperService::new(router);
    let conn = hyper::server::conn::http1::Builder::new()
        .serve_connection(TokioIo::new(io), service)
        .with_upgrades();
    tokio::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => {}
        _ = stop.cancelled() => {
            conn.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(Duration::from_secs(5), conn).await;
        }
    }
}

#[cfg(unix)]
async fn wait_for_signals(app: &App, reload: &LoadOptions) -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut hup = signal(SignalKind::hangup())?;
    loop {
        tokio::select! {
            _ = term.recv() => return Ok(()),
            _ = int.recv() => return Ok(()),
            _ = hup.recv() => match config::load(reload.clone()) {
                Ok(loaded) => match app.reload(loaded.config) {
                    Ok(()) => tracing::info!("configuration reloaded"),
                    Err(e) => tracing::error!(error = %e, "reload refused, keeping the old configuration"),
                },
                Err(e) => tracing::error!(error = %e, "reload failed, keeping the old configuration"),
            },
        }
    }
}

#[cfg(not(unix))]
async fn wait_for_signals(_app: &App, _reload: &LoadOptions) -> anyhow::Result<()> {
    tokio::signal::ctrl_c().await?;
    Ok(())
}
