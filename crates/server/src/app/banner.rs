//! What the server says when it starts: version, configuration source, engines and every
//! endpoint with the address it answers on, so an operator sees from the log alone what
//! this process serves.

use std::net::SocketAddr;
use std::path::Path;

use crate::config::Config;

/// One HTTP endpoint the configuration enables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Endpoint {
    pub(crate) name: &'static str,
    pub(crate) path: String,
    /// Served on the internal port when there is one.
    pub(crate) internal: bool,
}

/// The HTTP endpoints `config` enables, in the order the router adds them.
pub(crate) fn endpoints(config: &Config) -> Vec<Endpoint> {
    let mut out = Vec::new();
    let mut add = |on: bool, name: &'static str, path: &str, internal: bool| {
        if on {
            out.push(Endpoint {
                name,
                path: path.to_owned(),
                internal,
            });
        }
    };
    add(
        !config.websocket.disabled,
        "websocket",
        &config.websocket.handler_prefix,
        false,
    );
    add(
        config.uni_websocket.enabled,
        "uni_websocket",
        &config.uni_websocket.handler_prefix,
        false,
    );
    add(
        config.uni_sse.enabled,
        "uni_sse",
        &config.uni_sse.handler_prefix,
        false,
    );
    add(
        config.uni_http_stream.enabled,
        "uni_http_stream",
        &config.uni_http_stream.handler_prefix,
        false,
    );
    add(
        config.http_stream.enabled,
        "http_stream",
        &config.http_stream.handler_prefix,
        false,
    );
    add(config.sse.enabled, "sse", &config.sse.handler_prefix, false);
    add(
        config.http_stream.enabled || config.sse.enabled,
        "emulation",
        &config.emulation.handler_prefix,
        false,
    );
    add(
        !config.http_api.disabled,
        "http_api",
        &config.http_api.handler_prefix,
        !config.http_api.external,
    );
    add(
        config.admin.enabled,
        "admin",
        if config.admin.handler_prefix.is_empty() {
            "/"
        } else {
            &config.admin.handler_prefix
        },
        !config.admin.external,
    );
    add(
        config.health.enabled,
        "health",
        &config.health.handler_prefix,
        true,
    );
    add(
        config.prometheus.enabled,
        "prometheus",
        &config.prometheus.handler_prefix,
        true,
    );
    out
}

/// The first lines: who is starting, from which configuration, on which engines.
pub(crate) fn log_start(config: &Config, path: Option<&Path>, file_found: bool) {
    tracing::info!(
        version = env!("CARGO_PKG_VERSION"),
        centrifugo_compatible = crate::cli::CENTRIFUGO_COMPAT_VERSION,
        pid = std::process::id(),
        "starting Gyre"
    );
    match path {
        Some(path) if file_found => {
            let shown = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_owned());
            tracing::info!(path = %shown.display(), "using config file");
        }
        Some(path) => tracing::warn!(
            path = %path.display(),
            "no config file found: running on defaults and environment variables"
        ),
        None => tracing::warn!("no config file: running on defaults and environment variables"),
    }
    let broker = if config.broker.enabled {
        config.broker.r#type.as_str()
    } else {
        config.engine.r#type.as_str()
    };
    let presence = if config.presence_manager.enabled {
        config.presence_manager.r#type.as_str()
    } else {
        config.engine.r#type.as_str()
    };
    tracing::info!(
        engine = %config.engine.r#type,
        broker,
        presence_manager = presence,
        node_name = %node_name(config),
        "engines"
    );
}

fn node_name(config: &Config) -> String {
    if config.node.name.is_empty() {
        "(hostname:port)".to_owned()
    } else {
        config.node.name.clone()
    }
}

/// One line per endpoint served on a listener at `addr`: `internal` tells which listener
/// (with no separate internal port, everything is on the main one).
pub(crate) fn log_endpoints(config: &Config, addr: SocketAddr, tls: bool, internal: Option<bool>) {
    let scheme = if tls { "https" } else { "http" };
    for endpoint in endpoints(config) {
        if internal.is_some_and(|internal| internal != endpoint.internal) {
            continue;
        }
        tracing::info!(
            endpoint = endpoint.name,
            url = %format!("{scheme}://{addr}{}", endpoint.path),
            "endpoint enabled"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_follow_the_configuration() {
        let mut config = Config::default();
        let names = |c: &Config| endpoints(c).iter().map(|e| e.name).collect::<Vec<_>>();
        assert_eq!(names(&config), ["websocket", "http_api"]);
        config.sse.enabled = true;
        config.prometheus.enabled = true;
        config.websocket.disabled = true;
        config.http_api.external = true;
        assert_eq!(
            names(&config),
            ["sse", "emulation", "http_api", "prometheus"]
        );
        let all = endpoints(&config);
        let api = all.iter().find(|e| e.name == "http_api").unwrap();
        assert_eq!((api.path.as_str(), api.internal), ("/api", false));
        assert!(
            all.iter()
                .find(|e| e.name == "prometheus")
                .unwrap()
                .internal
        );
    }
}
