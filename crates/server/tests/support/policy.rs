//! The configuration and tokens the client-policy tests (`policy_*.rs`) share.

use serde_json::{Value, json};

use super::{WsClient, hs256, now};

/// `client.token.hmac_secret_key` of [`config`].
pub const SECRET: &str = "policy-test-secret";

/// Namespaces covering each permission path:
///
/// * `public`: subscribe/publish/presence/history for clients and anonymous users,
///   join/leave, history 10 × 300 s;
/// * `private`: nothing allowed (tokens only);
/// * `history`: subscribe for clients, history 10 × 300 s, `allow_recovery`,
///   publish for subscribers;
/// * `sub`: subscribe for clients; publish, presence and history for subscribers only;
/// * `dialog`: user-limited channels;
/// * `strict`: subscribe for clients, `channel_regex` `^[a-z0-9]+$`;
/// * `obj`: publish for clients, `publication_data_format: json_object`;
/// * `bin`: publish for clients, `publication_data_format: binary`;
/// * `forced`: subscribe and publish for clients, `force_recovery`, `join_leave` and
///   `force_push_join_leave`;
/// * `personal`: presence on, for personal channels;
/// * `proxied`: subscribe and publish proxies enabled (not implemented → 108; Gyre runs
///   with them only under the `gyre.allow_unsupported` opt-in, set here);
/// * channels without namespace: subscribe for clients, `channel.max_length` 64.
pub fn config() -> Value {
    json!({
        "log": {"level": "debug"},
        "gyre": {"allow_unsupported": true},
        "client": {
            "token": {"hmac_secret_key": SECRET},
            "allowed_origins": ["*"]
        },
        "rpc": {"ping": {"enabled": true}},
        "channel": {
            "max_length": 64,
            "proxy": {
                "subscribe": {"endpoint": "http://127.0.0.1:9/subscribe"},
                "publish": {"endpoint": "http://127.0.0.1:9/publish"}
            },
            "without_namespace": {"allow_subscribe_for_client": true},
            "namespaces": [
                {
                    "name": "public",
                    "allow_subscribe_for_client": true,
                    "allow_subscribe_for_anonymous": true,
                    "allow_publish_for_client": true,
                    "allow_publish_for_anonymous": true,
                    "presence": true,
                    "join_leave": true,
                    "allow_presence_for_client": true,
                    "allow_presence_for_anonymous": true,
                    "history_size": 10,
                    "history_ttl": "300s",
                    "allow_history_for_client": true,
                    "allow_history_for_anonymous": true
                },
                {"name": "private"},
                {
                    "name": "history",
                    "allow_subscribe_for_client": true,
                    "allow_publish_for_subscriber": true,
                    "history_size": 10,
                    "history_ttl": "300s",
                    "allow_recovery": true
                },
                {
                    "name": "sub",
                    "allow_subscribe_for_client": true,
                    "allow_publish_for_subscriber": true,
                    "presence": true,
                    "allow_presence_for_subscriber": true,
                    "history_size": 5,
                    "history_ttl": "60s",
                    "allow_history_for_subscriber": true
                },
                {"name": "dialog", "allow_user_limited_channels": true},
                {
                    "name": "strict",
                    "allow_subscribe_for_client": true,
                    "channel_regex": "^[a-z0-9]+$"
                },
                {
                    "name": "obj",
                    "allow_publish_for_client": true,
                    "publication_data_format": "json_object"
                },
                {
                    "name": "bin",
                    "allow_publish_for_client": true,
                    "publication_data_format": "binary"
                },
                {
                    "name": "forced",
                    "allow_subscribe_for_client": true,
                    "allow_publish_for_client": true,
                    "force_recovery": true,
                    "force_push_join_leave": true,
                    "join_leave": true,
                    "history_size": 10,
                    "history_ttl": "300s"
                },
                {"name": "personal", "presence": true},
                {
                    "name": "proxied",
                    "subscribe_proxy_enabled": true,
                    "publish_proxy_enabled": true
                }
            ]
        }
    })
}

/// [`config`] with `f` applied to it.
pub fn config_with(f: impl FnOnce(&mut Value)) -> Value {
    let mut c = config();
    f(&mut c);
    c
}

/// A connection token for `user`, valid for an hour, with extra claims merged in.
pub fn connect_token(user: &str, extra: Value) -> String {
    let mut claims = json!({"sub": user, "exp": now() + 3600});
    merge(&mut claims, extra);
    hs256(SECRET, claims)
}

/// A subscription token for `user` and `channel`, valid for an hour, with extra claims.
pub fn sub_token(user: &str, channel: &str, extra: Value) -> String {
    let mut claims = json!({"sub": user, "channel": channel, "exp": now() + 3600});
    merge(&mut claims, extra);
    hs256(SECRET, claims)
}

fn merge(into: &mut Value, extra: Value) {
    if let (Some(into), Value::Object(extra)) = (into.as_object_mut(), extra) {
        into.extend(extra);
    }
}

/// A client connected as `user` (with a token); panics if the connect fails.
pub async fn connected(url: &str, user: &str) -> WsClient {
    let (client, reply) =
        WsClient::connect(url, json!({"token": connect_token(user, json!({}))})).await;
    reply.ok();
    client
}
