//! Values handed to the user: events, publications, call results.

use std::collections::HashMap;

use bytes::Bytes;
use gyre_protocol::{Disconnect, Unsubscribe, proto};

use crate::ClientError;

/// Connection state changes and connection-level data (received from the receiver that
/// [`Client::new`](crate::Client::new) returns).
///
/// `Connecting` and `Disconnected` carry a [`Disconnect`] with the code and reason that
/// caused the change: server codes (3000–4999) as sent, or client-side codes —
/// connecting: 0 connect called, 1 transport closed, 2 no ping, 3 subscribe timeout,
/// 4 unsubscribe error; disconnected: 0 disconnect called, 1 unauthorized, 2 bad protocol,
/// 3 message size limit (the numbers of centrifuge-js).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ClientEvent {
    /// The client is (re)connecting.
    Connecting(Disconnect),
    /// The connect reply arrived.
    Connected {
        /// Client id given by the server.
        client: String,
        /// Server version.
        version: String,
        /// Custom data from the server's connect handler (empty if none).
        data: Bytes,
    },
    /// The client stopped and will not reconnect by itself.
    Disconnected(Disconnect),
    /// A background failure (transport, token, connect or refresh error).
    Error(ClientError),
    /// An asynchronous `message` push (server-side `send`).
    Message(Bytes),
    /// A server-side subscription is being re-established after a connection loss.
    ServerSubscribing {
        /// Channel.
        channel: String,
    },
    /// A server-side subscription is active (from the connect result or a `subscribe` push).
    ServerSubscribed(SubscribedContext),
    /// A server-side subscription ended.
    ServerUnsubscribed {
        /// Channel.
        channel: String,
    },
    /// A publication in a server-side subscription.
    ServerPublication {
        /// Channel.
        channel: String,
        /// The publication.
        publication: Publication,
    },
    /// Someone joined a server-side subscription's channel.
    ServerJoin {
        /// Channel.
        channel: String,
        /// Who.
        info: ClientInfo,
    },
    /// Someone left a server-side subscription's channel.
    ServerLeave {
        /// Channel.
        channel: String,
        /// Who.
        info: ClientInfo,
    },
}

/// State changes and data of one client-side subscription.
///
/// `Subscribing` codes: 0 subscribe called, 1 transport closed, or the server's
/// unsubscribe code (≥ 2500). `Unsubscribed` codes: 0 unsubscribe called, 1 unauthorized,
/// or a server code (unsubscribe push < 2500, or subscribe error code).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum SubscriptionEvent {
    /// Waiting for the subscribe reply (or for the client to connect).
    Subscribing(Unsubscribe),
    /// Subscribed; recovered publications follow as `Publication` events.
    Subscribed(SubscribedContext),
    /// The subscription stopped.
    Unsubscribed(Unsubscribe),
    /// A publication.
    Publication(Publication),
    /// Someone subscribed to the channel (needs `join_leave`).
    Join(ClientInfo),
    /// Someone unsubscribed from the channel (needs `join_leave`).
    Leave(ClientInfo),
    /// A subscribe or refresh failure that is retried.
    Error(ClientError),
}

/// What the server said when a subscription became active.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct SubscribedContext {
    /// Channel.
    pub channel: String,
    /// The stream is recoverable: the client tracks its position.
    pub recoverable: bool,
    /// The stream is positioned.
    pub positioned: bool,
    /// Current position, when positioned or recoverable.
    pub stream_position: Option<StreamPosition>,
    /// The subscribe asked for recovery.
    pub was_recovering: bool,
    /// Recovery succeeded: no publication was missed.
    pub recovered: bool,
    /// Custom data from the server (empty if none).
    pub data: Bytes,
}

impl SubscribedContext {
    pub(crate) fn from_result(channel: &str, r: &proto::SubscribeResult) -> Self {
        SubscribedContext {
            channel: channel.to_owned(),
            recoverable: r.recoverable,
            positioned: r.positioned,
            stream_position: (r.positioned || r.recoverable).then(|| StreamPosition {
                offset: r.offset,
                epoch: r.epoch.clone(),
            }),
            was_recovering: r.was_recovering,
            recovered: r.recovered,
            data: r.data.clone(),
        }
    }
}

/// A position in a channel's history stream.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StreamPosition {
    /// Offset of the last publication.
    pub offset: u64,
    /// Identifies the incarnation of the stream.
    pub epoch: String,
}

/// Who published, joined or left.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct ClientInfo {
    /// User id.
    pub user: String,
    /// Client (connection) id.
    pub client: String,
    /// Connection info (empty if none).
    pub conn_info: Bytes,
    /// Channel info (empty if none).
    pub chan_info: Bytes,
}

impl From<proto::ClientInfo> for ClientInfo {
    fn from(i: proto::ClientInfo) -> Self {
        ClientInfo {
            user: i.user,
            client: i.client,
            conn_info: i.conn_info,
            chan_info: i.chan_info,
        }
    }
}

/// A message published into a channel.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Publication {
    /// Payload (raw JSON with the JSON protocol).
    pub data: Bytes,
    /// Offset in the stream (0 when the channel has no history).
    pub offset: u64,
    /// The publisher, when a client published.
    pub info: Option<ClientInfo>,
    /// Tags attached by the publisher.
    pub tags: HashMap<String, String>,
}

impl From<proto::Publication> for Publication {
    fn from(p: proto::Publication) -> Self {
        Publication {
            data: p.data,
            offset: p.offset,
            info: p.info.map(Into::into),
            tags: p.tags,
        }
    }
}

/// Options of a history call.
///
/// ```
/// use gyre_client::{HistoryOptions, StreamPosition};
/// let opts = HistoryOptions { limit: 10, since: Some(StreamPosition { offset: 5, epoch: "e".into() }), reverse: false };
/// assert_eq!(HistoryOptions::default().limit, 0);
/// # let _ = opts;
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HistoryOptions {
    /// 0 = only the current position, -1 = all (server caps), N = at most N.
    pub limit: i32,
    /// Only publications after this position (before it with `reverse`).
    pub since: Option<StreamPosition>,
    /// Newest first.
    pub reverse: bool,
}

/// Result of a history call.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct HistoryResult {
    /// Publications, oldest first unless `reverse`.
    pub publications: Vec<Publication>,
    /// Current stream epoch.
    pub epoch: String,
    /// Current stream top offset.
    pub offset: u64,
}

/// Result of a presence_stats call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct PresenceStats {
    /// Connections subscribed.
    pub num_clients: u32,
    /// Distinct users subscribed.
    pub num_users: u32,
}
