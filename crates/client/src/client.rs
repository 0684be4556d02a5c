//! The Tokio driver: one task owns the core, the WebSocket and the timers.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use gyre_protocol::Protocol;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::core::{CallReply, ClientCore, CoreConfig, Output, Request, SubOptions};
use crate::types::{
    ClientEvent, ClientInfo, HistoryOptions, HistoryResult, PresenceStats, StreamPosition,
    SubscriptionEvent,
};
use crate::{ClientError, TokenError};

/// A boxed, sendable future.
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// A callback that fetches a fresh token (from your backend, usually).
///
/// ```
/// use std::sync::Arc;
/// use gyre_client::{GetToken, TokenError};
///
/// let get_token: GetToken = Arc::new(|| Box::pin(async { Ok::<_, TokenError>("jwt".to_owned()) }));
/// # let _ = get_token;
/// ```
pub type GetToken = Arc<dyn Fn() -> BoxFuture<Result<String, TokenError>> + Send + Sync>;

/// How a [`Client`] connects. Build with struct update syntax from `Default`.
///
/// ```
/// use std::time::Duration;
/// use gyre_client::{ClientConfig, Protocol};
///
/// let config = ClientConfig {
///     token: "jwt".into(),
///     protocol: Protocol::Protobuf,
///     max_reconnect_delay: Duration::from_secs(5),
///     ..Default::default()
/// };
/// assert_eq!(config.min_reconnect_delay, Duration::from_millis(500));
/// ```
#[derive(Clone)]
pub struct ClientConfig {
    /// Connection token (JWT for Centrifugo). Empty = none, or ask `get_token`.
    pub token: String,
    /// Called when `token` is empty, when the server says it expired (error 109), and
    /// when the connection must be refreshed (`expires`/`ttl` in the connect result).
    pub get_token: Option<GetToken>,
    /// JSON (text frames, no subprotocol) or Protobuf (binary frames, subprotocol
    /// `centrifuge-protobuf`).
    pub protocol: Protocol,
    /// Client name sent in `connect` (default `"rust"`).
    pub name: String,
    /// Application version sent in `connect`.
    pub version: String,
    /// Custom data for the server's connect handler (raw JSON with the JSON protocol).
    pub data: Bytes,
    /// Emulated headers sent in `connect`.
    pub headers: HashMap<String, String>,
    /// Lower bound of the reconnect backoff (default 500 ms).
    pub min_reconnect_delay: Duration,
    /// Upper bound of the reconnect backoff (default 20 s).
    pub max_reconnect_delay: Duration,
    /// Timeout of the WebSocket handshake and of every command (default 5 s).
    pub timeout: Duration,
    /// Added to the server ping interval before the connection is considered dead
    /// (default 10 s; zero disables the check).
    pub max_server_ping_delay: Duration,
}

impl Default for ClientConfig {
    fn default() -> Self {
        let core = CoreConfig::default();
        ClientConfig {
            token: String::new(),
            get_token: None,
            protocol: Protocol::Json,
            name: "rust".into(),
            version: String::new(),
            data: Bytes::new(),
            headers: HashMap::new(),
            min_reconnect_delay: core.min_reconnect_delay,
            max_reconnect_delay: core.max_reconnect_delay,
            timeout: core.timeout,
            max_server_ping_delay: core.max_server_ping_delay,
        }
    }
}

impl fmt::Debug for ClientConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientConfig")
            .field("token", &(!self.token.is_empty()).then_some("<set>"))
            .field("get_token", &self.get_token.is_some())
            .field("protocol", &self.protocol)
            .field("name", &self.name)
            .field("version", &self.version)
            .field("min_reconnect_delay", &self.min_reconnect_delay)
            .field("max_reconnect_delay", &self.max_reconnect_delay)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// Options of one subscription. Build with struct update syntax from `Default`.
///
/// ```
/// use gyre_client::SubscriptionConfig;
/// let config = SubscriptionConfig { recoverable: true, positioned: true, ..Default::default() };
/// assert!(config.since.is_none());
/// ```
#[derive(Clone)]
pub struct SubscriptionConfig {
    /// Subscription token (JWT for Centrifugo private channels).
    pub token: String,
    /// Fetches a subscription token when `token` is empty or expired, and to refresh it
    /// when the subscribe result has `expires`/`ttl`.
    pub get_token: Option<GetToken>,
    /// Custom data for the server's subscribe handler.
    pub data: Bytes,
    /// Start by recovering from this position (the first subscribe sends `recover`).
    pub since: Option<StreamPosition>,
    /// Ask for a positioned stream.
    pub positioned: bool,
    /// Ask for a recoverable stream: resubscribes recover missed publications.
    pub recoverable: bool,
    /// Ask for join/leave pushes.
    pub join_leave: bool,
    /// Lower bound of the resubscribe backoff (default 500 ms).
    pub min_resubscribe_delay: Duration,
    /// Upper bound of the resubscribe backoff (default 20 s).
    pub max_resubscribe_delay: Duration,
}

impl Default for SubscriptionConfig {
    fn default() -> Self {
        let o = SubOptions::default();
        SubscriptionConfig {
            token: String::new(),
            get_token: None,
            data: Bytes::new(),
            since: None,
            positioned: false,
            recoverable: false,
            join_leave: false,
            min_resubscribe_delay: o.min_resubscribe_delay,
            max_resubscribe_delay: o.max_resubscribe_delay,
        }
    }
}

impl fmt::Debug for SubscriptionConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SubscriptionConfig")
            .field("get_token", &self.get_token.is_some())
            .field("since", &self.since)
            .field("positioned", &self.positioned)
            .field("recoverable", &self.recoverable)
            .field("join_leave", &self.join_leave)
            .finish_non_exhaustive()
    }
}

enum Cmd {
    Connect,
    Disconnect,
    NewSubscription {
        channel: String,
        options: SubOptions,
        get_token: Option<GetToken>,
        events: mpsc::UnboundedSender<SubscriptionEvent>,
        reply: oneshot::Sender<Result<(), ClientError>>,
    },
    Subscribe(String),
    Unsubscribe(String),
    RemoveSubscription(String),
    Call {
        request: Request,
        reply: oneshot::Sender<Result<CallReply, ClientError>>,
    },
}

/// A handle to a client connection; cheap to clone. The connection task stops when the
/// last `Client` and [`Subscription`] handle is dropped.
///
/// Events are delivered through unbounded `tokio::sync::mpsc` receivers: one for the
/// client (returned by [`Client::new`]) and one per subscription (returned by
/// [`Client::new_subscription`]). Dropping a receiver just discards its events.
///
/// ```no_run
/// use gyre_client::{Client, ClientConfig, ClientEvent, SubscriptionConfig, SubscriptionEvent};
///
/// # async fn run() -> Result<(), gyre_client::ClientError> {
/// let (client, mut events) = Client::new("ws://localhost:8000/connection/websocket", ClientConfig::default());
/// let (sub, mut sub_events) = client.new_subscription("chat", SubscriptionConfig::default()).await?;
/// sub.subscribe();
/// client.connect();
/// while let Some(event) = sub_events.recv().await {
///     if let SubscriptionEvent::Publication(p) = event {
///         println!("{:?}", p.data);
///     }
/// }
/// # let _ = events.recv().await;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Client {
    tx: mpsc::UnboundedSender<Cmd>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("closed", &self.tx.is_closed())
            .finish()
    }
}

/// A handle to one client-side subscription; cheap to clone.
#[derive(Clone)]
pub struct Subscription {
    channel: String,
    client: Client,
}

impl fmt::Debug for Subscription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Subscription")
            .field("channel", &self.channel)
            .finish()
    }
}

impl Client {
    /// Creates a client for a WebSocket endpoint such as
    /// `ws://host:8000/connection/websocket` and spawns its task. Nothing happens on the
    /// network until [`connect`](Self::connect).
    ///
    /// Must be called inside a Tokio runtime.
    pub fn new(
        url: impl Into<String>,
        config: ClientConfig,
    ) -> (Client, mpsc::UnboundedReceiver<ClientEvent>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let (events_tx, events_rx) = mpsc::unbounded_channel();
        let core_config = CoreConfig {
            protocol: config.protocol,
            token: config.token,
            has_get_token: config.get_token.is_some(),
            name: config.name,
            version: config.version,
            data: config.data,
            headers: config.headers,
            min_reconnect_delay: config.min_reconnect_delay,
            max_reconnect_delay: config.max_reconnect_delay,
            timeout: config.timeout,
            max_server_ping_delay: config.max_server_ping_delay,
        };
        let seed = std::collections::hash_map::RandomState::new();
        let seed = std::hash::BuildHasher::hash_one(&seed, 0u8);
        let core = ClientCore::new(core_config, Instant::now().into_std(), seed);
        let driver = Driver {
            url: url.into(),
            protocol: config.protocol,
            timeout: config.timeout,
            core,
            get_token: config.get_token,
            events: events_tx,
            subs: HashMap::new(),
            calls: HashMap::new(),
            next_call: 0,
            ws: None,
            opening: None,
        };
        tokio::spawn(driver.run(rx));
        (Client { tx }, events_rx)
    }

    /// Starts connecting (and reconnecting after failures). Watch the events for
    /// `Connected`. Calls made meanwhile wait for the connection (up to the timeout).
    pub fn connect(&self) {
        let _ = self.tx.send(Cmd::Connect);
    }

    /// Closes the connection and stops reconnecting. Subscriptions keep their state and
    /// resubscribe on the next [`connect`](Self::connect).
    pub fn disconnect(&self) {
        let _ = self.tx.send(Cmd::Disconnect);
    }

    /// Registers a subscription to `channel` (unsubscribed until
    /// [`Subscription::subscribe`]). Fails with [`ClientError::DuplicateSubscription`] if
    /// the channel already has one.
    pub async fn new_subscription(
        &self,
        channel: impl Into<String>,
        config: SubscriptionConfig,
    ) -> Result<(Subscription, mpsc::UnboundedReceiver<SubscriptionEvent>), ClientError> {
        let channel = channel.into();
        let (events, events_rx) = mpsc::unbounded_channel();
        let (reply, reply_rx) = oneshot::channel();
        let options = SubOptions {
            token: config.token,
            has_get_token: config.get_token.is_some(),
            data: config.data,
            since: config.since,
            positioned: config.positioned,
            recoverable: config.recoverable,
            join_leave: config.join_leave,
            min_resubscribe_delay: config.min_resubscribe_delay,
            max_resubscribe_delay: config.max_resubscribe_delay,
        };
        self.tx
            .send(Cmd::NewSubscription {
                channel: channel.clone(),
                options,
                get_token: config.get_token,
                events,
                reply,
            })
            .map_err(|_| ClientError::Closed)?;
        reply_rx.await.map_err(|_| ClientError::Closed)??;
        let sub = Subscription {
            channel,
            client: self.clone(),
        };
        Ok((sub, events_rx))
    }

    /// Unsubscribes and forgets the subscription; its handle becomes inert.
    pub fn remove_subscription(&self, subscription: &Subscription) {
        let _ = self
            .tx
            .send(Cmd::RemoveSubscription(subscription.channel.clone()));
    }

    async fn call(&self, request: Request) -> Result<CallReply, ClientError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Cmd::Call { request, reply })
            .map_err(|_| ClientError::Closed)?;
        rx.await.map_err(|_| ClientError::Closed)?
    }

    /// Calls an RPC method on the server and returns its reply data.
    pub async fn rpc(
        &self,
        method: impl Into<String>,
        data: impl Into<Bytes>,
    ) -> Result<Bytes, ClientError> {
        let request = Request::Rpc {
            method: method.into(),
            data: data.into(),
        };
        match self.call(request).await? {
            CallReply::Rpc(data) => Ok(data),
            _ => Ok(Bytes::new()),
        }
    }

    /// Sends an asynchronous message to the server (no reply); resolves once written.
    pub async fn send(&self, data: impl Into<Bytes>) -> Result<(), ClientError> {
        self.call(Request::Send { data: data.into() })
            .await
            .map(drop)
    }

    /// Publishes into a channel.
    pub async fn publish(
        &self,
        channel: impl Into<String>,
        data: impl Into<Bytes>,
    ) -> Result<(), ClientError> {
        let request = Request::Publish {
            channel: channel.into(),
            data: data.into(),
        };
        self.call(request).await.map(drop)
    }

    /// Who is in a channel: client id → info.
    pub async fn presence(
        &self,
        channel: impl Into<String>,
    ) -> Result<HashMap<String, ClientInfo>, ClientError> {
        match self
            .call(Request::Presence {
                channel: channel.into(),
            })
            .await?
        {
            CallReply::Presence(p) => Ok(p),
            _ => Ok(HashMap::new()),
        }
    }

    /// How many clients and users are in a channel.
    pub async fn presence_stats(
        &self,
        channel: impl Into<String>,
    ) -> Result<PresenceStats, ClientError> {
        match self
            .call(Request::PresenceStats {
                channel: channel.into(),
            })
            .await?
        {
            CallReply::PresenceStats(s) => Ok(s),
            _ => Ok(PresenceStats::default()),
        }
    }

    /// Reads a channel's history.
    pub async fn history(
        &self,
        channel: impl Into<String>,
        options: HistoryOptions,
    ) -> Result<HistoryResult, ClientError> {
        let request = Request::History {
            channel: channel.into(),
            options,
        };
        match self.call(request).await? {
            CallReply::History(h) => Ok(h),
            _ => Ok(HistoryResult::default()),
        }
    }
}

impl Subscription {
    /// The channel.
    pub fn channel(&self) -> &str {
        &self.channel
    }

    /// Subscribes now if connected, else as soon as the client connects; resubscribes
    /// after reconnects until [`unsubscribe`](Self::unsubscribe).
    pub fn subscribe(&self) {
        let _ = self.client.tx.send(Cmd::Subscribe(self.channel.clone()));
    }

    /// Unsubscribes.
    pub fn unsubscribe(&self) {
        let _ = self.client.tx.send(Cmd::Unsubscribe(self.channel.clone()));
    }

    /// Publishes into this channel ([`Client::publish`]).
    pub async fn publish(&self, data: impl Into<Bytes>) -> Result<(), ClientError> {
        self.client.publish(self.channel.clone(), data).await
    }

    /// This channel's history ([`Client::history`]).
    pub async fn history(&self, options: HistoryOptions) -> Result<HistoryResult, ClientError> {
        self.client.history(self.channel.clone(), options).await
    }

    /// This channel's presence ([`Client::presence`]).
    pub async fn presence(&self) -> Result<HashMap<String, ClientInfo>, ClientError> {
        self.client.presence(self.channel.clone()).await
    }

    /// This channel's presence counts ([`Client::presence_stats`]).
    pub async fn presence_stats(&self) -> Result<PresenceStats, ClientError> {
        self.client.presence_stats(self.channel.clone()).await
    }
}

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

struct SubEntry {
    events: mpsc::UnboundedSender<SubscriptionEvent>,
    get_token: Option<GetToken>,
}

enum Wake {
    Cmd(Option<Cmd>),
    Opened(Result<Ws, String>),
    Frame(Option<Result<Message, tokio_tungstenite::tungstenite::Error>>),
    Token(Option<String>, Result<String, TokenError>),
    Timer,
}

struct Driver {
    url: String,
    protocol: Protocol,
    timeout: Duration,
    core: ClientCore,
    get_token: Option<GetToken>,
    events: mpsc::UnboundedSender<ClientEvent>,
    subs: HashMap<String, SubEntry>,
    calls: HashMap<u64, oneshot::Sender<Result<CallReply, ClientError>>>,
    next_call: u64,
    ws: Option<Ws>,
    opening: Option<BoxFuture<Result<Ws, String>>>,
}

fn now() -> std::time::Instant {
    Instant::now().into_std()
}

/// Runs a token callback in its own task so that a panic becomes an error.
fn fetch_token(
    get_token: Option<GetToken>,
    channel: Option<String>,
    done: mpsc::UnboundedSender<(Option<String>, Result<String, TokenError>)>,
) {
    tokio::spawn(async move {
        let result = match get_token {
            Some(f) => match tokio::spawn(f()).await {
                Ok(r) => r,
                Err(e) => Err(TokenError::Failed(format!("get_token failed: {e}"))),
            },
            None => Err(TokenError::Unauthorized),
        };
        let _ = done.send((channel, result));
    });
}

impl Driver {
    fn open(&self) -> BoxFuture<Result<Ws, String>> {
        let url = self.url.clone();
        let protocol = self.protocol;
        let timeout = self.timeout;
        Box::pin(async move {
            let mut request = url.into_client_request().map_err(|e| e.to_string())?;
            if protocol == Protocol::Protobuf {
                request.headers_mut().insert(
                    "Sec-WebSocket-Protocol",
                    HeaderValue::from_static("centrifuge-protobuf"),
                );
            }
            match tokio::time::timeout(timeout, tokio_tungstenite::connect_async(request)).await {
                Ok(Ok((ws, _))) => Ok(ws),
                Ok(Err(e)) => Err(e.to_string()),
                Err(_) => Err("websocket handshake timeout".into()),
            }
        })
    }

    fn close_ws(&mut self) {
        self.opening = None;
        if let Some(mut ws) = self.ws.take() {
            tokio::spawn(async move {
                let _ = tokio::time::timeout(Duration::from_secs(1), ws.close(None)).await;
            });
        }
    }

    async fn run(mut self, mut rx: mpsc::UnboundedReceiver<Cmd>) {
        let (token_tx, mut token_rx) = mpsc::unbounded_channel();
        loop {
            // Carry out everything the core asked for.
            while let Some(output) = self.core.poll_output() {
                match output {
                    Output::OpenTransport => self.opening = Some(self.open()),
                    Output::Transmit(frame) => {
                        let Some(ws) = self.ws.as_mut() else { continue };
                        let message = match self.protocol {
                            Protocol::Json => match frame.try_into() {
                                Ok(text) => Message::Text(text),
                                Err(_) => continue,
                            },
                            Protocol::Protobuf => Message::Binary(frame),
                        };
                        if let Err(e) = ws.send(message).await {
                            self.ws = None;
                            let _ = self
                                .events
                                .send(ClientEvent::Error(ClientError::Transport(e.to_string())));
                            self.core.transport_closed(now(), None);
                        }
                    }
                    Output::CloseTransport => self.close_ws(),
                    Output::GetToken => fetch_token(self.get_token.clone(), None, token_tx.clone()),
                    Output::GetSubToken(channel) => {
                        let f = self.subs.get(&channel).and_then(|s| s.get_token.clone());
                        fetch_token(f, Some(channel), token_tx.clone());
                    }
                    Output::Event(event) => {
                        let _ = self.events.send(event);
                    }
                    Output::SubEvent { channel, event } => {
                        if let Some(s) = self.subs.get(&channel) {
                            let _ = s.events.send(event);
                        }
                    }
                    Output::CallDone { call, result } => {
                        if let Some(reply) = self.calls.remove(&call) {
                            let _ = reply.send(result);
                        }
                    }
                }
            }

            let deadline = self.core.poll_timeout().map(Instant::from_std);
            let wake = tokio::select! {
                cmd = rx.recv() => Wake::Cmd(cmd),
                res = async { self.opening.as_mut().expect("guarded").await }, if self.opening.is_some() => Wake::Opened(res),
                msg = async { self.ws.as_mut().expect("guarded").next().await }, if self.ws.is_some() => Wake::Frame(msg),
                Some((channel, result)) = token_rx.recv() => Wake::Token(channel, result),
                () = async { tokio::time::sleep_until(deadline.expect("guarded")).await }, if deadline.is_some() => Wake::Timer,
            };
            let now = now();
            match wake {
                Wake::Cmd(None) => break,
                Wake::Cmd(Some(cmd)) => self.command(now, cmd),
                Wake::Opened(result) => {
                    self.opening = None;
                    match result {
                        Ok(ws) => {
                            self.ws = Some(ws);
                            self.core.transport_opened(now);
                        }
                        Err(e) => {
                            let _ = self
                                .events
                                .send(ClientEvent::Error(ClientError::Transport(e)));
                            self.core.transport_closed(now, None);
                        }
                    }
                }
                Wake::Frame(Some(Ok(message))) => match message {
                    Message::Text(text) => self.core.frame_received(now, Bytes::from(text)),
                    Message::Binary(data) => self.core.frame_received(now, data),
                    Message::Close(frame) => {
                        self.ws = None;
                        let close = frame.map(|f| (u16::from(f.code), f.reason.to_string()));
                        self.core.transport_closed(now, close);
                    }
                    Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => {}
                },
                Wake::Frame(Some(Err(_)) | None) => {
                    self.ws = None;
                    self.core.transport_closed(now, None);
                }
                Wake::Token(None, result) => self.core.token_result(now, result),
                Wake::Token(Some(channel), result) => {
                    self.core.sub_token_result(now, &channel, result)
                }
                Wake::Timer => self.core.handle_timeout(now),
            }
        }
        self.core.disconnect(now());
        self.close_ws();
    }

    fn command(&mut self, now: std::time::Instant, cmd: Cmd) {
        match cmd {
            Cmd::Connect => self.core.connect(now),
            Cmd::Disconnect => self.core.disconnect(now),
            Cmd::NewSubscription {
                channel,
                options,
                get_token,
                events,
                reply,
            } => {
                let result = self.core.new_subscription(&channel, options);
                if result.is_ok() {
                    self.subs.insert(channel, SubEntry { events, get_token });
                }
                let _ = reply.send(result);
            }
            Cmd::Subscribe(channel) => self.core.subscribe(now, &channel),
            Cmd::Unsubscribe(channel) => self.core.unsubscribe(now, &channel),
            Cmd::RemoveSubscription(channel) => {
                self.core.remove_subscription(now, &channel);
                self.subs.remove(&channel);
            }
            Cmd::Call { request, reply } => {
                self.next_call += 1;
                self.calls.insert(self.next_call, reply);
                self.core.call(now, self.next_call, request);
            }
        }
    }
}
