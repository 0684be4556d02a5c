//! `publish`, `presence`, `presence_stats`, `history` and `rpc` (Centrifugo `OnPublish`,
//! `OnPresence`, `OnPresenceStats`, `OnHistory`, `OnRPC`).

use gyre::{
    Error, HandlerError, HistoryEvent, MapPublishEvent, MapPublishOptions, MapPublishReply,
    PresenceEvent, PublishEvent, PublishReply, RpcEvent, RpcReply,
};

use gyre_proxy::Caller;

use super::Policy;
use super::channel::{self, Grant, Resolved, resolve};
use crate::config::Config;
use crate::proxy::Event;

fn deny(
    client: &gyre::Client,
    command: &str,
    channel: &str,
    reason: &str,
    err: Error,
) -> HandlerError {
    tracing::debug!(client = %client.id(), user = %client.user_id(), command, channel, reason, code = err.code, "command refused");
    err.into()
}

/// Namespace lookup (102) and name validation (107), the start of every channel command.
fn lookup<'a>(
    policy: &Policy,
    config: &'a Config,
    client: &gyre::Client,
    command: &str,
    channel: &'a str,
) -> Result<Resolved<'a>, HandlerError> {
    let resolved = resolve(config, channel)
        .map_err(|e| deny(client, command, channel, "unknown namespace", e))?;
    policy
        .shared
        .regexes
        .check_name(&resolved, channel)
        .map_err(|e| deny(client, command, channel, "invalid channel name", e))?;
    Ok(resolved)
}

/// A client map publication or removal (Centrifugo `OnMapPublish` / `OnMapRemove`).
pub(super) async fn map_publish(
    policy: Policy,
    client: gyre::Client,
    event: MapPublishEvent,
) -> Result<MapPublishReply, HandlerError> {
    let config = policy.app.config();
    let ch = event.channel.as_str();
    let command = if event.removed {
        "map_remove"
    } else {
        "map_publish"
    };
    let o = lookup(&policy, &config, &client, command, ch)?.options;
    if !crate::config::channels::is_map_type(&o.subscription_type) {
        return Err(deny(
            &client,
            command,
            ch,
            "not a map namespace",
            Error::BAD_REQUEST,
        ));
    }
    let format = if o.publication_data_format.is_empty() {
        &config.channel.publication_data_format
    } else {
        &o.publication_data_format
    };
    let format_ok = event.removed || channel::data_format_ok(&event.data, format);
    let bad_format = || {
        deny(
            &client,
            command,
            ch,
            "publication data format",
            Error::BAD_REQUEST,
        )
    };
    let map = crate::config::channels::map_options(o)
        .map_err(|reason| deny(&client, command, ch, &reason, Error::INTERNAL))?;
    let proxied = if event.removed {
        o.map
            .remove_proxy_enabled
            .then_some((Event::MapRemove, &o.map.remove_proxy_name))
    } else {
        o.map
            .publish_proxy_enabled
            .then_some((Event::MapPublish, &o.map.publish_proxy_name))
    };
    if let Some((proxy_event, name)) = proxied {
        // The backend decides instead of the namespace's permissions and `client_key`; it
        // may rename the key and replace the data.
        let proxies = &policy.app.proxies;
        let Some(proxy) = proxies.get(proxy_event, name) else {
            return Err(deny(
                &client,
                command,
                ch,
                "map proxy not configured",
                Error::NOT_AVAILABLE,
            ));
        };
        if !format_ok {
            return Err(bad_format());
        }
        let context = proxies.contexts.get(client.id());
        let caller = Caller::from(&client);
        let answer = if event.removed {
            proxy.map_remove(&caller, &event, &context).await
        } else {
            proxy.map_publish(&caller, &event, &context).await
        }
        .inspect_err(|_| {
            tracing::debug!(client = %client.id(), channel = ch, command, "refused by map proxy");
        })?;
        let mut reply = MapPublishReply::new(event.key.clone(), MapPublishOptions::new(map));
        answer.apply(&mut reply);
        // Centrifugo v6.9.1 changes the map and then answers 107, because its proxy
        // handler returns no key to the library; Gyre answers the change with success.
        if reply.key.is_empty() {
            return Err(deny(&client, command, ch, "empty key", Error::BAD_REQUEST));
        }
        return Ok(reply);
    }
    let user = client.user_id();
    if !Grant::map_change(o, event.removed).allows(&config, &user, event.subscribed) {
        return Err(deny(
            &client,
            command,
            ch,
            "insufficient permission",
            Error::PERMISSION_DENIED,
        ));
    }
    let key = match o.map.client_key.as_str() {
        "client_id" => client.id().to_owned(),
        "user_id" if user.is_empty() => {
            return Err(deny(
                &client,
                command,
                ch,
                "anonymous user key",
                Error::PERMISSION_DENIED,
            ));
        }
        "user_id" => user.to_string(),
        _ => event.key.clone(),
    };
    if key.is_empty() {
        return Err(deny(&client, command, ch, "empty key", Error::BAD_REQUEST));
    }
    if !format_ok {
        return Err(bad_format());
    }
    Ok(MapPublishReply::new(key, MapPublishOptions::new(map)))
}

pub(super) async fn publish(
    policy: Policy,
    client: gyre::Client,
    event: PublishEvent,
) -> Result<PublishReply, HandlerError> {
    let config = policy.app.config();
    let ch = event.channel.as_str();
    let o = lookup(&policy, &config, &client, "publish", ch)?.options;
    let format = if o.publication_data_format.is_empty() {
        &config.channel.publication_data_format
    } else {
        &o.publication_data_format
    };
    if !channel::data_format_ok(&event.data, format) {
        return Err(deny(
            &client,
            "publish",
            ch,
            "publication data format",
            Error::BAD_REQUEST,
        ));
    }
    if o.publish_proxy_enabled {
        // The backend decides instead of the namespace's permissions.
        let proxies = &policy.app.proxies;
        let Some(proxy) = proxies.get(Event::Publish, &o.publish_proxy_name) else {
            return Err(deny(
                &client,
                "publish",
                ch,
                "publish proxy not configured",
                Error::NOT_AVAILABLE,
            ));
        };
        let context = proxies.contexts.get(client.id());
        let answer = proxy
            .publish(&Caller::from(&client), &event, &context)
            .await
            .inspect_err(|_| {
                tracing::debug!(client = %client.id(), channel = ch, "publish refused by proxy");
            })?;
        let mut reply = PublishReply::new(channel::publish_options(&config, o));
        answer.apply(&mut reply);
        return Ok(reply);
    }
    if o.subscribe_stream_proxy_enabled {
        return Err(deny(
            &client,
            "publish",
            ch,
            "subscribe stream proxy is not supported",
            Error::NOT_AVAILABLE,
        ));
    }
    let user = client.user_id();
    if !Grant::publish(o).allows(&config, &user, client.is_subscribed(ch)) {
        return Err(deny(
            &client,
            "publish",
            ch,
            "insufficient permission",
            Error::PERMISSION_DENIED,
        ));
    }
    Ok(PublishReply::new(channel::publish_options(&config, o)))
}

async fn presence_check(
    policy: Policy,
    client: gyre::Client,
    event: PresenceEvent,
    command: &str,
) -> Result<(), HandlerError> {
    let config = policy.app.config();
    let ch = event.channel.as_str();
    let o = lookup(&policy, &config, &client, command, ch)?.options;
    if !o.presence {
        return Err(deny(
            &client,
            command,
            ch,
            "presence is off",
            Error::NOT_AVAILABLE,
        ));
    }
    if !Grant::presence(o).allows(&config, &client.user_id(), client.is_subscribed(ch)) {
        return Err(deny(
            &client,
            command,
            ch,
            "insufficient permission",
            Error::PERMISSION_DENIED,
        ));
    }
    Ok(())
}

pub(super) async fn presence(
    policy: Policy,
    client: gyre::Client,
    event: PresenceEvent,
) -> Result<(), HandlerError> {
    presence_check(policy, client, event, "presence").await
}

pub(super) async fn presence_stats(
    policy: Policy,
    client: gyre::Client,
    event: PresenceEvent,
) -> Result<(), HandlerError> {
    presence_check(policy, client, event, "presence_stats").await
}

pub(super) async fn history(
    policy: Policy,
    client: gyre::Client,
    event: HistoryEvent,
) -> Result<(), HandlerError> {
    let config = policy.app.config();
    let ch = event.channel.as_str();
    let o = lookup(&policy, &config, &client, "history", ch)?.options;
    if !channel::history_on(o) {
        return Err(deny(
            &client,
            "history",
            ch,
            "history is off",
            Error::NOT_AVAILABLE,
        ));
    }
    if !Grant::history(o).allows(&config, &client.user_id(), client.is_subscribed(ch)) {
        return Err(deny(
            &client,
            "history",
            ch,
            "insufficient permission",
            Error::PERMISSION_DENIED,
        ));
    }
    Ok(())
}

/// The built-in `rpc.ping` method; everything else goes to the RPC proxy of the
/// method's namespace.
pub(super) async fn rpc(
    policy: Policy,
    client: gyre::Client,
    event: RpcEvent,
) -> Result<RpcReply, HandlerError> {
    let config = policy.app.config();
    let rpc = &config.rpc;
    let method = event.method.as_str();
    let any_proxy = rpc.without_namespace.proxy_enabled
        || rpc.namespaces.iter().any(|ns| ns.options.proxy_enabled);
    if !rpc.ping.enabled && !any_proxy {
        // Centrifugo registers no RPC handler at all then.
        return Err(deny(
            &client,
            "rpc",
            method,
            "rpc is not configured",
            Error::NOT_AVAILABLE,
        ));
    }
    if rpc.ping.enabled && method == rpc.ping.method {
        return Ok(RpcReply::default());
    }
    if !any_proxy {
        return Err(deny(
            &client,
            "rpc",
            method,
            "method not found",
            Error::METHOD_NOT_FOUND,
        ));
    }
    match config.rpc_options(method) {
        Err(_) => Err(deny(
            &client,
            "rpc",
            method,
            "unknown rpc namespace",
            Error::METHOD_NOT_FOUND,
        )),
        Ok((_, o)) if !o.proxy_enabled => Err(deny(
            &client,
            "rpc",
            method,
            "rpc proxy not enabled for method",
            Error::NOT_AVAILABLE,
        )),
        Ok((_, o)) => {
            let proxies = &policy.app.proxies;
            let Some(proxy) = proxies.get(Event::Rpc, &o.proxy_name) else {
                return Err(deny(
                    &client,
                    "rpc",
                    method,
                    "rpc proxy not configured",
                    Error::NOT_AVAILABLE,
                ));
            };
            let context = proxies.contexts.get(client.id());
            proxy.rpc(&Caller::from(&client), &event, &context).await
        }
    }
}
