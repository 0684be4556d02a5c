//! Node configuration with the Go library's defaults.

use std::collections::HashMap;
use std::time::Duration;

use gyre_protocol::Disconnect;

/// Node configuration. Defaults follow the Go `centrifuge` library.
///
/// ```
/// use std::time::Duration;
/// use gyre::Config;
/// let mut config = Config::default();
/// config.ping_interval = Duration::from_secs(10);
/// assert_eq!(config.client_channel_limit, 128);
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Config {
    /// Node name shown in info.
    pub name: String,
    /// Version sent to clients in the connect result.
    pub version: String,
    /// Interval of server pings; zero disables pings.
    pub ping_interval: Duration,
    /// How long after a ping a pong must arrive; zero disables the check.
    pub pong_timeout: Duration,
    /// Close connections that sent no `connect` within this delay (3502).
    pub client_stale_close_delay: Duration,
    /// Grace after credential expiry before closing with 3005.
    pub client_expired_close_delay: Duration,
    /// Grace after subscription expiry.
    pub client_expired_sub_close_delay: Duration,
    /// Byte limit of a connection's outbound queue (overflow ⇒ 3008).
    pub client_queue_max_size: usize,
    /// Subscriptions per connection (0 = unlimited).
    pub client_channel_limit: usize,
    /// Connections per user (0 = unlimited).
    pub user_connection_limit: usize,
    /// Channel name length limit.
    pub channel_max_length: usize,
    /// Cap on `history` limits asked by clients.
    pub history_max_publication_limit: usize,
    /// Cap on publications recovered on subscribe.
    pub recovery_max_publication_limit: usize,
    /// How often presence entries are refreshed.
    pub presence_update_interval: Duration,
    /// How often positioned subscriptions compare their position with the stream top.
    pub channel_position_check_delay: Duration,
    /// Put the server's Unix time in milliseconds into connect results.
    pub connect_include_server_time: bool,
    /// How often a node announces itself to the others over its controller (upstream's
    /// fixed 3 s); a node not heard from for three intervals is forgotten. A newly seen
    /// node is answered at once, so this only bounds how fast counts and departures show.
    pub node_info_interval: Duration,
    /// How a unidirectional connection closes when its connect is refused with an
    /// error code, checked before the defaults (109 and 110 → 3005, 111 → 3013,
    /// 103 → 3507; any other error → 3004).
    pub unidirectional_code_to_disconnect: HashMap<u32, Disconnect>,
    /// Observe how many publications each successful recovery returned, in the
    /// `client_recovered_publications` histogram (off by default, as upstream's
    /// `prometheus.recovered_publications_histogram`).
    pub recovered_publications_histogram: bool,
}

impl Config {
    /// The disconnect a unidirectional connection gets for a connect refused with
    /// error `code`.
    ///
    /// ```
    /// use gyre::{Config, Disconnect};
    /// let mut config = Config::default();
    /// assert_eq!(config.unidirectional_disconnect(103), Disconnect::PERMISSION_DENIED);
    /// config.unidirectional_code_to_disconnect.insert(103, Disconnect::SHUTDOWN);
    /// assert_eq!(config.unidirectional_disconnect(103), Disconnect::SHUTDOWN);
    /// assert_eq!(config.unidirectional_disconnect(1000), Disconnect::INTERNAL_SERVER_ERROR);
    /// ```
    pub fn unidirectional_disconnect(&self, code: u32) -> Disconnect {
        if let Some(d) = self.unidirectional_code_to_disconnect.get(&code) {
            return d.clone();
        }
        match code {
            109 | 110 => Disconnect::EXPIRED,
            111 => Disconnect::TOO_MANY_REQUESTS,
            103 => Disconnect::PERMISSION_DENIED,
            _ => Disconnect::INTERNAL_SERVER_ERROR,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            name: "gyre".to_owned(),
            version: concat!(env!("CARGO_PKG_VERSION"), " gyre").to_owned(),
            ping_interval: Duration::from_secs(25),
            pong_timeout: Duration::from_secs(10),
            client_stale_close_delay: Duration::from_secs(15),
            client_expired_close_delay: Duration::from_secs(25),
            client_expired_sub_close_delay: Duration::from_secs(25),
            client_queue_max_size: 1 << 20,
            client_channel_limit: 128,
            user_connection_limit: 0,
            channel_max_length: 255,
            history_max_publication_limit: 300,
            recovery_max_publication_limit: 300,
            presence_update_interval: Duration::from_secs(25),
            channel_position_check_delay: Duration::from_secs(40),
            connect_include_server_time: false,
            node_info_interval: Duration::from_secs(3),
            unidirectional_code_to_disconnect: HashMap::new(),
            recovered_publications_histogram: false,
        }
    }
}
