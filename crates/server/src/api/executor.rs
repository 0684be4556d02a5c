//! The API methods over the node and the channel configuration (upstream
//! `internal/api/api.go`): one function per method, named as the method, called by the
//! dispatch that `methods.rs` generates from its table.

use std::collections::HashMap;

use base64::Engine as _;
use bytes::Bytes;
use futures_util::StreamExt as _;
use futures_util::stream;
use gyre::{
    BrokerError, ClientFilter, Disconnect, HistoryOptions, PublishOptions, RefreshReply,
    SubscribeOptions,
};

use super::glob::Glob;
use super::methods::{Command, execute};
use super::proto::{
    ApiError, BatchRequest, BatchResult, BoolValue, BroadcastRequest, BroadcastResult, ChannelInfo,
    ChannelRequest, ChannelsRequest, ChannelsResult, ClientInfo, DisconnectRequest, Empty,
    HistoryRequest, HistoryResult, InfoRequest, InfoResult, MapEntry, MapPublishRequest,
    MapPublishResult, MapReadStateRequest, MapReadStateResult, MapReadStreamRequest,
    MapReadStreamResult, MapRemoveRequest, MapStatsResult, NodeResult, PresenceResult,
    PresenceStatsResult, Publication, PublishRequest, PublishResult, Raw, RawOut, RefreshRequest,
    Reply, RpcRequest, SharedPollPublishRequest, SubscribeRequest, UnsubscribeRequest,
};
use crate::app::App;
use crate::config::{ChannelOptions, Config};
use crate::metrics::ApiProtocol;

/// Upstream runs at most this many publishes of a broadcast, and commands of a parallel
/// batch, at once.
const MAX_CONCURRENCY: usize = 1024;

type ApiResult<T> = Result<T, ApiError>;

/// Runs a batch, in order or concurrently; replies keep the order of the commands.
pub(crate) async fn batch(app: &App, request: BatchRequest, protocol: ApiProtocol) -> BatchResult {
    let run = |command: Option<Command>| async move {
        Reply(match command.map(|c| c.into_request()) {
            None => Err(ApiError::BAD_REQUEST),
            Some(None) => Err(ApiError::NOT_FOUND),
            Some(Some(request)) => execute(app, request, protocol).await,
        })
    };
    let replies = if request.parallel {
        stream::iter(request.commands)
            .map(run)
            .buffered(MAX_CONCURRENCY)
            .collect()
            .await
    } else {
        let mut replies = Vec::with_capacity(request.commands.len());
        for command in request.commands {
            replies.push(run(command).await);
        }
        replies
    };
    BatchResult { replies }
}

fn map_broker_error(err: BrokerError) -> ApiError {
    match err {
        BrokerError::UnrecoverablePosition => ApiError::UNRECOVERABLE_POSITION,
        BrokerError::BadRequest(_) => ApiError::BAD_REQUEST,
        BrokerError::NotAvailable(_) => ApiError::NOT_AVAILABLE,
        err => {
            tracing::error!(error = %err, "server API: engine error");
            ApiError::INTERNAL
        }
    }
}

/// Options of `channel`'s namespace; 102 when the namespace is not configured.
fn channel_options<'a>(config: &'a Config, channel: &'a str) -> ApiResult<&'a ChannelOptions> {
    config
        .channel_options(channel)
        .map(|(_, options)| options)
        .map_err(|_| ApiError::UNKNOWN_CHANNEL)
}

fn nonempty(channel: &str) -> ApiResult<&str> {
    if channel.is_empty() {
        Err(ApiError::BAD_REQUEST)
    } else {
        Ok(channel)
    }
}

/// The payload of a `data`/`b64data` (or `info`/`b64info`) pair: base64 wins when set.
fn payload(raw: &Raw, b64: &str) -> ApiResult<Bytes> {
    if b64.is_empty() {
        return Ok(raw.to_bytes());
    }
    base64::engine::general_purpose::STANDARD
        .decode(b64)
        .map(Bytes::from)
        .map_err(|_| ApiError::BAD_REQUEST)
}

fn keeps_history(options: &ChannelOptions) -> bool {
    options.history_size > 0 && options.history_ttl.as_nanos() > 0
}

fn history_bounds(options: &ChannelOptions) -> (usize, std::time::Duration) {
    (
        options.history_size.max(0) as usize,
        options.history_ttl.to_std().unwrap_or_default(),
    )
}

/// The namespace's `history_meta_ttl`, else `channel.history_meta_ttl`.
fn history_meta_ttl(config: &Config, options: &ChannelOptions) -> Option<std::time::Duration> {
    let ttl = if options.history_meta_ttl.is_zero() {
        config.channel.history_meta_ttl
    } else {
        options.history_meta_ttl
    };
    ttl.to_std().filter(|d| !d.is_zero())
}

/// `publication_data_format`: `json`, `json_object`, `binary` (anything, even empty), or
/// the default that only refuses empty data (upstream `ValidatePublicationData`).
pub(crate) fn valid_publication_data(data: &[u8], format: &str) -> bool {
    let is_json = || serde_json::from_slice::<serde::de::IgnoredAny>(data).is_ok();
    match format {
        "json" => is_json(),
        "json_object" => is_json() && data.trim_ascii_start().first() == Some(&b'{'),
        "binary" => true,
        _ => !data.is_empty(),
    }
}

/// What `publish` and each channel of `broadcast` share.
struct Publish {
    data: Bytes,
    skip_history: bool,
    tags: HashMap<String, String>,
    idempotency_key: String,
    delta: bool,
    version: u64,
    version_epoch: String,
}

async fn publish_to(app: &App, channel: &str, p: &Publish) -> ApiResult<PublishResult> {
    nonempty(channel)?;
    let options = {
        let config = app.config();
        let ns = channel_options(&config, channel)?;
        // Stream channels only; map and shared-poll namespaces have their own methods.
        if !matches!(ns.subscription_type.as_str(), "" | "stream") {
            return Err(ApiError::BAD_REQUEST);
        }
        let format = if ns.publication_data_format.is_empty() {
            &config.channel.publication_data_format
        } else {
            &ns.publication_data_format
        };
        if !valid_publication_data(&p.data, format) {
            return Err(ApiError::BAD_REQUEST);
        }
        let mut options = PublishOptions::new();
        if !p.skip_history {
            let (size, ttl) = history_bounds(ns);
            options = options.history(size, ttl);
        }
        options.history_meta_ttl = history_meta_ttl(&config, ns);
        options.tags = p.tags.clone();
        if !p.idempotency_key.is_empty() {
            options = options.idempotency_key(p.idempotency_key.clone());
        }
        options
            .use_delta(p.delta || ns.delta_publish)
            .version(p.version, p.version_epoch.clone())
    };
    let result = app
        .node
        .publish(channel, p.data.clone(), options)
        .await
        .map_err(map_broker_error)?;
    Ok(PublishResult {
        offset: result.position.offset,
        epoch: result.position.epoch,
    })
}

pub(crate) async fn publish(app: &App, r: PublishRequest) -> ApiResult<PublishResult> {
    let p = Publish {
        data: payload(&r.data, &r.b64data)?,
        skip_history: r.skip_history,
        tags: r.tags,
        idempotency_key: r.idempotency_key,
        delta: r.delta,
        version: r.version,
        version_epoch: r.version_epoch,
    };
    publish_to(app, &r.channel, &p).await
}

pub(crate) async fn broadcast(app: &App, r: BroadcastRequest) -> ApiResult<BroadcastResult> {
    if r.channels.is_empty() {
        return Err(ApiError::BAD_REQUEST);
    }
    let p = Publish {
        data: payload(&r.data, &r.b64data)?,
        skip_history: r.skip_history,
        tags: r.tags,
        idempotency_key: r.idempotency_key,
        delta: r.delta,
        version: r.version,
        version_epoch: r.version_epoch,
    };
    let p = &p;
    let responses = stream::iter(r.channels)
        .map(|channel| async move { publish_to(app, &channel, p).await.into() })
        .buffered(MAX_CONCURRENCY)
        .collect()
        .await;
    Ok(BroadcastResult { responses })
}

/// An override's value, else the namespace's.
fn choose(value: &Option<BoolValue>, namespace: bool) -> bool {
    value.as_ref().map_or(namespace, |v| v.value)
}

fn filter(client: String, session: String) -> ClientFilter {
    let mut filter = ClientFilter::default();
    filter.client = Some(client).filter(|c| !c.is_empty());
    filter.session = Some(session).filter(|s| !s.is_empty());
    filter
}

pub(crate) async fn subscribe(app: &App, r: SubscribeRequest) -> ApiResult<Empty> {
    nonempty(&r.channel)?;
    let options = {
        let config = app.config();
        let ns = channel_options(&config, &r.channel)?;
        let o = r.r#override.unwrap_or_default();
        let (size, ttl) = history_bounds(ns);
        let mut options = SubscribeOptions::new()
            .history(size, ttl)
            .presence(choose(&o.presence, ns.presence))
            .recovery(choose(&o.force_recovery, ns.force_recovery))
            .positioning(choose(&o.force_positioning, ns.force_positioning))
            .channel_info(payload(&r.info, &r.b64info)?)
            .data(payload(&r.data, &r.b64data)?)
            .expire_at(r.expire_at);
        options.emit_join_leave = choose(&o.join_leave, ns.join_leave);
        options.push_join_leave = choose(&o.force_push_join_leave, ns.force_push_join_leave);
        options.recover_since = r
            .recover_since
            .map(|p| gyre::StreamPosition::new(p.offset, p.epoch));
        options
    };
    app.node
        .subscribe_clients(&r.user, &r.channel, options, &filter(r.client, r.session))
        .await
        .map_err(|err| {
            tracing::error!(error = %err, channel = %r.channel, user = %r.user, "server API: subscribe");
            ApiError::INTERNAL
        })?;
    Ok(Empty {})
}

pub(crate) async fn unsubscribe(app: &App, r: UnsubscribeRequest) -> ApiResult<Empty> {
    if !r.channel.is_empty() {
        channel_options(&app.config(), &r.channel)?;
    }
    app.node
        .unsubscribe_clients(&r.user, &r.channel, &filter(r.client, r.session))
        .await;
    Ok(Empty {})
}

pub(crate) async fn disconnect(app: &App, r: DisconnectRequest) -> ApiResult<Empty> {
    let disconnect = match r.disconnect {
        Some(d) => Disconnect {
            code: d.code,
            reason: d.reason.into(),
        },
        None => Disconnect::FORCE_NO_RECONNECT,
    };
    let mut filter = filter(r.client, r.session);
    filter.whitelist = r.whitelist;
    app.node
        .disconnect_clients(&r.user, &filter, disconnect)
        .await;
    Ok(Empty {})
}

pub(crate) async fn refresh(app: &App, r: RefreshRequest) -> ApiResult<Empty> {
    let mut refresh = RefreshReply::new(r.expire_at);
    refresh.expired = r.expired;
    refresh.info = r.info.0.is_some().then(|| r.info.to_bytes());
    app.node
        .refresh(&r.user, &filter(r.client, r.session), refresh)
        .await;
    Ok(Empty {})
}

/// The channel of a presence request, when presence is on in its namespace.
fn presence_channel(app: &App, r: &ChannelRequest) -> ApiResult<()> {
    nonempty(&r.channel)?;
    if channel_options(&app.config(), &r.channel)?.presence {
        Ok(())
    } else {
        Err(ApiError::NOT_AVAILABLE)
    }
}

pub(crate) async fn presence(app: &App, r: ChannelRequest) -> ApiResult<PresenceResult> {
    presence_channel(app, &r)?;
    let presence = app.node.presence(&r.channel).await.map_err(|err| {
        tracing::error!(error = %err, channel = %r.channel, "server API: presence");
        ApiError::INTERNAL
    })?;
    Ok(PresenceResult {
        presence: presence
            .into_iter()
            .map(|(id, info)| (id, ClientInfo::from(info)))
            .collect(),
    })
}

pub(crate) async fn presence_stats(app: &App, r: ChannelRequest) -> ApiResult<PresenceStatsResult> {
    presence_channel(app, &r)?;
    let stats = app.node.presence_stats(&r.channel).await.map_err(|err| {
        tracing::error!(error = %err, channel = %r.channel, "server API: presence stats");
        ApiError::INTERNAL
    })?;
    Ok(PresenceStatsResult {
        num_clients: stats.num_clients,
        num_users: stats.num_users,
    })
}

/// History meta TTL of the channel, when history is on in its namespace.
fn history_channel(app: &App, channel: &str) -> ApiResult<Option<std::time::Duration>> {
    nonempty(channel)?;
    let config = app.config();
    let ns = channel_options(&config, channel)?;
    if keeps_history(ns) {
        Ok(history_meta_ttl(&config, ns))
    } else {
        Err(ApiError::NOT_AVAILABLE)
    }
}

pub(crate) async fn history(app: &App, r: HistoryRequest) -> ApiResult<HistoryResult> {
    let meta_ttl = history_channel(app, &r.channel)?;
    let mut options = HistoryOptions::new(r.limit).reverse(r.reverse);
    if let Some(since) = r.since {
        options = options.since(gyre::StreamPosition::new(since.offset, since.epoch));
    }
    options.meta_ttl = meta_ttl;
    let history = app
        .node
        .history(&r.channel, options)
        .await
        .map_err(map_broker_error)?;
    Ok(HistoryResult {
        publications: history
            .publications
            .into_iter()
            .map(|p| Publication {
                data: RawOut(p.data),
                info: p.info.map(ClientInfo::from),
                offset: p.offset,
                tags: p.tags,
            })
            .collect(),
        epoch: history.position.epoch,
        offset: history.position.offset,
    })
}

pub(crate) async fn history_remove(app: &App, r: ChannelRequest) -> ApiResult<Empty> {
    history_channel(app, &r.channel)?;
    app.node
        .remove_history(&r.channel)
        .await
        .map_err(map_broker_error)?;
    Ok(Empty {})
}

fn saturate(n: impl TryInto<u32>) -> u32 {
    n.try_into().unwrap_or(u32::MAX)
}

/// Every node of the cluster as last announced (this one with live counts).
pub(crate) async fn info(app: &App, _: InfoRequest) -> ApiResult<InfoResult> {
    Ok(InfoResult {
        nodes: app
            .node
            .nodes()
            .into_iter()
            .map(|info| NodeResult {
                uid: info.id,
                name: info.name,
                version: info.version,
                num_clients: saturate(info.num_clients),
                num_users: saturate(info.num_users),
                num_channels: saturate(info.num_channels),
                uptime: saturate(info.uptime),
                num_subs: saturate(info.num_subscriptions),
            })
            .collect(),
    })
}

/// Centrifugo OSS registers no server-side RPC methods, so there is never a result.
pub(crate) async fn rpc(_: &App, r: RpcRequest) -> ApiResult<Empty> {
    nonempty(&r.method)?;
    Err(ApiError::NOT_FOUND)
}

pub(crate) async fn channels(app: &App, r: ChannelsRequest) -> ApiResult<ChannelsResult> {
    let pattern = if r.pattern.is_empty() {
        None
    } else {
        // Upstream's survey fails as a whole on a bad pattern: internal error.
        Some(Glob::compile(&r.pattern).map_err(|_| ApiError::INTERNAL)?)
    };
    Ok(ChannelsResult {
        channels: app
            .node
            // Every node answers within upstream's survey timeout.
            .cluster_channels(std::time::Duration::from_secs(10))
            .await
            .into_iter()
            .filter(|(channel, n)| *n > 0 && pattern.as_ref().is_none_or(|g| g.matches(channel)))
            .map(|(channel, n)| {
                (
                    channel,
                    ChannelInfo {
                        num_clients: saturate(n),
                    },
                )
            })
            .collect(),
    })
}

/// The map options of a map channel's namespace: 107 for an empty channel or a namespace
/// that is not a map, 102 for an unknown namespace.
fn map_channel(app: &App, channel: &str) -> ApiResult<gyre::MapChannelOptions> {
    nonempty(channel)?;
    let config = app.config();
    let ns = channel_options(&config, channel)?;
    if !crate::config::channels::is_map_type(&ns.subscription_type) {
        return Err(ApiError::BAD_REQUEST);
    }
    crate::config::channels::map_options(ns).map_err(|reason| {
        tracing::error!(channel, reason, "server API: map options");
        ApiError::INTERNAL
    })
}

fn map_result(r: gyre::MapPublishResult) -> MapPublishResult {
    MapPublishResult {
        offset: r.position.offset,
        epoch: r.position.epoch,
        suppressed: r.suppressed.is_some(),
        suppress_reason: r
            .suppressed
            .map(|s| s.as_str().to_owned())
            .unwrap_or_default(),
    }
}

fn map_entry(p: gyre::Publication) -> MapEntry {
    MapEntry {
        key: p.key,
        data: RawOut(p.data),
        tags: p.tags,
        offset: p.offset,
        removed: p.removed,
        time: p.time,
    }
}

pub(crate) async fn map_publish(app: &App, r: MapPublishRequest) -> ApiResult<MapPublishResult> {
    let map = map_channel(app, &r.channel)?;
    if r.key.is_empty() {
        return Err(ApiError::BAD_REQUEST);
    }
    let key_mode = gyre::KeyMode::parse(&r.key_mode).ok_or(ApiError::BAD_REQUEST)?;
    let data = payload(&r.data, &r.b64data)?;
    let mut options = gyre::MapPublishOptions::new(map);
    options.tags = r.tags;
    options.key_mode = key_mode;
    options.version = r.version;
    options.version_epoch = r.version_epoch;
    if !r.idempotency_key.is_empty() {
        options.idempotency_key = Some(r.idempotency_key);
    }
    let result = app
        .node
        .map_publish(&r.channel, &r.key, data, options)
        .await
        .map_err(map_broker_error)?;
    Ok(map_result(result))
}

pub(crate) async fn map_remove(app: &App, r: MapRemoveRequest) -> ApiResult<MapPublishResult> {
    let map = map_channel(app, &r.channel)?;
    if r.key.is_empty() {
        return Err(ApiError::BAD_REQUEST);
    }
    let mut options = gyre::MapPublishOptions::new(map);
    if !r.idempotency_key.is_empty() {
        options.idempotency_key = Some(r.idempotency_key);
    }
    let result = app
        .node
        .map_remove(&r.channel, &r.key, options)
        .await
        .map_err(map_broker_error)?;
    Ok(map_result(result))
}

pub(crate) async fn map_read_state(
    app: &App,
    r: MapReadStateRequest,
) -> ApiResult<MapReadStateResult> {
    let map = map_channel(app, &r.channel)?;
    let mut options = gyre::MapReadStateOptions::default();
    options.cursor = r.cursor;
    options.limit = r.limit;
    options.key = (!r.key.is_empty()).then_some(r.key);
    options.meta_ttl = map.meta_ttl;
    if r.revision_offset > 0 || !r.revision_epoch.is_empty() {
        options.revision = Some(gyre::StreamPosition::new(
            r.revision_offset,
            r.revision_epoch,
        ));
    }
    let state = app
        .node
        .map_read_state(&r.channel, options)
        .await
        .map_err(map_broker_error)?;
    Ok(MapReadStateResult {
        entries: state.entries.into_iter().map(map_entry).collect(),
        offset: state.position.offset,
        epoch: state.position.epoch,
        cursor: state.cursor,
    })
}

pub(crate) async fn map_read_stream(
    app: &App,
    r: MapReadStreamRequest,
) -> ApiResult<MapReadStreamResult> {
    let map = map_channel(app, &r.channel)?;
    let mut options = gyre::MapReadStreamOptions::default();
    options.limit = r.limit;
    options.reverse = r.reverse;
    options.meta_ttl = map.meta_ttl;
    if r.since_offset > 0 || !r.since_epoch.is_empty() {
        options.since = Some(gyre::StreamPosition::new(r.since_offset, r.since_epoch));
    }
    let stream = app
        .node
        .map_read_stream(&r.channel, options)
        .await
        .map_err(map_broker_error)?;
    Ok(MapReadStreamResult {
        entries: stream.publications.into_iter().map(map_entry).collect(),
        offset: stream.position.offset,
        epoch: stream.position.epoch,
    })
}

pub(crate) async fn map_stats(app: &App, r: ChannelRequest) -> ApiResult<MapStatsResult> {
    map_channel(app, &r.channel)?;
    let n = app
        .node
        .map_stats(&r.channel)
        .await
        .map_err(map_broker_error)?;
    Ok(MapStatsResult {
        num_keys: i32::try_from(n).unwrap_or(i32::MAX),
    })
}

pub(crate) async fn map_clear(app: &App, r: ChannelRequest) -> ApiResult<Empty> {
    map_channel(app, &r.channel)?;
    app.node
        .map_clear(&r.channel)
        .await
        .map_err(map_broker_error)?;
    Ok(Empty {})
}

/// Sets a key of a versioned shared-poll channel (Centrifugo `SharedPollPublish`):
/// 107 for an empty channel or key, version 0 or a namespace that is not shared_poll,
/// 102 for an unknown namespace, 108 without `shared_poll.publish_enabled`. Applied on
/// this node.
pub(crate) async fn shared_poll_publish(
    app: &App,
    r: SharedPollPublishRequest,
) -> ApiResult<Empty> {
    if r.channel.is_empty() || r.key.is_empty() || r.version == 0 {
        return Err(ApiError::BAD_REQUEST);
    }
    let config = app.config();
    let ns = channel_options(&config, &r.channel)?;
    if ns.subscription_type != "shared_poll" {
        return Err(ApiError::BAD_REQUEST);
    }
    if !ns.shared_poll.publish_enabled {
        tracing::warn!(channel = %r.channel, "shared_poll publish_enabled is off for the channel");
        return Err(ApiError::NOT_AVAILABLE);
    }
    let data = payload(&r.data, &r.b64data)?;
    app.node
        .shared_poll_publish(&r.channel, &r.key, data, r.version, &r.epoch)
        .map_err(|e| {
            tracing::error!(channel = %r.channel, code = e.code, "shared poll publish");
            ApiError::INTERNAL
        })?;
    Ok(Empty {})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publication_data_formats() {
        assert!(!valid_publication_data(b"", ""));
        assert!(valid_publication_data(b"x", ""));
        assert!(valid_publication_data(b"", "binary"));
        assert!(valid_publication_data(b"\xff", "binary"));
        assert!(valid_publication_data(b" [1] ", "json"));
        assert!(!valid_publication_data(b"{", "json"));
        assert!(!valid_publication_data(b"", "json"));
        assert!(valid_publication_data(b" {\"a\":1}\n", "json_object"));
        assert!(!valid_publication_data(b"[1]", "json_object"));
        assert!(!valid_publication_data(b"{} {}", "json_object"));
    }

    #[test]
    fn payload_prefers_base64() {
        let raw: Raw = serde_json::from_str(r#""text""#).unwrap();
        assert_eq!(&payload(&raw, "").unwrap()[..], br#""text""#);
        assert_eq!(&payload(&raw, "AAE=").unwrap()[..], &[0, 1]);
        assert_eq!(payload(&raw, "%%"), Err(ApiError::BAD_REQUEST));
    }
}
