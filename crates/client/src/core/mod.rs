//! The sans-IO client: a state machine with no sockets, no timers and no runtime.
//!
//! The driver feeds it inputs (`connect`, `transport_opened`, `frame_received`,
//! `transport_closed`, `handle_timeout`, token results and user calls), each with the
//! current time, then drains [`ClientCore::poll_output`] and re-arms one timer at
//! [`ClientCore::poll_timeout`]. Behaviour follows centrifuge-js (`centrifuge.ts`,
//! `subscription.ts`): the same states, client-side codes, backoff and retry rules.

mod subscription;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use gyre_protocol::{Disconnect, EncodeError, Protocol, decode_replies, encode_command, proto};

use crate::types::{
    ClientEvent, ClientInfo, HistoryOptions, HistoryResult, PresenceStats, Publication,
    StreamPosition, SubscribedContext, SubscriptionEvent,
};
use crate::{ClientError, TokenError};

pub(crate) use subscription::SubOptions;
use subscription::{Sub, SubState};

/// Client-side connecting codes (centrifuge-js `connectingCodes`).
pub(crate) mod codes {
    pub(crate) const CONNECT_CALLED: u32 = 0;
    pub(crate) const TRANSPORT_CLOSED: u32 = 1;
    pub(crate) const NO_PING: u32 = 2;
    pub(crate) const SUBSCRIBE_TIMEOUT: u32 = 3;
    pub(crate) const UNSUBSCRIBE_ERROR: u32 = 4;
    /// Disconnected codes.
    pub(crate) const DISCONNECT_CALLED: u32 = 0;
    pub(crate) const UNAUTHORIZED: u32 = 1;
    pub(crate) const BAD_PROTOCOL: u32 = 2;
    pub(crate) const MESSAGE_SIZE_LIMIT: u32 = 3;
    /// Error code of a client-side timeout (centrifuge-js `errorCodes.timeout`).
    pub(crate) const TIMEOUT: u32 = 1;
    /// Server disconnect code that invalidates tokens and stream positions.
    pub(crate) const STATE_INVALIDATED: u32 = 3014;
}

/// Settings of the core (the serialisable part of `ClientConfig`).
#[derive(Debug, Clone)]
pub(crate) struct CoreConfig {
    pub(crate) protocol: Protocol,
    pub(crate) token: String,
    pub(crate) has_get_token: bool,
    pub(crate) name: String,
    pub(crate) version: String,
    pub(crate) data: Bytes,
    pub(crate) headers: HashMap<String, String>,
    pub(crate) min_reconnect_delay: Duration,
    pub(crate) max_reconnect_delay: Duration,
    pub(crate) timeout: Duration,
    pub(crate) max_server_ping_delay: Duration,
}

impl Default for CoreConfig {
    fn default() -> Self {
        CoreConfig {
            protocol: Protocol::Json,
            token: String::new(),
            has_get_token: false,
            name: String::new(),
            version: String::new(),
            data: Bytes::new(),
            headers: HashMap::new(),
            min_reconnect_delay: Duration::from_millis(500),
            max_reconnect_delay: Duration::from_secs(20),
            timeout: Duration::from_secs(5),
            max_server_ping_delay: Duration::from_secs(10),
        }
    }
}

/// A user call that expects a reply (or, for `Send`, just a write).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Request {
    Publish {
        channel: String,
        data: Bytes,
    },
    Rpc {
        method: String,
        data: Bytes,
    },
    Send {
        data: Bytes,
    },
    Presence {
        channel: String,
    },
    PresenceStats {
        channel: String,
    },
    History {
        channel: String,
        options: HistoryOptions,
    },
}

/// The successful result of a [`Request`].
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum CallReply {
    /// Publish or send.
    Done,
    Rpc(Bytes),
    Presence(HashMap<String, ClientInfo>),
    PresenceStats(PresenceStats),
    History(HistoryResult),
}

/// What the driver must do.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Output {
    /// Open a new transport; answer with `transport_opened` or `transport_closed`.
    OpenTransport,
    /// Write one frame on the open transport.
    Transmit(Bytes),
    /// Close the transport; no `transport_closed` is expected for it.
    CloseTransport,
    /// Call the connection `get_token`; answer with `token_result`.
    GetToken,
    /// Call the subscription's `get_token`; answer with `sub_token_result`.
    GetSubToken(String),
    /// A client-level event for the user.
    Event(ClientEvent),
    /// An event of the subscription to `channel`.
    SubEvent {
        channel: String,
        event: SubscriptionEvent,
    },
    /// A user call finished.
    CallDone {
        call: u64,
        result: Result<CallReply, ClientError>,
    },
}

/// Connection state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum State {
    Disconnected,
    Connecting,
    Connected,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Transport {
    Closed,
    Opening,
    Open,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CallKind {
    Publish,
    Rpc,
    Presence,
    PresenceStats,
    History,
}

/// A command written and waiting for its reply.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Inflight {
    Connect,
    Subscribe(String),
    Unsubscribe,
    Refresh,
    SubRefresh(String),
    Call(u64, CallKind),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TokenWait {
    None,
    Connect,
    Refresh,
}

#[derive(Debug, Clone, Default)]
struct ServerSub {
    recoverable: bool,
    offset: u64,
    epoch: String,
}

/// The client state machine.
#[derive(Debug)]
pub(crate) struct ClientCore {
    cfg: CoreConfig,
    now: Instant,
    state: State,
    transport: Transport,
    token: String,
    refresh_required: bool,
    token_wait: TokenWait,
    next_id: u32,
    inflight: HashMap<u32, (Inflight, Instant)>,
    queued: VecDeque<(u64, Request, Instant)>,
    subs: BTreeMap<String, Sub>,
    server_subs: BTreeMap<String, ServerSub>,
    reconnect_attempts: u32,
    reconnect_at: Option<Instant>,
    ping_interval: Option<Duration>,
    send_pong: bool,
    ping_deadline: Option<Instant>,
    refresh_at: Option<Instant>,
    frame: BytesMut,
    out: VecDeque<Output>,
    rng: u64,
}

fn server_error(e: proto::Error) -> gyre_protocol::Error {
    gyre_protocol::Error {
        code: e.code,
        message: e.message.into(),
        temporary: e.temporary,
    }
}

fn ttl(secs: u32) -> Duration {
    Duration::from_secs(u64::from(secs))
}

/// Whether a server disconnect code asks the client to reconnect (PROTOCOL §4.4).
fn reconnectable(code: u32) -> bool {
    !matches!(code, 3500..=3999 | 4500..=4999)
}

impl ClientCore {
    /// A core in the disconnected state. `seed` feeds the backoff jitter.
    pub(crate) fn new(cfg: CoreConfig, now: Instant, seed: u64) -> Self {
        ClientCore {
            token: cfg.token.clone(),
            cfg,
            now,
            state: State::Disconnected,
            transport: Transport::Closed,
            refresh_required: false,
            token_wait: TokenWait::None,
            next_id: 0,
            inflight: HashMap::new(),
            queued: VecDeque::new(),
            subs: BTreeMap::new(),
            server_subs: BTreeMap::new(),
            reconnect_attempts: 0,
            reconnect_at: None,
            ping_interval: None,
            send_pong: false,
            ping_deadline: None,
            refresh_at: None,
            frame: BytesMut::new(),
            out: VecDeque::new(),
            rng: seed ^ 0x9E37_79B9_7F4A_7C15,
        }
    }

    /// Current connection state.
    #[cfg(test)]
    pub(crate) fn state(&self) -> State {
        self.state
    }

    /// The next output, if any.
    pub(crate) fn poll_output(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    /// When [`handle_timeout`](Self::handle_timeout) must run next.
    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        let subs = self
            .subs
            .values()
            .flat_map(|s| [s.resubscribe_at, s.refresh_at]);
        [self.reconnect_at, self.ping_deadline, self.refresh_at]
            .into_iter()
            .chain(subs)
            .flatten()
            .chain(self.inflight.values().map(|(_, d)| *d))
            .chain(self.queued.iter().map(|(_, _, d)| *d))
            .min()
    }

    // ----- user calls -------------------------------------------------------------

    /// Starts connecting (no-op unless disconnected).
    pub(crate) fn connect(&mut self, now: Instant) {
        self.now = now;
        if self.state != State::Disconnected {
            return;
        }
        self.reconnect_attempts = 0;
        self.state = State::Connecting;
        self.emit(ClientEvent::Connecting(Disconnect::new(
            codes::CONNECT_CALLED,
            "connect called",
        )));
        self.start_reconnecting();
        self.flush();
    }

    /// Disconnects for good (until the next `connect`).
    pub(crate) fn disconnect(&mut self, now: Instant) {
        self.now = now;
        self.do_disconnect(codes::DISCONNECT_CALLED, "disconnect called".into(), false);
        self.flush();
    }

    /// Starts a user call; the result comes as [`Output::CallDone`] with `call`.
    pub(crate) fn call(&mut self, now: Instant, call: u64, request: Request) {
        self.now = now;
        match self.state {
            State::Disconnected => self.out.push_back(Output::CallDone {
                call,
                result: Err(ClientError::Disconnected),
            }),
            State::Connecting => {
                let deadline = now + self.cfg.timeout;
                self.queued.push_back((call, request, deadline));
            }
            State::Connected => self.send_call(call, request),
        }
        self.flush();
    }

    /// The connection `get_token` finished.
    pub(crate) fn token_result(&mut self, now: Instant, result: Result<String, TokenError>) {
        self.now = now;
        let wait = std::mem::replace(&mut self.token_wait, TokenWait::None);
        match wait {
            TokenWait::None => {}
            TokenWait::Connect if self.state == State::Connecting => match result {
                Ok(token) => {
                    self.token = token;
                    self.open_transport();
                }
                Err(TokenError::Unauthorized) => self.fail_unauthorized(),
                Err(TokenError::Failed(msg)) => {
                    self.emit(ClientEvent::Error(ClientError::Token(msg)));
                    self.schedule_reconnect();
                }
            },
            TokenWait::Refresh if self.state == State::Connected => match result {
                Ok(token) if token.is_empty() => self.fail_unauthorized(),
                Ok(token) => {
                    self.token = token.clone();
                    let cmd = proto::Command {
                        refresh: Some(proto::RefreshRequest { token }),
                        ..Default::default()
                    };
                    if let Err(e) = self.send_command(cmd, Some(Inflight::Refresh)) {
                        self.emit(ClientEvent::Error(e.into()));
                    }
                }
                Err(TokenError::Unauthorized) => self.fail_unauthorized(),
                Err(TokenError::Failed(msg)) => {
                    self.emit(ClientEvent::Error(ClientError::Token(msg)));
                    self.schedule_refresh_retry();
                }
            },
            TokenWait::Connect | TokenWait::Refresh => {}
        }
        self.flush();
    }

    // ----- transport events -------------------------------------------------------

    /// The transport asked for with [`Output::OpenTransport`] is open.
    pub(crate) fn transport_opened(&mut self, now: Instant) {
        self.now = now;
        if self.transport != Transport::Opening {
            return;
        }
        self.transport = Transport::Open;
        self.next_id = 0;
        let mut req = proto::ConnectRequest {
            token: self.token.clone(),
            data: self.cfg.data.clone(),
            name: self.cfg.name.clone(),
            version: self.cfg.version.clone(),
            headers: self.cfg.headers.clone(),
            ..Default::default()
        };
        for (channel, s) in &self.server_subs {
            if s.recoverable {
                req.subs.insert(
                    channel.clone(),
                    proto::SubscribeRequest {
                        recover: true,
                        offset: s.offset,
                        epoch: s.epoch.clone(),
                        ..Default::default()
                    },
                );
            }
        }
        let cmd = proto::Command {
            connect: Some(req),
            ..Default::default()
        };
        if let Err(e) = self.send_command(cmd, Some(Inflight::Connect)) {
            // Only the connect `data` can be invalid: retrying would not help.
            self.emit(ClientEvent::Error(e.into()));
            self.do_disconnect(codes::BAD_PROTOCOL, "bad protocol".into(), false);
            self.flush();
            return;
        }
        // Pipeline the subscribe commands of pending subscriptions in the same frame.
        let channels: Vec<String> = self.subs.keys().cloned().collect();
        for channel in channels {
            self.sub_try_subscribe(&channel);
        }
        self.flush();
    }

    /// The transport closed (or could not be opened). `close` holds the WebSocket close
    /// code and reason when there was a close frame.
    pub(crate) fn transport_closed(&mut self, now: Instant, close: Option<(u16, String)>) {
        self.now = now;
        if self.transport == Transport::Closed {
            return;
        }
        let was_open = self.transport == Transport::Open;
        self.transport = Transport::Closed;
        self.frame.clear();
        let (mut code, mut reason) = match close {
            Some((code, reason)) => (u32::from(code), reason),
            None => (0, String::new()),
        };
        let mut reconnect = reconnectable(code);
        if code < 3000 {
            if code == 1009 {
                code = codes::MESSAGE_SIZE_LIMIT;
                reason = "message size limit exceeded".into();
                reconnect = false;
            } else {
                code = codes::TRANSPORT_CLOSED;
                reason = "transport closed".into();
            }
        }
        if self.state == State::Connecting && !was_open {
            self.emit(ClientEvent::Error(ClientError::Transport(
                "transport closed".into(),
            )));
        }
        self.do_disconnect(code, reason, reconnect);
        self.flush();
    }

    /// One frame arrived on the open transport.
    pub(crate) fn frame_received(&mut self, now: Instant, frame: Bytes) {
        self.now = now;
        if self.transport != Transport::Open {
            return;
        }
        self.arm_ping_check();
        for reply in decode_replies(self.cfg.protocol, frame) {
            match reply {
                Ok(reply) => self.dispatch(reply),
                Err(e) => {
                    self.emit(ClientEvent::Error(e.into()));
                    self.do_disconnect(codes::BAD_PROTOCOL, "bad protocol".into(), false);
                }
            }
            if self.transport != Transport::Open {
                break;
            }
        }
        self.flush();
    }

    /// Runs what is due at `now`.
    pub(crate) fn handle_timeout(&mut self, now: Instant) {
        self.now = now;
        let due = |t: Option<Instant>| t.is_some_and(|t| t <= now);
        if due(self.reconnect_at) {
            self.reconnect_at = None;
            self.start_reconnecting();
        }
        if due(self.ping_deadline) {
            self.ping_deadline = None;
            self.do_disconnect(codes::NO_PING, "no ping".into(), true);
        }
        if due(self.refresh_at) {
            self.refresh_at = None;
            self.start_refresh();
        }
        let mut expired: Vec<(u32, Inflight)> = Vec::new();
        self.inflight.retain(|id, (what, deadline)| {
            if *deadline <= now {
                expired.push((*id, what.clone()));
                false
            } else {
                true
            }
        });
        expired.sort_by_key(|(id, _)| *id);
        for (_, what) in expired {
            self.inflight_timed_out(what);
        }
        while self.queued.front().is_some_and(|(_, _, d)| *d <= now) {
            if let Some((call, _, _)) = self.queued.pop_front() {
                self.out.push_back(Output::CallDone {
                    call,
                    result: Err(ClientError::Timeout),
                });
            }
        }
        let channels: Vec<String> = self.subs.keys().cloned().collect();
        for channel in channels {
            self.sub_handle_timeout(&channel, now);
        }
        self.flush();
    }

    // ----- internals: connection ------------------------------------------------

    fn emit(&mut self, event: ClientEvent) {
        self.out.push_back(Output::Event(event));
    }

    fn flush(&mut self) {
        if !self.frame.is_empty() {
            let frame = self.frame.split().freeze();
            if self.transport == Transport::Open {
                self.out.push_back(Output::Transmit(frame));
            }
        }
    }

    /// Appends `cmd` to the outgoing frame; with `what`, gives it an id and waits for the
    /// reply until the timeout.
    fn send_command(
        &mut self,
        mut cmd: proto::Command,
        what: Option<Inflight>,
    ) -> Result<(), EncodeError> {
        if what.is_some() {
            self.next_id += 1;
            cmd.id = self.next_id;
        }
        let start = self.frame.len();
        if start > 0 {
            self.frame
                .extend_from_slice(self.cfg.protocol.frame_separator());
        }
        if let Err(e) = encode_command(self.cfg.protocol, &cmd, &mut self.frame) {
            self.frame.truncate(start);
            return Err(e);
        }
        if let Some(what) = what {
            self.inflight
                .insert(cmd.id, (what, self.now + self.cfg.timeout));
        }
        Ok(())
    }

    fn random(&mut self) -> u64 {
        // splitmix64
        self.rng = self.rng.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Full-jitter exponential backoff (centrifuge-js `backoff`): a delay in
    /// `[min, min(max, min + min·2^step)]`.
    pub(crate) fn backoff(&mut self, step: u32, min: Duration, max: Duration) -> Duration {
        let step = step.min(31);
        let min_ms = min.as_millis() as u64;
        let max_ms = max.as_millis() as u64;
        let cap = max_ms.min(min_ms.saturating_mul(1u64 << step));
        let interval = self.random() % (cap + 1);
        Duration::from_millis(max_ms.min(min_ms + interval))
    }

    fn schedule_reconnect(&mut self) {
        if self.state != State::Connecting {
            return;
        }
        let delay = self.backoff(
            self.reconnect_attempts,
            self.cfg.min_reconnect_delay,
            self.cfg.max_reconnect_delay,
        );
        self.reconnect_attempts += 1;
        self.reconnect_at = Some(self.now + delay);
    }

    fn schedule_refresh_retry(&mut self) {
        let delay = self.backoff(0, Duration::from_secs(5), Duration::from_secs(10));
        self.refresh_at = Some(self.now + delay);
    }

    fn start_reconnecting(&mut self) {
        if self.state != State::Connecting
            || self.transport != Transport::Closed
            || self.token_wait != TokenWait::None
        {
            return;
        }
        let need_token = self.refresh_required || (self.token.is_empty() && self.cfg.has_get_token);
        if !need_token {
            self.open_transport();
        } else if !self.cfg.has_get_token {
            self.emit(ClientEvent::Error(ClientError::Token(
                "token expired but no get_token configured".into(),
            )));
            self.fail_unauthorized();
        } else {
            self.token_wait = TokenWait::Connect;
            self.out.push_back(Output::GetToken);
        }
    }

    fn open_transport(&mut self) {
        self.transport = Transport::Opening;
        self.out.push_back(Output::OpenTransport);
    }

    fn start_refresh(&mut self) {
        if self.state != State::Connected {
            return;
        }
        if !self.cfg.has_get_token {
            self.emit(ClientEvent::Error(ClientError::Token(
                "connection expires but no get_token configured".into(),
            )));
            self.fail_unauthorized();
            return;
        }
        self.token_wait = TokenWait::Refresh;
        self.out.push_back(Output::GetToken);
    }

    fn fail_unauthorized(&mut self) {
        self.do_disconnect(codes::UNAUTHORIZED, "unauthorized".into(), false);
    }

    fn arm_ping_check(&mut self) {
        if self.state == State::Connected
            && let Some(interval) = self.ping_interval
            && !self.cfg.max_server_ping_delay.is_zero()
        {
            self.ping_deadline = Some(self.now + interval + self.cfg.max_server_ping_delay);
        }
    }

    /// The one way out of a connection (centrifuge-js `_disconnect`).
    fn do_disconnect(&mut self, code: u32, reason: String, reconnect: bool) {
        if code == codes::STATE_INVALIDATED {
            self.token.clear();
            self.refresh_required = true;
            for sub in self.subs.values_mut() {
                sub.invalidate();
            }
        }
        if self.state == State::Disconnected {
            return;
        }
        let previous = self.state;
        let new = if reconnect {
            State::Connecting
        } else {
            State::Disconnected
        };
        self.state = new;
        self.token_wait = TokenWait::None;
        if new == State::Disconnected {
            for (call, _, _) in std::mem::take(&mut self.queued) {
                self.out.push_back(Output::CallDone {
                    call,
                    result: Err(ClientError::Disconnected),
                });
            }
        }
        // Fail what waits for a reply on this connection.
        let mut inflight: Vec<(u32, Inflight)> = self
            .inflight
            .drain()
            .map(|(id, (what, _))| (id, what))
            .collect();
        inflight.sort_by_key(|(id, _)| *id);
        for (_, what) in inflight {
            match what {
                Inflight::Call(call, _) => self.out.push_back(Output::CallDone {
                    call,
                    result: Err(ClientError::ConnectionClosed),
                }),
                Inflight::Subscribe(channel) => {
                    if let Some(sub) = self.subs.get_mut(&channel) {
                        sub.inflight = false;
                    }
                }
                _ => {}
            }
        }
        // The transport is gone from here on: nothing more is written to it.
        let had_transport = self.transport != Transport::Closed;
        self.transport = Transport::Closed;
        self.frame.clear();
        if previous == State::Connecting {
            self.reconnect_at = None;
        }
        if previous == State::Connected {
            self.ping_deadline = None;
            self.refresh_at = None;
            let channels: Vec<String> = self.subs.keys().cloned().collect();
            for channel in channels {
                if self.subs[&channel].state == SubState::Subscribed {
                    self.sub_set_subscribing(
                        &channel,
                        codes::TRANSPORT_CLOSED,
                        "transport closed".into(),
                    );
                }
            }
            let server: Vec<String> = self.server_subs.keys().cloned().collect();
            for channel in server {
                self.emit(ClientEvent::ServerSubscribing { channel });
            }
        }
        if previous != new {
            let d = Disconnect::new(code, reason);
            self.emit(if reconnect {
                ClientEvent::Connecting(d)
            } else {
                ClientEvent::Disconnected(d)
            });
        }
        if had_transport {
            self.out.push_back(Output::CloseTransport);
        }
        self.schedule_reconnect();
    }

    fn send_call(&mut self, call: u64, request: Request) {
        let mut cmd = proto::Command::default();
        let kind = match request {
            Request::Publish { channel, data } => {
                cmd.publish = Some(proto::PublishRequest {
                    channel,
                    data,
                    ..Default::default()
                });
                Some(CallKind::Publish)
            }
            Request::Rpc { method, data } => {
                cmd.rpc = Some(proto::RpcRequest { data, method });
                Some(CallKind::Rpc)
            }
            Request::Send { data } => {
                cmd.send = Some(proto::SendRequest { data });
                None
            }
            Request::Presence { channel } => {
                cmd.presence = Some(proto::PresenceRequest { channel });
                Some(CallKind::Presence)
            }
            Request::PresenceStats { channel } => {
                cmd.presence_stats = Some(proto::PresenceStatsRequest { channel });
                Some(CallKind::PresenceStats)
            }
            Request::History { channel, options } => {
                cmd.history = Some(proto::HistoryRequest {
                    channel,
                    limit: options.limit,
                    since: options.since.map(|p| proto::StreamPosition {
                        offset: p.offset,
                        epoch: p.epoch,
                    }),
                    reverse: options.reverse,
                });
                Some(CallKind::History)
            }
        };
        let result = self.send_command(cmd, kind.map(|k| Inflight::Call(call, k)));
        match (result, kind) {
            (Err(e), _) => self.out.push_back(Output::CallDone {
                call,
                result: Err(e.into()),
            }),
            (Ok(()), None) => self.out.push_back(Output::CallDone {
                call,
                result: Ok(CallReply::Done),
            }),
            (Ok(()), Some(_)) => {}
        }
    }

    fn dispatch(&mut self, reply: proto::Reply) {
        if reply.id > 0 {
            self.handle_reply(reply);
        } else if let Some(push) = reply.push {
            self.handle_push(push);
        } else if self.send_pong {
            // Server ping: answer with an empty command.
            if let Err(e) = self.send_command(proto::Command::default(), None) {
                self.emit(ClientEvent::Error(e.into()));
            }
        }
    }

    fn handle_reply(&mut self, reply: proto::Reply) {
        let Some((what, _)) = self.inflight.remove(&reply.id) else {
            return;
        };
        let error = reply.error.map(server_error);
        match what {
            Inflight::Connect => match error {
                Some(e) => self.connect_error(e),
                None => self.connect_ok(reply.connect.unwrap_or_default()),
            },
            Inflight::Subscribe(channel) => {
                if let Some(sub) = self.subs.get_mut(&channel) {
                    sub.inflight = false;
                }
                match error {
                    Some(e) => self.sub_subscribe_error(&channel, e),
                    None => self.sub_set_subscribed(&channel, reply.subscribe.unwrap_or_default()),
                }
            }
            Inflight::Unsubscribe => {
                if error.is_some() {
                    self.do_disconnect(codes::UNSUBSCRIBE_ERROR, "unsubscribe error".into(), true);
                }
            }
            Inflight::Refresh => match error {
                Some(e) => self.refresh_error(e),
                None => {
                    let r = reply.refresh.unwrap_or_default();
                    self.refresh_at = r.expires.then(|| self.now + ttl(r.ttl));
                }
            },
            Inflight::SubRefresh(channel) => match error {
                Some(e) => self.sub_refresh_error(&channel, e),
                None => {
                    let r = reply.sub_refresh.unwrap_or_default();
                    self.sub_refresh_ok(&channel, r);
                }
            },
            Inflight::Call(call, kind) => {
                let result = match error {
                    Some(e) => Err(ClientError::Server(e)),
                    None => Ok(match kind {
                        CallKind::Publish => CallReply::Done,
                        CallKind::Rpc => CallReply::Rpc(reply.rpc.unwrap_or_default().data),
                        CallKind::Presence => CallReply::Presence(
                            reply
                                .presence
                                .unwrap_or_default()
                                .presence
                                .into_iter()
                                .map(|(k, v)| (k, v.into()))
                                .collect(),
                        ),
                        CallKind::PresenceStats => {
                            let r = reply.presence_stats.unwrap_or_default();
                            CallReply::PresenceStats(PresenceStats {
                                num_clients: r.num_clients,
                                num_users: r.num_users,
                            })
                        }
                        CallKind::History => {
                            let r = reply.history.unwrap_or_default();
                            CallReply::History(HistoryResult {
                                publications: r.publications.into_iter().map(Into::into).collect(),
                                epoch: r.epoch,
                                offset: r.offset,
                            })
                        }
                    }),
                };
                self.out.push_back(Output::CallDone { call, result });
            }
        }
    }

    fn inflight_timed_out(&mut self, what: Inflight) {
        let timeout = gyre_protocol::Error::new(codes::TIMEOUT, "timeout");
        match what {
            Inflight::Connect => self.connect_error(timeout),
            Inflight::Subscribe(channel) => {
                let subscribing = self.subs.get_mut(&channel).is_some_and(|s| {
                    s.inflight = false;
                    s.state == SubState::Subscribing
                });
                if subscribing {
                    self.do_disconnect(codes::SUBSCRIBE_TIMEOUT, "subscribe timeout".into(), true);
                }
            }
            Inflight::Unsubscribe => {
                self.do_disconnect(codes::UNSUBSCRIBE_ERROR, "unsubscribe error".into(), true)
            }
            Inflight::Refresh => self.refresh_error(timeout),
            Inflight::SubRefresh(channel) => self.sub_refresh_error(&channel, timeout),
            Inflight::Call(call, _) => self.out.push_back(Output::CallDone {
                call,
                result: Err(ClientError::Timeout),
            }),
        }
    }

    fn connect_ok(&mut self, result: proto::ConnectResult) {
        self.reconnect_attempts = 0;
        self.refresh_required = false;
        if self.state != State::Connecting {
            return;
        }
        self.state = State::Connected;
        self.refresh_at = result.expires.then(|| self.now + ttl(result.ttl));
        let channels: Vec<String> = self.subs.keys().cloned().collect();
        for channel in channels {
            self.sub_try_subscribe(&channel);
        }
        self.emit(ClientEvent::Connected {
            client: result.client,
            version: result.version,
            data: result.data,
        });
        for (call, request, _) in std::mem::take(&mut self.queued) {
            self.send_call(call, request);
        }
        self.process_server_subs(result.subs);
        // Pong whenever asked to, even if the interval rounds down to 0 s.
        self.send_pong = result.pong;
        if result.ping > 0 {
            self.ping_interval = Some(Duration::from_secs(u64::from(result.ping)));
            self.arm_ping_check();
        } else {
            self.ping_interval = None;
            self.ping_deadline = None;
        }
    }

    fn connect_error(&mut self, e: gyre_protocol::Error) {
        if self.state != State::Connecting {
            return;
        }
        if e.code == gyre_protocol::Error::TOKEN_EXPIRED.code {
            self.refresh_required = true;
        }
        let code = e.code;
        let reason = e.message.to_string();
        if code < 100 || e.temporary || code == gyre_protocol::Error::TOKEN_EXPIRED.code {
            self.emit(ClientEvent::Error(ClientError::Server(e)));
            self.do_disconnect(code, reason, true);
        } else {
            self.do_disconnect(code, reason, false);
        }
    }

    fn refresh_error(&mut self, e: gyre_protocol::Error) {
        if self.state != State::Connected {
            return;
        }
        if e.code < 100 || e.temporary {
            self.emit(ClientEvent::Error(ClientError::Server(e)));
            self.schedule_refresh_retry();
        } else {
            let reason = e.message.to_string();
            self.do_disconnect(e.code, reason, false);
        }
    }

    fn process_server_subs(&mut self, subs: HashMap<String, proto::SubscribeResult>) {
        let subs: BTreeMap<String, proto::SubscribeResult> = subs.into_iter().collect();
        for (channel, r) in &subs {
            self.server_subs.insert(
                channel.clone(),
                ServerSub {
                    recoverable: r.recoverable,
                    offset: r.offset,
                    epoch: r.epoch.clone(),
                },
            );
            self.emit(ClientEvent::ServerSubscribed(
                SubscribedContext::from_result(channel, r),
            ));
        }
        for (channel, r) in subs.iter() {
            if r.recovered {
                for publication in &r.publications {
                    self.server_publication(channel, publication.clone());
                }
            }
        }
        let gone: Vec<String> = self
            .server_subs
            .keys()
            .filter(|c| !subs.contains_key(*c))
            .cloned()
            .collect();
        for channel in gone {
            self.server_subs.remove(&channel);
            self.emit(ClientEvent::ServerUnsubscribed { channel });
        }
    }

    fn server_publication(&mut self, channel: &str, publication: proto::Publication) {
        if let Some(s) = self.server_subs.get_mut(channel) {
            if publication.offset > 0 {
                s.offset = publication.offset;
            }
            self.emit(ClientEvent::ServerPublication {
                channel: channel.to_owned(),
                publication: Publication::from(publication),
            });
        }
    }

    fn handle_push(&mut self, push: proto::Push) {
        let channel = push.channel;
        if let Some(publication) = push.r#pub {
            if self.subs.contains_key(&channel) {
                self.sub_publication(&channel, publication);
            } else {
                self.server_publication(&channel, publication);
            }
        } else if let Some(message) = push.message {
            self.emit(ClientEvent::Message(message.data));
        } else if let Some(join) = push.join {
            let info = ClientInfo::from(join.info.unwrap_or_default());
            if self.subs.contains_key(&channel) {
                self.emit_sub(&channel, SubscriptionEvent::Join(info));
            } else if self.server_subs.contains_key(&channel) {
                self.emit(ClientEvent::ServerJoin { channel, info });
            }
        } else if let Some(leave) = push.leave {
            let info = ClientInfo::from(leave.info.unwrap_or_default());
            if self.subs.contains_key(&channel) {
                self.emit_sub(&channel, SubscriptionEvent::Leave(info));
            } else if self.server_subs.contains_key(&channel) {
                self.emit(ClientEvent::ServerLeave { channel, info });
            }
        } else if let Some(unsubscribe) = push.unsubscribe {
            if self.subs.contains_key(&channel) {
                if unsubscribe.code < 2500 {
                    self.sub_set_unsubscribed(
                        &channel,
                        unsubscribe.code,
                        unsubscribe.reason,
                        false,
                    );
                } else {
                    if unsubscribe.code == gyre_protocol::Unsubscribe::STATE_INVALIDATED.code
                        && let Some(sub) = self.subs.get_mut(&channel)
                    {
                        sub.invalidate();
                    }
                    self.sub_set_subscribing(&channel, unsubscribe.code, unsubscribe.reason);
                }
            } else if self.server_subs.remove(&channel).is_some() {
                self.emit(ClientEvent::ServerUnsubscribed { channel });
            }
        } else if let Some(s) = push.subscribe {
            self.server_subs.insert(
                channel.clone(),
                ServerSub {
                    recoverable: s.recoverable,
                    offset: s.offset,
                    epoch: s.epoch.clone(),
                },
            );
            self.emit(ClientEvent::ServerSubscribed(SubscribedContext {
                channel,
                recoverable: s.recoverable,
                positioned: s.positioned,
                stream_position: (s.positioned || s.recoverable).then_some(StreamPosition {
                    offset: s.offset,
                    epoch: s.epoch,
                }),
                was_recovering: false,
                recovered: false,
                data: s.data,
            }));
        } else if let Some(d) = push.disconnect {
            let reconnect = reconnectable(d.code);
            self.do_disconnect(d.code, d.reason, reconnect);
        }
        // `connect` (unidirectional only) and `refresh` pushes need no action.
    }
}
