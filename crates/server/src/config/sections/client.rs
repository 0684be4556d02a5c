//! Client connections: tokens, pings, client-level proxies and limits.

use super::*;

sections! {
    /// Upstream `Client`.
    Client {
        proxy: ClientProxyContainer,
        allowed_origins: Vec<String>,
        token: Token,
        subscription_token: SubscriptionToken,
        allow_anonymous_connect_without_token: bool,
        disallow_anonymous_connection_tokens: bool,
        ping_pong: @flatten PingPong,
        expired_close_delay: Duration = "25s",
        expired_sub_close_delay: Duration = "25s",
        stale_close_delay: Duration = "10s",
        channel_limit: i64 = 128,
        queue_max_size: i64 = 1048576,
        presence_update_interval: Duration = "27s",
        concurrency: i64,
        channel_position_check_delay: Duration = "40s",
        channel_position_max_time_lag: Duration,
        connection_limit: i64,
        user_connection_limit: i64,
        connection_rate_limit: i64,
        connect_include_server_time: bool,
        history_max_publication_limit: i64 = 300,
        recovery_max_publication_limit: i64 = 300,
        insecure_skip_token_signature_verify: bool,
        user_id_http_header: String,
        insecure: bool,
        subscribe_to_user_personal_channel: SubscribeToUserPersonalChannel,
        connect_code_to_unidirectional_disconnect: ConnectCodeToUnidirectionalDisconnect,
    }

    /// Upstream `Token`.
    Token {
        hmac_secret_key: String,
        hmac_previous_secret_key: String,
        hmac_previous_secret_key_valid_until: i64,
        rsa_public_key: String,
        ecdsa_public_key: String,
        jwks_public_endpoint: String,
        audience: String,
        audience_regex: String,
        issuer: String,
        issuer_regex: String,
        user_id_claim: String,
        insecure_skip_jwks_endpoint_safety_check: bool,
    }

    /// Upstream `SubscriptionToken`.
    SubscriptionToken {
        enabled: bool,
        token: @flatten Token,
    }

    /// Upstream `PingPong`.
    PingPong {
        ping_interval: Duration = "25s",
        pong_timeout: Duration = "8s",
    }

    /// Upstream `ClientProxyContainer`.
    ClientProxyContainer {
        connect: ConnectProxy,
        refresh: RefreshProxy,
    }

    /// Upstream `ConnectProxy`.
    ConnectProxy {
        enabled: bool,
        proxy: @flatten Proxy,
    }

    /// Upstream `RefreshProxy`.
    RefreshProxy {
        enabled: bool,
        proxy: @flatten Proxy,
    }

    /// Upstream `ConnectCodeToUnidirectionalDisconnect`.
    ConnectCodeToUnidirectionalDisconnect {
        enabled: bool,
        transforms: Vec<UniConnectCodeToDisconnectTransform>,
    }

    /// Upstream `UniConnectCodeToDisconnectTransform`.
    UniConnectCodeToDisconnectTransform {
        code: u32,
        to: TransformDisconnect,
    }

    /// Upstream `SubscribeToUserPersonalChannel`.
    SubscribeToUserPersonalChannel {
        enabled: bool,
        personal_channel_namespace: String,
        single_connection: bool,
    }
}
