//! Engine, broker, presence manager, map broker and controller, with their Redis, NATS and
//! PostgreSQL settings.

use std::collections::BTreeMap;

use super::*;

sections! {
    /// Upstream `Engine`.
    Engine {
        r#type: String = "memory",
        redis: RedisEngine,
        /// Gyre extension: the memory engine's on-disk history store.
        memory: MemoryEngine,
    }

    /// Gyre extension (Centrifugo's memory engine has no settings): history streams of the
    /// memory engine kept on disk, so that they survive a restart or a crash with their
    /// offsets and epochs. See `docs/design/durable-history.md`.
    MemoryEngine {
        /// Gyre extension: directory of the on-disk history store (created if missing).
        /// Empty: history lives in memory only, as in Centrifugo.
        data_dir: String,
        /// Gyre extension: `"interval"` (default) syncs written history to the disk every
        /// `sync_interval`; `"always"` acknowledges a publish only once it is synced.
        /// Either way a crash of the process loses nothing delivered.
        sync: String = "interval",
        /// Gyre extension: how often `sync: "interval"` syncs (default 10ms).
        sync_interval: Duration = "10ms",
    }

    /// Upstream `Broker`.
    Broker {
        enabled: bool,
        r#type: String = "memory",
        redis: RedisBroker,
        nats: NatsBroker,
        postgres: PostgresStreamBroker,
        #[serde(skip_serializing_if = "Option::is_none")]
        redisnats: Option<RedisNatsBroker>,
    }

    /// Upstream `PresenceManager`.
    PresenceManager {
        enabled: bool,
        r#type: String = "memory",
        redis: RedisPresenceManager,
    }

    /// Upstream `MapBroker`.
    MapBroker {
        r#type: String = "memory",
        redis: RedisMapBroker,
        postgres: PostgresMapBroker,
    }

    /// Upstream `Controller`.
    Controller {
        enabled: bool,
        r#type: String,
        postgres: PostgresController,
    }

    /// Upstream `RedisEngine`.
    RedisEngine {
        redis_prefixed: @flatten RedisPrefixed,
        engine_redis_broker: @flatten EngineRedisBroker,
        engine_redis_presence_manager: @flatten EngineRedisPresenceManager,
    }

    /// Upstream `RedisBroker`.
    RedisBroker {
        redis_prefixed: @flatten RedisPrefixed,
        redis_broker_common: @flatten RedisBrokerCommon,
    }

    /// Upstream `RedisBrokerCommon`.
    RedisBrokerCommon {
        history_use_lists: bool,
    }

    /// Upstream `EngineRedisBroker`.
    EngineRedisBroker {
        redis_broker_common: @flatten RedisBrokerCommon,
    }

    /// Upstream `RedisPresenceManager`.
    RedisPresenceManager {
        redis_prefixed: @flatten RedisPrefixed,
        redis_presence_manager_common: @flatten RedisPresenceManagerCommon,
    }

    /// Upstream `RedisPresenceManagerCommon`.
    RedisPresenceManagerCommon {
        presence_ttl: Duration = "1m",
        presence_hash_field_ttl: bool,
        presence_user_mapping: bool,
    }

    /// Upstream `EngineRedisPresenceManager`.
    EngineRedisPresenceManager {
        redis_presence_manager_common: @flatten RedisPresenceManagerCommon,
    }

    /// Upstream `RedisNatsBroker`.
    RedisNatsBroker {
        redis: RedisBroker,
        nats: NatsBroker,
    }

    /// Upstream `RedisMapBroker`.
    RedisMapBroker {
        redis_prefixed: @flatten RedisPrefixed,
        redis_map_broker_common: @flatten RedisMapBrokerCommon,
    }

    /// Upstream `RedisMapBrokerCommon`.
    RedisMapBrokerCommon {
        cleanup_interval: Duration = "1s",
        cleanup_batch_size: i64 = 100,
        idempotent_result_ttl: Duration = "5m",
        skip_pub_sub: bool,
    }

    /// Upstream `Redis`.
    Redis {
        address: Vec<String> = ["redis://127.0.0.1:6379"],
        connect_timeout: Duration = "1s",
        io_timeout: Duration = "4s",
        db: i64,
        user: String,
        password: String,
        client_name: String,
        force_resp2: bool,
        cluster_address: Vec<String>,
        tls: TlsConfig,
        sentinel_address: Vec<String>,
        sentinel_user: String,
        sentinel_password: String,
        sentinel_master_name: String,
        sentinel_client_name: String,
        sentinel_tls: TlsConfig,
        replica_client: RedisReplicaClient,
    }

    /// Upstream `RedisPrefixed`.
    RedisPrefixed {
        prefix: String = "centrifugo",
        redis: @flatten Redis,
    }

    /// Upstream `RedisReplicaClient`.
    RedisReplicaClient {
        enabled: bool,
    }

    /// Upstream `NatsBroker`.
    NatsBroker {
        nats_prefixed: @flatten NatsPrefixed,
        allow_wildcards: bool,
        raw_mode: RawModeConfig,
    }

    /// Upstream `NatsPrefixed`.
    NatsPrefixed {
        prefix: String = "centrifugo",
        nats_common: @flatten NatsCommon,
    }

    /// Upstream `NatsCommon`.
    NatsCommon {
        url: String = "nats://localhost:4222",
        dial_timeout: Duration = "1s",
        write_timeout: Duration = "1s",
        tls: TlsConfig,
    }

    /// Upstream `RawModeConfig`.
    RawModeConfig {
        enabled: bool,
        channel_replacements: BTreeMap<String, String>,
        prefix: String,
    }

    /// Upstream `PostgresStreamBroker`.
    PostgresStreamBroker {
        dsn: String,
        tls: TlsConfig,
        pool_size: i64 = 16,
        num_shards: i64 = 8,
        cleanup_interval: Duration = "1m",
        idempotent_result_ttl: Duration = "5m",
        binary_data: bool,
        stream_retention: Duration = "24h",
        use_notify: bool,
        notify_dsn: String,
        table_prefix: String = "cf",
        skip_schema_init: bool,
        outbox: PostgresMapBrokerOutbox,
        partition_lookahead_days: i64 = 2,
        partition_retention_days: i64 = 7,
    }

    /// Upstream `PostgresMapBroker`.
    PostgresMapBroker {
        dsn: String,
        tls: TlsConfig,
        pool_size: i64 = 16,
        num_shards: i64 = 8,
        ttl_check_interval: Duration = "1s",
        cleanup_interval: Duration = "1m",
        idempotent_result_ttl: Duration = "5m",
        binary_data: bool,
        stream_retention: Duration = "24h",
        use_notify: bool,
        notify_dsn: String,
        table_prefix: String = "cf",
        skip_schema_init: bool,
        outbox: PostgresMapBrokerOutbox,
        partition_lookahead_days: i64 = 2,
        partition_retention_days: i64 = 7,
    }

    /// Upstream `PostgresMapBrokerOutbox`.
    PostgresMapBrokerOutbox {
        poll_interval: Duration = "100ms",
        batch_size: i64 = 1000,
    }

    /// Upstream `PostgresController`.
    PostgresController {
        dsn: String,
        tls: TlsConfig,
        pool_size: i64 = 8,
        num_shards: i64 = 1,
        table_prefix: String = "cf",
        poll_interval: Duration = "50ms",
        use_notify: bool,
        notify_dsn: String,
        partition_retention_days: i64 = 1,
        partition_lookahead_days: i64 = 2,
        partition_cleanup_interval: Duration = "1m",
        batch_size: i64 = 1000,
        skip_schema_init: bool,
    }
}
