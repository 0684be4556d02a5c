//! `publish`.

use gyre_protocol::proto;

use crate::client::subscription::broker_error;
use crate::client::{ClientInner, get_handler};
use crate::events::{HandlerError, PublishEvent};
use crate::metrics::Message;
use crate::{Disconnect, Error};

impl ClientInner {
    pub(crate) async fn handle_publish(
        &self,
        req: proto::PublishRequest,
    ) -> Result<proto::PublishResult, HandlerError> {
        if req.channel.is_empty() {
            return Err(Disconnect::BAD_REQUEST.into());
        }
        let max = self.node.config.channel_max_length;
        if max > 0 && req.channel.len() > max {
            return Err(Error::BAD_REQUEST.into());
        }
        if req.r#type == 1 {
            return self.handle_map_publish(req).await;
        }
        let Some(h) = get_handler!(self, publish) else {
            return Err(Error::NOT_AVAILABLE.into());
        };
        let chan_info = {
            let state = self.state.lock();
            state
                .subs
                .get(&req.channel)
                .map(|s| s.chan_info.clone())
                .unwrap_or_default()
        };
        let info = self.client_info(chan_info);
        let reply = h(
            self.client(),
            PublishEvent {
                channel: req.channel.clone(),
                data: req.data.clone(),
                client_info: info.clone(),
            },
        )
        .await?;
        let mut options = reply.options;
        if options.client_info.is_none() {
            options.client_info = Some(info);
        }
        let data = reply.data.unwrap_or(req.data);
        self.node
            .broker
            .publish(&req.channel, data, options)
            .await
            .map_err(broker_error)?;
        self.node.metrics.sent(Message::Publication);
        Ok(proto::PublishResult {})
    }
}
