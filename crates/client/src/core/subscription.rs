//! Client-side subscriptions: unsubscribed → subscribing → subscribed, with resubscribe
//! backoff, recovery position tracking and token refresh (centrifuge-js `subscription.ts`).

use std::time::{Duration, Instant};

use bytes::Bytes;
use gyre_protocol::{Unsubscribe, proto};

use super::{ClientCore, Inflight, Output, State, Transport, codes, ttl};
use crate::types::{Publication, StreamPosition, SubscribedContext, SubscriptionEvent};
use crate::{ClientError, TokenError};

/// Settings of one subscription (the serialisable part of `SubscriptionConfig`).
#[derive(Debug, Clone)]
pub(crate) struct SubOptions {
    pub(crate) token: String,
    pub(crate) has_get_token: bool,
    pub(crate) data: Bytes,
    pub(crate) since: Option<StreamPosition>,
    pub(crate) positioned: bool,
    pub(crate) recoverable: bool,
    pub(crate) join_leave: bool,
    pub(crate) min_resubscribe_delay: Duration,
    pub(crate) max_resubscribe_delay: Duration,
}

impl Default for SubOptions {
    fn default() -> Self {
        SubOptions {
            token: String::new(),
            has_get_token: false,
            data: Bytes::new(),
            since: None,
            positioned: false,
            recoverable: false,
            join_leave: false,
            min_resubscribe_delay: Duration::from_millis(500),
            max_resubscribe_delay: Duration::from_secs(20),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SubState {
    Unsubscribed,
    Subscribing,
    Subscribed,
}

#[derive(Debug)]
pub(crate) struct Sub {
    opts: SubOptions,
    pub(crate) state: SubState,
    token: String,
    /// A subscribe command (or the token fetch before it) is under way.
    pub(crate) inflight: bool,
    awaiting_subscribe_token: bool,
    awaiting_refresh_token: bool,
    recover: bool,
    offset: u64,
    epoch: String,
    resubscribe_attempts: u32,
    pub(crate) resubscribe_at: Option<Instant>,
    pub(crate) refresh_at: Option<Instant>,
}

impl Sub {
    fn new(opts: SubOptions) -> Self {
        let (recover, offset, epoch) = match &opts.since {
            Some(p) => (true, p.offset, p.epoch.clone()),
            None => (false, 0, String::new()),
        };
        Sub {
            token: opts.token.clone(),
            opts,
            state: SubState::Unsubscribed,
            inflight: false,
            awaiting_subscribe_token: false,
            awaiting_refresh_token: false,
            recover,
            offset,
            epoch,
            resubscribe_attempts: 0,
            resubscribe_at: None,
            refresh_at: None,
        }
    }

    /// Drops the token and poisons the position so that recovery is attempted but
    /// reported as failed (unsubscribe 2502 / disconnect 3014).
    pub(crate) fn invalidate(&mut self) {
        self.token.clear();
        self.offset = 0;
        self.epoch = "_".into();
    }

    fn subscribe_request(&self, channel: &str) -> proto::SubscribeRequest {
        let mut req = proto::SubscribeRequest {
            channel: channel.to_owned(),
            token: self.token.clone(),
            data: self.opts.data.clone(),
            positioned: self.opts.positioned,
            recoverable: self.opts.recoverable,
            join_leave: self.opts.join_leave,
            ..Default::default()
        };
        if self.recover {
            req.recover = true;
            req.offset = self.offset;
            req.epoch = self.epoch.clone();
        }
        req
    }
}

impl ClientCore {
    /// Registers a subscription (unsubscribed). Fails for a channel already registered.
    pub(crate) fn new_subscription(
        &mut self,
        channel: &str,
        opts: SubOptions,
    ) -> Result<(), ClientError> {
        if self.subs.contains_key(channel) {
            return Err(ClientError::DuplicateSubscription(channel.to_owned()));
        }
        self.subs.insert(channel.to_owned(), Sub::new(opts));
        Ok(())
    }

    /// Unsubscribes (if needed) and forgets the subscription.
    pub(crate) fn remove_subscription(&mut self, now: Instant, channel: &str) {
        self.unsubscribe(now, channel);
        self.subs.remove(channel);
    }

    /// User `subscribe()`.
    pub(crate) fn subscribe(&mut self, now: Instant, channel: &str) {
        self.now = now;
        let Some(sub) = self.subs.get_mut(channel) else {
            return;
        };
        if sub.state == SubState::Subscribed {
            return;
        }
        sub.resubscribe_attempts = 0;
        self.sub_set_subscribing(channel, 0, "subscribe called".into());
        self.flush();
    }

    /// User `unsubscribe()`.
    pub(crate) fn unsubscribe(&mut self, now: Instant, channel: &str) {
        self.now = now;
        self.sub_set_unsubscribed(channel, 0, "unsubscribe called".into(), true);
        self.flush();
    }

    /// A subscription `get_token` finished.
    pub(crate) fn sub_token_result(
        &mut self,
        now: Instant,
        channel: &str,
        result: Result<String, TokenError>,
    ) {
        self.now = now;
        let Some(sub) = self.subs.get_mut(channel) else {
            return;
        };
        if sub.state == SubState::Subscribing && sub.awaiting_subscribe_token {
            sub.awaiting_subscribe_token = false;
            match result {
                Ok(token) if token.is_empty() => {
                    sub.inflight = false;
                    self.sub_fail_unauthorized(channel);
                }
                Ok(token) => {
                    sub.token = token;
                    if self.transport == Transport::Open {
                        self.sub_send_subscribe(channel);
                    } else {
                        sub.inflight = false;
                    }
                }
                Err(TokenError::Unauthorized) => {
                    sub.inflight = false;
                    self.sub_fail_unauthorized(channel);
                }
                Err(TokenError::Failed(msg)) => {
                    sub.inflight = false;
                    self.emit_sub(channel, SubscriptionEvent::Error(ClientError::Token(msg)));
                    self.sub_schedule_resubscribe(channel);
                }
            }
        } else if sub.state == SubState::Subscribed && sub.awaiting_refresh_token {
            sub.awaiting_refresh_token = false;
            match result {
                Ok(token) if token.is_empty() => self.sub_fail_unauthorized(channel),
                Ok(token) => {
                    sub.token = token.clone();
                    if self.state == State::Connected {
                        let cmd = proto::Command {
                            sub_refresh: Some(proto::SubRefreshRequest {
                                channel: channel.to_owned(),
                                token,
                                ..Default::default()
                            }),
                            ..Default::default()
                        };
                        if let Err(e) =
                            self.send_command(cmd, Some(Inflight::SubRefresh(channel.to_owned())))
                        {
                            self.emit_sub(channel, SubscriptionEvent::Error(e.into()));
                        }
                    }
                }
                Err(TokenError::Unauthorized) => self.sub_fail_unauthorized(channel),
                Err(TokenError::Failed(msg)) => {
                    self.emit_sub(channel, SubscriptionEvent::Error(ClientError::Token(msg)));
                    self.sub_schedule_refresh_retry(channel);
                }
            }
        }
        self.flush();
    }

    pub(super) fn emit_sub(&mut self, channel: &str, event: SubscriptionEvent) {
        self.out.push_back(Output::SubEvent {
            channel: channel.to_owned(),
            event,
        });
    }

    pub(super) fn sub_set_subscribing(&mut self, channel: &str, code: u32, reason: String) {
        let Some(sub) = self.subs.get_mut(channel) else {
            return;
        };
        if sub.state == SubState::Subscribing {
            return;
        }
        sub.refresh_at = None;
        sub.awaiting_refresh_token = false;
        sub.state = SubState::Subscribing;
        self.emit_sub(
            channel,
            SubscriptionEvent::Subscribing(Unsubscribe::new(code, reason)),
        );
        self.sub_try_subscribe(channel);
    }

    /// Sends the subscribe command (or fetches a token first) when the transport is open.
    pub(super) fn sub_try_subscribe(&mut self, channel: &str) {
        if self.transport != Transport::Open {
            return;
        }
        let Some(sub) = self.subs.get_mut(channel) else {
            return;
        };
        if sub.state != SubState::Subscribing || sub.inflight {
            return;
        }
        sub.inflight = true;
        if !sub.opts.has_get_token || !sub.token.is_empty() {
            self.sub_send_subscribe(channel);
        } else {
            sub.awaiting_subscribe_token = true;
            self.out.push_back(Output::GetSubToken(channel.to_owned()));
        }
    }

    fn sub_send_subscribe(&mut self, channel: &str) {
        let Some(sub) = self.subs.get(channel) else {
            return;
        };
        let cmd = proto::Command {
            subscribe: Some(sub.subscribe_request(channel)),
            ..Default::default()
        };
        if let Err(e) = self.send_command(cmd, Some(Inflight::Subscribe(channel.to_owned()))) {
            if let Some(sub) = self.subs.get_mut(channel) {
                sub.inflight = false;
            }
            self.emit_sub(channel, SubscriptionEvent::Error(e.into()));
            self.sub_set_unsubscribed(
                channel,
                gyre_protocol::Error::BAD_REQUEST.code,
                "bad subscribe request".into(),
                false,
            );
        }
    }

    pub(super) fn sub_set_subscribed(&mut self, channel: &str, result: proto::SubscribeResult) {
        let now = self.now;
        let Some(sub) = self.subs.get_mut(channel) else {
            return;
        };
        if sub.state != SubState::Subscribing {
            return;
        }
        sub.resubscribe_attempts = 0;
        sub.resubscribe_at = None;
        if result.recoverable {
            sub.recover = true;
            sub.offset = result.offset;
            sub.epoch = result.epoch.clone();
        }
        sub.state = SubState::Subscribed;
        sub.refresh_at = result.expires.then(|| now + ttl(result.ttl));
        let ctx = SubscribedContext::from_result(channel, &result);
        self.emit_sub(channel, SubscriptionEvent::Subscribed(ctx));
        for publication in result.publications {
            self.sub_publication(channel, publication);
        }
    }

    pub(super) fn sub_publication(&mut self, channel: &str, publication: proto::Publication) {
        let Some(sub) = self.subs.get_mut(channel) else {
            return;
        };
        if sub.state == SubState::Unsubscribed {
            return;
        }
        if publication.offset > 0 {
            sub.offset = publication.offset;
        }
        self.emit_sub(
            channel,
            SubscriptionEvent::Publication(Publication::from(publication)),
        );
    }

    pub(super) fn sub_subscribe_error(&mut self, channel: &str, e: gyre_protocol::Error) {
        let connected = self.state == State::Connected;
        let Some(sub) = self.subs.get_mut(channel) else {
            return;
        };
        if sub.state != SubState::Subscribing {
            return;
        }
        let expired = e.code == gyre_protocol::Error::TOKEN_EXPIRED.code;
        if e.code < 100 || expired || e.temporary {
            if expired {
                sub.token.clear();
                if !sub.opts.has_get_token {
                    self.sub_fail_unauthorized(channel);
                    return;
                }
            }
            if connected {
                self.emit_sub(channel, SubscriptionEvent::Error(ClientError::Server(e)));
            }
            self.sub_schedule_resubscribe(channel);
        } else {
            let reason = e.message.to_string();
            self.sub_set_unsubscribed(channel, e.code, reason, false);
        }
    }

    fn sub_schedule_resubscribe(&mut self, channel: &str) {
        let Some(sub) = self.subs.get(channel) else {
            return;
        };
        if sub.state != SubState::Subscribing {
            return;
        }
        let (step, min, max) = (
            sub.resubscribe_attempts,
            sub.opts.min_resubscribe_delay,
            sub.opts.max_resubscribe_delay,
        );
        let delay = self.backoff(step, min, max);
        let at = self.now + delay;
        if let Some(sub) = self.subs.get_mut(channel) {
            sub.resubscribe_attempts += 1;
            sub.resubscribe_at = Some(at);
        }
    }

    fn sub_schedule_refresh_retry(&mut self, channel: &str) {
        let delay = self.backoff(0, Duration::from_secs(10), Duration::from_secs(20));
        let at = self.now + delay;
        if let Some(sub) = self.subs.get_mut(channel) {
            sub.refresh_at = Some(at);
        }
    }

    fn sub_fail_unauthorized(&mut self, channel: &str) {
        self.sub_set_unsubscribed(channel, codes::UNAUTHORIZED, "unauthorized".into(), true);
    }

    pub(super) fn sub_set_unsubscribed(
        &mut self,
        channel: &str,
        code: u32,
        reason: String,
        send_unsubscribe: bool,
    ) {
        let subscribe_in_flight = self
            .inflight
            .values()
            .any(|(w, _)| matches!(w, Inflight::Subscribe(c) if c == channel));
        let Some(sub) = self.subs.get_mut(channel) else {
            return;
        };
        let need_unsubscribe = match sub.state {
            SubState::Unsubscribed => return,
            SubState::Subscribed => send_unsubscribe,
            SubState::Subscribing => send_unsubscribe && subscribe_in_flight,
        };
        sub.state = SubState::Unsubscribed;
        sub.inflight = false;
        sub.awaiting_subscribe_token = false;
        sub.awaiting_refresh_token = false;
        sub.resubscribe_attempts = 0;
        sub.resubscribe_at = None;
        sub.refresh_at = None;
        if need_unsubscribe && self.transport == Transport::Open {
            let cmd = proto::Command {
                unsubscribe: Some(proto::UnsubscribeRequest {
                    channel: channel.to_owned(),
                }),
                ..Default::default()
            };
            if let Err(e) = self.send_command(cmd, Some(Inflight::Unsubscribe)) {
                self.emit(crate::ClientEvent::Error(e.into()));
            }
        }
        self.emit_sub(
            channel,
            SubscriptionEvent::Unsubscribed(Unsubscribe::new(code, reason)),
        );
    }

    fn sub_start_refresh(&mut self, channel: &str) {
        let Some(sub) = self.subs.get_mut(channel) else {
            return;
        };
        if sub.state != SubState::Subscribed {
            return;
        }
        if !sub.opts.has_get_token {
            self.sub_fail_unauthorized(channel);
            return;
        }
        sub.awaiting_refresh_token = true;
        self.out.push_back(Output::GetSubToken(channel.to_owned()));
    }

    pub(super) fn sub_refresh_ok(&mut self, channel: &str, r: proto::SubRefreshResult) {
        let now = self.now;
        if let Some(sub) = self.subs.get_mut(channel)
            && sub.state == SubState::Subscribed
        {
            sub.refresh_at = r.expires.then(|| now + ttl(r.ttl));
        }
    }

    pub(super) fn sub_refresh_error(&mut self, channel: &str, e: gyre_protocol::Error) {
        if self
            .subs
            .get(channel)
            .is_none_or(|s| s.state != SubState::Subscribed)
        {
            return;
        }
        if e.code < 100 || e.temporary {
            self.emit_sub(channel, SubscriptionEvent::Error(ClientError::Server(e)));
            self.sub_schedule_refresh_retry(channel);
        } else {
            let reason = e.message.to_string();
            self.sub_set_unsubscribed(channel, e.code, reason, true);
        }
    }

    pub(super) fn sub_handle_timeout(&mut self, channel: &str, now: Instant) {
        let Some(sub) = self.subs.get_mut(channel) else {
            return;
        };
        if sub.resubscribe_at.is_some_and(|t| t <= now) {
            sub.resubscribe_at = None;
            self.sub_try_subscribe(channel);
        }
        let Some(sub) = self.subs.get_mut(channel) else {
            return;
        };
        if sub.refresh_at.is_some_and(|t| t <= now) {
            sub.refresh_at = None;
            self.sub_start_refresh(channel);
        }
    }
}
