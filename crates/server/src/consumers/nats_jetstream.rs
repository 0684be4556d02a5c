//! The NATS JetStream consumer (upstream `consuming/nats_jetstream.go`).
//!
//! A durable pull consumer named `durable_consumer_name` on the existing stream
//! `stream_name` (created or updated with `subjects` as filter, `deliver_policy` `new` or
//! `all`, a 30 s ack wait and `max_ack_pending`; or looked up as it is with
//! `use_existing_consumer`). Each message is acked once its command ran or was skipped as
//! unusable; a retryable failure naks it with a delay growing with its delivery count, so
//! JetStream delivers it again. A message acked by nobody (the node died) comes back after
//! the ack wait, to whichever node consumes then.
//!
//! The method is in the `method_header` header (without it, the payload is a
//! `{method, payload}` envelope); in publication data mode the payload is the data and
//! headers name channels and options.

use std::collections::HashMap;
use std::time::Duration;

use anyhow::Context as _;
use async_nats::jetstream::consumer::pull;
use async_nats::jetstream::consumer::{AckPolicy, DeliverPolicy};
use async_nats::jetstream::{self, AckKind, Message};
use futures_util::StreamExt as _;

use super::{ConsumedPublication, Context, Retry, parse_bool, split_channels};
use crate::config::NatsJetStreamConsumerConfig;

const ACK_WAIT: Duration = Duration::from_secs(30);

pub(super) async fn start(ctx: Context, config: NatsJetStreamConsumerConfig) -> anyhow::Result<()> {
    let mut options = async_nats::ConnectOptions::new()
        .retry_on_initial_connect()
        .max_reconnects(None);
    // `credentials_file` was refused at validation.
    if !config.username.is_empty() {
        options = options.user_and_password(config.username.clone(), config.password.clone());
    } else if !config.token.is_empty() {
        options = options.token(config.token.clone());
    }
    let client = tokio::time::timeout(
        Duration::from_secs(10),
        options.connect(config.url.as_str()),
    )
    .await
    .context("connecting to NATS: timed out")?
    .context("connecting to NATS")?;
    let consumer = tokio::time::timeout(Duration::from_secs(10), consumer(&client, &config))
        .await
        .context("creating the JetStream consumer: timed out")??;
    tokio::spawn(run(ctx, config, client, consumer));
    Ok(())
}

async fn consumer(
    client: &async_nats::Client,
    config: &NatsJetStreamConsumerConfig,
) -> anyhow::Result<jetstream::consumer::Consumer<pull::Config>> {
    let js = jetstream::new(client.clone());
    let stream = js
        .get_stream(&config.stream_name)
        .await
        .with_context(|| format!("looking up JetStream stream {}", config.stream_name))?;
    if config.use_existing_consumer {
        return stream
            .get_consumer(&config.durable_consumer_name)
            .await
            .map_err(|e| {
                anyhow::anyhow!(
                    "failed to lookup existing consumer {}: {e}",
                    config.durable_consumer_name
                )
            });
    }
    let deliver_policy = if config.deliver_policy == "all" {
        DeliverPolicy::All
    } else {
        DeliverPolicy::New
    };
    stream
        .create_consumer(pull::Config {
            name: Some(config.durable_consumer_name.clone()),
            durable_name: Some(config.durable_consumer_name.clone()),
            // Validation allowed one subject at most (several need NATS 2.10).
            filter_subject: config.subjects.first().cloned().unwrap_or_default(),
            deliver_policy,
            ack_policy: AckPolicy::Explicit,
            ack_wait: ACK_WAIT,
            max_ack_pending: config.max_ack_pending,
            ..Default::default()
        })
        .await
        .context("failed to create JetStream consumer")
}

async fn run(
    ctx: Context,
    config: NatsJetStreamConsumerConfig,
    client: async_nats::Client,
    mut consumer: jetstream::consumer::Consumer<pull::Config>,
) {
    let mut retries = 0;
    while !ctx.stop.is_cancelled() {
        let mut messages = match consumer.messages().await {
            Ok(m) => m,
            Err(e) => {
                retries += 1;
                ctx.error();
                tracing::error!(consumer = %ctx.name, error = %e, "error starting to consume");
                if !ctx.sleep(super::backoff(retries)).await {
                    return;
                }
                // The consumer may have been deleted: make it again.
                if let Ok(c) = self::consumer(&client, &config).await {
                    consumer = c;
                }
                continue;
            }
        };
        loop {
            let next = tokio::select! {
                m = messages.next() => m,
                _ = ctx.stop.cancelled() => return,
            };
            match next {
                Some(Ok(message)) => {
                    retries = 0;
                    handle(&ctx, &config, message).await;
                }
                Some(Err(e)) => {
                    ctx.error();
                    tracing::warn!(consumer = %ctx.name, error = %e, "error during consuming");
                    // Heartbeat losses and a deleted consumer end this stream of messages;
                    // anything else is reported and consuming goes on.
                    if matches!(
                        e.kind(),
                        pull::MessagesErrorKind::MissingHeartbeat
                            | pull::MessagesErrorKind::ConsumerDeleted
                    ) {
                        break;
                    }
                }
                None => break,
            }
        }
        retries += 1;
        if !ctx.sleep(super::backoff(retries)).await {
            return;
        }
        if let Ok(c) = self::consumer(&client, &config).await {
            consumer = c;
        }
    }
}

async fn handle(ctx: &Context, config: &NatsJetStreamConsumerConfig, message: Message) {
    match process(ctx, config, &message).await {
        Ok(()) => match message.ack().await {
            Ok(()) => ctx.processed(1),
            Err(e) => {
                ctx.error();
                tracing::error!(consumer = %ctx.name, error = %e, "failed to ack message");
            }
        },
        Err(e) => {
            tracing::error!(consumer = %ctx.name, error = %e, "processing message failed");
            ctx.error();
            let delivered = message.info().map_or(1, |i| i.delivered.clamp(1, 10));
            let delay = super::backoff(delivered as u32);
            if let Err(e) = message.ack_with(AckKind::Nak(Some(delay))).await {
                tracing::error!(consumer = %ctx.name, error = %e, "failed to nak message");
            }
        }
    }
}

fn header(message: &Message, key: &str) -> String {
    if key.is_empty() {
        return String::new();
    }
    message
        .headers
        .as_ref()
        .and_then(|h| h.get(key))
        .map(|v| v.as_str().to_owned())
        .unwrap_or_default()
}

async fn process(
    ctx: &Context,
    config: &NatsJetStreamConsumerConfig,
    message: &Message,
) -> Result<(), Retry> {
    let mode = &config.publication_data_mode;
    if !mode.enabled {
        let method = header(message, &config.method_header);
        return ctx.dispatch_command(&method, &message.payload).await;
    }
    let delta = header(message, &mode.delta_header);
    let delta = if delta.is_empty() {
        false
    } else if let Some(d) = parse_bool(&delta) {
        d
    } else {
        tracing::error!(consumer = %ctx.name, "error parsing delta header, skipping message");
        return Ok(());
    };
    let version = header(message, &mode.version_header);
    let version = if version.is_empty() {
        0
    } else if let Ok(v) = version.parse() {
        v
    } else {
        tracing::error!(consumer = %ctx.name, "error parsing version header, skipping message");
        return Ok(());
    };
    let mut tags = HashMap::new();
    if let Some(headers) = &message.headers
        && !mode.tags_header_prefix.is_empty()
    {
        for (name, values) in headers.iter() {
            let name = name.to_string();
            if let (Some(tag), Some(value)) = (
                name.strip_prefix(mode.tags_header_prefix.as_str()),
                values.first(),
            ) {
                tags.insert(tag.to_owned(), value.as_str().to_owned());
            }
        }
    }
    let publication = ConsumedPublication {
        channels: split_channels(&header(message, &mode.channels_header)),
        data: message.payload.clone(),
        idempotency_key: header(message, &mode.idempotency_key_header),
        delta,
        tags,
        version,
        version_epoch: header(message, &mode.version_epoch_header),
    };
    ctx.dispatch_publication(publication).await
}
