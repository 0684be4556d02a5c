//! Channel and RPC namespace resolution.

use super::error::UnknownNamespace;
use super::sections::{ChannelOptions, Config, RpcOptions};

#[allow(
    dead_code,
    reason = "API for the server modules (client, HTTP API) that use the configuration"
)]
impl Config {
    /// Options of the channel namespace `name`, if configured.
    pub(crate) fn namespace(&self, name: &str) -> Option<&ChannelOptions> {
        self.channel
            .namespaces
            .iter()
            .find(|ns| ns.name == name)
            .map(|ns| &ns.options)
    }

    /// Namespace name and options for a channel: the namespace is the text before the first
    /// `channel.namespace_boundary` after stripping `channel.private_prefix`; a channel without
    /// the boundary uses `channel.without_namespace` (returned with an empty name).
    pub(crate) fn channel_options<'a>(
        &'a self,
        channel: &'a str,
    ) -> Result<(&'a str, &'a ChannelOptions), UnknownNamespace> {
        let name = namespace_of(
            channel,
            &self.channel.private_prefix,
            &self.channel.namespace_boundary,
        );
        if name.is_empty() {
            return Ok(("", &self.channel.without_namespace));
        }
        self.namespace(name)
            .map(|o| (name, o))
            .ok_or_else(|| UnknownNamespace {
                namespace: name.to_owned(),
            })
    }

    /// Namespace name and options for an RPC method (`ns:method`, boundary
    /// `rpc.namespace_boundary`); a method without the boundary uses `rpc.without_namespace`.
    pub(crate) fn rpc_options<'a>(
        &'a self,
        method: &'a str,
    ) -> Result<(&'a str, &'a RpcOptions), UnknownNamespace> {
        let name = namespace_of(method, "", &self.rpc.namespace_boundary);
        if name.is_empty() {
            return Ok(("", &self.rpc.without_namespace));
        }
        self.rpc
            .namespaces
            .iter()
            .find(|ns| ns.name == name)
            .map(|ns| (name, &ns.options))
            .ok_or_else(|| UnknownNamespace {
                namespace: name.to_owned(),
            })
    }
}

#[allow(
    dead_code,
    reason = "API for the server modules (client, HTTP API) that use the configuration"
)]
fn namespace_of<'a>(channel: &'a str, private_prefix: &str, boundary: &str) -> &'a str {
    let rest = if private_prefix.is_empty() {
        channel
    } else {
        channel.strip_prefix(private_prefix).unwrap_or(channel)
    };
    if boundary.is_empty() {
        return "";
    }
    rest.split_once(boundary).map_or("", |(ns, _)| ns)
}

/// Whether a namespace's `subscription_type` is one of the map types.
pub(crate) fn is_map_type(subscription_type: &str) -> bool {
    matches!(subscription_type, "map" | "map_clients" | "map_users")
}

/// The library's map options of a map namespace, resolved with upstream's defaults and
/// rules (`map.mode` required; key TTL and stream rules by mode; page sizes ordered).
pub(crate) fn map_options(o: &ChannelOptions) -> Result<gyre::MapChannelOptions, String> {
    let m = &o.map;
    let mode = gyre::MapMode::parse(&m.mode).ok_or_else(|| {
        format!(
            "map.mode must be one of ephemeral, recoverable, persistent (got {:?})",
            m.mode
        )
    })?;
    if mode == gyre::MapMode::Persistent && o.subscription_type != "map" {
        return Err("map.mode persistent is not allowed for map_clients/map_users".into());
    }
    let size = |key: &str, v: i64| {
        usize::try_from(v).map_err(|_| format!("map.{key} must not be negative"))
    };
    let std = |d: super::duration::Duration| d.to_std().unwrap_or_default();
    let mut r = gyre::MapChannelOptions::new(mode, std(m.key_ttl));
    r.stream_size = size("stream_size", m.stream_size)?;
    r.stream_ttl = std(m.stream_ttl);
    r.meta_ttl = std(m.meta_ttl);
    r.default_page_size = size("default_page_size", m.default_page_size)?;
    r.min_page_size = size("min_page_size", m.min_page_size)?;
    r.max_page_size = size("max_page_size", m.max_page_size)?;
    r.live_transition_max_publication_limit = size(
        "live_transition_max_publication_limit",
        m.live_transition_max_publication_limit,
    )?;
    // Zero is the default (5s), negative turns the timeout off.
    let catch_up = m.subscribe_catch_up_timeout.as_nanos();
    if catch_up < 0 {
        r.subscribe_catch_up_timeout = None;
    } else if catch_up > 0 {
        r.subscribe_catch_up_timeout = Some(std(m.subscribe_catch_up_timeout));
    }
    r.resolve()
}

#[cfg(test)]
mod tests {
    use super::super::sections::ChannelNamespace;
    use super::*;

    fn config() -> Config {
        let mut c = Config::default();
        let mut chat = ChannelNamespace {
            name: "chat".to_owned(),
            ..Default::default()
        };
        chat.options.presence = true;
        c.channel.namespaces.push(chat);
        c.channel.without_namespace.history_size = 10;
        c
    }

    #[test]
    fn resolves_namespaces() {
        let c = config();
        let (ns, o) = c.channel_options("chat:index").unwrap();
        assert_eq!(ns, "chat");
        assert!(o.presence);
        let (ns, o) = c.channel_options("$chat:secret").unwrap();
        assert_eq!(ns, "chat");
        assert!(o.presence);
        let (ns, o) = c.channel_options("news").unwrap();
        assert_eq!(ns, "");
        assert_eq!(o.history_size, 10);
        let (ns, _) = c.channel_options("dialog#42,43").unwrap();
        assert_eq!(ns, "");
        assert_eq!(c.channel_options("nope:x").unwrap_err().namespace, "nope");
        assert_eq!(c.channel_options(":x").unwrap().0, "");
        assert!(c.namespace("chat").is_some());
        assert!(c.namespace("nope").is_none());
    }

    #[test]
    fn custom_boundary_and_rpc() {
        let mut c = config();
        c.channel.namespace_boundary = "/".to_owned();
        assert_eq!(c.channel_options("chat/x").unwrap().0, "chat");
        assert_eq!(c.channel_options("chat:x").unwrap().0, "");
        assert_eq!(c.rpc_options("getUser").unwrap().0, "");
        assert_eq!(c.rpc_options("users:get").unwrap_err().namespace, "users");
    }
}
