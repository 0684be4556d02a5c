//! `history`.

use gyre_protocol::proto;

use crate::broker::{HistoryOptions, StreamPosition};
use crate::client::subscription::broker_error;
use crate::client::{ClientInner, get_handler};
use crate::events::{HandlerError, HistoryEvent};
use crate::wire::publication_to_proto;
use crate::{Disconnect, Error};

impl ClientInner {
    pub(crate) async fn handle_history(
        &self,
        req: proto::HistoryRequest,
    ) -> Result<proto::HistoryResult, HandlerError> {
        if req.channel.is_empty() {
            return Err(Disconnect::BAD_REQUEST.into());
        }
        let Some(h) = get_handler!(self, history) else {
            return Err(Error::NOT_AVAILABLE.into());
        };
        let max = self.node.config.history_max_publication_limit as i32;
        let mut limit = req.limit;
        if max > 0 && (limit < 0 || limit > max) {
            limit = max;
        }
        let since = req.since.map(|s| StreamPosition::new(s.offset, s.epoch));
        if req.reverse && since.as_ref().is_some_and(|s| s.offset == 0) {
            return Err(Error::BAD_REQUEST.into());
        }
        h(
            self.client(),
            HistoryEvent {
                channel: req.channel.clone(),
                limit,
                since: since.clone(),
                reverse: req.reverse,
            },
        )
        .await?;
        let mut options = HistoryOptions::new(limit).reverse(req.reverse);
        if let Some(since) = since {
            options = options.since(since);
        }
        let history = self
            .node
            .broker
            .history(&req.channel, options)
            .await
            .map_err(broker_error)?;
        Ok(proto::HistoryResult {
            publications: history
                .publications
                .iter()
                .map(publication_to_proto)
                .collect(),
            epoch: history.position.epoch,
            offset: history.position.offset,
        })
    }
}
