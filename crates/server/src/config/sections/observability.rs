//! Metrics, health checks, tracing and usage statistics.

use super::*;

sections! {
    /// Upstream `Prometheus`.
    Prometheus {
        enabled: bool,
        handler_prefix: String = "/metrics",
        instrument_http_handlers: bool,
        recovered_publications_histogram: bool,
        native_histograms: bool,
    }

    /// Upstream `Graphite`.
    Graphite {
        enabled: bool,
        host: String = "localhost",
        port: i64 = 2003,
        prefix: String = "centrifugo",
        interval: Duration = "10s",
        tags: bool,
    }

    /// Upstream `OpenTelemetry`.
    OpenTelemetry {
        enabled: bool,
        api: bool,
        consuming: bool,
        google_cloud_adc_auth: bool,
    }

    /// Upstream `Health`.
    Health {
        enabled: bool,
        handler_prefix: String = "/health",
    }

    /// Upstream `UsageStats`.
    UsageStats {
        disabled: bool,
    }
}
