//! NATS broker and controller for Gyre, wire-compatible with Centrifugo's NATS broker.
//!
//! [`NatsBroker`] connects every node to one NATS server (or cluster) and carries:
//!
//! | what | subject | payload |
//! |---|---|---|
//! | publications, joins, leaves of a channel | `<prefix>.client.<channel>` | protobuf `Push { channel, pub \| join \| leave }` of the client protocol |
//! | control broadcast | `<prefix>.control` | the node's encoded control command, as is |
//! | control message to one node | `<prefix>.node.<node id>` | the same |
//!
//! Delivery is at most once; there is no history, so channels that need recovery or
//! history need the Redis or memory broker. In [raw mode](RawMode) the channel subject
//! carries the publication data alone.
//!
//! ```no_run
//! # async fn example() -> Result<(), gyre::BrokerError> {
//! use gyre_nats::{NatsBroker, NatsConfig};
//! let broker = NatsBroker::connect(NatsConfig::new("nats://127.0.0.1:4222").prefix("centrifugo")).await?;
//! // Hand `broker.clone()` to the node as its broker and `broker` as its controller.
//! # let _ = broker;
//! # Ok(())
//! # }
//! ```

mod broker;
mod codec;
mod config;

pub use async_nats::rustls;
pub use broker::{HISTORY_NOT_AVAILABLE, NatsBroker};
pub use config::{NatsConfig, RawMode};

/// Entry points for the fuzz targets; not part of the API.
#[doc(hidden)]
pub mod __fuzz {
    /// Decodes one message as it arrives from another node (Gyre or Centrifugo).
    pub fn message(data: &[u8]) -> bool {
        crate::codec::decode(data).is_ok()
    }
}
