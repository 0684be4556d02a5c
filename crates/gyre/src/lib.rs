//! Gyre: an embeddable real-time messaging library speaking the Centrifugal client
//! protocol v2, so that Centrifugo SDKs (centrifuge-js, centrifuge-go,
//! centrifuge-python, …) connect to it unchanged.

#![warn(missing_docs)]

mod broker;
mod client;
mod hub;
mod node;
mod presence;
mod recovery;
mod transport;

pub use broker::{
    BoxFuture, Broker, BrokerError, BrokerEventHandler, ClientInfo, HistoryFilter, HistoryOptions,
    HistoryResult, MemoryBroker, Publication, PublishOptions, PublishResult, StreamPosition,
};
pub use gyre_protocol::{Disconnect, Error, Unsubscribe};
pub use presence::{MemoryPresenceManager, PresenceError, PresenceManager, PresenceStats};
