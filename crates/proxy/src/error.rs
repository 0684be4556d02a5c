//! Why a proxy cannot be built, and why a call gave no answer.

/// A proxy's configuration cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProxyError {
    /// The endpoint is neither `http(s)://…` nor `grpc://host:port`.
    #[error("proxy endpoint {0:?} must start with http://, https:// or grpc://")]
    Endpoint(String),
    /// The TLS options are unusable.
    #[error("proxy TLS: {0}")]
    Tls(String),
}

/// Why a call brought no answer from the backend.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CallError {
    /// The backend did not answer within the timeout.
    #[error("timeout")]
    Timeout,
    /// Connection refused, reset, or a gRPC error status.
    #[error("{0}")]
    Transport(String),
    /// The backend answered with an HTTP status other than 200.
    #[error("unexpected HTTP status code {0}")]
    Status(u16),
    /// The request could not be encoded (data that is not JSON without binary encoding).
    #[error("encoding the request: {0}")]
    Encode(String),
    /// The answer is not a valid response.
    #[error("bad answer: {0}")]
    Decode(String),
}
