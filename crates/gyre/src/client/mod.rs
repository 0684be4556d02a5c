//! One connection session: state, command dispatch, subscriptions and delivery.
//!
//! Commands of one connection are handled one at a time, in the order they arrived.
//! Lock order: a client's state lock is never held while calling into the hub, the
//! broker or the presence manager (the hub calls back into clients while holding its own
//! locks).

mod commands;
pub(crate) mod handler;
mod handlers;
mod subscription;
mod timers;

#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;

use bytes::Bytes;
use gyre_protocol::{Protocol, proto};
use parking_lot::Mutex;
use tokio::time::Instant;

pub use handlers::ClientHandlers;
pub(crate) use handlers::ConnectHooks;
pub(crate) use subscription::SubState;

use crate::broker::{ClientInfo, Publication, StreamPosition};
use crate::events::{
    DisconnectEvent, HandlerError, HistoryEvent, MapPublishEvent, MapPublishReply, MessageEvent,
    PresenceEvent, PublishEvent, PublishReply, RefreshEvent, RefreshReply, RpcEvent, RpcReply,
    SubRefreshEvent, SubRefreshReply, SubscribeEvent, SubscribeOptions, SubscribeReply, TrackEvent,
    TrackReply, UnsubscribeEvent,
};
use crate::hub::{Connection, Frames};
use crate::metrics::{Action, ClientMethod, ConnectionStats, FrameType, TransportCounters};
use crate::queue::{Outbound, PushOutcome, WriteNow};
use crate::session::{ConnectRefused, Session, TransportInfo};
use crate::shared::NodeShared;
use crate::wire::encode_reply;
use crate::{Disconnect, Error, Unsubscribe};
use handler::{Observer, handler};

/// The metric label of a command (`None` for pongs).
fn command_method(c: &proto::Command) -> Option<ClientMethod> {
    Some(if c.connect.is_some() {
        ClientMethod::Connect
    } else if c.subscribe.is_some() {
        ClientMethod::Subscribe
    } else if c.unsubscribe.is_some() {
        ClientMethod::Unsubscribe
    } else if c.publish.is_some() {
        ClientMethod::Publish
    } else if c.presence.is_some() {
        ClientMethod::Presence
    } else if c.presence_stats.is_some() {
        ClientMethod::PresenceStats
    } else if c.history.is_some() {
        ClientMethod::History
    } else if c.rpc.is_some() {
        ClientMethod::Rpc
    } else if c.send.is_some() {
        ClientMethod::Send
    } else if c.refresh.is_some() {
        ClientMethod::Refresh
    } else if c.sub_refresh.is_some() {
        ClientMethod::SubRefresh
    } else if c.id == 0 {
        return None;
    } else {
        ClientMethod::Unknown
    })
}

/// Current Unix time in seconds.
pub(crate) fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Status {
    /// Waiting for the `connect` command.
    Connecting,
    /// Authenticated.
    Connected,
    /// `connect` was refused with an error: further input is ignored until the peer
    /// closes (or the stale timer does).
    Failed,
    /// Gone.
    Closed,
}

/// Mutable state of a connection.
#[derive(Debug)]
pub(crate) struct State {
    pub(crate) status: Status,
    pub(crate) user: String,
    pub(crate) info: Bytes,
    /// Unix seconds when the credentials expire (0 = never).
    pub(crate) expire_at: i64,
    pub(crate) client_side_refresh: bool,
    pub(crate) subs: HashMap<String, SubState>,
    /// Map subscriptions still catching up (state and stream phases), by channel.
    pub(crate) map_flows: HashMap<String, commands::MapFlow>,
    pub(crate) timers: timers::Timers,
}

/// The node's state as its connections use it: the one instantiation of
/// [`NodeShared`], named here because the connection type and the hooks are the client's.
pub(crate) type Shared = NodeShared<ClientInner, ConnectHooks>;

/// Shared core of a connection.
pub(crate) struct ClientInner {
    pub(crate) seq: u64,
    pub(crate) id: String,
    /// Emulated transports only: the secret id that `/emulation` requests name to reach
    /// this connection (the client id is public, through presence).
    pub(crate) session: Option<Box<str>>,
    /// The node this connection belongs to, as far as the connection needs it.
    pub(crate) node: Arc<Shared>,
    pub(crate) transport: TransportInfo,
    pub(crate) outbound: Arc<Outbound>,
    counters: Arc<TransportCounters>,
    /// The `client_connections_*` label set of this connection once it is connected, and
    /// whether the client named itself (the `client_name` of subscription metrics).
    connection_stats: std::sync::OnceLock<(Arc<ConnectionStats>, bool)>,
    pub(crate) state: Mutex<State>,
    /// Shared (see [`ClientHandlers`]) or this connection's own; `None` costs nothing.
    handlers: Mutex<Option<Arc<ClientHandlers>>>,
    /// This connection itself, to hand to handlers as a [`Client`].
    me: std::sync::Weak<ClientInner>,
    /// Headers of the request that opened the connection, handed to `on_connecting`
    /// and dropped after it.
    request_headers: Mutex<Option<Box<http::HeaderMap>>>,
}

impl std::fmt::Debug for ClientInner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("id", &self.id)
            .field("transport", &self.transport.name)
            .finish_non_exhaustive()
    }
}

macro_rules! get_handler {
    ($self:ident, $name:ident) => {{
        // Bound to a local so the lock is released before any await on the handler.
        let handler = $self.handlers.lock().as_ref().and_then(|h| h.$name.clone());
        handler
    }};
}
pub(crate) use get_handler;

impl ClientInner {
    pub(crate) fn new(
        node: Arc<Shared>,
        seq: u64,
        transport: TransportInfo,
        request_headers: Option<http::HeaderMap>,
    ) -> Arc<Self> {
        let config = &node.config;
        let timers = timers::Timers::new(Instant::now() + config.client_stale_close_delay);
        let counters = node.metrics.transport(transport.name);
        let outbound = Arc::new(Outbound::with_counters(
            config.client_queue_max_size,
            Some(counters.clone()),
        ));
        Arc::new_cyclic(|me| ClientInner {
            me: me.clone(),
            seq,
            id: uuid::Uuid::new_v4().to_string(),
            session: transport
                .emulation
                .then(|| uuid::Uuid::new_v4().to_string().into()),
            node,
            transport,
            outbound,
            counters,
            connection_stats: std::sync::OnceLock::new(),
            state: Mutex::new(State {
                status: Status::Connecting,
                user: String::new(),
                info: Bytes::new(),
                expire_at: 0,
                client_side_refresh: false,
                subs: HashMap::new(),
                map_flows: HashMap::new(),
                timers,
            }),
            handlers: Mutex::new(None),
            request_headers: Mutex::new(request_headers.map(Box::new)),
        })
    }

    pub(crate) fn protocol(&self) -> Protocol {
        self.transport.protocol
    }

    pub(crate) fn user(&self) -> String {
        self.state.lock().user.clone()
    }

    /// This connection as a publisher / presence entry.
    pub(crate) fn client_info(&self, chan_info: Bytes) -> ClientInfo {
        let state = self.state.lock();
        let mut info = ClientInfo::new(state.user.clone(), self.id.clone());
        info.conn_info = state.info.clone();
        info.chan_info = chan_info;
        info
    }

    pub(crate) fn take_request_headers(&self) -> http::HeaderMap {
        self.request_headers
            .lock()
            .take()
            .map(|h| *h)
            .unwrap_or_default()
    }

    fn with_handlers(&self, f: impl FnOnce(&mut ClientHandlers)) {
        let mut h = self.handlers.lock();
        // Copy-on-write: a shared set stays untouched for the other connections.
        f(Arc::make_mut(h.get_or_insert_with(Default::default)));
    }

    /// This connection as handlers see it. Handlers only run while the connection is
    /// alive, so the upgrade cannot fail for them.
    pub(crate) fn client(&self) -> Client {
        Client {
            inner: self
                .me
                .upgrade()
                .expect("a live connection calls its handlers"),
        }
    }

    /// Encodes and queues a reply. `Err` when the connection must close.
    pub(crate) fn write_reply(&self, reply: &proto::Reply) -> Result<(), Disconnect> {
        self.write_reply_as(reply, FrameType::of_reply(reply))
    }

    /// [`Self::write_reply`] counted as `frame` (an error reply names its command).
    fn write_reply_as(&self, reply: &proto::Reply, frame: FrameType) -> Result<(), Disconnect> {
        let bytes =
            encode_reply(self.protocol(), reply).ok_or(Disconnect::INAPPROPRIATE_PROTOCOL)?;
        self.outbound.push(bytes, frame);
        Ok(())
    }

    /// Encodes and queues a push. `Err` when the connection must close.
    pub(crate) fn write_push(&self, push: proto::Push) -> Result<(), Disconnect> {
        self.write_reply(&proto::Reply {
            push: Some(push),
            ..Default::default()
        })
    }

    /// Whether the client gave a name when it connected.
    pub(crate) fn named_client(&self) -> bool {
        self.connection_stats.get().is_some_and(|(_, named)| *named)
    }

    fn write_error(&self, id: u32, method: ClientMethod, error: &Error) -> Result<(), Disconnect> {
        self.node.metrics.reply_error(method, error.code);
        self.write_reply_as(
            &proto::Reply {
                id,
                error: Some(error.to_proto()),
                ..Default::default()
            },
            method.into(),
        )
    }

    /// Handles every command of one transport message, in order.
    async fn handle_message(self: Arc<Self>, data: Bytes) -> Result<(), Disconnect> {
        let mut commands = gyre_protocol::decode_commands(self.protocol(), data);
        loop {
            let before = commands.remaining();
            let Some(command) = commands.next() else {
                break;
            };
            let command = command.map_err(|e| {
                tracing::debug!(client = %self.id, error = %e, "malformed command");
                Disconnect::BAD_REQUEST
            })?;
            // Counted per command with its size, as upstream counts (a JSON command's
            // size includes its newline).
            let frame = match command_method(&command) {
                Some(m) => m.into(),
                None if command.id == 0 => FrameType::ClientPong,
                None => FrameType::Unknown,
            };
            self.counters
                .received(frame, (before - commands.remaining()) as u64);
            self.handle_command(command).await?;
            if self.outbound.is_closed() {
                break;
            }
        }
        Ok(())
    }

    async fn handle_command(self: &Arc<Self>, command: proto::Command) -> Result<(), Disconnect> {
        let method = command_method(&command);
        let started = std::time::Instant::now();
        let result = self
            .dispatch(command, method.unwrap_or(ClientMethod::Unknown))
            .await;
        if let Some(method) = method {
            self.node.metrics.command(method).observe_since(started);
        }
        result
    }

    async fn dispatch(
        self: &Arc<Self>,
        command: proto::Command,
        method: ClientMethod,
    ) -> Result<(), Disconnect> {
        let status = self.state.lock().status;
        match status {
            Status::Failed | Status::Closed => return Ok(()),
            Status::Connecting if command.connect.is_none() || command.id == 0 => {
                tracing::debug!(client = %self.id, "command before connect");
                return Err(Disconnect::BAD_REQUEST);
            }
            _ => {}
        }
        let id = command.id;
        if id == 0 {
            return match command.send {
                Some(send) => self.handle_send(send.data).await,
                None => self.handle_pong(),
            };
        }
        let result = if let Some(req) = command.connect {
            if status == Status::Connected {
                return Err(Disconnect::BAD_REQUEST);
            }
            return self.handle_connect(id, req).await;
        } else if command.ping.is_some() {
            Err(HandlerError::Error(Error::NOT_AVAILABLE))
        } else if let Some(req) = command.subscribe {
            return self.handle_subscribe(id, req).await;
        } else if let Some(req) = command.unsubscribe {
            self.handle_unsubscribe(req).await.map(|r| proto::Reply {
                unsubscribe: Some(r),
                ..Default::default()
            })
        } else if let Some(req) = command.publish {
            self.handle_publish(req).await.map(|r| proto::Reply {
                publish: Some(r),
                ..Default::default()
            })
        } else if let Some(req) = command.presence {
            self.handle_presence(req).await.map(|r| proto::Reply {
                presence: Some(r),
                ..Default::default()
            })
        } else if let Some(req) = command.presence_stats {
            self.handle_presence_stats(req).await.map(|r| proto::Reply {
                presence_stats: Some(r),
                ..Default::default()
            })
        } else if let Some(req) = command.history {
            self.handle_history(req).await.map(|r| proto::Reply {
                history: Some(r),
                ..Default::default()
            })
        } else if let Some(req) = command.rpc {
            self.handle_rpc(req).await.map(|r| proto::Reply {
                rpc: Some(r),
                ..Default::default()
            })
        } else if let Some(req) = command.send {
            // `send` never gets a reply, even when it carries an id.
            return self.handle_send(req.data).await;
        } else if let Some(req) = command.refresh {
            self.handle_refresh(req).await.map(|r| proto::Reply {
                refresh: Some(r),
                ..Default::default()
            })
        } else if let Some(req) = command.sub_refresh {
            if req.r#type == commands::TYPE_TRACK && self.is_shared_poll(&req.channel) {
                return self.handle_track(id, req).await;
            }
            self.handle_sub_refresh(req).await.map(|r| proto::Reply {
                sub_refresh: Some(r),
                ..Default::default()
            })
        } else {
            tracing::debug!(client = %self.id, "command without request");
            return Err(Disconnect::BAD_REQUEST);
        };
        match result {
            Ok(mut reply) => {
                reply.id = id;
                self.write_reply(&reply)
            }
            Err(HandlerError::Error(e)) => self.write_error(id, method, &e),
            Err(HandlerError::Disconnect(d)) => Err(d),
        }
    }

    fn handle_pong(&self) -> Result<(), Disconnect> {
        let mut state = self.state.lock();
        let round_trip = match state.status {
            Status::Connected => state.timers.pong_received(),
            _ => None,
        };
        drop(state);
        let Some(round_trip) = round_trip else {
            tracing::debug!(client = %self.id, "unexpected pong");
            return Err(Disconnect::BAD_REQUEST);
        };
        self.counters.ping_pong.observe(round_trip.as_secs_f64());
        Ok(())
    }

    async fn handle_send(&self, data: Bytes) -> Result<(), Disconnect> {
        let Some(h) = get_handler!(self, message) else {
            return Err(Disconnect::NOT_AVAILABLE);
        };
        match h(self.client(), MessageEvent { data }).await {
            Ok(()) | Err(HandlerError::Error(_)) => Ok(()),
            Err(HandlerError::Disconnect(d)) => Err(d),
        }
    }

    /// Cleans up after the transport is gone. Runs once.
    async fn finish(self: Arc<Self>, disconnect: Disconnect) {
        let (was_connected, user, subs) = {
            let mut state = self.state.lock();
            let was_connected = state.status == Status::Connected;
            state.status = Status::Closed;
            (
                was_connected,
                state.user.clone(),
                std::mem::take(&mut state.subs),
            )
        };
        self.outbound.close(disconnect.clone());
        let metrics = &self.node.metrics;
        if disconnect.code != Disconnect::CONNECTION_CLOSED.code {
            metrics.server_disconnect(disconnect.code);
            if self.transport.name == "websocket" {
                metrics.outgoing_close(self.transport.name, disconnect.code);
            }
        }
        if !was_connected {
            return;
        }
        metrics.action(Action::RemoveClient);
        if let Some((stats, _)) = self.connection_stats.get() {
            stats.inflight.add(-1);
        }
        self.node.hub.remove_client(self.seq, &user);
        if let Some(session) = &self.session {
            self.node.hub.remove_session(session);
        }
        for (channel, sub) in subs {
            self.cleanup_subscription(&channel, &sub, Unsubscribe::DISCONNECT.code)
                .await;
        }
        let observer = get_handler!(self, disconnect);
        if let Some(h) = observer {
            h(
                self.client(),
                DisconnectEvent {
                    disconnect: disconnect.clone(),
                },
            );
        }
        tracing::debug!(client = %self.id, user = %user, code = disconnect.code, reason = %disconnect.reason, "client disconnected");
        // Handlers may hold `Client` clones that point back here; drop them so the
        // connection's memory is released.
        self.handlers.lock().take();
    }
}

impl Connection for ClientInner {
    #[inline]
    fn seq(&self) -> u64 {
        self.seq
    }

    #[inline]
    fn id(&self) -> &str {
        &self.id
    }

    #[inline]
    fn protocol(&self) -> Protocol {
        self.transport.protocol
    }

    #[inline]
    fn outbound(&self) -> &Outbound {
        &self.outbound
    }

    #[inline(always)]
    fn prefetch(&self) {
        crate::queue::prefetch(&self.transport.protocol);
        crate::queue::prefetch(&self.outbound);
    }

    #[inline]
    fn deliver_publication(
        this: &Arc<Self>,
        channel: &str,
        publication: &Publication,
        position: &StreamPosition,
        frames: &Frames,
        when: WriteNow,
    ) -> PushOutcome {
        this.deliver_publication(channel, publication, position, frames, when)
    }
}

/// A connection, as the application sees it in its handlers.
///
/// Handlers registered here run for this connection only; register them in
/// [`Node::on_connect`](crate::Node::on_connect). Per connection, commands are handled
/// one at a time in arrival order, so handlers of one client never run concurrently.
#[derive(Clone, Debug)]
pub struct Client {
    pub(crate) inner: Arc<ClientInner>,
}

macro_rules! register {
    ($(#[$doc:meta])* $fn_name:ident, $field:ident, $event:ty, $reply:ty) => {
        $(#[$doc])*
        pub fn $fn_name<F, Fut>(&self, f: F)
        where
            F: Fn($event) -> Fut + Send + Sync + 'static,
            Fut: Future<Output = Result<$reply, HandlerError>> + Send + 'static,
        {
            let h = handler(f);
            self.inner.with_handlers(|hs| hs.$field = Some(h));
        }
    };
}

impl Client {
    /// Connection id.
    pub fn id(&self) -> &str {
        &self.inner.id
    }

    /// User id (`""` when anonymous).
    pub fn user_id(&self) -> String {
        self.inner.user()
    }

    /// Connection info from the credentials.
    pub fn info(&self) -> Bytes {
        self.inner.state.lock().info.clone()
    }

    /// Transport name.
    pub fn transport(&self) -> &'static str {
        self.inner.transport.name
    }

    /// Whether the connection speaks Protobuf.
    pub fn is_protobuf(&self) -> bool {
        self.inner.protocol() == Protocol::Protobuf
    }

    /// Channels this connection is subscribed to.
    pub fn channels(&self) -> Vec<String> {
        self.inner.state.lock().subs.keys().cloned().collect()
    }

    /// Whether this connection is subscribed to `channel`.
    pub fn is_subscribed(&self, channel: &str) -> bool {
        self.inner.state.lock().subs.contains_key(channel)
    }

    /// Sends an asynchronous `message` push to this connection.
    pub fn send(&self, data: impl Into<Bytes>) -> Result<(), Disconnect> {
        self.inner.write_push(proto::Push {
            message: Some(proto::Message { data: data.into() }),
            ..Default::default()
        })
    }

    /// Closes this connection.
    pub fn disconnect(&self, disconnect: Disconnect) {
        self.inner.outbound.close(disconnect);
    }

    /// Removes a subscription of this connection (it gets an `unsubscribe` push).
    pub async fn unsubscribe(&self, channel: &str) {
        self.inner
            .server_unsubscribe(channel, Unsubscribe::SERVER)
            .await;
    }

    /// Subscribes this connection to `channel` server-side (it gets a `subscribe` push).
    pub async fn subscribe(&self, channel: &str, options: SubscribeOptions) -> Result<(), Error> {
        self.inner.server_subscribe(channel, options).await
    }

    register!(
        /// Decides a `subscribe` command. Without it subscribing answers 108.
        on_subscribe, subscribe, SubscribeEvent, SubscribeReply);
    register!(
        /// Decides a `publish` command. Without it publishing answers 108.
        on_publish, publish, PublishEvent, PublishReply);
    register!(
        /// Decides a map change (`publish` with `type` 1: set or remove a key). Without
        /// it map changes answer 108.
        on_map_publish, map_publish, MapPublishEvent, MapPublishReply);
    register!(
        /// Answers an `rpc` command. Without it RPC answers 108.
        on_rpc, rpc, RpcEvent, RpcReply);
    register!(
        /// Receives `send` messages. Without it a `send` closes the connection (3508).
        on_message, message, MessageEvent, ());
    register!(
        /// Allows a `presence` command. Without it presence answers 108.
        on_presence, presence, PresenceEvent, ());
    register!(
        /// Allows a `presence_stats` command. Without it presence stats answer 108.
        on_presence_stats, presence_stats, PresenceEvent, ());
    register!(
        /// Allows a `history` command. Without it history answers 108.
        on_history, history, HistoryEvent, ());
    register!(
        /// Refreshes expiring credentials (server-side on expiry, or on a `refresh`
        /// command when the connection uses client-side refresh).
        on_refresh, refresh, RefreshEvent, RefreshReply);
    register!(
        /// Refreshes an expiring subscription (`sub_refresh` command or on expiry).
        on_sub_refresh, sub_refresh, SubRefreshEvent, SubRefreshReply);
    register!(
        /// Checks the signatures of a shared-poll track request (`sub_refresh` with
        /// `type` 1). Without it tracking answers 108.
        on_track, track, TrackEvent, TrackReply);

    /// Observes subscriptions ending.
    pub fn on_unsubscribe(&self, f: impl Fn(UnsubscribeEvent) + Send + Sync + 'static) {
        let f: Observer<UnsubscribeEvent> = Arc::new(move |_client, event| f(event));
        self.inner.with_handlers(|hs| hs.unsubscribe = Some(f));
    }

    /// Observes the connection ending.
    pub fn on_disconnect(&self, f: impl Fn(DisconnectEvent) + Send + Sync + 'static) {
        let f: Observer<DisconnectEvent> = Arc::new(move |_client, event| f(event));
        self.inner.with_handlers(|hs| hs.disconnect = Some(f));
    }

    /// Installs a handler set shared with other connections (see [`ClientHandlers`]),
    /// replacing whatever this connection had.
    pub fn set_handlers(&self, handlers: Arc<ClientHandlers>) {
        *self.inner.handlers.lock() = Some(handlers);
    }
}

/// A connection as a transport drives it.
#[derive(Clone, Debug)]
pub(crate) struct ClientSession(Arc<ClientInner>);

impl ClientSession {
    pub(crate) fn new(inner: Arc<ClientInner>) -> Self {
        ClientSession(inner)
    }

    /// Encoding of this connection.
    pub(crate) fn protocol(&self) -> Protocol {
        self.0.protocol()
    }
}

impl Session for ClientSession {
    fn outbound(&self) -> &Arc<Outbound> {
        &self.0.outbound
    }

    fn handle_message(
        &self,
        data: Bytes,
    ) -> impl Future<Output = Result<(), Disconnect>> + Send + 'static {
        self.0.clone().handle_message(data)
    }

    fn connect_unidirectional(
        &self,
        request: proto::ConnectRequest,
    ) -> impl Future<Output = Result<(), ConnectRefused>> + Send + 'static {
        self.0.clone().connect_unidirectional(request)
    }

    fn next_deadline(&self) -> Option<Instant> {
        self.0.next_deadline()
    }

    fn on_timer(&self) -> impl Future<Output = Result<(), Disconnect>> + Send + 'static {
        self.0.clone().on_timer()
    }

    fn finish(self, disconnect: Disconnect) -> impl Future<Output = ()> + Send + 'static {
        self.0.finish(disconnect)
    }
}
