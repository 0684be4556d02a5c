//! Features Centrifugo has and Gyre does not implement yet.
//!
//! One row per feature: its configuration key and a test on the loaded configuration.
//! Delete a row when the feature lands. The rows fall in two tables:
//!
//! - [`ACCESS`]: features that decide who may connect, subscribe, publish, refresh or call
//!   RPC. Without them Gyre would answer those requests differently from Centrifugo (an
//!   outage, or access the backend would not give), so the server refuses to run with one
//!   unless `gyre.allow_unsupported` is set; each row says what happens instead.
//! - [`UNSUPPORTED`]: the rest (transports, engines, observability, tooling), whose absence
//!   changes no access decision. The server warns and ignores them.

use super::sections::{ChannelOptions, Config};

type Check = fn(&Config) -> bool;

fn any_channel_options(c: &Config, f: fn(&ChannelOptions) -> bool) -> bool {
    f(&c.channel.without_namespace) || c.channel.namespaces.iter().any(|ns| f(&ns.options))
}

/// A configured feature that Gyre does not implement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Unsupported {
    /// The feature's configuration key.
    pub(crate) key: &'static str,
    /// For a feature that decides access: what Gyre does instead.
    pub(crate) instead: Option<&'static str>,
}

impl Unsupported {
    /// The line to log at start: a warning, or for an access feature an error.
    pub(crate) fn message(&self) -> String {
        match self.instead {
            None => format!(
                "{} is configured but not supported by Gyre yet; ignoring it",
                self.key
            ),
            Some(instead) => format!(
                "{} is configured but not supported by Gyre yet, and it decides who may \
                 connect, subscribe, publish or call RPC: {instead}",
                self.key
            ),
        }
    }
}

const ACCESS: &[(&str, &str, Check)] = &[
    (
        "client.proxy.connect",
        "clients without a connection token are not sent to the backend; they connect \
         anonymously where client.allow_anonymous_connect_without_token allows it, else are \
         disconnected with 3501 (bad request)",
        |c| c.client.proxy.connect.enabled,
    ),
    (
        "client.proxy.refresh",
        "the backend is never asked to extend a connection; connections without a new \
         token expire",
        |c| c.client.proxy.refresh.enabled,
    ),
    (
        "channel.proxy.subscribe (subscribe_proxy_enabled)",
        "subscribe requests without a subscription token are refused with error 108 \
         (not available)",
        |c| any_channel_options(c, |o| o.subscribe_proxy_enabled),
    ),
    (
        "channel.proxy.publish (publish_proxy_enabled)",
        "client publications are refused with error 108 (not available)",
        |c| any_channel_options(c, |o| o.publish_proxy_enabled),
    ),
    (
        "channel.proxy.sub_refresh (sub_refresh_proxy_enabled)",
        "the backend is never asked to extend a subscription; subscriptions without a new \
         token expire",
        |c| any_channel_options(c, |o| o.sub_refresh_proxy_enabled),
    ),
    (
        "channel.proxy.subscribe_stream (subscribe_stream_proxy_enabled)",
        "subscribe requests without a subscription token and client publications are \
         refused with error 108 (not available)",
        |c| any_channel_options(c, |o| o.subscribe_stream_proxy_enabled),
    ),
    (
        "rpc.proxy (proxy_enabled)",
        "client RPC calls are refused with error 108 (not available)",
        |c| {
            c.rpc.without_namespace.proxy_enabled
                || c.rpc.namespaces.iter().any(|ns| ns.options.proxy_enabled)
        },
    ),
    (
        "channel subscription_type map or shared_poll",
        "subscriptions in these namespaces are refused with error 103 (permission denied)",
        |c| {
            any_channel_options(c, |o| {
                !o.subscription_type.is_empty() && o.subscription_type != "stream"
            })
        },
    ),
];

const UNSUPPORTED: &[(&str, Check)] = &[
    ("broker.type postgres", |c| {
        c.broker.enabled && c.broker.r#type == "postgres"
    }),
    ("map_broker", |c| c.map_broker.r#type != "memory"),
    ("controller", |c| c.controller.enabled),
    ("consumers", |c| !c.consumers.is_empty()),
    ("proxies (named proxies)", |c| !c.proxies.is_empty()),
    ("grpc_api", |c| c.grpc_api.enabled),
    ("uni_grpc", |c| c.uni_grpc.enabled),
    ("uni_websocket", |c| c.uni_websocket.enabled),
    ("uni_sse", |c| c.uni_sse.enabled),
    ("uni_http_stream", |c| c.uni_http_stream.enabled),
    ("sse", |c| c.sse.enabled),
    ("http_stream", |c| c.http_stream.enabled),
    ("webtransport", |c| c.webtransport.enabled),
    ("http_server.http3", |c| c.http_server.http3.enabled),
    ("http_server.tls_autocert", |c| {
        c.http_server.tls_autocert.enabled
    }),
    ("graphite", |c| c.graphite.enabled),
    ("opentelemetry", |c| c.opentelemetry.enabled),
    ("swagger", |c| c.swagger.enabled),
    ("debug (pprof endpoints)", |c| c.debug.enabled),
];

/// Every configured feature that Gyre does not implement, access features first.
pub(crate) fn unsupported(config: &Config) -> Vec<Unsupported> {
    let access = ACCESS
        .iter()
        .filter(|(_, _, check)| check(config))
        .map(|(key, instead, _)| Unsupported {
            key,
            instead: Some(instead),
        });
    let ignored = UNSUPPORTED
        .iter()
        .filter(|(_, check)| check(config))
        .map(|(key, _)| Unsupported { key, instead: None });
    access.chain(ignored).collect()
}

/// Keys of configured features that Gyre does not implement, one per feature.
pub(crate) fn unsupported_features(config: &Config) -> Vec<&'static str> {
    unsupported(config).iter().map(|u| u.key).collect()
}
