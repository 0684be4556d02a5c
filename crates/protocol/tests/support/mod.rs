//! Proptest strategies for every message of the schema.
//!
//! `bytes` fields depend on the encoding: JSON connections can only carry compact JSON
//! values (no raw newline, no surrounding whitespace, so they survive unchanged), Protobuf
//! carries arbitrary bytes.

#![allow(dead_code)]

use std::collections::HashMap;

use bytes::Bytes;
use gyre_protocol::{Protocol, proto};
use proptest::collection::{hash_map, vec};
use proptest::option;
use proptest::prelude::*;

/// Strings with any characters, control characters and quotes included.
pub(crate) fn text() -> BoxedStrategy<String> {
    prop_oneof![
        3 => Just(String::new()),
        3 => "[a-z0-9]{1,6}",
        2 => vec(any::<char>(), 0..6).prop_map(String::from_iter),
        1 => vec(prop_oneof![Just('"'), Just('\\'), Just('\n'), Just('\u{1}'), Just('é'), Just('\u{2028}')], 1..5)
            .prop_map(String::from_iter),
    ]
    .boxed()
}

/// A compact JSON value other than `null`, as text (a `null` payload reads back as
/// absent, like in Centrifugo).
pub(crate) fn json_value() -> BoxedStrategy<Vec<u8>> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        any::<u64>().prop_map(serde_json::Value::from),
        (-1.0e10f64..1.0e10).prop_map(serde_json::Value::from),
        text().prop_map(serde_json::Value::from),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..4).prop_map(serde_json::Value::Array),
            vec((text(), inner), 0..4)
                .prop_map(|kv| serde_json::Value::Object(kv.into_iter().collect())),
        ]
    })
    .prop_filter("null reads back as absent", |v| !v.is_null())
    .prop_map(|v| serde_json::to_vec(&v).expect("serializable"))
    .boxed()
}

/// A `bytes` field for `protocol`, empty a third of the time.
pub(crate) fn payload(protocol: Protocol) -> BoxedStrategy<Bytes> {
    match protocol {
        Protocol::Json => {
            prop_oneof![1 => Just(Bytes::new()), 2 => json_value().prop_map(Bytes::from)].boxed()
        }
        Protocol::Protobuf => vec(any::<u8>(), 0..12).prop_map(Bytes::from).boxed(),
    }
}

fn string_map() -> BoxedStrategy<HashMap<String, String>> {
    hash_map(text(), text(), 0..3).boxed()
}

fn opt<T: std::fmt::Debug + Clone + 'static>(s: BoxedStrategy<T>) -> BoxedStrategy<Option<T>> {
    option::weighted(0.4, s).boxed()
}

pub(crate) fn error() -> BoxedStrategy<proto::Error> {
    (any::<u32>(), text(), any::<bool>())
        .prop_map(|(code, message, temporary)| proto::Error {
            code,
            message,
            temporary,
        })
        .boxed()
}

pub(crate) fn client_info(p: Protocol) -> BoxedStrategy<proto::ClientInfo> {
    (text(), text(), payload(p), payload(p))
        .prop_map(|(user, client, conn_info, chan_info)| proto::ClientInfo {
            user,
            client,
            conn_info,
            chan_info,
        })
        .boxed()
}

pub(crate) fn publication(p: Protocol) -> BoxedStrategy<proto::Publication> {
    (
        (
            payload(p),
            opt(client_info(p)),
            any::<u64>(),
            string_map(),
            any::<bool>(),
            any::<i64>(),
        ),
        (
            text(),
            text(),
            any::<bool>(),
            any::<i64>(),
            text(),
            payload(p),
            any::<u64>(),
        ),
    )
        .prop_map(
            |(
                (data, info, offset, tags, delta, time),
                (channel, key, removed, score, epoch, prev_data, version),
            )| proto::Publication {
                data,
                info,
                offset,
                tags,
                delta,
                time,
                channel,
                key,
                removed,
                score,
                epoch,
                prev_data,
                version,
            },
        )
        .boxed()
}

pub(crate) fn stream_position() -> BoxedStrategy<proto::StreamPosition> {
    (any::<u64>(), text())
        .prop_map(|(offset, epoch)| proto::StreamPosition { offset, epoch })
        .boxed()
}

pub(crate) fn filter_node() -> BoxedStrategy<proto::FilterNode> {
    let leaf = (text(), text(), text(), text(), vec(text(), 0..3)).prop_map(
        |(op, key, cmp, val, vals)| proto::FilterNode {
            op,
            key,
            cmp,
            val,
            vals,
            nodes: Vec::new(),
        },
    );
    leaf.prop_recursive(3, 8, 3, |inner| {
        (text(), vec(inner, 0..3)).prop_map(|(op, nodes)| proto::FilterNode {
            op,
            nodes,
            ..Default::default()
        })
    })
    .boxed()
}

pub(crate) fn dictionary(p: Protocol) -> BoxedStrategy<proto::Dictionary> {
    (text(), payload(p), text())
        .prop_map(|(id, data, data_b64)| proto::Dictionary { id, data, data_b64 })
        .boxed()
}

pub(crate) fn keyed_item() -> BoxedStrategy<proto::KeyedItem> {
    (text(), any::<u64>())
        .prop_map(|(key, version)| proto::KeyedItem { key, version })
        .boxed()
}

pub(crate) fn track_batch() -> BoxedStrategy<proto::TrackBatch> {
    (text(), vec(keyed_item(), 0..3))
        .prop_map(|(signature, items)| proto::TrackBatch { signature, items })
        .boxed()
}

pub(crate) fn subscribe_request(p: Protocol) -> BoxedStrategy<proto::SubscribeRequest> {
    (
        (
            text(),
            text(),
            any::<bool>(),
            text(),
            any::<u64>(),
            payload(p),
            any::<bool>(),
            any::<bool>(),
        ),
        (
            any::<bool>(),
            text(),
            opt(filter_node()),
            any::<i64>(),
            any::<i32>(),
            any::<i32>(),
            text(),
            any::<i32>(),
        ),
        any::<bool>(),
    )
        .prop_map(
            |(
                (channel, token, recover, epoch, offset, data, positioned, recoverable),
                (join_leave, delta, tf, flag, r#type, phase, cursor, limit),
                asc,
            )| proto::SubscribeRequest {
                channel,
                token,
                recover,
                epoch,
                offset,
                data,
                positioned,
                recoverable,
                join_leave,
                delta,
                tf,
                flag,
                r#type,
                phase,
                cursor,
                limit,
                asc,
            },
        )
        .boxed()
}

pub(crate) fn subscribe_result(p: Protocol) -> BoxedStrategy<proto::SubscribeResult> {
    (
        (
            any::<bool>(),
            any::<u32>(),
            any::<bool>(),
            text(),
            vec(publication(p), 0..2),
            any::<bool>(),
            any::<u64>(),
            any::<bool>(),
        ),
        (
            payload(p),
            any::<bool>(),
            any::<bool>(),
            any::<i64>(),
            any::<i32>(),
            any::<i32>(),
            text(),
            vec(publication(p), 0..2),
        ),
        any::<u32>(),
    )
        .prop_map(
            |(
                (expires, ttl, recoverable, epoch, publications, recovered, offset, positioned),
                (data, was_recovering, delta, id, r#type, phase, cursor, state),
                publish_debounce,
            )| proto::SubscribeResult {
                expires,
                ttl,
                recoverable,
                epoch,
                publications,
                recovered,
                offset,
                positioned,
                data,
                was_recovering,
                delta,
                id,
                r#type,
                phase,
                cursor,
                state,
                publish_debounce,
            },
        )
        .boxed()
}

pub(crate) fn connect_request(p: Protocol) -> BoxedStrategy<proto::ConnectRequest> {
    (
        text(),
        payload(p),
        hash_map(text(), subscribe_request(p), 0..2),
        text(),
        text(),
        string_map(),
        any::<i64>(),
        text(),
        text(),
    )
        .prop_map(
            |(token, data, subs, name, version, headers, flag, dict, profile)| {
                proto::ConnectRequest {
                    token,
                    data,
                    subs,
                    name,
                    version,
                    headers,
                    flag,
                    dict,
                    profile,
                }
            },
        )
        .boxed()
}

pub(crate) fn connect_result(p: Protocol) -> BoxedStrategy<proto::ConnectResult> {
    (
        (
            text(),
            text(),
            any::<bool>(),
            any::<u32>(),
            payload(p),
            hash_map(text(), subscribe_result(p), 0..2),
        ),
        (
            any::<u32>(),
            any::<bool>(),
            text(),
            text(),
            any::<i64>(),
            any::<i64>(),
            opt(dictionary(p)),
        ),
    )
        .prop_map(
            |(
                (client, version, expires, ttl, data, subs),
                (ping, pong, session, node, time, flag, dict),
            )| {
                proto::ConnectResult {
                    client,
                    version,
                    expires,
                    ttl,
                    data,
                    subs,
                    ping,
                    pong,
                    session,
                    node,
                    time,
                    flag,
                    dict,
                }
            },
        )
        .boxed()
}

pub(crate) fn connect_push(p: Protocol) -> BoxedStrategy<proto::Connect> {
    (
        (
            text(),
            text(),
            payload(p),
            hash_map(text(), subscribe_result(p), 0..2),
            any::<bool>(),
            any::<u32>(),
        ),
        (any::<u32>(), any::<bool>(), text(), text(), any::<i64>()),
    )
        .prop_map(
            |((client, version, data, subs, expires, ttl), (ping, pong, session, node, time))| {
                proto::Connect {
                    client,
                    version,
                    data,
                    subs,
                    expires,
                    ttl,
                    ping,
                    pong,
                    session,
                    node,
                    time,
                }
            },
        )
        .boxed()
}

pub(crate) fn push(p: Protocol) -> BoxedStrategy<proto::Push> {
    let join = opt(client_info(p)).prop_map(|info| proto::Join { info });
    let leave = opt(client_info(p)).prop_map(|info| proto::Leave { info });
    let unsubscribe =
        (any::<u32>(), text()).prop_map(|(code, reason)| proto::Unsubscribe { code, reason });
    let message = payload(p).prop_map(|data| proto::Message { data });
    let subscribe = (
        any::<bool>(),
        text(),
        any::<u64>(),
        any::<bool>(),
        payload(p),
    )
        .prop_map(
            |(recoverable, epoch, offset, positioned, data)| proto::Subscribe {
                recoverable,
                epoch,
                offset,
                positioned,
                data,
            },
        );
    let disconnect = (any::<u32>(), text(), any::<bool>()).prop_map(|(code, reason, reconnect)| {
        proto::Disconnect {
            code,
            reason,
            reconnect,
        }
    });
    let refresh =
        (any::<bool>(), any::<u32>()).prop_map(|(expires, ttl)| proto::Refresh { expires, ttl });
    (
        (
            any::<i64>(),
            text(),
            opt(publication(p)),
            opt(join.boxed()),
            opt(leave.boxed()),
            opt(unsubscribe.boxed()),
        ),
        (
            opt(message.boxed()),
            opt(subscribe.boxed()),
            opt(connect_push(p)),
            opt(disconnect.boxed()),
            opt(refresh.boxed()),
        ),
    )
        .prop_map(
            |(
                (id, channel, r#pub, join, leave, unsubscribe),
                (message, subscribe, connect, disconnect, refresh),
            )| {
                proto::Push {
                    id,
                    channel,
                    r#pub,
                    join,
                    leave,
                    unsubscribe,
                    message,
                    subscribe,
                    connect,
                    disconnect,
                    refresh,
                }
            },
        )
        .boxed()
}

pub(crate) fn command(p: Protocol) -> BoxedStrategy<proto::Command> {
    let channel_only = || text().boxed();
    let unsubscribe = channel_only().prop_map(|channel| proto::UnsubscribeRequest { channel });
    let publish = (text(), payload(p), any::<i32>(), text(), any::<bool>()).prop_map(
        |(channel, data, r#type, key, removed)| proto::PublishRequest {
            channel,
            data,
            r#type,
            key,
            removed,
        },
    );
    let presence = channel_only().prop_map(|channel| proto::PresenceRequest { channel });
    let presence_stats = channel_only().prop_map(|channel| proto::PresenceStatsRequest { channel });
    let history = (text(), any::<i32>(), opt(stream_position()), any::<bool>()).prop_map(
        |(channel, limit, since, reverse)| proto::HistoryRequest {
            channel,
            limit,
            since,
            reverse,
        },
    );
    let send = payload(p).prop_map(|data| proto::SendRequest { data });
    let rpc = (payload(p), text()).prop_map(|(data, method)| proto::RpcRequest { data, method });
    let refresh = text().prop_map(|token| proto::RefreshRequest { token });
    let sub_refresh = (
        text(),
        text(),
        any::<i32>(),
        vec(track_batch(), 0..2),
        vec(text(), 0..3),
    )
        .prop_map(
            |(channel, token, r#type, track, untrack)| proto::SubRefreshRequest {
                channel,
                token,
                r#type,
                track,
                untrack,
            },
        );
    (
        (
            any::<u32>(),
            opt(connect_request(p)),
            opt(subscribe_request(p)),
            opt(unsubscribe.boxed()),
            opt(publish.boxed()),
            opt(presence.boxed()),
        ),
        (
            opt(presence_stats.boxed()),
            opt(history.boxed()),
            opt(Just(proto::PingRequest {}).boxed()),
            opt(send.boxed()),
            opt(rpc.boxed()),
            opt(refresh.boxed()),
            opt(sub_refresh.boxed()),
        ),
    )
        .prop_map(
            |(
                (id, connect, subscribe, unsubscribe, publish, presence),
                (presence_stats, history, ping, send, rpc, refresh, sub_refresh),
            )| proto::Command {
                id,
                connect,
                subscribe,
                unsubscribe,
                publish,
                presence,
                presence_stats,
                history,
                ping,
                send,
                rpc,
                refresh,
                sub_refresh,
            },
        )
        .boxed()
}

pub(crate) fn reply(p: Protocol) -> BoxedStrategy<proto::Reply> {
    let presence = hash_map(text(), client_info(p), 0..3)
        .prop_map(|presence| proto::PresenceResult { presence });
    let presence_stats = (any::<u32>(), any::<u32>()).prop_map(|(num_clients, num_users)| {
        proto::PresenceStatsResult {
            num_clients,
            num_users,
        }
    });
    let history = (vec(publication(p), 0..3), text(), any::<u64>()).prop_map(
        |(publications, epoch, offset)| proto::HistoryResult {
            publications,
            epoch,
            offset,
        },
    );
    let rpc = payload(p).prop_map(|data| proto::RpcResult { data });
    let refresh = (text(), text(), any::<bool>(), any::<u32>()).prop_map(
        |(client, version, expires, ttl)| proto::RefreshResult {
            client,
            version,
            expires,
            ttl,
        },
    );
    let sub_refresh = (any::<bool>(), any::<u32>(), vec(publication(p), 0..2)).prop_map(
        |(expires, ttl, items)| proto::SubRefreshResult {
            expires,
            ttl,
            items,
        },
    );
    (
        (
            any::<u32>(),
            opt(error()),
            opt(push(p)),
            opt(connect_result(p)),
            opt(subscribe_result(p)),
            opt(Just(proto::UnsubscribeResult {}).boxed()),
            opt(Just(proto::PublishResult {}).boxed()),
        ),
        (
            opt(presence.boxed()),
            opt(presence_stats.boxed()),
            opt(history.boxed()),
            opt(Just(proto::PingResult {}).boxed()),
            opt(rpc.boxed()),
            opt(refresh.boxed()),
            opt(sub_refresh.boxed()),
        ),
    )
        .prop_map(
            |(
                (id, error, push, connect, subscribe, unsubscribe, publish),
                (presence, presence_stats, history, ping, rpc, refresh, sub_refresh),
            )| proto::Reply {
                id,
                error,
                push,
                connect,
                subscribe,
                unsubscribe,
                publish,
                presence,
                presence_stats,
                history,
                ping,
                rpc,
                refresh,
                sub_refresh,
            },
        )
        .boxed()
}
