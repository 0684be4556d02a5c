//! The map broker: channels whose content is a keyed state plus a change stream.
//!
//! A map channel keeps, per key, the latest publication (its state entry) and, in the
//! modes that have a stream, every change as a publication with an offset in the
//! channel's stream (same offset + epoch model as history streams). A subscriber reads
//! the state page by page, catches up from the stream, then goes live. [`MemoryMapBroker`]
//! is the single-node implementation.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use super::{BoxFuture, BrokerError, BrokerEventHandler, ClientInfo, Publication, StreamPosition};

/// How a map channel keeps its data (`map.mode` in Centrifugo).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum MapMode {
    /// State with a key TTL, no stream: no positioning, no recovery.
    #[default]
    Ephemeral,
    /// State with a key TTL and a bounded stream: positioning and recovery.
    Recoverable,
    /// State without key expiry and a bounded stream: positioning and recovery.
    Persistent,
}

impl MapMode {
    /// The mode of a configuration name (`ephemeral`, `recoverable`, `persistent`).
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "ephemeral" => Some(MapMode::Ephemeral),
            "recoverable" => Some(MapMode::Recoverable),
            "persistent" => Some(MapMode::Persistent),
            _ => None,
        }
    }

    /// Whether changes are kept in a stream (positioning and recovery are possible).
    pub fn has_stream(self) -> bool {
        !matches!(self, MapMode::Ephemeral)
    }
}

/// Stream default size of the modes with a stream (upstream: 100).
pub(crate) const DEFAULT_MAP_STREAM_SIZE: usize = 100;
/// Stream default TTL of the modes with a stream (upstream: 1 minute).
pub(crate) const DEFAULT_MAP_STREAM_TTL: Duration = Duration::from_secs(60);
/// Page size when the client asks for none (upstream: 100).
pub(crate) const DEFAULT_MAP_PAGE_SIZE: usize = 100;
/// Largest page (upstream: 1000).
pub(crate) const DEFAULT_MAP_MAX_PAGE_SIZE: usize = 1000;
/// How long a subscriber may take between the pages of its catch-up (upstream: 5s).
pub(crate) const DEFAULT_MAP_CATCH_UP_TIMEOUT: Duration = Duration::from_secs(5);

/// Options of one map channel (a namespace's `map.*` in Centrifugo).
///
/// Zero values mean the defaults; [`MapChannelOptions::resolve`] fills them in and checks
/// the combinations upstream refuses.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct MapChannelOptions {
    /// How data is kept.
    pub mode: MapMode,
    /// Entries not updated for this long are removed (with a removal publication).
    /// Required in `Ephemeral` and `Recoverable`, zero in `Persistent`.
    pub key_ttl: Duration,
    /// Publications kept in the stream.
    pub stream_size: usize,
    /// How long publications stay in the stream.
    pub stream_ttl: Duration,
    /// How long the channel (epoch, top offset) outlives its last write; zero = forever.
    pub meta_ttl: Duration,
    /// Page size when the client asks for none.
    pub default_page_size: usize,
    /// Smallest page a client gets.
    pub min_page_size: usize,
    /// Largest page a client gets.
    pub max_page_size: usize,
    /// Most publications read from the stream when a subscriber goes live.
    pub live_transition_max_publication_limit: usize,
    /// How long a subscriber may take between catch-up requests; `None` = no limit.
    pub subscribe_catch_up_timeout: Option<Duration>,
}

impl MapChannelOptions {
    /// Options of a mode with its defaults still to be resolved.
    pub fn new(mode: MapMode, key_ttl: Duration) -> Self {
        MapChannelOptions {
            mode,
            key_ttl,
            subscribe_catch_up_timeout: Some(DEFAULT_MAP_CATCH_UP_TIMEOUT),
            ..Default::default()
        }
    }

    /// Fills in the defaults and checks the mode's rules (upstream
    /// `ResolveAndValidateMapChannelOptions`).
    pub fn resolve(mut self) -> Result<Self, String> {
        match self.mode {
            MapMode::Ephemeral => {
                if self.key_ttl.is_zero() {
                    return Err("ephemeral map mode requires key_ttl".into());
                }
                if self.stream_size > 0 || !self.stream_ttl.is_zero() {
                    return Err("ephemeral map mode has no stream".into());
                }
            }
            MapMode::Recoverable | MapMode::Persistent => {
                if self.mode == MapMode::Recoverable && self.key_ttl.is_zero() {
                    return Err("recoverable map mode requires key_ttl".into());
                }
                if self.mode == MapMode::Persistent && !self.key_ttl.is_zero() {
                    return Err("persistent map mode does not allow key_ttl".into());
                }
                if self.stream_size == 0 {
                    self.stream_size = DEFAULT_MAP_STREAM_SIZE;
                }
                if self.stream_ttl.is_zero() {
                    self.stream_ttl = DEFAULT_MAP_STREAM_TTL;
                }
                if self.mode == MapMode::Recoverable && self.meta_ttl.is_zero() {
                    self.meta_ttl = (self.stream_ttl * 10).max(self.key_ttl);
                }
                if !self.meta_ttl.is_zero()
                    && (self.meta_ttl < self.stream_ttl || self.meta_ttl < self.key_ttl)
                {
                    return Err("map meta_ttl must be at least stream_ttl and key_ttl".into());
                }
            }
        }
        if self.default_page_size == 0 {
            self.default_page_size = DEFAULT_MAP_PAGE_SIZE;
        }
        if self.min_page_size == 0 {
            self.min_page_size = DEFAULT_MAP_PAGE_SIZE.min(self.default_page_size);
        }
        if self.max_page_size == 0 {
            self.max_page_size = DEFAULT_MAP_MAX_PAGE_SIZE.max(self.default_page_size);
        }
        if self.min_page_size > self.default_page_size
            || self.default_page_size > self.max_page_size
        {
            return Err("map page sizes must satisfy min <= default <= max".into());
        }
        if self.live_transition_max_publication_limit == 0 {
            self.live_transition_max_publication_limit = self.max_page_size;
        }
        Ok(self)
    }

    /// The page size for a client's `limit` (≤ 0 = the default), clamped to the bounds.
    pub fn page_size(&self, limit: i32) -> usize {
        let asked = if limit <= 0 {
            self.default_page_size
        } else {
            limit as usize
        };
        asked.clamp(self.min_page_size.max(1), self.max_page_size.max(1))
    }
}

/// What to do when the key exists or not (`key_mode`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyMode {
    /// Insert or replace.
    #[default]
    Replace,
    /// Only when the key is absent (`if_new`).
    IfNew,
    /// Only when the key is present (`if_exists`).
    IfExists,
}

impl KeyMode {
    /// The mode of an API name (`""`, `if_new`, `if_exists`).
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "" => Some(KeyMode::Replace),
            "if_new" => Some(KeyMode::IfNew),
            "if_exists" => Some(KeyMode::IfExists),
            _ => None,
        }
    }
}

/// Why a map publish or remove changed nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SuppressReason {
    /// The idempotency key was used before; the first result is returned.
    Idempotency,
    /// The version is not above the key's last one.
    Version,
    /// `if_new` and the key exists.
    KeyExists,
    /// `if_exists` (or a remove) and the key is absent.
    KeyNotFound,
    /// The expected position did not match the key's.
    PositionMismatch,
}

impl SuppressReason {
    /// The name used by the server API (`suppress_reason`).
    pub fn as_str(self) -> &'static str {
        match self {
            SuppressReason::Idempotency => "idempotency",
            SuppressReason::Version => "version",
            SuppressReason::KeyExists => "key_exists",
            SuppressReason::KeyNotFound => "key_not_found",
            SuppressReason::PositionMismatch => "position_mismatch",
        }
    }
}

/// Options of [`MapBroker::publish`] and [`MapBroker::remove`].
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct MapPublishOptions {
    /// The channel's options (resolved).
    pub channel: MapChannelOptions,
    /// The publisher, kept with the entry and shown to subscribers.
    pub client_info: Option<ClientInfo>,
    /// Application tags.
    pub tags: HashMap<String, String>,
    /// Publishing twice with the same key returns the first result and changes once.
    pub idempotency_key: Option<String>,
    /// How long an idempotency key is remembered (default 5 minutes).
    pub idempotent_result_ttl: Option<Duration>,
    /// Drop the change if its version is not above the key's last one (0 = unversioned).
    pub version: u64,
    /// Versions are compared only within the same version epoch.
    pub version_epoch: String,
    /// Insert/replace rules.
    pub key_mode: KeyMode,
    /// With `IfNew` on an existing key: still extend the key's TTL.
    pub refresh_ttl_on_suppress: bool,
    /// Compare-and-set: the change applies only if the key's entry is at this position.
    pub expected_position: Option<StreamPosition>,
}

impl MapPublishOptions {
    /// Options for a channel.
    pub fn new(channel: MapChannelOptions) -> Self {
        MapPublishOptions {
            channel,
            ..Default::default()
        }
    }
}

/// What [`MapBroker::publish`] and [`MapBroker::remove`] return.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct MapPublishResult {
    /// Position of the change (offset 0 without a stream).
    pub position: StreamPosition,
    /// Why nothing changed, if so.
    pub suppressed: Option<SuppressReason>,
    /// With [`SuppressReason::PositionMismatch`]: the key's current entry.
    pub current: Option<Publication>,
}

/// Options of [`MapBroker::read_state`].
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct MapReadStateOptions {
    /// Continue after this cursor (`""` = from the start).
    pub cursor: String,
    /// Page size: 0 = position only, negative = all.
    pub limit: i32,
    /// Read this key only.
    pub key: Option<String>,
    /// The state must belong to this epoch (112 otherwise); entries changed after its
    /// offset are left out (the stream delivers them).
    pub revision: Option<StreamPosition>,
    /// Meta TTL to keep the channel alive for.
    pub meta_ttl: Duration,
}

/// What [`MapBroker::read_state`] returns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct MapStateResult {
    /// The stream top when the page was read.
    pub position: StreamPosition,
    /// Entries in key order, `key` set on each.
    pub entries: Vec<Publication>,
    /// The next page's cursor; empty on the last page.
    pub cursor: String,
}

/// Options of [`MapBroker::read_stream`].
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct MapReadStreamOptions {
    /// Start after this position (must be in the current epoch).
    pub since: Option<StreamPosition>,
    /// 0 = position only, negative = all, N = at most N.
    pub limit: i32,
    /// Newest first.
    pub reverse: bool,
    /// Meta TTL to keep the channel alive for.
    pub meta_ttl: Duration,
}

/// Keyed state + change stream engine, next to the [`Broker`](super::Broker).
pub trait MapBroker: Send + Sync + 'static {
    /// Starts delivering changes to `handler` (the node's). Called once by the node.
    fn run(&self, handler: Arc<dyn BrokerEventHandler>) -> BoxFuture<'_, Result<(), BrokerError>>;
    /// This node wants changes of `channel`.
    fn subscribe(&self, channel: &str) -> BoxFuture<'_, Result<(), BrokerError>>;
    /// This node no longer wants changes of `channel`.
    fn unsubscribe(&self, channel: &str) -> BoxFuture<'_, Result<(), BrokerError>>;
    /// Sets `key` to `data`.
    fn publish(
        &self,
        channel: &str,
        key: &str,
        data: Bytes,
        options: MapPublishOptions,
    ) -> BoxFuture<'_, Result<MapPublishResult, BrokerError>>;
    /// Removes `key` (suppressed with `KeyNotFound` when absent).
    fn remove(
        &self,
        channel: &str,
        key: &str,
        options: MapPublishOptions,
    ) -> BoxFuture<'_, Result<MapPublishResult, BrokerError>>;
    /// Reads a page of the state.
    fn read_state(
        &self,
        channel: &str,
        options: MapReadStateOptions,
    ) -> BoxFuture<'_, Result<MapStateResult, BrokerError>>;
    /// Reads the change stream (same result as history).
    fn read_stream(
        &self,
        channel: &str,
        options: MapReadStreamOptions,
    ) -> BoxFuture<'_, Result<super::HistoryResult, BrokerError>>;
    /// Number of keys.
    fn stats(&self, channel: &str) -> BoxFuture<'_, Result<usize, BrokerError>>;
    /// Forgets the channel: state, stream and position (the next write starts a new epoch).
    fn clear(&self, channel: &str) -> BoxFuture<'_, Result<(), BrokerError>>;
}
