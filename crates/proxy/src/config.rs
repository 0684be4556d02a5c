//! How to reach one backend endpoint: Centrifugo's proxy options, independent of where
//! they come from (the server's configuration file, or code).

use std::collections::BTreeMap;
use std::time::Duration;

/// One proxy endpoint and its options (Centrifugo's `Proxy` configuration object).
///
/// `http://` and `https://` endpoints get a JSON POST per event; `grpc://host:port`
/// endpoints get unary calls of `centrifugal.centrifugo.proxy.CentrifugoProxy`.
///
/// ```
/// use std::time::Duration;
/// use gyre_proxy::ProxyConfig;
///
/// let config = ProxyConfig::new("http://127.0.0.1:3000/centrifugo/connect")
///     .timeout(Duration::from_millis(500))
///     .http_headers(["cookie", "authorization"])
///     .static_header("x-service", "gyre");
/// assert_eq!(config.endpoint, "http://127.0.0.1:3000/centrifugo/connect");
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ProxyConfig {
    /// `http(s)://…` or `grpc://host:port`.
    pub endpoint: String,
    /// Limit for one call (zero = none). Centrifugo's default is one second.
    pub timeout: Duration,
    /// Headers of the client's HTTP request forwarded to the backend (lowercase names);
    /// on the gRPC flavour they become metadata.
    pub http_headers: Vec<String>,
    /// Metadata of a gRPC client's request forwarded to the backend.
    pub grpc_metadata: Vec<String>,
    /// Headers an SDK sent inside its connect command (`headers` emulation) that may be
    /// forwarded; the client controls their values.
    pub emulated_headers: Vec<String>,
    /// Application data as base64 (`b64data`, `b64info`) instead of raw JSON.
    pub binary_encoding: bool,
    /// Add the connection's `meta` to every request after connect.
    pub include_connection_meta: bool,
    /// Headers added to every HTTP call.
    pub static_headers: BTreeMap<String, String>,
    /// Metadata added to every gRPC call.
    pub static_metadata: BTreeMap<String, String>,
    /// Non-200 HTTP answers turned into a client error or disconnect.
    pub status_transforms: Vec<StatusTransform>,
    /// TLS towards the backend (`https://` and `grpc://`).
    pub tls: Option<TlsOptions>,
    /// A metadata pair added to every gRPC call (`grpc.credentials_key`/`_value`).
    pub grpc_credentials: Option<(String, String)>,
    /// Gzip-compress gRPC requests.
    pub grpc_compression: bool,
}

impl ProxyConfig {
    /// An endpoint with Centrifugo's defaults (one second timeout, raw JSON data).
    pub fn new(endpoint: impl Into<String>) -> Self {
        ProxyConfig {
            endpoint: endpoint.into(),
            timeout: Duration::from_secs(1),
            http_headers: Vec::new(),
            grpc_metadata: Vec::new(),
            emulated_headers: Vec::new(),
            binary_encoding: false,
            include_connection_meta: false,
            static_headers: BTreeMap::new(),
            static_metadata: BTreeMap::new(),
            status_transforms: Vec::new(),
            tls: None,
            grpc_credentials: None,
            grpc_compression: false,
        }
    }

    /// Sets the call timeout.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Forwards these headers of the client's HTTP request.
    pub fn http_headers<I, S>(mut self, names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.http_headers = names
            .into_iter()
            .map(|n| n.into().to_ascii_lowercase())
            .collect();
        self
    }

    /// Forwards these emulated headers of the connect command.
    pub fn emulated_headers<I, S>(mut self, names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.emulated_headers = names
            .into_iter()
            .map(|n| n.into().to_ascii_lowercase())
            .collect();
        self
    }

    /// Adds a header to every HTTP call.
    pub fn static_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.static_headers.insert(name.into(), value.into());
        self
    }

    /// Adds a metadata pair to every gRPC call.
    pub fn static_metadata(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.static_metadata.insert(key.into(), value.into());
        self
    }

    /// Application data as base64 rather than raw JSON.
    pub fn binary_encoding(mut self, on: bool) -> Self {
        self.binary_encoding = on;
        self
    }

    /// Sends the connection's meta with every call after connect.
    pub fn include_connection_meta(mut self, on: bool) -> Self {
        self.include_connection_meta = on;
        self
    }

    /// Turns an HTTP status into a client error or disconnect.
    pub fn status_transform(mut self, transform: StatusTransform) -> Self {
        self.status_transforms.push(transform);
        self
    }

    /// Uses TLS with these options.
    pub fn tls(mut self, tls: TlsOptions) -> Self {
        self.tls = Some(tls);
        self
    }
}

/// What a non-200 HTTP status from the backend becomes.
#[derive(Debug, Clone)]
pub struct StatusTransform {
    /// The HTTP status to match.
    pub status: u16,
    /// The client gets this error or disconnect.
    pub to: gyre::HandlerError,
}

/// TLS towards the backend (Centrifugo's `TLSConfig`, client side). PEM contents, not
/// file names.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct TlsOptions {
    /// Client certificate (mutual TLS).
    pub cert_pem: String,
    /// Client key (mutual TLS).
    pub key_pem: String,
    /// CA that signed the backend's certificate (else the system roots).
    pub server_ca_pem: String,
    /// Accept any backend certificate (tests only).
    pub insecure_skip_verify: bool,
    /// Name to verify the backend's certificate against (gRPC flavour).
    pub server_name: String,
}

impl TlsOptions {
    /// Default TLS: system roots, no client certificate.
    pub fn new() -> Self {
        Self::default()
    }
}
