//! Each event's request, and what its answer means for the client (Centrifugo's
//! `internal/proxy/*_handler.go`, as facts: which fields go out, which come back, and
//! which error the client sees when the backend cannot answer).

use std::collections::HashMap;

use base64::Engine;
use bytes::Bytes;
use gyre::{
    ConnectEvent, Credentials, Error, HandlerError, PublishEvent, PublishReply, RefreshReply,
    RpcEvent, RpcReply, SubRefreshEvent, SubRefreshReply, SubscribeEvent, SubscribeOptions,
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

/// What the backend decided for an expiring subscription.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SubRefreshAnswer {
    /// For the library: expired, or a new expiry.
    pub reply: SubRefreshReply,
    /// New channel info, when the backend sent one.
    pub info: Bytes,
}

/// How long a connection or subscription lives on when the backend cannot be asked: one
/// more minute, then it is asked again, so a backend outage disconnects nobody.
const RETRY_AFTER_SECONDS: i64 = 60;

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

fn encoding(binary: bool) -> String {
    if binary { "binary" } else { "json" }.to_owned()
}

fn protocol(protobuf: bool) -> String {
    if protobuf { "protobuf" } else { "json" }.to_owned()
}

/// `data` (raw JSON) or `b64data`, as the proxy's encoding says, and the request's
/// `encoding`. Data that is not JSON (from a Protobuf connection) cannot travel as raw
/// JSON: it goes as `b64data` with `encoding: "binary"` rather than failing the call.
fn data_fields(binary: bool, data: &Bytes) -> (Bytes, String, String) {
    let as_base64 = binary
        || (!data.is_empty() && serde_json::from_slice::<serde::de::IgnoredAny>(data).is_err());
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

/// `b64x` decoded when set, else the raw `x`.
fn pick(b64: &str, raw: Bytes, what: &str, caller: &Caller) -> Result<Bytes, HandlerError> {
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

fn refusal(
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
    async fn exchange<E: Exchange>(
        &self,
        request: &E,
        caller: &Caller,
        context: &CallContext,
    ) -> Result<E::Response, HandlerError> {
        match self.call(request, context).await {
            Ok(response) => Ok(response),
            Err(e) => {
                tracing::error!(
                    client = %caller.client_id,
                    user = %caller.user,
                    proxy = self.protocol(),
                    endpoint = %self.config().endpoint,
                    error = %e,
                    "error proxying {}",
                    E::EVENT
                );
                if let CallError::Status(status) = e
                    && let Some(t) = self
                        .config()
                        .status_transforms
                        .iter()
                        .find(|t| t.status == status)
                {
                    return Err(t.to.clone());
                }
                Err(Error::INTERNAL.into())
            }
        }
    }

    fn meta(&self, context: &CallContext) -> Bytes {
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
        if let Some(refusal) = refusal(response.error, response.disconnect) {
            return Err(refusal);
        }
        let Some(result) = response.result else {
            // No credentials: refused as any connection without them (3501).
            return Err(gyre::Disconnect::BAD_REQUEST.into());
        };
        let info = pick(&result.b64info, result.info, "info", &caller)?;
        let data = pick(&result.b64data, result.data, "data", &caller)?;
        let mut subs = Vec::with_capacity(result.subs.len());
        for (channel, o) in result.subs {
            subs.push((
                channel,
                Grant {
                    expire_at: o.expire_at,
                    info: pick(&o.b64info, o.info, "info", &caller)?,
                    data: pick(&o.b64data, o.data, "data", &caller)?,
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
        let retry = RefreshAnswer {
            reply: RefreshReply::new(unix_now() + RETRY_AFTER_SECONDS),
            meta: None,
        };
        let Ok(response) = self.exchange(&request, caller, context).await else {
            return retry;
        };
        let Some(result) = response.result else {
            tracing::error!(client = %caller.client_id, "refresh proxy answered without result");
            return RefreshAnswer {
                reply: RefreshReply::expired(),
                meta: None,
            };
        };
        if result.expired {
            return RefreshAnswer {
                reply: RefreshReply::expired(),
                meta: None,
            };
        }
        let mut reply = RefreshReply::new(result.expire_at);
        match pick(&result.b64info, result.info, "info", caller) {
            Ok(info) if !info.is_empty() => reply.info = Some(info),
            Ok(_) => {}
            Err(_) => return retry,
        }
        RefreshAnswer {
            reply,
            meta: Some(result.meta).filter(|m| !m.is_empty()),
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
        if let Some(refusal) = refusal(response.error, response.disconnect) {
            return Err(refusal);
        }
        let Some(result) = response.result else {
            return Ok(PublishAnswer::default());
        };
        let data = if !result.data.is_empty() {
            Some(result.data)
        } else if !result.b64data.is_empty() {
            Some(pick(&result.b64data, Bytes::new(), "data", caller)?)
        } else {
            None
        };
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

    /// Asks the backend whether an expired subscription is extended. When the backend
    /// cannot be asked, the subscription lives one more minute.
    pub async fn sub_refresh(
        &self,
        caller: &Caller,
        event: &SubRefreshEvent,
        context: &CallContext,
    ) -> Result<SubRefreshAnswer, HandlerError> {
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
        let expired = || {
            let mut reply = SubRefreshReply::default();
            reply.expired = true;
            SubRefreshAnswer {
                reply,
                info: Bytes::new(),
            }
        };
        let Ok(response) = self.exchange(&request, caller, context).await else {
            return Ok(SubRefreshAnswer {
                reply: SubRefreshReply::new(unix_now() + RETRY_AFTER_SECONDS),
                info: Bytes::new(),
            });
        };
        let Some(result) = response.result else {
            tracing::error!(client = %caller.client_id, channel = %event.channel, "sub refresh proxy answered without result");
            return Ok(expired());
        };
        if result.expired {
            return Ok(expired());
        }
        Ok(SubRefreshAnswer {
            reply: SubRefreshReply::new(result.expire_at),
            info: pick(&result.b64info, result.info, "info", caller)?,
        })
    }
}
