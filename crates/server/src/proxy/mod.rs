//! The event proxies of the configuration, built once at start: `client.proxy.connect`,
//! `client.proxy.refresh`, `channel.proxy.{subscribe,publish,sub_refresh}`,
//! `channel.proxy.{map_publish,map_remove,shared_poll_refresh}`, `rpc.proxy`
//! (each the proxy named `default` for its event) and the named `proxies` that
//! namespaces pick with `*_proxy_name`. The calls themselves are the `gyre-proxy` crate's.

use std::collections::HashMap;

use anyhow::{Context, bail};
use gyre_proxy::{Contexts, Proxy, ProxyConfig, StatusTransform, TlsOptions};

use crate::config::{self, Config};

/// The name a namespace uses for the event's own proxy section.
const DEFAULT: &str = "default";

/// Every proxy the configuration declares, ready to call.
#[derive(Debug, Default)]
pub(crate) struct Proxies {
    pub(crate) connect: Option<Proxy>,
    pub(crate) refresh: Option<Proxy>,
    subscribe: Option<Proxy>,
    publish: Option<Proxy>,
    sub_refresh: Option<Proxy>,
    rpc: Option<Proxy>,
    map_publish: Option<Proxy>,
    map_remove: Option<Proxy>,
    shared_poll_refresh: Option<Proxy>,
    named: HashMap<String, Proxy>,
    /// Request headers some proxy forwards (lowercase): the only ones a connection keeps.
    pub(crate) forwarded_headers: Vec<String>,
    /// Emulated headers some proxy forwards (lowercase).
    pub(crate) emulated_headers: Vec<String>,
    /// Whether some proxy sends the connection's meta.
    pub(crate) uses_meta: bool,
    /// Headers, emulated headers and meta of the connections that have any.
    pub(crate) contexts: Contexts,
}

/// The event a namespace proxies, for error messages and the default proxy.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Event {
    Subscribe,
    Publish,
    SubRefresh,
    Rpc,
    MapPublish,
    MapRemove,
    SharedPollRefresh,
}

impl Proxies {
    /// Builds the proxies the configuration uses; fails when an enabled proxy has no
    /// usable endpoint.
    pub(crate) fn from_config(c: &Config) -> anyhow::Result<Proxies> {
        let mut p = Proxies::default();
        let client = &c.client.proxy;
        if client.connect.enabled {
            p.connect = Some(build("client.proxy.connect", &client.connect.proxy)?);
        }
        if client.refresh.enabled {
            p.refresh = Some(build("client.proxy.refresh", &client.refresh.proxy)?);
        }
        let channel = &c.channel.proxy;
        p.subscribe = optional("channel.proxy.subscribe", &channel.subscribe)?;
        p.publish = optional("channel.proxy.publish", &channel.publish)?;
        p.sub_refresh = optional("channel.proxy.sub_refresh", &channel.sub_refresh)?;
        p.rpc = optional("rpc.proxy", &c.rpc.proxy)?;
        p.map_publish = optional("channel.proxy.map_publish", &channel.map_publish)?;
        p.map_remove = optional("channel.proxy.map_remove", &channel.map_remove)?;
        p.shared_poll_refresh = optional(
            "channel.proxy.shared_poll_refresh",
            &channel.shared_poll_refresh,
        )?;
        for (i, named) in c.proxies.iter().enumerate() {
            let proxy = build(&format!("proxies.[{i}] ({})", named.name), &named.proxy)?;
            p.named.insert(named.name.clone(), proxy);
        }

        // Every namespace that enables a proxy must find it.
        let namespaces = std::iter::once((
            "channel.without_namespace".to_owned(),
            &c.channel.without_namespace,
        ))
        .chain(
            c.channel
                .namespaces
                .iter()
                .map(|ns| (format!("channel.namespaces ({})", ns.name), &ns.options)),
        );
        for (key, o) in namespaces {
            let wanted = [
                (
                    o.subscribe_proxy_enabled,
                    &o.subscribe_proxy_name,
                    Event::Subscribe,
                ),
                (
                    o.publish_proxy_enabled,
                    &o.publish_proxy_name,
                    Event::Publish,
                ),
                (
                    o.sub_refresh_proxy_enabled,
                    &o.sub_refresh_proxy_name,
                    Event::SubRefresh,
                ),
                (
                    o.map.publish_proxy_enabled,
                    &o.map.publish_proxy_name,
                    Event::MapPublish,
                ),
                (
                    o.map.remove_proxy_enabled,
                    &o.map.remove_proxy_name,
                    Event::MapRemove,
                ),
            ];
            let wanted = wanted.into_iter().chain(std::iter::once((
                o.subscription_type == "shared_poll",
                &o.shared_poll.proxy_name,
                Event::SharedPollRefresh,
            )));
            for (enabled, name, event) in wanted {
                if enabled && p.get(event, name).is_none() {
                    bail!(
                        "{key}: {} proxy {:?} is enabled but not configured (set its endpoint)",
                        event.name(),
                        name_or_default(name)
                    );
                }
            }
        }
        let rpc = std::iter::once(("rpc.without_namespace".to_owned(), &c.rpc.without_namespace))
            .chain(
                c.rpc
                    .namespaces
                    .iter()
                    .map(|ns| (format!("rpc.namespaces ({})", ns.name), &ns.options)),
            );
        for (key, o) in rpc {
            if o.proxy_enabled && p.get(Event::Rpc, &o.proxy_name).is_none() {
                bail!(
                    "{key}: rpc proxy {:?} is enabled but not configured (set its endpoint)",
                    name_or_default(&o.proxy_name)
                );
            }
        }

        let all = [
            &p.connect,
            &p.refresh,
            &p.subscribe,
            &p.publish,
            &p.sub_refresh,
            &p.rpc,
            &p.map_publish,
            &p.map_remove,
            &p.shared_poll_refresh,
        ]
        .into_iter()
        .flatten()
        .chain(p.named.values());
        let (mut headers, mut emulated, mut meta) = (Vec::new(), Vec::new(), false);
        for proxy in all {
            headers.extend(proxy.config().http_headers.iter().cloned());
            emulated.extend(proxy.config().emulated_headers.iter().cloned());
            meta |= proxy.config().include_connection_meta;
        }
        headers.sort();
        headers.dedup();
        emulated.sort();
        emulated.dedup();
        p.forwarded_headers = headers;
        p.emulated_headers = emulated;
        p.uses_meta = meta;
        Ok(p)
    }

    /// Every proxy with its metrics name: `default` for the event sections, else the
    /// name of the `proxies` entry.
    pub(crate) fn all(&self) -> Vec<(&str, &Proxy)> {
        let sections = [
            &self.connect,
            &self.refresh,
            &self.subscribe,
            &self.publish,
            &self.sub_refresh,
            &self.rpc,
            &self.map_publish,
            &self.map_remove,
            &self.shared_poll_refresh,
        ];
        let mut all: Vec<(&str, &Proxy)> = sections
            .into_iter()
            .flatten()
            .map(|p| (DEFAULT, p))
            .collect();
        let mut named: Vec<_> = self.named.iter().map(|(n, p)| (n.as_str(), p)).collect();
        named.sort_by_key(|(n, _)| *n);
        all.extend(named);
        all
    }

    /// The proxy a namespace names for an event: its own section for `default`, else a
    /// named proxy.
    pub(crate) fn get(&self, event: Event, name: &str) -> Option<&Proxy> {
        if name.is_empty() || name == DEFAULT {
            return match event {
                Event::Subscribe => self.subscribe.as_ref(),
                Event::Publish => self.publish.as_ref(),
                Event::SubRefresh => self.sub_refresh.as_ref(),
                Event::Rpc => self.rpc.as_ref(),
                Event::MapPublish => self.map_publish.as_ref(),
                Event::MapRemove => self.map_remove.as_ref(),
                Event::SharedPollRefresh => self.shared_poll_refresh.as_ref(),
            };
        }
        self.named.get(name)
    }
}

impl Event {
    fn name(self) -> &'static str {
        match self {
            Event::Subscribe => "subscribe",
            Event::Publish => "publish",
            Event::SubRefresh => "sub_refresh",
            Event::Rpc => "rpc",
            Event::MapPublish => "map_publish",
            Event::MapRemove => "map_remove",
            Event::SharedPollRefresh => "shared_poll_refresh",
        }
    }
}

fn name_or_default(name: &str) -> &str {
    if name.is_empty() { DEFAULT } else { name }
}

fn optional(key: &str, p: &config::Proxy) -> anyhow::Result<Option<Proxy>> {
    if p.endpoint.is_empty() {
        return Ok(None);
    }
    build(key, p).map(Some)
}

fn tls(t: &config::TlsConfig) -> Option<TlsOptions> {
    if !t.enabled {
        return None;
    }
    let mut o = TlsOptions::new();
    o.cert_pem = t.cert_pem.clone();
    o.key_pem = t.key_pem.clone();
    o.server_ca_pem = t.server_ca_pem.clone();
    o.insecure_skip_verify = t.insecure_skip_verify;
    o.server_name = t.server_name.clone();
    Some(o)
}

/// The library's proxy options from Centrifugo's `Proxy` object.
fn build(key: &str, p: &config::Proxy) -> anyhow::Result<Proxy> {
    if p.endpoint.is_empty() {
        bail!("{key}: endpoint is required");
    }
    let common = &p.proxy_common;
    let grpc = p.endpoint.starts_with("grpc://");
    let mut c = ProxyConfig::new(p.endpoint.clone())
        .timeout(p.timeout.to_std().unwrap_or_default())
        .http_headers(common.http_headers.iter())
        .emulated_headers(common.emulated_headers.iter())
        .binary_encoding(common.binary_encoding)
        .include_connection_meta(common.include_connection_meta);
    c.grpc_metadata = common
        .grpc_metadata
        .iter()
        .map(|k| k.to_ascii_lowercase())
        .collect();
    for (k, v) in &common.http.static_headers {
        c = c.static_header(k, v);
    }
    for (k, v) in &common.grpc.static_metadata {
        c = c.static_metadata(k, v);
    }
    for t in &common.http.status_to_code_transforms {
        let Ok(status) = u16::try_from(t.status_code) else {
            bail!("{key}: bad status_code {}", t.status_code);
        };
        let to: gyre::HandlerError = if t.to_disconnect.code > 0 {
            gyre::Disconnect::new(t.to_disconnect.code, t.to_disconnect.reason.clone()).into()
        } else if t.to_error.code > 0 {
            let mut e = gyre::Error::new(t.to_error.code, t.to_error.message.clone());
            if t.to_error.temporary {
                e = e.temporary();
            }
            e.into()
        } else {
            bail!(
                "{key}: status_to_code_transforms for {status} sets neither to_error nor to_disconnect"
            );
        };
        c = c.status_transform(StatusTransform { status, to });
    }
    if grpc {
        if let Some(t) = tls(&common.grpc.tls) {
            c = c.tls(t);
        }
        if !common.grpc.credentials_key.is_empty() {
            c.grpc_credentials = Some((
                common.grpc.credentials_key.clone(),
                common.grpc.credentials_value.clone(),
            ));
        }
        c.grpc_compression = common.grpc.compression;
    } else if let Some(t) = tls(&common.http.tls) {
        c = c.tls(t);
    }
    Proxy::new(c).with_context(|| key.to_owned())
}
