//! What `/metrics` serves: the node's families (from the library), the server API's and
//! the proxies' (Centrifugo's `internal/metrics`), and the process collector's.

mod process;

use std::time::Instant;

use gyre::metrics::{Counter, DEFAULT_BUCKETS, Exposition, Family, Histogram, Kind};

use crate::api::methods::Method;
use crate::api::proto::ApiError;
use crate::app::App;

/// The `protocol` label of the API metrics: which server API a call came through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ApiProtocol {
    Http = 0,
    Grpc = 1,
    /// Commands of the asynchronous consumers.
    Consumer = 2,
}

impl ApiProtocol {
    const ALL: [ApiProtocol; 3] = [ApiProtocol::Http, ApiProtocol::Grpc, ApiProtocol::Consumer];

    fn label(self) -> &'static str {
        match self {
            ApiProtocol::Http => "http",
            ApiProtocol::Grpc => "grpc",
            ApiProtocol::Consumer => "consumer",
        }
    }
}

/// Server API calls: one duration per protocol and method, resolved by index; errors by
/// code (rare).
#[derive(Debug)]
pub(crate) struct ApiMetrics {
    /// `[protocol][method]`, methods in `Method::ALL` order.
    durations: [Box<[Histogram]>; 3],
    errors: Family<Counter>,
}

impl Default for ApiMetrics {
    fn default() -> Self {
        let row = || {
            Method::ALL
                .iter()
                .map(|_| Histogram::with_quantiles(DEFAULT_BUCKETS))
                .collect()
        };
        ApiMetrics {
            durations: [row(), row(), row()],
            errors: Family::new(Counter::default),
        }
    }
}

impl ApiMetrics {
    /// Records one call of `method` that began at `started`.
    pub(crate) fn observe(
        &self,
        protocol: ApiProtocol,
        method: Method,
        started: Instant,
        error: Option<&ApiError>,
    ) {
        self.durations[protocol as usize][method as usize].observe_since(started);
        if let Some(e) = error {
            self.errors
                .get(&[protocol.label(), method.name(), &e.code.to_string()])
                .inc();
        }
    }

    fn write(&self, e: &mut Exposition<'_>) {
        e.counters(
            "api_command_errors_total",
            "Total errors in API commands.",
            &["protocol", "method", "error"],
            &self.errors,
        );
        let mut members = Vec::new();
        for protocol in ApiProtocol::ALL {
            for (method, h) in Method::ALL
                .iter()
                .zip(self.durations[protocol as usize].iter())
            {
                if h.count() > 0 {
                    members.push((
                        vec![("protocol", protocol.label()), ("method", method.name())],
                        h,
                    ));
                }
            }
        }
        e.durations(
            "api_command_duration_seconds",
            "Duration of API per command.",
            &members,
        );
    }
}

/// `node_incoming_http_requests_total`: with `prometheus.instrument_http_handlers`,
/// every HTTP request by its route (the pattern it matched, as upstream labels by the
/// registered pattern so that client-chosen paths cannot grow the series; `other` when
/// none matched), method and status.
#[derive(Debug)]
pub(crate) struct HttpMetrics {
    requests: Family<Counter>,
    /// `node_client_connection_limit`: connection requests refused with 503 because the
    /// node already held `client.connection_limit` clients (upstream's middleware counts
    /// there, and not the refusals of `client.connection_rate_limit`).
    pub(crate) connection_limit: Counter,
}

impl Default for HttpMetrics {
    fn default() -> Self {
        HttpMetrics {
            requests: Family::new(Counter::default),
            connection_limit: Counter::default(),
        }
    }
}

impl HttpMetrics {
    pub(crate) fn request(&self, path: &str, method: &str, status: u16) {
        // Not the message hot path (one lookup per HTTP request, opt-in as upstream's).
        self.requests
            .get(&[path, method, &status.to_string()])
            .inc();
    }

    fn write(&self, e: &mut Exposition<'_>) {
        e.counters(
            "node_incoming_http_requests_total",
            "Number of incoming HTTP requests",
            &["path", "method", "status"],
            &self.requests,
        );
        e.family(
            "node_client_connection_limit",
            "Number of refused requests due to node client connection limit.",
            Kind::Counter,
        )
        .value(&[], self.connection_limit.get());
    }
}

/// Counts one request in [`HttpMetrics`] (the middleware of
/// `prometheus.instrument_http_handlers`).
pub(crate) async fn instrument(
    axum::extract::State(app): axum::extract::State<App>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let pattern = request
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map(|p| p.as_str().to_owned());
    let uri_path = request.uri().path().to_owned();
    let method = request.method().clone();
    let response = next.run(request).await;
    let status = response.status();
    // Upstream registers one pattern per API method (`/api/publish`); Gyre routes
    // `/api/{method}`, so a served method takes its own path and an unknown one, which
    // the client chose, counts as `other` (as no pattern of upstream's matches it).
    let path = match pattern {
        Some(p) if !p.contains('{') => p,
        Some(_) if status != http::StatusCode::NOT_FOUND => uri_path,
        _ => "other".to_owned(),
    };
    app.http_metrics
        .request(&path, method.as_str(), status.as_u16());
    response
}

/// Every proxy with its `name` label: the event sections are `default`.
fn write_proxies(app: &App, e: &mut Exposition<'_>) {
    let proxies = app.proxies.all();
    type Row<'p> = (Vec<(&'p str, &'p str)>, &'p gyre_proxy::EventStats);
    let mut rows: Vec<Row<'_>> = Vec::new();
    for (name, proxy) in &proxies {
        for (event, stats) in proxy.stats().events() {
            if stats.duration.count() > 0 || stats.inflight.get() != 0 {
                rows.push((
                    vec![
                        ("protocol", proxy.protocol()),
                        ("type", event),
                        ("name", name),
                    ],
                    stats,
                ));
            }
        }
    }
    let durations: Vec<_> = rows.iter().map(|(l, s)| (l.clone(), &s.duration)).collect();
    e.durations(
        "proxy_duration_seconds",
        "Duration of proxy call.",
        &durations,
    );
    e.family("proxy_errors", "Proxy call error count.", Kind::Counter);
    for (labels, s) in &rows {
        e.value(labels, s.errors.get());
    }
    e.family(
        "proxy_inflight_requests",
        "Number of inflight proxy requests.",
        Kind::Gauge,
    );
    for (labels, s) in &rows {
        e.value(labels, s.inflight.get());
    }
}

/// The whole exposition of `/metrics`.
pub(crate) fn render(app: &App) -> String {
    let mut out = String::with_capacity(64 * 1024);
    app.node.write_metrics("centrifugo", &mut out);
    {
        let mut e = Exposition::new(&mut out, "centrifugo");
        app.api_metrics.write(&mut e);
        app.http_metrics.write(&mut e);
        write_proxies(app, &mut e);
        app.consumer_metrics.write(&mut e);
        if let Some(broker) = &app.redis_broker {
            broker.write_metrics(&mut e);
        }
    }
    process::write(&mut out);
    out
}
