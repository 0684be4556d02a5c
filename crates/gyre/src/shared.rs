//! What a node shares with its connections.
//!
//! A connection needs the hub, the broker, the presence manager, the configuration, the
//! metrics and the application's connect hooks, but not the node itself: the node owns
//! one [`NodeShared`] and every connection holds an `Arc` of it (one pointer per
//! connection, as a node handle would be), so the client never imports the node.
//!
//! It is generic over the connection type `C` and the hooks `H` because both are
//! defined by the client above; the client names the one instantiation
//! (`client::Shared`).

use std::sync::Arc;

use crate::broker::{Broker, MapBroker};
use crate::config::Config;
use crate::hub::Hub;
use crate::metrics::NodeMetrics;
use crate::presence::PresenceManager;
use crate::shared_poll::SharedPollManager;

/// The state of a node that its connections use.
pub(crate) struct NodeShared<C, H> {
    /// The node's unique id.
    pub(crate) id: String,
    pub(crate) config: Config,
    pub(crate) hub: Hub<C>,
    pub(crate) broker: Arc<dyn Broker>,
    pub(crate) map_broker: Arc<dyn MapBroker>,
    pub(crate) presence: Arc<dyn PresenceManager>,
    /// Shared-poll channels of this node.
    pub(crate) shared_poll: SharedPollManager,
    pub(crate) metrics: NodeMetrics,
    /// The application's handlers that run when a connection authenticates.
    pub(crate) hooks: H,
}

impl<C, H> std::fmt::Debug for NodeShared<C, H> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeShared")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}
