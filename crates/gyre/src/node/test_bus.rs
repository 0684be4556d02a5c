//! An in-process bus standing in for a shared engine, for tests of several nodes.

use std::sync::Arc;

use bytes::Bytes;
use parking_lot::Mutex;

use crate::broker::{BoxFuture, BrokerError};
use crate::controller::{ControlEventHandler, Controller};

/// The nodes on the bus, by id.
#[derive(Default)]
pub(crate) struct Bus {
    nodes: Mutex<Vec<(String, Arc<dyn ControlEventHandler>)>>,
}

/// One node's controller on a [`Bus`]: delivers synchronously to the handlers addressed.
pub(crate) struct BusController(pub(crate) Arc<Bus>);

impl Controller for BusController {
    fn run(
        &self,
        node_id: &str,
        handler: Arc<dyn ControlEventHandler>,
    ) -> BoxFuture<'_, Result<(), BrokerError>> {
        self.0.nodes.lock().push((node_id.to_owned(), handler));
        Box::pin(async { Ok(()) })
    }

    fn publish_control(
        &self,
        data: Bytes,
        to: Option<&str>,
    ) -> BoxFuture<'_, Result<(), BrokerError>> {
        let targets: Vec<_> = self
            .0
            .nodes
            .lock()
            .iter()
            .filter(|(id, _)| to.is_none_or(|t| t == id))
            .map(|(_, h)| h.clone())
            .collect();
        for h in targets {
            h.handle_control(data.clone());
        }
        Box::pin(async { Ok(()) })
    }
}
