//! `subscribe` and `unsubscribe`.

use std::sync::Arc;

use gyre_protocol::proto;

use crate::broker::StreamPosition;
use crate::client::commands::shared_poll::TYPE_SHARED_POLL;
use crate::client::subscription::SubscribeRequest;
use crate::client::{ClientInner, get_handler};
use crate::events::{DeltaType, HandlerError, SubscribeEvent, SubscriptionType};
use crate::filter::TagsFilter;
use crate::metrics::ClientMethod;
use crate::{Disconnect, Error, Unsubscribe};

/// `SubscribeRequest.flag` bit: fail with 112 instead of `recovered: false`.
const FLAG_REJECT_UNRECOVERED: i64 = 2;

impl ClientInner {
    pub(crate) async fn handle_subscribe(
        self: &Arc<Self>,
        id: u32,
        req: proto::SubscribeRequest,
    ) -> Result<(), Disconnect> {
        if req.channel.is_empty() {
            return Err(Disconnect::BAD_REQUEST);
        }
        let delta = if req.delta.is_empty() {
            None
        } else {
            // An unknown delta type is a client bug (upstream: bad request disconnect).
            Some(DeltaType::parse(&req.delta).ok_or(Disconnect::BAD_REQUEST)?)
        };
        // Shared-poll channels take only shared-poll subscriptions and vice versa
        // (upstream checks this before anything else).
        let poll = self.node.shared_poll.options(&req.channel);
        let wants_poll = req.r#type == TYPE_SHARED_POLL;
        match poll {
            Some(_) if !wants_poll => {
                return self.write_error(id, ClientMethod::Subscribe, &Error::BAD_REQUEST);
            }
            None if wants_poll => {
                return self.write_error(id, ClientMethod::Subscribe, &Error::NOT_AVAILABLE);
            }
            _ => {}
        }
        if let Err(e) = self.validate_channel(&req.channel) {
            return self.write_error(id, ClientMethod::Subscribe, &e);
        }
        if let Some(poll) = poll {
            return self.handle_shared_poll_subscribe(id, req, poll).await;
        }
        if req.r#type != 0 {
            return self.handle_map_subscribe(id, req).await;
        }
        let Some(h) = get_handler!(self, subscribe) else {
            return self.write_error(id, ClientMethod::Subscribe, &Error::NOT_AVAILABLE);
        };
        let event = SubscribeEvent {
            channel: req.channel.clone(),
            token: req.token.clone(),
            data: req.data.clone(),
            positioned: req.positioned,
            recoverable: req.recoverable,
            join_leave: req.join_leave,
            subscription_type: SubscriptionType::Stream,
        };
        let reply = match h(self.client(), event).await {
            Ok(reply) => reply,
            Err(HandlerError::Error(e)) => {
                return self.write_error(id, ClientMethod::Subscribe, &e);
            }
            Err(HandlerError::Disconnect(d)) => return Err(d),
        };
        // As upstream: a filter needs the channel's opt-in, and a malformed one is the
        // client's error (107), not a disconnect.
        let tags_filter = match &req.tf {
            None => None,
            Some(_) if !reply.options.allow_tags_filter => {
                tracing::info!(channel = %req.channel, client = %self.id, "tags filter not allowed");
                return self.write_error(id, ClientMethod::Subscribe, &Error::BAD_REQUEST);
            }
            Some(tf) => match TagsFilter::compile(tf) {
                Ok(filter) => Some(filter),
                Err(e) => {
                    tracing::info!(channel = %req.channel, client = %self.id, error = %e, "invalid tags filter");
                    return self.write_error(id, ClientMethod::Subscribe, &Error::BAD_REQUEST);
                }
            },
        };
        let sub = SubscribeRequest {
            channel: req.channel.clone(),
            options: reply.options,
            server_side: false,
            recover: req
                .recover
                .then(|| StreamPosition::new(req.offset, req.epoch.clone())),
            reject_unrecovered: req.flag & FLAG_REJECT_UNRECOVERED != 0,
            delta,
            tags_filter,
        };
        let result = match self.prepare_subscription(sub).await {
            Ok(result) => result,
            Err(HandlerError::Error(e)) => {
                return self.write_error(id, ClientMethod::Subscribe, &e);
            }
            Err(HandlerError::Disconnect(d)) => return Err(d),
        };
        let reply = proto::Reply {
            id,
            subscribe: Some(result),
            ..Default::default()
        };
        let channels = [req.channel];
        self.activate(&reply, &channels)?;
        self.announce_joins(&channels).await;
        Ok(())
    }

    pub(crate) async fn handle_unsubscribe(
        &self,
        req: proto::UnsubscribeRequest,
    ) -> Result<proto::UnsubscribeResult, HandlerError> {
        if req.channel.is_empty() {
            return Err(Disconnect::BAD_REQUEST.into());
        }
        // Unsubscribing from a channel the connection is not in still succeeds.
        self.unsubscribe_channel(&req.channel, Unsubscribe::CLIENT.code)
            .await;
        Ok(proto::UnsubscribeResult {})
    }
}
