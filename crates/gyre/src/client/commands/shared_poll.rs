//! Shared-poll subscriptions: `subscribe` with `type` 4, then `sub_refresh` with `type` 1
//! (track keys, with per-batch signatures the track handler checks) and `type` 2
//! (untrack). Delivery is the shared-poll manager's (`crate::shared_poll`).
//!
//! Deltas are not negotiated on these subscriptions (the reply never sets `delta`), so
//! every key update carries its full data.

use std::collections::HashMap;
use std::sync::Arc;

use gyre_protocol::{Protocol, proto};

use crate::client::subscription::{SubState, map_presence_of};
use crate::client::timers::deadline_of;
use crate::client::{ClientInner, Status, get_handler, unix_now};
use crate::events::{
    HandlerError, SubscribeEvent, SubscriptionType, TrackBatch, TrackEvent, TrackItem,
};
use crate::hub::SubShared;
use crate::metrics::{Action, ClientMethod};
use crate::queue::Outbound;
use crate::shared_poll::{KeyedConnection, SharedPollChannelOptions, TrackRefused, TrackedItem};
use crate::{Disconnect, Error, Unsubscribe};

/// `SubscribeRequest.type` / `SubscribeResult.type` of shared poll.
pub(crate) const TYPE_SHARED_POLL: i32 = 4;
/// `SubRefreshRequest.type`: track keys.
pub(crate) const TYPE_TRACK: i32 = 1;
/// `SubRefreshRequest.type`: untrack keys.
pub(crate) const TYPE_UNTRACK: i32 = 2;

impl KeyedConnection for ClientInner {
    fn protocol(&self) -> Protocol {
        self.transport.protocol
    }

    fn outbound(&self) -> &Outbound {
        &self.outbound
    }

    fn epoch_reset(self: Arc<Self>, channel: &str) {
        let channel = channel.to_owned();
        tokio::spawn(async move {
            // 2500: the client subscribes again and, seeing a new epoch, tracks from 0.
            self.server_unsubscribe(&channel, Unsubscribe::INSUFFICIENT_STATE)
                .await;
        });
    }
}

impl ClientInner {
    /// Whether `channel` is one of this connection's shared-poll subscriptions.
    pub(crate) fn is_shared_poll(&self, channel: &str) -> bool {
        self.state
            .lock()
            .subs
            .get(channel)
            .is_some_and(|s| s.shared_poll)
    }

    pub(crate) async fn handle_shared_poll_subscribe(
        self: &Arc<Self>,
        id: u32,
        req: proto::SubscribeRequest,
        poll: SharedPollChannelOptions,
    ) -> Result<(), Disconnect> {
        let method = ClientMethod::Subscribe;
        let Some(h) = get_handler!(self, subscribe) else {
            return self.write_error(id, method, &Error::NOT_AVAILABLE);
        };
        let channel = req.channel.clone();
        let event = SubscribeEvent {
            channel: channel.clone(),
            token: req.token,
            data: req.data,
            positioned: false,
            recoverable: false,
            join_leave: false,
            subscription_type: SubscriptionType::SharedPoll,
        };
        let options = match h(self.client(), event).await {
            Ok(reply) => reply.options,
            Err(HandlerError::Error(e)) => return self.write_error(id, method, &e),
            Err(HandlerError::Disconnect(d)) => return Err(d),
        };
        let now = unix_now();
        if options.expire_at > 0 && options.expire_at <= now {
            return self.write_error(id, method, &Error::EXPIRED);
        }
        let node = &self.node;
        let epoch = node.shared_poll.epoch(&channel, &poll);
        {
            let mut state = self.state.lock();
            if state.status != Status::Connected {
                return Ok(());
            }
            if state.subs.contains_key(&channel) {
                drop(state);
                return self.write_error(id, method, &Error::ALREADY_SUBSCRIBED);
            }
            state.subs.insert(
                channel.clone(),
                SubState {
                    shared: SubShared::new(false, false, false, None),
                    server_side: false,
                    emit_presence: false,
                    emit_join_leave: false,
                    chan_info: options.channel_info.clone(),
                    position: Default::default(),
                    buffer: None,
                    delta_ready: false,
                    expire_at: options.expire_at,
                    expire_deadline: (options.expire_at > 0).then(|| {
                        deadline_of(options.expire_at) + node.config.client_expired_sub_close_delay
                    }),
                    // Tracking is always client-driven (upstream flagClientSideRefresh).
                    client_side_refresh: true,
                    map: false,
                    shared_poll: true,
                    map_presence: map_presence_of(&options),
                    map_cleanup: None,
                },
            );
        }
        node.metrics.action(Action::AddSubscription);
        let stats = node.metrics.subscriptions(self.named_client());
        stats.accepted.inc();
        stats.inflight.add(1);
        let result = proto::SubscribeResult {
            r#type: TYPE_SHARED_POLL,
            epoch,
            expires: options.expire_at > 0,
            ttl: (options.expire_at - now).max(0) as u32,
            data: options.data,
            ..Default::default()
        };
        self.write_reply(&proto::Reply {
            id,
            subscribe: Some(result),
            ..Default::default()
        })?;
        let channels = [channel];
        self.announce_joins(&channels).await;
        Ok(())
    }

    /// `sub_refresh` with `type` 1 on a shared-poll subscription. Writes its own reply:
    /// the reply is queued under the channel's lock, before any update of the keys.
    pub(crate) async fn handle_track(
        self: &Arc<Self>,
        id: u32,
        req: proto::SubRefreshRequest,
    ) -> Result<(), Disconnect> {
        let method = ClientMethod::SubRefresh;
        match self.track(id, req).await {
            Ok(()) => Ok(()),
            Err(HandlerError::Error(e)) => self.write_error(id, method, &e),
            Err(HandlerError::Disconnect(d)) => Err(d),
        }
    }

    async fn track(
        self: &Arc<Self>,
        id: u32,
        req: proto::SubRefreshRequest,
    ) -> Result<(), HandlerError> {
        let channel = req.channel.clone();
        // Keys once each; a key in several batches takes the last one's version.
        let mut index: HashMap<&str, usize> = HashMap::new();
        let mut flat: Vec<(&str, u64, usize)> = Vec::new();
        for (b, batch) in req.track.iter().enumerate() {
            for item in &batch.items {
                let entry = (item.key.as_str(), item.version, b);
                match index.get(item.key.as_str()) {
                    Some(&at) => flat[at] = entry,
                    None => {
                        index.insert(item.key.as_str(), flat.len());
                        flat.push(entry);
                    }
                }
            }
        }
        if flat.is_empty() {
            return Err(Error::BAD_REQUEST.into());
        }
        let manager = &self.node.shared_poll;
        let Some(poll) = manager.options(&channel) else {
            return Err(Error::NOT_AVAILABLE.into());
        };
        // Checked before the (possibly slow) signature check too; the manager checks
        // again when it registers the keys.
        let current = manager.tracked(&channel, self.seq);
        let untrack: std::collections::HashSet<&String> = req.untrack.iter().collect();
        let new = flat
            .iter()
            .filter(|(k, _, _)| {
                !current.iter().any(|c| c == k) && !untrack.iter().any(|u| u.as_str() == *k)
            })
            .count();
        let freed = current.iter().filter(|c| untrack.contains(c)).count();
        if current.len() - freed + new > poll.max_keys_per_connection {
            return Err(Error::LIMIT_EXCEEDED.into());
        }
        let Some(h) = get_handler!(self, track) else {
            return Err(Error::NOT_AVAILABLE.into());
        };
        let batches: Vec<TrackBatch> = req
            .track
            .iter()
            .map(|b| TrackBatch {
                signature: b.signature.clone(),
                items: b
                    .items
                    .iter()
                    .map(|i| TrackItem {
                        key: i.key.clone(),
                        version: i.version,
                    })
                    .collect(),
            })
            .collect();
        let count = batches.len();
        let reply = h(
            self.client(),
            TrackEvent {
                channel: channel.clone(),
                batches,
            },
        )
        .await?;
        let expiries: Vec<i64> = match reply.batches.len() {
            0 => vec![0; count],
            n if n == count => reply.batches.iter().map(|b| b.expire_at).collect(),
            _ => return Err(Error::INTERNAL.into()),
        };
        if !self.is_shared_poll(&channel) {
            // Unsubscribed while the handler ran.
            return Err(Error::PERMISSION_DENIED.into());
        }
        let items: Vec<TrackedItem> = flat
            .iter()
            .map(|(key, version, b)| TrackedItem {
                key: (*key).to_owned(),
                version: *version,
                expire_at: expiries[*b],
            })
            .collect();
        let min_expire = items
            .iter()
            .map(|i| i.expire_at)
            .filter(|e| *e > 0)
            .min()
            .unwrap_or(0);
        let mut written = Ok(());
        let conn: Arc<dyn KeyedConnection> = self.clone();
        let tracked = manager.track(
            &channel,
            &poll,
            self.seq,
            conn,
            items,
            &req.untrack,
            |cached| {
                let now = unix_now();
                written = self.write_reply(&proto::Reply {
                    id,
                    sub_refresh: Some(proto::SubRefreshResult {
                        expires: min_expire > 0,
                        ttl: (min_expire - now).max(0) as u32,
                        items: cached,
                    }),
                    ..Default::default()
                });
            },
        );
        match tracked {
            Ok(()) => {}
            Err(TrackRefused::LimitExceeded) => return Err(Error::LIMIT_EXCEEDED.into()),
        }
        written?;
        if !self.is_shared_poll(&channel) {
            // Unsubscribed meanwhile: nothing may stay tracked for this connection.
            manager.remove_connection(&channel, self.seq);
        }
        Ok(())
    }

    /// `sub_refresh` with `type` 2 on a shared-poll subscription.
    pub(crate) fn handle_untrack(
        &self,
        req: &proto::SubRefreshRequest,
    ) -> Result<proto::SubRefreshResult, HandlerError> {
        if req.untrack.is_empty() {
            return Err(Error::BAD_REQUEST.into());
        }
        self.node
            .shared_poll
            .untrack(&req.channel, self.seq, &req.untrack);
        Ok(proto::SubRefreshResult::default())
    }
}
