//! `client.proxy.refresh`: the backend extends an expiring connection (server-side
//! refresh; the client is not involved).

use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use gyre::RefreshReply;

use super::http;
use crate::config::Config;

/// How long a connection lives on when the backend cannot be asked: Centrifugo gives it
/// one more minute and asks again, so a backend outage disconnects nobody.
const RETRY_AFTER_SECONDS: i64 = 60;

/// `result` of a refresh answer.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct RefreshResult {
    expired: bool,
    expire_at: i64,
    info: Option<Box<RawValue>>,
    b64info: String,
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Asks the backend whether `client`'s expired credentials are extended.
pub(crate) async fn refresh(config: &Config, client: &gyre::Client) -> RefreshReply {
    let proxy = &config.client.proxy.refresh.proxy;
    let (protocol, encoding) = super::protocol_fields(client.is_protobuf());
    let mut body = Map::new();
    body.insert("client".into(), client.id().into());
    body.insert("transport".into(), client.transport().into());
    body.insert("protocol".into(), protocol.into());
    body.insert("encoding".into(), encoding.into());
    body.insert("user".into(), client.user_id().into());
    let body = Value::Object(body);
    let retry = || RefreshReply::new(unix_now() + RETRY_AFTER_SECONDS);
    let envelope = match http::call::<RefreshResult>(
        proxy,
        &::http::HeaderMap::new(),
        &Default::default(),
        &body,
    )
    .await
    {
        Ok(envelope) => envelope,
        Err(e) => {
            tracing::error!(client = %client.id(), error = %e, "error proxying refresh");
            return retry();
        }
    };
    let Some(result) = envelope.result else {
        tracing::debug!(client = %client.id(), "refresh proxy answered without result");
        return RefreshReply::expired();
    };
    if result.expired {
        return RefreshReply::expired();
    }
    let mut reply = RefreshReply::new(result.expire_at);
    match super::pick(
        proxy.proxy_common.binary_encoding,
        &result.b64info,
        result.info,
    ) {
        Ok(info) if !info.is_empty() => reply.info = Some(info),
        Ok(_) => {}
        Err(e) => {
            tracing::error!(client = %client.id(), error = %e, "error decoding base64 info");
            return retry();
        }
    }
    reply
}
