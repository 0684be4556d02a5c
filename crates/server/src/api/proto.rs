//! JSON shapes of the server API (Centrifugo `internal/apiproto/api.proto`).
//!
//! Requests decode like Go's `encoding/json` into the generated structs: unknown fields are
//! ignored, `null` leaves a field at its zero value, and `bytes` fields (`data`, `info`,
//! `params`) take any raw JSON value. Responses encode like the generated structs, where
//! every field is `omitempty`: zero numbers, empty strings, maps and lists are left out.

use std::collections::HashMap;

use bytes::Bytes;
use serde::de::{Deserialize, Deserializer};
use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize as DeriveDeserialize, Serialize};
use serde_json::value::RawValue;

use super::methods::{Command, Outcome};

/// An API error: `{"code": N, "message": "..."}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub(crate) struct ApiError {
    pub(crate) code: u32,
    pub(crate) message: &'static str,
}

impl ApiError {
    pub(crate) const INTERNAL: ApiError = ApiError::new(100, "internal server error");
    pub(crate) const UNAUTHORIZED: ApiError = ApiError::new(101, "unauthorized");
    pub(crate) const UNKNOWN_CHANNEL: ApiError = ApiError::new(102, "unknown channel");
    pub(crate) const NOT_FOUND: ApiError = ApiError::new(104, "not found");
    pub(crate) const BAD_REQUEST: ApiError = ApiError::new(107, "bad request");
    pub(crate) const NOT_AVAILABLE: ApiError = ApiError::new(108, "not available");
    pub(crate) const UNRECOVERABLE_POSITION: ApiError =
        ApiError::new(112, "unrecoverable position");

    const fn new(code: u32, message: &'static str) -> Self {
        ApiError { code, message }
    }

    /// HTTP status of this error in the transport error mode (upstream
    /// `MapErrorToHTTPCode`).
    pub(crate) fn http_status(self) -> http::StatusCode {
        use http::StatusCode;
        match self.code {
            102 | 104 => StatusCode::NOT_FOUND,
            107 | 108 => StatusCode::BAD_REQUEST,
            112 => StatusCode::RANGE_NOT_SATISFIABLE,
            113 => StatusCode::CONFLICT,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// Go's `json.Unmarshal` leaves a field untouched on `null`; serde would fail on it.
fn nullable<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// A `bytes` field: the raw JSON value as sent (`null` included, as Go's `Raw` keeps it),
/// or the bytes of a protobuf `bytes` field (gRPC API), which need not be JSON.
#[derive(Debug, Default)]
pub(crate) struct Raw(pub(crate) Option<Bytes>);

impl<'de> Deserialize<'de> for Raw {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Box::<RawValue>::deserialize(d)
            .map(|v| Raw(Some(Bytes::copy_from_slice(v.get().as_bytes()))))
    }
}

impl Raw {
    /// The value's bytes (empty when absent).
    pub(crate) fn to_bytes(&self) -> Bytes {
        self.0.clone().unwrap_or_default()
    }
}

/// Payload bytes written back as a raw JSON value (Go's `Raw` marshalling). Payloads that
/// are not JSON (published with `b64data`) are written as a JSON string instead of failing
/// the whole response as Centrifugo does.
#[derive(Debug, Clone, Default)]
pub(crate) struct RawOut(pub(crate) Bytes);

impl RawOut {
    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl Serialize for RawOut {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match std::str::from_utf8(&self.0)
            .ok()
            .and_then(|text| serde_json::from_str::<&RawValue>(text).ok())
        {
            Some(raw) => raw.serialize(s),
            None => s.serialize_str(&String::from_utf8_lossy(&self.0)),
        }
    }
}

fn is_zero<T: Default + PartialEq>(v: &T) -> bool {
    *v == T::default()
}

// ---------------------------------------------------------------------------------------
// Requests.

#[derive(Debug, Default, DeriveDeserialize)]
#[serde(default)]
pub(crate) struct PublishRequest {
    #[serde(deserialize_with = "nullable")]
    pub(crate) channel: String,
    pub(crate) data: Raw,
    #[serde(deserialize_with = "nullable")]
    pub(crate) b64data: String,
    #[serde(deserialize_with = "nullable")]
    pub(crate) skip_history: bool,
    #[serde(deserialize_with = "nullable")]
    pub(crate) tags: HashMap<String, String>,
    #[serde(deserialize_with = "nullable")]
    pub(crate) idempotency_key: String,
    #[serde(deserialize_with = "nullable")]
    pub(crate) delta: bool,
    #[serde(deserialize_with = "nullable")]
    pub(crate) version: u64,
    #[serde(deserialize_with = "nullable")]
    pub(crate) version_epoch: String,
}

#[derive(Debug, Default, DeriveDeserialize)]
#[serde(default)]
pub(crate) struct BroadcastRequest {
    #[serde(deserialize_with = "nullable")]
    pub(crate) channels: Vec<String>,
    pub(crate) data: Raw,
    #[serde(deserialize_with = "nullable")]
    pub(crate) b64data: String,
    #[serde(deserialize_with = "nullable")]
    pub(crate) skip_history: bool,
    #[serde(deserialize_with = "nullable")]
    pub(crate) tags: HashMap<String, String>,
    #[serde(deserialize_with = "nullable")]
    pub(crate) idempotency_key: String,
    #[serde(deserialize_with = "nullable")]
    pub(crate) delta: bool,
    #[serde(deserialize_with = "nullable")]
    pub(crate) version: u64,
    #[serde(deserialize_with = "nullable")]
    pub(crate) version_epoch: String,
}

#[derive(Debug, Default, Clone, DeriveDeserialize)]
#[serde(default)]
pub(crate) struct StreamPosition {
    #[serde(deserialize_with = "nullable")]
    pub(crate) offset: u64,
    #[serde(deserialize_with = "nullable")]
    pub(crate) epoch: String,
}

#[derive(Debug, Default, DeriveDeserialize)]
#[serde(default)]
pub(crate) struct BoolValue {
    #[serde(deserialize_with = "nullable")]
    pub(crate) value: bool,
}

#[derive(Debug, Default, DeriveDeserialize)]
#[serde(default)]
pub(crate) struct SubscribeOptionOverride {
    pub(crate) presence: Option<BoolValue>,
    pub(crate) join_leave: Option<BoolValue>,
    pub(crate) force_recovery: Option<BoolValue>,
    pub(crate) force_positioning: Option<BoolValue>,
    pub(crate) force_push_join_leave: Option<BoolValue>,
}

#[derive(Debug, Default, DeriveDeserialize)]
#[serde(default)]
pub(crate) struct SubscribeRequest {
    #[serde(deserialize_with = "nullable")]
    pub(crate) channel: String,
    #[serde(deserialize_with = "nullable")]
    pub(crate) user: String,
    #[serde(deserialize_with = "nullable")]
    pub(crate) expire_at: i64,
    pub(crate) info: Raw,
    #[serde(deserialize_with = "nullable")]
    pub(crate) b64info: String,
    #[serde(deserialize_with = "nullable")]
    pub(crate) client: String,
    pub(crate) data: Raw,
    #[serde(deserialize_with = "nullable")]
    pub(crate) b64data: String,
    pub(crate) recover_since: Option<StreamPosition>,
    pub(crate) r#override: Option<SubscribeOptionOverride>,
    #[serde(deserialize_with = "nullable")]
    pub(crate) session: String,
}

#[derive(Debug, Default, DeriveDeserialize)]
#[serde(default)]
pub(crate) struct UnsubscribeRequest {
    #[serde(deserialize_with = "nullable")]
    pub(crate) channel: String,
    #[serde(deserialize_with = "nullable")]
    pub(crate) user: String,
    #[serde(deserialize_with = "nullable")]
    pub(crate) client: String,
    #[serde(deserialize_with = "nullable")]
    pub(crate) session: String,
}

#[derive(Debug, Default, DeriveDeserialize)]
#[serde(default)]
pub(crate) struct DisconnectObject {
    #[serde(deserialize_with = "nullable")]
    pub(crate) code: u32,
    #[serde(deserialize_with = "nullable")]
    pub(crate) reason: String,
}

#[derive(Debug, Default, DeriveDeserialize)]
#[serde(default)]
pub(crate) struct DisconnectRequest {
    #[serde(deserialize_with = "nullable")]
    pub(crate) user: String,
    pub(crate) disconnect: Option<DisconnectObject>,
    #[serde(deserialize_with = "nullable")]
    pub(crate) client: String,
    #[serde(deserialize_with = "nullable")]
    pub(crate) whitelist: Vec<String>,
    #[serde(deserialize_with = "nullable")]
    pub(crate) session: String,
}

#[derive(Debug, Default, DeriveDeserialize)]
#[serde(default)]
pub(crate) struct RefreshRequest {
    #[serde(deserialize_with = "nullable")]
    pub(crate) user: String,
    #[serde(deserialize_with = "nullable")]
    pub(crate) client: String,
    #[serde(deserialize_with = "nullable")]
    pub(crate) expired: bool,
    #[serde(deserialize_with = "nullable")]
    pub(crate) expire_at: i64,
    pub(crate) info: Raw,
    #[serde(deserialize_with = "nullable")]
    pub(crate) session: String,
}

/// `presence`, `presence_stats`, `history_remove`.
#[derive(Debug, Default, DeriveDeserialize)]
#[serde(default)]
pub(crate) struct ChannelRequest {
    #[serde(deserialize_with = "nullable")]
    pub(crate) channel: String,
}

#[derive(Debug, Default, DeriveDeserialize)]
#[serde(default)]
pub(crate) struct HistoryRequest {
    #[serde(deserialize_with = "nullable")]
    pub(crate) channel: String,
    #[serde(deserialize_with = "nullable")]
    pub(crate) limit: i32,
    pub(crate) since: Option<StreamPosition>,
    #[serde(deserialize_with = "nullable")]
    pub(crate) reverse: bool,
}

#[derive(Debug, Default, DeriveDeserialize)]
pub(crate) struct InfoRequest {}

#[derive(Debug, Default, DeriveDeserialize)]
#[serde(default)]
pub(crate) struct RpcRequest {
    #[serde(deserialize_with = "nullable")]
    pub(crate) method: String,
    pub(crate) params: Raw,
}

#[derive(Debug, Default, DeriveDeserialize)]
#[serde(default)]
pub(crate) struct ChannelsRequest {
    #[serde(deserialize_with = "nullable")]
    pub(crate) pattern: String,
}

#[derive(Debug, Default, DeriveDeserialize)]
#[serde(default)]
pub(crate) struct BatchRequest {
    #[serde(deserialize_with = "nullable")]
    pub(crate) commands: Vec<Option<Command>>,
    #[serde(deserialize_with = "nullable")]
    pub(crate) parallel: bool,
}

// ---------------------------------------------------------------------------------------
// Results.

#[derive(Debug, Clone, Default, Serialize)]
pub(crate) struct PublishResult {
    #[serde(skip_serializing_if = "is_zero")]
    pub(crate) offset: u64,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub(crate) epoch: String,
}

/// `{"error": ...}` or `{"result": ...}`: one response of a method.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Response<T> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) error: Option<ApiError>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) result: Option<T>,
}

impl<T> From<Result<T, ApiError>> for Response<T> {
    fn from(r: Result<T, ApiError>) -> Self {
        match r {
            Ok(result) => Response {
                error: None,
                result: Some(result),
            },
            Err(error) => Response {
                error: Some(error),
                result: None,
            },
        }
    }
}

#[derive(Debug, Clone, Default, Serialize)]
pub(crate) struct BroadcastResult {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) responses: Vec<Response<PublishResult>>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub(crate) struct ClientInfo {
    pub(crate) user: String,
    pub(crate) client: String,
    #[serde(skip_serializing_if = "RawOut::is_empty")]
    pub(crate) conn_info: RawOut,
    #[serde(skip_serializing_if = "RawOut::is_empty")]
    pub(crate) chan_info: RawOut,
}

impl From<gyre::ClientInfo> for ClientInfo {
    fn from(c: gyre::ClientInfo) -> Self {
        ClientInfo {
            user: c.user,
            client: c.client,
            conn_info: RawOut(c.conn_info),
            chan_info: RawOut(c.chan_info),
        }
    }
}

#[derive(Debug, Clone, Default, Serialize)]
pub(crate) struct PresenceResult {
    pub(crate) presence: HashMap<String, ClientInfo>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub(crate) struct PresenceStatsResult {
    pub(crate) num_clients: u32,
    pub(crate) num_users: u32,
}

#[derive(Debug, Clone, Default, Serialize)]
pub(crate) struct Publication {
    #[serde(skip_serializing_if = "RawOut::is_empty")]
    pub(crate) data: RawOut,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) info: Option<ClientInfo>,
    #[serde(skip_serializing_if = "is_zero")]
    pub(crate) offset: u64,
    #[serde(skip_serializing_if = "HashMap::is_empty")]
    pub(crate) tags: HashMap<String, String>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub(crate) struct HistoryResult {
    pub(crate) publications: Vec<Publication>,
    pub(crate) epoch: String,
    pub(crate) offset: u64,
}

#[derive(Debug, Clone, Default, Serialize)]
pub(crate) struct NodeResult {
    pub(crate) uid: String,
    pub(crate) name: String,
    pub(crate) version: String,
    pub(crate) num_clients: u32,
    pub(crate) num_users: u32,
    pub(crate) num_channels: u32,
    #[serde(skip_serializing_if = "is_zero")]
    pub(crate) uptime: u32,
    pub(crate) num_subs: u32,
}

#[derive(Debug, Clone, Default, Serialize)]
pub(crate) struct InfoResult {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) nodes: Vec<NodeResult>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub(crate) struct ChannelInfo {
    #[serde(skip_serializing_if = "is_zero")]
    pub(crate) num_clients: u32,
}

#[derive(Debug, Clone, Default, Serialize)]
pub(crate) struct ChannelsResult {
    pub(crate) channels: HashMap<String, ChannelInfo>,
}

/// `{}`: the result of methods that return nothing.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub(crate) struct Empty {}

/// One reply of a batch: `{"error": ...}` or `{"<method>": result}`.
#[derive(Debug, Clone)]
pub(crate) struct Reply(pub(crate) Result<Outcome, ApiError>);

impl Serialize for Reply {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(1))?;
        match &self.0 {
            Ok(outcome) => map.serialize_entry(outcome.name(), outcome)?,
            Err(error) => map.serialize_entry("error", error)?,
        }
        map.end()
    }
}

#[derive(Debug, Clone, Default, Serialize)]
pub(crate) struct BatchResult {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) replies: Vec<Reply>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_decode_like_go() {
        let r: PublishRequest = serde_json::from_str(
            r#"{"channel":"a","data":{"x":[1, 2]},"tags":null,"unknown":5,"version":null}"#,
        )
        .unwrap();
        assert_eq!(r.channel, "a");
        assert_eq!(&r.data.to_bytes()[..], br#"{"x":[1, 2]}"#);
        assert!(r.tags.is_empty());
        let r: PublishRequest = serde_json::from_str(r#"{"channel":"a","data":null}"#).unwrap();
        assert_eq!(&r.data.to_bytes()[..], b"null");
        let r: PublishRequest = serde_json::from_str(r#"{"channel":"a"}"#).unwrap();
        assert!(r.data.to_bytes().is_empty());
        assert!(serde_json::from_str::<PublishRequest>(r#"{"channel":5}"#).is_err());
        assert!(serde_json::from_str::<InfoRequest>("").is_err());
    }

    fn json<T: Serialize>(v: &T) -> String {
        serde_json::to_string(v).unwrap()
    }

    #[test]
    fn results_omit_empty_fields() {
        assert_eq!(json(&PublishResult::default()), "{}");
        assert_eq!(
            json(&Response::from(Ok::<_, ApiError>(PublishResult {
                offset: 3,
                epoch: "e".into()
            }))),
            r#"{"result":{"offset":3,"epoch":"e"}}"#
        );
        assert_eq!(
            json(&Response::<Empty>::from(Err(ApiError::UNKNOWN_CHANNEL))),
            r#"{"error":{"code":102,"message":"unknown channel"}}"#
        );
        let publication = Publication {
            data: RawOut(Bytes::from_static(b"\xff\x00")),
            ..Default::default()
        };
        assert_eq!(json(&publication), "{\"data\":\"\u{fffd}\\u0000\"}");
        let batch = BatchResult {
            replies: vec![
                Reply(Ok(Outcome::Subscribe(Empty {}))),
                Reply(Err(ApiError::NOT_FOUND)),
            ],
        };
        assert_eq!(
            json(&batch),
            r#"{"replies":[{"subscribe":{}},{"error":{"code":104,"message":"not found"}}]}"#
        );
    }
}

#[derive(Debug, Default, DeriveDeserialize)]
#[serde(default)]
pub(crate) struct MapPublishRequest {
    #[serde(deserialize_with = "nullable")]
    pub(crate) channel: String,
    #[serde(deserialize_with = "nullable")]
    pub(crate) key: String,
    pub(crate) data: Raw,
    #[serde(deserialize_with = "nullable")]
    pub(crate) b64data: String,
    #[serde(deserialize_with = "nullable")]
    pub(crate) tags: HashMap<String, String>,
    #[serde(deserialize_with = "nullable")]
    pub(crate) idempotency_key: String,
    #[serde(deserialize_with = "nullable")]
    pub(crate) delta: bool,
    #[serde(deserialize_with = "nullable")]
    pub(crate) version: u64,
    #[serde(deserialize_with = "nullable")]
    pub(crate) version_epoch: String,
    #[serde(deserialize_with = "nullable")]
    pub(crate) key_mode: String,
}

#[derive(Debug, Default, DeriveDeserialize)]
#[serde(default)]
pub(crate) struct SharedPollPublishRequest {
    #[serde(deserialize_with = "nullable")]
    pub(crate) channel: String,
    #[serde(deserialize_with = "nullable")]
    pub(crate) key: String,
    pub(crate) data: Raw,
    #[serde(deserialize_with = "nullable")]
    pub(crate) b64data: String,
    #[serde(deserialize_with = "nullable")]
    pub(crate) version: u64,
    #[serde(deserialize_with = "nullable")]
    pub(crate) epoch: String,
}

#[derive(Debug, Default, DeriveDeserialize)]
#[serde(default)]
pub(crate) struct MapRemoveRequest {
    #[serde(deserialize_with = "nullable")]
    pub(crate) channel: String,
    #[serde(deserialize_with = "nullable")]
    pub(crate) key: String,
    #[serde(deserialize_with = "nullable")]
    pub(crate) idempotency_key: String,
}

/// The result of `map_publish` and `map_remove`.
#[derive(Debug, Clone, Default, Serialize)]
pub(crate) struct MapPublishResult {
    #[serde(skip_serializing_if = "is_zero")]
    pub(crate) offset: u64,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub(crate) epoch: String,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub(crate) suppressed: bool,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub(crate) suppress_reason: String,
}

#[derive(Debug, Default, DeriveDeserialize)]
#[serde(default)]
pub(crate) struct MapReadStateRequest {
    #[serde(deserialize_with = "nullable")]
    pub(crate) channel: String,
    #[serde(deserialize_with = "nullable")]
    pub(crate) cursor: String,
    #[serde(deserialize_with = "nullable")]
    pub(crate) limit: i32,
    #[serde(deserialize_with = "nullable")]
    pub(crate) key: String,
    #[serde(deserialize_with = "nullable")]
    pub(crate) asc: bool,
    #[serde(deserialize_with = "nullable")]
    pub(crate) revision_offset: u64,
    #[serde(deserialize_with = "nullable")]
    pub(crate) revision_epoch: String,
}

#[derive(Debug, Clone, Default, Serialize)]
pub(crate) struct MapEntry {
    pub(crate) key: String,
    #[serde(skip_serializing_if = "RawOut::is_empty")]
    pub(crate) data: RawOut,
    #[serde(skip_serializing_if = "HashMap::is_empty")]
    pub(crate) tags: HashMap<String, String>,
    #[serde(skip_serializing_if = "is_zero")]
    pub(crate) offset: u64,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub(crate) removed: bool,
    #[serde(skip_serializing_if = "is_zero")]
    pub(crate) time: i64,
}

#[derive(Debug, Clone, Default, Serialize)]
pub(crate) struct MapReadStateResult {
    pub(crate) entries: Vec<MapEntry>,
    #[serde(skip_serializing_if = "is_zero")]
    pub(crate) offset: u64,
    pub(crate) epoch: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub(crate) cursor: String,
}

#[derive(Debug, Default, DeriveDeserialize)]
#[serde(default)]
pub(crate) struct MapReadStreamRequest {
    #[serde(deserialize_with = "nullable")]
    pub(crate) channel: String,
    #[serde(deserialize_with = "nullable")]
    pub(crate) since_offset: u64,
    #[serde(deserialize_with = "nullable")]
    pub(crate) since_epoch: String,
    #[serde(deserialize_with = "nullable")]
    pub(crate) limit: i32,
    #[serde(deserialize_with = "nullable")]
    pub(crate) reverse: bool,
}

#[derive(Debug, Clone, Default, Serialize)]
pub(crate) struct MapReadStreamResult {
    pub(crate) entries: Vec<MapEntry>,
    #[serde(skip_serializing_if = "is_zero")]
    pub(crate) offset: u64,
    pub(crate) epoch: String,
}

#[derive(Debug, Clone, Default, Serialize)]
pub(crate) struct MapStatsResult {
    #[serde(skip_serializing_if = "is_zero")]
    pub(crate) num_keys: i32,
}
