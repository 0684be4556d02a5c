//! Loader tests: formats, v6 defaults, env mapping, layering, warnings and validation.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use super::*;

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn opts(path: Option<PathBuf>, env: &[(&str, &str)]) -> LoadOptions {
    LoadOptions {
        path,
        flags: Vec::new(),
        env: Env::from_pairs(env.iter().copied()),
    }
}

fn load_env(env: &[(&str, &str)]) -> Result<Loaded, ConfigError> {
    load(opts(None, env))
}

fn load_json(value: Value) -> Result<Loaded, ConfigError> {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "config.json", &value.to_string());
    load(opts(Some(path), &[]))
}

fn invalid_key(result: Result<Loaded, ConfigError>) -> String {
    match result {
        Err(ConfigError::Invalid { key, .. }) => key,
        other => panic!("expected an invalid value error, got {other:?}"),
    }
}

const JSON: &str = r#"{
  "http_server": {"port": 9000, "address": "127.0.0.1"},
  "log": {"level": "debug"},
  "client": {
    "token": {"hmac_secret_key": "secret", "audience": "aud"},
    "allowed_origins": ["https://a.example", "https://b.example"],
    "ping_interval": "30s",
    "pong_timeout": "10s",
    "channel_limit": 64
  },
  "channel": {
    "without_namespace": {"presence": true, "history_size": 10, "history_ttl": "300s"},
    "namespaces": [
      {"name": "chat", "presence": true, "join_leave": true, "allowed_delta_types": ["fossil"]},
      {"name": "news", "history_size": 100, "history_ttl": "1h", "force_recovery": true}
    ]
  },
  "http_api": {"key": "api-key"},
  "websocket": {"write_timeout": "2s", "message_size_limit": 131072}
}"#;

const YAML: &str = r#"
http_server:
  port: 9000
  address: "127.0.0.1"
log:
  level: debug
client:
  token:
    hmac_secret_key: secret
    audience: aud
  allowed_origins:
    - https://a.example
    - https://b.example
  ping_interval: 30s
  pong_timeout: 10s
  channel_limit: 64
channel:
  without_namespace:
    presence: true
    history_size: 10
    history_ttl: 300s
  namespaces:
    - name: chat
      presence: true
      join_leave: true
      allowed_delta_types: [fossil]
    - name: news
      history_size: 100
      history_ttl: 1h
      force_recovery: true
http_api:
  key: api-key
websocket:
  write_timeout: 2s
  message_size_limit: 131072
"#;

const TOML: &str = r#"
[http_server]
port = 9000
address = "127.0.0.1"

[log]
level = "debug"

[client]
allowed_origins = ["https://a.example", "https://b.example"]
ping_interval = "30s"
pong_timeout = "10s"
channel_limit = 64

[client.token]
hmac_secret_key = "secret"
audience = "aud"

[channel.without_namespace]
presence = true
history_size = 10
history_ttl = "300s"

[[channel.namespaces]]
name = "chat"
presence = true
join_leave = true
allowed_delta_types = ["fossil"]

[[channel.namespaces]]
name = "news"
history_size = 100
history_ttl = "1h"
force_recovery = true

[http_api]
key = "api-key"

[websocket]
write_timeout = "2s"
message_size_limit = 131072
"#;

#[test]
fn json_yaml_toml_load_to_the_same_config() {
    let dir = tempfile::tempdir().unwrap();
    let mut configs = Vec::new();
    for (name, text) in [
        ("c.json", JSON),
        ("c.yaml", YAML),
        ("c.yml", YAML),
        ("c.toml", TOML),
    ] {
        let loaded = load(opts(Some(write(dir.path(), name, text)), &[]))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(loaded.file_found);
        assert!(
            loaded.unknown_keys.is_empty(),
            "{name}: {:?}",
            loaded.unknown_keys
        );
        configs.push(loaded.config);
    }
    for c in &configs[1..] {
        assert_eq!(c, &configs[0]);
    }
    let c = &configs[0];
    assert_eq!(c.http_server.port, 9000);
    assert_eq!(c.client.ping_pong.ping_interval, Duration::from_secs(30));
    assert_eq!(
        c.client.allowed_origins,
        ["https://a.example", "https://b.example"]
    );
    assert_eq!(c.channel.namespaces.len(), 2);
    assert!(c.namespace("chat").unwrap().join_leave);
    assert_eq!(
        c.namespace("news").unwrap().history_ttl,
        Duration::from_secs(3600)
    );
    assert_eq!(c.websocket.write_timeout, Duration::from_secs(2));
    // Untouched keys keep their defaults.
    assert_eq!(c.client.queue_max_size, 1_048_576);
    assert_eq!(c.namespace("chat").unwrap().subscribe_proxy_name, "default");
}

#[test]
fn defaults_are_centrifugo_v6_defaults() {
    let c = load_env(&[]).unwrap().config;
    // Each value below is the `default:` tag of the upstream key.
    assert_eq!(c.http_server.port, 8000);
    assert_eq!(c.http_server.address, "");
    assert_eq!(c.http_server.tls_autocert.http_addr, ":80");
    assert_eq!(c.log.level, "info");
    assert_eq!(c.engine.r#type, "memory");
    assert_eq!(c.engine.redis.redis_prefixed.prefix, "centrifugo");
    assert_eq!(
        c.engine.redis.redis_prefixed.redis.address,
        ["redis://127.0.0.1:6379"]
    );
    assert_eq!(
        c.engine.redis.redis_prefixed.redis.connect_timeout,
        Duration::from_secs(1)
    );
    assert_eq!(
        c.engine.redis.redis_prefixed.redis.io_timeout,
        Duration::from_secs(4)
    );
    assert_eq!(
        c.engine
            .redis
            .engine_redis_presence_manager
            .redis_presence_manager_common
            .presence_ttl,
        Duration::from_secs(60)
    );
    assert_eq!(c.broker.r#type, "memory");
    assert_eq!(
        c.broker.nats.nats_prefixed.nats_common.url,
        "nats://localhost:4222"
    );
    assert_eq!(c.presence_manager.r#type, "memory");
    assert_eq!(c.client.ping_pong.ping_interval, Duration::from_secs(25));
    assert_eq!(c.client.ping_pong.pong_timeout, Duration::from_secs(8));
    assert_eq!(c.client.stale_close_delay, Duration::from_secs(10));
    assert_eq!(c.client.expired_close_delay, Duration::from_secs(25));
    assert_eq!(c.client.expired_sub_close_delay, Duration::from_secs(25));
    assert_eq!(c.client.channel_limit, 128);
    assert_eq!(c.client.queue_max_size, 1_048_576);
    assert_eq!(c.client.presence_update_interval, Duration::from_secs(27));
    assert_eq!(
        c.client.channel_position_check_delay,
        Duration::from_secs(40)
    );
    assert_eq!(c.client.history_max_publication_limit, 300);
    assert_eq!(c.client.recovery_max_publication_limit, 300);
    assert!(c.client.allowed_origins.is_empty());
    assert_eq!(c.channel.history_meta_ttl, Duration::from_secs(720 * 3600));
    assert_eq!(c.channel.max_length, 255);
    assert_eq!(c.channel.private_prefix, "$");
    assert_eq!(c.channel.namespace_boundary, ":");
    assert_eq!(c.channel.user_boundary, "#");
    assert_eq!(c.channel.user_separator, ",");
    assert_eq!(c.channel.without_namespace.subscribe_proxy_name, "default");
    assert_eq!(c.channel.proxy.subscribe.timeout, Duration::from_secs(1));
    assert_eq!(c.rpc.namespace_boundary, ":");
    assert_eq!(c.rpc.ping.method, "ping");
    assert_eq!(c.rpc.without_namespace.proxy_name, "default");
    assert_eq!(c.http_api.handler_prefix, "/api");
    assert!(!c.http_api.disabled);
    assert_eq!(c.grpc_api.port, 10000);
    assert_eq!(c.uni_grpc.port, 11000);
    assert_eq!(c.admin.handler_prefix, "");
    assert!(!c.admin.enabled);
    assert_eq!(c.websocket.handler_prefix, "/connection/websocket");
    assert_eq!(c.websocket.message_size_limit, 65536);
    assert_eq!(c.websocket.write_timeout, Duration::from_millis(1000));
    assert_eq!(c.websocket.compression_level, 1);
    assert_eq!(c.sse.handler_prefix, "/connection/sse");
    assert_eq!(c.http_stream.handler_prefix, "/connection/http_stream");
    assert_eq!(c.emulation.handler_prefix, "/emulation");
    assert_eq!(c.uni_websocket.handler_prefix, "/connection/uni_websocket");
    assert_eq!(c.uni_sse.max_request_body_size, 65536);
    assert_eq!(c.init.handler_prefix, "/connection/init");
    assert_eq!(c.prometheus.handler_prefix, "/metrics");
    assert_eq!(c.health.handler_prefix, "/health");
    assert_eq!(c.swagger.handler_prefix, "/swagger");
    assert_eq!(c.debug.handler_prefix, "/debug/pprof");
    assert_eq!(c.shutdown.timeout, Duration::from_secs(30));
    assert_eq!(
        c.node.info_metrics_aggregate_interval,
        Duration::from_secs(60)
    );
    assert_eq!(c.graphite.port, 2003);
    assert_eq!(c.graphite.interval, Duration::from_secs(10));
    assert_eq!(c.map_broker.r#type, "memory");
    assert!(c.channel.namespaces.is_empty() && c.proxies.is_empty() && c.consumers.is_empty());
    assert_eq!(c, Config::default());
}

#[test]
fn missing_file_is_tolerated() {
    let loaded = load(opts(
        Some(PathBuf::from("/nonexistent/gyre/config.json")),
        &[],
    ))
    .unwrap();
    assert!(!loaded.file_found);
    assert_eq!(loaded.config, Config::default());
}

#[test]
fn env_scalars_bools_arrays_durations() {
    let c = load_env(&[
        ("CENTRIFUGO_HTTP_SERVER_PORT", "9001"),
        ("CENTRIFUGO_CLIENT_TOKEN_HMAC_SECRET_KEY", "k"),
        ("CENTRIFUGO_CLIENT_INSECURE", "T"),
        ("CENTRIFUGO_ADMIN_ENABLED", "1"),
        ("CENTRIFUGO_HTTP_API_INSECURE", "false"),
        ("CENTRIFUGO_CLIENT_ALLOWED_ORIGINS", "https://a https://b"),
        ("CENTRIFUGO_CLIENT_PING_INTERVAL", "1m30s"),
        ("CENTRIFUGO_CLIENT_PONG_TIMEOUT", "500ms"),
        (
            "CENTRIFUGO_CHANNEL_WITHOUT_NAMESPACE_ALLOWED_DELTA_TYPES",
            "fossil",
        ),
        (
            "CENTRIFUGO_ENGINE_REDIS_ADDRESS",
            "redis://a:6379 redis://b:6379",
        ),
        (
            "CENTRIFUGO_CLIENT_CONNECT_CODE_TO_UNIDIRECTIONAL_DISCONNECT_TRANSFORMS",
            r#"[{"code":109,"to":{"code":3005,"reason":"x"}}]"#,
        ),
        (
            "CENTRIFUGO_CHANNEL_PROXY_SUBSCRIBE_HTTP_STATIC_HEADERS",
            r#"{"X-Token":"${CENTRIFUGO_VAR_TOKEN}"}"#,
        ),
        ("CENTRIFUGO_VAR_TOKEN", "t0k"),
        ("CENTRIFUGO_GRPC_API_PORT", "0x2710"),
        ("CENTRIFUGO_LOG_LEVEL", ""),
    ])
    .unwrap()
    .config;
    assert_eq!(c.http_server.port, 9001);
    assert_eq!(c.client.token.hmac_secret_key, "k");
    assert!(c.client.insecure && c.admin.enabled && !c.http_api.insecure);
    assert_eq!(c.client.allowed_origins, ["https://a", "https://b"]);
    assert_eq!(c.client.ping_pong.ping_interval, Duration::from_secs(90));
    assert_eq!(c.client.ping_pong.pong_timeout, Duration::from_millis(500));
    assert_eq!(c.channel.without_namespace.allowed_delta_types, ["fossil"]);
    assert_eq!(
        c.engine.redis.redis_prefixed.redis.address,
        ["redis://a:6379", "redis://b:6379"]
    );
    let t = &c
        .client
        .connect_code_to_unidirectional_disconnect
        .transforms;
    assert_eq!((t.len(), t[0].code, t[0].to.code), (1, 109, 3005));
    assert_eq!(
        c.channel.proxy.subscribe.proxy_common.http.static_headers["X-Token"],
        "t0k"
    );
    assert_eq!(c.grpc_api.port, 10000);
    assert_eq!(c.log.level, "info", "an empty env var is unset");
}

#[test]
fn env_parse_errors_name_the_variable() {
    for (var, value) in [
        ("CENTRIFUGO_CLIENT_INSECURE", "yes"),
        ("CENTRIFUGO_HTTP_SERVER_PORT", "80a"),
        ("CENTRIFUGO_CLIENT_PING_INTERVAL", "25"),
        ("CENTRIFUGO_CHANNEL_NAMESPACES", "[not json]"),
    ] {
        match load_env(&[(var, value)]) {
            Err(ConfigError::Env { var: got, .. }) => assert_eq!(got, var),
            other => panic!("{var}: expected an env error, got {other:?}"),
        }
    }
}

#[test]
fn env_namespaces_as_json() {
    let c = load_env(&[(
        "CENTRIFUGO_CHANNEL_NAMESPACES",
        r#"[{"name":"chat","presence":true},{"name":"news","history_size":5,"history_ttl":"60s"}]"#,
    )])
    .unwrap()
    .config;
    assert!(c.namespace("chat").unwrap().presence);
    assert_eq!(c.namespace("news").unwrap().history_size, 5);
    // Items get defaults for keys they do not set.
    assert_eq!(c.namespace("chat").unwrap().publish_proxy_name, "default");
}

#[test]
fn env_namespaces_as_names_with_per_item_vars() {
    let loaded = load_env(&[
        ("CENTRIFUGO_CHANNEL_NAMESPACES", "chat my-ns some.ns"),
        ("CENTRIFUGO_CHANNEL_NAMESPACES_CHAT_PRESENCE", "true"),
        ("CENTRIFUGO_CHANNEL_NAMESPACES_CHAT_HISTORY_SIZE", "10"),
        ("CENTRIFUGO_CHANNEL_NAMESPACES_CHAT_HISTORY_TTL", "30s"),
        ("CENTRIFUGO_CHANNEL_NAMESPACES_MY_NS_JOIN_LEAVE", "true"),
        (
            "CENTRIFUGO_CHANNEL_NAMESPACES_SOME_NS_ALLOWED_DELTA_TYPES",
            "fossil",
        ),
        ("CENTRIFUGO_RPC_NAMESPACES", "users"),
        ("CENTRIFUGO_RPC_NAMESPACES_USERS_PROXY_ENABLED", "true"),
        ("CENTRIFUGO_RPC_NAMESPACES_USERS_PROXY_NAME", "backend"),
        ("CENTRIFUGO_PROXIES", "backend"),
        (
            "CENTRIFUGO_PROXIES_BACKEND_ENDPOINT",
            "http://localhost:3000",
        ),
        (
            "CENTRIFUGO_PROXIES_BACKEND_HTTP_HEADERS",
            "Cookie Authorization",
        ),
    ])
    .unwrap();
    let c = &loaded.config;
    let names: Vec<&str> = c
        .channel
        .namespaces
        .iter()
        .map(|n| n.name.as_str())
        .collect();
    assert_eq!(names, ["chat", "my-ns", "some.ns"]);
    let chat = c.namespace("chat").unwrap();
    assert!(chat.presence);
    assert_eq!(
        (chat.history_size, chat.history_ttl),
        (10, Duration::from_secs(30))
    );
    assert!(c.namespace("my-ns").unwrap().join_leave);
    assert_eq!(
        c.namespace("some.ns").unwrap().allowed_delta_types,
        ["fossil"]
    );
    assert!(c.rpc.namespaces[0].options.proxy_enabled);
    assert_eq!(c.rpc.namespaces[0].options.proxy_name, "backend");
    assert_eq!(c.proxies[0].proxy.endpoint, "http://localhost:3000");
    assert_eq!(
        c.proxies[0].proxy.timeout,
        Duration::from_secs(1),
        "named proxy items get defaults"
    );
    assert_eq!(
        c.proxies[0].proxy.proxy_common.http_headers,
        ["Cookie", "Authorization"]
    );
    assert!(loaded.unknown_env.is_empty(), "{:?}", loaded.unknown_env);
    assert!(
        loaded
            .known_env
            .contains_key("CENTRIFUGO_CHANNEL_NAMESPACES_MY_NS_JOIN_LEAVE")
    );
}

#[test]
fn per_item_env_applies_to_file_namespaces_and_name_lists_append() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "c.json",
        r#"{"channel":{"namespaces":[{"name":"chat"}]}}"#,
    );
    let c = load(opts(
        Some(path),
        &[
            ("CENTRIFUGO_CHANNEL_NAMESPACES", "extra"),
            ("CENTRIFUGO_CHANNEL_NAMESPACES_CHAT_PRESENCE", "true"),
        ],
    ))
    .unwrap()
    .config;
    let names: Vec<&str> = c
        .channel
        .namespaces
        .iter()
        .map(|n| n.name.as_str())
        .collect();
    assert_eq!(names, ["chat", "extra"]);
    assert!(c.namespace("chat").unwrap().presence);
}

#[test]
fn precedence_is_defaults_file_env_flags() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "c.yaml",
        "http_server:\n  port: 1001\n  address: file\nlog:\n  level: warn\n",
    );
    let env = [
        ("CENTRIFUGO_HTTP_SERVER_PORT", "1002"),
        ("CENTRIFUGO_HTTP_SERVER_ADDRESS", "env"),
    ];
    let mut options = opts(Some(path.clone()), &env);
    options.flags = vec![("http_server.port".to_owned(), json!(1003))];
    let c = load(options).unwrap().config;
    assert_eq!(c.http_server.port, 1003, "flag beats env");
    assert_eq!(c.http_server.address, "env", "env beats file");
    assert_eq!(c.log.level, "warn", "file beats default");
    let c = load(opts(Some(path), &[])).unwrap().config;
    assert_eq!(c.http_server.port, 1001);
}

#[test]
fn gyre_alias_prefix_and_centrifugo_wins() {
    let loaded = load_env(&[
        ("GYRE_HTTP_API_KEY", "gyre-key"),
        ("GYRE_ADMIN_PASSWORD", "ignored"),
        ("CENTRIFUGO_ADMIN_PASSWORD", "centrifugo"),
    ])
    .unwrap();
    assert_eq!(loaded.config.http_api.key, "gyre-key");
    assert_eq!(loaded.config.admin.password, "centrifugo");
    assert!(
        loaded
            .warnings
            .iter()
            .any(|w| w.contains("GYRE_ADMIN_PASSWORD")),
        "{:?}",
        loaded.warnings
    );
}

#[test]
fn unknown_keys_and_env_are_warnings() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "c.json",
        r#"{"client": {"token": {"hmac_secret": "x"}}, "nope": 1, "channel": {"namespaces": [{"name": "ab", "presnce": true}]},
           "channel_options_typo": {}, "proxies": [], "http_server": {"tls": {"enabled": false, "cert": "x"}}}"#,
    );
    let loaded = load(opts(
        Some(path),
        &[
            ("CENTRIFUGO_CLIENT_TOKEN_HMAC", "x"),
            ("CENTRIFUGO_VAR_X", "ok"),
        ],
    ))
    .unwrap();
    let mut keys = loaded.unknown_keys.clone();
    keys.sort();
    assert_eq!(
        keys,
        [
            "channel.namespaces.[0].presnce",
            "channel_options_typo",
            "client.token.hmac_secret",
            "http_server.tls.cert",
            "nope"
        ]
    );
    assert_eq!(loaded.unknown_env, ["CENTRIFUGO_CLIENT_TOKEN_HMAC"]);
    assert!(
        loaded
            .warnings
            .iter()
            .any(|w| w.contains("client.token.hmac_secret"))
    );
    assert!(
        loaded
            .warnings
            .iter()
            .any(|w| w.contains("CENTRIFUGO_CLIENT_TOKEN_HMAC"))
    );
}

#[test]
fn keys_match_case_insensitively_like_viper() {
    let loaded = load_json(json!({"Client": {"Token": {"HMAC_SECRET_KEY": "k"}}})).unwrap();
    assert_eq!(loaded.config.client.token.hmac_secret_key, "k");
    assert!(loaded.unknown_keys.is_empty());
}

#[test]
fn zero_values_fall_back_to_defaults_like_centrifugo() {
    let c = load_json(
        json!({"client": {"channel_limit": 0, "ping_interval": "0s"}, "log": {"level": ""}}),
    )
    .unwrap()
    .config;
    assert_eq!(c.client.channel_limit, 128);
    assert_eq!(c.client.ping_pong.ping_interval, Duration::from_secs(25));
    assert_eq!(c.log.level, "info");
    let c =
        load_json(json!({"proxies": [{"name": "p1", "endpoint": "http://x", "timeout": "0s"}]}))
            .unwrap()
            .config;
    assert_eq!(c.proxies[0].proxy.timeout, Duration::from_secs(1));
}

#[test]
fn durations_accept_integer_nanoseconds() {
    let c = load_json(json!({"client": {"ping_interval": 20_000_000_000_i64, "pong_timeout": -1}}))
        .unwrap()
        .config;
    assert_eq!(c.client.ping_pong.ping_interval, Duration::from_secs(20));
    assert_eq!(c.client.ping_pong.pong_timeout.as_nanos(), -1);
}

#[test]
fn type_errors_name_the_key() {
    assert_eq!(
        invalid_key(load_json(json!({"http_server": {"port": "abc"}}))),
        "http_server.port"
    );
    assert_eq!(
        invalid_key(load_json(json!({"client": {"ping_interval": "5 seconds"}}))),
        "client.ping_interval"
    );
    assert_eq!(
        invalid_key(load_json(
            json!({"client": {"allowed_origins": {"https://a": true}}})
        )),
        "client.allowed_origins"
    );
    assert_eq!(
        invalid_key(load_json(json!({"client": {"token": "x"}}))),
        "client.token"
    );
    assert_eq!(
        invalid_key(load_json(
            json!({"channel": {"namespaces": [{"name": "ok", "presence": "yes"}]}})
        )),
        "channel.namespaces.[0].presence"
    );
}

#[test]
fn validation_errors_name_the_key() {
    assert_eq!(
        invalid_key(load_json(
            json!({"client": {"ping_interval": "5s", "pong_timeout": "5s"}})
        )),
        "client.ping_interval"
    );
    assert_eq!(
        invalid_key(load_json(
            json!({"channel": {"namespaces": [{"name": "a"}]}})
        )),
        "channel.namespaces.[0].name"
    );
    assert_eq!(
        invalid_key(load_json(
            json!({"channel": {"namespaces": [{"name": "bad name!"}]}})
        )),
        "channel.namespaces.[0].name"
    );
    assert_eq!(
        invalid_key(load_json(
            json!({"channel": {"namespaces": [{"name": "chat"}, {"name": "chat"}]}})
        )),
        "channel.namespaces.[1]"
    );
    assert_eq!(
        invalid_key(load_json(
            json!({"channel": {"without_namespace": {"history_size": 10}}})
        )),
        "channel.without_namespace.history_size"
    );
    assert_eq!(
        invalid_key(load_json(
            json!({"channel": {"without_namespace": {"history_size": 1, "history_ttl": "1.5s"}}})
        )),
        "channel.without_namespace.history_ttl"
    );
    assert_eq!(
        invalid_key(load_json(
            json!({"channel": {"namespaces": [{"name": "ns", "channel_regex": "(("}]}})
        )),
        "channel.namespaces.[0].channel_regex"
    );
    assert_eq!(
        invalid_key(load_json(
            json!({"channel": {"namespaces": [{"name": "ns", "force_recovery_mode": "x"}]}})
        )),
        "channel.namespaces.[0].force_recovery_mode"
    );
    assert_eq!(
        invalid_key(load_json(json!({"log": {"level": "loud"}}))),
        "log.level"
    );
    assert_eq!(
        invalid_key(load_json(json!({"broker": {"type": "kafka"}}))),
        "broker.type"
    );
    assert_eq!(
        invalid_key(load_json(
            json!({"client": {"subscribe_to_user_personal_channel": {"enabled": true, "personal_channel_namespace": "personal"}}})
        )),
        "client.subscribe_to_user_personal_channel.personal_channel_namespace"
    );
    assert_eq!(
        invalid_key(load_json(
            json!({"channel": {"without_namespace": {"subscribe_proxy_enabled": true}}})
        )),
        "channel.proxy.subscribe.endpoint"
    );
    assert_eq!(
        invalid_key(load_json(
            json!({"proxies": [{"name": "default", "endpoint": "http://x"}]})
        )),
        "proxies"
    );
    // Names with dots and dashes are valid, and ping disabled with -1 is fine.
    load_json(
        json!({"channel": {"namespaces": [{"name": "my-ns.v2"}]}, "client": {"ping_interval": -1}}),
    )
    .unwrap();
}

#[test]
fn unsupported_features_warn_once_each() {
    let loaded = load_json(json!({
        "debug": {"enabled": true},
        "swagger": {"enabled": true},
        "webtransport": {"enabled": true},
        "graphite": {"enabled": true},
        "opentelemetry": {"enabled": true},
        "websocket": {"compression": true},
        "uni_websocket": {"compression": true},
    }))
    .unwrap();
    let features = unsupported_features(&loaded.config);
    // permessage-deflate and delta compression are implemented: configuring it warns about nothing.
    assert_eq!(features.len(), 5, "{features:?}");
    assert!(
        !loaded.warnings.iter().any(|w| w.contains("compression (")),
        "{:?}",
        loaded.warnings
    );
    for f in [
        "debug (pprof endpoints)",
        "swagger",
        "webtransport",
        "graphite",
        "opentelemetry",
    ] {
        assert_eq!(
            loaded
                .warnings
                .iter()
                .filter(|w| w.starts_with(&format!("{f} is configured")))
                .count(),
            1,
            "{f}"
        );
    }
    assert!(unsupported_features(&Config::default()).is_empty());
}

#[test]
fn proxies_are_supported_over_http_and_grpc_and_nothing_else() {
    for key in ["connect", "refresh"] {
        for endpoint in ["https://backend.example/x", "grpc://127.0.0.1:9"] {
            let loaded = load_json(json!({"client": {"proxy": {
                key: {"enabled": true, "endpoint": endpoint},
            }}}))
            .unwrap();
            assert!(
                loaded.unsupported.is_empty(),
                "{key}: {:?}",
                loaded.unsupported
            );
            assert!(loaded.refusal().is_none(), "{key}");
        }
        let err = load_json(json!({"client": {"proxy": {
            key: {"enabled": true, "endpoint": "ws://127.0.0.1:9"},
        }}}))
        .unwrap_err()
        .to_string();
        assert!(
            err.contains(&format!("client.proxy.{key}.endpoint"))
                && err.contains("must start with http://, https:// or grpc://"),
            "{key}: {err}"
        );
    }
    let err = load_json(json!({"proxies": [{"name": "named", "endpoint": "tcp://127.0.0.1:9"}]}))
        .unwrap_err()
        .to_string();
    assert!(err.contains("proxies.[0].endpoint"), "{err}");
}

#[test]
fn unsupported_access_features_are_refused_unless_opted_in() {
    let proxy = |path: &str| json!({"endpoint": format!("http://127.0.0.1:9/{path}")});
    let config = json!({
        "client": {"proxy": {
            "connect": {"enabled": true, "endpoint": "http://127.0.0.1:9/connect"},
            "refresh": {"enabled": true, "endpoint": "http://127.0.0.1:9/refresh"},
        }},
        "channel": {
            "proxy": {
                "subscribe": proxy("subscribe"),
                "publish": proxy("publish"),
                "sub_refresh": proxy("sub_refresh"),
                "subscribe_stream": {"endpoint": "grpc://127.0.0.1:9"},
            },
            "namespaces": [
                {"name": "sp", "subscribe_proxy_enabled": true},
                {"name": "pp", "publish_proxy_enabled": true},
                {"name": "rp", "sub_refresh_proxy_enabled": true},
                {"name": "tp", "subscribe_stream_proxy_enabled": true},
            ],
        },
        "rpc": {"proxy": proxy("rpc"), "without_namespace": {"proxy_enabled": true}},
        "proxies": [{"name": "named", "endpoint": "http://127.0.0.1:9/named"}],
        "graphite": {"enabled": true},
    });
    let loaded = load_json(config.clone()).unwrap();
    let access: Vec<&str> = loaded
        .unsupported
        .iter()
        .filter(|u| u.instead.is_some())
        .map(|u| u.key)
        .collect();
    assert_eq!(
        access,
        ["channel.proxy.subscribe_stream (subscribe_stream_proxy_enabled)"]
    );
    assert_eq!(loaded.access_errors().len(), access.len());
    // Access features are errors, never plain warnings; the rest stay warnings.
    for key in &access {
        assert!(!loaded.warnings.iter().any(|w| w.starts_with(key)), "{key}");
    }
    assert!(
        loaded
            .warnings
            .iter()
            .any(|w| w.starts_with("graphite is configured")),
        "{:?}",
        loaded.warnings
    );
    let refusal = loaded
        .refusal()
        .expect("refused without the opt-in")
        .to_string();
    assert!(
        refusal.contains("channel.proxy.subscribe_stream (subscribe_stream_proxy_enabled)")
            && refusal.contains("gyre.allow_unsupported")
            && refusal.contains("--allow-unsupported"),
        "{refusal}"
    );

    let mut allowed = config;
    allowed["gyre"] = json!({"allow_unsupported": true});
    let loaded = load_json(allowed).unwrap();
    assert!(loaded.refusal().is_none());
    assert_eq!(loaded.access_errors().len(), access.len());

    let ignored_only = load_json(json!({"graphite": {"enabled": true}})).unwrap();
    assert!(ignored_only.refusal().is_none() && ignored_only.access_errors().is_empty());
}

#[test]
fn default_config_renders_and_loads_back_in_every_format() {
    let dir = tempfile::tempdir().unwrap();
    for (name, format) in [
        ("d.json", Format::Json),
        ("d.yaml", Format::Yaml),
        ("d.toml", Format::Toml),
    ] {
        let text = format.render(&Config::default()).unwrap();
        let loaded = load(opts(Some(write(dir.path(), name, &text)), &[]))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(
            loaded.unknown_keys.is_empty(),
            "{name}: {:?}",
            loaded.unknown_keys
        );
        assert_eq!(loaded.config, Config::default(), "{name}");
    }
}

#[test]
fn every_key_has_exactly_one_env_name() {
    let loaded = load_env(&[]).unwrap();
    let known = &loaded.known_env;
    assert!(known.len() > 400, "{}", known.len());
    for name in [
        "CENTRIFUGO_CLIENT_TOKEN_HMAC_SECRET_KEY",
        "CENTRIFUGO_CLIENT_SUBSCRIPTION_TOKEN_HMAC_SECRET_KEY",
        "CENTRIFUGO_CLIENT_PING_INTERVAL",
        "CENTRIFUGO_HTTP_API_KEY",
        "CENTRIFUGO_ENGINE_REDIS_PRESENCE_TTL",
        "CENTRIFUGO_CHANNEL_WITHOUT_NAMESPACE_ALLOW_SUBSCRIBE_FOR_CLIENT",
        "CENTRIFUGO_CHANNEL_NAMESPACES",
        "CENTRIFUGO_PID_FILE",
    ] {
        assert!(known.contains_key(name), "{name}");
    }
    // Distinct pointers map to distinct names.
    let mut pointers: Vec<&str> = known.values().map(|v| v.pointer.as_str()).collect();
    pointers.sort_unstable();
    pointers.dedup();
    assert_eq!(pointers.len(), known.len());
    assert_eq!(
        known["CENTRIFUGO_CLIENT_PING_INTERVAL"].pointer,
        "/client/ping_interval"
    );
}

fn count_leaves(fields: &[(&'static str, schema::Shape)]) -> usize {
    fields
        .iter()
        .map(|(_, shape)| match shape {
            schema::Shape::Struct(children) => count_leaves(children),
            _ => 1,
        })
        .sum()
}

#[test]
fn env_names_do_not_collide() {
    let loaded = load_env(&[]).unwrap();
    assert_eq!(loaded.known_env.len(), count_leaves(schema::root()));
}

#[test]
fn the_grpc_api_and_its_options_are_served() {
    let served = load_json(json!({"grpc_api": {
        "enabled": true, "tls": {"enabled": true}, "reflection": true, "error_mode": "transport"
    }}))
    .unwrap();
    assert!(unsupported_features(&served.config).is_empty());
    assert!(
        served.warnings.iter().all(|w| !w.contains("grpc_api")),
        "{:?}",
        served.warnings
    );
}

#[test]
fn a_single_string_stands_for_a_list_like_in_centrifugo() {
    // Forms seen in Centrifugo's docs and configs: one string where the key holds a list,
    // and comma- or space-separated strings as in env values.
    let loaded = load_json(json!({
        "client": {"allowed_origins": "http://localhost:3000",
            "proxy": {"connect": {"http_headers": "Authorization,Cookie"}}},
        "engine": {"type": "redis", "redis": {
            "address": "redis://127.0.0.1:6379",
            "cluster_address": "127.0.0.1:7000, 127.0.0.1:7001",
            "sentinel_address": "127.0.0.1:26379 127.0.0.1:26380"
        }},
        "channel": {"namespaces": [{"name": "ns", "allowed_delta_types": "fossil",
            "history_size": 10, "history_ttl": "60s", "force_positioning": true}]},
    }))
    .expect("single strings for lists load");
    let c = &loaded.config;
    assert_eq!(c.client.allowed_origins, ["http://localhost:3000"]);
    assert_eq!(
        c.engine.redis.redis_prefixed.redis.address,
        ["redis://127.0.0.1:6379"]
    );
    assert_eq!(
        c.engine.redis.redis_prefixed.redis.cluster_address,
        ["127.0.0.1:7000", "127.0.0.1:7001"]
    );
    assert_eq!(
        c.engine.redis.redis_prefixed.redis.sentinel_address,
        ["127.0.0.1:26379", "127.0.0.1:26380"]
    );
    assert_eq!(
        c.channel.namespaces[0].options.allowed_delta_types,
        ["fossil"]
    );
    assert_eq!(
        c.client.proxy.connect.proxy.proxy_common.http_headers,
        ["Authorization", "Cookie"]
    );
}

#[test]
fn scalars_in_strings_are_read_like_centrifugo_weak_decoding() {
    let loaded = load_json(json!({
        "http_server": {"port": "8001", "internal_port": 9001},
        "client": {"channel_limit": "0x10", "insecure": "true"},
        "channel": {"namespaces": [{"name": "ns", "presence": "1", "history_size": "5",
            "history_ttl": "30s"}]},
    }))
    .expect("weakly typed scalars load");
    let c = &loaded.config;
    assert_eq!(c.http_server.port, 8001);
    assert_eq!(c.client.channel_limit, 16);
    assert!(c.client.insecure);
    assert_eq!(c.http_server.internal_port, "9001");
    assert!(c.channel.namespaces[0].options.presence);
    assert_eq!(c.channel.namespaces[0].options.history_size, 5);
}

#[test]
fn errors_name_the_file_the_key_and_the_expected_shape() {
    let dir = tempfile::tempdir().unwrap();
    let cases: &[(Value, &str)] = &[
        (
            json!({"http_server": {"port": "eighty"}}),
            "invalid value for http_server.port in FILE: expected an integer, got \"eighty\"",
        ),
        (
            json!({"client": {"allowed_origins": {"a": 1}}}),
            "invalid value for client.allowed_origins in FILE: expected a list of strings, got {\"a\":1}",
        ),
        (
            json!({"channel": {"namespaces": [{"name": "n", "presence": "maybe"}]}}),
            "invalid value for channel.namespaces.[0].presence in FILE: expected a boolean, got \"maybe\"",
        ),
        (
            json!({"client": {"ping_interval": "5 seconds"}}),
            "invalid value for client.ping_interval in FILE: ",
        ),
        (
            json!({"channel": {"namespaces": "chat"}}),
            "invalid value for channel.namespaces in FILE: expected a list of objects, got \"chat\"",
        ),
    ];
    for (i, (value, want)) in cases.iter().enumerate() {
        let path = write(dir.path(), &format!("case{i}.json"), &value.to_string());
        let err = load(opts(Some(path.clone()), &[]))
            .expect_err("an invalid value is refused")
            .to_string();
        let want = want.replace("FILE", &path.display().to_string());
        assert!(
            err.starts_with(&want),
            "case {i}: got {err:?}, want {want:?}"
        );
    }
    // Semantic validation errors name the file too.
    let path = write(
        dir.path(),
        "bad_ns.json",
        &json!({"channel": {"namespaces": [{"name": "bad name!"}]}}).to_string(),
    );
    let err = load(opts(Some(path.clone()), &[])).unwrap_err().to_string();
    assert!(
        err.contains(&format!(" in {}", path.display())),
        "validation error without file: {err}"
    );
    // Without a file there is no file to name.
    let err = load_env(&[("CENTRIFUGO_CHANNEL_NAMESPACES", r#"[{"name":"bad name!"}]"#)])
        .unwrap_err()
        .to_string();
    assert!(!err.contains(" in "), "{err}");
}

#[test]
fn enabled_consumers_are_checked_and_untestable_types_refused() {
    let invalid = |consumer: Value| {
        let result = load_json(json!({ "consumers": [consumer] }));
        match result {
            Err(ConfigError::Invalid { key, message, .. }) => (key, message),
            other => panic!("expected an invalid value error, got {other:?}"),
        }
    };
    // Kafka cannot be run here: refused loudly, with the reason.
    let (key, message) = invalid(json!({"name": "k1", "enabled": true, "type": "kafka",
        "kafka": {"brokers": ["127.0.0.1:9092"], "topics": ["t"], "consumer_group": "g"}}));
    assert_eq!(key, "consumers.[0].type");
    assert!(
        message.contains("not supported by Gyre") && message.contains("Kafka-compatible broker"),
        "{message}"
    );
    for kind in ["google_pub_sub", "aws_sqs", "azure_service_bus"] {
        let (key, _) = invalid(json!({"name": "c1", "enabled": true, "type": kind}));
        assert_eq!(key, "consumers.[0].type", "{kind}");
    }
    // Upstream's per-type checks.
    let (key, _) = invalid(json!({"name": "pg", "enabled": true, "type": "postgresql",
        "postgresql": {"outbox_table_name": "t"}}));
    assert_eq!(key, "consumers.[0].postgresql.dsn");
    let (key, _) = invalid(
        json!({"name": "rs", "enabled": true, "type": "redis_stream",
        "redis_stream": {"streams": ["s"]}}),
    );
    assert_eq!(key, "consumers.[0].redis_stream.consumer_group");
    let (key, _) = invalid(
        json!({"name": "js", "enabled": true, "type": "nats_jetstream",
        "nats_jetstream": {"stream_name": "S", "durable_consumer_name": "d",
            "deliver_policy": "last"}}),
    );
    assert_eq!(key, "consumers.[0].nats_jetstream.deliver_policy");
    let (key, _) = invalid(
        json!({"name": "js", "enabled": true, "type": "nats_jetstream",
        "nats_jetstream": {"stream_name": "S", "durable_consumer_name": "d",
            "subjects": ["a", "b"]}}),
    );
    assert_eq!(key, "consumers.[0].nats_jetstream.subjects");
    // Disabled consumers are not checked (as upstream), and valid ones load.
    load_json(json!({"consumers": [
        {"name": "k1", "type": "kafka"},
        {"name": "pg", "enabled": true, "type": "postgresql",
            "postgresql": {"dsn": "postgresql://127.0.0.1/test", "outbox_table_name": "t"}},
        {"name": "rs", "enabled": true, "type": "redis_stream",
            "redis_stream": {"streams": ["s"], "consumer_group": "g"}},
        {"name": "js", "enabled": true, "type": "nats_jetstream",
            "nats_jetstream": {"stream_name": "S", "durable_consumer_name": "d",
                "subjects": ["a.>"]}},
    ]}))
    .unwrap();
}

#[test]
fn engine_memory_keys_are_read_and_checked() {
    let loaded = load_env(&[
        ("CENTRIFUGO_ENGINE_MEMORY_DATA_DIR", "/var/lib/gyre"),
        ("CENTRIFUGO_ENGINE_MEMORY_SYNC", "always"),
    ])
    .unwrap();
    let memory = &loaded.config.engine.memory;
    assert_eq!(memory.data_dir, "/var/lib/gyre");
    assert_eq!(memory.sync, "always");
    assert_eq!(memory.sync_interval.to_string(), "10ms");
    assert!(loaded.warnings.iter().all(|w| !w.contains("engine.memory")));
    assert_eq!(
        invalid_key(load_json(
            json!({"engine": {"memory": {"sync": "sometimes"}}})
        )),
        "engine.memory.sync"
    );
    assert_eq!(
        invalid_key(load_json(json!({"engine": {"memory": {
            "data_dir": "/x", "sync_interval": "-1s"
        }}}))),
        "engine.memory.sync_interval"
    );
}

#[test]
fn postgres_broker_and_controller_are_accepted_and_their_tls_refused() {
    let dsn = "postgres://postgres@127.0.0.1/test";
    let loaded = load_json(json!({
        "broker": {"enabled": true, "type": "postgres", "postgres": {"dsn": dsn}},
        "controller": {"enabled": true, "type": "postgres", "postgres": {"dsn": dsn}},
    }))
    .unwrap();
    assert!(loaded.unsupported.is_empty(), "{:?}", loaded.unsupported);
    assert_eq!(loaded.config.broker.postgres.num_shards, 8);
    assert_eq!(
        loaded.config.controller.postgres.poll_interval.to_std(),
        Some(std::time::Duration::from_millis(50))
    );
    let refused = |config: serde_json::Value, key: &str| {
        let err = load_json(config).unwrap_err().to_string();
        assert!(err.contains(key), "{key}: {err}");
    };
    refused(
        json!({"broker": {"enabled": true, "type": "postgres",
            "postgres": {"dsn": dsn, "tls": {"enabled": true}}}}),
        "broker.postgres.tls",
    );
    refused(
        json!({"broker": {"enabled": true, "type": "postgres"}}),
        "broker.postgres.dsn",
    );
    refused(
        json!({"controller": {"enabled": true, "type": "postgres",
            "postgres": {"dsn": dsn, "tls": {"enabled": true}}}}),
        "controller.postgres.tls",
    );
    refused(
        json!({"controller": {"enabled": true, "type": "redis"}}),
        "controller.type",
    );
    refused(
        json!({"controller": {"enabled": true, "type": "postgres"}}),
        "controller.postgres.dsn",
    );
}
