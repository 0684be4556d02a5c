//! The two flavours of a call: JSON over HTTP POST, or a unary gRPC call.

use std::sync::{Arc, OnceLock};

use serde::Serialize;
use serde::de::DeserializeOwned;
use tonic::metadata::{AsciiMetadataKey, AsciiMetadataValue, MetadataMap};

use crate::config::ProxyConfig;
use crate::context::CallContext;
use crate::error::{CallError, ProxyError};
use crate::proto;
use crate::stats::ProxyStats;

/// One request of the proxy service and its response type.
pub(crate) trait Exchange:
    prost::Message + Serialize + Clone + Default + Send + Sync + 'static
{
    type Response: prost::Message + DeserializeOwned + Default + Send + 'static;
    /// The gRPC path, `/centrifugal.centrifugo.proxy.CentrifugoProxy/<Method>`.
    const PATH: &'static str;
    /// The event's name in logs and metrics.
    const EVENT: &'static str;
    /// The event's place in [`crate::stats::EVENTS`].
    const INDEX: usize;
}

macro_rules! exchanges {
    ($($request:ident => $response:ident, $method:literal, $event:literal, $index:literal;)*) => {$(
        impl Exchange for proto::$request {
            type Response = proto::$response;
            const PATH: &'static str =
                concat!("/centrifugal.centrifugo.proxy.CentrifugoProxy/", $method);
            const EVENT: &'static str = $event;
            const INDEX: usize = $index;
        }
    )*};
}

exchanges! {
    ConnectRequest => ConnectResponse, "Connect", "connect", 0;
    RefreshRequest => RefreshResponse, "Refresh", "refresh", 1;
    SubscribeRequest => SubscribeResponse, "Subscribe", "subscribe", 2;
    PublishRequest => PublishResponse, "Publish", "publish", 3;
    RpcRequest => RpcResponse, "RPC", "rpc", 4;
    SubRefreshRequest => SubRefreshResponse, "SubRefresh", "sub_refresh", 5;
    MapPublishRequest => MapPublishResponse, "MapPublish", "map_publish", 6;
    MapRemoveRequest => MapRemoveResponse, "MapRemove", "map_remove", 7;
    SharedPollRefreshRequest => SharedPollRefreshResponse, "SharedPollRefresh", "shared_poll_refresh", 8;
}

#[derive(Debug)]
enum Transport {
    Http(reqwest::Client),
    Grpc(Box<GrpcTarget>),
}

#[derive(Debug)]
struct GrpcTarget {
    endpoint: tonic::transport::Endpoint,
    /// Connected on first use, inside the runtime.
    channel: OnceLock<tonic::transport::Channel>,
}

/// A backend endpoint that answers proxy calls.
///
/// Cheap to clone; clones share the connection pool.
///
/// ```
/// use gyre_proxy::{Proxy, ProxyConfig};
///
/// let http = Proxy::new(ProxyConfig::new("http://127.0.0.1:3000/connect")).unwrap();
/// assert_eq!(http.protocol(), "http");
/// let grpc = Proxy::new(ProxyConfig::new("grpc://127.0.0.1:10001")).unwrap();
/// assert_eq!(grpc.protocol(), "grpc");
/// assert!(Proxy::new(ProxyConfig::new("ftp://example.com")).is_err());
/// ```
#[derive(Debug, Clone)]
pub struct Proxy {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: ProxyConfig,
    transport: Transport,
    stats: ProxyStats,
}

impl Proxy {
    /// Checks the endpoint and TLS options and prepares the client. Nothing is dialled
    /// before the first call.
    pub fn new(config: ProxyConfig) -> Result<Proxy, ProxyError> {
        let endpoint = config.endpoint.as_str();
        let transport = if endpoint.starts_with("http://") || endpoint.starts_with("https://") {
            Transport::Http(http_client(&config)?)
        } else if let Some(host) = endpoint.strip_prefix("grpc://") {
            grpc_endpoint(&config, host)?
        } else {
            return Err(ProxyError::Endpoint(config.endpoint.clone()));
        };
        Ok(Proxy {
            inner: Arc::new(Inner {
                config,
                transport,
                stats: ProxyStats::default(),
            }),
        })
    }

    /// `"http"` or `"grpc"`, as in Centrifugo's proxy metrics.
    pub fn protocol(&self) -> &'static str {
        match self.inner.transport {
            Transport::Http(_) => "http",
            Transport::Grpc(_) => "grpc",
        }
    }

    /// The options this proxy was built with.
    pub fn config(&self) -> &ProxyConfig {
        &self.inner.config
    }

    /// Calls, errors and durations so far, per event (clones share them).
    ///
    /// ```
    /// use gyre_proxy::{Proxy, ProxyConfig};
    ///
    /// let proxy = Proxy::new(ProxyConfig::new("http://127.0.0.1:3000/connect")).unwrap();
    /// let (event, stats) = proxy.stats().events().next().unwrap();
    /// assert_eq!((event, stats.duration.count()), ("connect", 0));
    /// ```
    pub fn stats(&self) -> &ProxyStats {
        &self.inner.stats
    }

    /// Sends one request and decodes the answer. A non-200 HTTP status comes back as
    /// [`CallError::Status`]; the caller applies the status transforms.
    pub(crate) async fn call<E: Exchange>(
        &self,
        request: &E,
        context: &CallContext,
    ) -> Result<E::Response, CallError> {
        let config = &self.inner.config;
        let timeout = Some(config.timeout).filter(|t| !t.is_zero());
        let call = async {
            match &self.inner.transport {
                Transport::Http(client) => {
                    call_http::<E>(client, config, request, context, timeout).await
                }
                Transport::Grpc(target) => {
                    let channel = target
                        .channel
                        .get_or_init(|| target.endpoint.connect_lazy())
                        .clone();
                    call_grpc::<E>(channel, config, request, context, timeout).await
                }
            }
        };
        match timeout {
            Some(t) => tokio::time::timeout(t, call)
                .await
                .unwrap_or(Err(CallError::Timeout)),
            None => call.await,
        }
    }
}

fn http_client(config: &ProxyConfig) -> Result<reqwest::Client, ProxyError> {
    // Centrifugo keeps up to 255 idle connections per backend host.
    let mut builder = reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(255);
    if let Some(tls) = &config.tls {
        if !tls.server_ca_pem.is_empty() {
            let certs = reqwest::Certificate::from_pem_bundle(tls.server_ca_pem.as_bytes())
                .map_err(|e| ProxyError::Tls(format!("server_ca_pem: {e}")))?;
            builder = builder.tls_certs_merge(certs);
        }
        if !tls.cert_pem.is_empty() {
            let pem = format!("{}\n{}", tls.cert_pem, tls.key_pem);
            let identity = reqwest::Identity::from_pem(pem.as_bytes())
                .map_err(|e| ProxyError::Tls(format!("cert_pem/key_pem: {e}")))?;
            builder = builder.identity(identity);
        }
        if tls.insecure_skip_verify {
            builder = builder.tls_danger_accept_invalid_certs(true);
        }
    }
    builder
        .build()
        .map_err(|e| ProxyError::Tls(format!("HTTP client: {e}")))
}

fn grpc_endpoint(config: &ProxyConfig, host: &str) -> Result<Transport, ProxyError> {
    let host = host.trim_end_matches('/');
    let scheme = if config.tls.is_some() {
        "https"
    } else {
        "http"
    };
    let mut endpoint = tonic::transport::Endpoint::from_shared(format!("{scheme}://{host}"))
        .map_err(|_| ProxyError::Endpoint(config.endpoint.clone()))?;
    if let Some(tls) = &config.tls {
        let mut client_tls = tonic::transport::ClientTlsConfig::new();
        if tls.server_ca_pem.is_empty() {
            client_tls = client_tls.with_enabled_roots();
        } else {
            client_tls = client_tls
                .ca_certificate(tonic::transport::Certificate::from_pem(&tls.server_ca_pem));
        }
        if !tls.cert_pem.is_empty() {
            client_tls = client_tls.identity(tonic::transport::Identity::from_pem(
                &tls.cert_pem,
                &tls.key_pem,
            ));
        }
        if !tls.server_name.is_empty() {
            client_tls = client_tls.domain_name(tls.server_name.clone());
        }
        if tls.insecure_skip_verify {
            return Err(ProxyError::Tls(
                "insecure_skip_verify is not supported for gRPC proxies".into(),
            ));
        }
        endpoint = endpoint
            .tls_config(client_tls)
            .map_err(|e| ProxyError::Tls(e.to_string()))?;
    }
    Ok(Transport::Grpc(Box::new(GrpcTarget {
        endpoint,
        channel: OnceLock::new(),
    })))
}

/// Headers of an HTTP call, in Centrifugo's order: static headers, then allowed emulated
/// headers, then allowed headers of the client's request (which win), then the JSON type.
fn http_headers(config: &ProxyConfig, context: &CallContext) -> http::HeaderMap {
    let mut out = http::HeaderMap::new();
    for (name, value) in &config.static_headers {
        if let (Ok(k), Ok(v)) = (
            http::HeaderName::from_bytes(name.to_ascii_lowercase().as_bytes()),
            http::HeaderValue::from_str(value),
        ) {
            out.insert(k, v);
        }
    }
    for (name, value) in &context.emulated {
        if config.emulated_headers.iter().any(|a| a == name)
            && let (Ok(k), Ok(v)) = (
                http::HeaderName::from_bytes(name.as_bytes()),
                http::HeaderValue::from_str(value),
            )
        {
            out.insert(k, v);
        }
    }
    for name in &config.http_headers {
        let Ok(key) = http::HeaderName::from_bytes(name.as_bytes()) else {
            continue;
        };
        let mut values = context.headers.get_all(&key).iter().peekable();
        if values.peek().is_some() {
            out.remove(&key);
            for v in values {
                out.append(key.clone(), v.clone());
            }
        }
    }
    out.insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    out
}

/// Metadata of a gRPC call, in the same order as [`http_headers`], plus the credentials.
fn grpc_metadata(config: &ProxyConfig, context: &CallContext) -> MetadataMap {
    let mut md = MetadataMap::new();
    let mut set = |name: &str, value: &str, append: bool| {
        if let (Ok(k), Ok(v)) = (
            name.to_ascii_lowercase().parse::<AsciiMetadataKey>(),
            value.parse::<AsciiMetadataValue>(),
        ) {
            if append {
                md.append(k, v);
            } else {
                md.insert(k, v);
            }
        }
    };
    for (name, value) in &config.static_metadata {
        set(name, value, false);
    }
    for (name, value) in &context.emulated {
        if config.emulated_headers.iter().any(|a| a == name) {
            set(name, value, false);
        }
    }
    for name in &config.http_headers {
        let mut first = true;
        for v in context.headers.get_all(name.as_str()) {
            if let Ok(v) = v.to_str() {
                set(name, v, !first);
                first = false;
            }
        }
    }
    if let Some((key, value)) = &config.grpc_credentials {
        set(key, value, false);
    }
    md
}

async fn call_http<E: Exchange>(
    client: &reqwest::Client,
    config: &ProxyConfig,
    request: &E,
    context: &CallContext,
    timeout: Option<std::time::Duration>,
) -> Result<E::Response, CallError> {
    let body = serde_json::to_vec(request).map_err(|e| CallError::Encode(e.to_string()))?;
    let mut req = client
        .post(&config.endpoint)
        .headers(http_headers(config, context))
        .body(body);
    if let Some(t) = timeout {
        req = req.timeout(t);
    }
    let resp = req.send().await.map_err(|e| {
        if e.is_timeout() {
            CallError::Timeout
        } else {
            CallError::Transport(e.to_string())
        }
    })?;
    if resp.status() != reqwest::StatusCode::OK {
        return Err(CallError::Status(resp.status().as_u16()));
    }
    let bytes = resp
        .bytes()
        .await
        .map_err(|e| CallError::Transport(e.to_string()))?;
    serde_json::from_slice(&bytes).map_err(|e| CallError::Decode(e.to_string()))
}

async fn call_grpc<E: Exchange>(
    channel: tonic::transport::Channel,
    config: &ProxyConfig,
    request: &E,
    context: &CallContext,
    timeout: Option<std::time::Duration>,
) -> Result<E::Response, CallError> {
    let mut grpc = tonic::client::Grpc::new(channel);
    if config.grpc_compression {
        grpc = grpc.send_compressed(tonic::codec::CompressionEncoding::Gzip);
    }
    grpc.ready()
        .await
        .map_err(|e| CallError::Transport(e.to_string()))?;
    let mut req = tonic::Request::new(request.clone());
    *req.metadata_mut() = grpc_metadata(config, context);
    if let Some(t) = timeout {
        req.set_timeout(t);
    }
    let codec = tonic_prost::ProstCodec::<E, E::Response>::default();
    let path = http::uri::PathAndQuery::from_static(E::PATH);
    match grpc.unary(req, path, codec).await {
        Ok(resp) => Ok(resp.into_inner()),
        Err(status) if status.code() == tonic::Code::DeadlineExceeded => Err(CallError::Timeout),
        Err(status) => Err(CallError::Transport(format!(
            "gRPC status {:?}: {}",
            status.code(),
            status.message()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forwarded_headers_win_over_static_ones_and_unlisted_ones_stay_home() {
        let config = ProxyConfig::new("http://127.0.0.1:1/")
            .http_headers(["Authorization", "X-Trace"])
            .emulated_headers(["x-app"])
            .static_header("x-trace", "static")
            .static_header("x-service", "gyre")
            .static_metadata("x-trace", "static")
            .static_metadata("x-service", "gyre");
        let mut context = CallContext::default();
        context
            .headers
            .insert("authorization", "Bearer t".parse().unwrap());
        context.headers.insert("x-trace", "abc".parse().unwrap());
        context.headers.insert("cookie", "secret".parse().unwrap());
        context.emulated.insert("x-app".into(), "web".into());
        context.emulated.insert("x-other".into(), "no".into());
        let h = http_headers(&config, &context);
        assert_eq!(h["authorization"], "Bearer t");
        assert_eq!(h["x-trace"], "abc");
        assert_eq!(h["x-service"], "gyre");
        assert_eq!(h["x-app"], "web");
        assert!(h.get("cookie").is_none());
        assert!(h.get("x-other").is_none());
        assert_eq!(h["content-type"], "application/json");

        let md = grpc_metadata(&config, &context);
        assert_eq!(md.get("authorization").unwrap(), "Bearer t");
        assert_eq!(md.get("x-trace").unwrap(), "abc");
        assert_eq!(md.get("x-service").unwrap(), "gyre");
        assert_eq!(md.get("x-app").unwrap(), "web");
        assert!(md.get("cookie").is_none());
    }
}
