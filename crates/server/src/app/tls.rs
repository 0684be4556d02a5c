//! TLS from PEM (`http_server.tls`): the certificate and key may be inline PEM, base64 of
//! a PEM, or a path to a PEM file, as Centrifugo accepts them.

use std::sync::Arc;

use anyhow::{Context, bail};
use base64::Engine as _;
use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;

use crate::config::TlsConfig;

/// The acceptor for `tls`, or `None` when TLS is off.
pub(crate) fn acceptor(tls: &TlsConfig) -> anyhow::Result<Option<TlsAcceptor>> {
    // WebSocket upgrades need HTTP/1.1; HTTP/2 is not served.
    acceptor_for(tls, b"http/1.1")
}

/// The acceptor for `tls` offering the one application protocol `alpn` (`h2` for gRPC).
pub(crate) fn acceptor_for(tls: &TlsConfig, alpn: &[u8]) -> anyhow::Result<Option<TlsAcceptor>> {
    if !tls.enabled {
        return Ok(None);
    }
    let cert = load_pem(&tls.cert_pem).context("http_server.tls.cert_pem")?;
    let key = load_pem(&tls.key_pem).context("http_server.tls.key_pem")?;
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&cert)
        .collect::<Result<_, _>>()
        .context("parsing certificate PEM")?;
    if certs.is_empty() {
        bail!("http_server.tls.cert_pem holds no certificate");
    }
    let key = PrivateKeyDer::from_pem_slice(&key).context("parsing private key PEM")?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key)?;
    config.alpn_protocols = vec![alpn.to_vec()];
    Ok(Some(TlsAcceptor::from(Arc::new(config))))
}

/// PEM bytes from inline PEM, base64-encoded PEM or a file path.
fn load_pem(value: &str) -> anyhow::Result<Vec<u8>> {
    let value = value.trim();
    if value.is_empty() {
        bail!("empty");
    }
    if value.starts_with("-----BEGIN") {
        return Ok(value.as_bytes().to_vec());
    }
    if let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(value)
        && decoded.starts_with(b"-----BEGIN")
    {
        return Ok(decoded);
    }
    std::fs::read(value).with_context(|| format!("reading {value}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const CERT: &str = include_str!("../../tests/fixtures/tls/cert.pem");
    const KEY: &str = include_str!("../../tests/fixtures/tls/key.pem");

    fn tls(cert: String, key: String) -> TlsConfig {
        TlsConfig {
            enabled: true,
            cert_pem: cert,
            key_pem: key,
            ..Default::default()
        }
    }

    #[test]
    fn accepts_inline_base64_and_file_pem() {
        assert!(acceptor(&tls(CERT.into(), KEY.into())).unwrap().is_some());
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        assert!(acceptor(&tls(b64(CERT), b64(KEY))).unwrap().is_some());
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/tls");
        assert!(
            acceptor(&tls(format!("{dir}/cert.pem"), format!("{dir}/key.pem")))
                .unwrap()
                .is_some()
        );
    }

    #[test]
    fn off_or_broken_configs() {
        assert!(acceptor(&TlsConfig::default()).unwrap().is_none());
        assert!(acceptor(&tls("/nonexistent.pem".into(), KEY.into())).is_err());
        assert!(acceptor(&tls(KEY.into(), KEY.into())).is_err());
    }
}
