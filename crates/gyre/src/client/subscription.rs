//! Subscriptions of one connection: registering, recovery, delivery and removal.
//!
//! A subscription is registered in the hub before its history is read and buffers the
//! live publications that arrive meanwhile. Activation writes the subscribe reply (with
//! any recovered publications) and then the buffered ones, under the client's state
//! lock, so a client never sees a live publication before its subscribe reply nor a gap
//! or duplicate between recovered and live publications.

use std::sync::Arc;

use bytes::Bytes;
use gyre_protocol::{Protocol, proto};
use tokio::time::Instant;

use super::timers::deadline_of;
use super::{ClientInner, Status, get_handler, unix_now};
use crate::broker::{BrokerError, HistoryOptions, Publication, StreamPosition};
use crate::broker::{KeyMode, MapChannelOptions, MapPublishOptions};
use crate::events::{
    DeltaType, HandlerError, MapPresence, RecoveryMode, SubscribeOptions, UnsubscribeEvent,
};
use crate::filter::TagsFilter;
use crate::hub::{Frames, SubShared};
use crate::metrics::{Action, FrameType, Message};
use crate::queue::{PushOutcome, WriteNow};
use crate::recovery::{PositionCheck, cache_recovery, check_position, is_recovered};
use crate::wire::{encode_push, encode_reply, publication_to_proto};
use crate::{Disconnect, Error, Unsubscribe};

/// One subscription of a connection.
#[derive(Debug)]
pub(crate) struct SubState {
    pub(crate) shared: Arc<SubShared>,
    pub(crate) server_side: bool,
    pub(crate) emit_presence: bool,
    pub(crate) emit_join_leave: bool,
    pub(crate) chan_info: Bytes,
    /// Last position delivered (positioned subscriptions).
    pub(crate) position: StreamPosition,
    /// Live publications buffered while the subscribe is in flight.
    pub(crate) buffer: Option<Vec<(Publication, StreamPosition, Frames)>>,
    /// Delta subscription: the client holds the previous publication of the stream, so
    /// the next one may go as a delta against it.
    pub(crate) delta_ready: bool,
    pub(crate) expire_at: i64,
    pub(crate) expire_deadline: Option<Instant>,
    pub(crate) client_side_refresh: bool,
    /// A map subscription: its changes come from the map broker.
    pub(crate) map: bool,
    /// A shared-poll subscription: its keys are delivered by the shared-poll manager.
    pub(crate) shared_poll: bool,
    /// Map channels listing this subscription's client and user.
    pub(crate) map_presence: Option<Box<(Option<MapPresence>, Option<MapPresence>)>>,
    /// The map options of this map channel when the client's key (its id) is removed
    /// from it at the end of the subscription (`map.remove_client_on_unsubscribe`).
    pub(crate) map_cleanup: Option<Box<MapChannelOptions>>,
}

/// How a subscription should start.
pub(crate) struct SubscribeRequest {
    pub(crate) channel: String,
    pub(crate) options: SubscribeOptions,
    pub(crate) server_side: bool,
    /// Recover from this position.
    pub(crate) recover: Option<StreamPosition>,
    /// Fail with 112 instead of answering `recovered: false`.
    pub(crate) reject_unrecovered: bool,
    /// The client asked for fossil deltas.
    pub(crate) delta: Option<DeltaType>,
    /// The client's tags filter, checked against `options.allow_tags_filter` already.
    pub(crate) tags_filter: Option<TagsFilter>,
}

impl SubState {
    /// The form of a publication to send next, given what the client holds; `None` for
    /// one the subscriber filtered out (the client then lacks it as a delta base).
    fn pick(&mut self, frames: &Frames) -> Option<Bytes> {
        if frames.filtered {
            self.delta_ready = false;
            return None;
        }
        if self.shared.delta {
            let ready = std::mem::replace(&mut self.delta_ready, true);
            if ready && let Some(delta) = &frames.delta {
                return Some(delta.clone());
            }
        }
        Some(frames.full.clone())
    }
}

pub(crate) fn map_presence_of(
    opts: &SubscribeOptions,
) -> Option<Box<(Option<MapPresence>, Option<MapPresence>)>> {
    (opts.map_clients_presence.is_some() || opts.map_users_presence.is_some()).then(|| {
        Box::new((
            opts.map_clients_presence.clone(),
            opts.map_users_presence.clone(),
        ))
    })
}

pub(crate) fn broker_error(e: BrokerError) -> Error {
    match e {
        BrokerError::UnrecoverablePosition => Error::UNRECOVERABLE_POSITION,
        BrokerError::BadRequest(_) => Error::BAD_REQUEST,
        BrokerError::NotAvailable(_) => Error::NOT_AVAILABLE,
        other => {
            tracing::warn!(error = %other, "broker call failed");
            Error::INTERNAL
        }
    }
}

impl ClientInner {
    /// Called by the hub for publications this connection cannot take on the fast path:
    /// positioned subscriptions and subscriptions still being set up.
    pub(crate) fn deliver_publication(
        self: &Arc<Self>,
        channel: &str,
        publication: &Publication,
        position: &StreamPosition,
        frames: &Frames,
        when: WriteNow,
    ) -> PushOutcome {
        let mut state = self.state.lock();
        let Some(sub) = state.subs.get_mut(channel) else {
            return PushOutcome::Closed;
        };
        if let Some(buffer) = &mut sub.buffer {
            buffer.push((publication.clone(), position.clone(), frames.clone()));
            return PushOutcome::Queued;
        }
        // A publication made without history has no position to check.
        if !sub.shared.positioned || publication.offset == 0 {
            // It becomes the client's delta base but is not the stream's: the next
            // publication goes in full.
            sub.delta_ready = false;
            if frames.filtered {
                return PushOutcome::Queued;
            }
            return self
                .outbound
                .push_now(frames.full.clone(), FrameType::PushPublication, when);
        }
        match check_position(&mut sub.position, publication.offset, &position.epoch) {
            PositionCheck::Deliver => match sub.pick(frames) {
                Some(bytes) => self
                    .outbound
                    .push_now(bytes, FrameType::PushPublication, when),
                None => PushOutcome::Queued,
            },
            PositionCheck::Duplicate => PushOutcome::Queued,
            PositionCheck::InsufficientState => {
                drop(state);
                // The hub's lock is held by our caller: finish elsewhere.
                let client = self.clone();
                let channel = channel.to_owned();
                tokio::spawn(async move {
                    if let Err(d) = client.insufficient_state(&channel).await {
                        client.outbound.close(d);
                    }
                });
                PushOutcome::Queued
            }
        }
    }

    /// Checks the limits of a new subscription.
    pub(crate) fn validate_channel(&self, channel: &str) -> Result<(), Error> {
        let config = &self.node.config;
        if config.channel_max_length > 0 && channel.len() > config.channel_max_length {
            return Err(Error::BAD_REQUEST);
        }
        let state = self.state.lock();
        if state.subs.contains_key(channel) {
            return Err(Error::ALREADY_SUBSCRIBED);
        }
        if config.client_channel_limit > 0 && state.subs.len() >= config.client_channel_limit {
            return Err(Error::LIMIT_EXCEEDED);
        }
        Ok(())
    }

    /// Registers a subscription (buffering) and computes its subscribe result. The caller
    /// must [`ClientInner::activate`] it after queueing the reply, or
    /// [`ClientInner::abort_subscription`] it.
    pub(crate) async fn prepare_subscription(
        self: &Arc<Self>,
        req: SubscribeRequest,
    ) -> Result<proto::SubscribeResult, HandlerError> {
        let opts = &req.options;
        let recoverable = opts.enable_recovery;
        let positioned = recoverable || opts.enable_positioning;
        let delta = req
            .delta
            .is_some_and(|d| opts.allowed_delta_types.contains(&d));
        let shared = SubShared::new(
            positioned,
            opts.push_join_leave,
            delta,
            req.tags_filter.clone(),
        );
        let now = unix_now();
        if opts.expire_at > 0 && opts.expire_at <= now {
            return Err(Error::EXPIRED.into());
        }
        {
            let mut state = self.state.lock();
            if state.status != Status::Connected && !req.server_side {
                return Err(Disconnect::BAD_REQUEST.into());
            }
            if state.subs.contains_key(&req.channel) {
                return Err(Error::ALREADY_SUBSCRIBED.into());
            }
            state.subs.insert(
                req.channel.clone(),
                SubState {
                    shared: shared.clone(),
                    server_side: req.server_side,
                    emit_presence: opts.emit_presence,
                    emit_join_leave: opts.emit_join_leave,
                    chan_info: opts.channel_info.clone(),
                    position: StreamPosition::default(),
                    buffer: Some(Vec::new()),
                    delta_ready: false,
                    expire_at: opts.expire_at,
                    expire_deadline: (opts.expire_at > 0).then(|| {
                        let at = deadline_of(opts.expire_at);
                        if opts.client_side_refresh {
                            at + self.node.config.client_expired_sub_close_delay
                        } else {
                            at
                        }
                    }),
                    client_side_refresh: opts.client_side_refresh,
                    map: false,
                    shared_poll: false,
                    map_presence: map_presence_of(opts),
                    map_cleanup: None,
                },
            );
        }
        match self.register_subscription(&req, shared).await {
            Ok(result) => Ok(result),
            Err(e) => {
                self.abort_subscription(&req.channel).await;
                Err(e)
            }
        }
    }

    async fn register_subscription(
        self: &Arc<Self>,
        req: &SubscribeRequest,
        shared: Arc<SubShared>,
    ) -> Result<proto::SubscribeResult, HandlerError> {
        let node = &self.node;
        let opts = &req.options;
        let channel = req.channel.as_str();
        let metrics = &node.metrics;
        metrics.action(Action::AddSubscription);
        let stats = metrics.subscriptions(self.named_client());
        stats.accepted.inc();
        stats.inflight.add(1);
        if node.hub.add_subscriber(channel, self, shared.clone()) {
            metrics.action(Action::BrokerSubscribe);
            node.broker.subscribe(channel).await.map_err(broker_error)?;
        }
        let mut result = proto::SubscribeResult {
            data: opts.data.clone(),
            delta: shared.delta,
            ..Default::default()
        };
        let mut delta_ready = false;
        if opts.expire_at > 0 && opts.client_side_refresh {
            result.expires = true;
            result.ttl = (opts.expire_at - unix_now()).max(0) as u32;
        }
        if shared.positioned {
            let recoverable = opts.enable_recovery;
            result.positioned = true;
            result.recoverable = recoverable;
            // Automatic cache recovery sends the latest publication even to a subscriber
            // that did not ask to recover (a fresh one, a server-side one).
            let auto = opts.recovery_mode == RecoveryMode::Cache && opts.auto_cache_recover;
            let since = req
                .recover
                .clone()
                .or_else(|| auto.then(StreamPosition::default));
            let position = match since.as_ref().filter(|_| recoverable) {
                Some(since) => {
                    result.was_recovering = true;
                    let cache = opts.recovery_mode == RecoveryMode::Cache;
                    let (recovered, top, publications) = if cache {
                        self.recover_cache(channel, since, &shared).await?
                    } else {
                        self.recover(channel, since, &shared).await?
                    };
                    self.node.metrics.recovered(recovered, publications.len());
                    if !recovered && req.reject_unrecovered {
                        return Err(Error::UNRECOVERABLE_POSITION.into());
                    }
                    result.recovered = recovered;
                    if recovered {
                        // The client reaches the top by applying the publications; in
                        // cache mode it jumps there (its position may be far behind or
                        // from another epoch).
                        result.offset = if cache { top.offset } else { since.offset };
                        result.publications =
                            publications.iter().map(publication_to_proto).collect();
                        if shared.delta && !result.publications.is_empty() {
                            delta_chain(self.protocol(), &mut result.publications);
                            delta_ready = true;
                        }
                    } else {
                        result.offset = top.offset;
                    }
                    result.epoch = top.epoch.clone();
                    top
                }
                None => {
                    let top = node
                        .broker
                        .history(channel, HistoryOptions::new(0))
                        .await
                        .map_err(broker_error)?
                        .position;
                    result.offset = top.offset;
                    result.epoch = top.epoch.clone();
                    top
                }
            };
            if let Some(sub) = self.state.lock().subs.get_mut(channel) {
                sub.position = position;
                sub.delta_ready = delta_ready;
            }
        }
        if opts.emit_presence {
            node.metrics.action(Action::AddPresence);
            let info = self.client_info(opts.channel_info.clone());
            node.presence
                .add_presence(channel, &self.id, info)
                .await
                .map_err(|e| {
                    tracing::warn!(error = %e, "presence add failed");
                    Error::INTERNAL
                })?;
        }
        Ok(result)
    }

    /// Cache-mode recovery: the newest publication (that the subscriber's filter lets
    /// through): (recovered, stream top, the publication if the client lacks it).
    async fn recover_cache(
        &self,
        channel: &str,
        since: &StreamPosition,
        shared: &SubShared,
    ) -> Result<(bool, StreamPosition, Vec<Publication>), HandlerError> {
        self.node.metrics.action(Action::HistoryRecover);
        // Without a filter the newest publication is the answer; with one, look back as
        // far as stream recovery would.
        let limit = if shared.tags_filter.is_none() {
            1
        } else {
            match self.node.config.recovery_max_publication_limit {
                0 => -1,
                n => n as i32,
            }
        };
        let history = self
            .node
            .broker
            .history(channel, HistoryOptions::new(limit).reverse(true))
            .await
            .map_err(broker_error)?;
        let newest = history.publications.first();
        let matching = history.publications.iter().find(|p| !shared.filters_out(p));
        let (recovered, publication) = cache_recovery(newest, matching, &history.position, since);
        let publications = publication.into_iter().cloned().collect();
        Ok((recovered, history.position, publications))
    }

    /// Reads what the client missed since `since`: (recovered, stream top, publications
    /// that pass the subscriber's tags filter).
    async fn recover(
        &self,
        channel: &str,
        since: &StreamPosition,
        shared: &SubShared,
    ) -> Result<(bool, StreamPosition, Vec<Publication>), HandlerError> {
        let limit = self.node.config.recovery_max_publication_limit;
        let limit = if limit == 0 { -1 } else { limit as i32 };
        self.node.metrics.action(Action::HistoryRecover);
        let read = self
            .node
            .broker
            .history(channel, HistoryOptions::new(limit).since(since.clone()))
            .await;
        match read {
            Ok(mut history) => {
                let recovered = is_recovered(&history, since);
                // Filtered publications only count for continuity (checked above).
                if shared.tags_filter.is_some() {
                    history.publications.retain(|p| !shared.filters_out(p));
                }
                Ok((recovered, history.position, history.publications))
            }
            // The stream was lost or recreated: the client cannot catch up.
            Err(BrokerError::UnrecoverablePosition) => {
                let top = self
                    .node
                    .broker
                    .history(channel, HistoryOptions::new(0))
                    .await
                    .map_err(broker_error)?
                    .position;
                Ok((false, top, Vec::new()))
            }
            Err(e) => Err(broker_error(e).into()),
        }
    }

    /// Queues `first` (the reply or push announcing the subscriptions), then the
    /// publications buffered for `channels`, and switches them to live delivery.
    pub(crate) fn activate(
        self: &Arc<Self>,
        first: &proto::Reply,
        channels: &[String],
    ) -> Result<(), Disconnect> {
        let bytes =
            encode_reply(self.protocol(), first).ok_or(Disconnect::INAPPROPRIATE_PROTOCOL)?;
        let mut insufficient = Vec::new();
        {
            let mut state = self.state.lock();
            self.outbound.push(bytes, FrameType::of_reply(first));
            for channel in channels {
                let Some(sub) = state.subs.get_mut(channel) else {
                    continue;
                };
                let buffered = sub.buffer.take().unwrap_or_default();
                for (publication, position, frames) in buffered {
                    if !sub.shared.positioned || publication.offset == 0 {
                        sub.delta_ready = false;
                        if !frames.filtered {
                            self.outbound.push(frames.full, FrameType::PushPublication);
                        }
                        continue;
                    }
                    match check_position(&mut sub.position, publication.offset, &position.epoch) {
                        PositionCheck::Deliver => {
                            if let Some(bytes) = sub.pick(&frames) {
                                self.outbound.push(bytes, FrameType::PushPublication);
                            }
                        }
                        PositionCheck::Duplicate => {}
                        PositionCheck::InsufficientState => {
                            insufficient.push(channel.clone());
                            break;
                        }
                    }
                }
                sub.shared.set_subscribed();
            }
        }
        for channel in insufficient {
            let me = self.clone();
            tokio::spawn(async move {
                if let Err(d) = me.insufficient_state(&channel).await {
                    me.outbound.close(d);
                }
            });
        }
        Ok(())
    }

    /// Publishes the join events of freshly activated subscriptions.
    pub(crate) async fn announce_joins(&self, channels: &[String]) {
        for channel in channels {
            self.add_map_presence(channel).await;
        }
        for channel in channels {
            let chan_info = {
                let state = self.state.lock();
                match state.subs.get(channel) {
                    Some(sub) if sub.emit_join_leave => sub.chan_info.clone(),
                    _ => continue,
                }
            };
            let info = self.client_info(chan_info);
            match self.node.broker.publish_join(channel, info).await {
                Ok(()) => self.node.metrics.sent(Message::Join),
                Err(e) => tracing::warn!(channel = %channel, error = %e, "join publish failed"),
            }
        }
    }

    /// Adds (or refreshes) this connection in the map presence channels of `channel`:
    /// `if_new` with a TTL refresh, so a refresh makes no change event (upstream).
    pub(crate) async fn add_map_presence(&self, channel: &str) {
        let (presence, chan_info) = {
            let state = self.state.lock();
            match state.subs.get(channel) {
                Some(sub) if sub.map_presence.is_some() => {
                    (sub.map_presence.clone(), sub.chan_info.clone())
                }
                _ => return,
            }
        };
        let Some(presence) = presence else { return };
        let (clients, users) = *presence;
        let broker = &self.node.map_broker;
        let options = |p: &MapPresence| {
            let mut o = MapPublishOptions::new(p.options.clone());
            o.key_mode = KeyMode::IfNew;
            o.refresh_ttl_on_suppress = true;
            o
        };
        if let Some(p) = clients {
            let mut o = options(&p);
            o.client_info = Some(self.client_info(chan_info));
            if let Err(e) = broker.publish(&p.channel, &self.id, Bytes::new(), o).await {
                tracing::warn!(channel = %p.channel, error = %e, "map client presence failed");
            }
        }
        let user = self.user();
        if let Some(p) = users.filter(|_| !user.is_empty())
            && let Err(e) = broker
                .publish(&p.channel, &user, Bytes::new(), options(&p))
                .await
        {
            tracing::warn!(channel = %p.channel, error = %e, "map user presence failed");
        }
    }

    /// Rolls back a subscription that failed before activation.
    pub(crate) async fn abort_subscription(&self, channel: &str) {
        let removed = self.state.lock().subs.remove(channel);
        if let Some(sub) = removed {
            let hub = &self.node.hub;
            self.node
                .metrics
                .subscriptions(self.named_client())
                .inflight
                .add(-1);
            if hub.remove_subscriber(channel, self.seq) {
                let _ = if sub.map {
                    self.node.map_broker.unsubscribe(channel).await
                } else {
                    self.node.broker.unsubscribe(channel).await
                };
            }
            if sub.emit_presence {
                let user = self.user();
                let _ = self
                    .node
                    .presence
                    .remove_presence(channel, &self.id, &user)
                    .await;
            }
        }
    }

    /// Everything that follows the end of a subscription: hub, broker, presence,
    /// leave event and the application's unsubscribe handler.
    pub(crate) async fn cleanup_subscription(&self, channel: &str, sub: &SubState, code: u32) {
        let node = &self.node;
        node.metrics.action(Action::RemoveSubscription);
        node.metrics
            .subscriptions(self.named_client())
            .inflight
            .add(-1);
        if sub.shared_poll {
            node.shared_poll.remove_connection(channel, self.seq);
        }
        if node.hub.remove_subscriber(channel, self.seq) {
            node.metrics.action(Action::BrokerUnsubscribe);
            let unsubscribed = if sub.map {
                node.map_broker.unsubscribe(channel).await
            } else {
                node.broker.unsubscribe(channel).await
            };
            if let Err(e) = unsubscribed {
                tracing::warn!(channel = %channel, error = %e, "broker unsubscribe failed");
            }
        }
        let active = sub.buffer.is_none();
        // The client entry goes at once; user entries expire by TTL (reconnects of the
        // same user do not flap).
        if let Some(p) = sub.map_presence.as_ref().and_then(|p| p.0.as_ref())
            && active
        {
            let options = MapPublishOptions::new(p.options.clone());
            if let Err(e) = node.map_broker.remove(&p.channel, &self.id, options).await {
                tracing::warn!(channel = %p.channel, error = %e, "map client presence remove failed");
            }
        }
        // The key this client wrote under its own id (a cursor, say) goes with it; a
        // subscription that never went live wrote nothing.
        if let Some(map) = sub.map_cleanup.as_deref()
            && active
        {
            let options = MapPublishOptions::new(map.clone());
            if let Err(e) = node.map_broker.remove(channel, &self.id, options).await {
                tracing::warn!(channel = %channel, error = %e, "map key remove on unsubscribe failed");
            }
        }
        if sub.emit_presence {
            node.metrics.action(Action::RemovePresence);
            let user = self.user();
            if let Err(e) = node
                .presence
                .remove_presence(channel, &self.id, &user)
                .await
            {
                tracing::warn!(channel = %channel, error = %e, "presence remove failed");
            }
        }
        if sub.emit_join_leave && active {
            let info = self.client_info(sub.chan_info.clone());
            match node.broker.publish_leave(channel, info).await {
                Ok(()) => node.metrics.sent(Message::Leave),
                Err(e) => tracing::warn!(channel = %channel, error = %e, "leave publish failed"),
            }
        }
        if let Some(h) = get_handler!(self, unsubscribe) {
            h(
                self.client(),
                UnsubscribeEvent {
                    channel: channel.to_owned(),
                    code,
                    server_side: sub.server_side,
                },
            );
        }
    }

    /// Removes a subscription the client asked to end.
    pub(crate) async fn unsubscribe_channel(&self, channel: &str, code: u32) -> Option<()> {
        let sub = self.state.lock().subs.remove(channel)?;
        self.cleanup_subscription(channel, &sub, code).await;
        Some(())
    }

    /// Removes a subscription on the server's initiative and tells the client.
    pub(crate) async fn server_unsubscribe(&self, channel: &str, unsubscribe: Unsubscribe) {
        let sub = {
            let mut state = self.state.lock();
            let Some(sub) = state.subs.remove(channel) else {
                return;
            };
            // Under the lock, so no publication of the channel follows the push.
            let push = proto::Push {
                channel: channel.to_owned(),
                unsubscribe: Some(unsubscribe.to_proto()),
                ..Default::default()
            };
            if let Some(bytes) = encode_push(self.protocol(), &push) {
                self.outbound.push(bytes, FrameType::PushUnsubscribe);
            }
            sub
        };
        self.node.metrics.server_unsubscribe(unsubscribe.code);
        self.cleanup_subscription(channel, &sub, unsubscribe.code)
            .await;
    }

    /// Subscribes this connection server-side at runtime (a `subscribe` push).
    pub(crate) async fn server_subscribe(
        self: &Arc<Self>,
        channel: &str,
        options: SubscribeOptions,
    ) -> Result<(), Error> {
        {
            let state = self.state.lock();
            if state.status != Status::Connected || state.subs.contains_key(channel) {
                return Ok(());
            }
            let limit = self.node.config.client_channel_limit;
            if limit > 0 && state.subs.len() >= limit {
                drop(state);
                self.outbound.close(Disconnect::CHANNEL_LIMIT);
                return Ok(());
            }
        }
        let req = SubscribeRequest {
            channel: channel.to_owned(),
            // `SubscribeOptions::recover_since`: resume as if the client asked to recover.
            recover: options.recover_since.clone(),
            options,
            server_side: true,
            reject_unrecovered: false,
            delta: None,
            tags_filter: None,
        };
        let result = match self.prepare_subscription(req).await {
            Ok(r) => r,
            Err(HandlerError::Error(e)) => return Err(e),
            Err(HandlerError::Disconnect(d)) => {
                self.outbound.close(d);
                return Ok(());
            }
        };
        let push = proto::Reply {
            push: Some(proto::Push {
                channel: channel.to_owned(),
                subscribe: Some(proto::Subscribe {
                    recoverable: result.recoverable,
                    epoch: result.epoch,
                    offset: result.offset,
                    positioned: result.positioned,
                    data: result.data,
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        let channels = [channel.to_owned()];
        if let Err(d) = self.activate(&push, &channels) {
            self.outbound.close(d);
            return Ok(());
        }
        self.announce_joins(&channels).await;
        Ok(())
    }
}

/// Turns recovered publications of a delta subscription into the chain the client applies:
/// the first in full, each next one as a fossil delta against the one before when that is
/// smaller. On JSON every `data` becomes a string (deltas that are not UTF-8 go in full).
fn delta_chain(protocol: Protocol, publications: &mut [proto::Publication]) {
    let mut prev: Option<Bytes> = None;
    for p in publications.iter_mut() {
        let full = std::mem::take(&mut p.data);
        let delta = prev
            .as_ref()
            .map(|prev| gyre_protocol::fossil::create(prev, &full))
            .filter(|d| d.len() < full.len());
        p.data = match (protocol, delta) {
            (Protocol::Protobuf, Some(delta)) => {
                p.delta = true;
                Bytes::from(delta)
            }
            (Protocol::Json, Some(delta)) if std::str::from_utf8(&delta).is_ok() => {
                p.delta = true;
                gyre_protocol::json_string(&delta).unwrap_or_default()
            }
            (Protocol::Protobuf, _) => full.clone(),
            // Not UTF-8: left as it is, and the encoder refuses it as for any subscriber.
            (Protocol::Json, _) => {
                gyre_protocol::json_string(&full).unwrap_or_else(|| full.clone())
            }
        };
        prev = Some(full);
    }
}
