//! Features Centrifugo has and Gyre does not implement yet.
//!
//! [`UNSUPPORTED`] has one row per feature: its configuration key and a test on the loaded
//! configuration. Delete a row when the feature lands (and its [`ACCESS`] row, if any).
//!
//! [`ACCESS`] picks out the features that decide who may connect, subscribe, publish,
//! refresh or call RPC, and says what Gyre does instead. Without them Gyre would answer
//! those requests differently from Centrifugo (an outage, or access the backend would not
//! give), so the server refuses to run with one unless `gyre.allow_unsupported` is set. The
//! rest (transports, engines, observability, tooling) change no access decision: the server
//! warns and ignores them.

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

const UNSUPPORTED: &[(&str, Check)] = &[
    (
        "channel.proxy.subscribe_stream (subscribe_stream_proxy_enabled)",
        |c| any_channel_options(c, |o| o.subscribe_stream_proxy_enabled),
    ),
    ("webtransport", |c| c.webtransport.enabled),
    ("http_server.http3", |c| c.http_server.http3.enabled),
    ("http_server.tls_autocert", |c| {
        c.http_server.tls_autocert.enabled
    }),
    ("graphite", |c| c.graphite.enabled),
    ("opentelemetry", |c| c.opentelemetry.enabled),
    ("prometheus.native_histograms", |c| {
        c.prometheus.native_histograms
    }),
    (
        "admin.web_proxy_address (the embedded admin UI is served instead)",
        |c| c.admin.enabled && !c.admin.web_proxy_address.is_empty(),
    ),
    ("swagger", |c| c.swagger.enabled),
    ("debug (pprof endpoints)", |c| c.debug.enabled),
];

/// The rows of [`UNSUPPORTED`] that decide access, by key, with what Gyre does instead.
const ACCESS: &[(&str, &str)] = &[(
    "channel.proxy.subscribe_stream (subscribe_stream_proxy_enabled)",
    "subscribe requests without a subscription token and client publications are \
         refused with error 108 (not available)",
)];

/// Every configured feature that Gyre does not implement, in [`UNSUPPORTED`] order.
pub(crate) fn unsupported(config: &Config) -> Vec<Unsupported> {
    UNSUPPORTED
        .iter()
        .filter(|(_, check)| check(config))
        .map(|(key, _)| Unsupported {
            key,
            instead: ACCESS
                .iter()
                .find(|(access, _)| access == key)
                .map(|(_, instead)| *instead),
        })
        .collect()
}

/// Keys of configured features that Gyre does not implement, one per feature.
pub(crate) fn unsupported_features(config: &Config) -> Vec<&'static str> {
    unsupported(config).iter().map(|u| u.key).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emulated_transports_are_served_on_any_engine() {
        let mut c = Config::default();
        c.http_stream.enabled = true;
        c.sse.enabled = true;
        c.engine.r#type = "redis".into();
        assert!(unsupported(&c).is_empty(), "sse and http_stream are served");
    }

    #[test]
    fn admin_is_served_but_not_its_web_proxy() {
        let mut c = Config::default();
        c.admin.enabled = true;
        c.admin.insecure = true;
        c.admin.web_path = "/srv/admin".into();
        assert!(unsupported(&c).is_empty());
        c.admin.web_proxy_address = "http://127.0.0.1:3000".into();
        assert_eq!(unsupported(&c).len(), 1);
        assert!(
            unsupported(&c)[0]
                .key
                .starts_with("admin.web_proxy_address")
        );
        assert!(
            unsupported(&c)[0].instead.is_none(),
            "a warning, not a refusal"
        );
    }

    #[test]
    fn map_features_that_work_are_not_reported() {
        let mut c = Config::default();
        let o = &mut c.channel.without_namespace;
        o.subscription_type = "map".into();
        o.presence = true;
        o.join_leave = true;
        o.map.remove_client_on_unsubscribe = true;
        o.map.publish_proxy_enabled = true;
        o.map.remove_proxy_enabled = true;
        assert!(unsupported(&c).is_empty(), "{:?}", unsupported(&c));
    }

    #[test]
    fn every_map_broker_and_the_postgres_engines_are_served() {
        let mut c = Config::default();
        for map_broker in ["redis", "postgres"] {
            c.map_broker.r#type = map_broker.into();
            assert!(unsupported(&c).is_empty(), "map_broker.type {map_broker}");
        }
        c.broker.enabled = true;
        c.broker.r#type = "postgres".into();
        c.controller.enabled = true;
        c.controller.r#type = "postgres".into();
        assert!(unsupported(&c).is_empty());
    }

    #[test]
    fn every_access_feature_is_a_row() {
        for (key, _) in ACCESS {
            assert!(UNSUPPORTED.iter().any(|(row, _)| row == key), "{key}");
        }
    }
}
