//! Events passed to handlers and the replies handlers give back.
//!
//! The order in which handlers run for one connection is documented on
//! [`Node::on_connecting`](crate::Node::on_connecting) and [`Client`](crate::Client).

use std::collections::HashMap;
use std::time::Duration;

use bytes::Bytes;

use crate::broker::{
    ClientInfo, MapChannelOptions, MapPublishOptions, PublishOptions, StreamPosition,
};
use crate::{Disconnect, Error};

/// Why a handler refused: an error reply for the command, or closing the connection.
///
/// `?` converts both [`Error`] and [`Disconnect`] into it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HandlerError {
    /// Answer the command with this error.
    Error(Error),
    /// Close the connection with this disconnect.
    Disconnect(Disconnect),
}

impl From<Error> for HandlerError {
    fn from(e: Error) -> Self {
        HandlerError::Error(e)
    }
}

impl From<Disconnect> for HandlerError {
    fn from(d: Disconnect) -> Self {
        HandlerError::Disconnect(d)
    }
}

/// Who a connection is: decided by [`Node::on_connecting`](crate::Node::on_connecting).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Credentials {
    /// User id; `""` is an anonymous user.
    pub user: String,
    /// Unix seconds when the credentials expire (0 = never).
    pub expire_at: i64,
    /// Connection info shown in presence, join/leave and client publications (raw JSON on
    /// JSON connections).
    pub info: Bytes,
}

impl Credentials {
    /// Credentials of `user` that never expire.
    pub fn new(user: impl Into<String>) -> Self {
        Credentials {
            user: user.into(),
            ..Default::default()
        }
    }

    /// Expire at this Unix time (seconds).
    pub fn expire_at(mut self, unix_seconds: i64) -> Self {
        self.expire_at = unix_seconds;
        self
    }

    /// Attach connection info.
    pub fn info(mut self, info: impl Into<Bytes>) -> Self {
        self.info = info.into();
        self
    }
}

/// A connection asks to be accepted.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ConnectEvent {
    /// The new connection's id.
    pub client_id: String,
    /// Transport name (`"websocket"`, …).
    pub transport: &'static str,
    /// The connection token (opaque to the library).
    pub token: String,
    /// Custom connect data.
    pub data: Bytes,
    /// SDK name.
    pub name: String,
    /// SDK version.
    pub version: String,
    /// Emulated headers sent by the SDK.
    pub headers: HashMap<String, String>,
    /// Server-side channels the client asks to resume (keys of `connect.subs`).
    pub channels: Vec<String>,
    /// Headers of the HTTP request that opened the connection (empty for transports
    /// without one).
    pub request_headers: http::HeaderMap,
    /// The connection speaks Protobuf (else JSON).
    pub protobuf: bool,
}

/// How to accept a connection.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct ConnectReply {
    /// Who connects. Required unless set by a transport (no credentials → 3501).
    pub credentials: Option<Credentials>,
    /// Custom data returned to the client in the connect result.
    pub data: Bytes,
    /// Server-side subscriptions made on connect.
    pub subscriptions: HashMap<String, SubscribeOptions>,
    /// The client refreshes its own credentials with a `refresh` command (and is told
    /// `expires`/`ttl`). Otherwise the server calls the client's `on_refresh` handler.
    pub client_side_refresh: bool,
}

impl ConnectReply {
    /// Accept with these credentials.
    pub fn new(credentials: Credentials) -> Self {
        ConnectReply {
            credentials: Some(credentials),
            ..Default::default()
        }
    }

    /// Add a server-side subscription.
    pub fn subscribe(mut self, channel: impl Into<String>, options: SubscribeOptions) -> Self {
        self.subscriptions.insert(channel.into(), options);
        self
    }

    /// Return data to the client.
    pub fn data(mut self, data: impl Into<Bytes>) -> Self {
        self.data = data.into();
        self
    }

    /// See [`ConnectReply::client_side_refresh`].
    pub fn client_side_refresh(mut self, on: bool) -> Self {
        self.client_side_refresh = on;
        self
    }
}

/// Options of a subscription (client-side or server-side).
///
/// ```
/// use std::time::Duration;
/// use gyre::SubscribeOptions;
/// let opts = SubscribeOptions::new()
///     .history(100, Duration::from_secs(300))
///     .recovery(true)
///     .presence(true)
///     .join_leave(true);
/// assert!(opts.enable_recovery);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SubscribeOptions {
    /// Unix seconds when the subscription expires (0 = never).
    pub expire_at: i64,
    /// Channel info attached to this subscriber (`chan_info`).
    pub channel_info: Bytes,
    /// Register the subscriber in the channel's presence.
    pub emit_presence: bool,
    /// Publish join/leave events for this subscriber.
    pub emit_join_leave: bool,
    /// Deliver join/leave events of the channel to this subscriber.
    pub push_join_leave: bool,
    /// Track the stream position and detect loss (insufficient state).
    pub enable_positioning: bool,
    /// Let the subscriber recover missed publications from history.
    pub enable_recovery: bool,
    /// Custom data returned in the subscribe result.
    pub data: Bytes,
    /// History bounds used to answer positioning/recovery (both non-zero = history on).
    pub history_size: usize,
    /// See `history_size`.
    pub history_ttl: Duration,
    /// Server-side subscriptions: resume from here (as if the client asked to recover).
    pub recover_since: Option<StreamPosition>,
    /// The subscription refreshes with `sub_refresh` (client is told `expires`/`ttl`).
    pub client_side_refresh: bool,
    /// Delta types a client may ask for in its subscribe request (`delta`). Deltas go
    /// only to positioned subscriptions, and only for publications made with
    /// [`PublishOptions::use_delta`](crate::PublishOptions::use_delta) in a channel with
    /// history.
    pub allowed_delta_types: Vec<DeltaType>,
    /// Accept a tags filter (`tf`) in the client's subscribe request: the subscriber then
    /// receives only publications whose tags match it. Without this, a request carrying a
    /// filter is refused with error 107 (bad request), as upstream's `AllowTagsFilter`.
    pub allow_tags_filter: bool,
    /// How a recovering subscriber catches up (see [`RecoveryMode`]).
    pub recovery_mode: RecoveryMode,
    /// With [`RecoveryMode::Cache`] and recovery enabled: every subscription recovers,
    /// asked or not, so even a first subscribe starts with the latest publication
    /// (upstream's `auto_cache_recover`).
    pub auto_cache_recover: bool,
    /// Map subscriptions: the channel's map options (resolved). A map subscribe request
    /// accepted without them is refused with 107, as a type mismatch.
    pub map: Option<MapChannelOptions>,
    /// A map channel listing the subscribed connections (key: client id, with info); the
    /// entry is removed when the subscription ends.
    pub map_clients_presence: Option<MapPresence>,
    /// A map channel listing the subscribed users (key: user id, anonymous users left
    /// out); entries expire by the channel's key TTL.
    pub map_users_presence: Option<MapPresence>,
    /// Map subscriptions: when the subscription ends (unsubscribe or disconnect), the
    /// key named by the client's id is removed from the channel, with a removal event
    /// (upstream's `MapRemoveClientOnUnsubscribe`, for per-client state like cursors).
    pub map_remove_client_on_unsubscribe: bool,
}

/// How a recovering subscription catches up with its channel.
///
/// ```
/// use gyre::RecoveryMode;
/// assert_eq!(RecoveryMode::default(), RecoveryMode::Stream);
/// assert_eq!(RecoveryMode::parse("cache"), Some(RecoveryMode::Cache));
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RecoveryMode {
    /// Every publication missed since the client's position (all or nothing).
    #[default]
    Stream,
    /// Only the channel's latest publication, for channels whose publications each carry
    /// the full state (upstream's `RecoveryModeCache`): the client is always told
    /// `recovered: true` when the channel has one, and receives it unless it already holds
    /// it.
    Cache,
}

impl RecoveryMode {
    /// The mode of a configuration name (`"stream"` or `""`, `"cache"`).
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "" | "stream" => Some(RecoveryMode::Stream),
            "cache" => Some(RecoveryMode::Cache),
            _ => None,
        }
    }
}

/// A map channel fed with the subscribers of another channel (`map_clients`/`map_users`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct MapPresence {
    /// The presence channel.
    pub channel: String,
    /// Its map options (resolved).
    pub options: MapChannelOptions,
}

impl MapPresence {
    /// A presence channel with its options.
    pub fn new(channel: impl Into<String>, options: MapChannelOptions) -> Self {
        MapPresence {
            channel: channel.into(),
            options,
        }
    }
}

/// What a client subscribes to (`SubscribeRequest.type`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SubscriptionType {
    /// A stream of publications (0).
    #[default]
    Stream,
    /// A keyed state with changes (1).
    Map,
    /// A map of the clients of another channel (2).
    MapClients,
    /// A map of the users of another channel (3).
    MapUsers,
    /// Shared poll (4).
    SharedPoll,
}

impl SubscriptionType {
    /// The type of a protocol number.
    pub fn from_code(code: i32) -> Option<Self> {
        match code {
            0 => Some(SubscriptionType::Stream),
            1 => Some(SubscriptionType::Map),
            2 => Some(SubscriptionType::MapClients),
            3 => Some(SubscriptionType::MapUsers),
            4 => Some(SubscriptionType::SharedPoll),
            _ => None,
        }
    }

    /// The configuration name (`stream`, `map`, `map_clients`, `map_users`, `shared_poll`).
    pub fn as_str(self) -> &'static str {
        match self {
            SubscriptionType::Stream => "stream",
            SubscriptionType::Map => "map",
            SubscriptionType::MapClients => "map_clients",
            SubscriptionType::MapUsers => "map_users",
            SubscriptionType::SharedPoll => "shared_poll",
        }
    }
}

/// A delta encoding of publications a subscriber can negotiate.
///
/// ```
/// use gyre::DeltaType;
/// assert_eq!(DeltaType::parse("fossil"), Some(DeltaType::Fossil));
/// assert_eq!(DeltaType::Fossil.as_str(), "fossil");
/// assert_eq!(DeltaType::parse("xdelta"), None);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DeltaType {
    /// Fossil delta (`"fossil"`), see [`gyre_protocol::fossil`].
    Fossil,
}

impl DeltaType {
    /// The name used in subscribe requests and configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            DeltaType::Fossil => "fossil",
        }
    }

    /// The delta type of a name, `None` for unknown names.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "fossil" => Some(DeltaType::Fossil),
            _ => None,
        }
    }
}

impl SubscribeOptions {
    /// No extras: publications only.
    pub fn new() -> Self {
        Self::default()
    }

    /// Channel history bounds, used for recovery and positioning.
    pub fn history(mut self, size: usize, ttl: Duration) -> Self {
        self.history_size = size;
        self.history_ttl = ttl;
        self
    }

    /// Allow recovery (implies positioning).
    pub fn recovery(mut self, on: bool) -> Self {
        self.enable_recovery = on;
        self
    }

    /// Allow positioning.
    pub fn positioning(mut self, on: bool) -> Self {
        self.enable_positioning = on;
        self
    }

    /// Register presence.
    pub fn presence(mut self, on: bool) -> Self {
        self.emit_presence = on;
        self
    }

    /// Emit join/leave events and push them to this subscriber.
    pub fn join_leave(mut self, on: bool) -> Self {
        self.emit_join_leave = on;
        self.push_join_leave = on;
        self
    }

    /// Channel info.
    pub fn channel_info(mut self, info: impl Into<Bytes>) -> Self {
        self.channel_info = info.into();
        self
    }

    /// Data returned in the subscribe result.
    pub fn data(mut self, data: impl Into<Bytes>) -> Self {
        self.data = data.into();
        self
    }

    /// Let subscribers ask for these delta types.
    pub fn allowed_delta_types(mut self, types: impl IntoIterator<Item = DeltaType>) -> Self {
        self.allowed_delta_types = types.into_iter().collect();
        self
    }

    /// Expire at this Unix time (seconds).
    pub fn expire_at(mut self, unix_seconds: i64) -> Self {
        self.expire_at = unix_seconds;
        self
    }

    /// Accept client tags filters.
    pub fn allow_tags_filter(mut self, on: bool) -> Self {
        self.allow_tags_filter = on;
        self
    }

    /// Recover in this mode.
    pub fn recovery_mode(mut self, mode: RecoveryMode) -> Self {
        self.recovery_mode = mode;
        self
    }
}

/// A client asks to subscribe.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SubscribeEvent {
    /// Channel.
    pub channel: String,
    /// Subscription token (opaque to the library).
    pub token: String,
    /// Custom subscribe data.
    pub data: Bytes,
    /// The client asked for positioning.
    pub positioned: bool,
    /// The client asked for recovery.
    pub recoverable: bool,
    /// The client asked for join/leave pushes.
    pub join_leave: bool,
    /// What the client subscribes to.
    pub subscription_type: SubscriptionType,
}

/// How to accept a subscription.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct SubscribeReply {
    /// Subscription options.
    pub options: SubscribeOptions,
}

impl SubscribeReply {
    /// Accept with these options.
    pub fn new(options: SubscribeOptions) -> Self {
        SubscribeReply { options }
    }
}

/// One key of a track request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct TrackItem {
    /// The key.
    pub key: String,
    /// The version the client holds (0 = none).
    pub version: u64,
}

/// One signed batch of a track request (`TrackBatch`).
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct TrackBatch {
    /// The signature over the batch's keys (opaque to the library).
    pub signature: String,
    /// The keys, in the order the client sent them.
    pub items: Vec<TrackItem>,
}

/// A client tracks keys of a shared-poll channel (`sub_refresh` with `type` 1); the
/// handler checks every batch's signature (upstream `OnTrack`).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct TrackEvent {
    /// Channel.
    pub channel: String,
    /// The signed batches.
    pub batches: Vec<TrackBatch>,
}

/// How to accept one batch of a track request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct TrackBatchReply {
    /// Unix seconds when the batch's signature expires (0 = never): its keys are
    /// dropped after this plus the channel's `track_expired_extra_delay`.
    pub expire_at: i64,
}

impl TrackBatchReply {
    /// A batch valid until `expire_at` (0 = never).
    pub fn new(expire_at: i64) -> Self {
        TrackBatchReply { expire_at }
    }
}

/// How to accept a track request: one reply per batch, or none for "no expiry".
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct TrackReply {
    /// Per batch, in the request's order (empty: no batch expires).
    pub batches: Vec<TrackBatchReply>,
}

impl TrackReply {
    /// Accept with these per-batch replies.
    pub fn new(batches: Vec<TrackBatchReply>) -> Self {
        TrackReply { batches }
    }
}

/// A client sets or removes a key of a map channel (`publish` with `type` 1).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct MapPublishEvent {
    /// Channel.
    pub channel: String,
    /// The key the client named (may be empty: the handler may choose one).
    pub key: String,
    /// Payload (empty for a removal).
    pub data: Bytes,
    /// A removal of `key`.
    pub removed: bool,
    /// The publisher.
    pub client_info: ClientInfo,
    /// The client is subscribed to the channel.
    pub subscribed: bool,
}

/// How to accept a client's map change.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct MapPublishReply {
    /// The key to change (an empty key is refused with 107).
    pub key: String,
    /// Options of the change, with the channel's map options.
    pub options: MapPublishOptions,
    /// Replace the payload.
    pub data: Option<Bytes>,
}

impl MapPublishReply {
    /// Accept the change of `key` with these options.
    pub fn new(key: impl Into<String>, options: MapPublishOptions) -> Self {
        MapPublishReply {
            key: key.into(),
            options,
            data: None,
        }
    }
}

/// A client publishes into a channel.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct PublishEvent {
    /// Channel.
    pub channel: String,
    /// Payload.
    pub data: Bytes,
    /// The publisher.
    pub client_info: ClientInfo,
}

/// How to accept a client publication.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct PublishReply {
    /// Broker options (history etc.). The publisher's info is attached automatically.
    pub options: PublishOptions,
    /// Publish this instead of the client's data.
    pub data: Option<Bytes>,
}

impl PublishReply {
    /// Accept with these options.
    pub fn new(options: PublishOptions) -> Self {
        PublishReply {
            options,
            data: None,
        }
    }
}

/// A client calls a method.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RpcEvent {
    /// Method name.
    pub method: String,
    /// Payload.
    pub data: Bytes,
}

/// The result of an RPC.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct RpcReply {
    /// Returned to the client.
    pub data: Bytes,
}

impl RpcReply {
    /// Reply with `data`.
    pub fn new(data: impl Into<Bytes>) -> Self {
        RpcReply { data: data.into() }
    }
}

/// An asynchronous message from the client (`send`).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct MessageEvent {
    /// Payload.
    pub data: Bytes,
}

/// A client asks for presence or presence stats of a channel.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct PresenceEvent {
    /// Channel.
    pub channel: String,
}

/// A client asks for a channel's history.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct HistoryEvent {
    /// Channel.
    pub channel: String,
    /// Requested limit (already capped).
    pub limit: i32,
    /// Requested start.
    pub since: Option<StreamPosition>,
    /// Newest first.
    pub reverse: bool,
}

/// Credentials are about to expire (or the client sent a `refresh` with a new token).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RefreshEvent {
    /// The client sent this token (client-side refresh); empty for server-side refresh.
    pub token: String,
    /// Client-side refresh (`refresh` command) or server-side (timer).
    pub client_side: bool,
}

/// The outcome of a refresh.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct RefreshReply {
    /// The credentials expired: disconnect with 3005.
    pub expired: bool,
    /// New expiry (Unix seconds, 0 = never).
    pub expire_at: i64,
    /// New connection info, when set.
    pub info: Option<Bytes>,
}

impl RefreshReply {
    /// Extend until `expire_at` (Unix seconds; 0 = never expire).
    pub fn new(expire_at: i64) -> Self {
        RefreshReply {
            expire_at,
            ..Default::default()
        }
    }

    /// Tell the client its credentials expired.
    pub fn expired() -> Self {
        RefreshReply {
            expired: true,
            ..Default::default()
        }
    }
}

/// A subscription is about to expire or the client sent `sub_refresh`.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SubRefreshEvent {
    /// Channel.
    pub channel: String,
    /// New subscription token (client-side refresh).
    pub token: String,
    /// Client-side refresh or server-side (timer).
    pub client_side: bool,
}

/// The outcome of a subscription refresh.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct SubRefreshReply {
    /// The subscription expired.
    pub expired: bool,
    /// New expiry (Unix seconds, 0 = never).
    pub expire_at: i64,
    /// New channel info of the subscriber (server-side refresh); `None` keeps the old.
    pub info: Option<Bytes>,
}

impl SubRefreshReply {
    /// Extend until `expire_at` (Unix seconds; 0 = never expire).
    pub fn new(expire_at: i64) -> Self {
        SubRefreshReply {
            expired: false,
            expire_at,
            info: None,
        }
    }
}

/// A subscription ended.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct UnsubscribeEvent {
    /// Channel.
    pub channel: String,
    /// Why (0 = the client asked, 1 = the client disconnected, 2000+ = server).
    pub code: u32,
    /// It was a server-side subscription.
    pub server_side: bool,
}

/// A connection ended.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct DisconnectEvent {
    /// Why.
    pub disconnect: Disconnect,
}
