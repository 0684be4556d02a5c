//! [`NatsBroker`]: the [`Broker`] and [`Controller`] over one NATS connection.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_nats::client::{PublishErrorKind, SubscribeErrorKind};
use async_nats::connection::State;
use async_nats::{Client, ConnectOptions, Event, Subscriber};
use bytes::Bytes;
use futures_util::StreamExt;
use gyre::{
    BoxFuture, Broker, BrokerError, BrokerEventHandler, ClientInfo, ControlEventHandler,
    Controller, EngineError, HistoryOptions, HistoryResult, Publication, PublishOptions,
    PublishResult, StreamPosition,
};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::codec::{self, Event as ChannelEvent};
use crate::config::{NatsConfig, RawMode};

/// Message of the error that [`Broker::history`] and [`Broker::remove_history`] return:
/// NATS carries publications at most once and keeps no streams.
pub const HISTORY_NOT_AVAILABLE: &str =
    "history is not available with the NATS broker (use the Redis or memory broker)";

/// A [`Broker`] and [`Controller`] over NATS PUB/SUB, wire-compatible with Centrifugo's
/// NATS broker.
///
/// Publications, joins and leaves are delivered at most once to the nodes subscribed to
/// the channel; history is not available. Clones share the connection, so one value can
/// be handed to a node both as its broker and as its controller. Dropping the last clone
/// closes the connection.
///
/// After a lost connection the client reconnects and resubscribes by itself; once NATS has
/// taken the subscriptions back, [`BrokerEventHandler::handle_resubscribed`] is called.
/// While disconnected, publishing fails at once with [`BrokerError::Unavailable`] rather
/// than being buffered.
#[derive(Clone)]
pub struct NatsBroker {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for NatsBroker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NatsBroker")
            .field("url", &self.inner.url)
            .field("prefix", &self.inner.prefix)
            .field("state", &self.inner.client.connection_state())
            .finish_non_exhaustive()
    }
}

/// A channel's slot: its reader task while subscribed. The async lock orders concurrent
/// subscribe/unsubscribe calls of the channel.
type ChannelSlot = Arc<tokio::sync::Mutex<Option<JoinHandle<()>>>>;

/// The handler, set once by [`Broker::run`] and read by every reader task.
type SharedHandler = Arc<OnceLock<Arc<dyn BrokerEventHandler>>>;

struct Inner {
    client: Client,
    url: String,
    prefix: String,
    raw_mode: Option<RawMode>,
    write_timeout: Duration,
    handler: SharedHandler,
    /// Channel → its slot; channels do not wait for each other.
    subs: parking_lot::Mutex<HashMap<String, ChannelSlot>>,
    control: parking_lot::Mutex<Option<JoinHandle<()>>>,
    supervisor: JoinHandle<()>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Tasks hold subscriptions, and subscriptions keep the connection open.
        self.supervisor.abort();
        if let Some(task) = self.control.get_mut().take() {
            task.abort();
        }
        for entry in self.subs.get_mut().values() {
            if let Ok(mut guard) = entry.try_lock()
                && let Some(task) = guard.take()
            {
                task.abort();
            }
        }
    }
}

impl NatsBroker {
    /// Connects to NATS. Fails with [`BrokerError::Unavailable`] when the server cannot be
    /// reached within `dial_timeout`; later losses are repaired by reconnecting.
    pub async fn connect(config: NatsConfig) -> Result<Self, BrokerError> {
        let (events_tx, events_rx) = mpsc::unbounded_channel();
        let mut options = ConnectOptions::new()
            .name("gyre")
            .connection_timeout(config.dial_timeout)
            .max_reconnects(None)
            .event_callback(move |event| {
                let events_tx = events_tx.clone();
                async move {
                    let _ = events_tx.send(event);
                }
            });
        if let Some(tls) = config.tls {
            options = options.tls_client_config(tls).require_tls(true);
        }
        let client = options.connect(config.url.as_str()).await.map_err(|e| {
            EngineError::with_context(format!("connecting to NATS at {}", config.url), e)
        })?;
        let handler = Arc::new(OnceLock::new());
        let supervisor = tokio::spawn(supervise(
            client.clone(),
            events_rx,
            handler.clone(),
            config.write_timeout,
        ));
        Ok(NatsBroker {
            inner: Arc::new(Inner {
                client,
                url: config.url,
                prefix: config.prefix,
                raw_mode: config.raw_mode,
                write_timeout: config.write_timeout,
                handler,
                subs: parking_lot::Mutex::default(),
                control: parking_lot::Mutex::default(),
                supervisor,
            }),
        })
    }

    /// Whether the connection to NATS is currently up.
    pub fn is_connected(&self) -> bool {
        self.inner.client.connection_state() == State::Connected
    }

    /// The subject of a channel: `<prefix>.client.<channel>`, or the raw-mode subject.
    pub fn channel_subject(&self, channel: &str) -> String {
        match &self.inner.raw_mode {
            Some(raw) => raw.subject(channel),
            None => format!("{}.client.{channel}", self.inner.prefix),
        }
    }

    /// The subject of control broadcasts: `<prefix>.control`.
    pub fn control_subject(&self) -> String {
        format!("{}.control", self.inner.prefix)
    }

    /// The subject of control messages for one node: `<prefix>.node.<id>`.
    pub fn node_subject(&self, node_id: &str) -> String {
        format!("{}.node.{node_id}", self.inner.prefix)
    }
}

fn unix_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// NATS subject wildcards; channels containing them are refused as upstream does.
fn has_wildcard(channel: &str) -> bool {
    channel.contains(['*', '>'])
}

impl Inner {
    fn ensure_connected(&self) -> Result<(), BrokerError> {
        match self.client.connection_state() {
            State::Connected => Ok(()),
            state => Err(EngineError::msg(format!("NATS connection is {state:?}")).into()),
        }
    }

    /// Publishes without buffering across an outage: refused while disconnected and
    /// bounded by `write_timeout` otherwise.
    async fn send(&self, subject: String, payload: Bytes) -> Result<(), BrokerError> {
        self.ensure_connected()?;
        match tokio::time::timeout(self.write_timeout, self.client.publish(subject, payload)).await
        {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(match e.kind() {
                PublishErrorKind::InvalidSubject | PublishErrorKind::MaxPayloadExceeded => {
                    BrokerError::BadRequest(e.to_string())
                }
                PublishErrorKind::Send => EngineError::new(e).into(),
            }),
            Err(_) => Err(timed_out("publish", self.write_timeout)),
        }
    }

    async fn subscribe_subject(&self, subject: String) -> Result<Subscriber, BrokerError> {
        match tokio::time::timeout(self.write_timeout, self.client.subscribe(subject)).await {
            Ok(Ok(sub)) => Ok(sub),
            Ok(Err(e)) => Err(match e.kind() {
                SubscribeErrorKind::InvalidSubject | SubscribeErrorKind::InvalidQueueName => {
                    BrokerError::BadRequest(e.to_string())
                }
                SubscribeErrorKind::Other => EngineError::new(e).into(),
            }),
            Err(_) => Err(timed_out("subscribe", self.write_timeout)),
        }
    }

    fn channel_entry(&self, channel: &str) -> ChannelSlot {
        self.subs
            .lock()
            .entry(channel.to_owned())
            .or_default()
            .clone()
    }

    /// Forgets an entry nobody else holds and that has no subscription.
    fn release_entry(&self, channel: &str, entry: ChannelSlot) {
        let mut subs = self.subs.lock();
        // Others clone entries only under `subs`, so the count cannot grow meanwhile.
        if Arc::strong_count(&entry) == 2 && entry.try_lock().is_ok_and(|slot| slot.is_none()) {
            subs.remove(channel);
        }
    }
}

fn timed_out(what: &str, timeout: Duration) -> BrokerError {
    EngineError::msg(format!("NATS did not take the {what} within {timeout:?}")).into()
}

/// Waits until NATS has processed everything this connection sent before: subscribes to
/// a fresh inbox, publishes to it and waits for the echo. NATS handles a connection's
/// protocol in order, so afterwards earlier subscriptions are in effect.
async fn barrier(client: &Client, timeout: Duration) -> Result<(), BrokerError> {
    let round_trip = async {
        let inbox = client.new_inbox();
        let mut echo = client
            .subscribe(inbox.clone())
            .await
            .map_err(EngineError::new)?;
        client
            .publish(inbox, Bytes::new())
            .await
            .map_err(EngineError::new)?;
        match echo.next().await {
            Some(_) => Ok(()),
            None => Err(EngineError::msg("NATS connection closed").into()),
        }
    };
    tokio::time::timeout(timeout, round_trip)
        .await
        .unwrap_or_else(|_| Err(timed_out("subscription", timeout)))
}

/// Follows connection events: after a reconnect, waits until the resubscriptions are in
/// effect and tells the handler.
async fn supervise(
    client: Client,
    mut events: mpsc::UnboundedReceiver<Event>,
    handler: SharedHandler,
    write_timeout: Duration,
) {
    let mut lost = false;
    while let Some(event) = events.recv().await {
        match event {
            Event::Disconnected => {
                lost = true;
                tracing::warn!("NATS connection lost, reconnecting");
            }
            Event::Connected if lost => match barrier(&client, write_timeout).await {
                Ok(()) => {
                    lost = false;
                    tracing::info!("NATS connection restored, subscriptions resumed");
                    if let Some(handler) = handler.get() {
                        handler.handle_resubscribed();
                    }
                }
                Err(e) => tracing::warn!(error = %e, "NATS resubscription not confirmed"),
            },
            Event::SlowConsumer(sid) => {
                tracing::warn!(sid, "NATS subscription overflowed, messages dropped");
            }
            Event::ServerError(e) => tracing::warn!(error = %e, "NATS server error"),
            Event::ClientError(e) => tracing::warn!(error = %e, "NATS client error"),
            other => tracing::debug!(event = %other, "NATS connection event"),
        }
    }
}

/// Delivers one channel's messages in arrival order.
async fn read_channel(channel: String, mut sub: Subscriber, raw: bool, handler: SharedHandler) {
    while let Some(message) = sub.next().await {
        let Some(handler) = handler.get() else {
            continue;
        };
        if raw {
            let publication = Publication::new(message.payload);
            handler.handle_publication(
                &channel,
                publication,
                StreamPosition::default(),
                false,
                None,
            );
            continue;
        }
        match codec::decode(&message.payload) {
            Ok((
                _,
                ChannelEvent::Publication {
                    publication,
                    position,
                    delta,
                },
            )) => handler.handle_publication(&channel, publication, position, delta, None),
            Ok((_, ChannelEvent::Join(info))) => handler.handle_join(&channel, info),
            Ok((_, ChannelEvent::Leave(info))) => handler.handle_leave(&channel, info),
            Err(e) => tracing::warn!(
                channel = %channel,
                subject = %message.subject,
                error = ?e,
                "undecodable message from NATS dropped"
            ),
        }
    }
}

impl Broker for NatsBroker {
    fn run(&self, handler: Arc<dyn BrokerEventHandler>) -> BoxFuture<'_, Result<(), BrokerError>> {
        let set = self.inner.handler.set(handler);
        Box::pin(async move {
            set.map_err(|_| BrokerError::BadRequest("NATS broker is already running".into()))
        })
    }

    fn subscribe(&self, channel: &str) -> BoxFuture<'_, Result<(), BrokerError>> {
        let channel = channel.to_owned();
        Box::pin(async move {
            if has_wildcard(&channel) {
                return Err(BrokerError::BadRequest(format!(
                    "wildcard channel {channel:?} is not supported"
                )));
            }
            let inner = &self.inner;
            let entry = inner.channel_entry(&channel);
            let result = async {
                let mut slot = entry.lock().await;
                if slot.as_ref().is_some_and(|task| !task.is_finished()) {
                    return Ok(());
                }
                inner.ensure_connected()?;
                let sub = inner
                    .subscribe_subject(self.channel_subject(&channel))
                    .await?;
                // On failure `sub` is dropped, which unsubscribes.
                barrier(&inner.client, inner.write_timeout).await?;
                *slot = Some(tokio::spawn(read_channel(
                    channel.clone(),
                    sub,
                    inner.raw_mode.is_some(),
                    inner.handler.clone(),
                )));
                Ok(())
            }
            .await;
            if result.is_err() {
                inner.release_entry(&channel, entry);
            }
            result
        })
    }

    fn unsubscribe(&self, channel: &str) -> BoxFuture<'_, Result<(), BrokerError>> {
        let channel = channel.to_owned();
        Box::pin(async move {
            let inner = &self.inner;
            let Some(entry) = inner.subs.lock().get(&channel).cloned() else {
                return Ok(());
            };
            let task = entry.lock().await.take();
            if let Some(task) = task {
                // Handler calls are synchronous, so once the task is gone nothing more of
                // this channel is delivered; dropping its subscriber sends UNSUB.
                task.abort();
                let _ = task.await;
            }
            inner.release_entry(&channel, entry);
            Ok(())
        })
    }

    fn publish(
        &self,
        channel: &str,
        data: Bytes,
        options: PublishOptions,
    ) -> BoxFuture<'_, Result<PublishResult, BrokerError>> {
        // History options are ignored, as upstream: NATS keeps no stream.
        let prepared = if has_wildcard(channel) {
            Err(BrokerError::BadRequest(format!(
                "cannot publish to wildcard channel {channel:?}"
            )))
        } else if self.inner.raw_mode.is_some() {
            Ok((self.channel_subject(channel), data))
        } else {
            let payload = codec::encode_publication(
                channel,
                data,
                options.client_info.as_ref(),
                options.tags,
                options.use_delta,
                unix_ms(),
            );
            Ok((self.channel_subject(channel), payload))
        };
        Box::pin(async move {
            let (subject, payload) = prepared?;
            self.inner.send(subject, payload).await?;
            Ok(PublishResult::default())
        })
    }

    fn publish_join(
        &self,
        channel: &str,
        info: ClientInfo,
    ) -> BoxFuture<'_, Result<(), BrokerError>> {
        let message = self.inner.raw_mode.is_none().then(|| {
            (
                self.channel_subject(channel),
                codec::encode_join(channel, &info),
            )
        });
        Box::pin(async move {
            match message {
                Some((subject, payload)) => self.inner.send(subject, payload).await,
                None => Ok(()),
            }
        })
    }

    fn publish_leave(
        &self,
        channel: &str,
        info: ClientInfo,
    ) -> BoxFuture<'_, Result<(), BrokerError>> {
        let message = self.inner.raw_mode.is_none().then(|| {
            (
                self.channel_subject(channel),
                codec::encode_leave(channel, &info),
            )
        });
        Box::pin(async move {
            match message {
                Some((subject, payload)) => self.inner.send(subject, payload).await,
                None => Ok(()),
            }
        })
    }

    fn history(
        &self,
        _channel: &str,
        _options: HistoryOptions,
    ) -> BoxFuture<'_, Result<HistoryResult, BrokerError>> {
        Box::pin(async { Err(BrokerError::NotAvailable(HISTORY_NOT_AVAILABLE.to_owned())) })
    }

    fn remove_history(&self, _channel: &str) -> BoxFuture<'_, Result<(), BrokerError>> {
        Box::pin(async { Err(BrokerError::NotAvailable(HISTORY_NOT_AVAILABLE.to_owned())) })
    }
}

impl Controller for NatsBroker {
    fn run(
        &self,
        node_id: &str,
        handler: Arc<dyn ControlEventHandler>,
    ) -> BoxFuture<'_, Result<(), BrokerError>> {
        let direct_subject = self.node_subject(node_id);
        Box::pin(async move {
            let inner = &self.inner;
            inner.ensure_connected()?;
            let mut broadcast = inner.subscribe_subject(self.control_subject()).await?;
            let mut direct = inner.subscribe_subject(direct_subject).await?;
            barrier(&inner.client, inner.write_timeout).await?;
            let task = tokio::spawn(async move {
                loop {
                    let message = tokio::select! {
                        m = broadcast.next() => m,
                        m = direct.next() => m,
                    };
                    match message {
                        Some(message) => handler.handle_control(message.payload),
                        None => break,
                    }
                }
            });
            if let Some(previous) = inner.control.lock().replace(task) {
                previous.abort();
            }
            Ok(())
        })
    }

    fn publish_control(
        &self,
        data: Bytes,
        to: Option<&str>,
    ) -> BoxFuture<'_, Result<(), BrokerError>> {
        let subject = match to {
            Some(node_id) => self.node_subject(node_id),
            None => self.control_subject(),
        };
        Box::pin(self.inner.send(subject, data))
    }
}

#[cfg(test)]
mod tests {
    use std::error::Error as _;

    use async_nats::ConnectErrorKind;

    use super::*;

    #[tokio::test]
    async fn a_refused_connection_keeps_the_nats_error_as_source() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let url = format!("nats://127.0.0.1:{port}");
        let Err(err) = NatsBroker::connect(NatsConfig::new(url.clone())).await else {
            panic!("nothing listens on {url}");
        };
        assert!(matches!(err, BrokerError::Unavailable(_)), "{err:?}");
        let source = err
            .source()
            .and_then(|s| s.downcast_ref::<async_nats::ConnectError>())
            .expect("the NATS error is the source");
        assert_eq!(source.kind(), ConnectErrorKind::Io, "{source:?}");
        assert_eq!(
            err.to_string(),
            format!("engine unavailable: connecting to NATS at {url}: {source}")
        );
    }
}
