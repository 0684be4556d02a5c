//! `connect` (Centrifugo `OnClientConnecting`) and client-side `refresh` (`OnRefresh`).

use std::collections::{HashMap, HashSet};

use gyre::{
    ClientFilter, ConnectEvent, ConnectReply, Credentials, Disconnect, Error, HandlerError,
    RefreshEvent, RefreshReply, SubscribeOptions,
};

use gyre_proxy::{CallContext, Caller};

use super::Policy;
use super::channel::{self, resolve};
use crate::config::Config;
use crate::jwt::{ConnectToken, VerifyError};

/// Logs why a connection is refused and returns the refusal.
fn refuse(client: &str, reason: &str, err: impl Into<HandlerError>) -> HandlerError {
    let err = err.into();
    match &err {
        HandlerError::Error(e) => {
            tracing::info!(client, reason, code = e.code, "connect refused with error");
        }
        HandlerError::Disconnect(d) => {
            tracing::info!(
                client,
                reason,
                code = d.code,
                "connect refused with disconnect"
            );
        }
    }
    err
}

/// Server-side subscriptions of a connection token: `subs` (with per-channel info, data
/// and overrides) or else `channels`, with their namespace options. An unknown namespace
/// refuses the token with error 102, as Centrifugo's verifier does.
fn token_subscriptions(
    config: &Config,
    token: &ConnectToken,
) -> Result<HashMap<String, SubscribeOptions>, Error> {
    let mut subs = HashMap::new();
    for (ch, claim) in &token.subs {
        let resolved = resolve(config, ch)?;
        let mut o = channel::namespace_options(resolved.options);
        channel::apply_overrides(&mut o, &claim.overrides);
        o.channel_info = claim.info.clone();
        o.data = claim.data.clone();
        subs.insert(ch.clone(), o);
    }
    for ch in &token.channels {
        let resolved = resolve(config, ch)?;
        subs.insert(ch.clone(), channel::namespace_options(resolved.options));
    }
    Ok(subs)
}

/// Who connects, decided in Centrifugo's order: connection token, else (Gyre:
/// trusted user header), else anonymous when allowed, else 3501.
pub(super) async fn connecting(
    policy: Policy,
    event: ConnectEvent,
) -> Result<ConnectReply, HandlerError> {
    let config = policy.app.config();
    let proxies = &policy.app.proxies;
    let client_id = event.client_id.as_str();
    // What later proxy calls of this connection forward (nothing, for most setups).
    let mut context = CallContext::from_connect(
        &event,
        &proxies.forwarded_headers,
        &proxies.emulated_headers,
    );
    let mut subs: HashMap<String, SubscribeOptions> = HashMap::new();
    let mut token_channels = HashSet::new();
    // Server-side subscriptions (personal channel, `connect.subs` keys) are only
    // considered for credentials decided here, as in Centrifugo, where credentials set
    // by the user-header middleware bypass the connecting handler's logic.
    let mut process_channels = false;
    let mut reply_data = bytes::Bytes::new();

    let credentials = if !event.token.is_empty() {
        let token = match policy
            .app
            .connect_tokens
            .verify_connect_token(&event.token)
            .await
        {
            Ok(token) => token,
            Err(VerifyError::Expired) => {
                return Err(refuse(client_id, "token expired", Error::TOKEN_EXPIRED));
            }
            Err(VerifyError::Invalid(reason)) => {
                return Err(refuse(client_id, &reason, Disconnect::INVALID_TOKEN));
            }
        };
        subs = token_subscriptions(&config, &token)
            .map_err(|e| refuse(client_id, "token channel in unknown namespace", e))?;
        if token.user_id.is_empty() && config.client.disallow_anonymous_connection_tokens {
            return Err(refuse(
                client_id,
                "anonymous connection tokens disallowed",
                Disconnect::PERMISSION_DENIED,
            ));
        }
        token_channels = subs.keys().cloned().collect();
        process_channels = true;
        if proxies.uses_meta {
            context.meta = token
                .meta
                .as_ref()
                .map(|m| bytes::Bytes::copy_from_slice(m.get().as_bytes()))
                .unwrap_or_default();
        }
        let expire_at = if config.client.insecure {
            0
        } else {
            token.expire_at
        };
        Credentials::new(token.user_id)
            .expire_at(expire_at)
            .info(token.info)
    } else if let Some(user) = header_user(&config, &event) {
        Credentials::new(user)
    } else if let Some(proxy) = &proxies.connect {
        let answer = proxy
            .connect(&event, &context)
            .await
            .map_err(|e| refuse(client_id, "connect proxy", e))?;
        for (ch, grant) in answer.subs {
            let resolved = resolve(&config, &ch)
                .map_err(|e| refuse(client_id, "proxy channel in unknown namespace", e))?;
            let mut o = channel::namespace_options(resolved.options);
            grant.apply(&mut o);
            subs.insert(ch, o);
        }
        for ch in answer.channels {
            let resolved = resolve(&config, &ch)
                .map_err(|e| refuse(client_id, "proxy channel in unknown namespace", e))?;
            subs.insert(ch.clone(), channel::namespace_options(resolved.options));
        }
        process_channels = true;
        reply_data = answer.data;
        if proxies.uses_meta {
            context.meta = answer.meta;
        }
        answer.credentials
    } else if config.client.allow_anonymous_connect_without_token || config.client.insecure {
        process_channels = true;
        Credentials::new("")
    } else {
        return Err(refuse(
            client_id,
            "client credentials not found",
            Disconnect::BAD_REQUEST,
        ));
    };
    let user = credentials.user.clone();

    let personal = &config.client.subscribe_to_user_personal_channel;
    if process_channels && personal.enabled && !user.is_empty() {
        let ch = channel::personal_channel(&config, &user);
        if personal.single_connection {
            let stats = policy.app.node.presence_stats(&ch).await.map_err(|e| {
                tracing::warn!(channel = %ch, error = %e, "presence stats for single connection");
                refuse(
                    client_id,
                    "presence error",
                    Disconnect::INTERNAL_SERVER_ERROR,
                )
            })?;
            if stats.num_clients >= 1 {
                let mut others = ClientFilter::default();
                others.whitelist = vec![client_id.to_owned()];
                policy
                    .app
                    .node
                    .disconnect_clients(&user, &others, Disconnect::CONNECTION_LIMIT)
                    .await;
            }
        }
        let resolved = resolve(&config, &ch)
            .map_err(|e| refuse(client_id, "personal channel in unknown namespace", e))?;
        subs.insert(ch.clone(), channel::namespace_options(resolved.options));
        token_channels.remove(&ch);
    }

    if process_channels {
        // Channels the SDK asks to resume: subscribed only when the client could subscribe
        // to them itself (without a token or a proxy).
        for ch in &event.channels {
            let Ok(resolved) = resolve(&config, ch) else {
                return Err(refuse(
                    client_id,
                    "connect.subs channel in unknown namespace",
                    Disconnect::BAD_REQUEST,
                ));
            };
            let valid = policy
                .shared
                .regexes
                .valid_name(&resolved, ch)
                .map_err(|e| refuse(client_id, "channel name check", e))?;
            let o = resolved.options;
            let user_limited =
                channel::is_user_limited(&config, ch) && o.allow_user_limited_channels;
            let allowed = !channel::is_private(&config, ch)
                && !o.subscribe_proxy_enabled
                && valid
                && ((user_limited
                    && !user.is_empty()
                    && channel::user_allowed(&config, ch, &user))
                    || (o.allow_subscribe_for_client
                        && (!user.is_empty() || o.allow_subscribe_for_anonymous)
                        && !user_limited)
                    || config.client.insecure);
            if allowed {
                subs.entry(ch.clone())
                    .or_insert_with(|| channel::namespace_options(o));
            } else {
                tracing::debug!(client = client_id, channel = %ch, "ignoring subscription to a channel");
            }
        }
    }

    tracing::debug!(
        client = client_id,
        user = %user,
        expire_at = credentials.expire_at,
        subscriptions = subs.len(),
        "connect accepted"
    );
    policy.remember_token_channels(client_id, token_channels);
    proxies.contexts.insert(client_id, context);
    // With a refresh proxy the server extends expiring connections itself.
    let client_side_refresh = proxies.refresh.is_none();
    let mut reply = ConnectReply::new(credentials).client_side_refresh(client_side_refresh);
    reply.subscriptions = subs;
    reply.data = reply_data;
    Ok(reply)
}

/// The user id from `client.user_id_http_header` of the HTTP request (trusted: set by a
/// reverse proxy that authenticated the user).
fn header_user(config: &Config, event: &ConnectEvent) -> Option<String> {
    let name = &config.client.user_id_http_header;
    if name.is_empty() {
        return None;
    }
    event
        .request_headers
        .get(name.as_str())
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
}

/// Client-side refresh with a new connection token.
pub(super) async fn refresh(
    policy: Policy,
    client: gyre::Client,
    event: RefreshEvent,
) -> Result<RefreshReply, HandlerError> {
    if event.token.is_empty() {
        let proxies = &policy.app.proxies;
        if !event.client_side
            && let Some(proxy) = &proxies.refresh
        {
            let context = proxies.contexts.get(client.id());
            let answer = proxy.refresh(&Caller::from(&client), &context).await;
            if let Some(meta) = answer.meta {
                proxies.contexts.set_meta(client.id(), meta);
            }
            return Ok(answer.reply);
        }
        // Without a refresh proxy nothing extends the credentials: they expire.
        return Ok(RefreshReply::expired());
    }
    let token = match policy
        .app
        .connect_tokens
        .verify_connect_token(&event.token)
        .await
    {
        Ok(token) => token,
        Err(VerifyError::Expired) => {
            tracing::debug!(client = %client.id(), "refresh token expired");
            return Ok(RefreshReply::expired());
        }
        Err(VerifyError::Invalid(reason)) => {
            tracing::debug!(client = %client.id(), reason, "invalid refresh token");
            return Err(Disconnect::INVALID_TOKEN.into());
        }
    };
    let config = policy.app.config();
    let subs = token_subscriptions(&config, &token)?;
    if token.user_id != client.user_id() {
        tracing::debug!(client = %client.id(), token_user = %token.user_id, "refresh token user mismatch");
        return Err(Disconnect::INVALID_TOKEN.into());
    }
    if token_channels_changed(&policy, &client, &subs) {
        tracing::debug!(client = %client.id(), "refresh token changed server-side channels");
        return Err(Disconnect::INSUFFICIENT_STATE.into());
    }
    let proxies = &policy.app.proxies;
    if proxies.uses_meta
        && let Some(meta) = &token.meta
    {
        // A refresh token's meta replaces the connection's, as in Centrifugo.
        proxies.contexts.set_meta(
            client.id(),
            bytes::Bytes::copy_from_slice(meta.get().as_bytes()),
        );
    }
    let mut reply = RefreshReply::new(token.expire_at);
    if !token.info.is_empty() {
        reply.info = Some(token.info);
    }
    Ok(reply)
}

/// A channel of the new token is not subscribed, or a channel subscribed from the old
/// token is not in the new one.
fn token_channels_changed(
    policy: &Policy,
    client: &gyre::Client,
    subs: &HashMap<String, SubscribeOptions>,
) -> bool {
    if subs.keys().any(|ch| !client.is_subscribed(ch)) {
        return true;
    }
    policy.token_channels_any(client.id(), |ch| {
        client.is_subscribed(ch) && !subs.contains_key(ch)
    })
}
