//! In-memory presence.

use std::collections::{HashMap, HashSet};
use std::hash::BuildHasher;

use parking_lot::Mutex;

use super::{PresenceError, PresenceManager, PresenceStats};
use crate::broker::{BoxFuture, ClientInfo};

/// Number of channel shards, so that presence updates of unrelated channels rarely contend.
const SHARDS: usize = 64;

type Clients = HashMap<String, ClientInfo>;

/// Single-node presence kept in process memory: channel → connection id → [`ClientInfo`].
///
/// Entries stay until removed (no TTL, as upstream: the node removes a connection's
/// presence on unsubscribe and disconnect).
///
/// ```
/// use gyre::{ClientInfo, MemoryPresenceManager, PresenceManager};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), gyre::PresenceError> {
/// let presence = MemoryPresenceManager::new();
/// presence.add_presence("room", "c1", ClientInfo::new("alice", "c1")).await?;
/// presence.add_presence("room", "c2", ClientInfo::new("alice", "c2")).await?;
/// let stats = presence.presence_stats("room").await?;
/// assert_eq!((stats.num_clients, stats.num_users), (2, 1));
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct MemoryPresenceManager {
    shards: Box<[Mutex<HashMap<String, Clients>>]>,
    hasher: foldhash::fast::RandomState,
}

impl Default for MemoryPresenceManager {
    fn default() -> Self {
        MemoryPresenceManager {
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            hasher: foldhash::fast::RandomState::default(),
        }
    }
}

impl MemoryPresenceManager {
    /// An empty presence manager.
    ///
    /// ```
    /// let presence = gyre::MemoryPresenceManager::new();
    /// # let _ = presence;
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    fn shard(&self, channel: &str) -> &Mutex<HashMap<String, Clients>> {
        // SHARDS is a power of two, so masking keeps the distribution of the hash.
        let index = (self.hasher.hash_one(channel) as usize) & (SHARDS - 1);
        &self.shards[index]
    }

    fn stats(&self, channel: &str) -> PresenceStats {
        let shard = self.shard(channel).lock();
        let Some(clients) = shard.get(channel) else {
            return PresenceStats::default();
        };
        let users: HashSet<&str> = clients.values().map(|info| info.user.as_str()).collect();
        PresenceStats {
            // Saturate rather than wrap: counts beyond u32 are not reachable in practice
            // and must not turn into small numbers.
            num_clients: u32::try_from(clients.len()).unwrap_or(u32::MAX),
            num_users: u32::try_from(users.len()).unwrap_or(u32::MAX),
        }
    }

    fn add(&self, channel: &str, client_id: &str, info: ClientInfo) {
        let mut shard = self.shard(channel).lock();
        match shard.get_mut(channel) {
            Some(clients) => {
                clients.insert(client_id.to_owned(), info);
            }
            None => {
                shard.insert(
                    channel.to_owned(),
                    HashMap::from([(client_id.to_owned(), info)]),
                );
            }
        }
    }

    fn remove(&self, channel: &str, client_id: &str) {
        let mut shard = self.shard(channel).lock();
        if let Some(clients) = shard.get_mut(channel) {
            clients.remove(client_id);
            // Channels come and go; keeping empty sets would grow memory forever.
            if clients.is_empty() {
                shard.remove(channel);
            }
        }
    }
}

impl PresenceManager for MemoryPresenceManager {
    fn presence(
        &self,
        channel: &str,
    ) -> BoxFuture<'_, Result<HashMap<String, ClientInfo>, PresenceError>> {
        let clients = self
            .shard(channel)
            .lock()
            .get(channel)
            .cloned()
            .unwrap_or_default();
        Box::pin(async move { Ok(clients) })
    }

    fn presence_stats(&self, channel: &str) -> BoxFuture<'_, Result<PresenceStats, PresenceError>> {
        let stats = self.stats(channel);
        Box::pin(async move { Ok(stats) })
    }

    fn add_presence(
        &self,
        channel: &str,
        client_id: &str,
        info: ClientInfo,
    ) -> BoxFuture<'_, Result<(), PresenceError>> {
        self.add(channel, client_id, info);
        Box::pin(async { Ok(()) })
    }

    fn remove_presence(
        &self,
        channel: &str,
        client_id: &str,
        _user: &str,
    ) -> BoxFuture<'_, Result<(), PresenceError>> {
        // The user id only matters to engines that keep per-user counters (Redis).
        self.remove(channel, client_id);
        Box::pin(async { Ok(()) })
    }
}

// Shared presence behaviour is checked by the conformance suite
// (`gyre_testkit::conformance`, run in `tests/engine_memory.rs`).
#[cfg(test)]
mod tests {
    use super::*;

    fn info(user: &str, client: &str) -> ClientInfo {
        ClientInfo::new(user, client)
    }

    #[tokio::test]
    async fn presence_empty_channels_are_dropped() {
        let p = MemoryPresenceManager::new();
        for i in 0..100 {
            let ch = format!("ch{i}");
            p.add_presence(&ch, "c", info("u", "c")).await.unwrap();
            p.remove_presence(&ch, "c", "u").await.unwrap();
        }
        let total: usize = p.shards.iter().map(|s| s.lock().len()).sum();
        assert_eq!(total, 0);
    }
}
