//! Channels and RPC: options, namespaces, channel-level proxies, maps and shared polling.

use super::*;

sections! {
    /// Upstream `Channel`.
    Channel {
        proxy: ChannelProxyContainer,
        without_namespace: ChannelOptions,
        namespaces: Vec<ChannelNamespace>,
        history_meta_ttl: Duration = "720h",
        publication_data_format: String,
        max_length: i64 = 255,
        private_prefix: String = "$",
        namespace_boundary: String = ":",
        user_boundary: String = "#",
        user_separator: String = ",",
    }

    /// Upstream `ChannelNamespace`.
    @named ChannelNamespace {
        name: String,
        options: @flatten ChannelOptions,
    }

    /// Upstream `ChannelOptions`.
    ChannelOptions {
        presence: bool,
        join_leave: bool,
        force_push_join_leave: bool,
        map_clients_presence_channel_prefix: String,
        map_users_presence_channel_prefix: String,
        history_size: i64,
        history_ttl: Duration,
        history_meta_ttl: Duration,
        force_positioning: bool,
        allow_positioning: bool,
        force_recovery: bool,
        allow_recovery: bool,
        force_recovery_mode: String,
        auto_cache_recover: bool,
        allowed_delta_types: Vec<String>,
        allow_tags_filter: bool,
        delta_publish: bool,
        allow_subscribe_for_anonymous: bool,
        allow_subscribe_for_client: bool,
        allow_publish_for_anonymous: bool,
        allow_publish_for_subscriber: bool,
        allow_publish_for_client: bool,
        allow_presence_for_anonymous: bool,
        allow_presence_for_subscriber: bool,
        allow_presence_for_client: bool,
        allow_history_for_anonymous: bool,
        allow_history_for_subscriber: bool,
        allow_history_for_client: bool,
        allow_user_limited_channels: bool,
        channel_regex: String,
        publication_data_format: String,
        subscribe_proxy_enabled: bool,
        subscribe_proxy_name: String = "default",
        publish_proxy_enabled: bool,
        publish_proxy_name: String = "default",
        sub_refresh_proxy_enabled: bool,
        sub_refresh_proxy_name: String = "default",
        subscribe_stream_proxy_enabled: bool,
        subscribe_stream_proxy_name: String = "default",
        subscribe_stream_proxy_bidirectional: bool,
        subscription_type: String,
        map: MapConfig,
        shared_poll: SharedPollConfig,
    }

    /// Upstream `ChannelProxyContainer`.
    ChannelProxyContainer {
        subscribe: Proxy,
        publish: Proxy,
        sub_refresh: Proxy,
        subscribe_stream: Proxy,
        map_publish: Proxy,
        map_remove: Proxy,
        shared_poll_refresh: Proxy,
    }

    /// Upstream `MapConfig`.
    MapConfig {
        mode: String,
        key_ttl: Duration,
        stream_size: i64,
        stream_ttl: Duration,
        meta_ttl: Duration,
        remove_client_on_unsubscribe: bool,
        client_key: String,
        allow_publish_for_client: bool,
        allow_publish_for_subscriber: bool,
        allow_publish_for_anonymous: bool,
        allow_remove_for_client: bool,
        allow_remove_for_subscriber: bool,
        allow_remove_for_anonymous: bool,
        publish_proxy_enabled: bool,
        publish_proxy_name: String = "default",
        remove_proxy_enabled: bool,
        remove_proxy_name: String = "default",
        default_page_size: i64,
        min_page_size: i64,
        max_page_size: i64,
        live_transition_max_publication_limit: i64,
        subscribe_catch_up_timeout: Duration,
    }

    /// Upstream `SharedPollConfig`.
    SharedPollConfig {
        proxy_name: String,
        refresh_interval: Duration,
        refresh_batch_size: i64,
        max_keys_per_connection: i64,
        mode: String,
        channel_shutdown_delay: Duration,
        track_expired_extra_delay: Duration,
        publish_enabled: bool,
    }

    /// Upstream `SharedPoll`.
    SharedPoll {
        hmac_secret_key: String,
        hmac_previous_secret_key: String,
        hmac_previous_secret_key_valid_until: i64,
        concurrency_limit: i64,
    }

    /// Upstream `RPC`.
    Rpc {
        proxy: Proxy,
        without_namespace: RpcOptions,
        namespaces: Vec<RpcNamespace>,
        ping: RpcPing,
        namespace_boundary: String = ":",
    }

    /// Upstream `RPCPing`.
    RpcPing {
        enabled: bool,
        method: String = "ping",
    }

    /// Upstream `RpcNamespace`.
    @named RpcNamespace {
        name: String,
        options: @flatten RpcOptions,
    }

    /// Upstream `RpcOptions`.
    RpcOptions {
        proxy_enabled: bool,
        proxy_name: String = "default",
    }
}
