#![doc = include_str!("../docs/lib.md")]

mod broker;
mod client;
mod config;
mod controller;
mod events;
mod filter;
mod hub;
mod local;
pub mod metrics;
#[cfg(test)]
mod module_order;
mod node;
mod presence;
mod queue;
mod recovery;
mod session;
mod shared;
mod shared_poll;
mod transport;
mod wire;

pub use broker::{
    BoxFuture, Broker, BrokerError, BrokerEventHandler, ClientInfo, DiskSync, EngineError,
    HistoryFilter, HistoryOptions, HistoryResult, KeyMode, MapBroker, MapChannelOptions, MapMode,
    MapPublishOptions, MapPublishResult, MapReadStateOptions, MapReadStreamOptions, MapStateResult,
    MemoryBroker, MemoryMapBroker, Publication, PublishOptions, PublishResult, StreamPosition,
    SuppressReason,
};
#[cfg(test)]
pub(crate) use client::ClientSession;
pub use client::{Client, ClientHandlers};
pub use controller::{ControlEventHandler, Controller};
pub use gyre_protocol::{Disconnect, Error, Unsubscribe};
pub use local::LocalConnection;
pub use presence::{MemoryPresenceManager, PresenceError, PresenceManager, PresenceStats};
pub use transport::{
    ConnectErrorResponse, EmulationConfig, EmulationHandler, HttpStreamHandler, ResponseBody,
    SseHandler, StreamConfig, UniHttpStreamHandler, UniPushStream, UniPushStreamHandler,
    UniSseHandler, UniStreamConfig, UniWebSocketConfig, UniWebSocketHandler, WebSocketConfig,
    WebSocketHandler,
};

/// Entry points for the fuzz targets; not part of the API.
#[doc(hidden)]
pub mod __fuzz {
    /// Parses client WebSocket frames with a 64 KiB message limit.
    pub fn ws_parse(data: &[u8]) -> usize {
        let (messages, _error) = crate::transport::ws::frame::parse_all(data, 65536);
        messages.len()
    }

    /// Parses client WebSocket frames with permessage-deflate negotiated: a 64 KiB wire
    /// limit and a 640 KiB limit after decompression.
    pub fn ws_parse_deflate(data: &[u8]) -> usize {
        let (messages, _error) =
            crate::transport::ws::frame::parse_all_deflate(data, 65536, 655_360);
        messages.len()
    }

    /// Compresses `data` as one message and as a batch of its halves (JSON and binary),
    /// inflates each again and checks that the round trip is exact: panics if not.
    pub fn ws_deflate_round_trip(data: &[u8], level: u8) {
        crate::transport::ws::deflate::fuzz_round_trip(data, u32::from(level % 10));
    }

    /// Reads a unidirectional connect request from `data` as a body and as a query.
    pub fn uni_connect(data: &[u8]) {
        crate::transport::uni_connect_fuzz(data);
    }

    /// The `cf_connect` value of an SSE request's query, percent-decoded.
    pub fn sse_connect_param(query: &str) -> Option<String> {
        crate::transport::sse_connect_param(query)
    }
}
pub use events::{
    ConnectEvent, ConnectReply, Credentials, DeltaType, DisconnectEvent, HandlerError,
    HistoryEvent, MapPresence, MapPublishEvent, MapPublishReply, MessageEvent, PresenceEvent,
    PublishEvent, PublishReply, RecoveryMode, RefreshEvent, RefreshReply, RpcEvent, RpcReply,
    SubRefreshEvent, SubRefreshReply, SubscribeEvent, SubscribeOptions, SubscribeReply,
    SubscriptionType, TrackBatch, TrackBatchReply, TrackEvent, TrackItem, TrackReply,
    UnsubscribeEvent,
};
pub use node::{ClientFilter, Config, Node, NodeBuilder, NodeInfo};
pub use shared_poll::{
    SharedPollChannelOptions, SharedPollItem, SharedPollKey, SharedPollMode,
    SharedPollRefreshEvent, SharedPollRefreshReply,
};
