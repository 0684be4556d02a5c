//! Real-time transports, bidirectional and unidirectional, and connection init.

use super::*;

sections! {
    /// Upstream `WebSocket`.
    WebSocket {
        disabled: bool,
        handler_prefix: String = "/connection/websocket",
        compression: bool,
        compression_min_size: i64,
        compression_level: i64 = 1,
        read_buffer_size: i64,
        use_write_buffer_pool: bool,
        write_buffer_size: i64,
        write_timeout: Duration = "1s",
        message_size_limit: i64 = 65536,
        decompressed_message_size_limit: i64,
    }

    /// Upstream `SSE`.
    Sse {
        enabled: bool,
        handler_prefix: String = "/connection/sse",
        max_request_body_size: i64 = 65536,
    }

    /// Upstream `HTTPStream`.
    HttpStream {
        enabled: bool,
        handler_prefix: String = "/connection/http_stream",
        max_request_body_size: i64 = 65536,
    }

    /// Upstream `WebTransport`.
    WebTransport {
        enabled: bool,
        handler_prefix: String = "/connection/webtransport",
        message_size_limit: i64 = 65536,
    }

    /// Upstream `UniWebSocket`.
    UniWebSocket {
        enabled: bool,
        handler_prefix: String = "/connection/uni_websocket",
        compression: bool,
        compression_min_size: i64,
        compression_level: i64 = 1,
        read_buffer_size: i64,
        use_write_buffer_pool: bool,
        write_buffer_size: i64,
        write_timeout: Duration = "1s",
        message_size_limit: i64 = 65536,
        decompressed_message_size_limit: i64,
        disable_closing_handshake: bool,
        disable_disconnect_push: bool,
        join_push_messages: bool,
    }

    /// Upstream `UniHTTPStream`.
    UniHttpStream {
        enabled: bool,
        handler_prefix: String = "/connection/uni_http_stream",
        max_request_body_size: i64 = 65536,
        connect_code_to_http_response: ConnectCodeToHttpResponse,
    }

    /// Upstream `UniSSE`.
    UniSse {
        enabled: bool,
        handler_prefix: String = "/connection/uni_sse",
        max_request_body_size: i64 = 65536,
        connect_code_to_http_response: ConnectCodeToHttpResponse,
    }

    /// Upstream `UniGRPC`.
    UniGrpc {
        enabled: bool,
        address: String,
        port: i64 = 11000,
        max_receive_message_size: i64,
        tls: TlsConfig,
    }

    /// Upstream `Emulation`.
    Emulation {
        handler_prefix: String = "/emulation",
        max_request_body_size: i64 = 65536,
    }

    /// Upstream `ConnInit`.
    ConnInit {
        enabled: bool,
        handler_prefix: String = "/connection/init",
    }

    /// Upstream `ConnectCodeToHTTPResponse`.
    ConnectCodeToHttpResponse {
        enabled: bool,
        transforms: Vec<ConnectCodeToHttpResponseTransform>,
    }

    /// Upstream `ConnectCodeToHTTPResponseTransform`.
    ConnectCodeToHttpResponseTransform {
        code: u32,
        to: TransformedConnectErrorHttpResponse,
    }

    /// Upstream `TransformedConnectErrorHttpResponse`.
    TransformedConnectErrorHttpResponse {
        status_code: i64,
        body: String,
    }
}
