//! `presence` and `presence_stats`.

use gyre_protocol::proto;

use crate::client::{ClientInner, get_handler};
use crate::events::{HandlerError, PresenceEvent};
use crate::wire::info_to_proto;
use crate::{Disconnect, Error};

fn presence_error(e: crate::PresenceError) -> HandlerError {
    tracing::warn!(error = %e, "presence call failed");
    Error::INTERNAL.into()
}

impl ClientInner {
    pub(crate) async fn handle_presence(
        &self,
        req: proto::PresenceRequest,
    ) -> Result<proto::PresenceResult, HandlerError> {
        if req.channel.is_empty() {
            return Err(Disconnect::BAD_REQUEST.into());
        }
        let Some(h) = get_handler!(self, presence) else {
            return Err(Error::NOT_AVAILABLE.into());
        };
        h(
            self.client(),
            PresenceEvent {
                channel: req.channel.clone(),
            },
        )
        .await?;
        let presence = self
            .node
            .presence
            .presence(&req.channel)
            .await
            .map_err(presence_error)?;
        Ok(proto::PresenceResult {
            presence: presence
                .into_iter()
                .map(|(k, v)| (k, info_to_proto(&v)))
                .collect(),
        })
    }

    pub(crate) async fn handle_presence_stats(
        &self,
        req: proto::PresenceStatsRequest,
    ) -> Result<proto::PresenceStatsResult, HandlerError> {
        if req.channel.is_empty() {
            return Err(Disconnect::BAD_REQUEST.into());
        }
        let Some(h) = get_handler!(self, presence_stats) else {
            return Err(Error::NOT_AVAILABLE.into());
        };
        h(
            self.client(),
            PresenceEvent {
                channel: req.channel.clone(),
            },
        )
        .await?;
        let stats = self
            .node
            .presence
            .presence_stats(&req.channel)
            .await
            .map_err(presence_error)?;
        Ok(proto::PresenceStatsResult {
            num_clients: stats.num_clients,
            num_users: stats.num_users,
        })
    }
}
