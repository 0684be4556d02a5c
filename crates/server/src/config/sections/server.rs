//! The server itself: listeners and TLS, logging, node identity, shutdown; and the root.

use super::*;

sections! {
    /// Upstream `Config`.
    Config {
        http_server: HttpServer,
        log: Log,
        engine: Engine,
        broker: Broker,
        presence_manager: PresenceManager,
        map_broker: MapBroker,
        controller: Controller,
        shared_poll: SharedPoll,
        client: Client,
        channel: Channel,
        rpc: Rpc,
        proxies: Vec<NamedProxy>,
        http_api: HttpApi,
        grpc_api: GrpcApi,
        consumers: Vec<Consumer>,
        websocket: WebSocket,
        sse: Sse,
        http_stream: HttpStream,
        webtransport: WebTransport,
        uni_sse: UniSse,
        uni_http_stream: UniHttpStream,
        uni_websocket: UniWebSocket,
        uni_grpc: UniGrpc,
        emulation: Emulation,
        admin: Admin,
        prometheus: Prometheus,
        health: Health,
        swagger: Swagger,
        debug: Debug,
        init: ConnInit,
        opentelemetry: OpenTelemetry,
        graphite: Graphite,
        usage_stats: UsageStats,
        node: Node,
        shutdown: Shutdown,
        pid_file: String,
        enable_unreleased_features: bool,
        /// Gyre's own keys (Gyre extension; Centrifugo has no such section).
        gyre: Gyre,
    }

    /// Keys that only Gyre reads: a Gyre extension to the Centrifugo v6 configuration
    /// (Centrifugo warns about the `gyre` section as an unknown key and ignores it).
    Gyre {
        /// Gyre extension: run even though a configured feature that Gyre does not
        /// implement decides who may connect, subscribe, publish or call RPC (the connect,
        /// refresh, subscribe, publish, sub refresh, subscribe stream and RPC proxies, map
        /// and shared poll subscriptions). Without it the server refuses to start (or to
        /// reload) with such a configuration; with it, each feature is logged as an error
        /// at start and the requests it would decide are answered without it. The command
        /// line flag `--allow-unsupported` sets it too.
        allow_unsupported: bool,
    }

    /// Upstream `HTTPServer`.
    HttpServer {
        address: String,
        port: i64 = 8000,
        internal_address: String,
        internal_port: String,
        tls: TlsConfig,
        tls_autocert: TlsAutocert,
        tls_external: bool,
        internal_tls: TlsConfig,
        http3: Http3,
        h2c_external: bool,
    }

    /// Upstream `HTTP3`.
    Http3 {
        enabled: bool,
    }

    /// Upstream `TLSConfig`.
    TlsConfig {
        enabled: bool,
        cert_pem: String,
        key_pem: String,
        server_ca_pem: String,
        client_ca_pem: String,
        insecure_skip_verify: bool,
        server_name: String,
    }

    /// Upstream `TLSAutocert`.
    TlsAutocert {
        enabled: bool,
        host_whitelist: Vec<String>,
        cache_dir: String,
        email: String,
        server_name: String,
        http: bool,
        http_addr: String = ":80",
    }

    /// Upstream `Log`.
    Log {
        level: String = "info",
        file: String,
    }

    /// Upstream `Node`.
    Node {
        name: String,
        info_metrics_aggregate_interval: Duration = "1m",
    }

    /// Upstream `Shutdown`.
    Shutdown {
        timeout: Duration = "30s",
    }
}
