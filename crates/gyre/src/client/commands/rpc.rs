//! `rpc`.

use gyre_protocol::proto;

use crate::Error;
use crate::client::{ClientInner, get_handler};
use crate::events::{HandlerError, RpcEvent};

impl ClientInner {
    pub(crate) async fn handle_rpc(
        &self,
        req: proto::RpcRequest,
    ) -> Result<proto::RpcResult, HandlerError> {
        let Some(h) = get_handler!(self, rpc) else {
            return Err(Error::NOT_AVAILABLE.into());
        };
        let reply = h(
            self.client(),
            RpcEvent {
                method: req.method,
                data: req.data,
            },
        )
        .await?;
        Ok(proto::RpcResult { data: reply.data })
    }
}
