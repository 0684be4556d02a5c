//! The Controller: node-to-node control messages over the shared engine.
//!
//! Nodes announce themselves (heartbeats with their counts), forward server-API actions
//! that concern connections on other nodes (disconnect, unsubscribe, subscribe, refresh)
//! answer surveys (channels across the cluster) and forward emulation requests to the
//! node holding their session. A single node needs no controller;
//! engines that connect several nodes (Redis, NATS) implement this trait.

use std::sync::Arc;

use bytes::Bytes;

use crate::broker::{BoxFuture, BrokerError};

/// Receives control messages addressed to this node (broadcasts included).
pub trait ControlEventHandler: Send + Sync + 'static {
    /// One encoded control message (`gyre_protocol::control::Command`).
    fn handle_control(&self, data: Bytes);
}

/// Carries control messages between the nodes sharing an engine.
pub trait Controller: Send + Sync + 'static {
    /// Starts delivering control messages for `node_id` — broadcasts and messages sent
    /// to it directly — to `handler`.
    fn run(
        &self,
        node_id: &str,
        handler: Arc<dyn ControlEventHandler>,
    ) -> BoxFuture<'_, Result<(), BrokerError>>;

    /// Sends `data` to node `to`, or to every node (this one included) when `to` is
    /// `None`.
    fn publish_control(
        &self,
        data: Bytes,
        to: Option<&str>,
    ) -> BoxFuture<'_, Result<(), BrokerError>>;
}
