//! The map proxies: a client sets (`map_publish`) or removes (`map_remove`) a key of a
//! map channel and the backend decides (Centrifugo `proxy/map_{publish,remove}_handler.go`,
//! as facts: the request fields, and which result fields change the client's change).

use std::collections::HashMap;

use bytes::Bytes;
use gyre::{HandlerError, KeyMode, MapPublishEvent, MapPublishReply};

use crate::context::CallContext;
use crate::events::{Caller, data_fields, encoding, protocol, refusal, replacement_data};
use crate::proto;
use crate::transport::Proxy;

/// What the backend decided for a client's map publication or removal.
///
/// The backend may rename the key, replace the data (publications only) and set the
/// options of the change. Like Centrifugo, Gyre ignores the result's `score` and
/// `stream_data`, and a `key_mode` it does not know means replace.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct MapChangeAnswer {
    /// The key to change instead of the client's.
    pub key: Option<String>,
    /// Data that replaces the client's.
    pub data: Option<Bytes>,
    /// Tags of the change.
    pub tags: HashMap<String, String>,
    /// Insert/replace rule (`key_mode`).
    pub key_mode: KeyMode,
    /// Idempotency key of the change.
    pub idempotency_key: String,
    /// Publish as a delta (map channels do not send deltas yet: kept for the caller).
    pub delta: bool,
    /// Version of the change (0 = unversioned).
    pub version: u64,
    /// Epoch of `version`.
    pub version_epoch: String,
}

impl MapChangeAnswer {
    /// Writes the answer into a map publish reply built from the channel's options: the
    /// key is the backend's when it named one, else the client's.
    pub fn apply(self, reply: &mut MapPublishReply) {
        if let Some(key) = self.key {
            reply.key = key;
        }
        if let Some(data) = self.data {
            reply.data = Some(data);
        }
        let o = &mut reply.options;
        if !self.tags.is_empty() {
            o.tags = self.tags;
        }
        o.key_mode = self.key_mode;
        if !self.idempotency_key.is_empty() {
            o.idempotency_key = Some(self.idempotency_key);
        }
        if self.version > 0 {
            o.version = self.version;
            o.version_epoch = self.version_epoch;
        }
    }
}

impl Proxy {
    /// Asks the backend whether a client may set a key of a map channel, and how.
    pub async fn map_publish(
        &self,
        caller: &Caller,
        event: &MapPublishEvent,
        context: &CallContext,
    ) -> Result<MapChangeAnswer, HandlerError> {
        let binary = self.config().binary_encoding;
        let (data, b64data, encoding) = data_fields(binary, &event.data);
        let request = proto::MapPublishRequest {
            client: caller.client_id.clone(),
            transport: caller.transport.clone(),
            protocol: protocol(caller.protobuf),
            encoding,
            user: caller.user.clone(),
            channel: event.channel.clone(),
            key: event.key.clone(),
            data,
            b64data,
            meta: self.meta(context),
            labels: HashMap::new(),
        };
        let response = self.exchange(&request, caller, context).await?;
        map_publish_answer(response, caller)
    }

    /// Asks the backend whether a client may remove a key of a map channel.
    pub async fn map_remove(
        &self,
        caller: &Caller,
        event: &MapPublishEvent,
        context: &CallContext,
    ) -> Result<MapChangeAnswer, HandlerError> {
        let request = proto::MapRemoveRequest {
            client: caller.client_id.clone(),
            transport: caller.transport.clone(),
            protocol: protocol(caller.protobuf),
            encoding: encoding(self.config().binary_encoding),
            user: caller.user.clone(),
            channel: event.channel.clone(),
            key: event.key.clone(),
            meta: self.meta(context),
            labels: HashMap::new(),
        };
        let response = self.exchange(&request, caller, context).await?;
        map_remove_answer(response)
    }
}

fn key_mode(name: &str, caller: &Caller) -> KeyMode {
    KeyMode::parse(name).unwrap_or_else(|| {
        tracing::warn!(client = %caller.client_id, key_mode = name, "unknown key_mode from map publish proxy, replacing");
        KeyMode::Replace
    })
}

pub(crate) fn map_publish_answer(
    response: proto::MapPublishResponse,
    caller: &Caller,
) -> Result<MapChangeAnswer, HandlerError> {
    if let Some(refusal) = refusal(response.error, response.disconnect) {
        return Err(refusal);
    }
    let Some(result) = response.result else {
        return Ok(MapChangeAnswer::default());
    };
    let data = replacement_data(result.data, &result.b64data, caller)?;
    Ok(MapChangeAnswer {
        key: Some(result.key).filter(|k| !k.is_empty()),
        data,
        tags: result.tags,
        key_mode: key_mode(&result.key_mode, caller),
        idempotency_key: result.idempotency_key,
        delta: result.delta,
        version: result.version,
        version_epoch: result.version_epoch,
    })
}

pub(crate) fn map_remove_answer(
    response: proto::MapRemoveResponse,
) -> Result<MapChangeAnswer, HandlerError> {
    if let Some(refusal) = refusal(response.error, response.disconnect) {
        return Err(refusal);
    }
    let result = response.result.unwrap_or_default();
    Ok(MapChangeAnswer {
        key: Some(result.key).filter(|k| !k.is_empty()),
        tags: result.tags,
        idempotency_key: result.idempotency_key,
        ..Default::default()
    })
}

#[cfg(test)]
mod tests {
    use gyre::{MapChannelOptions, MapPublishOptions};

    use super::*;

    fn caller() -> Caller {
        Caller::new("client-1", "websocket", "alice")
    }

    #[test]
    fn publish_result_overrides_key_data_and_options() {
        let response: proto::MapPublishResponse = serde_json::from_value(serde_json::json!({
            "result": {
                "key": "renamed",
                "data": {"x": 1},
                "tags": {"t": "v"},
                "key_mode": "if_new",
                "idempotency_key": "once",
                "version": 3,
                "version_epoch": "e",
                "score": 7,
                "stream_data": {"ignored": true}
            }
        }))
        .unwrap();
        let answer = map_publish_answer(response, &caller()).unwrap();
        let mut reply = MapPublishReply::new(
            "client-key",
            MapPublishOptions::new(MapChannelOptions::default()),
        );
        answer.apply(&mut reply);
        assert_eq!(reply.key, "renamed");
        assert_eq!(reply.data.as_deref(), Some(&br#"{"x":1}"#[..]));
        assert_eq!(reply.options.tags.get("t").map(String::as_str), Some("v"));
        assert_eq!(reply.options.key_mode, KeyMode::IfNew);
        assert_eq!(reply.options.idempotency_key.as_deref(), Some("once"));
        assert_eq!(
            (reply.options.version, reply.options.version_epoch.as_str()),
            (3, "e")
        );
    }

    #[test]
    fn empty_result_keeps_the_client_change() {
        for body in [serde_json::json!({}), serde_json::json!({"result": {}})] {
            let response: proto::MapPublishResponse = serde_json::from_value(body).unwrap();
            let answer = map_publish_answer(response, &caller()).unwrap();
            let mut reply =
                MapPublishReply::new("k", MapPublishOptions::new(MapChannelOptions::default()));
            answer.apply(&mut reply);
            assert_eq!(reply.key, "k");
            assert!(reply.data.is_none());
            assert_eq!(reply.options.key_mode, KeyMode::Replace);
        }
    }

    #[test]
    fn base64_data_is_decoded_and_bad_base64_is_internal() {
        let ok: proto::MapPublishResponse =
            serde_json::from_value(serde_json::json!({"result": {"b64data": "aGk="}})).unwrap();
        let answer = map_publish_answer(ok, &caller()).unwrap();
        assert_eq!(answer.data.as_deref(), Some(&b"hi"[..]));
        let bad: proto::MapPublishResponse =
            serde_json::from_value(serde_json::json!({"result": {"b64data": "!!"}})).unwrap();
        assert_eq!(
            map_publish_answer(bad, &caller()).unwrap_err(),
            HandlerError::from(gyre::Error::INTERNAL)
        );
    }

    #[test]
    fn refusals_win_over_results() {
        let response: proto::MapRemoveResponse = serde_json::from_value(serde_json::json!({
            "result": {"key": "x"},
            "error": {"code": 1001, "message": "no"}
        }))
        .unwrap();
        assert_eq!(
            map_remove_answer(response).unwrap_err(),
            HandlerError::from(gyre::Error::new(1001, "no"))
        );
        let response: proto::MapPublishResponse = serde_json::from_value(serde_json::json!({
            "error": {"code": 1001, "message": "no"},
            "disconnect": {"code": 4500, "reason": "bye"}
        }))
        .unwrap();
        assert_eq!(
            map_publish_answer(response, &caller()).unwrap_err(),
            HandlerError::from(gyre::Disconnect::new(4500, "bye"))
        );
    }

    #[test]
    fn remove_result_renames_the_key_and_sets_tags() {
        let response: proto::MapRemoveResponse = serde_json::from_value(serde_json::json!({
            "result": {"key": "other", "tags": {"a": "b"}, "idempotency_key": "i"}
        }))
        .unwrap();
        let answer = map_remove_answer(response).unwrap();
        let mut reply =
            MapPublishReply::new("k", MapPublishOptions::new(MapChannelOptions::default()));
        answer.apply(&mut reply);
        assert_eq!(reply.key, "other");
        assert_eq!(reply.options.tags.len(), 1);
        assert_eq!(reply.options.idempotency_key.as_deref(), Some("i"));
    }
}
