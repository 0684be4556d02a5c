//! Dedicated PUB/SUB connections and their readers.
//!
//! Each shard has `pubsub_partitions` connections; a channel always uses the same one.
//! One task per connection reads messages and calls the handlers in arrival order, which
//! is Redis' PUBLISH order for a channel — that is what keeps per-channel delivery in
//! offset order. The set of subscribed Redis channels is kept here, so a connection that
//! drops (EOF, error, failed health PING) is reopened with backoff, every channel is
//! subscribed again and the node is told to re-check its positions.

use std::collections::HashSet;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use gyre::{BrokerError, BrokerEventHandler, ControlEventHandler, EngineError};
use redis::aio::PubSubSink;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::keys::Keys;
use crate::payload::{self, Push};
use crate::shard::Shard;
use crate::stats::{PubSubError, PubSubStats};

/// Channels per SUBSCRIBE when resubscribing, so one command stays reasonably small.
const RESUBSCRIBE_BATCH: usize = 512;
const BACKOFF_MIN: Duration = Duration::from_millis(50);
const BACKOFF_MAX: Duration = Duration::from_secs(1);

/// The control handler with the node channel it listens on.
struct ControlTarget {
    node_channel: String,
    handler: Arc<dyn ControlEventHandler>,
}

/// Routes PUB/SUB messages to the broker or control handler.
pub(crate) struct Dispatcher {
    keys: Keys,
    /// Map channels: payloads in the map broker's format ([`payload::parse_map`]).
    map: bool,
    control_channel: String,
    pub(crate) broker: OnceLock<Arc<dyn BrokerEventHandler>>,
    control: OnceLock<ControlTarget>,
    pub(crate) stats: Arc<PubSubStats>,
}

impl Dispatcher {
    pub(crate) fn new(keys: Keys, stats: Arc<PubSubStats>) -> Self {
        Dispatcher {
            stats,
            control_channel: keys.control(),
            keys,
            map: false,
            broker: OnceLock::new(),
            control: OnceLock::new(),
        }
    }

    /// A dispatcher for the map broker's PUB/SUB channels (no control messages).
    pub(crate) fn for_map(keys: Keys, stats: Arc<PubSubStats>) -> Self {
        Dispatcher {
            map: true,
            ..Self::new(keys, stats)
        }
    }

    /// Sets the control handler; false when one was set already.
    pub(crate) fn set_control(
        &self,
        node_channel: String,
        handler: Arc<dyn ControlEventHandler>,
    ) -> bool {
        self.control
            .set(ControlTarget {
                node_channel,
                handler,
            })
            .is_ok()
    }

    fn deliver(&self, channel: &str, payload: Bytes) {
        if let Some(control) = self.control.get()
            && (channel == self.control_channel || channel == control.node_channel)
        {
            control.handler.handle_control(payload);
            return;
        }
        let (Some(name), Some(handler)) = (self.keys.channel_of(channel), self.broker.get()) else {
            return;
        };
        let parsed = if self.map {
            payload::parse_map(&payload)
        } else {
            payload::parse(&payload)
        };
        match parsed {
            Ok(Push::Publication {
                publication,
                position,
                use_delta,
                prev,
            }) => handler.handle_publication(name, publication, position, use_delta, prev),
            Ok(Push::Join(info)) => handler.handle_join(name, info),
            Ok(Push::Leave(info)) => handler.handle_leave(name, info),
            Err(e) => {
                self.stats.error(PubSubError::HandleClientMessage);
                tracing::warn!(channel = name, error = %e, "dropping malformed Redis PUB/SUB message")
            }
        }
    }

    fn resubscribed(&self) {
        if let Some(handler) = self.broker.get() {
            handler.handle_resubscribed();
        }
    }
}

struct State {
    /// `None` while disconnected.
    sink: Option<PubSubSink>,
    /// Every Redis channel this connection must be subscribed to.
    channels: HashSet<String>,
}

/// One dedicated PUB/SUB connection of a shard.
pub(crate) struct Partition {
    shard: Arc<Shard>,
    state: tokio::sync::Mutex<State>,
    connected: watch::Sender<bool>,
    stats: Arc<PubSubStats>,
}

fn unavailable(shard: &Shard, what: &str) -> BrokerError {
    EngineError::msg(format!("{} PUB/SUB: {what}", shard.name)).into()
}

fn failed(shard: &Shard, e: redis::RedisError) -> BrokerError {
    EngineError::with_context(format!("{} PUB/SUB", shard.name), e).into()
}

impl Partition {
    pub(crate) fn new(shard: Arc<Shard>, stats: Arc<PubSubStats>) -> Self {
        Partition {
            shard,
            stats,
            state: tokio::sync::Mutex::new(State {
                sink: None,
                channels: HashSet::new(),
            }),
            connected: watch::Sender::new(false),
        }
    }

    /// Subscribes now; fails with `Unavailable` while the connection is down (the channel
    /// is then not remembered: the caller saw the failure and will retry).
    pub(crate) async fn subscribe(&self, names: Vec<String>) -> Result<(), BrokerError> {
        let mut state = self.state.lock().await;
        let new: Vec<String> = names
            .into_iter()
            .filter(|n| !state.channels.contains(n))
            .collect();
        if new.is_empty() {
            return Ok(());
        }
        let sink = state
            .sink
            .as_mut()
            .ok_or_else(|| unavailable(&self.shard, "not connected"))?;
        let result = match tokio::time::timeout(self.shard.io_timeout, sink.subscribe(&new)).await {
            Ok(Ok(())) => {
                state.channels.extend(new);
                return Ok(());
            }
            Ok(Err(e)) => failed(&self.shard, e),
            Err(_) => unavailable(&self.shard, "SUBSCRIBE timed out"),
        };
        self.stats.error(PubSubError::SubscribeChannel);
        Err(result)
    }

    /// Forgets the channel (so a reconnect will not subscribe it again) and unsubscribes.
    pub(crate) async fn unsubscribe(&self, name: &str) -> Result<(), BrokerError> {
        let mut state = self.state.lock().await;
        if !state.channels.remove(name) {
            return Ok(());
        }
        let Some(sink) = state.sink.as_mut() else {
            // Disconnected: the new connection will simply not subscribe it.
            return Ok(());
        };
        match tokio::time::timeout(self.shard.io_timeout, sink.unsubscribe(name)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(failed(&self.shard, e)),
            Err(_) => Err(unavailable(&self.shard, "UNSUBSCRIBE timed out")),
        }
    }

    /// Waits until the connection is up, at most `within`.
    pub(crate) async fn wait_connected(&self, within: Duration) -> bool {
        let mut rx = self.connected.subscribe();
        tokio::time::timeout(within, rx.wait_for(|up| *up))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    /// Opens the connection and subscribes every remembered channel.
    async fn connect(&self) -> Result<redis::aio::PubSubStream, String> {
        let (mut sink, stream) = match self.shard.pubsub().await {
            Ok(conn) => conn.split(),
            Err(e) => {
                self.stats.error(PubSubError::Connection);
                return Err(e);
            }
        };
        let mut state = self.state.lock().await;
        let channels: Vec<&String> = state.channels.iter().collect();
        for batch in channels.chunks(RESUBSCRIBE_BATCH) {
            let e = match tokio::time::timeout(self.shard.io_timeout, sink.subscribe(batch)).await {
                Ok(Ok(())) => continue,
                Ok(Err(e)) => e.to_string(),
                Err(_) => "SUBSCRIBE timed out".to_owned(),
            };
            self.stats.error(PubSubError::SubscribeChannel);
            return Err(e);
        }
        state.sink = Some(sink);
        Ok(stream)
    }

    /// PINGs through the subscribed connection: a peer that vanished without closing the
    /// socket is noticed here rather than never.
    async fn ping(&self) -> bool {
        let mut state = self.state.lock().await;
        let Some(sink) = state.sink.as_mut() else {
            return false;
        };
        matches!(
            tokio::time::timeout(self.shard.io_timeout, sink.ping::<redis::Value>()).await,
            Ok(Ok(_))
        )
    }

    async fn disconnected(&self) {
        self.state.lock().await.sink = None;
        self.connected.send_replace(false);
    }
}

/// Reads one partition forever: connect, resubscribe, read until the connection drops,
/// repeat with backoff. Ends when `cancel` fires.
pub(crate) async fn read_loop(
    partition: Arc<Partition>,
    dispatcher: Arc<Dispatcher>,
    cancel: CancellationToken,
) {
    let mut failures: u32 = 0;
    let mut first = true;
    // Health PINGs are spaced by io_timeout: often enough to notice a dead peer within a
    // few timeouts, rare enough to cost nothing.
    let ping_every = partition.shard.io_timeout.max(Duration::from_secs(1));
    loop {
        let stream = tokio::select! {
            () = cancel.cancelled() => return,
            r = partition.connect() => r,
        };
        let mut stream = match stream {
            Ok(stream) => stream,
            Err(e) => {
                failures = failures.saturating_add(1);
                let delay = BACKOFF_MIN
                    .saturating_mul(1 << failures.min(6))
                    .min(BACKOFF_MAX);
                tracing::warn!(shard = %partition.shard.name, error = %e, ?delay, "Redis PUB/SUB connect failed");
                tokio::select! {
                    () = cancel.cancelled() => return,
                    () = tokio::time::sleep(delay) => continue,
                }
            }
        };
        failures = 0;
        partition.connected.send_replace(true);
        if !first {
            tracing::info!(shard = %partition.shard.name, "Redis PUB/SUB reconnected and resubscribed");
            dispatcher.resubscribed();
        }
        first = false;
        let mut health = tokio::time::interval(ping_every);
        health.tick().await;
        loop {
            tokio::select! {
                () = cancel.cancelled() => return,
                msg = stream.next() => match msg {
                    Some(msg) => dispatcher.deliver(
                        msg.get_channel_name(),
                        Bytes::copy_from_slice(msg.get_payload_bytes()),
                    ),
                    None => break,
                },
                _ = health.tick() => {
                    if !partition.ping().await {
                        break;
                    }
                }
            }
        }
        partition.stats.error(PubSubError::Connection);
        tracing::warn!(shard = %partition.shard.name, "Redis PUB/SUB connection lost");
        partition.disconnected().await;
    }
}
