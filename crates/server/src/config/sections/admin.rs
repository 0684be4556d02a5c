//! The admin web interface and the debug and Swagger endpoints.

use super::*;

sections! {
    /// Upstream `Admin`.
    Admin {
        enabled: bool,
        handler_prefix: String,
        password: String,
        secret: String,
        insecure: bool,
        web_path: String,
        web_proxy_address: String,
        external: bool,
    }

    /// Upstream `Debug`.
    Debug {
        enabled: bool,
        handler_prefix: String = "/debug/pprof",
    }

    /// Upstream `Swagger`.
    Swagger {
        enabled: bool,
        handler_prefix: String = "/swagger",
    }
}
