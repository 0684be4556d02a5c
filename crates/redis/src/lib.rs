//! Redis engine for Gyre: [`RedisBroker`] (a [`gyre::Broker`] and [`gyre::Controller`]),
//! [`RedisPresenceManager`] (a [`gyre::PresenceManager`]) and [`RedisMapBroker`] (a
//! [`gyre::MapBroker`]).
//!
//! Many Gyre nodes sharing one Redis behave as one node, and a Gyre node can share a
//! Redis with Centrifugo v6 / centrifuge nodes: key names, stream layout, PUB/SUB
//! channels and payloads are upstream's (see `keys.rs` and `payload.rs`). Supported
//! deployments: one instance, several instances sharded by jump consistent hash,
//! a sentinel-managed master, and Redis Cluster (hash-tagged keys).
//!
//! ```no_run
//! use std::sync::Arc;
//! use gyre_redis::{RedisBroker, RedisConfig};
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let broker = RedisBroker::new(RedisConfig::new("redis://127.0.0.1:6379").prefix("centrifugo")).await?;
//! let presence = broker.presence_manager();
//! # let _ = (broker, presence);
//! # Ok(())
//! # }
//! ```

mod broker;
mod config;
mod keys;
mod map_broker;
mod payload;
mod presence;
mod pubsub;
mod scripts;
mod shard;
mod stats;

pub use broker::RedisBroker;
pub use config::{RedisConfig, RedisEngineError};
pub use map_broker::{MapChannelResolver, RedisMapBroker, RedisMapOptions};
pub use presence::RedisPresenceManager;

/// Entry points for the fuzz targets; not part of the API.
#[doc(hidden)]
pub mod __fuzz {
    /// Parses one PUB/SUB payload as it arrives from another node (Gyre or Centrifugo).
    pub fn payload(data: &[u8]) -> bool {
        crate::payload::parse(&bytes::Bytes::copy_from_slice(data)).is_ok()
    }
}
