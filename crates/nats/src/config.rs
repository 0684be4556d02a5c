//! Connection settings of the NATS broker.

use std::time::Duration;

/// How to reach NATS and how to name subjects.
///
/// ```
/// use std::time::Duration;
/// use gyre_nats::NatsConfig;
/// let config = NatsConfig::new("nats://127.0.0.1:4222")
///     .prefix("centrifugo")
///     .write_timeout(Duration::from_millis(500));
/// assert_eq!(config.prefix, "centrifugo");
/// assert_eq!(config.dial_timeout, Duration::from_secs(1));
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct NatsConfig {
    /// Server address (`nats://host:port`, `tls://host:port`); default `nats://localhost:4222`.
    pub url: String,
    /// Subject prefix: publications go to `<prefix>.client.<channel>`, control messages to
    /// `<prefix>.control` and `<prefix>.node.<id>`. Default `centrifuge` (Centrifugo's
    /// server passes `centrifugo`).
    pub prefix: String,
    /// Bound on establishing a connection (each attempt, reconnects included); default 1 s.
    pub dial_timeout: Duration,
    /// Bound on every publish and subscribe: a call that NATS did not take within it fails
    /// with [`gyre::BrokerError::Unavailable`] instead of waiting for a reconnect; default 1 s.
    pub write_timeout: Duration,
    /// TLS client configuration; when set, TLS is required.
    pub tls: Option<crate::rustls::ClientConfig>,
    /// Exchange bare payloads with non-Centrifugo systems instead of encoded pushes.
    pub raw_mode: Option<RawMode>,
}

impl Default for NatsConfig {
    fn default() -> Self {
        NatsConfig {
            url: "nats://localhost:4222".into(),
            prefix: "centrifuge".into(),
            dial_timeout: Duration::from_secs(1),
            write_timeout: Duration::from_secs(1),
            tls: None,
            raw_mode: None,
        }
    }
}

impl NatsConfig {
    /// Defaults with this server address.
    pub fn new(url: impl Into<String>) -> Self {
        NatsConfig {
            url: url.into(),
            ..Default::default()
        }
    }

    /// Subject prefix.
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// Connect timeout.
    pub fn dial_timeout(mut self, timeout: Duration) -> Self {
        self.dial_timeout = timeout;
        self
    }

    /// Publish/subscribe timeout.
    pub fn write_timeout(mut self, timeout: Duration) -> Self {
        self.write_timeout = timeout;
        self
    }

    /// Connect over TLS with this client configuration.
    pub fn tls(mut self, tls: crate::rustls::ClientConfig) -> Self {
        self.tls = Some(tls);
        self
    }

    /// Enable raw mode.
    pub fn raw_mode(mut self, raw_mode: RawMode) -> Self {
        self.raw_mode = Some(raw_mode);
        self
    }
}

/// Raw mode (Centrifugo `broker.nats.raw_mode`): a publication's data is sent as the whole
/// NATS message to `<prefix><channel>` and any message on such a subject is delivered as a
/// publication's data. Join and leave events are not sent; history positions are not
/// carried.
///
/// ```
/// use gyre_nats::RawMode;
/// let raw = RawMode::new("ext.").channel_replacement(":", ".");
/// assert_eq!(raw.subject("chat:room"), "ext.chat.room");
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RawMode {
    /// Prepended to the (replaced) channel name to form the subject; may be empty.
    pub prefix: String,
    /// Substrings of channel names replaced in subjects, e.g. `(":", ".")`. At each
    /// position the first pair that matches wins.
    pub channel_replacements: Vec<(String, String)>,
}

impl RawMode {
    /// Raw mode with this subject prefix.
    pub fn new(prefix: impl Into<String>) -> Self {
        RawMode {
            prefix: prefix.into(),
            channel_replacements: Vec::new(),
        }
    }

    /// Replace `from` with `to` in channel names.
    pub fn channel_replacement(mut self, from: impl Into<String>, to: impl Into<String>) -> Self {
        self.channel_replacements.push((from.into(), to.into()));
        self
    }

    /// The subject of `channel`.
    pub fn subject(&self, channel: &str) -> String {
        let mut out = String::with_capacity(self.prefix.len() + channel.len());
        out.push_str(&self.prefix);
        let mut rest = channel;
        'scan: while let Some(c) = rest.chars().next() {
            for (from, to) in &self.channel_replacements {
                if !from.is_empty() && rest.starts_with(from.as_str()) {
                    out.push_str(to);
                    rest = &rest[from.len()..];
                    continue 'scan;
                }
            }
            out.push(c);
            rest = &rest[c.len_utf8()..];
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_subject_replaces_left_to_right_first_pair_wins() {
        let raw = RawMode::new("p.")
            .channel_replacement("ab", "X")
            .channel_replacement("a", "Y")
            .channel_replacement(":", ".");
        assert_eq!(raw.subject("aab:é:b"), "p.YX.é.b");
        assert_eq!(RawMode::new("").subject("plain"), "plain");
    }
}
