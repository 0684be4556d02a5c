//! Rust client SDK for the Centrifugal client protocol v2: connects to Centrifugo or a
//! Gyre server over WebSocket, JSON or Protobuf, with the behaviour of centrifuge-js and
//! centrifuge-go.
//!
//! * **Connection**: `connecting → connected → disconnected`. Reconnects with full-jitter
//!   exponential backoff (500 ms … 20 s) unless the server sends a terminal code
//!   (3500–3999, 4500–4999) or a non-retryable connect error. Tokens come from
//!   [`ClientConfig::token`] or the [`ClientConfig::get_token`] callback, which is also
//!   used when the server reports an expired token (error 109) and to refresh the
//!   connection before it expires.
//! * **Liveness**: server pings are answered with pongs; if nothing arrives for the ping
//!   interval plus [`ClientConfig::max_server_ping_delay`] the client reconnects.
//! * **Subscriptions**: `unsubscribed → subscribing → subscribed`, resubscribed after
//!   every reconnect, recovering missed publications from the last seen offset and epoch
//!   when the channel is recoverable; `recovered`/`was_recovering` tell whether anything
//!   was lost. Server-side subscriptions surface as `Server*` [`ClientEvent`]s and are
//!   recovered through the connect command.
//! * **Calls**: publish, RPC, send, presence, presence stats, history — awaited until the
//!   reply (or [`ClientError::Timeout`]).
//!
//! Inside, a sans-IO state machine (no sockets, no timers) holds all protocol behaviour
//! and is tested without a network; one Tokio task drives it, the socket and the timers.
//!
//! ```no_run
//! use gyre_client::{Client, ClientConfig, ClientEvent, SubscriptionConfig, SubscriptionEvent};
//!
//! # async fn run() -> Result<(), gyre_client::ClientError> {
//! let (client, mut events) = Client::new(
//!     "ws://localhost:8000/connection/websocket",
//!     ClientConfig { token: "<jwt>".into(), ..Default::default() },
//! );
//! let (sub, mut sub_events) = client
//!     .new_subscription("chat", SubscriptionConfig { recoverable: true, ..Default::default() })
//!     .await?;
//! sub.subscribe();
//! client.connect();
//! tokio::spawn(async move {
//!     while let Some(event) = events.recv().await {
//!         println!("client: {event:?}");
//!     }
//! });
//! sub.publish(r#"{"text":"hello"}"#).await?;
//! while let Some(event) = sub_events.recv().await {
//!     if let SubscriptionEvent::Publication(p) = event {
//!         println!("got {:?}", p.data);
//!     }
//! }
//! # Ok(()) }
//! ```

mod client;
mod core;
mod error;
mod types;

pub use client::{BoxFuture, Client, ClientConfig, GetToken, Subscription, SubscriptionConfig};
pub use error::{ClientError, TokenError};
pub use gyre_protocol::{Disconnect, Protocol, Unsubscribe};
pub use types::{
    ClientEvent, ClientInfo, HistoryOptions, HistoryResult, PresenceStats, Publication,
    StreamPosition, SubscribedContext, SubscriptionEvent,
};
