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
use super::api_lane::{ApiLane, PEEK_LEN, Route, routes_to_lane};
use super::http::{not_found, routers};
use crate::config::{self, LoadOptions, Loaded};

/// Runs the server until SIGINT/SIGTERM. `reload` is how the configuration was loaded,
/// to load it again on SIGHUP.
pub(crate) fn serve(loaded: Loaded, reload: LoadOptions) -> anyhow::Result<()> {
    crate::init_logging(&loaded.config.log)?;
    super::banner::log_start(&loaded.config, reload.path.as_deref(), loaded.file_found);
    for warning in &loaded.warnings {
        tracing::warn!("{warning}");
    }
    for warning in crate::admin::startup_warnings(&loaded.config) {
        tracing::warn!("{warning}");
    }
    for error in loaded.access_errors() {
        tracing::error!("{error}");
    }
    if let Some(refusal) = loaded.refusal() {
        return Err(refusal.into());
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
    // Before the listening line: a consumer that reads only new messages (a Redis group
    // created at `$`) must be in place once the server says it is up.
    crate::consumers::start(&app, stop.clone()).await?;
    // Ends the API thread however `run` returns.
    let lane_exit = CancellationToken::new();
    let _lane_exit = lane_exit.clone().drop_guard();
    let lane = ApiLane::start(lane_exit)?;
    let api_config = &app.config().http_api;
    let main_route = (!api_config.disabled && (internal_addr.is_none() || api_config.external))
        .then(|| Route::Prefix(api_config.handler_prefix.as_str().into()));

    let main_tls = super::tls::acceptor(&http.tls)?;
    let main = TcpListener::bind(main_addr).await?;
    tracing::info!(address = %main.local_addr()?, tls = main_tls.is_some(), "serving client connections");
    super::banner::log_endpoints(
        app.config().as_ref(),
        main.local_addr()?,
        main_tls.is_some(),
        internal_addr.map(|_| false),
    );
    let main_lane = main_route.map(|route| (lane.clone(), route));
    tokio::spawn(accept_loop(
        main,
        routers.external,
        main_tls,
        main_lane,
        stop.clone(),
    ));
    if let (Some(addr), Some(router)) = (internal_addr, routers.internal) {
        let internal_tls = super::tls::acceptor(&http.internal_tls)?;
        let internal = TcpListener::bind(addr).await?;
        tracing::info!(address = %internal.local_addr()?, tls = internal_tls.is_some(), "serving internal endpoints");
        super::banner::log_endpoints(
            app.config().as_ref(),
            internal.local_addr()?,
            internal_tls.is_some(),
            Some(true),
        );
        let internal_lane = Some((lane.clone(), Route::All));
        tokio::spawn(accept_loop(
            internal,
            router,
            internal_tls,
            internal_lane,
            stop.clone(),
        ));
    }

    let grpc = &app.config().grpc_api;
    if grpc.enabled {
        let addr = listen_addr(&grpc.address, &grpc.port.to_string())?;
        let tls = super::tls::acceptor_for(&grpc.tls, b"h2")?;
        let listener = TcpListener::bind(addr).await?;
        tracing::info!(address = %listener.local_addr()?, tls = tls.is_some(), "serving the gRPC server API");
        tokio::spawn(crate::grpc::serve(app.clone(), listener, tls, stop.clone()));
    }
    let uni_grpc = &app.config().uni_grpc;
    if uni_grpc.enabled {
        let addr = listen_addr(&uni_grpc.address, &uni_grpc.port.to_string())?;
        let tls = super::tls::acceptor_for(&uni_grpc.tls, b"h2")?;
        let listener = TcpListener::bind(addr).await?;
        tracing::info!(address = %listener.local_addr()?, tls = tls.is_some(), "serving uni_grpc connections");
        tokio::spawn(crate::unigrpc::serve(
            app.clone(),
            listener,
            tls,
            stop.clone(),
        ));
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

/// Accepts connections until `stop`; those that `lane` claims are served on the API
/// thread, the rest here.
pub(crate) async fn accept_loop(
    listener: TcpListener,
    router: Router,
    tls: Option<TlsAcceptor>,
    lane: Option<(ApiLane, Route)>,
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
        // Two task shapes on purpose: a plain connection's task must not be sized for a
        // TLS stream (the task's allocation is what an idle connection costs until the
        // upgrade hands the socket over).
        match (&tls, &lane) {
            (None, None) => {
                tokio::spawn(serve_connection(stream, router, stop));
            }
            (None, Some((lane, route))) => {
                let (lane, route) = (lane.clone(), route.clone());
                tokio::spawn(async move {
                    match lane_wants(&stream, &route, &stop).await {
                        None => {}
                        Some(true) => {
                            lane.spawn(stream, move |s| serve_connection(s, router, stop))
                        }
                        Some(false) => serve_connection(stream, router, stop).await,
                    }
                });
            }
            (Some(acceptor), lane) => {
                let acceptor = acceptor.clone();
                let serve = move |stream| serve_tls(stream, acceptor, router, stop);
                match lane {
                    // Encrypted: the request cannot be peeked, only whole listeners move.
                    Some((lane, Route::All)) => lane.spawn(stream, serve),
                    _ => {
                        tokio::spawn(serve(stream));
                    }
                }
            }
        }
    }
}

/// Whether the lane takes this connection; `None` when the server stopped while waiting
/// for the first bytes.
async fn lane_wants(
    stream: &tokio::net::TcpStream,
    route: &Route,
    stop: &CancellationToken,
) -> Option<bool> {
    if matches!(route, Route::All) {
        return Some(true);
    }
    let mut head = [0u8; PEEK_LEN];
    let n = tokio::select! {
        _ = stop.cancelled() => return None,
        peeked = stream.peek(&mut head) => peeked.unwrap_or(0),
    };
    Some(routes_to_lane(route, &head[..n]))
}

/// The TLS handshake, then the HTTP connection.
async fn serve_tls(
    stream: tokio::net::TcpStream,
    acceptor: TlsAcceptor,
    router: Router,
    stop: CancellationToken,
) {
    let handshake = tokio::time::timeout(Duration::from_secs(10), acceptor.accept(stream));
    match handshake.await {
        Ok(Ok(stream)) => serve_connection(stream, router, stop).await,
        Ok(Err(e)) => tracing::debug!(error = %e, "TLS handshake failed"),
        Err(_) => tracing::debug!("TLS handshake timed out"),
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

/// Applies a reloaded configuration, unless it needs a feature Gyre lacks that decides access
/// and was not opted in (the same rule as at start).
#[cfg(unix)]
fn apply_reload(app: &App, loaded: Loaded) -> anyhow::Result<()> {
    if let Some(refusal) = loaded.refusal() {
        return Err(refusal.into());
    }
    app.reload(loaded.config)
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
                Ok(loaded) => match apply_reload(app, loaded) {
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

#[cfg(test)]
mod tests {
    use axum::routing::{get, post};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    fn thread_name() -> String {
        std::thread::current()
            .name()
            .unwrap_or("unnamed")
            .to_owned()
    }

    async fn request(addr: SocketAddr, head: &str) -> String {
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        stream.write_all(head.as_bytes()).await.unwrap();
        let mut out = Vec::new();
        stream.read_to_end(&mut out).await.unwrap();
        String::from_utf8(out).unwrap()
    }

    /// API requests are answered on the API thread, everything else on the shared runtime.
    #[tokio::test]
    async fn api_connections_are_served_on_the_api_thread() {
        let router = Router::new()
            .route("/api/publish", post(|| async { thread_name() }))
            .route("/connection/websocket", get(|| async { thread_name() }));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = CancellationToken::new();
        let exit = CancellationToken::new();
        let lane = ApiLane::start(exit.clone()).unwrap();
        let route = Route::Prefix("/api".into());
        tokio::spawn(accept_loop(
            listener,
            router,
            None,
            Some((lane, route)),
            stop.clone(),
        ));

        let api = request(
            addr,
            "POST /api/publish HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        )
        .await;
        assert!(api.starts_with("HTTP/1.1 200"), "{api}");
        assert!(api.ends_with(super::super::api_lane::THREAD_NAME), "{api}");

        let other = request(
            addr,
            "GET /connection/websocket HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
        )
        .await;
        assert!(other.starts_with("HTTP/1.1 200"), "{other}");
        assert!(
            !other.ends_with(super::super::api_lane::THREAD_NAME),
            "{other}"
        );

        // A wrong path on the lane still gets the router's answer.
        let missing = request(
            addr,
            "POST /api/nothing HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        )
        .await;
        assert!(missing.starts_with("HTTP/1.1 404"), "{missing}");
        stop.cancel();
        exit.cancel();
    }
}
