//! Features Centrifugo has and Gyre does not implement yet.
//!
//! One row per feature: a name for the warning and a test on the loaded configuration. The
//! server still starts and ignores the feature. Delete a row when the feature lands.

use super::sections::{ChannelOptions, Config};

type Check = fn(&Config) -> bool;

fn any_channel_options(c: &Config, f: fn(&ChannelOptions) -> bool) -> bool {
    f(&c.channel.without_namespace) || c.channel.namespaces.iter().any(|ns| f(&ns.options))
}

const UNSUPPORTED: &[(&str, Check)] = &[
    ("broker.type postgres", |c| {
        c.broker.enabled && c.broker.r#type == "postgres"
    }),
    ("map_broker", |c| c.map_broker.r#type != "memory"),
    ("controller", |c| c.controller.enabled),
    ("consumers", |c| !c.consumers.is_empty()),
    ("proxies (named proxies)", |c| !c.proxies.is_empty()),
    ("client.proxy.connect", |c| c.client.proxy.connect.enabled),
    ("client.proxy.refresh", |c| c.client.proxy.refresh.enabled),
    (
        "channel subscribe/publish/sub_refresh/subscribe_stream proxies",
        |c| {
            any_channel_options(c, |o| {
                o.subscribe_proxy_enabled
                    || o.publish_proxy_enabled
                    || o.sub_refresh_proxy_enabled
                    || o.subscribe_stream_proxy_enabled
            })
        },
    ),
    ("rpc proxy", |c| {
        c.rpc.without_namespace.proxy_enabled
            || c.rpc.namespaces.iter().any(|ns| ns.options.proxy_enabled)
    }),
    (
        "map and shared_poll subscription types (channel subscription_type)",
        |c| {
            any_channel_options(c, |o| {
                !o.subscription_type.is_empty() && o.subscription_type != "stream"
            })
        },
    ),
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

/// Names of configured features that Gyre ignores, one per feature.
pub(crate) fn unsupported_features(config: &Config) -> Vec<&'static str> {
    UNSUPPORTED
        .iter()
        .filter(|(_, check)| check(config))
        .map(|(name, _)| *name)
        .collect()
}
