//! Conversions between the protobuf messages of the gRPC API and the request and result
//! types of the server API's executor (`api/proto.rs`).

use std::collections::HashMap;

use bytes::Bytes;

use super::pb;
use crate::api::proto::{
    ApiError, BoolValue, BroadcastRequest, BroadcastResult, ChannelInfo, ChannelRequest,
    ChannelsRequest, ChannelsResult, ClientInfo, DisconnectObject, DisconnectRequest, Empty,
    HistoryRequest, HistoryResult, InfoRequest, InfoResult, MapEntry, MapPublishRequest,
    MapPublishResult, MapReadStateRequest, MapReadStateResult, MapReadStreamRequest,
    MapReadStreamResult, MapRemoveRequest, MapStatsResult, NodeResult, PresenceResult,
    PresenceStatsResult, Publication, PublishRequest, PublishResult, Raw, RefreshRequest, Response,
    RpcRequest, SharedPollPublishRequest, StreamPosition, SubscribeOptionOverride,
    SubscribeRequest, UnsubscribeRequest,
};

/// A protobuf `bytes` field: empty means absent, as in Go's generated structs.
fn raw(bytes: Bytes) -> Raw {
    Raw((!bytes.is_empty()).then_some(bytes))
}

impl From<ApiError> for pb::Error {
    fn from(e: ApiError) -> Self {
        pb::Error {
            code: e.code,
            message: e.message.to_owned(),
        }
    }
}

// ---------------------------------------------------------------------------------------
// Requests.

impl From<pb::PublishRequest> for PublishRequest {
    fn from(r: pb::PublishRequest) -> Self {
        PublishRequest {
            channel: r.channel,
            data: raw(r.data),
            b64data: r.b64data,
            skip_history: r.skip_history,
            tags: r.tags,
            idempotency_key: r.idempotency_key,
            delta: r.delta,
            version: r.version,
            version_epoch: r.version_epoch,
        }
    }
}

impl From<pb::BroadcastRequest> for BroadcastRequest {
    fn from(r: pb::BroadcastRequest) -> Self {
        BroadcastRequest {
            channels: r.channels,
            data: raw(r.data),
            b64data: r.b64data,
            skip_history: r.skip_history,
            tags: r.tags,
            idempotency_key: r.idempotency_key,
            delta: r.delta,
            version: r.version,
            version_epoch: r.version_epoch,
        }
    }
}

impl From<pb::StreamPosition> for StreamPosition {
    fn from(p: pb::StreamPosition) -> Self {
        StreamPosition {
            offset: p.offset,
            epoch: p.epoch,
        }
    }
}

fn bool_value(v: Option<pb::BoolValue>) -> Option<BoolValue> {
    v.map(|v| BoolValue { value: v.value })
}

impl From<pb::SubscribeRequest> for SubscribeRequest {
    fn from(r: pb::SubscribeRequest) -> Self {
        SubscribeRequest {
            channel: r.channel,
            user: r.user,
            expire_at: r.expire_at,
            info: raw(r.info),
            b64info: r.b64info,
            client: r.client,
            data: raw(r.data),
            b64data: r.b64data,
            recover_since: r.recover_since.map(Into::into),
            r#override: r.r#override.map(|o| SubscribeOptionOverride {
                presence: bool_value(o.presence),
                join_leave: bool_value(o.join_leave),
                force_recovery: bool_value(o.force_recovery),
                force_positioning: bool_value(o.force_positioning),
                force_push_join_leave: bool_value(o.force_push_join_leave),
            }),
            session: r.session,
        }
    }
}

impl From<pb::UnsubscribeRequest> for UnsubscribeRequest {
    fn from(r: pb::UnsubscribeRequest) -> Self {
        UnsubscribeRequest {
            channel: r.channel,
            user: r.user,
            client: r.client,
            session: r.session,
        }
    }
}

impl From<pb::DisconnectRequest> for DisconnectRequest {
    fn from(r: pb::DisconnectRequest) -> Self {
        DisconnectRequest {
            user: r.user,
            disconnect: r.disconnect.map(|d| DisconnectObject {
                code: d.code,
                reason: d.reason,
            }),
            client: r.client,
            whitelist: r.whitelist,
            session: r.session,
        }
    }
}

impl From<pb::HistoryRequest> for HistoryRequest {
    fn from(r: pb::HistoryRequest) -> Self {
        HistoryRequest {
            channel: r.channel,
            limit: r.limit,
            since: r.since.map(Into::into),
            reverse: r.reverse,
        }
    }
}

impl From<pb::HistoryRemoveRequest> for ChannelRequest {
    fn from(r: pb::HistoryRemoveRequest) -> Self {
        ChannelRequest { channel: r.channel }
    }
}

impl From<pb::PresenceRequest> for ChannelRequest {
    fn from(r: pb::PresenceRequest) -> Self {
        ChannelRequest { channel: r.channel }
    }
}

impl From<pb::PresenceStatsRequest> for ChannelRequest {
    fn from(r: pb::PresenceStatsRequest) -> Self {
        ChannelRequest { channel: r.channel }
    }
}

impl From<pb::InfoRequest> for InfoRequest {
    fn from(_: pb::InfoRequest) -> Self {
        InfoRequest {}
    }
}

impl From<pb::RpcRequest> for RpcRequest {
    fn from(r: pb::RpcRequest) -> Self {
        RpcRequest {
            method: r.method,
            params: raw(r.params),
        }
    }
}

impl From<pb::RefreshRequest> for RefreshRequest {
    fn from(r: pb::RefreshRequest) -> Self {
        RefreshRequest {
            user: r.user,
            client: r.client,
            expired: r.expired,
            expire_at: r.expire_at,
            info: raw(r.info),
            session: r.session,
        }
    }
}

impl From<pb::ChannelsRequest> for ChannelsRequest {
    fn from(r: pb::ChannelsRequest) -> Self {
        ChannelsRequest { pattern: r.pattern }
    }
}

// ---------------------------------------------------------------------------------------
// Results.

impl From<PublishResult> for pb::PublishResult {
    fn from(r: PublishResult) -> Self {
        pb::PublishResult {
            offset: r.offset,
            epoch: r.epoch,
        }
    }
}

impl From<BroadcastResult> for pb::BroadcastResult {
    fn from(r: BroadcastResult) -> Self {
        let responses = r
            .responses
            .into_iter()
            .map(|Response { error, result }| pb::PublishResponse {
                error: error.map(Into::into),
                result: result.map(Into::into),
            })
            .collect();
        pb::BroadcastResult { responses }
    }
}

/// Methods that answer nothing answer an empty message.
macro_rules! from_empty {
    ($($message:ident),*) => {
        $(impl From<Empty> for pb::$message {
            fn from(_: Empty) -> Self {
                pb::$message::default()
            }
        })*
    };
}

from_empty!(
    SubscribeResult,
    UnsubscribeResult,
    DisconnectResult,
    HistoryRemoveResult,
    RpcResult,
    RefreshResult,
    MapClearResult,
    SharedPollPublishResult
);

impl From<ClientInfo> for pb::ClientInfo {
    fn from(c: ClientInfo) -> Self {
        pb::ClientInfo {
            user: c.user,
            client: c.client,
            conn_info: c.conn_info.0,
            chan_info: c.chan_info.0,
        }
    }
}

impl From<PresenceResult> for pb::PresenceResult {
    fn from(r: PresenceResult) -> Self {
        let presence = r.presence.into_iter().map(|(k, v)| (k, v.into())).collect();
        pb::PresenceResult { presence }
    }
}

impl From<PresenceStatsResult> for pb::PresenceStatsResult {
    fn from(r: PresenceStatsResult) -> Self {
        pb::PresenceStatsResult {
            num_clients: r.num_clients,
            num_users: r.num_users,
        }
    }
}

impl From<Publication> for pb::Publication {
    fn from(p: Publication) -> Self {
        pb::Publication {
            data: p.data.0,
            info: p.info.map(Into::into),
            offset: p.offset,
            tags: p.tags,
        }
    }
}

impl From<HistoryResult> for pb::HistoryResult {
    fn from(r: HistoryResult) -> Self {
        pb::HistoryResult {
            publications: r.publications.into_iter().map(Into::into).collect(),
            epoch: r.epoch,
            offset: r.offset,
        }
    }
}

impl From<NodeResult> for pb::NodeResult {
    fn from(n: NodeResult) -> Self {
        pb::NodeResult {
            uid: n.uid,
            name: n.name,
            version: n.version,
            num_clients: n.num_clients,
            num_users: n.num_users,
            num_channels: n.num_channels,
            uptime: n.uptime,
            metrics: None,
            process: None,
            num_subs: n.num_subs,
        }
    }
}

impl From<InfoResult> for pb::InfoResult {
    fn from(r: InfoResult) -> Self {
        pb::InfoResult {
            nodes: r.nodes.into_iter().map(Into::into).collect(),
        }
    }
}

impl From<ChannelsResult> for pb::ChannelsResult {
    fn from(r: ChannelsResult) -> Self {
        let channels: HashMap<String, pb::ChannelInfo> = r
            .channels
            .into_iter()
            .map(|(k, ChannelInfo { num_clients })| (k, pb::ChannelInfo { num_clients }))
            .collect();
        pb::ChannelsResult { channels }
    }
}

// ---------------------------------------------------------------------------------------
// Map channels.

impl From<pb::MapPublishRequest> for MapPublishRequest {
    // Like Centrifugo, `stream_data` and `score` are accepted and not used.
    fn from(r: pb::MapPublishRequest) -> Self {
        MapPublishRequest {
            channel: r.channel,
            key: r.key,
            data: raw(r.data),
            b64data: r.b64data,
            tags: r.tags,
            idempotency_key: r.idempotency_key,
            delta: r.delta,
            version: r.version,
            version_epoch: r.version_epoch,
            key_mode: r.key_mode,
        }
    }
}

impl From<pb::MapRemoveRequest> for MapRemoveRequest {
    fn from(r: pb::MapRemoveRequest) -> Self {
        MapRemoveRequest {
            channel: r.channel,
            key: r.key,
            idempotency_key: r.idempotency_key,
        }
    }
}

impl From<pb::MapReadStateRequest> for MapReadStateRequest {
    fn from(r: pb::MapReadStateRequest) -> Self {
        MapReadStateRequest {
            channel: r.channel,
            cursor: r.cursor,
            limit: r.limit,
            key: r.key,
            asc: r.asc,
            revision_offset: r.revision_offset,
            revision_epoch: r.revision_epoch,
        }
    }
}

impl From<pb::MapReadStreamRequest> for MapReadStreamRequest {
    fn from(r: pb::MapReadStreamRequest) -> Self {
        MapReadStreamRequest {
            channel: r.channel,
            since_offset: r.since_offset,
            since_epoch: r.since_epoch,
            limit: r.limit,
            reverse: r.reverse,
        }
    }
}

impl From<pb::MapStatsRequest> for ChannelRequest {
    fn from(r: pb::MapStatsRequest) -> Self {
        ChannelRequest { channel: r.channel }
    }
}

impl From<pb::MapClearRequest> for ChannelRequest {
    fn from(r: pb::MapClearRequest) -> Self {
        ChannelRequest { channel: r.channel }
    }
}

impl From<pb::SharedPollPublishRequest> for SharedPollPublishRequest {
    fn from(r: pb::SharedPollPublishRequest) -> Self {
        SharedPollPublishRequest {
            channel: r.channel,
            key: r.key,
            data: raw(r.data),
            b64data: r.b64data,
            version: r.version,
            epoch: r.epoch,
        }
    }
}

impl From<MapPublishResult> for pb::MapPublishResult {
    fn from(r: MapPublishResult) -> Self {
        pb::MapPublishResult {
            offset: r.offset,
            epoch: r.epoch,
            suppressed: r.suppressed,
            suppress_reason: r.suppress_reason,
        }
    }
}

impl From<MapPublishResult> for pb::MapRemoveResult {
    fn from(r: MapPublishResult) -> Self {
        pb::MapRemoveResult {
            offset: r.offset,
            epoch: r.epoch,
            suppressed: r.suppressed,
            suppress_reason: r.suppress_reason,
        }
    }
}

impl From<MapEntry> for pb::MapEntry {
    fn from(e: MapEntry) -> Self {
        pb::MapEntry {
            key: e.key,
            data: e.data.0,
            tags: e.tags,
            offset: e.offset,
            score: 0,
            removed: e.removed,
            time: e.time,
        }
    }
}

impl From<MapReadStateResult> for pb::MapReadStateResult {
    fn from(r: MapReadStateResult) -> Self {
        pb::MapReadStateResult {
            entries: r.entries.into_iter().map(Into::into).collect(),
            offset: r.offset,
            epoch: r.epoch,
            cursor: r.cursor,
        }
    }
}

impl From<MapReadStreamResult> for pb::MapReadStreamResult {
    fn from(r: MapReadStreamResult) -> Self {
        pb::MapReadStreamResult {
            entries: r.entries.into_iter().map(Into::into).collect(),
            offset: r.offset,
            epoch: r.epoch,
        }
    }
}

impl From<MapStatsResult> for pb::MapStatsResult {
    fn from(r: MapStatsResult) -> Self {
        pb::MapStatsResult {
            num_keys: r.num_keys,
        }
    }
}
