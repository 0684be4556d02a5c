//! Proxies to the application backend (HTTP and GRPC) and their error transforms.

use std::collections::BTreeMap;

use super::*;

sections! {
    /// Upstream `NamedProxy`.
    @named NamedProxy {
        name: String,
        proxy: @flatten Proxy,
    }

    /// Upstream `Proxy`.
    Proxy {
        endpoint: String,
        timeout: Duration = "1s",
        proxy_common: @flatten ProxyCommon,
    }

    /// Upstream `ProxyCommon`.
    ProxyCommon {
        http_headers: Vec<String>,
        grpc_metadata: Vec<String>,
        emulated_headers: Vec<String>,
        binary_encoding: bool,
        include_connection_meta: bool,
        http: ProxyCommonHttp,
        grpc: ProxyCommonGrpc,
    }

    /// Upstream `ProxyCommonHTTP`.
    ProxyCommonHttp {
        tls: TlsConfig,
        static_headers: BTreeMap<String, String>,
        status_to_code_transforms: Vec<HttpStatusToCodeTransform>,
    }

    /// Upstream `ProxyCommonGRPC`.
    ProxyCommonGrpc {
        tls: TlsConfig,
        credentials_key: String,
        credentials_value: String,
        compression: bool,
        static_metadata: BTreeMap<String, String>,
    }

    /// Upstream `HttpStatusToCodeTransform`.
    HttpStatusToCodeTransform {
        status_code: i64,
        to_error: TransformError,
        to_disconnect: TransformDisconnect,
    }

    /// Upstream `TransformError`.
    TransformError {
        code: u32,
        message: String,
        temporary: bool,
    }

    /// Upstream `TransformDisconnect`.
    TransformDisconnect {
        code: u32,
        reason: String,
    }
}
