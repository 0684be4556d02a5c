//! The Redis broker's share of `/metrics`: Centrifugo's `broker_redis_pub_sub_errors`.

use gyre::metrics::{Counter, Exposition, Kind};

/// Why a PUB/SUB connection misbehaved, as the `error` label of
/// `broker_redis_pub_sub_errors` (upstream's values for the same events).
#[derive(Debug, Clone, Copy)]
pub(crate) enum PubSubError {
    /// A message on a channel of the client space could not be decoded.
    HandleClientMessage = 0,
    /// A SUBSCRIBE (on demand or while resubscribing after a reconnect) failed.
    SubscribeChannel = 1,
    /// The connection could not be opened, or was lost (EOF, error, failed health PING).
    Connection = 2,
}

impl PubSubError {
    const ALL: [PubSubError; 3] = [
        PubSubError::HandleClientMessage,
        PubSubError::SubscribeChannel,
        PubSubError::Connection,
    ];

    fn label(self) -> &'static str {
        match self {
            PubSubError::HandleClientMessage => "handle_client_message",
            PubSubError::SubscribeChannel => "subscribe_channel",
            PubSubError::Connection => "connection",
        }
    }
}

/// Counters of a [`crate::RedisBroker`]'s PUB/SUB connections; see
/// [`crate::RedisBroker::write_metrics`].
#[derive(Debug, Default)]
pub(crate) struct PubSubStats {
    errors: [Counter; 3],
}

impl PubSubStats {
    pub(crate) fn error(&self, kind: PubSubError) {
        self.errors[kind as usize].inc();
    }

    pub(crate) fn write(&self, e: &mut Exposition<'_>) {
        e.family(
            "broker_redis_pub_sub_errors",
            "Number of times there was an error in Redis PUB/SUB connection.",
            Kind::Counter,
        );
        // A series appears once its error happened, as upstream's vector creates it.
        for kind in PubSubError::ALL {
            let n = self.errors[kind as usize].get();
            if n > 0 {
                e.value(&[("broker_name", ""), ("error", kind.label())], n);
            }
        }
        // Upstream samples the fill level of the bounded hand-off buffers between its
        // PUB/SUB reader and its processing workers. Gyre's reader has no such buffer:
        // it hands each message to the hub inside the read loop, and what arrives
        // meanwhile waits in the Redis client's own unbounded queue, whose length it
        // does not expose. So the family is declared without samples rather than with a
        // zero that would claim an empty queue.
        e.family(
            "broker_redis_pub_sub_buffered_messages",
            "Number of messages buffered in Redis PUB/SUB.",
            Kind::Gauge,
        );
    }
}
