//! The Node: entry point of the library.
//!
//! A node owns the hub of live connections, the broker and presence manager, and the
//! application's connection handlers. Transports hand new connections to it.

mod control;
#[cfg(test)]
pub(crate) mod test_bus;
pub(crate) use control::SURVEY_EMULATION;

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};

use bytes::Bytes;

pub use crate::config::Config;

use crate::broker::{
    Broker, BrokerError, BrokerEventHandler, ClientInfo, HistoryOptions, HistoryResult, MapBroker,
    MapPublishOptions, MapPublishResult, MapReadStateOptions, MapReadStreamOptions, MapStateResult,
    MemoryBroker, MemoryMapBroker, Publication, PublishOptions, PublishResult, StreamPosition,
};
use crate::client::handler::handler;
use crate::client::{Client, ClientInner, ClientSession, ConnectHooks, Shared};
use crate::controller::Controller;
use crate::events::{ConnectEvent, ConnectReply, HandlerError, RefreshReply, SubscribeOptions};
use crate::hub::Hub;
use crate::metrics::{Action, Exposition, Kind, Message, NodeMetrics};
use crate::presence::{MemoryPresenceManager, PresenceError, PresenceManager, PresenceStats};
use crate::session::{SessionFactory, TransportInfo};
use crate::shared::NodeShared;
use crate::shared_poll::{
    SharedPollChannelOptions, SharedPollItem, SharedPollManager, SharedPollMode,
    SharedPollRefreshEvent, SharedPollRefreshReply,
};
use crate::{Disconnect, Error, Unsubscribe};

pub(crate) struct NodeInner {
    /// What the node shares with its connections (hub, broker, presence, config,
    /// metrics, connect hooks).
    pub(crate) shared: Arc<Shared>,
    pub(crate) controller: Option<Arc<dyn Controller>>,
    pub(crate) cluster: control::Cluster,
    shutting_down: AtomicBool,
    next_seq: AtomicU64,
    started: std::time::Instant,
}

impl std::fmt::Debug for NodeInner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node")
            .field("id", &self.shared.id)
            .finish_non_exhaustive()
    }
}

/// A Gyre node: accepts connections, routes publications, keeps history and presence.
///
/// Cloning is cheap and gives another handle to the same node.
///
/// ```no_run
/// use gyre::{ConnectReply, Credentials, Node, SubscribeOptions, SubscribeReply};
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let node = Node::builder().build();
/// node.on_connecting(|_event| async { Ok(ConnectReply::new(Credentials::new("42"))) });
/// node.on_connect(|client| {
///     client.on_subscribe(|_event| async { Ok(SubscribeReply::new(SubscribeOptions::new())) });
/// });
/// node.run().await?;
/// node.publish("news", r#"{"text":"hello"}"#, Default::default()).await?;
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct Node {
    pub(crate) inner: Arc<NodeInner>,
}

/// Builds a [`Node`].
#[derive(Default)]
pub struct NodeBuilder {
    config: Config,
    broker: Option<Arc<dyn Broker>>,
    map_broker: Option<Arc<dyn MapBroker>>,
    presence: Option<Arc<dyn PresenceManager>>,
    controller: Option<Arc<dyn Controller>>,
}

impl std::fmt::Debug for NodeBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeBuilder")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl NodeBuilder {
    /// Node configuration.
    pub fn config(mut self, config: Config) -> Self {
        self.config = config;
        self
    }

    /// Use this broker instead of the in-memory one.
    pub fn broker(mut self, broker: impl Broker) -> Self {
        self.broker = Some(Arc::new(broker));
        self
    }

    /// Use this broker (shared) instead of the in-memory one.
    pub fn broker_arc(mut self, broker: Arc<dyn Broker>) -> Self {
        self.broker = Some(broker);
        self
    }

    /// Use this map broker (shared) instead of the in-memory one.
    pub fn map_broker_arc(mut self, map_broker: Arc<dyn MapBroker>) -> Self {
        self.map_broker = Some(map_broker);
        self
    }

    /// Use this presence manager instead of the in-memory one.
    pub fn presence_manager(mut self, presence: impl PresenceManager) -> Self {
        self.presence = Some(Arc::new(presence));
        self
    }

    /// Use this presence manager (shared) instead of the in-memory one.
    pub fn presence_manager_arc(mut self, presence: Arc<dyn PresenceManager>) -> Self {
        self.presence = Some(presence);
        self
    }

    /// Connect this node to others through `controller` (usually the same engine as
    /// the broker). Without one the node works alone.
    pub fn controller_arc(mut self, controller: Arc<dyn Controller>) -> Self {
        self.controller = Some(controller);
        self
    }

    /// Builds the node. Call [`Node::run`] before serving connections.
    pub fn build(self) -> Node {
        Node {
            inner: Arc::new(NodeInner {
                shared: Arc::new(NodeShared {
                    id: uuid::Uuid::new_v4().to_string(),
                    metrics: NodeMetrics::new(self.config.recovered_publications_histogram),
                    config: self.config,
                    hub: Hub::default(),
                    broker: self.broker.unwrap_or_else(|| Arc::new(MemoryBroker::new())),
                    map_broker: self
                        .map_broker
                        .unwrap_or_else(|| Arc::new(MemoryMapBroker::new())),
                    presence: self
                        .presence
                        .unwrap_or_else(|| Arc::new(MemoryPresenceManager::new())),
                    shared_poll: SharedPollManager::default(),
                    hooks: ConnectHooks::default(),
                }),
                controller: self.controller,
                cluster: control::Cluster::default(),
                shutting_down: AtomicBool::new(false),
                next_seq: AtomicU64::new(1),
                started: std::time::Instant::now(),
            }),
        }
    }
}

/// Selects some of a user's connections for a server-side operation.
///
/// ```
/// use gyre::ClientFilter;
/// let only_one = ClientFilter::client("b6f1…");
/// assert!(ClientFilter::default().matches("any"));
/// assert!(!only_one.matches("other"));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClientFilter {
    /// Only this connection id.
    pub client: Option<String>,
    /// Only this session id (equal to the connection id in Gyre).
    pub session: Option<String>,
    /// Every connection except these ids.
    pub whitelist: Vec<String>,
}

impl ClientFilter {
    /// Only the connection with this id.
    pub fn client(id: impl Into<String>) -> Self {
        ClientFilter {
            client: Some(id.into()),
            ..Default::default()
        }
    }

    /// Whether the connection with this id is selected.
    pub fn matches(&self, id: &str) -> bool {
        self.client.as_deref().is_none_or(|c| c == id)
            && self.session.as_deref().is_none_or(|s| s == id)
            && !self.whitelist.iter().any(|w| w == id)
    }
}

/// Counters of this node.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct NodeInfo {
    /// Node id.
    pub id: String,
    /// Node name.
    pub name: String,
    /// Version the node reports.
    pub version: String,
    /// Connections.
    pub num_clients: usize,
    /// Distinct users.
    pub num_users: usize,
    /// Channels with subscribers.
    pub num_channels: usize,
    /// Subscriptions.
    pub num_subscriptions: usize,
    /// Seconds since the node was built.
    pub uptime: u64,
}

/// Up to this many deferred writes of a broadcast are made by the broadcasting call
/// itself (see [`NodeEvents::handle_publication`]).
const FLUSH_IN_PLACE: usize = 4;

/// Forwards broker events to the hub without keeping the node alive.
struct NodeEvents(Weak<Shared>);

impl BrokerEventHandler for NodeEvents {
    fn handle_publication(
        &self,
        channel: &str,
        publication: Publication,
        position: StreamPosition,
        use_delta: bool,
        prev: Option<Publication>,
    ) {
        if let Some(node) = self.0.upgrade() {
            node.metrics.received(Message::Publication);
            node.metrics.pub_sub_delivered(publication.time);
            let prev = prev.as_ref().filter(|_| use_delta);
            let started = std::time::Instant::now();
            let (outcome, deferred) =
                node.hub
                    .broadcast_publication(channel, &publication, &position, prev);
            node.metrics.broadcast_duration.observe_since(started);
            // This runs under the broker's lock of the channel and, for a publish through
            // the server API, before its answer. A few writes cost less than a task; a
            // round over a big channel goes to a task of its own, which the runtime runs
            // once the publisher's task has written its answer and yielded.
            if deferred.len() <= FLUSH_IN_PLACE {
                node.hub.flush(deferred);
            } else if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                let flushing = Arc::clone(&node);
                runtime.spawn(async move { flushing.hub.flush(deferred) });
            } else {
                node.hub.flush(deferred);
            }
            if outcome.filtered > 0 {
                node.metrics.tags_filter_dropped.add(outcome.filtered);
            }
        }
    }

    fn handle_join(&self, channel: &str, info: ClientInfo) {
        if let Some(node) = self.0.upgrade() {
            node.metrics.received(Message::Join);
            node.hub.broadcast_join_leave(channel, &info, true);
        }
    }

    fn handle_resubscribed(&self) {
        if let Some(node) = self.0.upgrade() {
            for client in node.hub.all_clients() {
                client.check_positions_now();
            }
        }
    }

    fn handle_leave(&self, channel: &str, info: ClientInfo) {
        if let Some(node) = self.0.upgrade() {
            node.metrics.received(Message::Leave);
            node.hub.broadcast_join_leave(channel, &info, false);
        }
    }
}

impl Node {
    /// Starts building a node.
    pub fn builder() -> NodeBuilder {
        NodeBuilder::default()
    }

    /// This node's unique id.
    pub fn id(&self) -> &str {
        &self.inner.shared.id
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.inner.shared.config
    }

    /// Decides whether a connection is accepted and who it is. Runs for every `connect`
    /// command, before [`Node::on_connect`]. Without this handler every connect is
    /// refused with 3501 (no credentials).
    pub fn on_connecting<F, Fut>(&self, f: F)
    where
        F: Fn(ConnectEvent) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<ConnectReply, HandlerError>> + Send + 'static,
    {
        *self.inner.shared.hooks.on_connecting.write() = Some(handler(f));
    }

    /// Runs once per accepted connection, before its connect reply is sent: register the
    /// client's handlers (`on_subscribe`, `on_publish`, …) here.
    pub fn on_connect<F>(&self, f: F)
    where
        F: Fn(Client) + Send + Sync + 'static,
    {
        *self.inner.shared.hooks.on_connect.write() = Some(Arc::new(f));
    }

    /// Declares which channels are shared-poll channels, with their options (upstream
    /// `SharedPoll.GetSharedPollChannelOptions`). A `subscribe` with `type` 4 on any
    /// other channel answers 108; any other type on one of these answers 107.
    pub fn on_shared_poll_channel<F>(&self, f: F)
    where
        F: Fn(&str) -> Option<SharedPollChannelOptions> + Send + Sync + 'static,
    {
        self.inner.shared.shared_poll.set_resolver(Arc::new(f));
    }

    /// Asks the application's backend for the current data of tracked keys (the refresh
    /// of a shared-poll channel). An error skips the cycle: clients see nothing.
    pub fn on_shared_poll_refresh<F, Fut>(&self, f: F)
    where
        F: Fn(SharedPollRefreshEvent) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<SharedPollRefreshReply, Error>> + Send + 'static,
    {
        self.inner
            .shared
            .shared_poll
            .set_refresh_handler(Arc::new(move |e| Box::pin(f(e))));
    }

    /// Bounds the shared-poll backend calls in flight across channels (0 = unbounded).
    pub fn set_shared_poll_concurrency_limit(&self, limit: usize) {
        self.inner.shared.shared_poll.set_concurrency_limit(limit);
    }

    /// Sets a key of a versioned shared-poll channel on this node, as if the backend had
    /// answered it (upstream `SharedPollPublish`): connections tracking the key with an
    /// older version get it; a new `epoch` resets the channel (its trackers get
    /// unsubscribe 2500). The key is skipped by the channel's next poll. A channel that
    /// is not shared-poll, not versioned, an empty key or version 0 answer 107.
    pub fn shared_poll_publish(
        &self,
        channel: &str,
        key: &str,
        data: Bytes,
        version: u64,
        epoch: &str,
    ) -> Result<(), Error> {
        let manager = &self.inner.shared.shared_poll;
        let Some(options) = manager.options(channel) else {
            return Err(Error::BAD_REQUEST);
        };
        if options.mode != SharedPollMode::Versioned || key.is_empty() || version == 0 {
            return Err(Error::BAD_REQUEST);
        }
        manager.publish(
            channel,
            SharedPollItem::new(key, data).with_version(version),
            epoch,
        );
        Ok(())
    }

    /// Starts the broker. Call once before serving connections.
    pub async fn run(&self) -> Result<(), BrokerError> {
        let events: Arc<dyn BrokerEventHandler> =
            Arc::new(NodeEvents(Arc::downgrade(&self.inner.shared)));
        self.inner.shared.broker.run(events.clone()).await?;
        self.inner.shared.map_broker.run(events).await?;
        self.run_control().await
    }

    /// Closes every connection with 3001 (clients reconnect elsewhere) and refuses new
    /// ones. Returns once every connection was told.
    pub async fn shutdown(&self) {
        self.inner.shutting_down.store(true, Ordering::SeqCst);
        for client in self.inner.shared.hub.all_clients() {
            client.outbound.close(Disconnect::SHUTDOWN);
        }
    }

    /// Whether [`Node::shutdown`] was called.
    pub fn is_shutting_down(&self) -> bool {
        self.inner.shutting_down.load(Ordering::SeqCst)
    }

    /// Sets `key` of the map channel `channel`; its subscribers receive the change.
    pub async fn map_publish(
        &self,
        channel: &str,
        key: &str,
        data: impl Into<Bytes>,
        options: MapPublishOptions,
    ) -> Result<MapPublishResult, BrokerError> {
        let shared = &self.inner.shared;
        let result = shared
            .map_broker
            .publish(channel, key, data.into(), options)
            .await;
        if result.as_ref().is_ok_and(|r| r.suppressed.is_none()) {
            shared.metrics.sent(Message::Publication);
        }
        result
    }

    /// Removes `key` of the map channel `channel`; its subscribers receive the removal.
    pub async fn map_remove(
        &self,
        channel: &str,
        key: &str,
        options: MapPublishOptions,
    ) -> Result<MapPublishResult, BrokerError> {
        self.inner
            .shared
            .map_broker
            .remove(channel, key, options)
            .await
    }

    /// Reads a page of a map channel's state.
    pub async fn map_read_state(
        &self,
        channel: &str,
        options: MapReadStateOptions,
    ) -> Result<MapStateResult, BrokerError> {
        self.inner
            .shared
            .map_broker
            .read_state(channel, options)
            .await
    }

    /// Reads a map channel's change stream.
    pub async fn map_read_stream(
        &self,
        channel: &str,
        options: MapReadStreamOptions,
    ) -> Result<HistoryResult, BrokerError> {
        self.inner
            .shared
            .map_broker
            .read_stream(channel, options)
            .await
    }

    /// Number of keys of a map channel.
    pub async fn map_stats(&self, channel: &str) -> Result<usize, BrokerError> {
        self.inner.shared.map_broker.stats(channel).await
    }

    /// Forgets a map channel (state, stream, position).
    pub async fn map_clear(&self, channel: &str) -> Result<(), BrokerError> {
        self.inner.shared.map_broker.clear(channel).await
    }

    /// Publishes `data` into `channel`; every subscriber on every node receives it.
    pub async fn publish(
        &self,
        channel: &str,
        data: impl Into<Bytes>,
        options: PublishOptions,
    ) -> Result<PublishResult, BrokerError> {
        let shared = &self.inner.shared;
        let result = shared.broker.publish(channel, data.into(), options).await;
        if result.is_ok() {
            shared.metrics.sent(Message::Publication);
        }
        result
    }

    /// Reads `channel`'s history stream.
    pub async fn history(
        &self,
        channel: &str,
        options: HistoryOptions,
    ) -> Result<HistoryResult, BrokerError> {
        self.inner.shared.metrics.action(Action::History);
        self.inner.shared.broker.history(channel, options).await
    }

    /// Drops `channel`'s history (its position stays).
    pub async fn remove_history(&self, channel: &str) -> Result<(), BrokerError> {
        self.inner.shared.metrics.action(Action::HistoryRemove);
        self.inner.shared.broker.remove_history(channel).await
    }

    /// Who is in `channel`, by connection id.
    pub async fn presence(
        &self,
        channel: &str,
    ) -> Result<HashMap<String, ClientInfo>, PresenceError> {
        self.inner.shared.metrics.action(Action::Presence);
        self.inner.shared.presence.presence(channel).await
    }

    /// Counts of `channel`'s presence.
    pub async fn presence_stats(&self, channel: &str) -> Result<PresenceStats, PresenceError> {
        self.inner.shared.metrics.action(Action::PresenceStats);
        self.inner.shared.presence.presence_stats(channel).await
    }

    /// Closes every connection of `user`, on every node, with `disconnect`.
    pub async fn disconnect(&self, user: &str, disconnect: Disconnect) {
        self.disconnect_clients(user, &ClientFilter::default(), disconnect)
            .await;
    }

    /// Closes the connections of `user` selected by `filter`, on every node.
    pub async fn disconnect_clients(
        &self,
        user: &str,
        filter: &ClientFilter,
        disconnect: Disconnect,
    ) {
        self.local_disconnect(user, filter, disconnect.clone());
        self.broadcast_action(gyre_protocol::control::Command {
            disconnect: Some(gyre_protocol::control::Disconnect {
                user: user.to_owned(),
                whitelist: filter.whitelist.clone(),
                code: disconnect.code,
                reason: disconnect.reason.to_string(),
                reconnect: false,
                client: filter.client.clone().unwrap_or_default(),
                session: filter.session.clone().unwrap_or_default(),
            }),
            ..Default::default()
        })
        .await;
    }

    pub(crate) fn local_disconnect(
        &self,
        user: &str,
        filter: &ClientFilter,
        disconnect: Disconnect,
    ) {
        for client in self.filtered(user, filter) {
            client.outbound.close(disconnect.clone());
        }
    }

    /// Removes `user`'s subscriptions to `channel` on every node (clients get an
    /// `unsubscribe` push).
    pub async fn unsubscribe(&self, user: &str, channel: &str) {
        self.unsubscribe_clients(user, channel, &ClientFilter::default())
            .await;
    }

    /// Removes the subscriptions to `channel` of the connections selected by `filter`, on
    /// every node.
    pub async fn unsubscribe_clients(&self, user: &str, channel: &str, filter: &ClientFilter) {
        self.local_unsubscribe(user, channel, filter, Unsubscribe::SERVER)
            .await;
        self.broadcast_action(gyre_protocol::control::Command {
            unsubscribe: Some(gyre_protocol::control::Unsubscribe {
                channel: channel.to_owned(),
                user: user.to_owned(),
                client: filter.client.clone().unwrap_or_default(),
                session: filter.session.clone().unwrap_or_default(),
                code: Unsubscribe::SERVER.code,
                reason: Unsubscribe::SERVER.reason.to_string(),
            }),
            ..Default::default()
        })
        .await;
    }

    pub(crate) async fn local_unsubscribe(
        &self,
        user: &str,
        channel: &str,
        filter: &ClientFilter,
        unsubscribe: Unsubscribe,
    ) {
        for client in self.filtered(user, filter) {
            client
                .server_unsubscribe(channel, unsubscribe.clone())
                .await;
        }
    }

    /// Subscribes every connection of `user`, on every node, to `channel` server-side
    /// (clients get a `subscribe` push).
    pub async fn subscribe(
        &self,
        user: &str,
        channel: &str,
        options: SubscribeOptions,
    ) -> Result<(), Error> {
        self.subscribe_clients(user, channel, options, &ClientFilter::default())
            .await
    }

    /// Subscribes the connections selected by `filter`, on every node, to `channel`
    /// server-side.
    pub async fn subscribe_clients(
        &self,
        user: &str,
        channel: &str,
        options: SubscribeOptions,
        filter: &ClientFilter,
    ) -> Result<(), Error> {
        let forwarded = gyre_protocol::control::Subscribe {
            user: user.to_owned(),
            channel: channel.to_owned(),
            presence: options.emit_presence,
            join_leave: options.emit_join_leave,
            expire_at: options.expire_at,
            position: options.enable_positioning,
            recover: options.enable_recovery,
            channel_info: options.channel_info.clone(),
            client: filter.client.clone().unwrap_or_default(),
            data: options.data.clone(),
            recover_since: options.recover_since.as_ref().map(|p| {
                gyre_protocol::control::StreamPosition {
                    offset: p.offset,
                    epoch: p.epoch.clone(),
                }
            }),
            session: filter.session.clone().unwrap_or_default(),
        };
        let local = self.local_subscribe(user, channel, options, filter).await;
        self.broadcast_action(gyre_protocol::control::Command {
            subscribe: Some(forwarded),
            ..Default::default()
        })
        .await;
        local
    }

    pub(crate) async fn local_subscribe(
        &self,
        user: &str,
        channel: &str,
        options: SubscribeOptions,
        filter: &ClientFilter,
    ) -> Result<(), Error> {
        for client in self.filtered(user, filter) {
            client.server_subscribe(channel, options.clone()).await?;
        }
        Ok(())
    }

    /// Changes the expiry of the connections of `user` selected by `filter`, on every
    /// node; they get a `refresh` push. `expired` disconnects them with 3005.
    pub async fn refresh(&self, user: &str, filter: &ClientFilter, refresh: RefreshReply) {
        self.local_refresh(user, filter, &refresh);
        self.broadcast_action(gyre_protocol::control::Command {
            refresh: Some(gyre_protocol::control::Refresh {
                user: user.to_owned(),
                client: filter.client.clone().unwrap_or_default(),
                expired: refresh.expired,
                expire_at: refresh.expire_at,
                info: refresh.info.clone().unwrap_or_default(),
                session: filter.session.clone().unwrap_or_default(),
            }),
            ..Default::default()
        })
        .await;
    }

    pub(crate) fn local_refresh(&self, user: &str, filter: &ClientFilter, refresh: &RefreshReply) {
        for client in self.filtered(user, filter) {
            client.server_refresh(refresh);
        }
    }

    fn filtered(&self, user: &str, filter: &ClientFilter) -> Vec<Arc<ClientInner>> {
        let mut clients = self.inner.shared.hub.user_clients(user);
        clients.retain(|c| filter.matches(&c.id));
        clients
    }

    /// Counters of this node.
    pub fn info(&self) -> NodeInfo {
        let (num_clients, num_users) = self.inner.shared.hub.counts();
        let (channels, num_subscriptions) = self.inner.shared.hub.channels();
        NodeInfo {
            id: self.inner.shared.id.clone(),
            name: self.inner.shared.config.name.clone(),
            version: self.inner.shared.config.version.clone(),
            num_clients,
            num_users,
            num_channels: channels.len(),
            num_subscriptions,
            uptime: self.inner.started.elapsed().as_secs(),
        }
    }

    /// Writes this node's metrics in the Prometheus text format, every name prefixed
    /// with `namespace_` (Centrifugo uses `centrifugo`).
    ///
    /// ```
    /// let node = gyre::Node::builder().build();
    /// let mut out = String::new();
    /// node.write_metrics("centrifugo", &mut out);
    /// assert!(out.contains("centrifugo_node_num_clients 0"));
    /// ```
    pub fn write_metrics(&self, namespace: &str, out: &mut String) {
        let info = self.info();
        let mut e = Exposition::new(out, namespace);
        for (name, help, value) in [
            (
                "node_num_clients",
                "Number of clients connected.",
                info.num_clients,
            ),
            (
                "node_num_users",
                "Number of unique users connected.",
                info.num_users,
            ),
            (
                "node_num_subscriptions",
                "Number of subscriptions.",
                info.num_subscriptions,
            ),
            (
                "node_num_channels",
                "Number of channels with one or more subscribers.",
                info.num_channels,
            ),
            (
                "node_num_nodes",
                "Number of nodes in the cluster.",
                self.num_nodes(),
            ),
        ] {
            e.family(name, help, Kind::Gauge).value(&[], value);
        }
        let version = &self.inner.shared.config.version;
        let version = if version.is_empty() { "_" } else { version };
        e.family("node_build", "Node build info.", Kind::Gauge)
            .value(&[("version", version)], 1);
        self.inner.shared.metrics.write(&mut e);
    }

    /// Channels with at least one subscriber on this node.
    pub fn channels(&self) -> Vec<String> {
        self.inner.shared.hub.channels().0
    }

    /// Channels with subscribers on this node and how many subscribers each has.
    pub fn channel_counts(&self) -> Vec<(String, usize)> {
        self.inner.shared.hub.channel_counts()
    }

    /// The connection of an emulated transport (HTTP-streaming, SSE) that holds
    /// `session`, if it lives on this node.
    pub(crate) fn emulation_session(&self, session: &str) -> Option<ClientSession> {
        self.inner
            .shared
            .hub
            .client_by_session(session)
            .map(ClientSession::new)
    }

    pub(crate) fn next_seq(&self) -> u64 {
        self.inner.next_seq.fetch_add(1, Ordering::Relaxed)
    }
}

impl SessionFactory for Node {
    type Session = ClientSession;

    fn new_session(
        &self,
        info: TransportInfo,
        request: &http::request::Parts,
    ) -> Result<ClientSession, Disconnect> {
        if self.is_shutting_down() {
            return Err(Disconnect::SHUTDOWN);
        }
        let headers = (!request.headers.is_empty()).then(|| request.headers.clone());
        Ok(ClientSession::new(ClientInner::new(
            self.inner.shared.clone(),
            self.next_seq(),
            info,
            headers,
        )))
    }
}
