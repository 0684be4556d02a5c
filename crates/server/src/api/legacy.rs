//! The single-endpoint form `POST /api` (upstream `handler_legacy.go`, to be removed in
//! Centrifugo v7, still used by old clients and the admin UI).
//!
//! The body is a stream of commands `{"id": N, "method": "publish", "params": {...}}`
//! (newline-delimited or simply concatenated); replies `{"id": N, "result": ...}` or
//! `{"id": N, "error": ...}` are joined with `\n`. `method` is a case-insensitive name or
//! the numeric enum value. A command that cannot be decoded fails the whole request with
//! 400, as upstream does (commands before it have run). There is no `batch` method here.

use serde::de::{DeserializeOwned, Deserializer, Error as _};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::methods::{Method, Outcome, Source, execute};
use super::proto::ApiError;
use crate::app::App;
use crate::metrics::ApiProtocol;

/// Upstream's `Command_MethodType` names that this server does not serve (PRO and
/// experimental methods), with their numbers: they decode, then answer 104. The served
/// methods' names and numbers are rows of the method table ([`Method::legacy_id`]).
const NOT_SERVED: &[(&str, i64)] = &[
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
];

/// The number of a method name, any case: a served method's, else a [`NOT_SERVED`] one's.
fn number_of(name: &str) -> Option<i64> {
    Method::ALL
        .iter()
        .find(|method| method.name().eq_ignore_ascii_case(name))
        .map(|method| method.legacy_id())
        .or_else(|| {
            NOT_SERVED
                .iter()
                .find(|(known, _)| known.eq_ignore_ascii_case(name))
                .map(|&(_, number)| number)
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
            NameOrNumber::Name(name) => number_of(&name)
                .map(MethodNumber)
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

/// Decodes a legacy request body as [`run`] does, without running anything (fuzzing).
pub(crate) fn fuzz_decode(body: &[u8]) {
    for command in serde_json::Deserializer::from_slice(body).into_iter::<LegacyCommand>() {
        let Ok(command) = command else {
            return;
        };
        if let Some(method) = Method::from_legacy_id(command.method.0) {
            let _ = method.decode(Params(command.params.as_deref()));
        }
    }
}

/// Runs the commands of a legacy request body. `Err` when a command cannot be decoded.
pub(crate) async fn run(app: &App, body: &[u8]) -> Result<Vec<u8>, serde_json::Error> {
    let mut out = Vec::new();
    for command in serde_json::Deserializer::from_slice(body).into_iter::<LegacyCommand>() {
        let command = command?;
        let outcome = match Method::from_legacy_id(command.method.0) {
            None => Err(ApiError::NOT_FOUND),
            Some(method) => match method.decode(Params(command.params.as_deref())) {
                Ok(request) => execute(app, request, ApiProtocol::Http).await,
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

/// The `params` of one command: missing or undecodable params answer 107, except for a
/// request object without fields (`info`), which upstream builds without reading them.
struct Params<'a>(Option<&'a RawValue>);

impl Source for Params<'_> {
    type Error = ApiError;

    fn read<T: DeserializeOwned + Default>(self) -> Result<T, ApiError> {
        if std::mem::size_of::<T>() == 0 {
            return Ok(T::default());
        }
        let params = self.0.ok_or(ApiError::BAD_REQUEST)?;
        serde_json::from_str(params.get()).map_err(|_| ApiError::BAD_REQUEST)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn number(name: &str) -> Option<i64> {
        serde_json::from_value::<MethodNumber>(serde_json::json!(name))
            .ok()
            .map(|n| n.0)
    }

    #[test]
    fn served_method_names_in_any_case_give_their_number() {
        for &method in Method::ALL {
            let name = method.name();
            for spelled in [name.to_owned(), name.to_ascii_uppercase()] {
                let id = number(&spelled).unwrap_or_else(|| panic!("{spelled}"));
                assert_eq!(Method::from_legacy_id(id), Some(method), "{spelled}");
            }
        }
        assert_eq!(number("Presence_Stats"), Some(5));
        assert_eq!(number("batch"), None);
        assert_eq!(number("nope"), None);
    }

    #[test]
    fn not_served_names_stay_clear_of_the_table() {
        for &(name, id) in NOT_SERVED {
            assert_eq!(number(name), Some(id));
            assert_eq!(Method::from_legacy_id(id), None, "{name}");
            assert!(
                Method::ALL
                    .iter()
                    .all(|m| !m.name().eq_ignore_ascii_case(name)),
                "{name}"
            );
        }
    }

    #[test]
    fn params_are_required_except_by_requests_without_fields() {
        let params = RawValue::from_string("5".to_owned()).unwrap();
        for &method in Method::ALL {
            let missing = method.decode(Params(None));
            let garbled = method.decode(Params(Some(&params)));
            if method == Method::Info {
                assert!(missing.is_ok() && garbled.is_ok());
            } else {
                assert_eq!(missing.unwrap_err(), ApiError::BAD_REQUEST, "{method:?}");
                assert_eq!(garbled.unwrap_err(), ApiError::BAD_REQUEST, "{method:?}");
            }
        }
    }
}
