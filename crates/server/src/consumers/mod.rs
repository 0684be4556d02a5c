//! Asynchronous consumers (upstream `internal/consuming`): server API commands read from a
//! PostgreSQL outbox table, Redis streams or a NATS JetStream stream, each executed by the
//! same executor as the HTTP API.
//!
//! A message carries a command as upstream documents it: the method in a column, field or
//! header with the request object as payload, or no method and a payload of the form
//! `{"method": "publish", "payload": {...}}` (a payload given as a JSON string is read as the
//! JSON it contains, as Debezium writes JSONB). Only state-changing methods are consumed
//! (`publish`, `broadcast`, `subscribe`, `unsubscribe`, `disconnect`, `history_remove`,
//! `refresh`); other methods are skipped.
//!
//! Delivery is at least once, with upstream's ack rule: a message is acknowledged (deleted,
//! XACKed, acked) once its command ran, or once it proved unusable: a malformed message, an
//! unknown method or a request the executor refuses (bad request, unknown channel...) is
//! logged and skipped, never retried, so it cannot block what follows. Only an internal
//! error of the executor (an engine outage) leaves the message to be delivered again;
//! publishers that must not see duplicates then use `idempotency_key`.

mod nats_jetstream;
mod postgres;
mod redis_stream;

use std::collections::HashMap;
use std::time::Duration;

use bytes::Bytes;
use gyre::metrics::{Counter, Exposition, Family};
use serde::Deserialize;
use serde_json::value::RawValue;
use tokio_util::sync::CancellationToken;

use crate::api::methods::{self, Method, Outcome};
use crate::api::proto::{ApiError, BroadcastRequest, PublishRequest, Raw};
use crate::app::App;
use crate::config::Consumer;
use crate::metrics::ApiProtocol;

/// The methods a consumer executes (upstream's `dispatchMethodPayload`).
const METHODS: &[&str] = &[
    "publish",
    "broadcast",
    "subscribe",
    "unsubscribe",
    "disconnect",
    "history_remove",
    "refresh",
];

/// A command that failed in a way worth retrying (the executor's internal error): the
/// message is left unacknowledged.
#[derive(Debug, thiserror::Error)]
#[error("retryable error executing consumed {method}: code {code}")]
pub(crate) struct Retry {
    method: String,
    code: u32,
}

/// `centrifugo_consumers_*`, labelled by `consumer_name`.
#[derive(Debug)]
pub(crate) struct ConsumerMetrics {
    processed: Family<Counter>,
    errors: Family<Counter>,
}

impl Default for ConsumerMetrics {
    fn default() -> Self {
        ConsumerMetrics {
            processed: Family::new(Counter::default),
            errors: Family::new(Counter::default),
        }
    }
}

impl ConsumerMetrics {
    /// Makes both series of a consumer exist (at 0) from its start, as upstream.
    fn init(&self, name: &str) {
        self.processed.get(&[name]);
        self.errors.get(&[name]);
    }

    fn processed(&self, name: &str, n: u64) {
        self.processed.get(&[name]).add(n);
    }

    fn error(&self, name: &str) {
        self.errors.get(&[name]).inc();
    }

    pub(crate) fn write(&self, e: &mut Exposition<'_>) {
        e.counters(
            "consumers_messages_processed_total",
            "Total number of processed messages in consumer",
            &["consumer_name"],
            &self.processed,
        );
        e.counters(
            "consumers_errors_total",
            "Total number of errors in consumer",
            &["consumer_name"],
            &self.errors,
        );
    }
}

/// Connects every enabled consumer of the configuration (an unreachable service fails the
/// start, as upstream) and runs them until `stop`.
pub(crate) async fn start(app: &App, stop: CancellationToken) -> anyhow::Result<()> {
    let config = app.config();
    for consumer in &config.consumers {
        if !consumer.enabled {
            tracing::info!(consumer = %consumer.name, r#type = %consumer.r#type, "consumer is not enabled, skip");
            continue;
        }
        app.consumer_metrics.init(&consumer.name);
        let ctx = Context {
            app: app.clone(),
            name: consumer.name.clone(),
            stop: stop.clone(),
        };
        spawn(ctx, consumer).await?;
        tracing::info!(consumer = %consumer.name, r#type = %consumer.r#type, "running consumer");
    }
    Ok(())
}

async fn spawn(ctx: Context, consumer: &Consumer) -> anyhow::Result<()> {
    let name = consumer.name.clone();
    let kind = consumer.r#type.clone();
    let started = match consumer.r#type.as_str() {
        "postgresql" => postgres::start(ctx, consumer.postgresql.clone()).await,
        "redis_stream" => redis_stream::start(ctx, consumer.redis_stream.clone()).await,
        "nats_jetstream" => nats_jetstream::start(ctx, consumer.nats_jetstream.clone()).await,
        // Validation refused every other type of an enabled consumer.
        other => Err(anyhow::anyhow!("unknown consumer type: {other}")),
    };
    started.map_err(|e| e.context(format!("error initializing {kind} consumer ({name})")))
}

/// What a running consumer needs: the executor's app, its name (logs, metrics) and the
/// server's stop signal.
#[derive(Clone)]
pub(crate) struct Context {
    app: App,
    name: String,
    stop: CancellationToken,
}

impl Context {
    fn processed(&self, n: u64) {
        self.app.consumer_metrics.processed(&self.name, n);
    }

    fn error(&self) {
        self.app.consumer_metrics.error(&self.name);
    }

    /// Sleeps `d` unless the server stops first (then false).
    async fn sleep(&self, d: Duration) -> bool {
        tokio::select! {
            _ = tokio::time::sleep(d) => true,
            _ = self.stop.cancelled() => false,
        }
    }

    /// Runs one consumed command: `method` from the message's metadata, or empty when the
    /// payload is a `{method, payload}` envelope.
    pub(crate) async fn dispatch_command(&self, method: &str, payload: &[u8]) -> Result<(), Retry> {
        if !method.is_empty() {
            return self.dispatch_method(method, payload).await;
        }
        #[derive(Deserialize)]
        struct Envelope<'a> {
            #[serde(default)]
            method: String,
            #[serde(borrow, default)]
            payload: Option<&'a RawValue>,
        }
        let envelope: Envelope<'_> = match serde_json::from_slice(payload) {
            Ok(e) => e,
            Err(e) => {
                tracing::error!(consumer = %self.name, error = %e, "skip malformed consumed message");
                return Ok(());
            }
        };
        let payload = envelope.payload.map_or("null", RawValue::get);
        if payload.starts_with('"') {
            // A JSON string holding the request object.
            match serde_json::from_str::<String>(payload) {
                Ok(inner) => {
                    self.dispatch_method(&envelope.method, inner.as_bytes())
                        .await
                }
                Err(e) => {
                    tracing::error!(consumer = %self.name, error = %e, "skip malformed consumed message");
                    Ok(())
                }
            }
        } else {
            self.dispatch_method(&envelope.method, payload.as_bytes())
                .await
        }
    }

    async fn dispatch_method(&self, method: &str, payload: &[u8]) -> Result<(), Retry> {
        let Some(m) = METHODS
            .contains(&method)
            .then(|| Method::from_name(method))
            .flatten()
        else {
            tracing::info!(consumer = %self.name, method, "skip unsupported API command method");
            return Ok(());
        };
        let request = match m.decode(payload) {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(consumer = %self.name, method, error = %e, "non retryable error during consuming, skip message: invalid data");
                return Ok(());
            }
        };
        self.execute(method, request).await
    }

    async fn execute(&self, method: &str, request: methods::Request) -> Result<(), Retry> {
        let retry = |code| Retry {
            method: method.to_owned(),
            code,
        };
        match methods::execute(&self.app, request, ApiProtocol::Consumer).await {
            Ok(Outcome::Broadcast(result)) => {
                // One channel's internal error retries the whole broadcast (idempotency
                // keys keep the others from duplicating), as upstream.
                match result
                    .responses
                    .iter()
                    .find_map(|r| r.error.filter(|e| e.code == ApiError::INTERNAL.code))
                {
                    Some(e) => Err(retry(e.code)),
                    None => Ok(()),
                }
            }
            Ok(_) => Ok(()),
            Err(e) if e.code == ApiError::INTERNAL.code => Err(retry(e.code)),
            Err(e) => {
                tracing::error!(consumer = %self.name, method, code = e.code, error = e.message, "non retryable error during consuming, skip message");
                Ok(())
            }
        }
    }

    /// Publication data mode: the message is the data, channels and options come from its
    /// metadata; one channel is a `publish`, several a `broadcast`.
    pub(crate) async fn dispatch_publication(
        &self,
        publication: ConsumedPublication,
    ) -> Result<(), Retry> {
        let ConsumedPublication {
            channels,
            data,
            idempotency_key,
            delta,
            tags,
            version,
            version_epoch,
        } = publication;
        if channels.is_empty() {
            tracing::info!(consumer = %self.name, "no channels found, skipping message");
            return Ok(());
        }
        let data = Raw(Some(data));
        if channels.len() == 1 {
            let request = PublishRequest {
                channel: channels.into_iter().next().unwrap_or_default(),
                data,
                tags,
                idempotency_key,
                delta,
                version,
                version_epoch,
                ..Default::default()
            };
            self.execute("publish", methods::Request::Publish(request))
                .await
        } else {
            let request = BroadcastRequest {
                channels,
                data,
                tags,
                idempotency_key,
                delta,
                version,
                version_epoch,
                ..Default::default()
            };
            self.execute("broadcast", methods::Request::Broadcast(request))
                .await
        }
    }
}

/// A publication read in publication data mode.
#[derive(Debug, Default)]
pub(crate) struct ConsumedPublication {
    pub(crate) channels: Vec<String>,
    pub(crate) data: Bytes,
    pub(crate) idempotency_key: String,
    pub(crate) delta: bool,
    pub(crate) tags: HashMap<String, String>,
    pub(crate) version: u64,
    pub(crate) version_epoch: String,
}

/// Splits upstream's comma-separated channel list (empty → none).
pub(crate) fn split_channels(value: &str) -> Vec<String> {
    if value.is_empty() {
        return Vec::new();
    }
    value.split(',').map(str::to_owned).collect()
}

/// Go's `strconv.ParseBool`, which upstream uses for the delta flag.
pub(crate) fn parse_bool(value: &str) -> Option<bool> {
    match value {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// Upstream's retry delay: doubling from about 10 ms per retry, capped at 5 s, with jitter.
pub(crate) fn backoff(retries: u32) -> Duration {
    const MIN_MS: u64 = 10;
    const MAX: Duration = Duration::from_secs(5);
    let jitter = rand::random_range(0..MIN_MS);
    let factor = 1u64 << retries.min(16);
    Duration::from_millis((MIN_MS + jitter).saturating_mul(factor)).min(MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channels_and_bools_parse_as_upstream() {
        assert!(split_channels("").is_empty());
        assert_eq!(split_channels("a,b"), ["a", "b"]);
        assert_eq!(parse_bool("true"), Some(true));
        assert_eq!(parse_bool("0"), Some(false));
        assert_eq!(parse_bool("yes"), None);
    }

    #[test]
    fn backoff_doubles_and_is_capped() {
        assert!(backoff(1) >= Duration::from_millis(20) && backoff(1) < Duration::from_millis(40));
        assert!(backoff(3) >= Duration::from_millis(80));
        assert_eq!(backoff(30), Duration::from_secs(5));
    }
}
