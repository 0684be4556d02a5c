//! Centrifugo v6 configuration tree: one struct per upstream section, v6 key names
//! and v6 defaults (the `default:` struct tags of `internal/configtypes`).
//!
//! Mechanically derived from the upstream key names and defaults, then maintained here
//! by hand. Every struct also describes its keys as a [`Shape`] tree (`fields()`), which
//! drives env var names, unknown-key detection and `defaultenv`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::duration::Duration;
use super::schema::{Schema, Shape};

/// Upstream `HTTPServer`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct HttpServer {
    /// `address`.
    pub(crate) address: String,
    /// `port` (default `8000`).
    pub(crate) port: i64,
    /// `internal_address`.
    pub(crate) internal_address: String,
    /// `internal_port`.
    pub(crate) internal_port: String,
    /// `tls`.
    pub(crate) tls: TlsConfig,
    /// `tls_autocert`.
    pub(crate) tls_autocert: TlsAutocert,
    /// `tls_external`.
    pub(crate) tls_external: bool,
    /// `internal_tls`.
    pub(crate) internal_tls: TlsConfig,
    /// `http3`.
    pub(crate) http3: Http3,
    /// `h2c_external`.
    pub(crate) h2c_external: bool,
}

impl Default for HttpServer {
    fn default() -> Self {
        Self {
            address: Default::default(),
            port: 8000,
            internal_address: Default::default(),
            internal_port: Default::default(),
            tls: Default::default(),
            tls_autocert: Default::default(),
            tls_external: Default::default(),
            internal_tls: Default::default(),
            http3: Default::default(),
            h2c_external: Default::default(),
        }
    }
}

impl Schema for HttpServer {
    fn fields() -> Vec<(&'static str, Shape)> {
        vec![
            ("address", Shape::Str),
            ("port", Shape::Int),
            ("internal_address", Shape::Str),
            ("internal_port", Shape::Str),
            ("tls", Shape::Struct(TlsConfig::fields())),
            ("tls_autocert", Shape::Struct(TlsAutocert::fields())),
            ("tls_external", Shape::Bool),
            ("internal_tls", Shape::Struct(TlsConfig::fields())),
            ("http3", Shape::Struct(Http3::fields())),
            ("h2c_external", Shape::Bool),
        ]
    }
}

/// Upstream `Log`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct Log {
    /// `level` (default `info`).
    pub(crate) level: String,
    /// `file`.
    pub(crate) file: String,
}

impl Default for Log {
    fn default() -> Self {
        Self {
            level: "info".to_owned(),
            file: Default::default(),
        }
    }
}

impl Schema for Log {
    fn fields() -> Vec<(&'static str, Shape)> {
        vec![("level", Shape::Str), ("file", Shape::Str)]
    }
}

/// Upstream `Token`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub(crate) struct Token {
    /// `hmac_secret_key`.
    pub(crate) hmac_secret_key: String,
    /// `hmac_previous_secret_key`.
    pub(crate) hmac_previous_secret_key: String,
    /// `hmac_previous_secret_key_valid_until`.
    pub(crate) hmac_previous_secret_key_valid_until: i64,
    /// `rsa_public_key`.
    pub(crate) rsa_public_key: String,
    /// `ecdsa_public_key`.
    pub(crate) ecdsa_public_key: String,
    /// `jwks_public_endpoint`.
    pub(crate) jwks_public_endpoint: String,
    /// `audience`.
    pub(crate) audience: String,
    /// `audience_regex`.
    pub(crate) audience_regex: String,
    /// `issuer`.
    pub(crate) issuer: String,
    /// `issuer_regex`.
    pub(crate) issuer_regex: String,
    /// `user_id_claim`.
    pub(crate) user_id_claim: String,
    /// `insecure_skip_jwks_endpoint_safety_check`.
    pub(crate) insecure_skip_jwks_endpoint_safety_check: bool,
}

impl Schema for Token {
    fn fields() -> Vec<(&'static str, Shape)> {
        vec![
            ("hmac_secret_key", Shape::Str),
            ("hmac_previous_secret_key", Shape::Str),
            ("hmac_previous_secret_key_valid_until", Shape::Int),
            ("rsa_public_key", Shape::Str),
            ("ecdsa_public_key", Shape::Str),
            ("jwks_public_endpoint", Shape::Str),
            ("audience", Shape::Str),
            ("audience_regex", Shape::Str),
            ("issuer", Shape::Str),
            ("issuer_regex", Shape::Str),
            ("user_id_claim", Shape::Str),
            ("insecure_skip_jwks_endpoint_safety_check", Shape::Bool),
        ]
    }
}

/// Upstream `SubscriptionToken`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub(crate) struct SubscriptionToken {
    /// `enabled`.
    pub(crate) enabled: bool,
    /// Keys of `Token`, inlined (Go embedded struct).
    #[serde(flatten)]
    pub(crate) token: Token,
}

impl Schema for SubscriptionToken {
    fn fields() -> Vec<(&'static str, Shape)> {
        let mut fields = vec![("enabled", Shape::Bool)];
        fields.extend(Token::fields());
        fields
    }
}

/// Upstream `SharedPoll`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub(crate) struct SharedPoll {
    /// `hmac_secret_key`.
    pub(crate) hmac_secret_key: String,
    /// `hmac_previous_secret_key`.
    pub(crate) hmac_previous_secret_key: String,
    /// `hmac_previous_secret_key_valid_until`.
    pub(crate) hmac_previous_secret_key_valid_until: i64,
    /// `concurrency_limit`.
    pub(crate) concurrency_limit: i64,
}

impl Schema for SharedPoll {
    fn fields() -> Vec<(&'static str, Shape)> {
        vec![
            ("hmac_secret_key", Shape::Str),
            ("hmac_previous_secret_key", Shape::Str),
            ("hmac_previous_secret_key_valid_until", Shape::Int),
            ("concurrency_limit", Shape::Int),
        ]
    }
}

/// Upstream `HTTP3`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub(crate) struct Http3 {
    /// `enabled`.
    pub(crate) enabled: bool,
}

impl Schema for Http3 {
    fn fields() -> Vec<(&'static str, Shape)> {
        vec![("enabled", Shape::Bool)]
    }
}

/// Upstream `WebSocket`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct WebSocket {
    /// `disabled`.
    pub(crate) disabled: bool,
    /// `handler_prefix` (default `/connection/websocket`).
    pub(crate) handler_prefix: String,
    /// `compression`.
    pub(crate) compression: bool,
    /// `compression_min_size`.
    pub(crate) compression_min_size: i64,
    /// `compression_level` (default `1`).
    pub(crate) compression_level: i64,
    /// `read_buffer_size`.
    pub(crate) read_buffer_size: i64,
    /// `use_write_buffer_pool`.
    pub(crate) use_write_buffer_pool: bool,
    /// `write_buffer_size`.
    pub(crate) write_buffer_size: i64,
    /// `write_timeout` (default `1000ms`).
    pub(crate) write_timeout: Duration,
    /// `message_size_limit` (default `65536`).
    pub(crate) message_size_limit: i64,
    /// `decompressed_message_size_limit`.
    pub(crate) decompressed_message_size_limit: i64,
}

impl Default for WebSocket {
    fn default() -> Self {
        Self {
            disabled: Default::default(),
            handler_prefix: "/connection/websocket".to_owned(),
            compression: Default::default(),
            compression_min_size: Default::default(),
            compression_level: 1,
            read_buffer_size: Default::default(),
            use_write_buffer_pool: Default::default(),
            write_buffer_size: Default::default(),
            write_timeout: Duration::from_secs(1),
            message_size_limit: 65536,
            decompressed_message_size_limit: Default::default(),
        }
    }
}

impl Schema for WebSocket {
    fn fields() -> Vec<(&'static str, Shape)> {
        vec![
            ("disabled", Shape::Bool),
            ("handler_prefix", Shape::Str),
            ("compression", Shape::Bool),
            ("compression_min_size", Shape::Int),
            ("compression_level", Shape::Int),
            ("read_buffer_size", Shape::Int),
            ("use_write_buffer_pool", Shape::Bool),
            ("write_buffer_size", Shape::Int),
            ("write_timeout", Shape::Duration),
            ("message_size_limit", Shape::Int),
            ("decompressed_message_size_limit", Shape::Int),
        ]
    }
}

/// Upstream `SSE`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct Sse {
    /// `enabled`.
    pub(crate) enabled: bool,
    /// `handler_prefix` (default `/connection/sse`).
    pub(crate) handler_prefix: String,
    /// `max_request_body_size` (default `65536`).
    pub(crate) max_request_body_size: i64,
}

impl Default for Sse {
    fn default() -> Self {
        Self {
            enabled: Default::default(),
            handler_prefix: "/connection/sse".to_owned(),
            max_request_body_size: 65536,
        }
    }
}

impl Schema for Sse {
    fn fields() -> Vec<(&'static str, Shape)> {
        vec![
            ("enabled", Shape::Bool),
            ("handler_prefix", Shape::Str),
            ("max_request_body_size", Shape::Int),
        ]
    }
}

/// Upstream `HTTPStream`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct HttpStream {
    /// `enabled`.
    pub(crate) enabled: bool,
    /// `handler_prefix` (default `/connection/http_stream`).
    pub(crate) handler_prefix: String,
    /// `max_request_body_size` (default `65536`).
    pub(crate) max_request_body_size: i64,
}

impl Default for HttpStream {
    fn default() -> Self {
        Self {
            enabled: Default::default(),
            handler_prefix: "/connection/http_stream".to_owned(),
            max_request_body_size: 65536,
        }
    }
}

impl Schema for HttpStream {
    fn fields() -> Vec<(&'static str, Shape)> {
        vec![
            ("enabled", Shape::Bool),
            ("handler_prefix", Shape::Str),
            ("max_request_body_size", Shape::Int),
        ]
    }
}

/// Upstream `WebTransport`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct WebTransport {
    /// `enabled`.
    pub(crate) enabled: bool,
    /// `handler_prefix` (default `/connection/webtransport`).
    pub(crate) handler_prefix: String,
    /// `message_size_limit` (default `65536`).
    pub(crate) message_size_limit: i64,
}

impl Default for WebTransport {
    fn default() -> Self {
        Self {
            enabled: Default::default(),
            handler_prefix: "/connection/webtransport".to_owned(),
            message_size_limit: 65536,
        }
    }
}

impl Schema for WebTransport {
    fn fields() -> Vec<(&'static str, Shape)> {
        vec![
            ("enabled", Shape::Bool),
            ("handler_prefix", Shape::Str),
            ("message_size_limit", Shape::Int),
        ]
    }
}

/// Upstream `UniWebSocket`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct UniWebSocket {
    /// `enabled`.
    pub(crate) enabled: bool,
    /// `handler_prefix` (default `/connection/uni_websocket`).
    pub(crate) handler_prefix: String,
    /// `compression`.
    pub(crate) compression: bool,
    /// `compression_min_size`.
    pub(crate) compression_min_size: i64,
    /// `compression_level` (default `1`).
    pub(crate) compression_level: i64,
    /// `read_buffer_size`.
    pub(crate) read_buffer_size: i64,
    /// `use_write_buffer_pool`.
    pub(crate) use_write_buffer_pool: bool,
    /// `write_buffer_size`.
    pub(crate) write_buffer_size: i64,
    /// `write_timeout` (default `1000ms`).
    pub(crate) write_timeout: Duration,
    /// `message_size_limit` (default `65536`).
    pub(crate) message_size_limit: i64,
    /// `decompressed_message_size_limit`.
    pub(crate) decompressed_message_size_limit: i64,
    /// `disable_closing_handshake`.
    pub(crate) disable_closing_handshake: bool,
    /// `disable_disconnect_push`.
    pub(crate) disable_disconnect_push: bool,
    /// `join_push_messages`.
    pub(crate) join_push_messages: bool,
}

impl Default for UniWebSocket {
    fn default() -> Self {
        Self {
            enabled: Default::default(),
            handler_prefix: "/connection/uni_websocket".to_owned(),
            compression: Default::default(),
            compression_min_size: Default::default(),
            compression_level: 1,
            read_buffer_size: Default::default(),
            use_write_buffer_pool: Default::default(),
            write_buffer_size: Default::default(),
            write_timeout: Duration::from_secs(1),
            message_size_limit: 65536,
            decompressed_message_size_limit: Default::default(),
            disable_closing_handshake: Default::default(),
            disable_disconnect_push: Default::default(),
            join_push_messages: Default::default(),
        }
    }
}

impl Schema for UniWebSocket {
    fn fields() -> Vec<(&'static str, Shape)> {
        vec![
            ("enabled", Shape::Bool),
            ("handler_prefix", Shape::Str),
            ("compression", Shape::Bool),
            ("compression_min_size", Shape::Int),
            ("compression_level", Shape::Int),
            ("read_buffer_size", Shape::Int),
            ("use_write_buffer_pool", Shape::Bool),
            ("write_buffer_size", Shape::Int),
            ("write_timeout", Shape::Duration),
            ("message_size_limit", Shape::Int),
            ("decompressed_message_size_limit", Shape::Int),
            ("disable_closing_handshake", Shape::Bool),
            ("disable_disconnect_push", Shape::Bool),
            ("join_push_messages", Shape::Bool),
        ]
    }
}

/// Upstream `UniHTTPStream`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct UniHttpStream {
    /// `enabled`.
    pub(crate) enabled: bool,
    /// `handler_prefix` (default `/connection/uni_http_stream`).
    pub(crate) handler_prefix: String,
    /// `max_request_body_size` (default `65536`).
    pub(crate) max_request_body_size: i64,
    /// `connect_code_to_http_response`.
    pub(crate) connect_code_to_http_response: ConnectCodeToHttpResponse,
}

impl Default for UniHttpStream {
    fn default() -> Self {
        Self {
            enabled: Default::default(),
            handler_prefix: "/connection/uni_http_stream".to_owned(),
            max_request_body_size: 65536,
            connect_code_to_http_response: Default::default(),
        }
    }
}

impl Schema for UniHttpStream {
    fn fields() -> Vec<(&'static str, Shape)> {
        vec![
            ("enabled", Shape::Bool),
            ("handler_prefix", Shape::Str),
            ("max_request_body_size", Shape::Int),
            (
                "connect_code_to_http_response",
                Shape::Struct(ConnectCodeToHttpResponse::fields()),
            ),
        ]
    }
}

/// Upstream `UniSSE`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct UniSse {
    /// `enabled`.
    pub(crate) enabled: bool,
    /// `handler_prefix` (default `/connection/uni_sse`).
    pub(crate) handler_prefix: String,
    /// `max_request_body_size` (default `65536`).
    pub(crate) max_request_body_size: i64,
    /// `connect_code_to_http_response`.
    pub(crate) connect_code_to_http_response: ConnectCodeToHttpResponse,
}

impl Default for UniSse {
    fn default() -> Self {
        Self {
            enabled: Default::default(),
            handler_prefix: "/connection/uni_sse".to_owned(),
            max_request_body_size: 65536,
            connect_code_to_http_response: Default::default(),
        }
    }
}

impl Schema for UniSse {
    fn fields() -> Vec<(&'static str, Shape)> {
        vec![
            ("enabled", Shape::Bool),
            ("handler_prefix", Shape::Str),
            ("max_request_body_size", Shape::Int),
            (
                "connect_code_to_http_response",
                Shape::Struct(ConnectCodeToHttpResponse::fields()),
            ),
        ]
    }
}

/// Upstream `ConnInit`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct ConnInit {
    /// `enabled`.
    pub(crate) enabled: bool,
    /// `handler_prefix` (default `/connection/init`).
    pub(crate) handler_prefix: String,
}

impl Default for ConnInit {
    fn default() -> Self {
        Self {
            enabled: Default::default(),
            handler_prefix: "/connection/init".to_owned(),
        }
    }
}

impl Schema for ConnInit {
    fn fields() -> Vec<(&'static str, Shape)> {
        vec![("enabled", Shape::Bool), ("handler_prefix", Shape::Str)]
    }
}

/// Upstream `ConnectCodeToHTTPResponse`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub(crate) struct ConnectCodeToHttpResponse {
    /// `enabled`.
    pub(crate) enabled: bool,
    /// `transforms`.
    pub(crate) transforms: Vec<ConnectCodeToHttpResponseTransform>,
}

impl Schema for ConnectCodeToHttpResponse {
    fn fields() -> Vec<(&'static str, Shape)> {
        vec![
            ("enabled", Shape::Bool),
            (
                "transforms",
                Shape::List {
                    item: ConnectCodeToHttpResponseTransform::fields(),
                    named: false,
                },
            ),
        ]
    }
}

/// Upstream `ConnectCodeToHTTPResponseTransform`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub(crate) struct ConnectCodeToHttpResponseTransform {
    /// `code`.
    pub(crate) code: u32,
    /// `to`.
    pub(crate) to: TransformedConnectErrorHttpResponse,
}

impl Schema for ConnectCodeToHttpResponseTransform {
    fn fields() -> Vec<(&'static str, Shape)> {
        vec![
            ("code", Shape::Uint),
            (
                "to",
                Shape::Struct(TransformedConnectErrorHttpResponse::fields()),
            ),
        ]
    }
}

/// Upstream `TransformedConnectErrorHttpResponse`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub(crate) struct TransformedConnectErrorHttpResponse {
    /// `status_code`.
    pub(crate) status_code: i64,
    /// `body`.
    pub(crate) body: String,
}

impl Schema for TransformedConnectErrorHttpResponse {
    fn fields() -> Vec<(&'static str, Shape)> {
        vec![("status_code", Shape::Int), ("body", Shape::Str)]
    }
}

/// Upstream `UniGRPC`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct UniGrpc {
    /// `enabled`.
    pub(crate) enabled: bool,
    /// `address`.
    pub(crate) address: String,
    /// `port` (default `11000`).
    pub(crate) port: i64,
    /// `max_receive_message_size`.
    pub(crate) max_receive_message_size: i64,
    /// `tls`.
    pub(crate) tls: TlsConfig,
}

impl Default for UniGrpc {
    fn default() -> Self {
        Self {
            enabled: Default::default(),
            address: Default::default(),
            port: 11000,
            max_receive_message_size: Default::default(),
            tls: Default::default(),
        }
    }
}

impl Schema for UniGrpc {
    fn fields() -> Vec<(&'static str, Shape)> {
        vec![
            ("enabled", Shape::Bool),
            ("address", Shape::Str),
            ("port", Shape::Int),
            ("max_receive_message_size", Shape::Int),
            ("tls", Shape::Struct(TlsConfig::fields())),
        ]
    }
}

/// Upstream `PingPong`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct PingPong {
    /// `ping_interval` (default `25s`).
    pub(crate) ping_interval: Duration,
    /// `pong_timeout` (default `8s`).
    pub(crate) pong_timeout: Duration,
}

impl Default for PingPong {
    fn default() -> Self {
        Self {
            ping_interval: Duration::from_secs(25),
            pong_timeout: Duration::from_secs(8),
        }
    }
}

impl Schema for PingPong {
    fn fields() -> Vec<(&'static str, Shape)> {
        vec![
            ("ping_interval", Shape::Duration),
            ("pong_timeout", Shape::Duration),
        ]
    }
}

/// Upstream `NatsPrefixed`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct NatsPrefixed {
    /// `prefix` (default `centrifugo`).
    pub(crate) prefix: String,
    /// Keys of `NatsCommon`, inlined (Go embedded struct).
    #[serde(flatten)]
    pub(crate) nats_common: NatsCommon,
}

impl Default for NatsPrefixed {
    fn default() -> Self {
        Self {
            prefix: "centrifugo".to_owned(),
            nats_common: Default::default(),
        }
    }
}

impl Schema for NatsPrefixed {
    fn fields() -> Vec<(&'static str, Shape)> {
        let mut fields = vec![("prefix", Shape::Str)];
        fields.extend(NatsCommon::fields());
        fields
    }
}

/// Upstream `NatsCommon`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct NatsCommon {
    /// `url` (default `nats://localhost:4222`).
    pub(crate) url: String,
    /// `dial_timeout` (default `1s`).
    pub(crate) dial_timeout: Duration,
    /// `write_timeout` (default `1s`).
    pub(crate) write_timeout: Duration,
    /// `tls`.
    pub(crate) tls: TlsConfig,
}

impl Default for NatsCommon {
    fn default() -> Self {
        Self {
            url: "nats://localhost:4222".to_owned(),
            dial_timeout: Duration::from_secs(1),
            write_timeout: Duration::from_secs(1),
            tls: Default::default(),
        }
    }
}

impl Schema for NatsCommon {
    fn fields() -> Vec<(&'static str, Shape)> {
        vec![
            ("url", Shape::Str),
            ("dial_timeout", Shape::Duration),
            ("write_timeout", Shape::Duration),
            ("tls", Shape::Struct(TlsConfig::fields())),
        ]
    }
}

/// Upstream `NatsBroker`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub(crate) struct NatsBroker {
    /// Keys of `NatsPrefixed`, inlined (Go embedded struct).
    #[serde(flatten)]
    pub(crate) nats_prefixed: NatsPrefixed,
    /// `allow_wildcards`.
    pub(crate) allow_wildcards: bool,
    /// `raw_mode`.
    pub(crate) raw_mode: RawModeConfig,
}

impl Schema for NatsBroker {
    fn fields() -> Vec<(&'static str, Shape)> {
        let mut fields = NatsPrefixed::fields();
        fields.extend([
            ("allow_wildcards", Shape::Bool),
            ("raw_mode", Shape::Struct(RawModeConfig::fields())),
        ]);
        fields
    }
}

/// Upstream `RawModeConfig`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub(crate) struct RawModeConfig {
    /// `enabled`.
    pub(crate) enabled: bool,
    /// `channel_replacements`.
    pub(crate) channel_replacements: BTreeMap<String, String>,
    /// `prefix`.
    pub(crate) prefix: String,
}

impl Schema for RawModeConfig {
    fn fields() -> Vec<(&'static str, Shape)> {
        vec![
            ("enabled", Shape::Bool),
            ("channel_replacements", Shape::StrMap),
            ("prefix", Shape::Str),
        ]
    }
}

/// Upstream `OpenTelemetry`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub(crate) struct OpenTelemetry {
    /// `enabled`.
    pub(crate) enabled: bool,
    /// `api`.
    pub(crate) api: bool,
    /// `consuming`.
    pub(crate) consuming: bool,
    /// `google_cloud_adc_auth`.
    pub(crate) google_cloud_adc_auth: bool,
}

impl Schema for OpenTelemetry {
    fn fields() -> Vec<(&'static str, Shape)> {
        vec![
            ("enabled", Shape::Bool),
            ("api", Shape::Bool),
            ("consuming", Shape::Bool),
            ("google_cloud_adc_auth", Shape::Bool),
        ]
    }
}

/// Upstream `HttpAPI`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct HttpApi {
    /// `disabled`.
    pub(crate) disabled: bool,
    /// `handler_prefix` (default `/api`).
    pub(crate) handler_prefix: String,
    /// `key`.
    pub(crate) key: String,
    /// `error_mode`.
    pub(crate) error_mode: String,
    /// `external`.
    pub(crate) external: bool,
    /// `insecure`.
    pub(crate) insecure: bool,
}

impl Default for HttpApi {
    fn default() -> Self {
        Self {
            disabled: Default::default(),
            handler_prefix: "/api".to_owned(),
            key: Default::default(),
            error_mode: Default::default(),
            external: Default::default(),
            insecure: Default::default(),
        }
    }
}

impl Schema for HttpApi {
    fn fields() -> Vec<(&'static str, Shape)> {
        vec![
            ("disabled", Shape::Bool),
            ("handler_prefix", Shape::Str),
            ("key", Shape::Str),
            ("error_mode", Shape::Str),
            ("external", Shape::Bool),
            ("insecure", Shape::Bool),
        ]
    }
}

/// Upstream `GrpcAPI`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct GrpcApi {
    /// `enabled`.
    pub(crate) enabled: bool,
    /// `error_mode`.
    pub(crate) error_mode: String,
    /// `address`.
    pub(crate) address: String,
    /// `port` (default `10000`).
    pub(crate) port: i64,
    /// `key`.
    pub(crate) key: String,
    /// `tls`.
    pub(crate) tls: TlsConfig,
    /// `reflection`.
    pub(crate) reflection: bool,
    /// `max_receive_message_size`.
    pub(crate) max_receive_message_size: i64,
}

impl Default for GrpcApi {
    fn default() -> Self {
        Self {
            enabled: Default::default(),
            error_mode: Default::default(),
            address: Default::default(),
            port: 10000,
            key: Default::default(),
            tls: Default::default(),
            reflection: Default::default(),
            max_receive_message_size: Default::default(),
        }
    }
}

impl Schema for GrpcApi {
    fn fields() -> Vec<(&'static str, Shape)> {
        vec![
            ("enabled", Shape::Bool),
            ("error_mode", Shape::Str),
            ("address", Shape::Str),
            ("port", Shape::Int),
            ("key", Shape::Str),
            ("tls", Shape::Struct(TlsConfig::fields())),
            ("reflection", Shape::Bool),
            ("max_receive_message_size", Shape::Int),
        ]
    }
}

/// Upstream `Graphite`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct Graphite {
    /// `enabled`.
    pub(crate) enabled: bool,
    /// `host` (default `localhost`).
    pub(crate) host: String,
    /// `port` (default `2003`).
    pub(crate) port: i64,
    /// `prefix` (default `centrifugo`).
    pub(crate) prefix: String,
    /// `interval` (default `10s`).
    pub(crate) interval: Duration,
    /// `tags`.
    pub(crate) tags: bool,
}

impl Default for Graphite {
    fn default() -> Self {
        Self {
            enabled: Default::default(),
            host: "localhost".to_owned(),
            port: 2003,
            prefix: "centrifugo".to_owned(),
            interval: Duration::from_secs(10),
            tags: Default::default(),
        }
    }
}

impl Schema for Graphite {
    fn fields() -> Vec<(&'static str, Shape)> {
        vec![
            ("enabled", Shape::Bool),
            ("host", Shape::Str),
            ("port", Shape::Int),
            ("prefix", Shape::Str),
            ("interval", Shape::Duration),
            ("tags", Shape::Bool),
        ]
    }
}

/// Upstream `Emulation`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct Emulation {
    /// `handler_prefix` (default `/emulation`).
    pub(crate) handler_prefix: String,
    /// `max_request_body_size` (default `65536`).
    pub(crate) max_request_body_size: i64,
}

impl Default for Emulation {
    fn default() -> Self {
        Self {
            handler_prefix: "/emulation".to_owned(),
            max_request_body_size: 65536,
        }
    }
}

impl Schema for Emulation {
    fn fields() -> Vec<(&'static str, Shape)> {
        vec![
            ("handler_prefix", Shape::Str),
            ("max_request_body_size", Shape::Int),
        ]
    }
}

/// Upstream `UsageStats`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub(crate) struct UsageStats {
    /// `disabled`.
    pub(crate) disabled: bool,
}

impl Schema for UsageStats {
    fn fields() -> Vec<(&'static str, Shape)> {
        vec![("disabled", Shape::Bool)]
    }
}

/// Upstream `Prometheus`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct Prometheus {
    /// `enabled`.
    pub(crate) enabled: bool,
    /// `handler_prefix` (default `/metrics`).
    pub(crate) handler_prefix: String,
    /// `instrument_http_handlers`.
    pub(crate) instrument_http_handlers: bool,
    /// `recovered_publications_histogram`.
    pub(crate) recovered_publications_histogram: bool,
    /// `native_histograms`.
    pub(crate) native_histograms: bool,
}

impl Default for Prometheus {
    fn default() -> Self {
        Self {
            enabled: Default::default(),
            handler_prefix: "/metrics".to_owned(),
            instrument_http_handlers: Default::default(),
            recovered_publications_histogram: Default::default(),
            native_histograms: Default::default(),
        }
    }
}

impl Schema for Prometheus {
    fn fields() -> Vec<(&'static str, Shape)> {
        vec![
            ("enabled", Shape::Bool),
            ("handler_prefix", Shape::Str),
            ("instrument_http_handlers", Shape::Bool),
            ("recovered_publications_histogram", Shape::Bool),
            ("native_histograms", Shape::Bool),
        ]
    }
}

/// Upstream `Health`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct Health {
    /// `enabled`.
    pub(crate) enabled: bool,
    /// `handler_prefix` (default `/health`).
    pub(crate) handler_prefix: String,
}

impl Default for Health {
    fn default() -> Self {
        Self {
            enabled: Default::default(),
            handler_prefix: "/health".to_owned(),
        }
    }
}

impl Schema for Health {
    fn fields() -> Vec<(&'static str, Shape)> {
        vec![("enabled", Shape::Bool), ("handler_prefix", Shape::Str)]
    }
}

/// Upstream `Swagger`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct Swagger {
    /// `enabled`.
    pub(crate) enabled: bool,
    /// `handler_prefix` (default `/swagger`).
    pub(crate) handler_prefix: String,
}

impl Default for Swagger {
    fn default() -> Self {
        Self {
            enabled: Default::default(),
            handler_prefix: "/swagger".to_owned(),
        }
    }
}

impl Schema for Swagger {
    fn fields() -> Vec<(&'static str, Shape)> {
        vec![("enabled", Shape::Bool), ("handler_prefix", Shape::Str)]
    }
}

/// Upstream `Debug`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct Debug {
    /// `enabled`.
    pub(crate) enabled: bool,
    /// `handler_prefix` (default `/debug/pprof`).
    pub(crate) handler_prefix: String,
}

impl Default for Debug {
    fn default() -> Self {
        Self {
            enabled: Default::default(),
            handler_prefix: "/debug/pprof".to_owned(),
        }
    }
}

impl Schema for Debug {
    fn fields() -> Vec<(&'static str, Shape)> {
        vec![("enabled", Shape::Bool), ("handler_prefix", Shape::Str)]
    }
}

/// Upstream `Shutdown`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct Shutdown {
    /// `timeout` (default `30s`).
    pub(crate) timeout: Duration,
}

impl Default for Shutdown {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(30),
        }
    }
}

impl Schema for Shutdown {
    fn fields() -> Vec<(&'static str, Shape)> {
        vec![("timeout", Shape::Duration)]
    }
}

/// Upstream `ConnectProxy`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub(crate) struct ConnectProxy {
    /// `enabled`.
    pub(crate) enabled: bool,
    /// Keys of `Proxy`, inlined (Go embedded struct).
    #[serde(flatten)]
    pub(crate) proxy: Proxy,
}

impl Schema for ConnectProxy {
    fn fields() -> Vec<(&'static str, Shape)> {
        let mut fields = vec![("enabled", Shape::Bool)];
        fields.extend(Proxy::fields());
        fields
    }
}

/// Upstream `RefreshProxy`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub(crate) struct RefreshProxy {
    /// `enabled`.
    pub(crate) enabled: bool,
    /// Keys of `Proxy`, inlined (Go embedded struct).
    #[serde(flatten)]
    pub(crate) proxy: Proxy,
}

impl Schema for RefreshProxy {
    fn fields() -> Vec<(&'static str, Shape)> {
        let mut fields = vec![("enabled", Shape::Bool)];
        fields.extend(Proxy::fields());
        fields
    }
}

/// Upstream `ClientProxyContainer`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub(crate) struct ClientProxyContainer {
    /// `connect`.
    pub(crate) connect: ConnectProxy,
    /// `refresh`.
    pub(crate) refresh: RefreshProxy,
}

impl Schema for ClientProxyContainer {
    fn fields() -> Vec<(&'static str, Shape)> {
        vec![
            ("connect", Shape::Struct(ConnectProxy::fields())),
            ("refresh", Shape::Struct(RefreshProxy::fields())),
        ]
    }
}

/// Upstream `Client`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct Client {
    /// `proxy`.
    pub(crate) proxy: ClientProxyContainer,
    /// `allowed_origins`.
    pub(crate) allowed_origins: Vec<String>,
    /// `token`.
    pub(crate) token: Token,
    /// `subscription_token`.
    pub(crate) subscription_token: SubscriptionToken,
    /// `allow_anonymous_connect_without_token`.
    pub(crate) allow_anonymous_connect_without_token: bool,
    /// `disallow_anonymous_connection_tokens`.
    pub(crate) disallow_anonymous_connection_tokens: bool,
    /// Keys of `PingPong`, inlined (Go embedded struct).
    #[serde(flatten)]
    pub(crate) ping_pong: PingPong,
    /// `expired_close_delay` (default `25s`).
    pub(crate) expired_close_delay: Duration,
    /// `expired_sub_close_delay` (default `25s`).
    pub(crate) expired_sub_close_delay: Duration,
    /// `stale_close_delay` (default `10s`).
    pub(crate) stale_close_delay: Duration,
    /// `channel_limit` (default `128`).
    pub(crate) channel_limit: i64,
    /// `queue_max_size` (default `1048576`).
    pub(crate) queue_max_size: i64,
    /// `presence_update_interval` (default `27s`).
    pub(crate) presence_update_interval: Duration,
    /// `concurrency`.
    pub(crate) concurrency: i64,
    /// `channel_position_check_delay` (default `40s`).
    pub(crate) channel_position_check_delay: Duration,
    /// `channel_position_max_time_lag`.
    pub(crate) channel_position_max_time_lag: Duration,
    /// `connection_limit`.
    pub(crate) connection_limit: i64,
    /// `user_connection_limit`.
    pub(crate) user_connection_limit: i64,
    /// `connection_rate_limit`.
    pub(crate) connection_rate_limit: i64,
    /// `connect_include_server_time`.
    pub(crate) connect_include_server_time: bool,
    /// `history_max_publication_limit` (default `300`).
    pub(crate) history_max_publication_limit: i64,
    /// `recovery_max_publication_limit` (default `300`).
    pub(crate) recovery_max_publication_limit: i64,
    /// `insecure_skip_token_signature_verify`.
    pub(crate) insecure_skip_token_signature_verify: bool,
    /// `user_id_http_header`.
    pub(crate) user_id_http_header: String,
    /// `insecure`.
    pub(crate) insecure: bool,
    /// `subscribe_to_user_personal_channel`.
    pub(crate) subscribe_to_user_personal_channel: SubscribeToUserPersonalChannel,
    /// `connect_code_to_unidirectional_disconnect`.
    pub(crate) connect_code_to_unidirectional_disconnect: ConnectCodeToUnidirectionalDisconnect,
}

impl Default for Client {
    fn default() -> Self {
        Self {
            proxy: Default::default(),
            allowed_origins: Default::default(),
            token: Default::default(),
            subscription_token: Default::default(),
            allow_anonymous_connect_without_token: Default::default(),
            disallow_anonymous_connection_tokens: Default::default(),
            ping_pong: Default::default(),
            expired_close_delay: Duration::from_secs(25),
            expired_sub_close_delay: Duration::from_secs(25),
            stale_close_delay: Duration::from_secs(10),
            channel_limit: 128,
            queue_max_size: 1048576,
            presence_update_interval: Duration::from_secs(27),
            concurrency: Default::default(),
            channel_position_check_delay: Duration::from_secs(40),
            channel_position_max_time_lag: Default::default(),
            connection_limit: Default::default(),
            user_connection_limit: Default::default(),
            connection_rate_limit: Default::default(),
            connect_include_server_time: Default::default(),
            history_max_publication_limit: 300,
            recovery_max_publication_limit: 300,
            insecure_skip_token_signature_verify: Default::default(),
            user_id_http_header: Default::default(),
            insecure: Default::default(),
            subscribe_to_user_personal_channel: Default::default(),
            connect_code_to_unidirectional_disconnect: Default::default(),
        }
    }
}

impl Schema for Client {
    fn fields() -> Vec<(&'static str, Shape)> {
        let mut fields = vec![
            ("proxy", Shape::Struct(ClientProxyContainer::fields())),
            ("allowed_origins", Shape::StrList),
            ("token", Shape::Struct(Token::fields())),
            (
                "subscription_token",
                Shape::Struct(SubscriptionToken::fields()),
            ),
            ("allow_anonymous_connect_without_token", Shape::Bool),
            ("disallow_anonymous_connection_tokens", Shape::Bool),
        ];
        fields.extend(PingPong::fields());
        fields.extend([
            ("expired_close_delay", Shape::Duration),
            ("expired_sub_close_delay", Shape::Duration),
            ("stale_close_delay", Shape::Duration),
            ("channel_limit", Shape::Int),
            ("queue_max_size", Shape::Int),
            ("presence_update_interval", Shape::Duration),
            ("concurrency", Shape::Int),
            ("channel_position_check_delay", Shape::Duration),
            ("channel_position_max_time_lag", Shape::Duration),
            ("connection_limit", Shape::Int),
            ("user_connection_limit", Shape::Int),
            ("connection_rate_limit", Shape::Int),
            ("connect_include_server_time", Shape::Bool),
            ("history_max_publication_limit", Shape::Int),
            ("recovery_max_publication_limit", Shape::Int),
            ("insecure_skip_token_signature_verify", Shape::Bool),
            ("user_id_http_header", Shape::Str),
            ("insecure", Shape::Bool),
            (
                "subscribe_to_user_personal_channel",
                Shape::Struct(SubscribeToUserPersonalChannel::fields()),
            ),
            (
                "connect_code_to_unidirectional_disconnect",
                Shape::Struct(ConnectCodeToUnidirectionalDisconnect::fields()),
            ),
        ]);
        fields
    }
}

/// Upstream `ConnectCodeToUnidirectionalDisconnect`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub(crate) struct ConnectCodeToUnidirectionalDisconnect {
    /// `enabled`.
    pub(crate) enabled: bool,
    /// `transforms`.
    pub(crate) transforms: Vec<UniConnectCodeToDisconnectTransform>,
}

impl Schema for ConnectCodeToUnidirectionalDisconnect {
    fn fields() -> Vec<(&'static str, Shape)> {
        vec![
            ("enabled", Shape::Bool),
            (
                "transforms",
                Shape::List {
                    item: UniConnectCodeToDisconnectTransform::fields(),
                    named: false,
                },
            ),
        ]
    }
}

/// Upstream `UniConnectCodeToDisconnectTransform`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub(crate) struct UniConnectCodeToDisconnectTransform {
    /// `code`.
    pub(crate) code: u32,
    /// `to`.
    pub(crate) to: TransformDisconnect,
}

impl Schema for UniConnectCodeToDisconnectTransform {
    fn fields() -> Vec<(&'static str, Shape)> {
        vec![
            ("code", Shape::Uint),
            ("to", Shape::Struct(TransformDisconnect::fields())),
        ]
    }
}

/// Upstream `ChannelProxyContainer`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub(crate) struct ChannelProxyContainer {
    /// `subscribe`.
    pub(crate) subscribe: Proxy,
    /// `publish`.
    pub(crate) publish: Proxy,
    /// `sub_refresh`.
    pub(crate) sub_refresh: Proxy,
    /// `subscribe_stream`.
    pub(crate) subscribe_stream: Proxy,
    /// `map_publish`.
    pub(crate) map_publish: Proxy,
    /// `map_remove`.
    pub(crate) map_remove: Proxy,
    /// `shared_poll_refresh`.
    pub(crate) shared_poll_refresh: Proxy,
}

impl Schema for ChannelProxyContainer {
    fn fields() -> Vec<(&'static str, Shape)> {
        vec![
            ("subscribe", Shape::Struct(Proxy::fields())),
            ("publish", Shape::Struct(Proxy::fields())),
            ("sub_refresh", Shape::Struct(Proxy::fields())),
            ("subscribe_stream", Shape::Struct(Proxy::fields())),
            ("map_publish", Shape::Struct(Proxy::fields())),
            ("map_remove", Shape::Struct(Proxy::fields())),
            ("shared_poll_refresh", Shape::Struct(Proxy::fields())),
        ]
    }
}

/// Upstream `Channel`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct Channel {
    /// `proxy`.
    pub(crate) proxy: ChannelProxyContainer,
    /// `without_namespace`.
    pub(crate) without_namespace: ChannelOptions,
    /// `namespaces`.
    pub(crate) namespaces: Vec<ChannelNamespace>,
    /// `history_meta_ttl` (default `720h`).
    pub(crate) history_meta_ttl: Duration,
    /// `publication_data_format`.
    pub(crate) publication_data_format: String,
    /// `max_length` (default `255`).
    pub(crate) max_length: i64,
    /// `private_prefix` (default `$`).
    pub(crate) private_prefix: String,
    /// `namespace_boundary` (default `:`).
    pub(crate) namespace_boundary: String,
    /// `user_boundary` (default `#`).
    pub(crate) user_boundary: String,
    /// `user_separator` (default `,`).
    pub(crate) user_separator: String,
}

impl Default for Channel {
    fn default() -> Self {
        Self {
            proxy: Default::default(),
            without_namespace: Default::default(),
            namespaces: Default::default(),
            history_meta_ttl: Duration::from_secs(2592000),
            publication_data_format: Default::default(),
            max_length: 255,
            private_prefix: "$".to_owned(),
            namespace_boundary: ":".to_owned(),
            user_boundary: "#".to_owned(),
            user_separator: ",".to_owned(),
        }
    }
}

impl Schema for Channel {
    fn fields() -> Vec<(&'static str, Shape)> {
        vec![
            ("proxy", Shape::Struct(ChannelProxyContainer::fields())),
            ("without_namespace", Shape::Struct(ChannelOptions::fields())),
            (
                "namespaces",
                Shape::List {
                    item: ChannelNamespace::fields(),
                    named: true,
                },
            ),
            ("history_meta_ttl", Shape::Duration),
            ("publication_data_format", Shape::Str),
            ("max_length", Shape::Int),
            ("private_prefix", Shape::Str),
            ("namespace_boundary", Shape::Str),
            ("user_boundary", Shape::Str),
            ("user_separator", Shape::Str),
        ]
    }
}

/// Upstream `RPC`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct Rpc {
    /// `proxy`.
    pub(crate) proxy: Proxy,
    /// `without_namespace`.
    pub(crate) without_namespace: RpcOptions,
    /// `namespaces`.
    pub(crate) namespaces: Vec<RpcNamespace>,
    /// `ping`.
    pub(crate) ping: RpcPing,
    /// `namespace_boundary` (default `:`).
    pub(crate) namespace_boundary: String,
}

impl Default for Rpc {
    fn default() -> Self {
        Self {
            proxy: Default::default(),
            without_namespace: Default::default(),
            namespaces: Default::default(),
            ping: Default::default(),
            namespace_boundary: ":".to_owned(),
        }
    }
}

impl Schema for Rpc {
    fn fields() -> Vec<(&'static str, Shape)> {
        vec![
            ("proxy", Shape::Struct(Proxy::fields())),
            ("without_namespace", Shape::Struct(RpcOptions::fields())),
            (
                "namespaces",
                Shape::List {
                    item: RpcNamespace::fields(),
                    named: true,
                },
            ),
            ("ping", Shape::Struct(RpcPing::fields())),
            ("namespace_boundary", Shape::Str),
        ]
    }
}

/// Upstream `RPCPing`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct RpcPing {
    /// `enabled`.
    pub(crate) enabled: bool,
    /// `method` (default `ping`).
    pub(crate) method: String,
}

impl Default for RpcPing {
    fn default() -> Self {
        Self {
            enabled: Default::default(),
            method: "ping".to_owned(),
        }
    }
}

impl Schema for RpcPing {
    fn fields() -> Vec<(&'static str, Shape)> {
        vec![("enabled", Shape::Bool), ("method", Shape::Str)]
    }
}

/// Upstream `NamedProxy`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub(crate) struct NamedProxy {
    /// `name`.
    pub(crate) name: String,
    /// Keys of `Proxy`, inlined (Go embedded struct).
    #[serde(flatten)]
    pub(crate) proxy: Proxy,
}

impl Schema for NamedProxy {
    fn fields() -> Vec<(&'static str, Shape)> {
        let mut fields = vec![("name", Shape::Str)];
        fields.extend(Proxy::fields());
        fields
    }
}

/// Upstream `SubscribeToUserPersonalChannel`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub(crate) struct SubscribeToUserPersonalChannel {
    /// `enabled`.
    pub(crate) enabled: bool,
    /// `personal_channel_namespace`.
    pub(crate) personal_channel_namespace: String,
    /// `single_connection`.
    pub(crate) single_connection: bool,
}

impl Schema for SubscribeToUserPersonalChannel {
    fn fields() -> Vec<(&'static str, Shape)> {
        vec![
            ("enabled", Shape::Bool),
            ("personal_channel_namespace", Shape::Str),
            ("single_connection", Shape::Bool),
        ]
    }
}

/// Upstream `Node`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct Node {
    /// `name`.
    pub(crate) name: String,
    /// `info_metrics_aggregate_interval` (default `60s`).
    pub(crate) info_metrics_aggregate_interval: Duration,
}

impl Default for Node {
    fn default() -> Self {
        Self {
            name: Default::default(),
            info_metrics_aggregate_interval: Duration::from_secs(60),
        }
    }
}

impl Schema for Node {
    fn fields() -> Vec<(&'static str, Shape)> {
        vec![
            ("name", Shape::Str),
            ("info_metrics_aggregate_interval", Shape::Duration),
        ]
    }
}

/// Upstream `Admin`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub(crate) struct Admin {
    /// `enabled`.
    pub(crate) enabled: bool,
    /// `handler_prefix`.
    pub(crate) handler_prefix: String,
    /// `password`.
    pub(crate) password: String,
    /// `secret`.
    pub(crate) secret: String,
    /// `insecure`.
    pub(crate) insecure: bool,
    /// `web_path`.
    pub(crate) web_path: String,
    /// `web_proxy_address`.
    pub(crate) web_proxy_address: String,
    /// `external`.
    pub(crate) external: bool,
}

impl Schema for Admin {
    fn fields() -> Vec<(&'static str, Shape)> {
        vec![
            ("enabled", Shape::Bool),
            ("handler_prefix", Shape::Str),
            ("password", Shape::Str),
            ("secret", Shape::Str),
            ("insecure", Shape::Bool),
            ("web_path", Shape::Str),
            ("web_proxy_address", Shape::Str),
            ("external", Shape::Bool),
        ]
    }
}

/// Upstream `TransformError`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub(crate) struct TransformError {
    /// `code`.
    pub(crate) code: u32,
    /// `message`.
    pub(crate) message: String,
    /// `temporary`.
    pub(crate) temporary: bool,
}

impl Schema for TransformError {
    fn fields() -> Vec<(&'static str, Shape)> {
        vec![
            ("code", Shape::Uint),
            ("message", Shape::Str),
            ("temporary", Shape::Bool),
        ]
    }
}

/// Upstream `TransformDisconnect`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub(crate) struct TransformDisconnect {
    /// `code`.
    pub(crate) code: u32,
    /// `reason`.
    pub(crate) reason: String,
}

impl Schema for TransformDisconnect {
    fn fields() -> Vec<(&'static str, Shape)> {
        vec![("code", Shape::Uint), ("reason", Shape::Str)]
    }
}

/// Upstream `HttpStatusToCodeTransform`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub(crate) struct HttpStatusToCodeTransform {
    /// `status_code`.
    pub(crate) status_code: i64,
    /// `to_error`.
    pub(crate) to_error: TransformError,
    /// `to_disconnect`.
    pub(crate) to_disconnect: TransformDisconnect,
}

impl Schema for HttpStatusToCodeTransform {
    fn fields() -> Vec<(&'static str, Shape)> {
        vec![
            ("status_code", Shape::Int),
            ("to_error", Shape::Struct(TransformError::fields())),
            (
                "to_disconnect",
                Shape::Struct(TransformDisconnect::fields()),
            ),
        ]
    }
}

/// Upstream `ProxyCommonHTTP`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub(crate) struct ProxyCommonHttp {
    /// `tls`.
    pub(crate) tls: TlsConfig,
    /// `static_headers`.
    pub(crate) static_headers: BTreeMap<String, String>,
    /// `status_to_code_transforms`.
    pub(crate) status_to_code_transforms: Vec<HttpStatusToCodeTransform>,
}

impl Schema for ProxyCommonHttp {
    fn fields() -> Vec<(&'static str, Shape)> {
        vec![
            ("tls", Shape::Struct(TlsConfig::fields())),
            ("static_headers", Shape::StrMap),
            (
                "status_to_code_transforms",
                Shape::List {
                    item: HttpStatusToCodeTransform::fields(),
                    named: false,
                },
            ),
        ]
    }
}

/// Upstream `ProxyCommonGRPC`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub(crate) struct ProxyCommonGrpc {
    /// `tls`.
    pub(crate) tls: TlsConfig,
    /// `credentials_key`.
    pub(crate) credentials_key: String,
    /// `credentials_value`.
    pub(crate) credentials_value: String,
    /// `compression`.
    pub(crate) compression: bool,
    /// `static_metadata`.
    pub(crate) static_metadata: BTreeMap<String, String>,
}

impl Schema for ProxyCommonGrpc {
    fn fields() -> Vec<(&'static str, Shape)> {
        vec![
            ("tls", Shape::Struct(TlsConfig::fields())),
            ("credentials_key", Shape::Str),
            ("credentials_value", Shape::Str),
            ("compression", Shape::Bool),
            ("static_metadata", Shape::StrMap),
        ]
    }
}

/// Upstream `ProxyCommon`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub(crate) struct ProxyCommon {
    /// `http_headers`.
    pub(crate) http_headers: Vec<String>,
    /// `grpc_metadata`.
    pub(crate) grpc_metadata: Vec<String>,
    /// `emulated_headers`.
    pub(crate) emulated_headers: Vec<String>,
    /// `binary_encoding`.
    pub(crate) binary_encoding: bool,
    /// `include_connection_meta`.
    pub(crate) include_connection_meta: bool,
    /// `http`.
    pub(crate) http: ProxyCommonHttp,
    /// `grpc`.
    pub(crate) grpc: ProxyCommonGrpc,
}

impl Schema for ProxyCommon {
    fn fields() -> Vec<(&'static str, Shape)> {
        vec![
            ("http_headers", Shape::StrList),
            ("grpc_metadata", Shape::StrList),
            ("emulated_headers", Shape::StrList),
            ("binary_encoding", Shape::Bool),
            ("include_connection_meta", Shape::Bool),
            ("http", Shape::Struct(ProxyCommonHttp::fields())),
            ("grpc", Shape::Struct(ProxyCommonGrpc::fields())),
        ]
    }
}

/// Upstream `Proxy`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct Proxy {
    /// `endpoint`.
    pub(crate) endpoint: String,
    /// `timeout` (default `1s`).
    pub(crate) timeout: Duration,
    /// Keys of `ProxyCommon`, inlined (Go embedded struct).
    #[serde(flatten)]
    pub(crate) proxy_common: ProxyCommon,
}

impl Default for Proxy {
    fn default() -> Self {
        Self {
            endpoint: Default::default(),
            timeout: Duration::from_secs(1),
            proxy_common: Default::default(),
        }
    }
}

impl Schema for Proxy {
    fn fields() -> Vec<(&'static str, Shape)> {
        let mut fields = vec![("endpoint", Shape::Str), ("timeout", Shape::Duration)];
        fields.extend(ProxyCommon::fields());
        fields
    }
}

/// Upstream `Consumer`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub(crate) struct Consumer {
    /// `name`.
    pub(crate) name: String,
    /// `enabled`.
    pub(crate) enabled: bool,
    /// `type`.
    pub(crate) r#type: String,
    /// `postgresql`.
    pub(crate) postgresql: PostgresConsumerConfig,
    /// `kafka`.
    pub(crate) kafka: KafkaConsumerConfig,
    /// `nats_jetstream`.
    pub(crate) nats_jetstream: NatsJetStreamConsumerConfig,
    /// `redis_stream`.
    pub(crate) redis_stream: RedisStreamConsumerConfig,
    /// `google_pub_sub`.
    pub(crate) google_pub_sub: GooglePubSubConsumerConfig,
    /// `aws_sqs`.
    pub(crate) aws_sqs: AwsSqsConsumerConfig,
    /// `azure_service_bus`.
    pub(crate) azure_service_bus: AzureServiceBusConsumerConfig,
}

impl Schema for Consumer {
    fn fields() -> Vec<(&'static str, Shape)> {
        vec![
            ("name", Shape::Str),
            ("enabled", Shape::Bool),
            ("type", Shape::Str),
            (
                "postgresql",
                Shape::Struct(PostgresConsumerConfig::fields()),
            ),
            ("kafka", Shape::Struct(KafkaConsumerConfig::fields())),
            (
                "nats_jetstream",
                Shape::Struct(NatsJetStreamConsumerConfig::fields()),
            ),
            (
                "redis_stream",
                Shape::Struct(RedisStreamConsumerConfig::fields()),
            ),
            (
                "google_pub_sub",
                Shape::Struct(GooglePubSubConsumerConfig::fields()),
            ),
            ("aws_sqs", Shape::Struct(AwsSqsConsumerConfig::fields())),
            (
                "azure_service_bus",
                Shape::Struct(AzureServiceBusConsumerConfig::fields()),
            ),
        ]
    }
}

/// Upstream `PostgresConsumerConfig`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct PostgresConsumerConfig {
    /// `dsn`.
    pub(crate) dsn: String,
    /// `outbox_table_name`.
    pub(crate) outbox_table_name: String,
    /// `num_partitions` (default `1`).
    pub(crate) num_partitions: i64,
    /// `partition_select_limit` (default `100`).
    pub(crate) partition_select_limit: i64,
    /// `partition_poll_interval` (default `300ms`).
    pub(crate) partition_poll_interval: Duration,
    /// `partition_notification_channel`.
    pub(crate) partition_notification_channel: String,
    /// `partition_notification_dsn`.
    pub(crate) partition_notification_dsn: String,
    /// `tls`.
    pub(crate) tls: TlsConfig,
    /// `use_try_lock` (default `false`).
    pub(crate) use_try_lock: bool,
}

impl Default for PostgresConsumerConfig {
    fn default() -> Self {
        Self {
            dsn: Default::default(),
            outbox_table_name: Default::default(),
            num_partitions: 1,
            partition_select_limit: 100,
            partition_poll_interval: Duration::from_millis(300),
            partition_notification_channel: Default::default(),
            partition_notification_dsn: Default::default(),
            tls: Default::default(),
            use_try_lock: Default::default(),
        }
    }
}

impl Schema for PostgresConsumerConfig {
    fn fields() -> Vec<(&'static str, Shape)> {
        vec![
            ("dsn", Shape::Str),
            ("outbox_table_name", Shape::Str),
            ("num_partitions", Shape::Int),
            ("partition_select_limit", Shape::Int),
            ("partition_poll_interval", Shape::Duration),
            ("partition_notification_channel", Shape::Str),
            ("partition_notification_dsn", Shape::Str),
            ("tls", Shape::Struct(TlsConfig::fields())),
            ("use_try_lock", Shape::Bool),
        ]
    }
}

/// Upstream `KafkaConsumerConfig`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct KafkaConsumerConfig {
    /// `brokers`.
    pub(crate) brokers: Vec<String>,
    /// `topics`.
    pub(crate) topics: Vec<String>,
    /// `consumer_group`.
    pub(crate) consumer_group: String,
    /// `max_poll_records` (default `100`).
    pub(crate) max_poll_records: i64,
    /// `fetch_max_bytes`.
    pub(crate) fetch_max_bytes: i32,
    /// `fetch_max_wait` (default `500ms`).
    pub(crate) fetch_max_wait: Duration,
    /// `fetch_read_uncommitted` (default `false`).
    pub(crate) fetch_read_uncommitted: bool,
    /// `partition_queue_max_size` (default `1000`).
    pub(crate) partition_queue_max_size: i64,
    /// `dial_timeout` (default `3s`).
    pub(crate) dial_timeout: Duration,
    /// `tls`.
    pub(crate) tls: TlsConfig,
    /// `sasl_mechanism`.
    pub(crate) sasl_mechanism: String,
    /// `sasl_user`.
    pub(crate) sasl_user: String,
    /// `sasl_password`.
    pub(crate) sasl_password: String,
    /// `assume_role_arn`.
    pub(crate) assume_role_arn: String,
    /// `instance_id`.
    pub(crate) instance_id: String,
    /// `method_header` (default `centrifugo-method`).
    pub(crate) method_header: String,
    /// `publication_data_mode`.
    pub(crate) publication_data_mode: KafkaPublicationDataModeConfig,
}

impl Default for KafkaConsumerConfig {
    fn default() -> Self {
        Self {
            brokers: Default::default(),
            topics: Default::default(),
            consumer_group: Default::default(),
            max_poll_records: 100,
            fetch_max_bytes: Default::default(),
            fetch_max_wait: Duration::from_millis(500),
            fetch_read_uncommitted: Default::default(),
            partition_queue_max_size: 1000,
            dial_timeout: Duration::from_secs(3),
            tls: Default::default(),
            sasl_mechanism: Default::default(),
            sasl_user: Default::default(),
            sasl_password: Default::default(),
            assume_role_arn: Default::default(),
            instance_id: Default::default(),
            method_header: "centrifugo-method".to_owned(),
            publication_data_mode: Default::default(),
        }
    }
}

impl Schema for KafkaConsumerConfig {
    fn fields() -> Vec<(&'static str, Shape)> {
        vec![
            ("brokers", Shape::StrList),
            ("topics", Shape::StrList),
            ("consumer_group", Shape::Str),
            ("max_poll_records", Shape::Int),
            ("fetch_max_bytes", Shape::Int),
            ("fetch_max_wait", Shape::Duration),
            ("fetch_read_uncommitted", Shape::Bool),
            ("partition_queue_max_size", Shape::Int),
            ("dial_timeout", Shape::Duration),
            ("tls", Shape::Struct(TlsConfig::fields())),
            ("sasl_mechanism", Shape::Str),
            ("sasl_user", Shape::Str),
            ("sasl_password", Shape::Str),
            ("assume_role_arn", Shape::Str),
            ("instance_id", Shape::Str),
            ("method_header", Shape::Str),
            (
                "publication_data_mode",
                Shape::Struct(KafkaPublicationDataModeConfig::fields()),
            ),
        ]
    }
}

/// Upstream `KafkaPublicationDataModeConfig`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct KafkaPublicationDataModeConfig {
    /// `enabled`.
    pub(crate) enabled: bool,
    /// `channels_header` (default `centrifugo-channels`).
    pub(crate) channels_header: String,
    /// `idempotency_key_header` (default `centrifugo-idempotency-key`).
    pub(crate) idempotency_key_header: String,
    /// `delta_header` (default `centrifugo-delta`).
    pub(crate) delta_header: String,
    /// `version_header` (default `centrifugo-version`).
    pub(crate) version_header: String,
    /// `version_epoch_header` (default `centrifugo-version-epoch`).
    pub(crate) version_epoch_header: String,
    /// `tags_header_prefix` (default `centrifugo-tag-`).
    pub(crate) tags_header_prefix: String,
}

impl Default for KafkaPublicationDataModeConfig {
    fn default() -> Self {
        Self {
            enabled: Default::default(),
            channels_header: "centrifugo-channels".to_owned(),
            idempotency_key_header: "centrifugo-idempotency-key".to_owned(),
            delta_header: "centrifugo-delta".to_owned(),
            version_header: "centrifugo-version".to_owned(),
            version_epoch_header: "centrifugo-version-epoch".to_owned(),
            tags_header_prefix: "centrifugo-tag-".to_owned(),
        }
    }
}

impl Schema for KafkaPublicationDataModeConfig {
    fn fields() -> Vec<(&'static str, Shape)> {
        vec![
            ("enabled", Shape::Bool),
            ("channels_header", Shape::Str),
            ("idempotency_key_header", Shape::Str),
            ("delta_header", Shape::Str),
            ("version_header", Shape::Str),
            ("version_epoch_header", Shape::Str),
            ("tags_header_prefix", Shape::Str),
        ]
    }
}

/// Upstream `RedisStreamPublicationDataModeConfig`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct RedisStreamPublicationDataModeConfig {
    /// `enabled`.
    pub(crate) enabled: bool,
    /// `channels_value` (default `centrifugo-channels`).
    pub(crate) channels_value: String,
    /// `idempotency_key_value` (default `centrifugo-idempotency-key`).
    pub(crate) idempotency_key_value: String,
    /// `delta_value` (default `centrifugo-delta`).
    pub(crate) delta_value: String,
    /// `version_value` (default `centrifugo-version`).
    pub(crate) version_value: String,
    /// `version_epoch_value` (default `centrifugo-version-epoch`).
    pub(crate) version_epoch_value: String,
    /// `tags_value_prefix` (default `centrifugo-tag-`).
    pub(crate) tags_value_prefix: String,
}

impl Default for RedisStreamPublicationDataModeConfig {
    fn default() -> Self {
        Self {
            enabled: Default::default(),
            channels_value: "centrifugo-channels".to_owned(),
            idempotency_key_value: "centrifugo-idempotency-key".to_owned(),
            delta_value: "centrifugo-delta".to_owned(),
            version_value: "centrifugo-version".to_owned(),
            version_epoch_value: "centrifugo-version-epoch".to_owned(),
            tags_value_prefix: "centrifugo-tag-".to_owned(),
        }
    }
}

impl Schema for RedisStreamPublicationDataModeConfig {
    fn fields() -> Vec<(&'static str, Shape)> {
        vec![
            ("enabled", Shape::Bool),
            ("channels_value", Shape::Str),
            ("idempotency_key_value", Shape::Str),
            ("delta_value", Shape::Str),
            ("version_value", Shape::Str),
            ("version_epoch_value", Shape::Str),
            ("tags_value_prefix", Shape::Str),
        ]
    }
}

/// Upstream `RedisStreamConsumerConfig`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct RedisStreamConsumerConfig {
    /// Keys of `Redis`, inlined (Go embedded struct).
    #[serde(flatten)]
    pub(crate) redis: Redis,
    /// `streams`.
    pub(crate) streams: Vec<String>,
    /// `consumer_group`.
    pub(crate) consumer_group: String,
    /// `visibility_timeout` (default `30s`).
    pub(crate) visibility_timeout: Duration,
    /// `num_workers` (default `1`).
    pub(crate) num_workers: i64,
    /// `payload_value` (default `payload`).
    pub(crate) payload_value: String,
    /// `method_value` (default `method`).
    pub(crate) method_value: String,
    /// `publication_data_mode`.
    pub(crate) publication_data_mode: RedisStreamPublicationDataModeConfig,
}

impl Default for RedisStreamConsumerConfig {
    fn default() -> Self {
        Self {
            redis: Default::default(),
            streams: Default::default(),
            consumer_group: Default::default(),
            visibility_timeout: Duration::from_secs(30),
            num_workers: 1,
            payload_value: "payload".to_owned(),
            method_value: "method".to_owned(),
            publication_data_mode: Default::default(),
        }
    }
}

impl Schema for RedisStreamConsumerConfig {
    fn fields() -> Vec<(&'static str, Shape)> {
        let mut fields = Redis::fields();
        fields.extend([
            ("streams", Shape::StrList),
            ("consumer_group", Shape::Str),
            ("visibility_timeout", Shape::Duration),
            ("num_workers", Shape::Int),
            ("payload_value", Shape::Str),
            ("method_value", Shape::Str),
            (
                "publication_data_mode",
                Shape::Struct(RedisStreamPublicationDataModeConfig::fields()),
            ),
        ]);
        fields
    }
}

/// Upstream `NatsJetStreamConsumerConfig`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct NatsJetStreamConsumerConfig {
    /// `url` (default `nats://127.0.0.1:4222`).
    pub(crate) url: String,
    /// `credentials_file`.
    pub(crate) credentials_file: String,
    /// `username`.
    pub(crate) username: String,
    /// `password`.
    pub(crate) password: String,
    /// `token`.
    pub(crate) token: String,
    /// `stream_name`.
    pub(crate) stream_name: String,
    /// `use_existing_consumer` (default `false`).
    pub(crate) use_existing_consumer: bool,
    /// `subjects`.
    pub(crate) subjects: Vec<String>,
    /// `durable_consumer_name`.
    pub(crate) durable_consumer_name: String,
    /// `deliver_policy` (default `new`).
    pub(crate) deliver_policy: String,
    /// `max_ack_pending` (default `100`).
    pub(crate) max_ack_pending: i64,
    /// `method_header` (default `centrifugo-method`).
    pub(crate) method_header: String,
    /// `publication_data_mode`.
    pub(crate) publication_data_mode: NatsJetStreamPublicationDataModeConfig,
    /// `tls`.
    pub(crate) tls: TlsConfig,
}

impl Default for NatsJetStreamConsumerConfig {
    fn default() -> Self {
        Self {
            url: "nats://127.0.0.1:4222".to_owned(),
            credentials_file: Default::default(),
            username: Default::default(),
            password: Default::default(),
            token: Default::default(),
            stream_name: Default::default(),
            use_existing_consumer: Default::default(),
            subjects: Default::default(),
            durable_consumer_name: Default::default(),
            deliver_policy: "new".to_owned(),
            max_ack_pending: 100,
            method_header: "centrifugo-method".to_owned(),
            publication_data_mode: Default::default(),
            tls: Default::default(),
        }
    }
}

impl Schema for NatsJetStreamConsumerConfig {
    fn fields() -> Vec<(&'static str, Shape)> {
        vec![
            ("url", Shape::Str),
            ("credentials_file", Shape::Str),
            ("username", Shape::Str),
            ("password", Shape::Str),
            ("token", Shape::Str),
            ("stream_name", Shape::Str),
            ("use_existing_consumer", Shape::Bool),
            ("subjects", Shape::StrList),
            ("durable_consumer_name", Shape::Str),
            ("deliver_policy", Shape::Str),
            ("max_ack_pending", Shape::Int),
            ("method_header", Shape::Str),
            (
                "publication_data_mode",
                Shape::Struct(NatsJetStreamPublicationDataModeConfig::fields()),
            ),
            ("tls", Shape::Struct(TlsConfig::fields())),
        ]
    }
}

/// Upstream `NatsJetStreamPublicationDataModeConfig`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct NatsJetStreamPublicationDataModeConfig {
    /// `enabled`.
    pub(crate) enabled: bool,
    /// `channels_header` (default `centrifugo-channels`).
    pub(crate) channels_header: String,
    /// `idempotency_key_header` (default `centrifugo-idempotency-key`).
    pub(crate) idempotency_key_header: String,
    /// `delta_header` (default `centrifugo-delta`).
    pub(crate) delta_header: String,
    /// `version_header` (default `centrifugo-version`).
    pub(crate) version_header: String,
    /// `version_epoch_header` (default `centrifugo-version-epoch`).
    pub(crate) version_epoch_header: String,
    /// `tags_header_prefix` (default `centrifugo-tag-`).
    pub(crate) tags_header_prefix: String,
}

impl Default for NatsJetStreamPublicationDataModeConfig {
    fn default() -> Self {
        Self {
            enabled: Default::default(),
            channels_header: "centrifugo-channels".to_owned(),
            idempotency_key_header: "centrifugo-idempotency-key".to_owned(),
            delta_header: "centrifugo-delta".to_owned(),
            version_header: "centrifugo-version".to_owned(),
            version_epoch_header: "centrifugo-version-epoch".to_owned(),
            tags_header_prefix: "centrifugo-tag-".to_owned(),
        }
    }
}

impl Schema for NatsJetStreamPublicationDataModeConfig {
    fn fields() -> Vec<(&'static str, Shape)> {
        vec![
            ("enabled", Shape::Bool),
            ("channels_header", Shape::Str),
            ("idempotency_key_header", Shape::Str),
            ("delta_header", Shape::Str),
            ("version_header", Shape::Str),
            ("version_epoch_header", Shape::Str),
            ("tags_header_prefix", Shape::Str),
        ]
    }
}

/// Upstream `GooglePubSubConsumerConfig`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct GooglePubSubConsumerConfig {
    /// `project_id`.
    pub(crate) project_id: String,
    /// `subscriptions`.
    pub(crate) subscriptions: Vec<String>,
    /// `max_outstanding_messages` (default `100`).
    pub(crate) max_outstanding_messages: i64,
    /// `max_outstanding_bytes` (default `1000000`).
    pub(crate) max_outstanding_bytes: i64,
    /// `auth_mechanism`.
    pub(crate) auth_mechanism: String,
    /// `credentials_file`.
    pub(crate) credentials_file: String,
    /// `method_attribute` (default `centrifugo-method`).
    pub(crate) method_attribute: String,
    /// `publication_data_mode`.
    pub(crate) publication_data_mode: GooglePubSubPublicationDataModeConfig,
}

impl Default for GooglePubSubConsumerConfig {
    fn default() -> Self {
        Self {
            project_id: Default::default(),
            subscriptions: Default::default(),
            max_outstanding_messages: 100,
            max_outstanding_bytes: 1000000,
            auth_mechanism: Default::default(),
            credentials_file: Default::default(),
            method_attribute: "centrifugo-method".to_owned(),
            publication_data_mode: Default::default(),
        }
    }
}

impl Schema for GooglePubSubConsumerConfig {
    fn fields() -> Vec<(&'static str, Shape)> {
        vec![
            ("project_id", Shape::Str),
            ("subscriptions", Shape::StrList),
            ("max_outstanding_messages", Shape::Int),
            ("max_outstanding_bytes", Shape::Int),
            ("auth_mechanism", Shape::Str),
            ("credentials_file", Shape::Str),
            ("method_attribute", Shape::Str),
            (
                "publication_data_mode",
                Shape::Struct(GooglePubSubPublicationDataModeConfig::fields()),
            ),
        ]
    }
}

/// Upstream `GooglePubSubPublicationDataModeConfig`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct GooglePubSubPublicationDataModeConfig {
    /// `enabled`.
    pub(crate) enabled: bool,
    /// `channels_attribute` (default `centrifugo-channels`).
    pub(crate) channels_attribute: String,
    /// `idempotency_key_attribute` (default `centrifugo-idempotency-key`).
    pub(crate) idempotency_key_attribute: String,
    /// `delta_attribute` (default `centrifugo-delta`).
    pub(crate) delta_attribute: String,
    /// `version_attribute` (default `centrifugo-version`).
    pub(crate) version_attribute: String,
    /// `version_epoch_attribute` (default `centrifugo-version-epoch`).
    pub(crate) version_epoch_attribute: String,
    /// `tags_attribute_prefix` (default `centrifugo-tag-`).
    pub(crate) tags_attribute_prefix: String,
}

impl Default for GooglePubSubPublicationDataModeConfig {
    fn default() -> Self {
        Self {
            enabled: Default::default(),
            channels_attribute: "centrifugo-channels".to_owned(),
            idempotency_key_attribute: "centrifugo-idempotency-key".to_owned(),
            delta_attribute: "centrifugo-delta".to_owned(),
            version_attribute: "centrifugo-version".to_owned(),
            version_epoch_attribute: "centrifugo-version-epoch".to_owned(),
            tags_attribute_prefix: "centrifugo-tag-".to_owned(),
        }
    }
}

impl Schema for GooglePubSubPublicationDataModeConfig {
    fn fields() -> Vec<(&'static str, Shape)> {
        vec![
            ("enabled", Shape::Bool),
            ("channels_attribute", Shape::Str),
            ("idempotency_key_attribute", Shape::Str),
            ("delta_attribute", Shape::Str),
            ("version_attribute", Shape::Str),
            ("version_epoch_attribute", Shape::Str),
            ("tags_attribute_prefix", Shape::Str),
        ]
    }
}

/// Upstream `AzureServiceBusPublicationDataModeConfig`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct AzureServiceBusPublicationDataModeConfig {
    /// `enabled`.
    pub(crate) enabled: bool,
    /// `channels_property` (default `centrifugo-channels`).
    pub(crate) channels_property: String,
    /// `idempotency_key_property` (default `centrifugo-idempotency-key`).
    pub(crate) idempotency_key_property: String,
    /// `delta_property` (default `centrifugo-delta`).
    pub(crate) delta_property: String,
    /// `version_property` (default `centrifugo-version`).
    pub(crate) version_property: String,
    /// `version_epoch_property` (default `centrifugo-version-epoch`).
    pub(crate) version_epoch_property: String,
    /// `tags_property_prefix` (default `centrifugo-tag-`).
    pub(crate) tags_property_prefix: String,
}

impl Default for AzureServiceBusPublicationDataModeConfig {
    fn default() -> Self {
        Self {
            enabled: Default::default(),
            channels_property: "centrifugo-channels".to_owned(),
            idempotency_key_property: "centrifugo-idempotency-key".to_owned(),
            delta_property: "centrifugo-delta".to_owned(),
            version_property: "centrifugo-version".to_owned(),
            version_epoch_property: "centrifugo-version-epoch".to_owned(),
            tags_property_prefix: "centrifugo-tag-".to_owned(),
        }
    }
}

impl Schema for AzureServiceBusPublicationDataModeConfig {
    fn fields() -> Vec<(&'static str, Shape)> {
        vec![
            ("enabled", Shape::Bool),
            ("channels_property", Shape::Str),
            ("idempotency_key_property", Shape::Str),
            ("delta_property", Shape::Str),
            ("version_property", Shape::Str),
            ("version_epoch_property", Shape::Str),
            ("tags_property_prefix", Shape::Str),
        ]
    }
}

/// Upstream `AzureServiceBusConsumerConfig`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct AzureServiceBusConsumerConfig {
    /// `connection_string`.
    pub(crate) connection_string: String,
    /// `use_azure_identity`.
    pub(crate) use_azure_identity: bool,
    /// `fully_qualified_namespace`.
    pub(crate) fully_qualified_namespace: String,
    /// `tenant_id`.
    pub(crate) tenant_id: String,
    /// `client_id`.
    pub(crate) client_id: String,
    /// `client_secret`.
    pub(crate) client_secret: String,
    /// `queues`.
    pub(crate) queues: Vec<String>,
    /// `use_sessions`.
    pub(crate) use_sessions: bool,
    /// `max_concurrent_calls` (default `1`).
    pub(crate) max_concurrent_calls: i64,
    /// `max_receive_messages` (default `1`).
    pub(crate) max_receive_messages: i64,
    /// `method_property` (default `centrifugo-method`).
    pub(crate) method_property: String,
    /// `publication_data_mode`.
    pub(crate) publication_data_mode: AzureServiceBusPublicationDataModeConfig,
}

impl Default for AzureServiceBusConsumerConfig {
    fn default() -> Self {
        Self {
            connection_string: Default::default(),
            use_azure_identity: Default::default(),
            fully_qualified_namespace: Default::default(),
            tenant_id: Default::default(),
            client_id: Default::default(),
            client_secret: Default::default(),
            queues: Default::default(),
            use_sessions: Default::default(),
            max_concurrent_calls: 1,
            max_receive_messages: 1,
            method_property: "centrifugo-method".to_owned(),
            publication_data_mode: Default::default(),
        }
    }
}

impl Schema for AzureServiceBusConsumerConfig {
    fn fields() -> Vec<(&'static str, Shape)> {
        vec![
            ("connection_string", Shape::Str),
            ("use_azure_identity", Shape::Bool),
            ("fully_qualified_namespace", Shape::Str),
            ("tenant_id", Shape::Str),
            ("client_id", Shape::Str),
            ("client_secret", Shape::Str),
            ("queues", Shape::StrList),
            ("use_sessions", Shape::Bool),
            ("max_concurrent_calls", Shape::Int),
            ("max_receive_messages", Shape::Int),
            ("method_property", Shape::Str),
            (
                "publication_data_mode",
                Shape::Struct(AzureServiceBusPublicationDataModeConfig::fields()),
            ),
        ]
    }
}

/// Upstream `AwsSqsConsumerConfig`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct AwsSqsConsumerConfig {
    /// `queues`.
    pub(crate) queues: Vec<String>,
    /// `sns_envelope`.
    pub(crate) sns_envelope: bool,
    /// `region`.
    pub(crate) region: String,
    /// `max_number_of_messages` (default `10`).
    pub(crate) max_number_of_messages: i32,
    /// `wait_time_time` (default `20s`).
    pub(crate) wait_time_time: Duration,
    /// `visibility_timeout` (default `30s`).
    pub(crate) visibility_timeout: Duration,
    /// `max_concurrency` (default `1`).
    pub(crate) max_concurrency: i64,
    /// `credentials_profile`.
    pub(crate) credentials_profile: String,
    /// `assume_role_arn`.
    pub(crate) assume_role_arn: String,
    /// `method_attribute` (default `centrifugo-method`).
    pub(crate) method_attribute: String,
    /// `localstack_endpoint`.
    pub(crate) localstack_endpoint: String,
    /// `publication_data_mode`.
    pub(crate) publication_data_mode: AwsPublicationDataModeConfig,
}

impl Default for AwsSqsConsumerConfig {
    fn default() -> Self {
        Self {
            queues: Default::default(),
            sns_envelope: Default::default(),
            region: Default::default(),
            max_number_of_messages: 10,
            wait_time_time: Duration::from_secs(20),
            visibility_timeout: Duration::from_secs(30),
            max_concurrency: 1,
            credentials_profile: Default::default(),
            assume_role_arn: Default::default(),
            method_attribute: "centrifugo-method".to_owned(),
            localstack_endpoint: Default::default(),
            publication_data_mode: Default::default(),
        }
    }
}

impl Schema for AwsSqsConsumerConfig {
    fn fields() -> Vec<(&'static str, Shape)> {
        vec![
            ("queues", Shape::StrList),
            ("sns_envelope", Shape::Bool),
            ("region", Shape::Str),
            ("max_number_of_messages", Shape::Int),
            ("wait_time_time", Shape::Duration),
            ("visibility_timeout", Shape::Duration),
            ("max_concurrency", Shape::Int),
            ("credentials_profile", Shape::Str),
            ("assume_role_arn", Shape::Str),
            ("method_attribute", Shape::Str),
            ("localstack_endpoint", Shape::Str),
            (
                "publication_data_mode",
                Shape::Struct(AwsPublicationDataModeConfig::fields()),
            ),
        ]
    }
}

/// Upstream `AWSPublicationDataModeConfig`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct AwsPublicationDataModeConfig {
    /// `enabled`.
    pub(crate) enabled: bool,
    /// `channels_attribute` (default `centrifugo-channels`).
    pub(crate) channels_attribute: String,
    /// `idempotency_key_attribute` (default `centrifugo-idempotency-key`).
    pub(crate) idempotency_key_attribute: String,
    /// `delta_attribute` (default `centrifugo-delta`).
    pub(crate) delta_attribute: String,
    /// `version_attribute` (default `centrifugo-version`).
    pub(crate) version_attribute: String,
    /// `version_epoch_attribute` (default `centrifugo-version-epoch`).
    pub(crate) version_epoch_attribute: String,
    /// `tags_attribute_prefix` (default `centrifugo-tag-`).
    pub(crate) tags_attribute_prefix: String,
}

impl Default for AwsPublicationDataModeConfig {
    fn default() -> Self {
        Self {
            enabled: Default::default(),
            channels_attribute: "centrifugo-channels".to_owned(),
            idempotency_key_attribute: "centrifugo-idempotency-key".to_owned(),
            delta_attribute: "centrifugo-delta".to_owned(),
            version_attribute: "centrifugo-version".to_owned(),
            version_epoch_attribute: "centrifugo-version-epoch".to_owned(),
            tags_attribute_prefix: "centrifugo-tag-".to_owned(),
        }
    }
}

impl Schema for AwsPublicationDataModeConfig {
    fn fields() -> Vec<(&'static str, Shape)> {
        vec![
            ("enabled", Shape::Bool),
            ("channels_attribute", Shape::Str),
            ("idempotency_key_attribute", Shape::Str),
            ("delta_attribute", Shape::Str),
            ("version_attribute", Shape::Str),
            ("version_epoch_attribute", Shape::Str),
            ("tags_attribute_prefix", Shape::Str),
        ]
    }
}

/// Upstream `Engine`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct Engine {
    /// `type` (default `memory`).
    pub(crate) r#type: String,
    /// `redis`.
    pub(crate) redis: RedisEngine,
}

impl Default for Engine {
    fn default() -> Self {
        Self {
            r#type: "memory".to_owned(),
            redis: Default::default(),
        }
    }
}

impl Schema for Engine {
    fn fields() -> Vec<(&'static str, Shape)> {
        vec![
            ("type", Shape::Str),
            ("redis", Shape::Struct(RedisEngine::fields())),
        ]
    }
}

/// Upstream `RedisBrokerCommon`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub(crate) struct RedisBrokerCommon {
    /// `history_use_lists`.
    pub(crate) history_use_lists: bool,
}

impl Schema for RedisBrokerCommon {
    fn fields() -> Vec<(&'static str, Shape)> {
        vec![("history_use_lists", Shape::Bool)]
    }
}

/// Upstream `RedisBroker`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub(crate) struct RedisBroker {
    /// Keys of `RedisPrefixed`, inlined (Go embedded struct).
    #[serde(flatten)]
    pub(crate) redis_prefixed: RedisPrefixed,
    /// Keys of `RedisBrokerCommon`, inlined (Go embedded struct).
    #[serde(flatten)]
    pub(crate) redis_broker_common: RedisBrokerCommon,
}

impl Schema for RedisBroker {
    fn fields() -> Vec<(&'static str, Shape)> {
        let mut fields = RedisPrefixed::fields();
        fields.extend(RedisBrokerCommon::fields());
        fields
    }
}

/// Upstream `EngineRedisBroker`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub(crate) struct EngineRedisBroker {
    /// Keys of `RedisBrokerCommon`, inlined (Go embedded struct).
    #[serde(flatten)]
    pub(crate) redis_broker_common: RedisBrokerCommon,
}

impl Schema for EngineRedisBroker {
    fn fields() -> Vec<(&'static str, Shape)> {
        RedisBrokerCommon::fields()
    }
}

/// Upstream `RedisPresenceManagerCommon`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct RedisPresenceManagerCommon {
    /// `presence_ttl` (default `60s`).
    pub(crate) presence_ttl: Duration,
    /// `presence_hash_field_ttl`.
    pub(crate) presence_hash_field_ttl: bool,
    /// `presence_user_mapping`.
    pub(crate) presence_user_mapping: bool,
}

impl Default for RedisPresenceManagerCommon {
    fn default() -> Self {
        Self {
            presence_ttl: Duration::from_secs(60),
            presence_hash_field_ttl: Default::default(),
            presence_user_mapping: Default::default(),
        }
    }
}

impl Schema for RedisPresenceManagerCommon {
    fn fields() -> Vec<(&'static str, Shape)> {
        vec![
            ("presence_ttl", Shape::Duration),
            ("presence_hash_field_ttl", Shape::Bool),
            ("presence_user_mapping", Shape::Bool),
        ]
    }
}

/// Upstream `EngineRedisPresenceManager`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub(crate) struct EngineRedisPresenceManager {
    /// Keys of `RedisPresenceManagerCommon`, inlined (Go embedded struct).
    #[serde(flatten)]
    pub(crate) redis_presence_manager_common: RedisPresenceManagerCommon,
}

impl Schema for EngineRedisPresenceManager {
    fn fields() -> Vec<(&'static str, Shape)> {
        RedisPresenceManagerCommon::fields()
    }
}

/// Upstream `RedisPresenceManager`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub(crate) struct RedisPresenceManager {
    /// Keys of `RedisPrefixed`, inlined (Go embedded struct).
    #[serde(flatten)]
    pub(crate) redis_prefixed: RedisPrefixed,
    /// Keys of `RedisPresenceManagerCommon`, inlined (Go embedded struct).
    #[serde(flatten)]
    pub(crate) redis_presence_manager_common: RedisPresenceManagerCommon,
}

impl Schema for RedisPresenceManager {
    fn fields() -> Vec<(&'static str, Shape)> {
        let mut fields = RedisPrefixed::fields();
        fields.extend(RedisPresenceManagerCommon::fields());
        fields
    }
}

/// Upstream `RedisNatsBroker`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub(crate) struct RedisNatsBroker {
    /// `redis`.
    pub(crate) redis: RedisBroker,
    /// `nats`.
    pub(crate) nats: NatsBroker,
}

impl Schema for RedisNatsBroker {
    fn fields() -> Vec<(&'static str, Shape)> {
        vec![
            ("redis", Shape::Struct(RedisBroker::fields())),
            ("nats", Shape::Struct(NatsBroker::fields())),
        ]
    }
}

/// Upstream `RedisEngine`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub(crate) struct RedisEngine {
    /// Keys of `RedisPrefixed`, inlined (Go embedded struct).
    #[serde(flatten)]
    pub(crate) redis_prefixed: RedisPrefixed,
    /// Keys of `EngineRedisBroker`, inlined (Go embedded struct).
    #[serde(flatten)]
    pub(crate) engine_redis_broker: EngineRedisBroker,
    /// Keys of `EngineRedisPresenceManager`, inlined (Go embedded struct).
    #[serde(flatten)]
    pub(crate) engine_redis_presence_manager: EngineRedisPresenceManager,
}

impl Schema for RedisEngine {
    fn fields() -> Vec<(&'static str, Shape)> {
        let mut fields = RedisPrefixed::fields();
        fields.extend(EngineRedisBroker::fields());
        fields.extend(EngineRedisPresenceManager::fields());
        fields
    }
}

/// Upstream `Broker`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct Broker {
    /// `enabled`.
    pub(crate) enabled: bool,
    /// `type` (default `memory`).
    pub(crate) r#type: String,
    /// `redis`.
    pub(crate) redis: RedisBroker,
    /// `nats`.
    pub(crate) nats: NatsBroker,
    /// `postgres`.
    pub(crate) postgres: PostgresStreamBroker,
    /// `redisnats`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) redisnats: Option<RedisNatsBroker>,
}

impl Default for Broker {
    fn default() -> Self {
        Self {
            enabled: Default::default(),
            r#type: "memory".to_owned(),
            redis: Default::default(),
            nats: Default::default(),
            postgres: Default::default(),
            redisnats: Default::default(),
        }
    }
}

impl Schema for Broker {
    fn fields() -> Vec<(&'static str, Shape)> {
        vec![
            ("enabled", Shape::Bool),
            ("type", Shape::Str),
            ("redis", Shape::Struct(RedisBroker::fields())),
            ("nats", Shape::Struct(NatsBroker::fields())),
            ("postgres", Shape::Struct(PostgresStreamBroker::fields())),
            ("redisnats", Shape::Struct(RedisNatsBroker::fields())),
        ]
    }
}

/// Upstream `PresenceManager`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct PresenceManager {
    /// `enabled`.
    pub(crate) enabled: bool,
    /// `type` (default `memory`).
    pub(crate) r#type: String,
    /// `redis`.
    pub(crate) redis: RedisPresenceManager,
}

impl Default for PresenceManager {
    fn default() -> Self {
        Self {
            enabled: Default::default(),
            r#type: "memory".to_owned(),
            redis: Default::default(),
        }
    }
}

impl Schema for PresenceManager {
    fn fields() -> Vec<(&'static str, Shape)> {
        vec![
            ("enabled", Shape::Bool),
            ("type", Shape::Str),
            ("redis", Shape::Struct(RedisPresenceManager::fields())),
        ]
    }
}

/// Upstream `MapBroker`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct MapBroker {
    /// `type` (default `memory`).
    pub(crate) r#type: String,
    /// `redis`.
    pub(crate) redis: RedisMapBroker,
    /// `postgres`.
    pub(crate) postgres: PostgresMapBroker,
}

impl Default for MapBroker {
    fn default() -> Self {
        Self {
            r#type: "memory".to_owned(),
            redis: Default::default(),
            postgres: Default::default(),
        }
    }
}

impl Schema for MapBroker {
    fn fields() -> Vec<(&'static str, Shape)> {
        vec![
            ("type", Shape::Str),
            ("redis", Shape::Struct(RedisMapBroker::fields())),
            ("postgres", Shape::Struct(PostgresMapBroker::fields())),
        ]
    }
}

/// Upstream `RedisMapBroker`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub(crate) struct RedisMapBroker {
    /// Keys of `RedisPrefixed`, inlined (Go embedded struct).
    #[serde(flatten)]
    pub(crate) redis_prefixed: RedisPrefixed,
    /// Keys of `RedisMapBrokerCommon`, inlined (Go embedded struct).
    #[serde(flatten)]
    pub(crate) redis_map_broker_common: RedisMapBrokerCommon,
}

impl Schema for RedisMapBroker {
    fn fields() -> Vec<(&'static str, Shape)> {
        let mut fields = RedisPrefixed::fields();
        fields.extend(RedisMapBrokerCommon::fields());
        fields
    }
}

/// Upstream `RedisMapBrokerCommon`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct RedisMapBrokerCommon {
    /// `cleanup_interval` (default `1s`).
    pub(crate) cleanup_interval: Duration,
    /// `cleanup_batch_size` (default `100`).
    pub(crate) cleanup_batch_size: i64,
    /// `idempotent_result_ttl` (default `5m`).
    pub(crate) idempotent_result_ttl: Duration,
    /// `skip_pub_sub`.
    pub(crate) skip_pub_sub: bool,
}

impl Default for RedisMapBrokerCommon {
    fn default() -> Self {
        Self {
            cleanup_interval: Duration::from_secs(1),
            cleanup_batch_size: 100,
            idempotent_result_ttl: Duration::from_secs(300),
            skip_pub_sub: Default::default(),
        }
    }
}

impl Schema for RedisMapBrokerCommon {
    fn fields() -> Vec<(&'static str, Shape)> {
        vec![
            ("cleanup_interval", Shape::Duration),
            ("cleanup_batch_size", Shape::Int),
            ("idempotent_result_ttl", Shape::Duration),
            ("skip_pub_sub", Shape::Bool),
        ]
    }
}

/// Upstream `PostgresMapBroker`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct PostgresMapBroker {
    /// `dsn`.
    pub(crate) dsn: String,
    /// `tls`.
    pub(crate) tls: TlsConfig,
    /// `pool_size` (default `16`).
    pub(crate) pool_size: i64,
    /// `num_shards` (default `8`).
    pub(crate) num_shards: i64,
    /// `ttl_check_interval` (default `1s`).
    pub(crate) ttl_check_interval: Duration,
    /// `cleanup_interval` (default `1m`).
    pub(crate) cleanup_interval: Duration,
    /// `idempotent_result_ttl` (default `5m`).
    pub(crate) idempotent_result_ttl: Duration,
    /// `binary_data`.
    pub(crate) binary_data: bool,
    /// `stream_retention` (default `24h`).
    pub(crate) stream_retention: Duration,
    /// `use_notify`.
    pub(crate) use_notify: bool,
    /// `notify_dsn`.
    pub(crate) notify_dsn: String,
    /// `table_prefix` (default `cf`).
    pub(crate) table_prefix: String,
    /// `skip_schema_init`.
    pub(crate) skip_schema_init: bool,
    /// `outbox`.
    pub(crate) outbox: PostgresMapBrokerOutbox,
    /// `partition_lookahead_days` (default `2`).
    pub(crate) partition_lookahead_days: i64,
    /// `partition_retention_days` (default `7`).
    pub(crate) partition_retention_days: i64,
}

impl Default for PostgresMapBroker {
    fn default() -> Self {
        Self {
            dsn: Default::default(),
            tls: Default::default(),
            pool_size: 16,
            num_shards: 8,
            ttl_check_interval: Duration::from_secs(1),
            cleanup_interval: Duration::from_secs(60),
            idempotent_result_ttl: Duration::from_secs(300),
            binary_data: Default::default(),
            stream_retention: Duration::from_secs(86400),
            use_notify: Default::default(),
            notify_dsn: Default::default(),
            table_prefix: "cf".to_owned(),
            skip_schema_init: Default::default(),
            outbox: Default::default(),
            partition_lookahead_days: 2,
            partition_retention_days: 7,
        }
    }
}

impl Schema for PostgresMapBroker {
    fn fields() -> Vec<(&'static str, Shape)> {
        vec![
            ("dsn", Shape::Str),
            ("tls", Shape::Struct(TlsConfig::fields())),
            ("pool_size", Shape::Int),
            ("num_shards", Shape::Int),
            ("ttl_check_interval", Shape::Duration),
            ("cleanup_interval", Shape::Duration),
            ("idempotent_result_ttl", Shape::Duration),
            ("binary_data", Shape::Bool),
            ("stream_retention", Shape::Duration),
            ("use_notify", Shape::Bool),
            ("notify_dsn", Shape::Str),
            ("table_prefix", Shape::Str),
            ("skip_schema_init", Shape::Bool),
            ("outbox", Shape::Struct(PostgresMapBrokerOutbox::fields())),
            ("partition_lookahead_days", Shape::Int),
            ("partition_retention_days", Shape::Int),
        ]
    }
}

/// Upstream `PostgresMapBrokerOutbox`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct PostgresMapBrokerOutbox {
    /// `poll_interval` (default `100ms`).
    pub(crate) poll_interval: Duration,
    /// `batch_size` (default `1000`).
    pub(crate) batch_size: i64,
}

impl Default for PostgresMapBrokerOutbox {
    fn default() -> Self {
        Self {
            poll_interval: Duration::from_millis(100),
            batch_size: 1000,
        }
    }
}

impl Schema for PostgresMapBrokerOutbox {
    fn fields() -> Vec<(&'static str, Shape)> {
        vec![
            ("poll_interval", Shape::Duration),
            ("batch_size", Shape::Int),
        ]
    }
}

/// Upstream `PostgresStreamBroker`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct PostgresStreamBroker {
    /// `dsn`.
    pub(crate) dsn: String,
    /// `tls`.
    pub(crate) tls: TlsConfig,
    /// `pool_size` (default `16`).
    pub(crate) pool_size: i64,
    /// `num_shards` (default `8`).
    pub(crate) num_shards: i64,
    /// `cleanup_interval` (default `1m`).
    pub(crate) cleanup_interval: Duration,
    /// `idempotent_result_ttl` (default `5m`).
    pub(crate) idempotent_result_ttl: Duration,
    /// `binary_data`.
    pub(crate) binary_data: bool,
    /// `stream_retention` (default `24h`).
    pub(crate) stream_retention: Duration,
    /// `use_notify`.
    pub(crate) use_notify: bool,
    /// `notify_dsn`.
    pub(crate) notify_dsn: String,
    /// `table_prefix` (default `cf`).
    pub(crate) table_prefix: String,
    /// `skip_schema_init`.
    pub(crate) skip_schema_init: bool,
    /// `outbox`.
    pub(crate) outbox: PostgresMapBrokerOutbox,
    /// `partition_lookahead_days` (default `2`).
    pub(crate) partition_lookahead_days: i64,
    /// `partition_retention_days` (default `7`).
    pub(crate) partition_retention_days: i64,
}

impl Default for PostgresStreamBroker {
    fn default() -> Self {
        Self {
            dsn: Default::default(),
            tls: Default::default(),
            pool_size: 16,
            num_shards: 8,
            cleanup_interval: Duration::from_secs(60),
            idempotent_result_ttl: Duration::from_secs(300),
            binary_data: Default::default(),
            stream_retention: Duration::from_secs(86400),
            use_notify: Default::default(),
            notify_dsn: Default::default(),
            table_prefix: "cf".to_owned(),
            skip_schema_init: Default::default(),
            outbox: Default::default(),
            partition_lookahead_days: 2,
            partition_retention_days: 7,
        }
    }
}

impl Schema for PostgresStreamBroker {
    fn fields() -> Vec<(&'static str, Shape)> {
        vec![
            ("dsn", Shape::Str),
            ("tls", Shape::Struct(TlsConfig::fields())),
            ("pool_size", Shape::Int),
            ("num_shards", Shape::Int),
            ("cleanup_interval", Shape::Duration),
            ("idempotent_result_ttl", Shape::Duration),
            ("binary_data", Shape::Bool),
            ("stream_retention", Shape::Duration),
            ("use_notify", Shape::Bool),
            ("notify_dsn", Shape::Str),
            ("table_prefix", Shape::Str),
            ("skip_schema_init", Shape::Bool),
            ("outbox", Shape::Struct(PostgresMapBrokerOutbox::fields())),
            ("partition_lookahead_days", Shape::Int),
            ("partition_retention_days", Shape::Int),
        ]
    }
}

/// Upstream `Controller`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub(crate) struct Controller {
    /// `enabled`.
    pub(crate) enabled: bool,
    /// `type`.
    pub(crate) r#type: String,
    /// `postgres`.
    pub(crate) postgres: PostgresController,
}

impl Schema for Controller {
    fn fields() -> Vec<(&'static str, Shape)> {
        vec![
            ("enabled", Shape::Bool),
            ("type", Shape::Str),
            ("postgres", Shape::Struct(PostgresController::fields())),
        ]
    }
}

/// Upstream `PostgresController`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct PostgresController {
    /// `dsn`.
    pub(crate) dsn: String,
    /// `tls`.
    pub(crate) tls: TlsConfig,
    /// `pool_size` (default `8`).
    pub(crate) pool_size: i64,
    /// `num_shards` (default `1`).
    pub(crate) num_shards: i64,
    /// `table_prefix` (default `cf`).
    pub(crate) table_prefix: String,
    /// `poll_interval` (default `50ms`).
    pub(crate) poll_interval: Duration,
    /// `use_notify`.
    pub(crate) use_notify: bool,
    /// `notify_dsn`.
    pub(crate) notify_dsn: String,
    /// `partition_retention_days` (default `1`).
    pub(crate) partition_retention_days: i64,
    /// `partition_lookahead_days` (default `2`).
    pub(crate) partition_lookahead_days: i64,
    /// `partition_cleanup_interval` (default `1m`).
    pub(crate) partition_cleanup_interval: Duration,
    /// `batch_size` (default `1000`).
    pub(crate) batch_size: i64,
    /// `skip_schema_init`.
    pub(crate) skip_schema_init: bool,
}

impl Default for PostgresController {
    fn default() -> Self {
        Self {
            dsn: Default::default(),
            tls: Default::default(),
            pool_size: 8,
            num_shards: 1,
            table_prefix: "cf".to_owned(),
            poll_interval: Duration::from_millis(50),
            use_notify: Default::default(),
            notify_dsn: Default::default(),
            partition_retention_days: 1,
            partition_lookahead_days: 2,
            partition_cleanup_interval: Duration::from_secs(60),
            batch_size: 1000,
            skip_schema_init: Default::default(),
        }
    }
}

impl Schema for PostgresController {
    fn fields() -> Vec<(&'static str, Shape)> {
        vec![
            ("dsn", Shape::Str),
            ("tls", Shape::Struct(TlsConfig::fields())),
            ("pool_size", Shape::Int),
            ("num_shards", Shape::Int),
            ("table_prefix", Shape::Str),
            ("poll_interval", Shape::Duration),
            ("use_notify", Shape::Bool),
            ("notify_dsn", Shape::Str),
            ("partition_retention_days", Shape::Int),
            ("partition_lookahead_days", Shape::Int),
            ("partition_cleanup_interval", Shape::Duration),
            ("batch_size", Shape::Int),
            ("skip_schema_init", Shape::Bool),
        ]
    }
}

/// Upstream `ChannelNamespace`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub(crate) struct ChannelNamespace {
    /// `name`.
    pub(crate) name: String,
    /// Keys of `ChannelOptions`, inlined (Go embedded struct).
    #[serde(flatten)]
    pub(crate) options: ChannelOptions,
}

impl Schema for ChannelNamespace {
    fn fields() -> Vec<(&'static str, Shape)> {
        let mut fields = vec![("name", Shape::Str)];
        fields.extend(ChannelOptions::fields());
        fields
    }
}

/// Upstream `ChannelOptions`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct ChannelOptions {
    /// `presence`.
    pub(crate) presence: bool,
    /// `join_leave`.
    pub(crate) join_leave: bool,
    /// `force_push_join_leave`.
    pub(crate) force_push_join_leave: bool,
    /// `map_clients_presence_channel_prefix`.
    pub(crate) map_clients_presence_channel_prefix: String,
    /// `map_users_presence_channel_prefix`.
    pub(crate) map_users_presence_channel_prefix: String,
    /// `history_size`.
    pub(crate) history_size: i64,
    /// `history_ttl`.
    pub(crate) history_ttl: Duration,
    /// `history_meta_ttl`.
    pub(crate) history_meta_ttl: Duration,
    /// `force_positioning`.
    pub(crate) force_positioning: bool,
    /// `allow_positioning`.
    pub(crate) allow_positioning: bool,
    /// `force_recovery`.
    pub(crate) force_recovery: bool,
    /// `allow_recovery`.
    pub(crate) allow_recovery: bool,
    /// `force_recovery_mode`.
    pub(crate) force_recovery_mode: String,
    /// `auto_cache_recover`.
    pub(crate) auto_cache_recover: bool,
    /// `allowed_delta_types`.
    pub(crate) allowed_delta_types: Vec<String>,
    /// `allow_tags_filter`.
    pub(crate) allow_tags_filter: bool,
    /// `delta_publish`.
    pub(crate) delta_publish: bool,
    /// `allow_subscribe_for_anonymous`.
    pub(crate) allow_subscribe_for_anonymous: bool,
    /// `allow_subscribe_for_client`.
    pub(crate) allow_subscribe_for_client: bool,
    /// `allow_publish_for_anonymous`.
    pub(crate) allow_publish_for_anonymous: bool,
    /// `allow_publish_for_subscriber`.
    pub(crate) allow_publish_for_subscriber: bool,
    /// `allow_publish_for_client`.
    pub(crate) allow_publish_for_client: bool,
    /// `allow_presence_for_anonymous`.
    pub(crate) allow_presence_for_anonymous: bool,
    /// `allow_presence_for_subscriber`.
    pub(crate) allow_presence_for_subscriber: bool,
    /// `allow_presence_for_client`.
    pub(crate) allow_presence_for_client: bool,
    /// `allow_history_for_anonymous`.
    pub(crate) allow_history_for_anonymous: bool,
    /// `allow_history_for_subscriber`.
    pub(crate) allow_history_for_subscriber: bool,
    /// `allow_history_for_client`.
    pub(crate) allow_history_for_client: bool,
    /// `allow_user_limited_channels`.
    pub(crate) allow_user_limited_channels: bool,
    /// `channel_regex`.
    pub(crate) channel_regex: String,
    /// `publication_data_format`.
    pub(crate) publication_data_format: String,
    /// `subscribe_proxy_enabled`.
    pub(crate) subscribe_proxy_enabled: bool,
    /// `subscribe_proxy_name` (default `default`).
    pub(crate) subscribe_proxy_name: String,
    /// `publish_proxy_enabled`.
    pub(crate) publish_proxy_enabled: bool,
    /// `publish_proxy_name` (default `default`).
    pub(crate) publish_proxy_name: String,
    /// `sub_refresh_proxy_enabled`.
    pub(crate) sub_refresh_proxy_enabled: bool,
    /// `sub_refresh_proxy_name` (default `default`).
    pub(crate) sub_refresh_proxy_name: String,
    /// `subscribe_stream_proxy_enabled`.
    pub(crate) subscribe_stream_proxy_enabled: bool,
    /// `subscribe_stream_proxy_name` (default `default`).
    pub(crate) subscribe_stream_proxy_name: String,
    /// `subscribe_stream_proxy_bidirectional`.
    pub(crate) subscribe_stream_proxy_bidirectional: bool,
    /// `subscription_type`.
    pub(crate) subscription_type: String,
    /// `map`.
    pub(crate) map: MapConfig,
    /// `shared_poll`.
    pub(crate) shared_poll: SharedPollConfig,
}

impl Default for ChannelOptions {
    fn default() -> Self {
        Self {
            presence: Default::default(),
            join_leave: Default::default(),
            force_push_join_leave: Default::default(),
            map_clients_presence_channel_prefix: Default::default(),
            map_users_presence_channel_prefix: Default::default(),
            history_size: Default::default(),
            history_ttl: Default::default(),
            history_meta_ttl: Default::default(),
            force_positioning: Default::default(),
            allow_positioning: Default::default(),
            force_recovery: Default::default(),
            allow_recovery: Default::default(),
            force_recovery_mode: Default::default(),
            auto_cache_recover: Default::default(),
            allowed_delta_types: Default::default(),
            allow_tags_filter: Default::default(),
            delta_publish: Default::default(),
            allow_subscribe_for_anonymous: Default::default(),
            allow_subscribe_for_client: Default::default(),
            allow_publish_for_anonymous: Default::default(),
            allow_publish_for_subscriber: Default::default(),
            allow_publish_for_client: Default::default(),
            allow_presence_for_anonymous: Default::default(),
            allow_presence_for_subscriber: Default::default(),
            allow_presence_for_client: Default::default(),
            allow_history_for_anonymous: Default::default(),
            allow_history_for_subscriber: Default::default(),
            allow_history_for_client: Default::default(),
            allow_user_limited_channels: Default::default(),
            channel_regex: Default::default(),
            publication_data_format: Default::default(),
            subscribe_proxy_enabled: Default::default(),
            subscribe_proxy_name: "default".to_owned(),
            publish_proxy_enabled: Default::default(),
            publish_proxy_name: "default".to_owned(),
            sub_refresh_proxy_enabled: Default::default(),
            sub_refresh_proxy_name: "default".to_owned(),
            subscribe_stream_proxy_enabled: Default::default(),
            subscribe_stream_proxy_name: "default".to_owned(),
            subscribe_stream_proxy_bidirectional: Default::default(),
            subscription_type: Default::default(),
            map: Default::default(),
            shared_poll: Default::default(),
        }
    }
}

impl Schema for ChannelOptions {
    fn fields() -> Vec<(&'static str, Shape)> {
        vec![
            ("presence", Shape::Bool),
            ("join_leave", Shape::Bool),
            ("force_push_join_leave", Shape::Bool),
            ("map_clients_presence_channel_prefix", Shape::Str),
            ("map_users_presence_channel_prefix", Shape::Str),
            ("history_size", Shape::Int),
            ("history_ttl", Shape::Duration),
            ("history_meta_ttl", Shape::Duration),
            ("force_positioning", Shape::Bool),
            ("allow_positioning", Shape::Bool),
            ("force_recovery", Shape::Bool),
            ("allow_recovery", Shape::Bool),
            ("force_recovery_mode", Shape::Str),
            ("auto_cache_recover", Shape::Bool),
            ("allowed_delta_types", Shape::StrList),
            ("allow_tags_filter", Shape::Bool),
            ("delta_publish", Shape::Bool),
            ("allow_subscribe_for_anonymous", Shape::Bool),
            ("allow_subscribe_for_client", Shape::Bool),
            ("allow_publish_for_anonymous", Shape::Bool),
            ("allow_publish_for_subscriber", Shape::Bool),
            ("allow_publish_for_client", Shape::Bool),
            ("allow_presence_for_anonymous", Shape::Bool),
            ("allow_presence_for_subscriber", Shape::Bool),
            ("allow_presence_for_client", Shape::Bool),
            ("allow_history_for_anonymous", Shape::Bool),
            ("allow_history_for_subscriber", Shape::Bool),
            ("allow_history_for_client", Shape::Bool),
            ("allow_user_limited_channels", Shape::Bool),
            ("channel_regex", Shape::Str),
            ("publication_data_format", Shape::Str),
            ("subscribe_proxy_enabled", Shape::Bool),
            ("subscribe_proxy_name", Shape::Str),
            ("publish_proxy_enabled", Shape::Bool),
            ("publish_proxy_name", Shape::Str),
            ("sub_refresh_proxy_enabled", Shape::Bool),
            ("sub_refresh_proxy_name", Shape::Str),
            ("subscribe_stream_proxy_enabled", Shape::Bool),
            ("subscribe_stream_proxy_name", Shape::Str),
            ("subscribe_stream_proxy_bidirectional", Shape::Bool),
            ("subscription_type", Shape::Str),
            ("map", Shape::Struct(MapConfig::fields())),
            ("shared_poll", Shape::Struct(SharedPollConfig::fields())),
        ]
    }
}

/// Upstream `MapConfig`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct MapConfig {
    /// `mode`.
    pub(crate) mode: String,
    /// `key_ttl`.
    pub(crate) key_ttl: Duration,
    /// `stream_size`.
    pub(crate) stream_size: i64,
    /// `stream_ttl`.
    pub(crate) stream_ttl: Duration,
    /// `meta_ttl`.
    pub(crate) meta_ttl: Duration,
    /// `remove_client_on_unsubscribe`.
    pub(crate) remove_client_on_unsubscribe: bool,
    /// `client_key`.
    pub(crate) client_key: String,
    /// `allow_publish_for_client`.
    pub(crate) allow_publish_for_client: bool,
    /// `allow_publish_for_subscriber`.
    pub(crate) allow_publish_for_subscriber: bool,
    /// `allow_publish_for_anonymous`.
    pub(crate) allow_publish_for_anonymous: bool,
    /// `allow_remove_for_client`.
    pub(crate) allow_remove_for_client: bool,
    /// `allow_remove_for_subscriber`.
    pub(crate) allow_remove_for_subscriber: bool,
    /// `allow_remove_for_anonymous`.
    pub(crate) allow_remove_for_anonymous: bool,
    /// `publish_proxy_enabled`.
    pub(crate) publish_proxy_enabled: bool,
    /// `publish_proxy_name` (default `default`).
    pub(crate) publish_proxy_name: String,
    /// `remove_proxy_enabled`.
    pub(crate) remove_proxy_enabled: bool,
    /// `remove_proxy_name` (default `default`).
    pub(crate) remove_proxy_name: String,
    /// `default_page_size`.
    pub(crate) default_page_size: i64,
    /// `min_page_size`.
    pub(crate) min_page_size: i64,
    /// `max_page_size`.
    pub(crate) max_page_size: i64,
    /// `live_transition_max_publication_limit`.
    pub(crate) live_transition_max_publication_limit: i64,
    /// `subscribe_catch_up_timeout`.
    pub(crate) subscribe_catch_up_timeout: Duration,
}

impl Default for MapConfig {
    fn default() -> Self {
        Self {
            mode: Default::default(),
            key_ttl: Default::default(),
            stream_size: Default::default(),
            stream_ttl: Default::default(),
            meta_ttl: Default::default(),
            remove_client_on_unsubscribe: Default::default(),
            client_key: Default::default(),
            allow_publish_for_client: Default::default(),
            allow_publish_for_subscriber: Default::default(),
            allow_publish_for_anonymous: Default::default(),
            allow_remove_for_client: Default::default(),
            allow_remove_for_subscriber: Default::default(),
            allow_remove_for_anonymous: Default::default(),
            publish_proxy_enabled: Default::default(),
            publish_proxy_name: "default".to_owned(),
            remove_proxy_enabled: Default::default(),
            remove_proxy_name: "default".to_owned(),
            default_page_size: Default::default(),
            min_page_size: Default::default(),
            max_page_size: Default::default(),
            live_transition_max_publication_limit: Default::default(),
            subscribe_catch_up_timeout: Default::default(),
        }
    }
}

impl Schema for MapConfig {
    fn fields() -> Vec<(&'static str, Shape)> {
        vec![
            ("mode", Shape::Str),
            ("key_ttl", Shape::Duration),
            ("stream_size", Shape::Int),
            ("stream_ttl", Shape::Duration),
            ("meta_ttl", Shape::Duration),
            ("remove_client_on_unsubscribe", Shape::Bool),
            ("client_key", Shape::Str),
            ("allow_publish_for_client", Shape::Bool),
            ("allow_publish_for_subscriber", Shape::Bool),
            ("allow_publish_for_anonymous", Shape::Bool),
            ("allow_remove_for_client", Shape::Bool),
            ("allow_remove_for_subscriber", Shape::Bool),
            ("allow_remove_for_anonymous", Shape::Bool),
            ("publish_proxy_enabled", Shape::Bool),
            ("publish_proxy_name", Shape::Str),
            ("remove_proxy_enabled", Shape::Bool),
            ("remove_proxy_name", Shape::Str),
            ("default_page_size", Shape::Int),
            ("min_page_size", Shape::Int),
            ("max_page_size", Shape::Int),
            ("live_transition_max_publication_limit", Shape::Int),
            ("subscribe_catch_up_timeout", Shape::Duration),
        ]
    }
}

/// Upstream `SharedPollConfig`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub(crate) struct SharedPollConfig {
    /// `proxy_name`.
    pub(crate) proxy_name: String,
    /// `refresh_interval`.
    pub(crate) refresh_interval: Duration,
    /// `refresh_batch_size`.
    pub(crate) refresh_batch_size: i64,
    /// `max_keys_per_connection`.
    pub(crate) max_keys_per_connection: i64,
    /// `mode`.
    pub(crate) mode: String,
    /// `channel_shutdown_delay`.
    pub(crate) channel_shutdown_delay: Duration,
    /// `track_expired_extra_delay`.
    pub(crate) track_expired_extra_delay: Duration,
    /// `publish_enabled`.
    pub(crate) publish_enabled: bool,
}

impl Schema for SharedPollConfig {
    fn fields() -> Vec<(&'static str, Shape)> {
        vec![
            ("proxy_name", Shape::Str),
            ("refresh_interval", Shape::Duration),
            ("refresh_batch_size", Shape::Int),
            ("max_keys_per_connection", Shape::Int),
            ("mode", Shape::Str),
            ("channel_shutdown_delay", Shape::Duration),
            ("track_expired_extra_delay", Shape::Duration),
            ("publish_enabled", Shape::Bool),
        ]
    }
}

/// Upstream `Redis`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct Redis {
    /// `address` (default `redis://127.0.0.1:6379`).
    pub(crate) address: Vec<String>,
    /// `connect_timeout` (default `1s`).
    pub(crate) connect_timeout: Duration,
    /// `io_timeout` (default `4s`).
    pub(crate) io_timeout: Duration,
    /// `db` (default `0`).
    pub(crate) db: i64,
    /// `user`.
    pub(crate) user: String,
    /// `password`.
    pub(crate) password: String,
    /// `client_name`.
    pub(crate) client_name: String,
    /// `force_resp2`.
    pub(crate) force_resp2: bool,
    /// `cluster_address`.
    pub(crate) cluster_address: Vec<String>,
    /// `tls`.
    pub(crate) tls: TlsConfig,
    /// `sentinel_address`.
    pub(crate) sentinel_address: Vec<String>,
    /// `sentinel_user`.
    pub(crate) sentinel_user: String,
    /// `sentinel_password`.
    pub(crate) sentinel_password: String,
    /// `sentinel_master_name`.
    pub(crate) sentinel_master_name: String,
    /// `sentinel_client_name`.
    pub(crate) sentinel_client_name: String,
    /// `sentinel_tls`.
    pub(crate) sentinel_tls: TlsConfig,
    /// `replica_client`.
    pub(crate) replica_client: RedisReplicaClient,
}

impl Default for Redis {
    fn default() -> Self {
        Self {
            address: vec!["redis://127.0.0.1:6379".to_owned()],
            connect_timeout: Duration::from_secs(1),
            io_timeout: Duration::from_secs(4),
            db: Default::default(),
            user: Default::default(),
            password: Default::default(),
            client_name: Default::default(),
            force_resp2: Default::default(),
            cluster_address: Default::default(),
            tls: Default::default(),
            sentinel_address: Default::default(),
            sentinel_user: Default::default(),
            sentinel_password: Default::default(),
            sentinel_master_name: Default::default(),
            sentinel_client_name: Default::default(),
            sentinel_tls: Default::default(),
            replica_client: Default::default(),
        }
    }
}

impl Schema for Redis {
    fn fields() -> Vec<(&'static str, Shape)> {
        vec![
            ("address", Shape::StrList),
            ("connect_timeout", Shape::Duration),
            ("io_timeout", Shape::Duration),
            ("db", Shape::Int),
            ("user", Shape::Str),
            ("password", Shape::Str),
            ("client_name", Shape::Str),
            ("force_resp2", Shape::Bool),
            ("cluster_address", Shape::StrList),
            ("tls", Shape::Struct(TlsConfig::fields())),
            ("sentinel_address", Shape::StrList),
            ("sentinel_user", Shape::Str),
            ("sentinel_password", Shape::Str),
            ("sentinel_master_name", Shape::Str),
            ("sentinel_client_name", Shape::Str),
            ("sentinel_tls", Shape::Struct(TlsConfig::fields())),
            (
                "replica_client",
                Shape::Struct(RedisReplicaClient::fields()),
            ),
        ]
    }
}

/// Upstream `RedisPrefixed`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct RedisPrefixed {
    /// `prefix` (default `centrifugo`).
    pub(crate) prefix: String,
    /// Keys of `Redis`, inlined (Go embedded struct).
    #[serde(flatten)]
    pub(crate) redis: Redis,
}

impl Default for RedisPrefixed {
    fn default() -> Self {
        Self {
            prefix: "centrifugo".to_owned(),
            redis: Default::default(),
        }
    }
}

impl Schema for RedisPrefixed {
    fn fields() -> Vec<(&'static str, Shape)> {
        let mut fields = vec![("prefix", Shape::Str)];
        fields.extend(Redis::fields());
        fields
    }
}

/// Upstream `RedisReplicaClient`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub(crate) struct RedisReplicaClient {
    /// `enabled`.
    pub(crate) enabled: bool,
}

impl Schema for RedisReplicaClient {
    fn fields() -> Vec<(&'static str, Shape)> {
        vec![("enabled", Shape::Bool)]
    }
}

/// Upstream `RpcNamespace`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub(crate) struct RpcNamespace {
    /// `name`.
    pub(crate) name: String,
    /// Keys of `RpcOptions`, inlined (Go embedded struct).
    #[serde(flatten)]
    pub(crate) options: RpcOptions,
}

impl Schema for RpcNamespace {
    fn fields() -> Vec<(&'static str, Shape)> {
        let mut fields = vec![("name", Shape::Str)];
        fields.extend(RpcOptions::fields());
        fields
    }
}

/// Upstream `RpcOptions`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct RpcOptions {
    /// `proxy_enabled`.
    pub(crate) proxy_enabled: bool,
    /// `proxy_name` (default `default`).
    pub(crate) proxy_name: String,
}

impl Default for RpcOptions {
    fn default() -> Self {
        Self {
            proxy_enabled: Default::default(),
            proxy_name: "default".to_owned(),
        }
    }
}

impl Schema for RpcOptions {
    fn fields() -> Vec<(&'static str, Shape)> {
        vec![("proxy_enabled", Shape::Bool), ("proxy_name", Shape::Str)]
    }
}

/// Upstream `TLSConfig`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub(crate) struct TlsConfig {
    /// `enabled`.
    pub(crate) enabled: bool,
    /// `cert_pem`.
    pub(crate) cert_pem: String,
    /// `key_pem`.
    pub(crate) key_pem: String,
    /// `server_ca_pem`.
    pub(crate) server_ca_pem: String,
    /// `client_ca_pem`.
    pub(crate) client_ca_pem: String,
    /// `insecure_skip_verify`.
    pub(crate) insecure_skip_verify: bool,
    /// `server_name`.
    pub(crate) server_name: String,
}

impl Schema for TlsConfig {
    fn fields() -> Vec<(&'static str, Shape)> {
        vec![
            ("enabled", Shape::Bool),
            ("cert_pem", Shape::Str),
            ("key_pem", Shape::Str),
            ("server_ca_pem", Shape::Str),
            ("client_ca_pem", Shape::Str),
            ("insecure_skip_verify", Shape::Bool),
            ("server_name", Shape::Str),
        ]
    }
}

/// Upstream `TLSAutocert`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct TlsAutocert {
    /// `enabled`.
    pub(crate) enabled: bool,
    /// `host_whitelist`.
    pub(crate) host_whitelist: Vec<String>,
    /// `cache_dir`.
    pub(crate) cache_dir: String,
    /// `email`.
    pub(crate) email: String,
    /// `server_name`.
    pub(crate) server_name: String,
    /// `http`.
    pub(crate) http: bool,
    /// `http_addr` (default `:80`).
    pub(crate) http_addr: String,
}

impl Default for TlsAutocert {
    fn default() -> Self {
        Self {
            enabled: Default::default(),
            host_whitelist: Default::default(),
            cache_dir: Default::default(),
            email: Default::default(),
            server_name: Default::default(),
            http: Default::default(),
            http_addr: ":80".to_owned(),
        }
    }
}

impl Schema for TlsAutocert {
    fn fields() -> Vec<(&'static str, Shape)> {
        vec![
            ("enabled", Shape::Bool),
            ("host_whitelist", Shape::StrList),
            ("cache_dir", Shape::Str),
            ("email", Shape::Str),
            ("server_name", Shape::Str),
            ("http", Shape::Bool),
            ("http_addr", Shape::Str),
        ]
    }
}

/// Upstream `Config`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub(crate) struct Config {
    /// `http_server`.
    pub(crate) http_server: HttpServer,
    /// `log`.
    pub(crate) log: Log,
    /// `engine`.
    pub(crate) engine: Engine,
    /// `broker`.
    pub(crate) broker: Broker,
    /// `presence_manager`.
    pub(crate) presence_manager: PresenceManager,
    /// `map_broker`.
    pub(crate) map_broker: MapBroker,
    /// `controller`.
    pub(crate) controller: Controller,
    /// `shared_poll`.
    pub(crate) shared_poll: SharedPoll,
    /// `client`.
    pub(crate) client: Client,
    /// `channel`.
    pub(crate) channel: Channel,
    /// `rpc`.
    pub(crate) rpc: Rpc,
    /// `proxies`.
    pub(crate) proxies: Vec<NamedProxy>,
    /// `http_api`.
    pub(crate) http_api: HttpApi,
    /// `grpc_api`.
    pub(crate) grpc_api: GrpcApi,
    /// `consumers`.
    pub(crate) consumers: Vec<Consumer>,
    /// `websocket`.
    pub(crate) websocket: WebSocket,
    /// `sse`.
    pub(crate) sse: Sse,
    /// `http_stream`.
    pub(crate) http_stream: HttpStream,
    /// `webtransport`.
    pub(crate) webtransport: WebTransport,
    /// `uni_sse`.
    pub(crate) uni_sse: UniSse,
    /// `uni_http_stream`.
    pub(crate) uni_http_stream: UniHttpStream,
    /// `uni_websocket`.
    pub(crate) uni_websocket: UniWebSocket,
    /// `uni_grpc`.
    pub(crate) uni_grpc: UniGrpc,
    /// `emulation`.
    pub(crate) emulation: Emulation,
    /// `admin`.
    pub(crate) admin: Admin,
    /// `prometheus`.
    pub(crate) prometheus: Prometheus,
    /// `health`.
    pub(crate) health: Health,
    /// `swagger`.
    pub(crate) swagger: Swagger,
    /// `debug`.
    pub(crate) debug: Debug,
    /// `init`.
    pub(crate) init: ConnInit,
    /// `opentelemetry`.
    pub(crate) opentelemetry: OpenTelemetry,
    /// `graphite`.
    pub(crate) graphite: Graphite,
    /// `usage_stats`.
    pub(crate) usage_stats: UsageStats,
    /// `node`.
    pub(crate) node: Node,
    /// `shutdown`.
    pub(crate) shutdown: Shutdown,
    /// `pid_file`.
    pub(crate) pid_file: String,
    /// `enable_unreleased_features`.
    pub(crate) enable_unreleased_features: bool,
}

impl Schema for Config {
    fn fields() -> Vec<(&'static str, Shape)> {
        vec![
            ("http_server", Shape::Struct(HttpServer::fields())),
            ("log", Shape::Struct(Log::fields())),
            ("engine", Shape::Struct(Engine::fields())),
            ("broker", Shape::Struct(Broker::fields())),
            ("presence_manager", Shape::Struct(PresenceManager::fields())),
            ("map_broker", Shape::Struct(MapBroker::fields())),
            ("controller", Shape::Struct(Controller::fields())),
            ("shared_poll", Shape::Struct(SharedPoll::fields())),
            ("client", Shape::Struct(Client::fields())),
            ("channel", Shape::Struct(Channel::fields())),
            ("rpc", Shape::Struct(Rpc::fields())),
            (
                "proxies",
                Shape::List {
                    item: NamedProxy::fields(),
                    named: true,
                },
            ),
            ("http_api", Shape::Struct(HttpApi::fields())),
            ("grpc_api", Shape::Struct(GrpcApi::fields())),
            (
                "consumers",
                Shape::List {
                    item: Consumer::fields(),
                    named: true,
                },
            ),
            ("websocket", Shape::Struct(WebSocket::fields())),
            ("sse", Shape::Struct(Sse::fields())),
            ("http_stream", Shape::Struct(HttpStream::fields())),
            ("webtransport", Shape::Struct(WebTransport::fields())),
            ("uni_sse", Shape::Struct(UniSse::fields())),
            ("uni_http_stream", Shape::Struct(UniHttpStream::fields())),
            ("uni_websocket", Shape::Struct(UniWebSocket::fields())),
            ("uni_grpc", Shape::Struct(UniGrpc::fields())),
            ("emulation", Shape::Struct(Emulation::fields())),
            ("admin", Shape::Struct(Admin::fields())),
            ("prometheus", Shape::Struct(Prometheus::fields())),
            ("health", Shape::Struct(Health::fields())),
            ("swagger", Shape::Struct(Swagger::fields())),
            ("debug", Shape::Struct(Debug::fields())),
            ("init", Shape::Struct(ConnInit::fields())),
            ("opentelemetry", Shape::Struct(OpenTelemetry::fields())),
            ("graphite", Shape::Struct(Graphite::fields())),
            ("usage_stats", Shape::Struct(UsageStats::fields())),
            ("node", Shape::Struct(Node::fields())),
            ("shutdown", Shape::Struct(Shutdown::fields())),
            ("pid_file", Shape::Str),
            ("enable_unreleased_features", Shape::Bool),
        ]
    }
}
