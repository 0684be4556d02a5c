//! Each event's request, and what its answer means for the client (Centrifugo's
//! `internal/proxy/*_handler.go`, as facts: which fields go out, which come back, and
//! which error the client sees when the backend cannot answer).

use std::collections::HashMap;

use base64::Engine;
use bytes::Bytes;
use gyre::{
    ConnectEvent, Credentials, Error, HandlerError, PublishEvent, PublishReply, RefreshReply,
    RpcEvent, RpcReply, SharedPollItem, SharedPollMode, SharedPollRefreshEvent,
    SharedPollRefreshReply, SubRefreshEvent, SubRefreshReply, SubscribeEvent, SubscribeOptions,
};

use crate::context::CallContext;
use crate::error::CallError;
use crate::proto;
use crate::transport::{Exchange, Proxy};

/// Who a call is about: the connection's id, transport, protocol and user.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct Caller {
    /// The connection's id.
    pub client_id: String,
    /// `websocket`, `http_stream`, `sse`, …
    pub transport: String,
    /// Whether the connection speaks Protobuf (`protocol: "protobuf"`).
    pub protobuf: bool,
    /// The connection's user (empty before connect and for anonymous users).
    pub user: String,
}

impl Caller {
    /// A caller with these fields.
    pub fn new(
        client_id: impl Into<String>,
        transport: impl Into<String>,
        user: impl Into<String>,
    ) -> Self {
        Caller {
            client_id: client_id.into(),
            transport: transport.into(),
            protobuf: false,
            user: user.into(),
        }
    }
}

impl From<&gyre::Client> for Caller {
    fn from(client: &gyre::Client) -> Self {
        Caller {
            client_id: client.id().to_owned(),
            transport: client.transport().to_owned(),
            protobuf: client.is_protobuf(),
            user: client.user_id(),
        }
    }
}

impl From<&ConnectEvent> for Caller {
    fn from(event: &ConnectEvent) -> Self {
        Caller {
            client_id: event.client_id.clone(),
            transport: event.transport.to_owned(),
            protobuf: event.protobuf,
            user: String::new(),
        }
    }
}

/// Channel options a backend turns on or off for one subscription (`override`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Overrides {
    /// Emit presence.
    pub presence: Option<bool>,
    /// Emit join and leave messages.
    pub join_leave: Option<bool>,
    /// Push join and leave messages to the subscriber.
    pub force_push_join_leave: Option<bool>,
    /// Recovery on.
    pub force_recovery: Option<bool>,
    /// Positioning on.
    pub force_positioning: Option<bool>,
}

impl Overrides {
    /// Sets the options the backend named.
    pub fn apply(&self, options: &mut SubscribeOptions) {
        if let Some(v) = self.presence {
            options.emit_presence = v;
        }
        if let Some(v) = self.join_leave {
            options.emit_join_leave = v;
        }
        if let Some(v) = self.force_push_join_leave {
            options.push_join_leave = v;
        }
        if let Some(v) = self.force_recovery {
            options.enable_recovery = v;
        }
        if let Some(v) = self.force_positioning {
            options.enable_positioning = v;
        }
    }

    fn from_proto(o: Option<proto::SubscribeOptionOverride>) -> Self {
        let o = o.unwrap_or_default();
        Overrides {
            presence: o.presence.map(|v| v.value),
            join_leave: o.join_leave.map(|v| v.value),
            force_push_join_leave: o.force_push_join_leave.map(|v| v.value),
            force_recovery: o.force_recovery.map(|v| v.value),
            force_positioning: o.force_positioning.map(|v| v.value),
        }
    }
}

/// A subscription the backend grants: at connect (`subs`) or on subscribe.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct Grant {
    /// When the subscription expires (Unix seconds, 0 = never).
    pub expire_at: i64,
    /// Channel info attached to the subscriber in presence and publications.
    pub info: Bytes,
    /// Data sent to the subscriber in its subscribe reply.
    pub data: Bytes,
    /// Channel options turned on or off.
    pub overrides: Overrides,
}

impl Grant {
    /// Writes the grant into subscription options built from the channel's defaults.
    pub fn apply(&self, options: &mut SubscribeOptions) {
        options.expire_at = self.expire_at;
        options.channel_info = self.info.clone();
        options.data = self.data.clone();
        self.overrides.apply(options);
    }
}

/// What the backend decided for a connection without a token.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ConnectAnswer {
    /// User, expiry and connection info.
    pub credentials: Credentials,
    /// Returned to the client in its connect reply.
    pub data: Bytes,
    /// Server-side subscriptions with the channels' own options.
    pub channels: Vec<String>,
    /// Server-side subscriptions with their own info, data and overrides.
    pub subs: Vec<(String, Grant)>,
    /// Connection meta, sent with later calls when `include_connection_meta` is on.
    pub meta: Bytes,
}

/// What the backend decided for an expiring connection.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RefreshAnswer {
    /// For the library: expired, or a new expiry and info.
    pub reply: RefreshReply,
    /// A new connection meta, when the backend sent one.
    pub meta: Option<Bytes>,
}

/// What the backend decided for a client publication.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct PublishAnswer {
    /// Data that replaces the client's.
    pub data: Option<Bytes>,
    /// Do not keep this publication in history.
    pub skip_history: bool,
    /// Tags of the publication.
    pub tags: HashMap<String, String>,
    /// Idempotency key of the publication.
    pub idempotency_key: String,
    /// Publish as a delta.
    pub delta: bool,
    /// Version of the publication (0 = unversioned).
    pub version: u64,
    /// Epoch of `version`.
    pub version_epoch: String,
}

impl PublishAnswer {
    /// Writes the answer into a publish reply built from the channel's options.
    pub fn apply(self, reply: &mut PublishReply) {
        if let Some(data) = self.data {
            reply.data = Some(data);
        }
        let o = &mut reply.options;
        if self.skip_history {
            o.history_size = 0;
            o.history_ttl = std::time::Duration::ZERO;
        }
        if !self.tags.is_empty() {
            o.tags = self.tags;
        }
        if !self.idempotency_key.is_empty() {
            o.idempotency_key = Some(self.idempotency_key);
        }
        o.use_delta |= self.delta;
        if self.version > 0 {
            o.version = self.version;
            o.version_epoch = self.version_epoch;
        }
    }
}

/// How long a connection or subscription lives on when the backend cannot be asked: one
/// more minute, then it is asked again, so a backend outage disconnects nobody.
const RETRY_AFTER_SECONDS: i64 = 60;

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

pub(crate) fn encoding(binary: bool) -> String {
    if binary { "binary" } else { "json" }.to_owned()
}

pub(crate) fn protocol(protobuf: bool) -> String {
    if protobuf { "protobuf" } else { "json" }.to_owned()
}

/// `data` (raw JSON) or `b64data`, as the proxy's encoding says, and the request's
/// `encoding`. Data that is not JSON (from a Protobuf connection) cannot travel as raw
/// JSON: it goes as `b64data` with `encoding: "binary"` rather than failing the call.
pub(crate) fn data_fields(binary: bool, data: &Bytes) -> (Bytes, String, String) {
    let as_base64 = binary || (!data.is_empty() && !is_json_text(data));
    if as_base64 {
        (
            Bytes::new(),
            base64::engine::general_purpose::STANDARD.encode(data),
            encoding(true),
        )
    } else {
        (data.clone(), String::new(), encoding(false))
    }
}

/// Whether `data` is written as raw JSON as it is: the same check as the serializer's, which
/// also wants UTF-8 (`"\xff"` reads as a JSON string when only the syntax is checked).
fn is_json_text(data: &[u8]) -> bool {
    std::str::from_utf8(data)
        .is_ok_and(|text| serde_json::from_str::<&serde_json::value::RawValue>(text).is_ok())
}

/// The data an answer puts in place of the client's: `data` if set, else `b64data`
/// decoded; `None` keeps what the client sent.
pub(crate) fn replacement_data(
    data: Bytes,
    b64data: &str,
    caller: &Caller,
) -> Result<Option<Bytes>, HandlerError> {
    if !data.is_empty() {
        return Ok(Some(data));
    }
    if b64data.is_empty() {
        return Ok(None);
    }
    pick(b64data, Bytes::new(), "data", caller).map(Some)
}

/// `b64x` decoded when set, else the raw `x`.
pub(crate) fn pick(
    b64: &str,
    raw: Bytes,
    what: &str,
    caller: &Caller,
) -> Result<Bytes, HandlerError> {
    if b64.is_empty() {
        return Ok(raw);
    }
    base64::engine::general_purpose::STANDARD
        .decode(b64)
        .map(Bytes::from)
        .map_err(|e| {
            tracing::error!(client = %caller.client_id, error = %e, "error decoding base64 {what}");
            Error::INTERNAL.into()
        })
}

pub(crate) fn refusal(
    error: Option<proto::Error>,
    disconnect: Option<proto::Disconnect>,
) -> Option<HandlerError> {
    if let Some(d) = disconnect {
        return Some(gyre::Disconnect::new(d.code, d.reason).into());
    }
    error.map(|e| {
        let mut err = Error::new(e.code, e.message);
        if e.temporary {
            err = err.temporary();
        }
        err.into()
    })
}

impl Proxy {
    /// Sends one call; a failure is logged and becomes the configured status transform,
    /// or else error 100 (internal), as in Centrifugo.
    pub(crate) async fn exchange<E: Exchange>(
        &self,
        request: &E,
        caller: &Caller,
        context: &CallContext,
    ) -> Result<E::Response, HandlerError> {
        let stats = self.stats().event(E::INDEX);
        let started = std::time::Instant::now();
        let outcome = {
            // A guard, so that a call dropped halfway (the client went away) leaves too.
            let _inflight = stats.enter();
            self.call(request, context).await
        };
        stats.duration.observe_since(started);
        outcome.map_err(|e| {
            stats.errors.inc();
            self.failure(e, caller, E::EVENT)
        })
    }

    /// What the client gets when the backend gave no answer: the status transform of an
    /// HTTP status, else error 100 (internal).
    fn failure(&self, e: CallError, caller: &Caller, event: &str) -> HandlerError {
        tracing::error!(
            client = %caller.client_id,
            user = %caller.user,
            proxy = self.protocol(),
            endpoint = %self.config().endpoint,
            error = %e,
            "error proxying {event}"
        );
        if let CallError::Status(status) = e
            && let Some(t) = self
                .config()
                .status_transforms
                .iter()
                .find(|t| t.status == status)
        {
            return t.to.clone();
        }
        Error::INTERNAL.into()
    }

    pub(crate) fn meta(&self, context: &CallContext) -> Bytes {
        if self.config().include_connection_meta {
            context.meta.clone()
        } else {
            Bytes::new()
        }
    }

    /// Asks the backend who a connection without a token is. `context` carries the
    /// headers of the client's request.
    pub async fn connect(
        &self,
        event: &ConnectEvent,
        context: &CallContext,
    ) -> Result<ConnectAnswer, HandlerError> {
        let caller = Caller::from(event);
        let binary = self.config().binary_encoding;
        let (data, b64data, encoding) = data_fields(binary, &event.data);
        let request = proto::ConnectRequest {
            client: caller.client_id.clone(),
            transport: caller.transport.clone(),
            protocol: protocol(caller.protobuf),
            encoding,
            data,
            b64data,
            name: event.name.clone(),
            version: event.version.clone(),
            channels: event.channels.clone(),
        };
        let response = self.exchange(&request, &caller, context).await?;
        connect_answer(response, &caller)
    }

    /// Asks the backend whether an expired connection is extended. When the backend
    /// cannot be asked, the connection lives one more minute.
    pub async fn refresh(&self, caller: &Caller, context: &CallContext) -> RefreshAnswer {
        let request = proto::RefreshRequest {
            client: caller.client_id.clone(),
            transport: caller.transport.clone(),
            protocol: protocol(caller.protobuf),
            encoding: encoding(self.config().binary_encoding),
            user: caller.user.clone(),
            meta: self.meta(context),
            labels: HashMap::new(),
        };
        match self.exchange(&request, caller, context).await {
            Ok(response) => refresh_answer(response, caller),
            Err(_) => refresh_retry(),
        }
    }

    /// Asks the backend whether a client may subscribe.
    pub async fn subscribe(
        &self,
        caller: &Caller,
        event: &SubscribeEvent,
        context: &CallContext,
    ) -> Result<Grant, HandlerError> {
        let binary = self.config().binary_encoding;
        let (data, b64data, encoding) = data_fields(binary, &event.data);
        let request = proto::SubscribeRequest {
            client: caller.client_id.clone(),
            transport: caller.transport.clone(),
            protocol: protocol(caller.protobuf),
            encoding,
            user: caller.user.clone(),
            channel: event.channel.clone(),
            token: event.token.clone(),
            meta: self.meta(context),
            data,
            b64data,
            labels: HashMap::new(),
        };
        let response = self.exchange(&request, caller, context).await?;
        subscribe_grant(response, caller)
    }

    /// Asks the backend whether a client publication goes out, and with which data.
    pub async fn publish(
        &self,
        caller: &Caller,
        event: &PublishEvent,
        context: &CallContext,
    ) -> Result<PublishAnswer, HandlerError> {
        let binary = self.config().binary_encoding;
        let (data, b64data, encoding) = data_fields(binary, &event.data);
        let request = proto::PublishRequest {
            client: caller.client_id.clone(),
            transport: caller.transport.clone(),
            protocol: protocol(caller.protobuf),
            encoding,
            user: caller.user.clone(),
            channel: event.channel.clone(),
            data,
            b64data,
            meta: self.meta(context),
            labels: HashMap::new(),
        };
        let response = self.exchange(&request, caller, context).await?;
        publish_answer(response, caller)
    }

    /// Passes an RPC call to the backend; its result data goes back to the client.
    pub async fn rpc(
        &self,
        caller: &Caller,
        event: &RpcEvent,
        context: &CallContext,
    ) -> Result<RpcReply, HandlerError> {
        let binary = self.config().binary_encoding;
        let (data, b64data, encoding) = data_fields(binary, &event.data);
        let request = proto::RpcRequest {
            client: caller.client_id.clone(),
            transport: caller.transport.clone(),
            protocol: protocol(caller.protobuf),
            encoding,
            user: caller.user.clone(),
            method: event.method.clone(),
            data,
            b64data,
            meta: self.meta(context),
            labels: HashMap::new(),
        };
        let response = self.exchange(&request, caller, context).await?;
        rpc_reply(response, caller)
    }

    /// Asks the backend whether an expired subscription is extended. When the backend
    /// cannot be asked, the subscription lives one more minute.
    pub async fn sub_refresh(
        &self,
        caller: &Caller,
        event: &SubRefreshEvent,
        context: &CallContext,
    ) -> Result<SubRefreshReply, HandlerError> {
        let request = proto::SubRefreshRequest {
            client: caller.client_id.clone(),
            transport: caller.transport.clone(),
            protocol: protocol(caller.protobuf),
            encoding: encoding(self.config().binary_encoding),
            user: caller.user.clone(),
            channel: event.channel.clone(),
            meta: self.meta(context),
            labels: HashMap::new(),
        };
        match self.exchange(&request, caller, context).await {
            Ok(response) => sub_refresh_reply(response, caller, &event.channel),
            Err(_) => Ok(SubRefreshReply::new(unix_now() + RETRY_AFTER_SECONDS)),
        }
    }

    /// Asks the backend for the current data of tracked shared-poll keys (no client is
    /// involved: the node's refresh worker calls). An `error` answer or a failed call is
    /// an error: the worker skips the cycle.
    pub async fn shared_poll_refresh(
        &self,
        event: &SharedPollRefreshEvent,
    ) -> Result<SharedPollRefreshReply, Error> {
        let versioned = event.mode == SharedPollMode::Versioned;
        let request = proto::SharedPollRefreshRequest {
            channel: event.channel.clone(),
            items: event
                .items
                .iter()
                .map(|i| proto::SharedPollRefreshItem {
                    key: i.key.clone(),
                    version: if versioned { i.version } else { 0 },
                })
                .collect(),
        };
        let caller = Caller::default();
        match self
            .exchange(&request, &caller, &CallContext::default())
            .await
        {
            Ok(response) => shared_poll_refresh_reply(response),
            Err(HandlerError::Error(e)) => Err(e),
            Err(HandlerError::Disconnect(_)) => Err(Error::INTERNAL),
        }
    }
}

// What an answer means for the client: pure, so the decoding of everything a backend can
// send is tested without one.

fn connect_answer(
    response: proto::ConnectResponse,
    caller: &Caller,
) -> Result<ConnectAnswer, HandlerError> {
    if let Some(refusal) = refusal(response.error, response.disconnect) {
        return Err(refusal);
    }
    let Some(result) = response.result else {
        // No credentials: refused as any connection without them (3501).
        return Err(gyre::Disconnect::BAD_REQUEST.into());
    };
    let info = pick(&result.b64info, result.info, "info", caller)?;
    let data = pick(&result.b64data, result.data, "data", caller)?;
    let mut subs = Vec::with_capacity(result.subs.len());
    for (channel, o) in result.subs {
        subs.push((
            channel,
            Grant {
                expire_at: o.expire_at,
                info: pick(&o.b64info, o.info, "info", caller)?,
                data: pick(&o.b64data, o.data, "data", caller)?,
                overrides: Overrides::from_proto(o.r#override),
            },
        ));
    }
    Ok(ConnectAnswer {
        credentials: Credentials::new(result.user)
            .expire_at(result.expire_at)
            .info(info),
        data,
        channels: result.channels,
        subs,
        meta: result.meta,
    })
}

/// The backend could not be asked: the connection lives on and is asked again later.
fn refresh_retry() -> RefreshAnswer {
    RefreshAnswer {
        reply: RefreshReply::new(unix_now() + RETRY_AFTER_SECONDS),
        meta: None,
    }
}

fn refresh_answer(response: proto::RefreshResponse, caller: &Caller) -> RefreshAnswer {
    let expired = RefreshAnswer {
        reply: RefreshReply::expired(),
        meta: None,
    };
    let Some(result) = response.result else {
        tracing::error!(client = %caller.client_id, "refresh proxy answered without result");
        return expired;
    };
    if result.expired {
        return expired;
    }
    let mut reply = RefreshReply::new(result.expire_at);
    match pick(&result.b64info, result.info, "info", caller) {
        Ok(info) if !info.is_empty() => reply.info = Some(info),
        Ok(_) => {}
        Err(_) => return refresh_retry(),
    }
    RefreshAnswer {
        reply,
        meta: Some(result.meta).filter(|m| !m.is_empty()),
    }
}

fn subscribe_grant(
    response: proto::SubscribeResponse,
    caller: &Caller,
) -> Result<Grant, HandlerError> {
    if let Some(refusal) = refusal(response.error, response.disconnect) {
        return Err(refusal);
    }
    let Some(result) = response.result else {
        return Ok(Grant::default());
    };
    Ok(Grant {
        expire_at: result.expire_at,
        info: pick(&result.b64info, result.info, "info", caller)?,
        data: pick(&result.b64data, result.data, "data", caller)?,
        overrides: Overrides::from_proto(result.r#override),
    })
}

fn publish_answer(
    response: proto::PublishResponse,
    caller: &Caller,
) -> Result<PublishAnswer, HandlerError> {
    if let Some(refusal) = refusal(response.error, response.disconnect) {
        return Err(refusal);
    }
    let Some(result) = response.result else {
        return Ok(PublishAnswer::default());
    };
    let data = replacement_data(result.data, &result.b64data, caller)?;
    Ok(PublishAnswer {
        data,
        skip_history: result.skip_history,
        tags: result.tags,
        idempotency_key: result.idempotency_key,
        delta: result.delta,
        version: result.version,
        version_epoch: result.version_epoch,
    })
}

fn rpc_reply(response: proto::RpcResponse, caller: &Caller) -> Result<RpcReply, HandlerError> {
    if let Some(refusal) = refusal(response.error, response.disconnect) {
        return Err(refusal);
    }
    let Some(result) = response.result else {
        return Ok(RpcReply::default());
    };
    Ok(RpcReply::new(pick(
        &result.b64data,
        result.data,
        "data",
        caller,
    )?))
}

fn sub_refresh_reply(
    response: proto::SubRefreshResponse,
    caller: &Caller,
    channel: &str,
) -> Result<SubRefreshReply, HandlerError> {
    let expired = || {
        let mut reply = SubRefreshReply::default();
        reply.expired = true;
        reply
    };
    let Some(result) = response.result else {
        tracing::error!(client = %caller.client_id, channel = %channel, "sub refresh proxy answered without result");
        return Ok(expired());
    };
    if result.expired {
        return Ok(expired());
    }
    let mut reply = SubRefreshReply::new(result.expire_at);
    let info = pick(&result.b64info, result.info, "info", caller)?;
    if !info.is_empty() {
        reply.info = Some(info);
    }
    Ok(reply)
}

fn shared_poll_refresh_reply(
    response: proto::SharedPollRefreshResponse,
) -> Result<SharedPollRefreshReply, Error> {
    if let Some(e) = response.error {
        return Err(Error::new(e.code, e.message));
    }
    let Some(result) = response.result else {
        return Ok(SharedPollRefreshReply::default());
    };
    let items = result
        .items
        .into_iter()
        .filter(|i| !i.key.is_empty())
        .map(|i| {
            if i.removed {
                SharedPollItem::removed(i.key)
            } else {
                SharedPollItem::new(i.key, i.data).with_version(i.version)
            }
        })
        .collect();
    Ok(SharedPollRefreshReply::new(items).with_epoch(result.epoch))
}

/// Decodes `body` as every event's answer (JSON when `json`, else Protobuf) and maps
/// what decodes to the client's outcome, for the fuzz target: it must never panic.
pub(crate) fn fuzz_answers(body: &[u8], json: bool) {
    fn decode<R: prost::Message + serde::de::DeserializeOwned + Default>(
        body: &[u8],
        json: bool,
    ) -> Option<R> {
        if json {
            serde_json::from_slice(body).ok()
        } else {
            R::decode(body).ok()
        }
    }
    let caller = Caller::new("client", "websocket", "user");
    if let Some(r) = decode(body, json) {
        let _ = connect_answer(r, &caller);
    }
    if let Some(r) = decode(body, json) {
        let _ = refresh_answer(r, &caller);
    }
    if let Some(r) = decode(body, json) {
        let _ = subscribe_grant(r, &caller);
    }
    if let Some(r) = decode(body, json) {
        let _ = publish_answer(r, &caller);
    }
    if let Some(r) = decode(body, json) {
        let _ = rpc_reply(r, &caller);
    }
    if let Some(r) = decode(body, json) {
        let _ = sub_refresh_reply(r, &caller, "channel");
    }
    if let Some(r) = decode(body, json) {
        let _ = crate::map_events::map_publish_answer(r, &caller);
    }
    if let Some(r) = decode(body, json) {
        let _ = crate::map_events::map_remove_answer(r);
    }
    if let Some(r) = decode(body, json) {
        let _ = shared_poll_refresh_reply(r);
    }
}

#[cfg(test)]
mod tests {
    //! Whatever a backend sends back, the client gets a valid answer, the backend's own
    //! refusal, or error 100: never a panic.

    use proptest::prelude::*;
    use prost::Message;
    use serde::de::DeserializeOwned;
    use serde_json::Value;

    use super::*;
    use crate::config::ProxyConfig;

    fn caller() -> Caller {
        Caller::new("client-1", "websocket", "alice")
    }

    /// The client's outcome for an answer body, as a call would produce it: a body that
    /// does not decode is a failed call.
    fn outcome<R, T>(
        body: &[u8],
        json: bool,
        map: impl FnOnce(R) -> Result<T, HandlerError>,
    ) -> (Option<R>, Result<T, HandlerError>)
    where
        R: Message + DeserializeOwned + Default + Clone,
    {
        let decoded = if json {
            serde_json::from_slice::<R>(body).map_err(|e| CallError::Decode(e.to_string()))
        } else {
            R::decode(body).map_err(|e| CallError::Decode(e.to_string()))
        };
        match decoded {
            Ok(response) => (Some(response.clone()), map(response)),
            Err(e) => {
                // Building a client loads the TLS roots: once, not per case.
                static PROXY: std::sync::LazyLock<Proxy> = std::sync::LazyLock::new(|| {
                    Proxy::new(ProxyConfig::new("http://127.0.0.1:1/")).unwrap()
                });
                (None, Err(PROXY.failure(e, &caller(), "test")))
            }
        }
    }

    /// An error is 100, or exactly the refusal the backend sent.
    fn check_error(
        error: HandlerError,
        sent: (Option<proto::Error>, Option<proto::Disconnect>),
    ) -> Result<(), TestCaseError> {
        let internal = HandlerError::from(Error::INTERNAL);
        match refusal(sent.0, sent.1) {
            Some(own) => prop_assert!(error == own || error == internal, "{error:?}"),
            None => prop_assert_eq!(error, internal),
        }
        Ok(())
    }

    /// Raw (not base64) application data must be JSON: it is written as is into the
    /// frames of JSON clients.
    fn check_raw(bytes: &Bytes, b64: &str) -> Result<(), TestCaseError> {
        if b64.is_empty() && !bytes.is_empty() {
            prop_assert!(
                serde_json::from_slice::<serde::de::IgnoredAny>(bytes).is_ok(),
                "{bytes:?}"
            );
        }
        Ok(())
    }

    /// Checks every event's outcome for one answer body.
    fn check_all(body: &[u8], json: bool) -> Result<(), TestCaseError> {
        let c = caller();

        let (sent, got) = outcome(body, json, |r: proto::ConnectResponse| {
            connect_answer(r, &c)
        });
        match (sent, got) {
            (Some(r), Ok(answer)) => {
                prop_assert!(r.error.is_none() && r.disconnect.is_none());
                if json {
                    let result = r.result.unwrap();
                    check_raw(&answer.credentials.info, &result.b64info)?;
                    check_raw(&answer.data, &result.b64data)?;
                    check_raw(&answer.meta, "")?;
                    for (channel, grant) in &answer.subs {
                        let o = &result.subs[channel];
                        check_raw(&grant.info, &o.b64info)?;
                        check_raw(&grant.data, &o.b64data)?;
                    }
                }
            }
            (Some(r), Err(e)) if r.result.is_none() && r.error.is_none() => {
                let no_credentials = HandlerError::from(gyre::Disconnect::BAD_REQUEST);
                let own = refusal(None, r.disconnect).unwrap_or(no_credentials);
                prop_assert_eq!(e, own);
            }
            (Some(r), Err(e)) => check_error(e, (r.error, r.disconnect))?,
            (None, Err(e)) => check_error(e, (None, None))?,
            (None, Ok(_)) => unreachable!(),
        }

        let (sent, got) = outcome(body, json, |r: proto::SubscribeResponse| {
            subscribe_grant(r, &c)
        });
        match (sent, got) {
            (Some(r), Ok(grant)) => {
                prop_assert!(r.error.is_none() && r.disconnect.is_none());
                if json && let Some(result) = r.result {
                    check_raw(&grant.info, &result.b64info)?;
                    check_raw(&grant.data, &result.b64data)?;
                }
            }
            (sent, Err(e)) => {
                let sent = sent.map_or((None, None), |r| (r.error, r.disconnect));
                check_error(e, sent)?;
            }
            (None, Ok(_)) => unreachable!(),
        }

        let (sent, got) = outcome(body, json, |r: proto::PublishResponse| {
            publish_answer(r, &c)
        });
        match (sent, got) {
            (Some(r), Ok(answer)) => {
                prop_assert!(r.error.is_none() && r.disconnect.is_none());
                if json
                    && let Some(result) = r.result
                    && let Some(data) = &answer.data
                {
                    check_raw(data, if result.data.is_empty() { "b64" } else { "" })?;
                }
            }
            (sent, Err(e)) => {
                let sent = sent.map_or((None, None), |r| (r.error, r.disconnect));
                check_error(e, sent)?;
            }
            (None, Ok(_)) => unreachable!(),
        }

        let (sent, got) = outcome(body, json, |r: proto::RpcResponse| rpc_reply(r, &c));
        match (sent, got) {
            (Some(r), Ok(reply)) => {
                prop_assert!(r.error.is_none() && r.disconnect.is_none());
                if json && let Some(result) = r.result {
                    check_raw(&reply.data, &result.b64data)?;
                }
            }
            (sent, Err(e)) => {
                let sent = sent.map_or((None, None), |r| (r.error, r.disconnect));
                check_error(e, sent)?;
            }
            (None, Ok(_)) => unreachable!(),
        }

        // Refresh never fails the client: an unusable answer extends or expires.
        let (_, got) = outcome(body, json, |r: proto::RefreshResponse| {
            Ok(refresh_answer(r, &c))
        });
        if let Ok(answer) = got
            && let Some(meta) = &answer.meta
            && json
        {
            check_raw(meta, "")?;
        }
        let (_, got) = outcome(body, json, |r: proto::SubRefreshResponse| {
            sub_refresh_reply(r, &c, "channel")
        });
        if let Err(e) = got {
            check_error(e, (None, None))?;
        }
        Ok(())
    }

    /// Field names of the responses, so generated JSON often has the expected shape.
    const KEYS: &[&str] = &[
        "result",
        "error",
        "disconnect",
        "code",
        "message",
        "temporary",
        "reason",
        "user",
        "expire_at",
        "info",
        "b64info",
        "data",
        "b64data",
        "channels",
        "subs",
        "meta",
        "expired",
        "override",
        "presence",
        "join_leave",
        "force_recovery",
        "value",
        "skip_history",
        "tags",
        "idempotency_key",
        "delta",
        "version",
        "version_epoch",
    ];

    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            any::<f64>().prop_map(Value::from),
            // Base64-ish and arbitrary text.
            "[A-Za-z0-9+/=]{0,12}".prop_map(Value::from),
            any::<String>().prop_map(Value::from),
        ];
        let key = prop_oneof![
            prop::sample::select(KEYS).prop_map(str::to_owned),
            "[a-z_]{1,6}",
        ];
        leaf.prop_recursive(5, 48, 6, move |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::vec((key.clone(), inner), 0..6)
                    .prop_map(|kv| Value::Object(kv.into_iter().collect())),
            ]
        })
    }

    /// An answer body: a JSON value, often `{"result"|"error"|"disconnect": {…}}`,
    /// sometimes cut short.
    fn json_body() -> impl Strategy<Value = String> {
        let top = prop::sample::select(&["result", "error", "disconnect"][..]);
        let shaped = prop::collection::vec((top, json_value()), 1..3)
            .prop_map(|kv| Value::Object(kv.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()));
        (
            prop_oneof![json_value(), shaped],
            any::<prop::sample::Index>(),
            0..4u8,
        )
            .prop_map(|(value, cut, how)| {
                let text = value.to_string();
                if how == 0 {
                    let mut at = cut.index(text.len() + 1);
                    while !text.is_char_boundary(at) {
                        at -= 1;
                    }
                    text[..at].to_owned()
                } else {
                    text
                }
            })
    }

    /// Inputs random bytes rarely hit: a JSON string holding bytes that are not UTF-8,
    /// JSON with surrounding space, and two values in a row.
    #[test]
    fn client_data_near_json_is_sent() {
        for data in [&b"\"\xff\""[..], b" {\"a\":1}\n", b"1 2", b"\"\\ud800\""] {
            let data = Bytes::from_static(data);
            let (raw, b64data, encoding) = data_fields(false, &data);
            let request = proto::RpcRequest {
                data: raw,
                b64data,
                encoding,
                ..Default::default()
            };
            let body = serde_json::to_vec(&request);
            assert!(body.is_ok(), "{data:?}: {body:?}");
            // A lone surrogate escape is valid JSON text but no Rust string: read raw.
            let sent: HashMap<String, Box<serde_json::value::RawValue>> =
                serde_json::from_slice(&body.unwrap()).unwrap();
            match sent.get("b64data") {
                Some(b64) => {
                    assert_eq!(sent["encoding"].get(), r#""binary""#);
                    let b64: String = serde_json::from_str(b64.get()).unwrap();
                    let got = base64::engine::general_purpose::STANDARD.decode(b64);
                    assert_eq!(got.unwrap(), data);
                }
                None => assert_eq!(sent["data"].get().as_bytes(), data.trim_ascii()),
            }
        }
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_as_answers(body in prop::collection::vec(any::<u8>(), 0..256)) {
            check_all(&body, true)?;
            check_all(&body, false)?;
        }

        #[test]
        fn json_ish_answers_over_http(body in json_body()) {
            check_all(body.as_bytes(), true)?;
        }

        /// Well-formed messages re-encoded as Protobuf, then damaged at one byte.
        #[test]
        fn damaged_protobuf_answers_over_grpc(
            body in json_body(),
            at in any::<prop::sample::Index>(),
            byte in any::<u8>(),
        ) {
            let encodings = [
                serde_json::from_str::<proto::ConnectResponse>(&body).map(|r| r.encode_to_vec()),
                serde_json::from_str::<proto::SubscribeResponse>(&body).map(|r| r.encode_to_vec()),
                serde_json::from_str::<proto::PublishResponse>(&body).map(|r| r.encode_to_vec()),
            ];
            for mut encoded in encodings.into_iter().flatten() {
                check_all(&encoded, false)?;
                if !encoded.is_empty() {
                    let i = at.index(encoded.len());
                    encoded[i] = byte;
                    check_all(&encoded, false)?;
                }
            }
        }

        /// Any client data can be sent: raw when it is JSON, else as base64, and the
        /// backend reads back exactly what the client sent.
        #[test]
        fn any_client_data_reaches_the_backend(
            data in prop_oneof![
                prop::collection::vec(any::<u8>(), 0..64),
                json_value().prop_map(|v| v.to_string().into_bytes()),
            ],
            binary in any::<bool>(),
        ) {
            let data = Bytes::from(data);
            let (raw, b64data, encoding) = data_fields(binary, &data);
            let request = proto::PublishRequest {
                channel: "c".into(),
                data: raw,
                b64data,
                encoding,
                ..Default::default()
            };
            let body = serde_json::to_vec(&request);
            prop_assert!(body.is_ok(), "{:?}: {:?}", data, body);
            let body = body.unwrap();
            let sent: Value = serde_json::from_slice(&body).unwrap();
            if let Some(b64) = sent.get("b64data") {
                prop_assert_eq!(&sent["encoding"], "binary");
                let got = base64::engine::general_purpose::STANDARD
                    .decode(b64.as_str().unwrap())
                    .unwrap();
                prop_assert_eq!(&got[..], &data[..]);
            } else if !data.is_empty() {
                prop_assert!(!binary);
                prop_assert_eq!(&sent["encoding"], "json");
                // The JSON text goes out as the client wrote it.
                let fields: HashMap<String, Box<serde_json::value::RawValue>> =
                    serde_json::from_slice(&body).unwrap();
                let json_space: &[char] = &[' ', '\t', '\n', '\r'];
                let text = std::str::from_utf8(&data).unwrap().trim_matches(json_space);
                prop_assert_eq!(fields["data"].get(), text);
            }
        }
    }
}
