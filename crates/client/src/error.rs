//! Errors returned by client calls and carried by error events.

use gyre_protocol::{DecodeError, EncodeError};

/// Why a client call failed, or what went wrong in the background (see
/// [`ClientEvent::Error`](crate::ClientEvent::Error)).
///
/// ```
/// use gyre_client::ClientError;
/// use gyre_protocol::Error;
///
/// let e = ClientError::Server(Error::NOT_AVAILABLE);
/// assert_eq!(e.to_string(), "server error 108: not available");
/// assert_eq!(e.server_code(), Some(108));
/// assert_eq!(ClientError::Timeout.server_code(), None);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The server answered with an error (`code`, `message`, `temporary`).
    #[error("server error {0}")]
    Server(gyre_protocol::Error),
    /// The client is in the disconnected state (never connected, `disconnect` called, or a
    /// terminal disconnect code arrived).
    #[error("client is disconnected")]
    Disconnected,
    /// The connection went away while the command was waiting for its reply.
    #[error("connection closed")]
    ConnectionClosed,
    /// No reply within the configured timeout (or not connected in time).
    #[error("timeout")]
    Timeout,
    /// The client task is gone: every `Client` handle was dropped.
    #[error("client closed")]
    Closed,
    /// A command could not be encoded (for JSON: the payload is not valid JSON).
    #[error("encode: {0}")]
    Encode(#[from] EncodeError),
    /// A server frame could not be decoded.
    #[error("decode: {0}")]
    Decode(#[from] DecodeError),
    /// The `get_token` callback failed.
    #[error("token: {0}")]
    Token(String),
    /// The WebSocket could not be opened or failed.
    #[error("transport: {0}")]
    Transport(String),
    /// `new_subscription` was called for a channel that already has a subscription.
    #[error("subscription to `{0}` already exists")]
    DuplicateSubscription(String),
    /// The subscription was removed from the client.
    #[error("subscription removed")]
    SubscriptionRemoved,
}

impl ClientError {
    /// The server error code, if this is a server error.
    pub fn server_code(&self) -> Option<u32> {
        match self {
            ClientError::Server(e) => Some(e.code),
            _ => None,
        }
    }
}

/// What a `get_token` callback returns on failure.
///
/// [`TokenError::Unauthorized`] is final: the client goes to the disconnected state (code 1),
/// a subscription to the unsubscribed state (code 1). Any other failure is retried with
/// backoff.
///
/// ```
/// use gyre_client::TokenError;
/// let retry = TokenError::Failed("backend down".into());
/// assert_eq!(retry.to_string(), "backend down");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// The user may not connect / subscribe: stop trying.
    #[error("unauthorized")]
    Unauthorized,
    /// A temporary failure: try again later.
    #[error("{0}")]
    Failed(String),
}
