//! `subscribe` (Centrifugo `OnSubscribe`) and `sub_refresh` (`OnSubRefresh`).

use gyre::{
    Disconnect, Error, HandlerError, SubRefreshEvent, SubRefreshReply, SubscribeEvent,
    SubscribeReply,
};

use gyre_proxy::Caller;

use super::Policy;
use super::channel::{self, Grant, resolve};
use crate::jwt::{SubscribeToken, VerifyError};
use crate::proxy::Event;

fn deny(
    client: &gyre::Client,
    channel: &str,
    reason: &str,
    err: impl Into<HandlerError>,
) -> HandlerError {
    tracing::info!(client = %client.id(), user = %client.user_id(), channel, reason, "subscribe refused");
    err.into()
}

/// The claims of a subscription token must name this channel, user and (if set) client.
fn check_token_target(
    client: &gyre::Client,
    channel: &str,
    token: &SubscribeToken,
) -> Result<(), HandlerError> {
    let reason = if token.channel != channel {
        "token channel mismatch"
    } else if token.user_id != client.user_id() {
        "token user mismatch"
    } else if !token.client.is_empty() && token.client != client.id() {
        "token client mismatch"
    } else {
        return Ok(());
    };
    Err(deny(client, channel, reason, Disconnect::INVALID_TOKEN))
}

/// The map presence channel `<prefix><channel>` with its options (none without a prefix).
fn map_presence(
    config: &crate::config::Config,
    prefix: &str,
    channel: &str,
) -> Result<Option<gyre::MapPresence>, String> {
    if prefix.is_empty() {
        return Ok(None);
    }
    let presence = format!("{prefix}{channel}");
    let (_, ns) = config
        .channel_options(&presence)
        .map_err(|_| format!("map presence channel {presence} has no namespace"))?;
    let options = crate::config::channels::map_options(ns)?;
    Ok(Some(gyre::MapPresence::new(presence, options)))
}

/// Decides a client-side subscription, in the order of PROTOCOL.md §7.1.
pub(super) async fn subscribe(
    policy: Policy,
    client: gyre::Client,
    event: SubscribeEvent,
) -> Result<SubscribeReply, HandlerError> {
    let config = policy.app.config();
    let ch = event.channel.as_str();
    let user = client.user_id();
    if ch.is_empty() {
        return Err(deny(&client, ch, "empty channel", Error::UNKNOWN_CHANNEL));
    }
    let resolved = resolve(&config, ch).map_err(|e| deny(&client, ch, "unknown namespace", e))?;
    policy.shared.regexes.check_name(&resolved, ch)?;
    let o = resolved.options;
    // The namespace's type must be the requested one (an empty type is `stream`).
    let ns_type = if o.subscription_type.is_empty() {
        "stream"
    } else {
        o.subscription_type.as_str()
    };
    if ns_type != event.subscription_type.as_str() {
        return Err(deny(
            &client,
            ch,
            "subscription type not allowed",
            Error::PERMISSION_DENIED,
        ));
    }

    let user_limited = o.allow_user_limited_channels && channel::is_user_limited(&config, ch);
    if channel::is_private(&config, ch) && event.token.is_empty() {
        return Err(deny(
            &client,
            ch,
            "private channel without token",
            Error::PERMISSION_DENIED,
        ));
    }

    let mut options = channel::namespace_options(o);
    if !event.token.is_empty() {
        let token = match policy
            .app
            .subscribe_tokens
            .verify_subscribe_token(&event.token)
            .await
        {
            Ok(token) => token,
            Err(VerifyError::Expired) => {
                return Err(deny(&client, ch, "token expired", Error::TOKEN_EXPIRED));
            }
            Err(VerifyError::Invalid(reason)) => {
                return Err(deny(&client, ch, &reason, Error::PERMISSION_DENIED));
            }
        };
        let token_ns = resolve(&config, &token.channel)
            .map_err(|e| deny(&client, ch, "token channel in unknown namespace", e))?;
        check_token_target(&client, ch, &token)?;
        options = channel::namespace_options(token_ns.options);
        channel::apply_overrides(&mut options, &token.overrides);
        options.expire_at = token.expire_at;
        options.channel_info = token.info;
        options.data = token.data;
    } else if user_limited && channel::user_allowed(&config, ch, &user) {
        // Listed after the user boundary.
    } else if o.subscribe_proxy_enabled && !user_limited {
        let proxies = &policy.app.proxies;
        let Some(proxy) = proxies.get(Event::Subscribe, &o.subscribe_proxy_name) else {
            return Err(deny(
                &client,
                ch,
                "subscribe proxy not configured",
                Error::NOT_AVAILABLE,
            ));
        };
        let context = proxies.contexts.get(client.id());
        let grant = proxy
            .subscribe(&Caller::from(&client), &event, &context)
            .await
            .map_err(|e| deny(&client, ch, "subscribe proxy", e))?;
        grant.apply(&mut options);
    } else if o.subscribe_stream_proxy_enabled && !user_limited {
        return Err(deny(
            &client,
            ch,
            "subscribe stream proxy is not supported",
            Error::NOT_AVAILABLE,
        ));
    } else if o.allow_subscribe_for_client
        && (!user.is_empty() || o.allow_subscribe_for_anonymous)
        && !user_limited
    {
        // Allowed for clients.
    } else if config.client.insecure {
        // Everything is allowed.
    } else {
        return Err(deny(
            &client,
            ch,
            "insufficient permission",
            Error::PERMISSION_DENIED,
        ));
    }

    // What the client asked for, granted with permission. History and presence access
    // are checked as if already subscribed: every other check passed.
    if event.positioned && (o.allow_positioning || Grant::history(o).allows(&config, &user, true)) {
        options.enable_positioning = true;
    }
    if event.recoverable && (o.allow_recovery || Grant::history(o).allows(&config, &user, true)) {
        options.enable_recovery = true;
    }
    if event.join_leave && o.join_leave && Grant::presence(o).allows(&config, &user, true) {
        options.push_join_leave = true;
    }
    options.client_side_refresh = !o.sub_refresh_proxy_enabled;
    if crate::config::channels::is_map_type(ns_type) {
        // Validated at load, so this only fails for a configuration changed since.
        let map = crate::config::channels::map_options(o)
            .map_err(|reason| deny(&client, ch, &reason, Error::INTERNAL))?;
        options.map = Some(map);
        options.map_remove_client_on_unsubscribe = o.map.remove_client_on_unsubscribe;
    }
    options.map_clients_presence =
        map_presence(&config, &o.map_clients_presence_channel_prefix, ch)
            .map_err(|reason| deny(&client, ch, &reason, Error::INTERNAL))?;
    options.map_users_presence = map_presence(&config, &o.map_users_presence_channel_prefix, ch)
        .map_err(|reason| deny(&client, ch, &reason, Error::INTERNAL))?;
    tracing::debug!(client = %client.id(), user = %user, channel = ch, "subscribe allowed");
    Ok(SubscribeReply::new(options))
}

/// Client-side subscription refresh with a new subscription token.
pub(super) async fn sub_refresh(
    policy: Policy,
    client: gyre::Client,
    event: SubRefreshEvent,
) -> Result<SubRefreshReply, HandlerError> {
    let ch = event.channel.as_str();
    if event.token.is_empty() {
        let config = policy.app.config();
        let o = resolve(&config, ch)?.options;
        let proxies = &policy.app.proxies;
        if o.sub_refresh_proxy_enabled
            && let Some(proxy) = proxies.get(Event::SubRefresh, &o.sub_refresh_proxy_name)
        {
            let context = proxies.contexts.get(client.id());
            return proxy
                .sub_refresh(&Caller::from(&client), &event, &context)
                .await;
        }
        // Nothing extends the subscription without a new token: it expires.
        let mut reply = SubRefreshReply::default();
        reply.expired = true;
        return Ok(reply);
    }
    let token = match policy
        .app
        .subscribe_tokens
        .verify_subscribe_token(&event.token)
        .await
    {
        Ok(token) => token,
        Err(VerifyError::Expired) => {
            tracing::debug!(client = %client.id(), channel = ch, "sub refresh token expired");
            let mut reply = SubRefreshReply::default();
            reply.expired = true;
            return Ok(reply);
        }
        Err(VerifyError::Invalid(reason)) => {
            tracing::debug!(client = %client.id(), channel = ch, reason, "invalid sub refresh token");
            return Err(Disconnect::INVALID_TOKEN.into());
        }
    };
    let config = policy.app.config();
    resolve(&config, &token.channel)?;
    check_token_target(&client, ch, &token)?;
    Ok(SubRefreshReply::new(token.expire_at))
}
