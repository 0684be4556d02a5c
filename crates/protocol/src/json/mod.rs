//! The JSON encoding of the protocol.
//!
//! Key names are the proto field names; `bytes` fields are raw embedded JSON; defaults
//! are omitted except for the few fields Centrifugo always emits.

mod decode;
mod encode;

use bytes::{BufMut, Bytes, BytesMut};
use serde::Deserializer;
use serde::de::MapAccess;

use crate::error::{DecodeError, EncodeError};
use crate::proto;
pub(crate) use decode::FromJson;
use decode::{JsonFields, ObjectVisitor};
pub(crate) use encode::ToJson;
pub(crate) use encode::write_str;

/// Writes one message as a JSON object. On error `out` is left as it was.
pub(crate) fn encode<T: ToJson>(msg: &T, out: &mut BytesMut) -> Result<(), EncodeError> {
    let start = out.len();
    let res = msg.write_json("", out);
    if res.is_err() {
        out.truncate(start);
    }
    res
}

/// Reads one message from one line (surrounding JSON whitespace allowed).
pub(crate) fn decode<'de, T: FromJson<'de>>(line: &'de [u8]) -> Result<T, DecodeError> {
    let mut de = serde_json::Deserializer::from_slice(line);
    let msg = T::from_json(&mut de)?;
    de.end()?;
    Ok(msg)
}

/// Condition under which a field is written: always, or when it is not the default.
macro_rules! emit_if {
    ($value:expr, always) => {
        true
    };
    ($value:expr,) => {
        !ToJson::is_default($value)
    };
}

/// Implements the JSON writer and reader of proto messages from their field lists.
/// Fields are listed in proto field-number order, which is the output order.
macro_rules! json_messages {
    ($($ty:ident { $($key:literal => $field:ident $($always:ident)?),* $(,)? })*) => {$(
        impl ToJson for proto::$ty {
            fn is_default(&self) -> bool {
                false
            }

            #[allow(unused_mut, unused_assignments, unused_variables)]
            fn write_json(&self, _key: &'static str, out: &mut BytesMut) -> Result<(), EncodeError> {
                out.put_u8(b'{');
                let mut first = true;
                $(
                    if emit_if!(&self.$field, $($always)?) {
                        if !first {
                            out.put_u8(b',');
                        }
                        first = false;
                        out.extend_from_slice(concat!("\"", $key, "\":").as_bytes());
                        ToJson::write_json(&self.$field, $key, out)?;
                    }
                )*
                out.put_u8(b'}');
                Ok(())
            }
        }

        impl<'de> JsonFields<'de> for proto::$ty {
            const NAME: &'static str = stringify!($ty);

            fn read_field<A: MapAccess<'de>>(&mut self, key: &str, map: &mut A) -> Result<(), A::Error> {
                match key {
                    $($key => self.$field = decode::next(map)?,)*
                    _ => decode::skip(map)?,
                }
                Ok(())
            }
        }

        impl<'de> FromJson<'de> for proto::$ty {
            fn from_json<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                d.deserialize_map(ObjectVisitor::<Self>::new())
            }
        }
    )*};
}

json_messages! {
    Error { "code" => code, "message" => message, "temporary" => temporary }
    Command {
        "id" => id, "connect" => connect, "subscribe" => subscribe,
        "unsubscribe" => unsubscribe, "publish" => publish, "presence" => presence,
        "presence_stats" => presence_stats, "history" => history, "ping" => ping,
        "send" => send, "rpc" => rpc, "refresh" => refresh, "sub_refresh" => sub_refresh,
    }
    Reply {
        "id" => id, "error" => error, "push" => push, "connect" => connect,
        "subscribe" => subscribe, "unsubscribe" => unsubscribe, "publish" => publish,
        "presence" => presence, "presence_stats" => presence_stats, "history" => history,
        "ping" => ping, "rpc" => rpc, "refresh" => refresh, "sub_refresh" => sub_refresh,
    }
    Push {
        "id" => id, "channel" => channel, "pub" => r#pub, "join" => join, "leave" => leave,
        "unsubscribe" => unsubscribe, "message" => message, "subscribe" => subscribe,
        "connect" => connect, "disconnect" => disconnect, "refresh" => refresh,
    }
    ClientInfo {
        "user" => user always, "client" => client always,
        "conn_info" => conn_info, "chan_info" => chan_info,
    }
    Publication {
        "data" => data, "info" => info, "offset" => offset, "tags" => tags,
        "delta" => delta, "time" => time, "channel" => channel, "key" => key,
        "removed" => removed, "score" => score, "epoch" => epoch,
        "prev_data" => prev_data, "version" => version,
    }
    Join { "info" => info }
    Leave { "info" => info }
    Unsubscribe { "code" => code, "reason" => reason }
    Subscribe {
        "recoverable" => recoverable, "epoch" => epoch, "offset" => offset,
        "positioned" => positioned, "data" => data,
    }
    Message { "data" => data }
    Connect {
        "client" => client, "version" => version, "data" => data, "subs" => subs,
        "expires" => expires, "ttl" => ttl, "ping" => ping, "pong" => pong,
        "session" => session, "node" => node, "time" => time,
    }
    Disconnect { "code" => code, "reason" => reason, "reconnect" => reconnect }
    Refresh { "expires" => expires, "ttl" => ttl }
    ConnectRequest {
        "token" => token, "data" => data, "subs" => subs, "name" => name,
        "version" => version, "headers" => headers, "flag" => flag, "dict" => dict,
        "profile" => profile,
    }
    ConnectResult {
        "client" => client, "version" => version, "expires" => expires, "ttl" => ttl,
        "data" => data, "subs" => subs, "ping" => ping, "pong" => pong,
        "session" => session, "node" => node, "time" => time, "flag" => flag,
        "dict" => dict,
    }
    Dictionary { "id" => id, "data" => data, "data_b64" => data_b64 }
    RefreshRequest { "token" => token }
    RefreshResult {
        "client" => client, "version" => version, "expires" => expires, "ttl" => ttl,
    }
    FilterNode {
        "op" => op, "key" => key, "cmp" => cmp, "val" => val, "vals" => vals,
        "nodes" => nodes,
    }
    SubscribeRequest {
        "channel" => channel, "token" => token, "recover" => recover, "epoch" => epoch,
        "offset" => offset, "data" => data, "positioned" => positioned,
        "recoverable" => recoverable, "join_leave" => join_leave, "delta" => delta,
        "tf" => tf, "flag" => flag, "type" => r#type, "phase" => phase,
        "cursor" => cursor, "limit" => limit, "asc" => asc,
    }
    SubscribeResult {
        "expires" => expires, "ttl" => ttl, "recoverable" => recoverable,
        "epoch" => epoch, "publications" => publications, "recovered" => recovered,
        "offset" => offset, "positioned" => positioned, "data" => data,
        "was_recovering" => was_recovering, "delta" => delta, "id" => id,
        "type" => r#type, "phase" => phase, "cursor" => cursor, "state" => state,
        "publish_debounce" => publish_debounce,
    }
    KeyedItem { "key" => key, "version" => version }
    TrackBatch { "signature" => signature, "items" => items }
    SubRefreshRequest {
        "channel" => channel, "token" => token, "type" => r#type, "track" => track,
        "untrack" => untrack,
    }
    SubRefreshResult { "expires" => expires, "ttl" => ttl, "items" => items }
    UnsubscribeRequest { "channel" => channel }
    UnsubscribeResult {}
    PublishRequest {
        "channel" => channel, "data" => data, "type" => r#type, "key" => key,
        "removed" => removed,
    }
    PublishResult {}
    PresenceRequest { "channel" => channel }
    PresenceResult { "presence" => presence always }
    PresenceStatsRequest { "channel" => channel }
    PresenceStatsResult { "num_clients" => num_clients always, "num_users" => num_users always }
    StreamPosition { "offset" => offset, "epoch" => epoch }
    HistoryRequest {
        "channel" => channel, "limit" => limit, "since" => since, "reverse" => reverse,
    }
    HistoryResult {
        "publications" => publications always, "epoch" => epoch always,
        "offset" => offset always,
    }
    PingRequest {}
    PingResult {}
    RpcRequest { "data" => data, "method" => method }
    RpcResult { "data" => data }
    SendRequest { "data" => data }
}

/// The JSON body of an emulation request: `data` is a JSON string holding the
/// newline-joined commands, not raw embedded JSON.
#[derive(Default)]
struct EmulationJson {
    node: String,
    session: String,
    data: String,
}

impl<'de> JsonFields<'de> for EmulationJson {
    const NAME: &'static str = "EmulationRequest";

    fn read_field<A: MapAccess<'de>>(&mut self, key: &str, map: &mut A) -> Result<(), A::Error> {
        match key {
            "node" => self.node = decode::next(map)?,
            "session" => self.session = decode::next(map)?,
            "data" => self.data = decode::next(map)?,
            _ => decode::skip(map)?,
        }
        Ok(())
    }
}

impl<'de> FromJson<'de> for EmulationJson {
    fn from_json<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(ObjectVisitor::<Self>::new())
    }
}

/// Reads a JSON emulation request; `data` of the result holds the unescaped commands.
pub(crate) fn decode_emulation(body: &[u8]) -> Result<proto::EmulationRequest, DecodeError> {
    let req: EmulationJson = decode(body)?;
    Ok(proto::EmulationRequest {
        node: req.node,
        session: req.session,
        data: Bytes::from(req.data),
    })
}

/// Writes a JSON emulation request, turning `data` (the commands) into a JSON string.
pub(crate) fn encode_emulation(
    req: &proto::EmulationRequest,
    out: &mut BytesMut,
) -> Result<(), EncodeError> {
    let data =
        std::str::from_utf8(&req.data).map_err(|_| EncodeError::InvalidUtf8 { field: "data" })?;
    out.extend_from_slice(b"{\"node\":");
    encode::write_str(&req.node, out);
    out.extend_from_slice(b",\"session\":");
    encode::write_str(&req.session, out);
    out.extend_from_slice(b",\"data\":");
    encode::write_str(data, out);
    out.put_u8(b'}');
    Ok(())
}
