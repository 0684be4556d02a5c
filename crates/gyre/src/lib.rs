//! Gyre: an embeddable real-time messaging library speaking the Centrifugal client
//! protocol v2, so that Centrifugo SDKs (centrifuge-js, centrifuge-go,
//! centrifuge-python, …) connect to it unchanged.

#![warn(missing_docs)]

mod broker;
mod client;
mod events;
mod handler;
mod hub;
mod local;
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
pub use client::Client;
#[cfg(test)]
pub(crate) use client::ClientSession;
pub use local::LocalConnection;
pub use events::{
    ConnectEvent, ConnectReply, Credentials, DisconnectEvent, HandlerError, HistoryEvent,
    MessageEvent, PresenceEvent, PublishEvent, PublishReply, RefreshEvent, RefreshReply, RpcEvent,
    RpcReply, SubRefreshEvent, SubRefreshReply, SubscribeEvent, SubscribeOptions, SubscribeReply,
    UnsubscribeEvent,
};
pub use node::{Config, Node, NodeBuilder, NodeInfo};
