//! Node configuration with the Go library's defaults.

use std::time::Duration;

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
        }
    }
}
