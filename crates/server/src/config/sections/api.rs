//! The server API over HTTP and GRPC.

use super::*;

sections! {
    /// Upstream `HttpAPI`.
    HttpApi {
        disabled: bool,
        handler_prefix: String = "/api",
        key: String,
        error_mode: String,
        external: bool,
        insecure: bool,
    }

    /// Upstream `GrpcAPI`.
    GrpcApi {
        enabled: bool,
        error_mode: String,
        address: String,
        port: i64 = 10000,
        key: String,
        tls: TlsConfig,
        reflection: bool,
        max_receive_message_size: i64,
    }
}
