//! Client-visible codes: reply errors, disconnects and unsubscribes.
//!
//! Numbers and reasons are those of the Centrifugal protocol v2; SDKs decide whether to
//! retry, reconnect or resubscribe from them, so they must never drift.

use std::borrow::Cow;
use std::fmt;

use crate::proto;

/// An error in a command reply (`Reply.error`).
///
/// Codes 0–399 belong to the server, 400–1999 to applications. `temporary` asks the
/// SDK to retry with backoff.
///
/// ```
/// use gyre_protocol::Error;
/// let e = Error::PERMISSION_DENIED;
/// assert_eq!((e.code, &*e.message), (103, "permission denied"));
/// let custom = Error::new(4000, "custom");
/// assert!(!custom.temporary);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Error {
    /// Numeric code.
    pub code: u32,
    /// Human readable message.
    pub message: Cow<'static, str>,
    /// Whether a client may retry the same command later.
    pub temporary: bool,
}

macro_rules! errors {
    ($($(#[$doc:meta])* $name:ident = ($code:expr, $msg:expr, $temp:expr);)*) => {
        impl Error {
            $($(#[$doc])* pub const $name: Error = Error { code: $code, message: Cow::Borrowed($msg), temporary: $temp };)*

            /// The predefined error with this code, if there is one.
            pub fn from_code(code: u32) -> Option<Error> {
                match code {
                    $($code => Some(Error::$name),)*
                    _ => None,
                }
            }
        }
    };
}

errors! {
    /// 100: a failure inside the server; the client may retry.
    INTERNAL = (100, "internal server error", true);
    /// 101: unauthorized.
    UNAUTHORIZED = (101, "unauthorized", false);
    /// 102: unknown channel (namespace not configured).
    UNKNOWN_CHANNEL = (102, "unknown channel", false);
    /// 103: permission denied.
    PERMISSION_DENIED = (103, "permission denied", false);
    /// 104: method not found.
    METHOD_NOT_FOUND = (104, "method not found", false);
    /// 105: already subscribed.
    ALREADY_SUBSCRIBED = (105, "already subscribed", false);
    /// 106: limit exceeded.
    LIMIT_EXCEEDED = (106, "limit exceeded", false);
    /// 107: bad request.
    BAD_REQUEST = (107, "bad request", false);
    /// 108: not available (feature off, no handler).
    NOT_AVAILABLE = (108, "not available", false);
    /// 109: token expired; SDKs fetch a new token and retry.
    TOKEN_EXPIRED = (109, "token expired", false);
    /// 110: expired.
    EXPIRED = (110, "expired", false);
    /// 111: too many requests.
    TOO_MANY_REQUESTS = (111, "too many requests", true);
    /// 112: unrecoverable position.
    UNRECOVERABLE_POSITION = (112, "unrecoverable position", false);
    /// 113: concurrent pagination.
    CONCURRENT_PAGINATION = (113, "concurrent pagination", true);
}

impl Error {
    /// A custom, non-temporary error.
    pub fn new(code: u32, message: impl Into<Cow<'static, str>>) -> Self {
        Error {
            code,
            message: message.into(),
            temporary: false,
        }
    }

    /// Marks the error as temporary.
    pub fn temporary(mut self) -> Self {
        self.temporary = true;
        self
    }

    /// The wire form.
    pub fn to_proto(&self) -> proto::Error {
        proto::Error {
            code: self.code,
            message: self.message.to_string(),
            temporary: self.temporary,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for Error {}

/// Why a connection is closed. On WebSocket it travels in the close frame, elsewhere as a
/// `disconnect` push.
///
/// Codes 3500–3999 and 4500–4999 tell SDKs not to reconnect.
///
/// ```
/// use gyre_protocol::Disconnect;
/// assert_eq!(Disconnect::SLOW.code, 3008);
/// assert!(Disconnect::SLOW.reconnect());
/// assert!(!Disconnect::BAD_REQUEST.reconnect());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Disconnect {
    /// Numeric code.
    pub code: u32,
    /// Short reason (a WebSocket close reason is limited to 123 bytes).
    pub reason: Cow<'static, str>,
}

macro_rules! disconnects {
    ($($(#[$doc:meta])* $name:ident = ($code:expr, $reason:expr);)*) => {
        impl Disconnect {
            $($(#[$doc])* pub const $name: Disconnect = Disconnect { code: $code, reason: Cow::Borrowed($reason) };)*

            /// The predefined disconnect with this code, if there is one.
            pub fn from_code(code: u32) -> Option<Disconnect> {
                match code {
                    $($code => Some(Disconnect::$name),)*
                    _ => None,
                }
            }
        }
    };
}

disconnects! {
    /// 3000: plain close; internal, never sent.
    CONNECTION_CLOSED = (3000, "connection closed");
    /// 3001: node shutting down; reconnect elsewhere.
    SHUTDOWN = (3001, "shutdown");
    /// 3004: internal server error.
    INTERNAL_SERVER_ERROR = (3004, "internal server error");
    /// 3005: connection credentials expired.
    EXPIRED = (3005, "connection expired");
    /// 3006: a server-side subscription expired.
    SUBSCRIPTION_EXPIRED = (3006, "subscription expired");
    /// 3008: the client's outbound queue overflowed.
    SLOW = (3008, "slow");
    /// 3009: writing to the transport failed.
    WRITE_ERROR = (3009, "write error");
    /// 3010: stream position lost on a server-side subscription.
    INSUFFICIENT_STATE = (3010, "insufficient state");
    /// 3011: asked to reconnect.
    FORCE_RECONNECT = (3011, "force reconnect");
    /// 3012: no pong in time.
    NO_PONG = (3012, "no pong");
    /// 3013: too many requests.
    TOO_MANY_REQUESTS = (3013, "too many requests");
    /// 3014: state invalidated.
    STATE_INVALIDATED = (3014, "state invalidated");
    /// 3500: invalid token.
    INVALID_TOKEN = (3500, "invalid token");
    /// 3501: protocol violation.
    BAD_REQUEST = (3501, "bad request");
    /// 3502: no connect command in time.
    STALE = (3502, "stale");
    /// 3503: disconnected by the server, do not reconnect.
    FORCE_NO_RECONNECT = (3503, "force disconnect");
    /// 3504: connection limit.
    CONNECTION_LIMIT = (3504, "connection limit");
    /// 3505: channel limit.
    CHANNEL_LIMIT = (3505, "channel limit");
    /// 3506: a payload cannot be encoded in the connection's protocol.
    INAPPROPRIATE_PROTOCOL = (3506, "inappropriate protocol");
    /// 3507: permission denied.
    PERMISSION_DENIED = (3507, "permission denied");
    /// 3508: not available.
    NOT_AVAILABLE = (3508, "not available");
    /// 3509: too many errors.
    TOO_MANY_ERRORS = (3509, "too many errors");
}

impl Disconnect {
    /// A custom disconnect (applications use 4000–4499 to reconnect, 4500–4999 not to).
    pub fn new(code: u32, reason: impl Into<Cow<'static, str>>) -> Self {
        Disconnect {
            code,
            reason: reason.into(),
        }
    }

    /// Whether SDKs reconnect after this disconnect.
    pub fn reconnect(&self) -> bool {
        !matches!(self.code, 3500..=3999 | 4500..=4999)
    }

    /// The wire form of a `disconnect` push.
    pub fn to_proto(&self) -> proto::Disconnect {
        proto::Disconnect {
            code: self.code,
            reason: self.reason.to_string(),
            reconnect: false,
        }
    }
}

impl fmt::Display for Disconnect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.reason)
    }
}

/// Why the server removed a subscription (`unsubscribe` push).
///
/// Codes below 2500 are final; 2500 and above ask the SDK to resubscribe.
///
/// ```
/// use gyre_protocol::Unsubscribe;
/// assert!(Unsubscribe::INSUFFICIENT_STATE.resubscribe());
/// assert!(!Unsubscribe::SERVER.resubscribe());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Unsubscribe {
    /// Numeric code.
    pub code: u32,
    /// Short reason.
    pub reason: Cow<'static, str>,
}

impl Unsubscribe {
    /// 0: the client unsubscribed (internal, never sent).
    pub const CLIENT: Unsubscribe = Unsubscribe::fixed(0, "client unsubscribed");
    /// 1: the client disconnected (internal, never sent).
    pub const DISCONNECT: Unsubscribe = Unsubscribe::fixed(1, "client disconnected");
    /// 2000: unsubscribed by the server.
    pub const SERVER: Unsubscribe = Unsubscribe::fixed(2000, "server unsubscribe");
    /// 2500: stream position lost; resubscribe and recover.
    pub const INSUFFICIENT_STATE: Unsubscribe = Unsubscribe::fixed(2500, "insufficient state");
    /// 2501: subscription expired; resubscribe with a fresh token.
    pub const EXPIRED: Unsubscribe = Unsubscribe::fixed(2501, "subscription expired");
    /// 2502: state invalidated.
    pub const STATE_INVALIDATED: Unsubscribe = Unsubscribe::fixed(2502, "state invalidated");

    const fn fixed(code: u32, reason: &'static str) -> Self {
        Unsubscribe {
            code,
            reason: Cow::Borrowed(reason),
        }
    }

    /// A custom unsubscribe.
    pub fn new(code: u32, reason: impl Into<Cow<'static, str>>) -> Self {
        Unsubscribe {
            code,
            reason: reason.into(),
        }
    }

    /// Whether SDKs resubscribe after this.
    pub fn resubscribe(&self) -> bool {
        self.code >= 2500
    }

    /// The wire form of an `unsubscribe` push.
    pub fn to_proto(&self) -> proto::Unsubscribe {
        proto::Unsubscribe {
            code: self.code,
            reason: self.reason.to_string(),
        }
    }
}
