//! `client.proxy.connect`: the backend decides who a connection without a token is.

use std::collections::HashMap;

use bytes::Bytes;
use gyre::{ConnectEvent, Credentials, Error, HandlerError};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use super::http::{self, CallError};
use crate::config::Config;
use crate::jwt::{OptionsClaim, SubscribeOptionsClaim};

/// What the backend decided for an accepted connection.
#[derive(Debug)]
pub(crate) struct Accepted {
    /// User, expiry and connection info.
    pub(crate) credentials: Credentials,
    /// Returned to the client in the connect result.
    pub(crate) data: Bytes,
    /// Server-side subscriptions with namespace options.
    pub(crate) channels: Vec<String>,
    /// Server-side subscriptions with their own info, data and overrides.
    pub(crate) subs: Vec<(String, SubscribeOptionsClaim)>,
}

/// `result` of a connect answer.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ConnectResult {
    user: String,
    expire_at: i64,
    info: Option<Box<RawValue>>,
    b64info: String,
    data: Option<Box<RawValue>>,
    b64data: String,
    channels: Vec<String>,
    subs: HashMap<String, OptionsClaim>,
}

/// The JSON body of a ConnectRequest.
fn request(config: &Config, event: &ConnectEvent) -> Value {
    let common = &config.client.proxy.connect.proxy.proxy_common;
    let (protocol, encoding) = super::protocol_fields(event.protobuf);
    let mut body = Map::new();
    body.insert("client".into(), event.client_id.clone().into());
    body.insert("transport".into(), event.transport.into());
    body.insert("protocol".into(), protocol.into());
    body.insert("encoding".into(), encoding.into());
    if !event.name.is_empty() {
        body.insert("name".into(), event.name.clone().into());
    }
    if !event.version.is_empty() {
        body.insert("version".into(), event.version.clone().into());
    }
    super::insert_data(&mut body, common.binary_encoding, &event.data);
    if !event.channels.is_empty() {
        body.insert("channels".into(), event.channels.clone().into());
    }
    Value::Object(body)
}

/// Asks the backend about a connection without a token. The refusal is the backend's
/// error or disconnect, a configured status transform, or else error 100.
pub(crate) async fn connect(
    config: &Config,
    event: &ConnectEvent,
) -> Result<Accepted, HandlerError> {
    let proxy = &config.client.proxy.connect.proxy;
    let body = request(config, event);
    let envelope =
        match http::call::<ConnectResult>(proxy, &event.request_headers, &event.headers, &body)
            .await
        {
            Ok(envelope) => envelope,
            Err(CallError::Status(status)) => {
                tracing::error!(client = %event.client_id, status, "error proxying connect");
                return Err(http::transform_status(proxy, status).unwrap_or(Error::INTERNAL.into()));
            }
            Err(e) => {
                tracing::error!(client = %event.client_id, error = %e, "error proxying connect");
                return Err(Error::INTERNAL.into());
            }
        };
    if let Some(refusal) = http::refusal(&envelope) {
        return Err(refusal);
    }
    let Some(result) = envelope.result else {
        // No credentials: the library answers 3501 as for any connection without them.
        return Err(gyre::Disconnect::BAD_REQUEST.into());
    };
    let binary = proxy.proxy_common.binary_encoding;
    let info = super::pick(binary, &result.b64info, result.info).map_err(|e| {
        tracing::error!(client = %event.client_id, error = %e, "error decoding base64 info");
        HandlerError::from(Error::INTERNAL)
    })?;
    let data = super::pick(binary, &result.b64data, result.data).map_err(|e| {
        tracing::error!(client = %event.client_id, error = %e, "error decoding base64 data");
        HandlerError::from(Error::INTERNAL)
    })?;
    let mut subs = Vec::with_capacity(result.subs.len());
    for (channel, options) in result.subs {
        let options = options.into_options().map_err(|e| {
            tracing::error!(client = %event.client_id, error = %e, "bad subscription options");
            HandlerError::from(Error::INTERNAL)
        })?;
        subs.push((channel, options));
    }
    Ok(Accepted {
        credentials: Credentials::new(result.user)
            .expire_at(result.expire_at)
            .info(info),
        data,
        channels: result.channels,
        subs,
    })
}
