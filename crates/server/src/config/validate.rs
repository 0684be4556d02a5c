//! Semantic checks of a loaded configuration, following Centrifugo's `Config.Validate`
//! (`internal/config/validate.go`) plus the ping/pong rule the library enforces at start.
//! Each error names the key path at fault.

use regex::Regex;

use super::duration::Duration;
use super::error::ConfigError;
use super::sections::{ChannelOptions, Config, Consumer, HttpStatusToCodeTransform, Proxy};

const DEFAULT_PROXY_NAME: &str = "default";
const KNOWN_BROKERS: &[&str] = &["memory", "nats", "redis", "redisnats", "postgres"];
const PUBLICATION_DATA_FORMATS: &[&str] = &["", "json", "json_object", "binary"];
const LOG_LEVELS: &[&str] = &["none", "trace", "debug", "info", "warn", "error", "fatal"];
/// Close reasons and error messages must fit a WebSocket close frame.
const REASON_MAX_LEN: usize = 123;

/// Namespace, RPC namespace and proxy names: `^[-a-zA-Z0-9_.]{2,}$`.
pub(crate) fn is_valid_name(name: &str) -> bool {
    name.len() >= 2
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// Consumer names: `^[a-zA-Z0-9_]{2,}$`.
fn is_valid_consumer_name(name: &str) -> bool {
    name.len() >= 2 && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

fn err(key: impl Into<String>, message: impl Into<String>) -> ConfigError {
    ConfigError::invalid(key, message)
}

fn second_precision(key: &str, d: Duration) -> Result<(), ConfigError> {
    if d.as_nanos() > 0 && d.as_nanos() % 1_000_000_000 != 0 {
        return Err(err(
            key,
            format!("malformed duration {d}, sub-second precision is not supported for this key"),
        ));
    }
    Ok(())
}

fn one_of(key: &str, value: &str, allowed: &[&str]) -> Result<(), ConfigError> {
    if allowed.contains(&value) {
        Ok(())
    } else {
        Err(err(
            key,
            format!(
                "unknown value {value:?}, expected one of: {}",
                allowed.join(", ")
            ),
        ))
    }
}

pub(crate) fn validate(c: &Config) -> Result<(), ConfigError> {
    let http = &c.http_server;
    if http.h2c_external
        && (http.internal_port.is_empty() || http.port.to_string() == http.internal_port)
    {
        return Err(err(
            "http_server.h2c_external",
            "requires custom separate internal_port to be configured",
        ));
    }
    if http.tls.enabled && http.h2c_external {
        return Err(err(
            "http_server.h2c_external",
            "cannot be used together with enabled TLS for external HTTP server",
        ));
    }
    one_of("log.level", &c.log.level, LOG_LEVELS)?;
    one_of("engine.type", &c.engine.r#type, &["memory", "redis"])?;
    one_of("broker.type", &c.broker.r#type, KNOWN_BROKERS)?;
    validate_postgres_engines(c)?;
    one_of(
        "engine.memory.sync",
        &c.engine.memory.sync,
        &["interval", "always"],
    )?;
    if c.engine.memory.sync == "interval"
        && !c.engine.memory.data_dir.is_empty()
        && c.engine.memory.sync_interval.as_nanos() <= 0
    {
        return Err(err(
            "engine.memory.sync_interval",
            "must be positive with sync \"interval\"",
        ));
    }
    one_of(
        "presence_manager.type",
        &c.presence_manager.r#type,
        &["memory", "redis"],
    )?;
    one_of(
        "map_broker.type",
        &c.map_broker.r#type,
        &["memory", "redis", "postgres"],
    )?;

    let ping = c.client.ping_pong.ping_interval;
    let pong = c.client.ping_pong.pong_timeout;
    if ping.as_nanos() > 0 && pong.as_nanos() > 0 && pong >= ping {
        return Err(err(
            "client.ping_interval",
            format!("ping_interval ({ping}) must be greater than pong_timeout ({pong})"),
        ));
    }

    let user_id_claim_ok =
        |claim: &str| claim.bytes().all(|b| b.is_ascii_alphabetic() || b == b'_');
    if !user_id_claim_ok(&c.client.token.user_id_claim) {
        return Err(err("client.token.user_id_claim", "must match ^[a-zA-Z_]+$"));
    }
    if !user_id_claim_ok(&c.client.subscription_token.token.user_id_claim) {
        return Err(err(
            "client.subscription_token.user_id_claim",
            "must match ^[a-zA-Z_]+$",
        ));
    }

    if c.client.proxy.connect.enabled {
        validate_proxy("client.proxy.connect", &c.client.proxy.connect.proxy)?;
    }
    if c.client.proxy.refresh.enabled {
        validate_proxy("client.proxy.refresh", &c.client.proxy.refresh.proxy)?;
    }

    second_precision("channel.history_meta_ttl", c.channel.history_meta_ttl)?;
    one_of(
        "channel.publication_data_format",
        &c.channel.publication_data_format,
        PUBLICATION_DATA_FORMATS,
    )?;

    for (i, t) in c
        .client
        .connect_code_to_unidirectional_disconnect
        .transforms
        .iter()
        .enumerate()
    {
        let key = format!("client.connect_code_to_unidirectional_disconnect.transforms.[{i}]");
        if t.code == 0 {
            return Err(err(key, "no code specified"));
        }
        if t.to.code == 0 {
            return Err(err(key, "no disconnect code specified in to"));
        }
        if !t.to.reason.is_ascii() {
            return Err(err(key, "disconnect reason must be ASCII"));
        }
    }

    let mut proxy_names: Vec<&str> = Vec::new();
    for (i, p) in c.proxies.iter().enumerate() {
        let key = format!("proxies.[{i}]");
        if proxy_names.contains(&p.name.as_str()) {
            return Err(err(key, format!("duplicate proxy name: {}", p.name)));
        }
        if !is_valid_name(&p.name) {
            return Err(err(
                key,
                format!(
                    "invalid proxy name {:?}, must match ^[-a-zA-Z0-9_.]{{2,}}$",
                    p.name
                ),
            ));
        }
        validate_proxy(&key, &p.proxy)?;
        proxy_names.push(&p.name);
    }
    if proxy_names.contains(&DEFAULT_PROXY_NAME) {
        return Err(err(
            "proxies",
            format!("proxy name {DEFAULT_PROXY_NAME} is reserved"),
        ));
    }
    proxy_names.push(DEFAULT_PROXY_NAME);

    validate_channel_options(
        "channel.without_namespace",
        &c.channel.without_namespace,
        &proxy_names,
        c,
    )?;
    let rpc = &c.rpc.without_namespace;
    if rpc.proxy_enabled && (rpc.proxy_name.is_empty() || rpc.proxy_name == DEFAULT_PROXY_NAME) {
        validate_proxy("rpc.proxy", &c.rpc.proxy)?;
    }
    if !proxy_names.contains(&c.rpc.without_namespace.proxy_name.as_str())
        && !c.rpc.without_namespace.proxy_name.is_empty()
    {
        return Err(err(
            "rpc.without_namespace.proxy_name",
            format!("proxy {} not found", c.rpc.without_namespace.proxy_name),
        ));
    }

    let personal = &c.client.subscribe_to_user_personal_channel;
    let mut personal_ns_found = !personal.enabled || personal.personal_channel_namespace.is_empty();
    if personal_ns_found && personal.single_connection && !c.channel.without_namespace.presence {
        return Err(err(
            "client.subscribe_to_user_personal_channel.single_connection",
            "presence must be enabled on top level (channel.without_namespace.presence) to maintain single connection",
        ));
    }

    let mut names: Vec<&str> = Vec::new();
    for (i, ns) in c.channel.namespaces.iter().enumerate() {
        let key = format!("channel.namespaces.[{i}]");
        if names.contains(&ns.name.as_str()) {
            return Err(err(
                key,
                format!("namespace name must be unique: {}", ns.name),
            ));
        }
        if !is_valid_name(&ns.name) {
            return Err(err(
                format!("{key}.name"),
                format!(
                    "invalid namespace name {:?} (must match ^[-a-zA-Z0-9_.]{{2,}}$)",
                    ns.name
                ),
            ));
        }
        validate_channel_options(&key, &ns.options, &proxy_names, c)?;
        if ns.name == personal.personal_channel_namespace {
            personal_ns_found = true;
            if personal.single_connection && !ns.options.presence {
                return Err(err(
                    format!("{key}.presence"),
                    format!(
                        "presence must be enabled for namespace {} to maintain single connection",
                        ns.name
                    ),
                ));
            }
        }
        names.push(&ns.name);
    }
    if !personal_ns_found {
        return Err(err(
            "client.subscribe_to_user_personal_channel.personal_channel_namespace",
            format!(
                "namespace for user personal channel not found: {}",
                personal.personal_channel_namespace
            ),
        ));
    }

    let mut rpc_names: Vec<&str> = Vec::new();
    for (i, ns) in c.rpc.namespaces.iter().enumerate() {
        let key = format!("rpc.namespaces.[{i}]");
        if rpc_names.contains(&ns.name.as_str()) {
            return Err(err(
                key,
                format!("rpc namespace name must be unique: {}", ns.name),
            ));
        }
        if !is_valid_name(&ns.name) {
            return Err(err(
                format!("{key}.name"),
                format!(
                    "invalid rpc namespace name {:?} (must match ^[-a-zA-Z0-9_.]{{2,}}$)",
                    ns.name
                ),
            ));
        }
        if ns.options.proxy_enabled
            && (ns.options.proxy_name.is_empty() || ns.options.proxy_name == DEFAULT_PROXY_NAME)
        {
            validate_proxy("rpc.proxy", &c.rpc.proxy)?;
        }
        if !ns.options.proxy_name.is_empty()
            && !proxy_names.contains(&ns.options.proxy_name.as_str())
        {
            return Err(err(
                format!("{key}.proxy_name"),
                format!("proxy {} not found for rpc", ns.options.proxy_name),
            ));
        }
        rpc_names.push(&ns.name);
    }

    let mut consumer_names: Vec<&str> = Vec::new();
    for (i, consumer) in c.consumers.iter().enumerate() {
        let key = format!("consumers.[{i}]");
        if !is_valid_consumer_name(&consumer.name) {
            return Err(err(
                format!("{key}.name"),
                format!(
                    "invalid consumer name {:?}, must match ^[a-zA-Z0-9_]{{2,}}$",
                    consumer.name
                ),
            ));
        }
        if consumer_names.contains(&consumer.name.as_str()) {
            return Err(err(
                format!("{key}.name"),
                format!("invalid consumer name {}, must be unique", consumer.name),
            ));
        }
        one_of(
            &format!("{key}.type"),
            &consumer.r#type,
            &[
                "postgresql",
                "kafka",
                "nats_jetstream",
                "redis_stream",
                "google_pub_sub",
                "aws_sqs",
                "azure_service_bus",
            ],
        )?;
        if consumer.enabled {
            validate_consumer(&key, consumer)?;
        }
        consumer_names.push(&consumer.name);
    }

    for (section, transforms) in [
        (
            "uni_sse",
            &c.uni_sse.connect_code_to_http_response.transforms,
        ),
        (
            "uni_http_stream",
            &c.uni_http_stream.connect_code_to_http_response.transforms,
        ),
    ] {
        for (i, t) in transforms.iter().enumerate() {
            let key = format!("{section}.connect_code_to_http_response.transforms.[{i}]");
            if t.code == 0 {
                return Err(err(key, "code should be set"));
            }
            if t.to.status_code == 0 {
                return Err(err(key, "status_code should be set in to"));
            }
        }
    }
    Ok(())
}

/// Upstream's per-type checks of an enabled consumer, plus Gyre's refusals: types whose
/// service cannot be run next to Gyre's test suite are not implemented, and refusing them
/// beats starting without the consumer the configuration asks for.
fn validate_consumer(key: &str, c: &Consumer) -> Result<(), ConfigError> {
    let not_served = |reason: &str| {
        Err(err(
            format!("{key}.type"),
            format!(
                "consumer {} ({}): consumers of type {} are not supported by Gyre: {reason}",
                c.name, c.r#type, c.r#type
            ),
        ))
    };
    let tls_refused = |section: &str| {
        Err(err(
            format!("{key}.{section}.tls"),
            format!(
                "consumer {}: the tls object of {section} consumers is not supported by Gyre yet \
                 (use a rediss:// address or an sslmode-free local connection)",
                c.name
            ),
        ))
    };
    let invalid = |section: &str, message: &str| {
        Err(err(
            format!("{key}.{section}"),
            format!("in consumer {} ({}): {message}", c.name, c.r#type),
        ))
    };
    match c.r#type.as_str() {
        "kafka" => not_served(
            "no Kafka-compatible broker can be installed on the machines Gyre is built and \
             tested on (Debian, PyPI and npm carry Kafka clients only), so a Kafka consumer \
             could not be tested; use a postgresql, redis_stream or nats_jetstream consumer",
        ),
        "google_pub_sub" | "aws_sqs" | "azure_service_bus" => not_served(
            "cloud queue services cannot be run where Gyre is tested; use a postgresql, \
             redis_stream or nats_jetstream consumer",
        ),
        "postgresql" => {
            let p = &c.postgresql;
            if p.dsn.is_empty() {
                return invalid("postgresql.dsn", "no Postgres DSN provided");
            }
            if p.outbox_table_name.is_empty() {
                return invalid(
                    "postgresql.outbox_table_name",
                    "no Postgres outbox table name provided",
                );
            }
            if p.tls.enabled {
                return tls_refused("postgresql");
            }
            Ok(())
        }
        "redis_stream" => {
            let r = &c.redis_stream;
            if r.redis.address.is_empty() {
                return invalid("redis_stream.address", "redis address is required");
            }
            if r.redis.address.len() > 1
                || !r.redis.cluster_address.is_empty()
                || !r.redis.sentinel_address.is_empty()
            {
                return invalid(
                    "redis_stream.address",
                    "expected a single Redis server (one address, no cluster or sentinel)",
                );
            }
            if r.streams.is_empty() {
                return invalid("redis_stream.streams", "streams can't be empty");
            }
            if r.consumer_group.is_empty() {
                return invalid("redis_stream.consumer_group", "consumer_group is required");
            }
            if r.publication_data_mode.enabled && r.publication_data_mode.channels_value.is_empty()
            {
                return invalid(
                    "redis_stream.publication_data_mode.channels_value",
                    "channels_value is required when publication data mode is enabled",
                );
            }
            if r.redis.tls.enabled {
                return tls_refused("redis_stream");
            }
            Ok(())
        }
        "nats_jetstream" => {
            let n = &c.nats_jetstream;
            if n.url.is_empty() {
                return invalid("nats_jetstream.url", "url is required");
            }
            if n.stream_name.is_empty() {
                return invalid("nats_jetstream.stream_name", "stream_name is required");
            }
            if n.durable_consumer_name.is_empty() {
                return invalid(
                    "nats_jetstream.durable_consumer_name",
                    "durable_consumer_name is required for consumer",
                );
            }
            if !n.use_existing_consumer && n.deliver_policy != "new" && n.deliver_policy != "all" {
                return invalid(
                    "nats_jetstream.deliver_policy",
                    "deliver_policy must be either 'new' or 'all'",
                );
            }
            if n.publication_data_mode.enabled && n.publication_data_mode.channels_header.is_empty()
            {
                return invalid(
                    "nats_jetstream.publication_data_mode.channels_header",
                    "channels_header is required for publication data mode",
                );
            }
            if n.tls.enabled {
                return tls_refused("nats_jetstream");
            }
            if !n.credentials_file.is_empty() {
                return invalid(
                    "nats_jetstream.credentials_file",
                    "credentials_file is not supported by Gyre yet (use username/password or token)",
                );
            }
            if n.subjects.len() > 1 {
                return invalid(
                    "nats_jetstream.subjects",
                    "Gyre filters a JetStream consumer by one subject at most (several subject \
                     filters need NATS server 2.10); use a wildcard subject",
                );
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

fn validate_proxy(key: &str, p: &Proxy) -> Result<(), ConfigError> {
    if p.timeout.is_zero() {
        return Err(err(format!("{key}.timeout"), "timeout not set"));
    }
    if p.endpoint.is_empty() {
        return Err(err(format!("{key}.endpoint"), "endpoint not set"));
    }
    proxy_endpoint(key, p)?;
    validate_status_transforms(
        &format!("{key}.http.status_to_code_transforms"),
        &p.proxy_common.http.status_to_code_transforms,
    )
}

/// The two flavours: JSON over HTTP(S), or gRPC.
fn proxy_endpoint(key: &str, p: &Proxy) -> Result<(), ConfigError> {
    let lower = p.endpoint.to_ascii_lowercase();
    if ["http://", "https://", "grpc://"]
        .iter()
        .any(|scheme| lower.starts_with(scheme))
    {
        return Ok(());
    }
    Err(err(
        format!("{key}.endpoint"),
        "must start with http://, https:// or grpc://",
    ))
}

fn validate_status_transforms(
    key: &str,
    transforms: &[HttpStatusToCodeTransform],
) -> Result<(), ConfigError> {
    for (i, t) in transforms.iter().enumerate() {
        let key = format!("{key}.[{i}]");
        if t.status_code == 0 {
            return Err(err(key, "status_code should be set"));
        }
        match (t.to_error.code, t.to_disconnect.code) {
            (0, 0) => return Err(err(key, "no error or disconnect code set")),
            (e, d) if e > 0 && d > 0 => {
                return Err(err(
                    key,
                    "only error or disconnect code can be set, not both",
                ));
            }
            _ => {}
        }
        if !t.to_disconnect.reason.is_ascii() || !t.to_error.message.is_ascii() {
            return Err(err(
                key,
                "disconnect reason and error message must be ASCII",
            ));
        }
        if t.to_disconnect.reason.len() > REASON_MAX_LEN
            || t.to_error.message.len() > REASON_MAX_LEN
        {
            return Err(err(
                key,
                format!(
                    "disconnect reason and error message can be up to {REASON_MAX_LEN} characters long"
                ),
            ));
        }
    }
    Ok(())
}

fn validate_channel_options(
    key: &str,
    o: &ChannelOptions,
    proxy_names: &[&str],
    c: &Config,
) -> Result<(), ConfigError> {
    let k = |name: &str| format!("{key}.{name}");
    // A namespace that enables a proxy by the name `default` uses the event's own section,
    // which then needs an endpoint.
    let proxied = [
        (
            o.subscribe_proxy_enabled,
            &o.subscribe_proxy_name,
            "subscribe",
            &c.channel.proxy.subscribe,
        ),
        (
            o.publish_proxy_enabled,
            &o.publish_proxy_name,
            "publish",
            &c.channel.proxy.publish,
        ),
        (
            o.sub_refresh_proxy_enabled,
            &o.sub_refresh_proxy_name,
            "sub_refresh",
            &c.channel.proxy.sub_refresh,
        ),
        (
            o.map.publish_proxy_enabled,
            &o.map.publish_proxy_name,
            "map_publish",
            &c.channel.proxy.map_publish,
        ),
        (
            o.map.remove_proxy_enabled,
            &o.map.remove_proxy_name,
            "map_remove",
            &c.channel.proxy.map_remove,
        ),
    ];
    for (enabled, name, event, proxy) in proxied {
        if enabled && (name.is_empty() || name == DEFAULT_PROXY_NAME) {
            validate_proxy(&format!("channel.proxy.{event}"), proxy)?;
        }
    }
    second_precision(&k("history_ttl"), o.history_ttl)?;
    second_precision(&k("history_meta_ttl"), o.history_meta_ttl)?;
    if (o.history_size != 0) == o.history_ttl.is_zero() {
        return Err(err(
            k("history_size"),
            "both history_size and history_ttl required for history",
        ));
    }
    let meta_ttl = if o.history_meta_ttl.is_zero() {
        c.channel.history_meta_ttl
    } else {
        o.history_meta_ttl
    };
    if meta_ttl < o.history_ttl {
        return Err(err(
            k("history_ttl"),
            format!(
                "history ttl ({}) can not be greater than history meta ttl ({meta_ttl})",
                o.history_ttl
            ),
        ));
    }
    if o.force_recovery && (o.history_size == 0 || o.history_ttl.is_zero()) {
        return Err(err(
            k("force_recovery"),
            "both history_size and history_ttl required for recovery",
        ));
    }
    if o.auto_cache_recover && (!o.force_recovery || o.force_recovery_mode != "cache") {
        return Err(err(
            k("auto_cache_recover"),
            "auto_cache_recover requires force_recovery and force_recovery_mode set to cache",
        ));
    }
    if !o.channel_regex.is_empty()
        && let Err(e) = Regex::new(&o.channel_regex)
    {
        return Err(err(
            k("channel_regex"),
            format!("invalid channel regex {}: {e}", o.channel_regex),
        ));
    }
    if o.subscribe_stream_proxy_enabled
        && (o.subscribe_proxy_enabled || o.publish_proxy_enabled || o.sub_refresh_proxy_enabled)
    {
        return Err(err(
            k("subscribe_stream_proxy_enabled"),
            "can't use subscribe stream proxy together with subscribe, publish or sub refresh proxies",
        ));
    }
    for dt in &o.allowed_delta_types {
        if dt != "fossil" {
            return Err(err(
                k("allowed_delta_types"),
                format!("unknown allowed delta type: {dt:?}"),
            ));
        }
    }
    one_of(
        &k("force_recovery_mode"),
        &o.force_recovery_mode,
        &["", "stream", "cache"],
    )?;
    one_of(
        &k("publication_data_format"),
        &o.publication_data_format,
        PUBLICATION_DATA_FORMATS,
    )?;
    one_of(
        &k("subscription_type"),
        &o.subscription_type,
        &[
            "",
            "stream",
            "map",
            "map_clients",
            "map_users",
            "shared_poll",
        ],
    )?;
    for (prefix, kind) in [
        (&o.map_clients_presence_channel_prefix, "map_clients"),
        (&o.map_users_presence_channel_prefix, "map_users"),
    ] {
        if prefix.is_empty() {
            continue;
        }
        // The presence channel of a channel `x` is `<prefix>x`: its namespace is the
        // prefix's.
        let probe = format!("{prefix}x");
        let presence_type = c
            .channel_options(&probe)
            .ok()
            .map(|(_, ns)| ns.subscription_type.clone());
        if presence_type.as_deref() != Some(kind) {
            return Err(err(
                k(&format!("{kind}_presence_channel_prefix")),
                format!("must name a namespace with subscription_type {kind}"),
            ));
        }
    }
    if o.subscription_type == "shared_poll" {
        if c.shared_poll.hmac_secret_key.is_empty() {
            return Err(err(
                "shared_poll.hmac_secret_key",
                "required when subscription_type is \"shared_poll\"",
            ));
        }
        let name = &o.shared_poll.proxy_name;
        if !name.is_empty() && name != DEFAULT_PROXY_NAME {
            if !proxy_names.contains(&name.as_str()) {
                return Err(err(
                    k("shared_poll.proxy_name"),
                    format!("shared poll proxy with name {name:?} not found"),
                ));
            }
        } else {
            validate_proxy(
                "channel.proxy.shared_poll_refresh",
                &c.channel.proxy.shared_poll_refresh,
            )?;
        }
        one_of(
            &k("shared_poll.mode"),
            &o.shared_poll.mode,
            &["", "versionless", "versioned"],
        )?;
        if o.shared_poll.publish_enabled && o.shared_poll.mode != "versioned" {
            return Err(err(
                k("shared_poll.publish_enabled"),
                "is incompatible with versionless mode (requires mode versioned)",
            ));
        }
    }
    if super::channels::is_map_type(&o.subscription_type) {
        super::channels::map_options(o).map_err(|m| err(k("map"), m))?;
    } else if o.map.remove_client_on_unsubscribe {
        return Err(err(
            k("map.remove_client_on_unsubscribe"),
            "requires a map subscription_type",
        ));
    }

    let proxies = &c.channel.proxy;
    for (what, enabled, name, default_proxy) in [
        (
            "subscribe_proxy",
            o.subscribe_proxy_enabled,
            &o.subscribe_proxy_name,
            &proxies.subscribe,
        ),
        (
            "publish_proxy",
            o.publish_proxy_enabled,
            &o.publish_proxy_name,
            &proxies.publish,
        ),
        (
            "sub_refresh_proxy",
            o.sub_refresh_proxy_enabled,
            &o.sub_refresh_proxy_name,
            &proxies.sub_refresh,
        ),
        (
            "subscribe_stream_proxy",
            o.subscribe_stream_proxy_enabled,
            &o.subscribe_stream_proxy_name,
            &proxies.subscribe_stream,
        ),
        (
            "map.publish_proxy",
            o.map.publish_proxy_enabled,
            &o.map.publish_proxy_name,
            &proxies.map_publish,
        ),
        (
            "map.remove_proxy",
            o.map.remove_proxy_enabled,
            &o.map.remove_proxy_name,
            &proxies.map_remove,
        ),
    ] {
        if !name.is_empty() && !proxy_names.contains(&name.as_str()) {
            return Err(err(
                k(&format!("{what}_name")),
                format!("proxy with name {name:?} not found"),
            ));
        }
        if enabled && name == DEFAULT_PROXY_NAME {
            validate_proxy(
                // `map.publish_proxy` uses `channel.proxy.map_publish`.
                &format!(
                    "channel.proxy.{}",
                    what.trim_end_matches("_proxy").replace('.', "_")
                ),
                default_proxy,
            )?;
        }
    }
    Ok(())
}

/// The PostgreSQL stream broker and controller (experimental, as upstream): TLS to
/// PostgreSQL is not implemented, and connecting in the clear instead of refusing would
/// downgrade what the configuration asks for.
fn validate_postgres_engines(c: &Config) -> Result<(), ConfigError> {
    let pg_broker = c.broker.enabled && c.broker.r#type == "postgres";
    if pg_broker && c.broker.postgres.tls.enabled {
        return Err(err(
            "broker.postgres.tls",
            "TLS to PostgreSQL is not supported by Gyre yet (use a local or tunnelled connection)",
        ));
    }
    if pg_broker && c.broker.postgres.dsn.is_empty() {
        return Err(err(
            "broker.postgres.dsn",
            "is required for broker.type postgres",
        ));
    }
    if c.controller.enabled {
        one_of("controller.type", &c.controller.r#type, &["postgres"])?;
        let p = &c.controller.postgres;
        if p.tls.enabled {
            return Err(err(
                "controller.postgres.tls",
                "TLS to PostgreSQL is not supported by Gyre yet (use a local or tunnelled connection)",
            ));
        }
        if p.dsn.is_empty() {
            return Err(err(
                "controller.postgres.dsn",
                "is required for controller.type postgres",
            ));
        }
    }
    Ok(())
}
