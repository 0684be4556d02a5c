//! The running server: one [`App`] shared by the client policy, the server API and the
//! HTTP endpoints.

mod api_lane;
mod banner;
mod connlimit;
mod engine;
mod http;
mod origin;
mod serve;
pub(crate) mod tls;

use std::sync::Arc;

use parking_lot::RwLock;

pub(crate) use origin::OriginCheck;
pub(crate) use serve::serve;

use crate::config::Config;
use crate::jwt::{TokenVerifier, VerifierConfig};

/// Everything request handlers need: the node, the current configuration (replaced on
/// SIGHUP) and the token verifiers.
#[derive(Clone)]
pub(crate) struct App(Arc<AppInner>);

pub(crate) struct AppInner {
    pub(crate) node: gyre::Node,
    config: RwLock<Arc<Config>>,
    pub(crate) connect_tokens: TokenVerifier,
    pub(crate) subscribe_tokens: TokenVerifier,
    /// Built once at start: a reload does not change proxy endpoints.
    pub(crate) proxies: crate::proxy::Proxies,
    /// Server API calls, for `/metrics`.
    pub(crate) api_metrics: crate::metrics::ApiMetrics,
    /// HTTP requests, for `/metrics` with `prometheus.instrument_http_handlers`.
    pub(crate) http_metrics: crate::metrics::HttpMetrics,
    /// Messages of the asynchronous consumers, for `/metrics`.
    pub(crate) consumer_metrics: crate::consumers::ConsumerMetrics,
    /// `client.connection_rate_limit`, shared by every connection endpoint; built once
    /// at start like upstream's limiter.
    pub(crate) connection_rate: Option<connlimit::ConnectionRate>,
    /// The Redis broker, when the broker is Redis, for its PUB/SUB families.
    pub(crate) redis_broker: Option<Arc<gyre_redis::RedisBroker>>,
}

impl std::ops::Deref for App {
    type Target = AppInner;

    fn deref(&self) -> &AppInner {
        &self.0
    }
}

impl App {
    /// Connects the engines and builds the node and the verifiers for `config`. The
    /// node is not running yet.
    pub(crate) async fn new(config: Config) -> anyhow::Result<App> {
        let proxies = crate::proxy::Proxies::from_config(&config)?;
        let engines = engine::build(&config).await?;
        let redis_broker = engines.redis_broker.clone();
        let mut builder = gyre::Node::builder().config(node_config(&config));
        if let Some(broker) = engines.broker {
            builder = builder.broker_arc(broker);
        }
        if let Some(presence) = engines.presence {
            builder = builder.presence_manager_arc(presence);
        }
        if let Some(controller) = engines.controller {
            builder = builder.controller_arc(controller);
        }
        if let Some(map_broker) = engines.map_broker {
            builder = builder.map_broker_arc(map_broker);
        }
        let node = builder.build();
        let connect_tokens = TokenVerifier::new(VerifierConfig::for_connections(&config.client))?;
        let subscribe_tokens =
            TokenVerifier::new(VerifierConfig::for_subscriptions(&config.client))?;
        let connection_rate = connlimit::ConnectionRate::new(config.client.connection_rate_limit);
        Ok(App(Arc::new(AppInner {
            node,
            config: RwLock::new(Arc::new(config)),
            connect_tokens,
            subscribe_tokens,
            proxies,
            api_metrics: Default::default(),
            http_metrics: Default::default(),
            consumer_metrics: Default::default(),
            connection_rate,
            redis_broker,
        })))
    }

    /// The configuration in force.
    pub(crate) fn config(&self) -> Arc<Config> {
        self.0.config.read().clone()
    }

    /// Applies a reloaded configuration: channel and namespace options and token keys
    /// (what Centrifugo reloads on SIGHUP). Node-level settings need a restart.
    pub(crate) fn reload(&self, config: Config) -> anyhow::Result<()> {
        self.connect_tokens
            .reload(VerifierConfig::for_connections(&config.client))?;
        self.subscribe_tokens
            .reload(VerifierConfig::for_subscriptions(&config.client))?;
        *self.0.config.write() = Arc::new(config);
        Ok(())
    }
}

fn positive(v: i64) -> usize {
    v.max(0) as usize
}

/// The library's node settings from Centrifugo's `client.*` keys.
pub(crate) fn node_config(config: &Config) -> gyre::Config {
    let c = &config.client;
    let mut n = gyre::Config::default();
    n.name = if config.node.name.is_empty() {
        hostname()
    } else {
        config.node.name.clone()
    };
    n.version = format!("{} gyre", env!("CARGO_PKG_VERSION"));
    // A negative interval disables pings, as in Centrifugo.
    n.ping_interval = c.ping_pong.ping_interval.to_std().unwrap_or_default();
    n.pong_timeout = c.ping_pong.pong_timeout.to_std().unwrap_or_default();
    if let Some(d) = c.stale_close_delay.to_std() {
        n.client_stale_close_delay = d;
    }
    if let Some(d) = c.expired_close_delay.to_std() {
        n.client_expired_close_delay = d;
    }
    if let Some(d) = c.expired_sub_close_delay.to_std() {
        n.client_expired_sub_close_delay = d;
    }
    n.client_queue_max_size = positive(c.queue_max_size);
    n.client_channel_limit = positive(c.channel_limit);
    n.user_connection_limit = positive(c.user_connection_limit);
    n.channel_max_length = positive(config.channel.max_length);
    n.history_max_publication_limit = positive(c.history_max_publication_limit);
    n.recovery_max_publication_limit = positive(c.recovery_max_publication_limit);
    n.recovered_publications_histogram = config.prometheus.recovered_publications_histogram;
    if let Some(d) = c.presence_update_interval.to_std() {
        n.presence_update_interval = d;
    }
    if let Some(d) = c.channel_position_check_delay.to_std() {
        n.channel_position_check_delay = d;
    }
    n.connect_include_server_time = c.connect_include_server_time;
    let uni = &c.connect_code_to_unidirectional_disconnect;
    if uni.enabled {
        n.unidirectional_code_to_disconnect = uni
            .transforms
            .iter()
            .map(|t| {
                let d = gyre::Disconnect {
                    code: t.to.code,
                    reason: t.to.reason.clone().into(),
                };
                (t.code, d)
            })
            .collect();
    }
    n
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "gyre".to_owned())
}
