//! `refresh` (connection credentials) and `sub_refresh` (a subscription).

use gyre_protocol::proto;

use crate::client::commands::shared_poll::TYPE_UNTRACK;
use crate::client::timers::deadline_of;
use crate::client::{ClientInner, get_handler, unix_now};
use crate::events::{HandlerError, RefreshEvent, SubRefreshEvent};
use crate::{Disconnect, Error};

impl ClientInner {
    pub(crate) async fn handle_refresh(
        &self,
        req: proto::RefreshRequest,
    ) -> Result<proto::RefreshResult, HandlerError> {
        if req.token.is_empty() || !self.state.lock().client_side_refresh {
            return Err(Disconnect::BAD_REQUEST.into());
        }
        let Some(h) = get_handler!(self, refresh) else {
            return Err(Error::NOT_AVAILABLE.into());
        };
        let reply = h(
            self.client(),
            RefreshEvent {
                token: req.token,
                client_side: true,
            },
        )
        .await?;
        if reply.expired {
            return Err(Disconnect::EXPIRED.into());
        }
        let now = unix_now();
        if reply.expire_at > 0 && reply.expire_at <= now {
            return Err(Error::EXPIRED.into());
        }
        let mut state = self.state.lock();
        state.expire_at = reply.expire_at;
        if let Some(info) = reply.info {
            state.info = info;
        }
        let mut timers = std::mem::take(&mut state.timers);
        self.set_expiry(&mut timers, reply.expire_at, true);
        state.timers = timers;
        Ok(proto::RefreshResult {
            expires: reply.expire_at > 0,
            ttl: (reply.expire_at - now).max(0) as u32,
            ..Default::default()
        })
    }

    pub(crate) async fn handle_sub_refresh(
        &self,
        req: proto::SubRefreshRequest,
    ) -> Result<proto::SubRefreshResult, HandlerError> {
        if req.channel.is_empty() {
            return Err(Disconnect::BAD_REQUEST.into());
        }
        let (client_side, shared_poll) = match self.state.lock().subs.get(&req.channel) {
            None => return Err(Error::PERMISSION_DENIED.into()),
            Some(sub) => (sub.client_side_refresh, sub.shared_poll),
        };
        if shared_poll && req.r#type == TYPE_UNTRACK {
            return self.handle_untrack(&req);
        }
        if !client_side {
            return Err(Disconnect::BAD_REQUEST.into());
        }
        if req.token.is_empty() {
            return Err(Error::BAD_REQUEST.into());
        }
        let Some(h) = get_handler!(self, sub_refresh) else {
            return Err(Error::NOT_AVAILABLE.into());
        };
        let reply = h(
            self.client(),
            SubRefreshEvent {
                channel: req.channel.clone(),
                token: req.token,
                client_side: true,
            },
        )
        .await?;
        if reply.expired {
            return Err(Error::TOKEN_EXPIRED.into());
        }
        let now = unix_now();
        if reply.expire_at > 0 && reply.expire_at <= now {
            return Err(Error::EXPIRED.into());
        }
        let delay = self.node.config.client_expired_sub_close_delay;
        let mut state = self.state.lock();
        if let Some(sub) = state.subs.get_mut(&req.channel) {
            sub.expire_at = reply.expire_at;
            sub.expire_deadline =
                (reply.expire_at > 0).then(|| deadline_of(reply.expire_at) + delay);
        }
        Ok(proto::SubRefreshResult {
            expires: reply.expire_at > 0,
            ttl: (reply.expire_at - now).max(0) as u32,
            ..Default::default()
        })
    }
}
