//! Per-connection timers: stale close, ping/pong, expiry, presence refresh and position
//! checks.
//!
//! A connection has no timer task of its own: the transport's task sleeps until
//! [`ClientInner::next_deadline`] and then calls [`ClientInner::on_timer`], which keeps
//! an idle connection down to one sleep entry.

use std::sync::Arc;

use bytes::Bytes;
use gyre_protocol::Protocol;
use tokio::time::{Duration, Instant};

use super::{ClientInner, Status, get_handler, unix_now};
use crate::broker::{HistoryOptions, MapReadStreamOptions, StreamPosition};
use crate::events::{HandlerError, RefreshEvent, RefreshReply, SubRefreshEvent};
use crate::metrics::FrameType;
use crate::{Disconnect, Unsubscribe};

/// Deadlines of one connection.
#[derive(Debug, Default)]
pub(crate) struct Timers {
    /// Close with 3502 if still not connected by then.
    stale: Option<Instant>,
    next_ping: Option<Instant>,
    /// Set while a pong is awaited.
    pong_deadline: Option<Instant>,
    /// When the awaited pong's ping was queued.
    ping_sent: Option<Instant>,
    /// Connection expiry action time.
    expire: Option<Instant>,
    next_presence: Option<Instant>,
    next_position_check: Option<Instant>,
}

impl Timers {
    pub(crate) fn new(stale: Instant) -> Self {
        Timers {
            stale: Some(stale),
            ..Default::default()
        }
    }

    /// A pong arrived: the time since its ping when one was awaited.
    pub(crate) fn pong_received(&mut self) -> Option<Duration> {
        self.pong_deadline.take()?;
        Some(
            self.ping_sent
                .take()
                .map_or(Duration::ZERO, |at| at.elapsed()),
        )
    }
}

/// `Instant` of a Unix-seconds expiry, so that expiry follows the runtime clock.
pub(crate) fn deadline_of(unix_seconds: i64) -> Instant {
    let secs = (unix_seconds - unix_now()).max(0) as u64;
    Instant::now() + Duration::from_secs(secs)
}

fn ping_bytes(protocol: Protocol) -> Bytes {
    match protocol {
        Protocol::Json => Bytes::from_static(b"{}"),
        Protocol::Protobuf => Bytes::from_static(&[0]),
    }
}

enum Action {
    Refresh,
    SubRefresh(String),
    SubExpired(String),
    Presence(Vec<(String, Bytes)>),
    MapPresence(Vec<String>),
    /// (channel, position, map subscription)
    PositionCheck(Vec<(String, StreamPosition, bool)>),
}

impl ClientInner {
    /// Whether this connection pings (and expects pongs).
    pub(crate) fn pings(&self) -> bool {
        !self.node.config.ping_interval.is_zero() && !self.transport.native_ping_pong
    }

    pub(crate) fn expects_pong(&self) -> bool {
        self.pings() && !self.transport.unidirectional && !self.node.config.pong_timeout.is_zero()
    }

    /// Arms the timers of a freshly connected session.
    pub(crate) fn start_timers(&self, timers: &mut Timers, expire_at: i64, client_side: bool) {
        let config = &self.node.config;
        let now = Instant::now();
        timers.stale = None;
        if self.pings() {
            // The first ping at a random moment in [interval/2, interval) spreads the
            // pings of connections that arrived together.
            let interval = config.ping_interval;
            let jitter = rand::random::<f64>() * interval.as_secs_f64() / 2.0;
            timers.next_ping = Some(now + interval / 2 + Duration::from_secs_f64(jitter));
        }
        self.set_expiry(timers, expire_at, client_side);
        timers.next_presence = Some(now + config.presence_update_interval);
        timers.next_position_check = Some(now + config.channel_position_check_delay);
    }

    pub(crate) fn set_expiry(&self, timers: &mut Timers, expire_at: i64, client_side: bool) {
        timers.expire = (expire_at > 0).then(|| {
            let at = deadline_of(expire_at);
            if client_side {
                at + self.node.config.client_expired_close_delay
            } else {
                at
            }
        });
    }

    /// The next moment [`ClientInner::on_timer`] has work.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        let state = self.state.lock();
        let t = &state.timers;
        let subs = state.subs.values().filter_map(|s| s.expire_deadline);
        [
            t.stale,
            t.next_ping,
            t.pong_deadline,
            t.expire,
            t.next_presence,
            t.next_position_check,
        ]
        .into_iter()
        .flatten()
        .chain(subs)
        .min()
    }

    /// Runs what is due.
    pub(crate) async fn on_timer(self: Arc<Self>) -> Result<(), Disconnect> {
        let now = Instant::now();
        let config = self.node.config.clone();
        let mut actions = Vec::new();
        {
            let mut state = self.state.lock();
            match state.status {
                Status::Closed => return Ok(()),
                Status::Connecting | Status::Failed => {
                    if state.timers.stale.is_some_and(|d| d <= now) {
                        return Err(Disconnect::STALE);
                    }
                    return Ok(());
                }
                Status::Connected => {}
            }
            let client_side_refresh = state.client_side_refresh;
            let t = &mut state.timers;
            if t.pong_deadline.is_some_and(|d| d <= now) {
                return Err(Disconnect::NO_PONG);
            }
            if t.next_ping.is_some_and(|d| d <= now) {
                self.outbound
                    .push(ping_bytes(self.protocol()), FrameType::ServerPing);
                if self.expects_pong() {
                    t.pong_deadline = Some(now + config.pong_timeout);
                    t.ping_sent = Some(now);
                }
                t.next_ping = Some(now + config.ping_interval);
            }
            if t.expire.is_some_and(|d| d <= now) {
                if client_side_refresh {
                    return Err(Disconnect::EXPIRED);
                }
                t.expire = None;
                actions.push(Action::Refresh);
            }
            let presence_due = t.next_presence.is_some_and(|d| d <= now);
            if presence_due {
                t.next_presence = Some(now + config.presence_update_interval);
            }
            let position_due = t.next_position_check.is_some_and(|d| d <= now);
            if position_due {
                t.next_position_check = Some(now + config.channel_position_check_delay);
            }
            let mut presence = Vec::new();
            let mut map_presence = Vec::new();
            let mut positions = Vec::new();
            for (channel, sub) in state.subs.iter_mut() {
                if sub.expire_deadline.is_some_and(|d| d <= now) {
                    sub.expire_deadline = None;
                    if sub.client_side_refresh {
                        if sub.server_side {
                            return Err(Disconnect::SUBSCRIPTION_EXPIRED);
                        }
                        actions.push(Action::SubExpired(channel.clone()));
                    } else {
                        actions.push(Action::SubRefresh(channel.clone()));
                    }
                }
                if presence_due && sub.emit_presence && sub.buffer.is_none() {
                    presence.push((channel.clone(), sub.chan_info.clone()));
                }
                if presence_due && sub.map_presence.is_some() && sub.buffer.is_none() {
                    map_presence.push(channel.clone());
                }
                if position_due && sub.shared.positioned && sub.buffer.is_none() {
                    positions.push((channel.clone(), sub.position.clone(), sub.map));
                }
            }
            if !presence.is_empty() {
                actions.push(Action::Presence(presence));
            }
            if !map_presence.is_empty() {
                actions.push(Action::MapPresence(map_presence));
            }
            if !positions.is_empty() {
                actions.push(Action::PositionCheck(positions));
            }
        }
        for action in actions {
            self.run_action(action).await?;
        }
        Ok(())
    }

    async fn run_action(self: &Arc<Self>, action: Action) -> Result<(), Disconnect> {
        match action {
            Action::Refresh => {
                let Some(h) = get_handler!(self, refresh) else {
                    return Err(Disconnect::EXPIRED);
                };
                let event = RefreshEvent {
                    token: String::new(),
                    client_side: false,
                };
                match h(self.client(), event).await {
                    Ok(reply) if !reply.expired => {
                        if reply.expire_at > 0 && reply.expire_at <= unix_now() {
                            return Err(Disconnect::EXPIRED);
                        }
                        let mut state = self.state.lock();
                        state.expire_at = reply.expire_at;
                        if let Some(info) = reply.info {
                            state.info = info;
                        }
                        let mut timers = std::mem::take(&mut state.timers);
                        self.set_expiry(&mut timers, reply.expire_at, false);
                        state.timers = timers;
                        Ok(())
                    }
                    Ok(_) => Err(Disconnect::EXPIRED),
                    Err(HandlerError::Disconnect(d)) => Err(d),
                    // A failing backend must not drop the client: retry soon.
                    Err(HandlerError::Error(_)) => {
                        self.state.lock().timers.expire =
                            Some(Instant::now() + Duration::from_secs(10));
                        Ok(())
                    }
                }
            }
            Action::SubRefresh(channel) => {
                let reply = match get_handler!(self, sub_refresh) {
                    Some(h) => {
                        let event = SubRefreshEvent {
                            channel: channel.clone(),
                            token: String::new(),
                            client_side: false,
                        };
                        match h(self.client(), event).await {
                            Ok(r) => Some(r),
                            Err(HandlerError::Disconnect(d)) => return Err(d),
                            Err(HandlerError::Error(_)) => None,
                        }
                    }
                    None => None,
                };
                match reply {
                    Some(r) if !r.expired && (r.expire_at == 0 || r.expire_at > unix_now()) => {
                        let mut state = self.state.lock();
                        if let Some(sub) = state.subs.get_mut(&channel) {
                            sub.expire_at = r.expire_at;
                            sub.expire_deadline =
                                (r.expire_at > 0).then(|| deadline_of(r.expire_at));
                            if let Some(info) = r.info {
                                sub.chan_info = info;
                            }
                        }
                        Ok(())
                    }
                    _ => self.expire_subscription(&channel).await,
                }
            }
            Action::SubExpired(channel) => self.expire_subscription(&channel).await,
            Action::MapPresence(channels) => {
                for channel in channels {
                    self.add_map_presence(&channel).await;
                }
                Ok(())
            }
            Action::Presence(channels) => {
                for (channel, chan_info) in channels {
                    let info = self.client_info(chan_info);
                    if let Err(e) = self
                        .node
                        .presence
                        .add_presence(&channel, &self.id, info)
                        .await
                    {
                        tracing::warn!(client = %self.id, channel = %channel, error = %e, "presence refresh failed");
                    }
                }
                Ok(())
            }
            Action::PositionCheck(positions) => {
                for (channel, position, map) in positions {
                    // A map subscription's position is in the map broker's stream.
                    let top = if map {
                        self.node
                            .map_broker
                            .read_stream(&channel, MapReadStreamOptions::default())
                            .await
                    } else {
                        self.node
                            .broker
                            .history(&channel, HistoryOptions::new(0))
                            .await
                    };
                    let Ok(top) = top else {
                        continue;
                    };
                    let current = {
                        let state = self.state.lock();
                        state.subs.get(&channel).map(|s| s.position.clone())
                    };
                    // Compare with the position now held: publications may have moved it
                    // while the broker answered; only a position that did not move and
                    // still differs from the top is a loss.
                    if current.as_ref() == Some(&position) && top.position != position {
                        self.insufficient_state(&channel).await?;
                    }
                }
                Ok(())
            }
        }
    }

    /// Runs the position check of every positioned subscription at the next timer tick
    /// (the broker may have missed publications).
    pub(crate) fn check_positions_now(&self) {
        self.state.lock().timers.next_position_check = Some(Instant::now());
        self.outbound.wake();
    }

    /// The server changed this connection's expiry (server API `refresh`).
    pub(crate) fn server_refresh(&self, refresh: &RefreshReply) {
        if refresh.expired {
            self.outbound.close(Disconnect::EXPIRED);
            return;
        }
        let now = unix_now();
        {
            let mut state = self.state.lock();
            if state.status != Status::Connected {
                return;
            }
            state.expire_at = refresh.expire_at;
            if let Some(info) = &refresh.info {
                state.info = info.clone();
            }
            let client_side = state.client_side_refresh;
            let mut timers = std::mem::take(&mut state.timers);
            self.set_expiry(&mut timers, refresh.expire_at, client_side);
            state.timers = timers;
        }
        // The push also wakes the transport, which re-reads the next deadline.
        let _ = self.write_push(gyre_protocol::proto::Push {
            refresh: Some(gyre_protocol::proto::Refresh {
                expires: refresh.expire_at > 0,
                ttl: (refresh.expire_at - now).max(0) as u32,
            }),
            ..Default::default()
        });
    }

    /// An expired subscription: client-side ones are told to resubscribe (2501),
    /// server-side ones end the connection (3006).
    async fn expire_subscription(self: &Arc<Self>, channel: &str) -> Result<(), Disconnect> {
        let server_side = self
            .state
            .lock()
            .subs
            .get(channel)
            .is_some_and(|s| s.server_side);
        if server_side {
            return Err(Disconnect::SUBSCRIPTION_EXPIRED);
        }
        self.server_unsubscribe(channel, Unsubscribe::EXPIRED).await;
        Ok(())
    }

    /// The subscription lost its stream position.
    pub(crate) async fn insufficient_state(
        self: &Arc<Self>,
        channel: &str,
    ) -> Result<(), Disconnect> {
        let server_side = self
            .state
            .lock()
            .subs
            .get(channel)
            .is_some_and(|s| s.server_side);
        if server_side {
            return Err(Disconnect::INSUFFICIENT_STATE);
        }
        self.server_unsubscribe(channel, Unsubscribe::INSUFFICIENT_STATE)
            .await;
        Ok(())
    }
}
