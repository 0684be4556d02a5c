//! Who is in a channel: the PresenceManager and its in-memory default.

mod memory;

use std::collections::HashMap;

pub use memory::MemoryPresenceManager;

use crate::broker::{BoxFuture, ClientInfo, EngineError};

/// Counts of a channel's presence.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PresenceStats {
    /// Connections present.
    pub num_clients: u32,
    /// Distinct users present.
    pub num_users: u32,
}

/// Failures of a presence manager.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PresenceError {
    /// The engine cannot be reached or failed; [`source`](std::error::Error::source) is
    /// the engine's own error when there is one.
    #[error(transparent)]
    Unavailable(#[from] EngineError),
}

/// Keeps the presence sets of channels. Nodes add each subscriber of a channel with
/// presence on, refresh it periodically and remove it on unsubscribe.
pub trait PresenceManager: Send + Sync + 'static {
    /// Everyone present in `channel`, by connection id.
    fn presence(
        &self,
        channel: &str,
    ) -> BoxFuture<'_, Result<HashMap<String, ClientInfo>, PresenceError>>;
    /// Counts of `channel`'s presence.
    fn presence_stats(&self, channel: &str) -> BoxFuture<'_, Result<PresenceStats, PresenceError>>;
    /// Adds or refreshes a connection's presence.
    fn add_presence(
        &self,
        channel: &str,
        client_id: &str,
        info: ClientInfo,
    ) -> BoxFuture<'_, Result<(), PresenceError>>;
    /// Removes a connection's presence.
    fn remove_presence(
        &self,
        channel: &str,
        client_id: &str,
        user: &str,
    ) -> BoxFuture<'_, Result<(), PresenceError>>;
}
