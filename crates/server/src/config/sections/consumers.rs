//! Asynchronous consumers of API commands from queues and databases.

use super::*;

sections! {
    /// Upstream `Consumer`.
    @named Consumer {
        name: String,
        enabled: bool,
        r#type: String,
        postgresql: PostgresConsumerConfig,
        kafka: KafkaConsumerConfig,
        nats_jetstream: NatsJetStreamConsumerConfig,
        redis_stream: RedisStreamConsumerConfig,
        google_pub_sub: GooglePubSubConsumerConfig,
        aws_sqs: AwsSqsConsumerConfig,
        azure_service_bus: AzureServiceBusConsumerConfig,
    }

    /// Upstream `PostgresConsumerConfig`.
    PostgresConsumerConfig {
        dsn: String,
        outbox_table_name: String,
        num_partitions: i64 = 1,
        partition_select_limit: i64 = 100,
        partition_poll_interval: Duration = "300ms",
        partition_notification_channel: String,
        partition_notification_dsn: String,
        tls: TlsConfig,
        use_try_lock: bool,
    }

    /// Upstream `KafkaConsumerConfig`.
    KafkaConsumerConfig {
        brokers: Vec<String>,
        topics: Vec<String>,
        consumer_group: String,
        max_poll_records: i64 = 100,
        fetch_max_bytes: i32,
        fetch_max_wait: Duration = "500ms",
        fetch_read_uncommitted: bool,
        partition_queue_max_size: i64 = 1000,
        dial_timeout: Duration = "3s",
        tls: TlsConfig,
        sasl_mechanism: String,
        sasl_user: String,
        sasl_password: String,
        assume_role_arn: String,
        instance_id: String,
        method_header: String = "centrifugo-method",
        publication_data_mode: KafkaPublicationDataModeConfig,
    }

    /// Upstream `KafkaPublicationDataModeConfig`.
    KafkaPublicationDataModeConfig {
        enabled: bool,
        channels_header: String = "centrifugo-channels",
        idempotency_key_header: String = "centrifugo-idempotency-key",
        delta_header: String = "centrifugo-delta",
        version_header: String = "centrifugo-version",
        version_epoch_header: String = "centrifugo-version-epoch",
        tags_header_prefix: String = "centrifugo-tag-",
    }

    /// Upstream `RedisStreamConsumerConfig`.
    RedisStreamConsumerConfig {
        redis: @flatten Redis,
        streams: Vec<String>,
        consumer_group: String,
        visibility_timeout: Duration = "30s",
        num_workers: i64 = 1,
        payload_value: String = "payload",
        method_value: String = "method",
        publication_data_mode: RedisStreamPublicationDataModeConfig,
    }

    /// Upstream `RedisStreamPublicationDataModeConfig`.
    RedisStreamPublicationDataModeConfig {
        enabled: bool,
        channels_value: String = "centrifugo-channels",
        idempotency_key_value: String = "centrifugo-idempotency-key",
        delta_value: String = "centrifugo-delta",
        version_value: String = "centrifugo-version",
        version_epoch_value: String = "centrifugo-version-epoch",
        tags_value_prefix: String = "centrifugo-tag-",
    }

    /// Upstream `NatsJetStreamConsumerConfig`.
    NatsJetStreamConsumerConfig {
        url: String = "nats://127.0.0.1:4222",
        credentials_file: String,
        username: String,
        password: String,
        token: String,
        stream_name: String,
        use_existing_consumer: bool,
        subjects: Vec<String>,
        durable_consumer_name: String,
        deliver_policy: String = "new",
        max_ack_pending: i64 = 100,
        method_header: String = "centrifugo-method",
        publication_data_mode: NatsJetStreamPublicationDataModeConfig,
        tls: TlsConfig,
    }

    /// Upstream `NatsJetStreamPublicationDataModeConfig`.
    NatsJetStreamPublicationDataModeConfig {
        enabled: bool,
        channels_header: String = "centrifugo-channels",
        idempotency_key_header: String = "centrifugo-idempotency-key",
        delta_header: String = "centrifugo-delta",
        version_header: String = "centrifugo-version",
        version_epoch_header: String = "centrifugo-version-epoch",
        tags_header_prefix: String = "centrifugo-tag-",
    }

    /// Upstream `GooglePubSubConsumerConfig`.
    GooglePubSubConsumerConfig {
        project_id: String,
        subscriptions: Vec<String>,
        max_outstanding_messages: i64 = 100,
        max_outstanding_bytes: i64 = 1000000,
        auth_mechanism: String,
        credentials_file: String,
        method_attribute: String = "centrifugo-method",
        publication_data_mode: GooglePubSubPublicationDataModeConfig,
    }

    /// Upstream `GooglePubSubPublicationDataModeConfig`.
    GooglePubSubPublicationDataModeConfig {
        enabled: bool,
        channels_attribute: String = "centrifugo-channels",
        idempotency_key_attribute: String = "centrifugo-idempotency-key",
        delta_attribute: String = "centrifugo-delta",
        version_attribute: String = "centrifugo-version",
        version_epoch_attribute: String = "centrifugo-version-epoch",
        tags_attribute_prefix: String = "centrifugo-tag-",
    }

    /// Upstream `AzureServiceBusConsumerConfig`.
    AzureServiceBusConsumerConfig {
        connection_string: String,
        use_azure_identity: bool,
        fully_qualified_namespace: String,
        tenant_id: String,
        client_id: String,
        client_secret: String,
        queues: Vec<String>,
        use_sessions: bool,
        max_concurrent_calls: i64 = 1,
        max_receive_messages: i64 = 1,
        method_property: String = "centrifugo-method",
        publication_data_mode: AzureServiceBusPublicationDataModeConfig,
    }

    /// Upstream `AzureServiceBusPublicationDataModeConfig`.
    AzureServiceBusPublicationDataModeConfig {
        enabled: bool,
        channels_property: String = "centrifugo-channels",
        idempotency_key_property: String = "centrifugo-idempotency-key",
        delta_property: String = "centrifugo-delta",
        version_property: String = "centrifugo-version",
        version_epoch_property: String = "centrifugo-version-epoch",
        tags_property_prefix: String = "centrifugo-tag-",
    }

    /// Upstream `AwsSqsConsumerConfig`.
    AwsSqsConsumerConfig {
        queues: Vec<String>,
        sns_envelope: bool,
        region: String,
        max_number_of_messages: i32 = 10,
        wait_time_time: Duration = "20s",
        visibility_timeout: Duration = "30s",
        max_concurrency: i64 = 1,
        credentials_profile: String,
        assume_role_arn: String,
        method_attribute: String = "centrifugo-method",
        localstack_endpoint: String,
        publication_data_mode: AwsPublicationDataModeConfig,
    }

    /// Upstream `AWSPublicationDataModeConfig`.
    AwsPublicationDataModeConfig {
        enabled: bool,
        channels_attribute: String = "centrifugo-channels",
        idempotency_key_attribute: String = "centrifugo-idempotency-key",
        delta_attribute: String = "centrifugo-delta",
        version_attribute: String = "centrifugo-version",
        version_epoch_attribute: String = "centrifugo-version-epoch",
        tags_attribute_prefix: String = "centrifugo-tag-",
    }
}
