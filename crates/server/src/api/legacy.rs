//! The single-endpoint form `POST /api` (upstream `handler_legacy.go`, to be removed in
//! Centrifugo v7, still used by old clients and the admin UI).
//!
//! The body is a stream of commands `{"id": N, "method": "publish", "params": {...}}`
//! (newline-delimited or simply concatenated); replies `{"id": N, "result": ...}` or
//! `{"id": N, "error": ...}` are joined with `\n`. `method` is a case-insensitive name or
//! the numeric enum value. A command that cannot be decoded fails the whole request with
//! 400, as upstream does (commands before it have run). There is no `batch` method here.

use serde::de::{Deserializer, Error as _};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::executor::execute;
use super::proto::{ApiError, Method, Outcome};
use crate::app::App;

/// Method names of upstream's `Command_MethodType` and their numbers. Names without a
/// [`Method`] (PRO and experimental methods) decode, then answer 104.
const METHODS: &[(&str, i64)] = &[
    ("PUBLISH", 0),
    ("BROADCAST", 1),
    ("UNSUBSCRIBE", 2),
    ("DISCONNECT", 3),
    ("PRESENCE", 4),
    ("PRESENCE_STATS", 5),
    ("HISTORY", 6),
    ("HISTORY_REMOVE", 7),
    ("CHANNELS", 8),
    ("INFO", 9),
    ("RPC", 10),
    ("SUBSCRIBE", 11),
    ("REFRESH", 12),
    ("CONNECTIONS", 14),
    ("UPDATE_USER_STATUS", 15),
    ("GET_USER_STATUS", 16),
    ("DELETE_USER_STATUS", 17),
    ("BLOCK_USER", 18),
    ("UNBLOCK_USER", 19),
    ("REVOKE_TOKEN", 20),
    ("INVALIDATE_USER_TOKENS", 21),
    ("DEVICE_REGISTER", 22),
    ("DEVICE_UPDATE", 23),
    ("DEVICE_REMOVE", 24),
    ("DEVICE_LIST", 25),
    ("DEVICE_TOPIC_LIST", 26),
    ("DEVICE_TOPIC_UPDATE", 27),
    ("USER_TOPIC_LIST", 28),
    ("USER_TOPIC_UPDATE", 29),
    ("SEND_PUSH_NOTIFICATION", 30),
    ("UPDATE_PUSH_STATUS", 31),
    ("CANCEL_PUSH", 32),
    ("MAP_PUBLISH", 33),
    ("MAP_REMOVE", 34),
    ("MAP_READ_STATE", 35),
    ("MAP_READ_STREAM", 36),
    ("MAP_STATS", 37),
    ("MAP_CLEAR", 38),
    ("SHARED_POLL_PUBLISH", 39),
];

fn method_of(number: i64) -> Option<Method> {
    Some(match number {
        0 => Method::Publish,
        1 => Method::Broadcast,
        2 => Method::Unsubscribe,
        3 => Method::Disconnect,
        4 => Method::Presence,
        5 => Method::PresenceStats,
        6 => Method::History,
        7 => Method::HistoryRemove,
        8 => Method::Channels,
        9 => Method::Info,
        10 => Method::Rpc,
        11 => Method::Subscribe,
        12 => Method::Refresh,
        _ => return None,
    })
}

/// `method`: a known name (any case) or a number; anything else is a decoding error.
#[derive(Debug, Default)]
struct MethodNumber(i64);

impl<'de> Deserialize<'de> for MethodNumber {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum NameOrNumber {
            Name(String),
            Number(i64),
        }
        match NameOrNumber::deserialize(d)? {
            NameOrNumber::Number(n) => Ok(MethodNumber(n)),
            NameOrNumber::Name(name) => METHODS
                .iter()
                .find(|(known, _)| known.eq_ignore_ascii_case(&name))
                .map(|&(_, n)| MethodNumber(n))
                .ok_or_else(|| D::Error::custom(format!("unknown method {name:?}"))),
        }
    }
}

#[derive(Debug, Deserialize)]
struct LegacyCommand {
    #[serde(default)]
    id: u32,
    /// Absent means 0, `publish`.
    #[serde(default)]
    method: MethodNumber,
    #[serde(default)]
    params: Option<Box<RawValue>>,
}

#[derive(Debug, Serialize)]
struct LegacyReply {
    #[serde(skip_serializing_if = "is_zero")]
    id: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<ApiError>,
    #[serde(skip_serializing_if = "Option::is_none")]
    result: Option<Outcome>,
}

fn is_zero(id: &u32) -> bool {
    *id == 0
}

/// Runs the commands of a legacy request body. `Err` when a command cannot be decoded.
pub(crate) async fn run(app: &App, body: &[u8]) -> Result<Vec<u8>, serde_json::Error> {
    let mut out = Vec::new();
    for command in serde_json::Deserializer::from_slice(body).into_iter::<LegacyCommand>() {
        let command = command?;
        let outcome = match method_of(command.method.0) {
            None => Err(ApiError::NOT_FOUND),
            Some(method) => match decode(method, command.params.as_deref()) {
                Ok(request) => execute(app, request).await,
                Err(error) => Err(error),
            },
        };
        let (error, result) = match outcome {
            Ok(result) => (None, Some(result)),
            Err(error) => (Some(error), None),
        };
        if !out.is_empty() {
            out.push(b'\n');
        }
        serde_json::to_writer(
            &mut out,
            &LegacyReply {
                id: command.id,
                error,
                result,
            },
        )?;
    }
    Ok(out)
}

/// Params of one command; missing or undecodable params answer 107 (`info` takes none).
fn decode(method: Method, params: Option<&RawValue>) -> Result<super::proto::Request, ApiError> {
    if method == Method::Info {
        return Ok(super::proto::Request::Info);
    }
    let params = params.ok_or(ApiError::BAD_REQUEST)?;
    method
        .decode(params.get().as_bytes())
        .map_err(|_| ApiError::BAD_REQUEST)
}
