//! `connect`: authenticate, register, subscribe server-side channels, answer.

use std::collections::HashMap;
use std::sync::Arc;

use gyre_protocol::proto;

use crate::broker::StreamPosition;
use crate::client::subscription::SubscribeRequest;
use crate::client::{Client, ClientInner, Status, unix_now};
use crate::events::{ConnectEvent, ConnectReply, HandlerError};
use crate::metrics::{Action, ClientMethod};
use crate::session::ConnectRefused;
use crate::{Disconnect, Error};

impl ClientInner {
    pub(crate) async fn handle_connect(
        self: &Arc<Self>,
        id: u32,
        req: proto::ConnectRequest,
    ) -> Result<(), Disconnect> {
        let (result, channels) = match self.connect(req).await {
            Ok(accepted) => accepted,
            Err(HandlerError::Error(e)) => return self.refuse_connect(id, &e),
            Err(HandlerError::Disconnect(d)) => return Err(d),
        };
        let reply = proto::Reply {
            id,
            connect: Some(result),
            ..Default::default()
        };
        self.activate(&reply, &channels)?;
        self.announce_joins(&channels).await;
        Ok(())
    }

    /// The connect of a unidirectional connection: the result goes out as the first
    /// push, a refusal becomes a disconnect (mapped from error codes as upstream).
    pub(crate) async fn connect_unidirectional(
        self: Arc<Self>,
        req: proto::ConnectRequest,
    ) -> Result<(), ConnectRefused> {
        let started = std::time::Instant::now();
        let outcome = if self.state.lock().status == Status::Connecting {
            self.connect(req).await
        } else {
            Err(HandlerError::Disconnect(Disconnect::BAD_REQUEST))
        };
        self.node
            .metrics
            .command(ClientMethod::Connect)
            .observe_since(started);
        let refused = match outcome {
            Ok((r, channels)) => {
                let push = proto::Push {
                    connect: Some(proto::Connect {
                        client: r.client,
                        version: r.version,
                        data: r.data,
                        subs: r.subs,
                        expires: r.expires,
                        ttl: r.ttl,
                        ping: r.ping,
                        pong: r.pong,
                        session: r.session,
                        node: r.node,
                        time: r.time,
                    }),
                    ..Default::default()
                };
                let reply = proto::Reply {
                    push: Some(push),
                    ..Default::default()
                };
                match self.activate(&reply, &channels) {
                    Ok(()) => {
                        self.announce_joins(&channels).await;
                        return Ok(());
                    }
                    Err(d) => HandlerError::Disconnect(d),
                }
            }
            Err(e) => e,
        };
        self.state.lock().status = Status::Failed;
        Err(match refused {
            HandlerError::Error(e) => {
                self.node.metrics.reply_error(ClientMethod::Connect, e.code);
                ConnectRefused {
                    code: e.code,
                    message: e.message.to_string(),
                    disconnect: self.node.config.unidirectional_disconnect(e.code),
                }
            }
            HandlerError::Disconnect(d) => ConnectRefused {
                code: d.code,
                message: d.reason.to_string(),
                disconnect: d,
            },
        })
    }

    /// Authenticates, registers and subscribes the server-side channels: the connect
    /// result and the channels to activate once it is queued.
    async fn connect(
        self: &Arc<Self>,
        req: proto::ConnectRequest,
    ) -> Result<(proto::ConnectResult, Vec<String>), HandlerError> {
        let event = ConnectEvent {
            client_id: self.id.clone(),
            transport: self.transport.name,
            token: req.token.clone(),
            data: req.data.clone(),
            name: req.name.clone(),
            version: req.version.clone(),
            headers: req.headers.clone(),
            channels: req.subs.keys().cloned().collect(),
            request_headers: self.take_request_headers(),
            protobuf: self.protocol() == gyre_protocol::Protocol::Protobuf,
        };
        let reply = match self.node.hooks.connecting() {
            Some(h) => h(self.client(), event).await,
            None => Ok(ConnectReply::default()),
        };
        let reply = reply?;
        let Some(credentials) = reply.credentials else {
            tracing::debug!(client = %self.id, "client credentials not found");
            return Err(Disconnect::BAD_REQUEST.into());
        };
        let config = &self.node.config;
        if config.user_connection_limit > 0
            && !credentials.user.is_empty()
            && self.node.hub.user_connection_count(&credentials.user)
                >= config.user_connection_limit
        {
            return Err(Disconnect::CONNECTION_LIMIT.into());
        }
        let now = unix_now();
        if credentials.expire_at > 0 && credentials.expire_at <= now {
            return Err(Error::EXPIRED.into());
        }
        if config.client_channel_limit > 0
            && reply.subscriptions.len() > config.client_channel_limit
        {
            return Err(Disconnect::CHANNEL_LIMIT.into());
        }
        {
            let mut state = self.state.lock();
            state.status = Status::Connected;
            state.user = credentials.user.clone();
            state.info = credentials.info.clone();
            state.expire_at = credentials.expire_at;
            state.client_side_refresh = reply.client_side_refresh;
            let mut timers = std::mem::take(&mut state.timers);
            self.start_timers(
                &mut timers,
                credentials.expire_at,
                reply.client_side_refresh,
            );
            state.timers = timers;
        }
        self.node.hub.add_client(self, &credentials.user);
        if let Some(session) = &self.session {
            self.node.hub.add_session(session, self);
        }
        let metrics = &self.node.metrics;
        metrics.action(Action::AddClient);
        let stats = metrics.connection(self.transport.name, &req.name, &req.version);
        stats.accepted.inc();
        stats.inflight.add(1);
        let _ = self.connection_stats.set((stats, !req.name.is_empty()));
        tracing::debug!(client = %self.id, user = %credentials.user, transport = self.transport.name, "client connected");
        if let Some(on_connect) = self.node.hooks.connect() {
            on_connect(Client {
                inner: self.clone(),
            });
        }

        let mut subs = HashMap::new();
        let mut channels = Vec::new();
        for (channel, options) in reply.subscriptions {
            let recover = req
                .subs
                .get(&channel)
                .filter(|s| s.recover)
                .map(|s| StreamPosition::new(s.offset, s.epoch.clone()))
                .or_else(|| options.recover_since.clone());
            let sub = SubscribeRequest {
                channel: channel.clone(),
                options,
                server_side: true,
                recover,
                reject_unrecovered: false,
                // Server-side subscriptions negotiate deltas through `ConnectRequest.subs`.
                delta: req
                    .subs
                    .get(&channel)
                    .and_then(|s| crate::DeltaType::parse(&s.delta)),
                tags_filter: None,
            };
            match self.prepare_subscription(sub).await {
                Ok(result) => {
                    subs.insert(channel.clone(), result);
                    channels.push(channel);
                }
                Err(HandlerError::Disconnect(d)) => return Err(d.into()),
                Err(HandlerError::Error(e)) => {
                    tracing::warn!(client = %self.id, channel = %channel, error = %e, "server-side subscription failed");
                    return Err(Disconnect::INTERNAL_SERVER_ERROR.into());
                }
            }
        }

        let mut result = proto::ConnectResult {
            client: self.id.clone(),
            version: config.version.clone(),
            data: reply.data,
            subs,
            ..Default::default()
        };
        if credentials.expire_at > 0 && reply.client_side_refresh {
            result.expires = true;
            result.ttl = (credentials.expire_at - now).max(0) as u32;
        }
        if self.pings() {
            result.ping = config.ping_interval.as_secs() as u32;
            result.pong = self.expects_pong();
        }
        if config.connect_include_server_time {
            result.time = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as i64);
        }
        if let Some(session) = &self.session {
            result.session = session.to_string();
            result.node = self.node.id.clone();
        } else if self.transport.unidirectional {
            // Upstream's uni connect push carries a session too; it opens nothing here,
            // since only emulated sessions are registered for `/emulation`.
            result.session = self.id.clone();
        }
        Ok((result, channels))
    }

    /// Answers `connect` with an error; the connection then ignores further input.
    fn refuse_connect(&self, id: u32, error: &Error) -> Result<(), Disconnect> {
        self.state.lock().status = Status::Failed;
        self.write_error(id, ClientMethod::Connect, error)
    }
}
