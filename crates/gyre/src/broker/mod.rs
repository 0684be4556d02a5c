//! The Broker: publications, join/leave and history streams, shared by every node.
//!
//! A broker delivers what is published on any node to the [`BrokerEventHandler`] of every
//! node that subscribed to the channel, and keeps history streams with offset + epoch.
//! [`MemoryBroker`] is the single-node default; other crates bring Redis and NATS.

mod disk;
mod map;
mod map_memory;
mod memory;

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

pub use disk::DiskSync;
pub use map::{
    KeyMode, MapBroker, MapChannelOptions, MapMode, MapPublishOptions, MapPublishResult,
    MapReadStateOptions, MapReadStreamOptions, MapStateResult, SuppressReason,
};
pub use map_memory::MemoryMapBroker;
pub use memory::MemoryBroker;

/// A boxed future, the return type of the object-safe engine traits.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Who published or joined: user id, connection id and their info.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClientInfo {
    /// User id (`""` for anonymous).
    pub user: String,
    /// Connection id.
    pub client: String,
    /// Connection info (raw JSON or bytes), from the credentials.
    pub conn_info: Bytes,
    /// Channel info (raw JSON or bytes), from the subscription.
    pub chan_info: Bytes,
}

impl ClientInfo {
    /// Info for a user's connection.
    pub fn new(user: impl Into<String>, client: impl Into<String>) -> Self {
        ClientInfo {
            user: user.into(),
            client: client.into(),
            ..Default::default()
        }
    }
}

/// A message in a channel.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Publication {
    /// Position in the channel's stream (0 when the channel keeps no history).
    pub offset: u64,
    /// Payload.
    pub data: Bytes,
    /// Publisher, when a client published it.
    pub info: Option<ClientInfo>,
    /// Application tags.
    pub tags: HashMap<String, String>,
    /// Unix time in milliseconds when the broker accepted it.
    pub time: i64,
    /// Map channels: the key this publication sets or removes.
    pub key: String,
    /// Map channels: the key was removed (`data` is empty).
    pub removed: bool,
}

impl Publication {
    /// A publication carrying `data`.
    pub fn new(data: impl Into<Bytes>) -> Self {
        Publication {
            data: data.into(),
            ..Default::default()
        }
    }
}

/// Where a stream is: the offset of its newest publication and the stream's epoch.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct StreamPosition {
    /// Offset of the newest publication (0 for an empty stream).
    pub offset: u64,
    /// Identifies this incarnation of the stream; a lost and recreated stream gets a new one.
    pub epoch: String,
}

impl StreamPosition {
    /// A position.
    pub fn new(offset: u64, epoch: impl Into<String>) -> Self {
        StreamPosition {
            offset,
            epoch: epoch.into(),
        }
    }
}

/// Options of [`Broker::publish`].
///
/// ```
/// use std::time::Duration;
/// use gyre::PublishOptions;
/// let opts = PublishOptions::new().history(100, Duration::from_secs(60));
/// assert_eq!(opts.history_size, 100);
/// ```
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct PublishOptions {
    /// Keep at most this many publications in the stream (0 = no history).
    pub history_size: usize,
    /// Drop publications older than this (zero = no history).
    pub history_ttl: Duration,
    /// How long the stream's meta (epoch, top offset) outlives its last publication.
    pub history_meta_ttl: Option<Duration>,
    /// The publisher, attached to the publication.
    pub client_info: Option<ClientInfo>,
    /// Application tags.
    pub tags: HashMap<String, String>,
    /// Publishing twice with the same key returns the first result and publishes once.
    pub idempotency_key: Option<String>,
    /// How long an idempotency key is remembered (default 5 minutes).
    pub idempotent_result_ttl: Option<Duration>,
    /// Ask the broker for the previous publication so deltas can be computed.
    pub use_delta: bool,
    /// Drop the publication if its version is not above the last one (0 = unversioned).
    pub version: u64,
    /// Versions are compared only within the same version epoch.
    pub version_epoch: String,
}

impl PublishOptions {
    /// Default options: no history.
    pub fn new() -> Self {
        Self::default()
    }

    /// Keep history with these bounds (both must be non-zero).
    pub fn history(mut self, size: usize, ttl: Duration) -> Self {
        self.history_size = size;
        self.history_ttl = ttl;
        self
    }

    /// Attach the publisher.
    pub fn client_info(mut self, info: ClientInfo) -> Self {
        self.client_info = Some(info);
        self
    }

    /// Attach tags.
    pub fn tags(mut self, tags: HashMap<String, String>) -> Self {
        self.tags = tags;
        self
    }

    /// Make the publish idempotent.
    pub fn idempotency_key(mut self, key: impl Into<String>) -> Self {
        self.idempotency_key = Some(key.into());
        self
    }

    /// Keep stream meta for this long.
    pub fn history_meta_ttl(mut self, ttl: Duration) -> Self {
        self.history_meta_ttl = Some(ttl);
        self
    }

    /// Request delta compression support.
    pub fn use_delta(mut self, on: bool) -> Self {
        self.use_delta = on;
        self
    }

    /// Versioned publish.
    pub fn version(mut self, version: u64, epoch: impl Into<String>) -> Self {
        self.version = version;
        self.version_epoch = epoch.into();
        self
    }

    /// Whether these options keep history.
    pub fn keeps_history(&self) -> bool {
        self.history_size > 0 && !self.history_ttl.is_zero()
    }
}

/// Which publications of a stream to read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct HistoryFilter {
    /// Start after this position (before it when `reverse`); `None` = from the oldest
    /// (newest when `reverse`).
    pub since: Option<StreamPosition>,
    /// 0 = no publications, only the position; -1 = all; N = at most N.
    pub limit: i32,
    /// Newest first.
    pub reverse: bool,
}

/// Options of [`Broker::history`].
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct HistoryOptions {
    /// What to read.
    pub filter: HistoryFilter,
    /// Stream meta TTL to (re)apply.
    pub meta_ttl: Option<Duration>,
}

impl HistoryOptions {
    /// Read with `limit` (0 = position only, -1 = all).
    pub fn new(limit: i32) -> Self {
        HistoryOptions {
            filter: HistoryFilter {
                limit,
                ..Default::default()
            },
            meta_ttl: None,
        }
    }

    /// Start after `since`.
    pub fn since(mut self, since: StreamPosition) -> Self {
        self.filter.since = Some(since);
        self
    }

    /// Newest first.
    pub fn reverse(mut self, reverse: bool) -> Self {
        self.filter.reverse = reverse;
        self
    }

    /// Keep the stream's meta (epoch, top offset) for this long.
    pub fn meta_ttl(mut self, ttl: Duration) -> Self {
        self.meta_ttl = Some(ttl);
        self
    }
}

/// What [`Broker::history`] returns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HistoryResult {
    /// The stream's current top.
    pub position: StreamPosition,
    /// The publications asked for, in the requested order.
    pub publications: Vec<Publication>,
}

/// What [`Broker::publish`] returns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PublishResult {
    /// Position of the new publication (offset 0, empty epoch without history).
    pub position: StreamPosition,
    /// True when an idempotency key or a version made the broker skip this publish.
    pub suppressed: bool,
}

/// Failures of a broker.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BrokerError {
    /// `since.epoch` differs from the stream's epoch, or a reverse read from offset 0.
    #[error("unrecoverable position")]
    UnrecoverablePosition,
    /// A bad argument.
    #[error("bad request: {0}")]
    BadRequest(String),
    /// The engine cannot be reached or failed; [`source`](std::error::Error::source) is
    /// the engine's own error when there is one.
    #[error(transparent)]
    Unavailable(#[from] EngineError),
    /// The engine does not support this operation (e.g. history on a PUB/SUB-only
    /// broker); clients get 108.
    #[error("not available: {0}")]
    NotAvailable(String),
    /// The broker was shut down.
    #[error("broker closed")]
    Closed,
}

/// An engine (Redis, NATS, …) could not be reached or failed, in a [`BrokerError`] or a
/// [`PresenceError`](crate::PresenceError). Displays as `engine unavailable: <message>`,
/// the message ending with the engine's own error, which stays reachable as the
/// [`source`](std::error::Error::source) (so a caller can downcast it, e.g. to an I/O
/// error).
///
/// ```
/// use std::error::Error as _;
/// use std::io;
///
/// use gyre::{BrokerError, EngineError};
///
/// let refused = io::Error::new(io::ErrorKind::ConnectionRefused, "refused");
/// let err = BrokerError::from(EngineError::with_context("redis:6379", refused));
/// assert_eq!(err.to_string(), "engine unavailable: redis:6379: refused");
/// let source = err.source().and_then(|s| s.downcast_ref::<io::Error>());
/// assert_eq!(source.map(io::Error::kind), Some(io::ErrorKind::ConnectionRefused));
/// ```
#[derive(Debug)]
pub struct EngineError {
    context: Option<String>,
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl EngineError {
    /// A failure that has no error of its own: a timeout, an unexpected reply, a stopped
    /// engine.
    pub fn msg(message: impl Into<String>) -> Self {
        Self {
            context: Some(message.into()),
            source: None,
        }
    }

    /// The engine's own error, displayed as it is.
    pub fn new(source: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self {
            context: None,
            source: Some(source.into()),
        }
    }

    /// The engine's own error after what was being done (a shard name, an address):
    /// displayed as `<context>: <source>`.
    pub fn with_context(
        context: impl Into<String>,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        Self {
            context: Some(context.into()),
            source: Some(source.into()),
        }
    }
}

// The message repeats the source's text: logs and API replies show the message alone, and
// it read this way before the source was kept.
impl std::fmt::Display for EngineError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("engine unavailable: ")?;
        match (&self.context, &self.source) {
            (Some(context), Some(source)) => write!(f, "{context}: {source}"),
            (Some(context), None) => f.write_str(context),
            (None, Some(source)) => write!(f, "{source}"),
            (None, None) => Ok(()),
        }
    }
}

impl std::error::Error for EngineError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

/// Receives what a broker delivers. Implemented by the node; brokers call it for every
/// channel the node subscribed to.
pub trait BrokerEventHandler: Send + Sync + 'static {
    /// A publication arrived. `prev` is the previous publication of the stream when the
    /// publisher asked for deltas. Calls for one channel must be made in offset order.
    fn handle_publication(
        &self,
        channel: &str,
        publication: Publication,
        position: StreamPosition,
        use_delta: bool,
        prev: Option<Publication>,
    );
    /// A client joined the channel.
    fn handle_join(&self, channel: &str, info: ClientInfo);
    /// A client left the channel.
    fn handle_leave(&self, channel: &str, info: ClientInfo);
    /// The broker lost its subscription stream and re-established it (e.g. Redis
    /// restarted): publications may have been missed meanwhile. The node then checks
    /// every positioned subscription against its stream at once.
    fn handle_resubscribed(&self) {}
}

/// The pub/sub + history engine behind a [`Node`](crate::Node).
pub trait Broker: Send + Sync + 'static {
    /// Starts delivering events to `handler`. Called once by the node before serving.
    fn run(&self, handler: Arc<dyn BrokerEventHandler>) -> BoxFuture<'_, Result<(), BrokerError>>;
    /// This node wants events of `channel`.
    fn subscribe(&self, channel: &str) -> BoxFuture<'_, Result<(), BrokerError>>;
    /// This node no longer wants events of `channel`.
    fn unsubscribe(&self, channel: &str) -> BoxFuture<'_, Result<(), BrokerError>>;
    /// Publishes (and appends to history when the options say so).
    fn publish(
        &self,
        channel: &str,
        data: Bytes,
        options: PublishOptions,
    ) -> BoxFuture<'_, Result<PublishResult, BrokerError>>;
    /// Publishes a join event (at most once, never stored).
    fn publish_join(
        &self,
        channel: &str,
        info: ClientInfo,
    ) -> BoxFuture<'_, Result<(), BrokerError>>;
    /// Publishes a leave event (at most once, never stored).
    fn publish_leave(
        &self,
        channel: &str,
        info: ClientInfo,
    ) -> BoxFuture<'_, Result<(), BrokerError>>;
    /// Reads the stream. Creates its meta (new epoch, offset 0) when it does not exist.
    fn history(
        &self,
        channel: &str,
        options: HistoryOptions,
    ) -> BoxFuture<'_, Result<HistoryResult, BrokerError>>;
    /// Drops the stream's publications (the position stays).
    fn remove_history(&self, channel: &str) -> BoxFuture<'_, Result<(), BrokerError>>;
}

#[cfg(test)]
mod tests {
    use std::error::Error as _;
    use std::io;

    use super::*;
    use crate::PresenceError;

    #[test]
    fn engine_failures_keep_the_engine_error_as_source() {
        let refused = io::Error::new(io::ErrorKind::ConnectionRefused, "connection refused");
        let err = BrokerError::from(EngineError::with_context("127.0.0.1:6379", refused));
        assert!(matches!(err, BrokerError::Unavailable(_)), "{err:?}");
        assert_eq!(
            err.to_string(),
            "engine unavailable: 127.0.0.1:6379: connection refused"
        );
        let source = err
            .source()
            .and_then(|s| s.downcast_ref::<io::Error>())
            .expect("the I/O error is the source");
        assert_eq!(source.kind(), io::ErrorKind::ConnectionRefused);

        let err = PresenceError::from(EngineError::new(io::Error::other("reset by peer")));
        assert_eq!(err.to_string(), "engine unavailable: reset by peer");
        let source = err.source().expect("the I/O error is the source");
        assert!(source.downcast_ref::<io::Error>().is_some(), "{source:?}");
    }

    #[test]
    fn engine_failures_without_an_error_have_no_source() {
        let err = BrokerError::from(EngineError::msg("memory broker is not running"));
        assert_eq!(
            err.to_string(),
            "engine unavailable: memory broker is not running"
        );
        assert!(err.source().is_none());
        let err = PresenceError::from(EngineError::msg("unexpected Redis reply: presence info"));
        assert_eq!(
            err.to_string(),
            "engine unavailable: unexpected Redis reply: presence info"
        );
        assert!(err.source().is_none());
    }
}
