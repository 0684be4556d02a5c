//! Map subscriptions (`subscribe` with `type` 1–3) and map changes (`publish` with `type` 1).
//!
//! A map subscription catches up in phases the client drives: STATE pages (the epoch and
//! offset of the first page are frozen, later pages leave out entries changed after it),
//! then STREAM pages of changes since that offset, then LIVE. Only the first request of
//! a flow runs the subscribe handler; continuations must come within the channel's
//! catch-up timeout (3008 otherwise) and one at a time (113 otherwise). Going live
//! registers the subscription in the hub with a buffer before the last stream read, so
//! that changes made meanwhile are neither lost nor duplicated (the buffer is merged by
//! offset when the subscription is activated).

use std::sync::Arc;

use gyre_protocol::proto;
use tokio::time::Instant;

use crate::broker::{
    MapChannelOptions, MapReadStateOptions, MapReadStreamOptions, Publication, StreamPosition,
};
use crate::client::subscription::{SubState, broker_error};
use crate::client::timers::deadline_of;
use crate::client::{ClientInner, Status, get_handler, unix_now};
use crate::events::{
    HandlerError, MapPublishEvent, SubscribeEvent, SubscribeOptions, SubscriptionType,
};
use crate::filter::TagsFilter;
use crate::hub::SubShared;
use crate::metrics::{Action, ClientMethod, Message};
use crate::wire::publication_to_proto;
use crate::{Disconnect, Error};

const PHASE_LIVE: i32 = 0;
const PHASE_STREAM: i32 = 1;
const PHASE_STATE: i32 = 2;
/// The `type` of every map subscribe result (map, map_clients and map_users alike).
const RESULT_TYPE_MAP: i32 = 1;

/// A map subscription that is still catching up.
#[derive(Debug)]
pub(crate) struct MapFlow {
    options: SubscribeOptions,
    map: MapChannelOptions,
    /// Epoch and offset frozen at the first state page (or where recovery starts).
    position: Option<StreamPosition>,
    /// The stream top when the stream phase began.
    stream_start: Option<u64>,
    /// The flow began as a recovery from a saved position.
    recovering: bool,
    pub(crate) started: Instant,
    /// A page is being computed (concurrent pagination is refused with 113).
    pub(crate) busy: bool,
    /// The client's tags filter (`tf` of the first request): state entries, stream and
    /// live changes it excludes are not sent.
    tags_filter: Option<TagsFilter>,
}

impl MapFlow {
    fn expired(&self, now: Instant) -> bool {
        self.map
            .subscribe_catch_up_timeout
            .is_some_and(|t| now.duration_since(self.started) > t)
    }
}

/// What one step of a flow answers.
enum Step {
    /// A STATE or STREAM page.
    Page(proto::SubscribeResult),
    /// The subscription went live: activate it with this result.
    Live(proto::SubscribeResult),
}

fn to_proto(publications: &[Publication]) -> Vec<proto::Publication> {
    publications.iter().map(publication_to_proto).collect()
}

impl ClientInner {
    pub(crate) async fn handle_map_subscribe(
        self: &Arc<Self>,
        id: u32,
        req: proto::SubscribeRequest,
    ) -> Result<(), Disconnect> {
        let method = ClientMethod::Subscribe;
        let kind = SubscriptionType::from_code(req.r#type);
        let Some(kind) = kind.filter(|k| {
            matches!(
                k,
                SubscriptionType::Map | SubscriptionType::MapClients | SubscriptionType::MapUsers
            )
        }) else {
            // Shared poll is not implemented; unknown types are bad requests.
            let err = if req.r#type == 4 {
                Error::NOT_AVAILABLE
            } else {
                Error::BAD_REQUEST
            };
            return self.write_error(id, method, &err);
        };
        if !(PHASE_LIVE..=PHASE_STATE).contains(&req.phase) {
            return self.write_error(id, method, &Error::BAD_REQUEST);
        }
        let channel = req.channel.clone();
        let step = self.map_step(&req, kind).await;
        // The flow is no longer busy; a failed flow is forgotten (the client restarts).
        {
            let mut state = self.state.lock();
            match &step {
                Ok(Step::Page(_)) => {
                    if let Some(flow) = state.map_flows.get_mut(&channel) {
                        flow.busy = false;
                    }
                }
                Err(HandlerError::Error(e)) if e.code == Error::CONCURRENT_PAGINATION.code => {}
                _ => {
                    state.map_flows.remove(&channel);
                }
            }
        }
        match step {
            Ok(Step::Page(result)) => self.write_reply(&proto::Reply {
                id,
                subscribe: Some(result),
                ..Default::default()
            }),
            Ok(Step::Live(result)) => {
                let reply = proto::Reply {
                    id,
                    subscribe: Some(result),
                    ..Default::default()
                };
                let channels = [channel];
                self.activate(&reply, &channels)?;
                // Presence follows the reply, as upstream's map flow does.
                self.add_map_channel_presence(&channels[0]).await;
                self.announce_joins(&channels).await;
                Ok(())
            }
            Err(HandlerError::Error(e)) => self.write_error(id, method, &e),
            Err(HandlerError::Disconnect(d)) => Err(d),
        }
    }

    /// Finds or starts the flow of `req`, then runs its phase.
    async fn map_step(
        self: &Arc<Self>,
        req: &proto::SubscribeRequest,
        kind: SubscriptionType,
    ) -> Result<Step, HandlerError> {
        let channel = req.channel.as_str();
        let now = Instant::now();
        let continuing = {
            let mut state = self.state.lock();
            // Flows of other channels that timed out are dropped silently.
            state
                .map_flows
                .retain(|ch, flow| ch == channel || !flow.expired(now));
            if state.subs.contains_key(channel) {
                return Err(Error::ALREADY_SUBSCRIBED.into());
            }
            let continuation = !req.cursor.is_empty() || req.phase != PHASE_STATE;
            match state.map_flows.get_mut(channel) {
                Some(flow) if flow.busy => return Err(Error::CONCURRENT_PAGINATION.into()),
                Some(flow) if continuation => {
                    if flow.expired(now) {
                        return Err(Disconnect::SLOW.into());
                    }
                    flow.busy = true;
                    true
                }
                Some(_) => {
                    // A first state page again: the client restarts its flow.
                    state.map_flows.remove(channel);
                    false
                }
                None => {
                    if !req.cursor.is_empty() || (req.phase == PHASE_STREAM && !req.recover) {
                        return Err(Error::PERMISSION_DENIED.into());
                    }
                    false
                }
            }
        };
        if !continuing {
            self.start_map_flow(req, kind).await?;
        }
        self.map_phase(req).await
    }

    /// Authorizes the first request of a flow with the subscribe handler.
    async fn start_map_flow(
        self: &Arc<Self>,
        req: &proto::SubscribeRequest,
        kind: SubscriptionType,
    ) -> Result<(), HandlerError> {
        let Some(h) = get_handler!(self, subscribe) else {
            return Err(Error::NOT_AVAILABLE.into());
        };
        let event = SubscribeEvent {
            channel: req.channel.clone(),
            token: req.token.clone(),
            data: req.data.clone(),
            positioned: req.positioned,
            recoverable: req.recoverable,
            join_leave: req.join_leave,
            subscription_type: kind,
        };
        let reply = h(self.client(), event).await?;
        let options = reply.options;
        // Accepted as something other than a map: a type mismatch.
        let Some(map) = options.map.clone() else {
            return Err(Error::BAD_REQUEST.into());
        };
        if options.expire_at > 0 && options.expire_at <= unix_now() {
            return Err(Error::EXPIRED.into());
        }
        // As for streams: a filter needs the channel's opt-in, a malformed one is 107.
        let tags_filter = match &req.tf {
            None => None,
            Some(_) if !options.allow_tags_filter => {
                tracing::info!(channel = %req.channel, client = %self.id, "tags filter not allowed");
                return Err(Error::BAD_REQUEST.into());
            }
            Some(tf) => Some(TagsFilter::compile(tf).map_err(|e| {
                tracing::info!(channel = %req.channel, client = %self.id, error = %e, "invalid tags filter");
                Error::BAD_REQUEST
            })?),
        };
        let mut state = self.state.lock();
        if state.map_flows.contains_key(&req.channel) {
            return Err(Error::CONCURRENT_PAGINATION.into());
        }
        state.map_flows.insert(
            req.channel.clone(),
            MapFlow {
                options,
                map,
                position: None,
                stream_start: None,
                recovering: req.recover && req.phase != PHASE_STATE,
                started: Instant::now(),
                busy: true,
                tags_filter,
            },
        );
        Ok(())
    }

    async fn map_phase(
        self: &Arc<Self>,
        req: &proto::SubscribeRequest,
    ) -> Result<Step, HandlerError> {
        let channel = req.channel.as_str();
        let (map, position, stream_start, recovering, tags_filter) = {
            let state = self.state.lock();
            let Some(flow) = state.map_flows.get(channel) else {
                return Err(Error::PERMISSION_DENIED.into());
            };
            (
                flow.map.clone(),
                flow.position.clone(),
                flow.stream_start,
                flow.recovering,
                flow.tags_filter.clone(),
            )
        };
        let passes = |p: &Publication| tags_filter.as_ref().is_none_or(|f| f.matches(&p.tags));
        let broker = &self.node.map_broker;
        let limit = map.page_size(req.limit);
        let has_stream = map.mode.has_stream();
        match req.phase {
            PHASE_STATE => {
                self.node.metrics.action(Action::HistoryRecover);
                let page = broker
                    .read_state(
                        channel,
                        MapReadStateOptions {
                            cursor: req.cursor.clone(),
                            limit: i32::try_from(limit).unwrap_or(i32::MAX),
                            revision: position.clone(),
                            meta_ttl: map.meta_ttl,
                            ..Default::default()
                        },
                    )
                    .await
                    .map_err(broker_error)?;
                let frozen = position.unwrap_or_else(|| page.position.clone());
                self.set_flow(channel, |f| f.position = Some(frozen.clone()));
                let entries: Vec<Publication> =
                    page.entries.into_iter().filter(|p| passes(p)).collect();
                let state = to_proto(&entries);
                let page_result = |cursor: String, state| proto::SubscribeResult {
                    r#type: RESULT_TYPE_MAP,
                    phase: PHASE_STATE,
                    cursor,
                    epoch: frozen.epoch.clone(),
                    offset: frozen.offset,
                    state,
                    ..Default::default()
                };
                if !page.cursor.is_empty() {
                    return Ok(Step::Page(page_result(page.cursor, state)));
                }
                if !has_stream {
                    return self.map_go_live(req, state, None, false).await;
                }
                let top = self.map_top(channel, &map).await?;
                if top.epoch != frozen.epoch {
                    return Err(Error::UNRECOVERABLE_POSITION.into());
                }
                if frozen.offset + limit as u64 >= top.offset {
                    return self.map_go_live(req, state, Some(frozen), false).await;
                }
                Ok(Step::Page(page_result(String::new(), state)))
            }
            PHASE_STREAM => {
                if !has_stream {
                    return Err(Error::BAD_REQUEST.into());
                }
                let since = StreamPosition::new(req.offset, req.epoch.clone());
                if position.as_ref().is_some_and(|p| p.epoch != since.epoch) {
                    return Err(Error::UNRECOVERABLE_POSITION.into());
                }
                let start = match stream_start {
                    Some(start) => start,
                    None => {
                        let top = self.map_top(channel, &map).await?;
                        if top.epoch != since.epoch {
                            return Err(Error::UNRECOVERABLE_POSITION.into());
                        }
                        self.set_flow(channel, |f| {
                            f.stream_start = Some(top.offset);
                            f.position.get_or_insert_with(|| since.clone());
                        });
                        top.offset
                    }
                };
                if since.offset + limit as u64 >= start {
                    return self
                        .map_go_live(req, Vec::new(), Some(since), recovering)
                        .await;
                }
                let read = broker
                    .read_stream(
                        channel,
                        MapReadStreamOptions {
                            since: Some(since.clone()),
                            limit: i32::try_from(limit).unwrap_or(i32::MAX),
                            meta_ttl: map.meta_ttl,
                            ..Default::default()
                        },
                    )
                    .await
                    .map_err(broker_error)?;
                // A trimmed stream cannot bring the client forward.
                let Some(last) = read.publications.last().map(|p| p.offset) else {
                    return Err(Error::UNRECOVERABLE_POSITION.into());
                };
                if read.publications[0].offset != since.offset + 1 {
                    return Err(Error::UNRECOVERABLE_POSITION.into());
                }
                Ok(Step::Page(proto::SubscribeResult {
                    r#type: RESULT_TYPE_MAP,
                    phase: PHASE_STREAM,
                    epoch: read.position.epoch,
                    offset: last,
                    publications: read
                        .publications
                        .iter()
                        .filter(|p| passes(p))
                        .map(publication_to_proto)
                        .collect(),
                    ..Default::default()
                }))
            }
            _ => {
                let since = (has_stream && req.recover)
                    .then(|| StreamPosition::new(req.offset, req.epoch.clone()));
                let recovering = since.is_some();
                self.map_go_live(req, Vec::new(), since, recovering).await
            }
        }
    }

    /// Adds a live map subscription to the channel's presence (`presence` on the
    /// namespace); the periodic refresh and the removal are the common ones.
    async fn add_map_channel_presence(&self, channel: &str) {
        let chan_info = {
            let state = self.state.lock();
            match state.subs.get(channel) {
                Some(sub) if sub.emit_presence => sub.chan_info.clone(),
                _ => return,
            }
        };
        self.node.metrics.action(Action::AddPresence);
        let info = self.client_info(chan_info);
        if let Err(e) = self
            .node
            .presence
            .add_presence(channel, &self.id, info)
            .await
        {
            tracing::warn!(channel = %channel, error = %e, "presence add failed");
        }
    }

    fn set_flow(&self, channel: &str, f: impl FnOnce(&mut MapFlow)) {
        if let Some(flow) = self.state.lock().map_flows.get_mut(channel) {
            f(flow);
        }
    }

    async fn map_top(
        &self,
        channel: &str,
        map: &MapChannelOptions,
    ) -> Result<StreamPosition, HandlerError> {
        let read = self
            .node
            .map_broker
            .read_stream(
                channel,
                MapReadStreamOptions {
                    meta_ttl: map.meta_ttl,
                    ..Default::default()
                },
            )
            .await
            .map_err(broker_error)?;
        Ok(read.position)
    }

    /// Registers the live subscription (buffering) and reads the changes since `since`.
    async fn map_go_live(
        self: &Arc<Self>,
        req: &proto::SubscribeRequest,
        state_entries: Vec<proto::Publication>,
        since: Option<StreamPosition>,
        recovering: bool,
    ) -> Result<Step, HandlerError> {
        let channel = req.channel.as_str();
        let node = &self.node;
        let (options, map, tags_filter) = {
            let mut state = self.state.lock();
            let Some(flow) = state.map_flows.remove(channel) else {
                return Err(Error::PERMISSION_DENIED.into());
            };
            if state.status != Status::Connected {
                return Err(Disconnect::BAD_REQUEST.into());
            }
            if state.subs.contains_key(channel) {
                return Err(Error::ALREADY_SUBSCRIBED.into());
            }
            let limit = node.config.client_channel_limit;
            if limit > 0 && state.subs.len() >= limit {
                return Err(Error::LIMIT_EXCEEDED.into());
            }
            (flow.options, flow.map, flow.tags_filter)
        };
        let positioned = map.mode.has_stream();
        let shared = SubShared::new(positioned, options.push_join_leave, false, tags_filter);
        {
            let mut state = self.state.lock();
            state.subs.insert(
                channel.to_owned(),
                SubState {
                    shared: shared.clone(),
                    server_side: false,
                    emit_presence: options.emit_presence,
                    emit_join_leave: options.emit_join_leave,
                    chan_info: options.channel_info.clone(),
                    position: StreamPosition::default(),
                    buffer: Some(Vec::new()),
                    delta_ready: false,
                    expire_at: options.expire_at,
                    expire_deadline: (options.expire_at > 0).then(|| {
                        let at = deadline_of(options.expire_at);
                        if options.client_side_refresh {
                            at + node.config.client_expired_sub_close_delay
                        } else {
                            at
                        }
                    }),
                    client_side_refresh: options.client_side_refresh,
                    map: true,
                    shared_poll: false,
                    map_presence: crate::client::subscription::map_presence_of(&options),
                    map_cleanup: options
                        .map_remove_client_on_unsubscribe
                        .then(|| Box::new(map.clone())),
                },
            );
        }
        node.metrics.action(Action::AddSubscription);
        let stats = node.metrics.subscriptions(self.named_client());
        stats.accepted.inc();
        stats.inflight.add(1);
        match self
            .map_live_result(
                channel,
                &options,
                &map,
                state_entries,
                since,
                recovering,
                shared,
            )
            .await
        {
            Ok(result) => Ok(Step::Live(result)),
            Err(e) => {
                self.abort_subscription(channel).await;
                Err(e)
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn map_live_result(
        self: &Arc<Self>,
        channel: &str,
        options: &SubscribeOptions,
        map: &MapChannelOptions,
        state_entries: Vec<proto::Publication>,
        since: Option<StreamPosition>,
        recovering: bool,
        shared: Arc<SubShared>,
    ) -> Result<proto::SubscribeResult, HandlerError> {
        let node = &self.node;
        if node.hub.add_subscriber(channel, self, shared.clone()) {
            node.metrics.action(Action::BrokerSubscribe);
            node.map_broker
                .subscribe(channel)
                .await
                .map_err(broker_error)?;
        }
        let mut result = proto::SubscribeResult {
            r#type: RESULT_TYPE_MAP,
            data: options.data.clone(),
            state: state_entries,
            ..Default::default()
        };
        if options.expire_at > 0 && options.client_side_refresh {
            result.expires = true;
            result.ttl = (options.expire_at - unix_now()).max(0) as u32;
        }
        if !shared.positioned {
            return Ok(result);
        }
        let max = map.live_transition_max_publication_limit;
        let read = node
            .map_broker
            .read_stream(
                channel,
                MapReadStreamOptions {
                    since: since.clone(),
                    limit: if since.is_some() {
                        i32::try_from(max + 1).unwrap_or(i32::MAX)
                    } else {
                        0
                    },
                    meta_ttl: map.meta_ttl,
                    ..Default::default()
                },
            )
            .await
            .map_err(broker_error)?;
        let top = read.position;
        if let Some(since) = &since {
            let pubs = &read.publications;
            let contiguous = match pubs.first() {
                Some(first) => first.offset == since.offset + 1,
                None => top.offset == since.offset,
            };
            if pubs.len() > max || !contiguous {
                return Err(Error::UNRECOVERABLE_POSITION.into());
            }
            result.publications = pubs
                .iter()
                .filter(|p| !shared.filters_out(p))
                .map(publication_to_proto)
                .collect();
        }
        if recovering {
            node.metrics.recovered(true, result.publications.len());
        }
        result.positioned = true;
        result.recoverable = true;
        result.was_recovering = recovering;
        result.recovered = recovering;
        result.epoch = top.epoch.clone();
        result.offset = top.offset;
        if let Some(sub) = self.state.lock().subs.get_mut(channel) {
            sub.position = top;
        }
        Ok(result)
    }

    /// `publish` with `type` 1: sets or removes a key of a map channel.
    pub(crate) async fn handle_map_publish(
        &self,
        req: proto::PublishRequest,
    ) -> Result<proto::PublishResult, HandlerError> {
        let Some(h) = get_handler!(self, map_publish) else {
            return Err(Error::NOT_AVAILABLE.into());
        };
        let (chan_info, subscribed) = {
            let state = self.state.lock();
            match state.subs.get(&req.channel) {
                Some(s) => (s.chan_info.clone(), true),
                None => (Default::default(), false),
            }
        };
        let info = self.client_info(chan_info);
        let reply = h(
            self.client(),
            MapPublishEvent {
                channel: req.channel.clone(),
                key: req.key.clone(),
                data: if req.removed {
                    Default::default()
                } else {
                    req.data.clone()
                },
                removed: req.removed,
                client_info: info.clone(),
                subscribed,
            },
        )
        .await?;
        if reply.key.is_empty() {
            return Err(Error::BAD_REQUEST.into());
        }
        let mut options = reply.options;
        if options.client_info.is_none() {
            options.client_info = Some(info);
        }
        let broker = &self.node.map_broker;
        let result = if req.removed {
            broker.remove(&req.channel, &reply.key, options).await
        } else {
            let data = reply.data.unwrap_or(req.data);
            broker
                .publish(&req.channel, &reply.key, data, options)
                .await
        };
        let result = result.map_err(broker_error)?;
        if result.suppressed.is_none() {
            self.node.metrics.sent(Message::Publication);
        }
        Ok(proto::PublishResult {})
    }
}
