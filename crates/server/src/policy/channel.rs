//! Channel rules shared by every command: namespace resolution, name validation, the
//! private / user-limited markers, permissions and the options a namespace gives a
//! subscription (Centrifugo `internal/config/container.go` and `internal/client/handler.go`).

use std::collections::HashMap;
use std::sync::Arc;

use gyre::{Error, SubscribeOptions};
use parking_lot::Mutex;
use regex::Regex;

use crate::config::{ChannelOptions, Config};
use crate::jwt::Overrides;

/// A channel resolved against the configuration.
#[derive(Debug, Clone, Copy)]
pub(super) struct Resolved<'a> {
    /// Part after `ns:` (the whole channel without a namespace), what `channel_regex`
    /// is matched against.
    pub(super) rest: &'a str,
    pub(super) options: &'a ChannelOptions,
}

/// Namespace lookup: unknown namespace → error 102.
pub(super) fn resolve<'a>(config: &'a Config, channel: &'a str) -> Result<Resolved<'a>, Error> {
    let (_, options) = config
        .channel_options(channel)
        .map_err(|_| Error::UNKNOWN_CHANNEL)?;
    Ok(Resolved {
        rest: rest_of(config, channel),
        options,
    })
}

/// Centrifugo's `namespaceName` second result: the text after the first namespace
/// boundary (private prefix stripped), or the whole channel when there is no boundary.
fn rest_of<'a>(config: &Config, channel: &'a str) -> &'a str {
    let c = &config.channel;
    let trimmed = if c.private_prefix.is_empty() {
        channel
    } else {
        channel
            .strip_prefix(c.private_prefix.as_str())
            .unwrap_or(channel)
    };
    if c.namespace_boundary.is_empty() {
        return channel;
    }
    trimmed
        .split_once(c.namespace_boundary.as_str())
        .map_or(channel, |(_, rest)| rest)
}

/// Compiled `channel_regex` patterns, by pattern text (the config may be reloaded with
/// other patterns at any time, so they are not compiled once at start).
#[derive(Debug, Default)]
pub(super) struct Regexes(Mutex<HashMap<String, Arc<Regex>>>);

impl Regexes {
    fn get(&self, pattern: &str) -> Result<Arc<Regex>, regex::Error> {
        if let Some(re) = self.0.lock().get(pattern) {
            return Ok(re.clone());
        }
        let re = Arc::new(Regex::new(pattern)?);
        self.0.lock().insert(pattern.to_owned(), re.clone());
        Ok(re)
    }

    /// `channel_regex` on the part after the namespace, else ASCII only. A pattern that
    /// does not compile (config validation prevents it) is an internal error.
    pub(super) fn valid_name(&self, resolved: &Resolved<'_>, channel: &str) -> Result<bool, Error> {
        let pattern = &resolved.options.channel_regex;
        if pattern.is_empty() {
            return Ok(channel.is_ascii());
        }
        match self.get(pattern) {
            Ok(re) => Ok(re.is_match(resolved.rest)),
            Err(e) => {
                tracing::warn!(channel, error = %e, "invalid channel_regex");
                Err(Error::INTERNAL)
            }
        }
    }

    /// [`Regexes::valid_name`] as a command check: invalid name → error 107.
    pub(super) fn check_name(&self, resolved: &Resolved<'_>, channel: &str) -> Result<(), Error> {
        if self.valid_name(resolved, channel)? {
            Ok(())
        } else {
            tracing::debug!(channel, "invalid channel name");
            Err(Error::BAD_REQUEST)
        }
    }
}

/// Starts with `channel.private_prefix` (`$`): needs a subscription token.
pub(super) fn is_private(config: &Config, channel: &str) -> bool {
    let prefix = &config.channel.private_prefix;
    !prefix.is_empty() && channel.starts_with(prefix.as_str())
}

/// Contains `channel.user_boundary` (`#`).
pub(super) fn is_user_limited(config: &Config, channel: &str) -> bool {
    let boundary = &config.channel.user_boundary;
    !boundary.is_empty() && channel.contains(boundary.as_str())
}

/// The user is listed after the last user boundary (`dialog#42,43`).
pub(super) fn user_allowed(config: &Config, channel: &str, user: &str) -> bool {
    let boundary = &config.channel.user_boundary;
    if boundary.is_empty() || !channel.contains(boundary.as_str()) {
        return true;
    }
    let last = channel.rsplit(boundary.as_str()).next().unwrap_or_default();
    let separator = &config.channel.user_separator;
    if separator.is_empty() {
        return last == user;
    }
    last.split(separator.as_str()).any(|u| u == user)
}

/// `#<user>` or `<ns>:#<user>`.
pub(super) fn personal_channel(config: &Config, user: &str) -> String {
    let personal = &config.client.subscribe_to_user_personal_channel;
    let boundary = &config.channel.user_boundary;
    if personal.personal_channel_namespace.is_empty() {
        format!("{boundary}{user}")
    } else {
        format!(
            "{}{}{boundary}{user}",
            personal.personal_channel_namespace, config.channel.namespace_boundary
        )
    }
}

/// History is on only with both a size and a TTL.
pub(super) fn history_on(options: &ChannelOptions) -> bool {
    options.history_size > 0 && options.history_ttl.as_nanos() > 0
}

fn history_ttl(options: &ChannelOptions) -> std::time::Duration {
    options.history_ttl.to_std().unwrap_or_default()
}

fn history_size(options: &ChannelOptions) -> usize {
    options.history_size.max(0) as usize
}

/// Options every subscription to a channel of this namespace gets before client requests
/// and token overrides: the `force_*` settings, presence and join/leave.
pub(super) fn namespace_options(options: &ChannelOptions) -> SubscribeOptions {
    let mut o = SubscribeOptions::new().history(history_size(options), history_ttl(options));
    o.emit_presence = options.presence;
    o.emit_join_leave = options.join_leave;
    o.push_join_leave = options.force_push_join_leave;
    o.enable_recovery = options.force_recovery;
    o.enable_positioning = options.force_positioning;
    o.allow_tags_filter = options.allow_tags_filter;
    // Validation refused other names at load.
    o.recovery_mode = gyre::RecoveryMode::parse(&options.force_recovery_mode).unwrap_or_default();
    o.auto_cache_recover = options.auto_cache_recover;
    // Validation refused unknown names at load.
    o.allowed_delta_types = options
        .allowed_delta_types
        .iter()
        .filter_map(|t| gyre::DeltaType::parse(t))
        .collect();
    o
}

/// Token `override` values replace the namespace settings they name.
pub(super) fn apply_overrides(o: &mut SubscribeOptions, overrides: &Overrides) {
    if let Some(v) = overrides.presence {
        o.emit_presence = v;
    }
    if let Some(v) = overrides.join_leave {
        o.emit_join_leave = v;
    }
    if let Some(v) = overrides.force_push_join_leave {
        o.push_join_leave = v;
    }
    if let Some(v) = overrides.force_recovery {
        o.enable_recovery = v;
    }
    if let Some(v) = overrides.force_positioning {
        o.enable_positioning = v;
    }
}

/// Broker options of a publication into a channel of this namespace.
pub(super) fn publish_options(config: &Config, options: &ChannelOptions) -> gyre::PublishOptions {
    let mut o = gyre::PublishOptions::new().use_delta(options.delta_publish);
    if history_on(options) {
        let meta = if options.history_meta_ttl.is_zero() {
            config.channel.history_meta_ttl
        } else {
            options.history_meta_ttl
        };
        o = o.history(history_size(options), history_ttl(options));
        if let Some(meta) = meta.to_std().filter(|d| !d.is_zero()) {
            o = o.history_meta_ttl(meta);
        }
    }
    o
}

/// The client may act as a "client", a "subscriber" or through `client.insecure`;
/// anonymous users additionally need the `_for_anonymous` flag.
#[derive(Debug, Clone, Copy)]
pub(super) struct Grant {
    pub(super) for_client: bool,
    pub(super) for_subscriber: bool,
    pub(super) for_anonymous: bool,
}

impl Grant {
    pub(super) fn presence(o: &ChannelOptions) -> Self {
        Grant {
            for_client: o.allow_presence_for_client,
            for_subscriber: o.allow_presence_for_subscriber,
            for_anonymous: o.allow_presence_for_anonymous,
        }
    }

    pub(super) fn history(o: &ChannelOptions) -> Self {
        Grant {
            for_client: o.allow_history_for_client,
            for_subscriber: o.allow_history_for_subscriber,
            for_anonymous: o.allow_history_for_anonymous,
        }
    }

    pub(super) fn publish(o: &ChannelOptions) -> Self {
        Grant {
            for_client: o.allow_publish_for_client,
            for_subscriber: o.allow_publish_for_subscriber,
            for_anonymous: o.allow_publish_for_anonymous,
        }
    }

    /// Client map publications (`map.allow_publish_*`) or removals (`map.allow_remove_*`).
    pub(super) fn map_change(o: &ChannelOptions, removal: bool) -> Self {
        let m = &o.map;
        if removal {
            Grant {
                for_client: m.allow_remove_for_client,
                for_subscriber: m.allow_remove_for_subscriber,
                for_anonymous: m.allow_remove_for_anonymous,
            }
        } else {
            Grant {
                for_client: m.allow_publish_for_client,
                for_subscriber: m.allow_publish_for_subscriber,
                for_anonymous: m.allow_publish_for_anonymous,
            }
        }
    }

    /// Whether `user` (subscribed to the channel or not) is allowed.
    pub(super) fn allows(self, config: &Config, user: &str, subscribed: bool) -> bool {
        let identified = !user.is_empty() || self.for_anonymous;
        (self.for_client && identified)
            || (self.for_subscriber && subscribed && identified)
            || config.client.insecure
    }
}

/// `publication_data_format`: `""` rejects empty data, `json` needs valid JSON,
/// `json_object` a JSON object, `binary` allows anything.
pub(super) fn data_format_ok(data: &[u8], format: &str) -> bool {
    match format {
        "json" => is_json(data),
        "json_object" => {
            let trimmed = data.trim_ascii();
            is_json(data) && trimmed.first() == Some(&b'{') && trimmed.last() == Some(&b'}')
        }
        "binary" => true,
        _ => !data.is_empty(),
    }
}

fn is_json(data: &[u8]) -> bool {
    serde_json::from_slice::<serde::de::IgnoredAny>(data).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ChannelNamespace;

    fn config() -> Config {
        let mut c = Config::default();
        let mut ns = ChannelNamespace {
            name: "chat".to_owned(),
            ..Default::default()
        };
        ns.options.channel_regex = "^[a-z]+$".to_owned();
        c.channel.namespaces.push(ns);
        c
    }

    #[test]
    fn rest_and_names() {
        let c = config();
        let r = Regexes::default();
        let res = resolve(&c, "chat:abc").unwrap();
        assert_eq!(res.rest, "abc");
        assert!(r.valid_name(&res, "chat:abc").unwrap());
        let res = resolve(&c, "$chat:ab1").unwrap();
        assert_eq!(res.rest, "ab1");
        assert_eq!(r.check_name(&res, "$chat:ab1"), Err(Error::BAD_REQUEST));
        let res = resolve(&c, "news").unwrap();
        assert_eq!(res.rest, "news");
        assert!(r.valid_name(&res, "news").unwrap());
        assert!(!r.valid_name(&res, "nëws").unwrap());
        assert_eq!(resolve(&c, ":x").unwrap().rest, "x");
        assert_eq!(resolve(&c, "nope:x").unwrap_err(), Error::UNKNOWN_CHANNEL);
    }

    #[test]
    fn private_and_user_limited() {
        let c = config();
        assert!(is_private(&c, "$secret"));
        assert!(!is_private(&c, "sec$ret"));
        assert!(is_user_limited(&c, "dialog#42,43"));
        assert!(user_allowed(&c, "dialog#42,43", "43"));
        assert!(!user_allowed(&c, "dialog#42,43", "4"));
        assert!(user_allowed(&c, "a#1#2", "2"));
        assert!(!user_allowed(&c, "a#1#2", "1"));
        assert!(user_allowed(&c, "plain", "x"));
        let mut c2 = c.clone();
        c2.channel.user_separator = String::new();
        assert!(user_allowed(&c2, "d#1,2", "1,2"));
        assert!(!user_allowed(&c2, "d#1,2", "1"));
    }

    #[test]
    fn personal_channels() {
        let mut c = config();
        assert_eq!(personal_channel(&c, "42"), "#42");
        c.client
            .subscribe_to_user_personal_channel
            .personal_channel_namespace = "user".to_owned();
        assert_eq!(personal_channel(&c, "42"), "user:#42");
    }

    #[test]
    fn data_formats() {
        assert!(!data_format_ok(b"", ""));
        assert!(data_format_ok(b"x", ""));
        assert!(data_format_ok(b"", "binary"));
        assert!(data_format_ok(b"[1]", "json"));
        assert!(!data_format_ok(b"{", "json"));
        assert!(!data_format_ok(b"", "json"));
        assert!(data_format_ok(b" {\"a\":1} ", "json_object"));
        assert!(!data_format_ok(b"[1]", "json_object"));
        assert!(!data_format_ok(b"{} x", "json_object"));
    }

    #[test]
    fn grants() {
        let mut c = config();
        let g = Grant {
            for_client: false,
            for_subscriber: true,
            for_anonymous: false,
        };
        assert!(g.allows(&c, "u", true));
        assert!(!g.allows(&c, "u", false));
        assert!(!g.allows(&c, "", true));
        c.client.insecure = true;
        assert!(g.allows(&c, "", false));
    }

    #[test]
    fn options_from_namespace_and_overrides() {
        let mut o = ChannelOptions {
            presence: true,
            force_recovery: true,
            history_size: 10,
            history_ttl: crate::config::Duration::from_secs(60),
            ..Default::default()
        };
        let mut s = namespace_options(&o);
        assert!(s.emit_presence && s.enable_recovery && !s.emit_join_leave);
        assert_eq!(s.history_size, 10);
        apply_overrides(
            &mut s,
            &Overrides {
                presence: Some(false),
                join_leave: Some(true),
                ..Default::default()
            },
        );
        assert!(!s.emit_presence && s.emit_join_leave && s.enable_recovery);
        let c = Config::default();
        assert!(publish_options(&c, &o).keeps_history());
        o.history_ttl = crate::config::Duration::ZERO;
        assert!(!publish_options(&c, &o).keeps_history());
    }
}
