//! Publishing through the gRPC server API (`centrifugal.centrifugo.api.CentrifugoApi`,
//! `proto/api.proto`), the counterpart of [`api`](crate::api) for `--api grpc://host:port`.
//!
//! Each publisher owns one HTTP/2 connection and keeps one call in flight on it, as an
//! HTTP API publisher keeps one request in flight on its keep-alive connection, so the
//! two transports are compared call for call.

use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use bytes::Bytes;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::transport::{Channel, Endpoint};

/// The messages and client generated from `proto/api.proto` by `cargo xtask codegen`.
#[allow(
    missing_docs,
    unreachable_pub,
    missing_debug_implementations,
    clippy::all,
    reason = "generated code"
)]
mod pb {
    include!("generated/centrifugal.centrifugo.api.rs");
}

use pb::centrifugo_api_client::CentrifugoApiClient;

/// How long [`GrpcConn::connect`] retries a refused connection: the server binds its gRPC
/// listener just after the HTTP one that `compare` waits for.
const CONNECT_RETRY: Duration = Duration::from_secs(5);

/// Where and how to call the gRPC API.
#[derive(Debug, Clone)]
pub struct GrpcTarget {
    /// `host:port`.
    pub hostport: String,
    /// Sent as metadata `authorization: apikey <key>` (empty = not sent).
    pub key: String,
}

impl GrpcTarget {
    /// Parses `grpc://host:port`.
    pub fn parse(url: &str, key: &str) -> anyhow::Result<GrpcTarget> {
        let rest = url
            .strip_prefix("grpc://")
            .ok_or_else(|| anyhow!("a gRPC API URL is grpc://host:port: {url}"))?;
        let hostport = rest.trim_end_matches('/');
        if hostport.is_empty() || hostport.contains('/') {
            bail!("a gRPC API URL is grpc://host:port: {url}");
        }
        Ok(GrpcTarget {
            hostport: hostport.to_owned(),
            key: key.to_owned(),
        })
    }
}

/// One HTTP/2 connection to the gRPC API.
#[derive(Debug)]
pub struct GrpcConn {
    client: CentrifugoApiClient<Channel>,
    auth: Option<MetadataValue<Ascii>>,
}

impl GrpcConn {
    /// Connects (retrying refused connections for a few seconds).
    pub async fn connect(target: &GrpcTarget) -> anyhow::Result<GrpcConn> {
        let endpoint = Endpoint::from_shared(format!("http://{}", target.hostport))
            .with_context(|| format!("gRPC API address {}", target.hostport))?
            .tcp_nodelay(true);
        let deadline = Instant::now() + CONNECT_RETRY;
        let channel = loop {
            match endpoint.connect().await {
                Ok(channel) => break channel,
                Err(_) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => {
                    return Err(e).with_context(|| {
                        format!("connecting to the gRPC API at {}", target.hostport)
                    });
                }
            }
        };
        let auth = if target.key.is_empty() {
            None
        } else {
            Some(
                format!("apikey {}", target.key)
                    .parse()
                    .context("the API key is not valid metadata")?,
            )
        };
        Ok(GrpcConn {
            client: CentrifugoApiClient::new(channel),
            auth,
        })
    }

    /// `Publish` of `data` (JSON, as over HTTP) into `channel`. Fails on a gRPC status
    /// or an `error` in the reply.
    pub async fn publish(&mut self, channel: &str, data: Vec<u8>) -> anyhow::Result<()> {
        let mut request = tonic::Request::new(pb::PublishRequest {
            channel: channel.to_owned(),
            data: Bytes::from(data),
            ..Default::default()
        });
        if let Some(auth) = &self.auth {
            request.metadata_mut().insert("authorization", auth.clone());
        }
        let reply = self
            .client
            .publish(request)
            .await
            .map_err(|s| anyhow!("gRPC publish: {}: {}", s.code(), s.message()))?
            .into_inner();
        if let Some(e) = reply.error {
            bail!("gRPC publish: error {} {}", e.code, e.message);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_grpc_urls() {
        let t = GrpcTarget::parse("grpc://127.0.0.1:10000", "k").unwrap();
        assert_eq!(
            (t.hostport.as_str(), t.key.as_str()),
            ("127.0.0.1:10000", "k")
        );
        let t = GrpcTarget::parse("grpc://localhost:9/", "").unwrap();
        assert_eq!(t.hostport, "localhost:9");
        assert!(GrpcTarget::parse("http://127.0.0.1:9", "").is_err());
        assert!(GrpcTarget::parse("grpc://127.0.0.1:9/api", "").is_err());
        assert!(GrpcTarget::parse("grpc://", "").is_err());
    }
}
