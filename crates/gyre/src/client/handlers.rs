//! The application's handlers of one connection, or of many at once.

use std::future::Future;
use std::sync::Arc;

use parking_lot::RwLock;

use super::handler::{Handler, Observer, shared_handler};
use crate::Client;
use crate::events::{
    ConnectEvent, ConnectReply, DisconnectEvent, HandlerError, HistoryEvent, MapPublishEvent,
    MapPublishReply, MessageEvent, PresenceEvent, PublishEvent, PublishReply, RefreshEvent,
    RefreshReply, RpcEvent, RpcReply, SubRefreshEvent, SubRefreshReply, SubscribeEvent,
    SubscribeReply, TrackEvent, TrackReply, UnsubscribeEvent,
};

/// A set of handlers that many connections share.
///
/// [`Client::on_subscribe`] and its siblings register closures for one connection, each
/// closure an allocation of its own that lives as long as the connection. A server with
/// many idle connections and the same logic for all of them can build the set once and
/// install it with [`Client::set_handlers`]: every connection then holds one pointer, and
/// the handlers get the connection they serve as their first argument.
///
/// Registering a per-connection handler on a client that uses a shared set gives that
/// client its own copy of the set first; the other clients are not affected.
///
/// ```
/// use std::sync::Arc;
/// use gyre::{ClientHandlers, Node, SubscribeOptions, SubscribeReply};
///
/// let node = Node::builder().build();
/// let handlers = Arc::new(ClientHandlers::new().on_subscribe(|client, event| async move {
///     tracing::debug!(client = client.id(), channel = %event.channel, "subscribing");
///     Ok(SubscribeReply::new(SubscribeOptions::new()))
/// }));
/// node.on_connect(move |client| client.set_handlers(handlers.clone()));
/// ```
#[derive(Clone, Default)]
pub struct ClientHandlers {
    pub(crate) subscribe: Option<Handler<SubscribeEvent, SubscribeReply>>,
    pub(crate) publish: Option<Handler<PublishEvent, PublishReply>>,
    pub(crate) map_publish: Option<Handler<MapPublishEvent, MapPublishReply>>,
    pub(crate) rpc: Option<Handler<RpcEvent, RpcReply>>,
    pub(crate) message: Option<Handler<MessageEvent, ()>>,
    pub(crate) presence: Option<Handler<PresenceEvent, ()>>,
    pub(crate) presence_stats: Option<Handler<PresenceEvent, ()>>,
    pub(crate) history: Option<Handler<HistoryEvent, ()>>,
    pub(crate) refresh: Option<Handler<RefreshEvent, RefreshReply>>,
    pub(crate) sub_refresh: Option<Handler<SubRefreshEvent, SubRefreshReply>>,
    pub(crate) track: Option<Handler<TrackEvent, TrackReply>>,
    pub(crate) unsubscribe: Option<Observer<UnsubscribeEvent>>,
    pub(crate) disconnect: Option<Observer<DisconnectEvent>>,
}

impl std::fmt::Debug for ClientHandlers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientHandlers")
            .field("subscribe", &self.subscribe.is_some())
            .field("publish", &self.publish.is_some())
            .field("map_publish", &self.map_publish.is_some())
            .field("rpc", &self.rpc.is_some())
            .field("message", &self.message.is_some())
            .field("presence", &self.presence.is_some())
            .field("presence_stats", &self.presence_stats.is_some())
            .field("history", &self.history.is_some())
            .field("refresh", &self.refresh.is_some())
            .field("sub_refresh", &self.sub_refresh.is_some())
            .field("track", &self.track.is_some())
            .field("unsubscribe", &self.unsubscribe.is_some())
            .field("disconnect", &self.disconnect.is_some())
            .finish()
    }
}

macro_rules! shared {
    ($(#[$doc:meta])* $fn_name:ident, $field:ident, $event:ty, $reply:ty) => {
        $(#[$doc])*
        #[must_use]
        pub fn $fn_name<F, Fut>(mut self, f: F) -> Self
        where
            F: Fn(Client, $event) -> Fut + Send + Sync + 'static,
            Fut: Future<Output = Result<$reply, HandlerError>> + Send + 'static,
        {
            self.$field = Some(shared_handler(f));
            self
        }
    };
}

impl ClientHandlers {
    /// An empty set: every command answers as without handlers (see [`Client`]).
    pub fn new() -> Self {
        Self::default()
    }

    shared!(
        /// Decides `subscribe` commands, as [`Client::on_subscribe`].
        on_subscribe, subscribe, SubscribeEvent, SubscribeReply);
    shared!(
        /// Decides `publish` commands, as [`Client::on_publish`].
        on_publish, publish, PublishEvent, PublishReply);
    shared!(
        /// Decides map changes (`publish` with `type` 1), as [`Client::on_map_publish`].
        on_map_publish, map_publish, MapPublishEvent, MapPublishReply);
    shared!(
        /// Answers `rpc` commands, as [`Client::on_rpc`].
        on_rpc, rpc, RpcEvent, RpcReply);
    shared!(
        /// Receives `send` messages, as [`Client::on_message`].
        on_message, message, MessageEvent, ());
    shared!(
        /// Allows `presence` commands, as [`Client::on_presence`].
        on_presence, presence, PresenceEvent, ());
    shared!(
        /// Allows `presence_stats` commands, as [`Client::on_presence_stats`].
        on_presence_stats, presence_stats, PresenceEvent, ());
    shared!(
        /// Allows `history` commands, as [`Client::on_history`].
        on_history, history, HistoryEvent, ());
    shared!(
        /// Refreshes expiring credentials, as [`Client::on_refresh`].
        on_refresh, refresh, RefreshEvent, RefreshReply);
    shared!(
        /// Refreshes expiring subscriptions, as [`Client::on_sub_refresh`].
        on_sub_refresh, sub_refresh, SubRefreshEvent, SubRefreshReply);
    shared!(
        /// Checks the signatures of shared-poll track requests, as [`Client::on_track`].
        on_track, track, TrackEvent, TrackReply);

    /// Observes subscriptions ending, as [`Client::on_unsubscribe`].
    #[must_use]
    pub fn on_unsubscribe(
        mut self,
        f: impl Fn(Client, UnsubscribeEvent) + Send + Sync + 'static,
    ) -> Self {
        self.unsubscribe = Some(Arc::new(f));
        self
    }

    /// Observes connections ending, as [`Client::on_disconnect`].
    #[must_use]
    pub fn on_disconnect(
        mut self,
        f: impl Fn(Client, DisconnectEvent) + Send + Sync + 'static,
    ) -> Self {
        self.disconnect = Some(Arc::new(f));
        self
    }
}

/// Runs once per accepted connection, before its connect reply is sent.
pub(crate) type ConnectHandler = Arc<dyn Fn(Client) + Send + Sync>;

/// The node-wide handlers that run when a connection authenticates
/// ([`Node::on_connecting`](crate::Node::on_connecting) and
/// [`Node::on_connect`](crate::Node::on_connect)). Held in the state the node shares
/// with its connections.
#[derive(Default)]
pub(crate) struct ConnectHooks {
    pub(crate) on_connecting: RwLock<Option<Handler<ConnectEvent, ConnectReply>>>,
    pub(crate) on_connect: RwLock<Option<ConnectHandler>>,
}

impl ConnectHooks {
    pub(crate) fn connecting(&self) -> Option<Handler<ConnectEvent, ConnectReply>> {
        self.on_connecting.read().clone()
    }

    pub(crate) fn connect(&self) -> Option<ConnectHandler> {
        self.on_connect.read().clone()
    }
}
