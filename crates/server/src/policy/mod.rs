//! Centrifugo's client policy: who may connect, subscribe, publish, read presence and
//! history, as the configuration and the tokens say.
//!
//! Mirrors Centrifugo v6 `internal/client/handler.go`: every decision reads the
//! configuration in force at the time of the event ([`App::config`]), so a reload
//! (SIGHUP) applies to connections that are already open. Namespaces with a proxy ask
//! the backend through `crate::proxy` (the `gyre-proxy` crate) where Centrifugo does.

mod channel;
mod commands;
mod connect;
pub(crate) mod shared_poll;
mod subscribe;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::app::App;
use channel::Regexes;

/// How long server-side subscription sources wait between `on_connecting` and
/// `on_connect` of the same connection before they are forgotten (a connect refused by
/// the library after `on_connecting`, e.g. by the connection limit, never reaches
/// `on_connect`).
const PENDING_TTL: Duration = Duration::from_secs(60);

/// Registers the node's connection handlers.
pub(crate) fn install(app: &App) {
    let policy = Policy {
        app: app.clone(),
        shared: Arc::new(Shared::default()),
    };
    shared_poll::install(app);
    let p = policy.clone();
    app.node
        .on_connecting(move |event| connect::connecting(p.clone(), event));
    let handlers = Arc::new(policy.handlers());
    app.node.on_connect(move |client| {
        policy.connected(&client);
        client.set_handlers(handlers.clone());
    });
}

/// The handlers' shared state.
#[derive(Clone)]
struct Policy {
    app: App,
    shared: Arc<Shared>,
}

#[derive(Debug, Default)]
struct Shared {
    regexes: Regexes,
    /// Channels subscribed from the connection token, by client id, handed from
    /// `on_connecting` to `on_connect`.
    pending: Mutex<HashMap<String, (Instant, HashSet<String>)>>,
    /// The same, for connections that are connected and have any: a refresh token with
    /// other channels disconnects the client (3010) so that it reconnects with them.
    /// Kept here rather than per connection so that connections without them (almost
    /// all) cost nothing.
    token_channels: Mutex<HashMap<String, HashSet<String>>>,
}

impl Policy {
    fn remember_token_channels(&self, client_id: &str, channels: HashSet<String>) {
        let now = Instant::now();
        let mut pending = self.shared.pending.lock();
        pending.retain(|_, (at, _)| now.duration_since(*at) < PENDING_TTL);
        pending.insert(client_id.to_owned(), (now, channels));
    }

    fn take_token_channels(&self, client_id: &str) -> HashSet<String> {
        self.shared
            .pending
            .lock()
            .remove(client_id)
            .map(|(_, channels)| channels)
            .unwrap_or_default()
    }

    /// Whether `check` holds for any token channel of a connected client.
    fn token_channels_any(&self, client_id: &str, check: impl Fn(&str) -> bool) -> bool {
        self.shared
            .token_channels
            .lock()
            .get(client_id)
            .is_some_and(|channels| channels.iter().any(|ch| check(ch)))
    }

    /// A client is connected: its token channels move from `pending` to the live map.
    fn connected(&self, client: &gyre::Client) {
        self.app.proxies.contexts.confirm(client.id());
        let channels = self.take_token_channels(client.id());
        if !channels.is_empty() {
            self.shared
                .token_channels
                .lock()
                .insert(client.id().to_owned(), channels);
        }
    }

    /// The handlers of every connection, built once: each connection holds one pointer
    /// to them (per idle connection memory).
    fn handlers(&self) -> gyre::ClientHandlers {
        macro_rules! shared {
            ($handler:path) => {{
                let p = self.clone();
                move |client, event| $handler(p.clone(), client, event)
            }};
        }
        let p = self.clone();
        gyre::ClientHandlers::new()
            .on_subscribe(shared!(subscribe::subscribe))
            .on_sub_refresh(shared!(subscribe::sub_refresh))
            .on_track(shared!(shared_poll::track))
            .on_publish(shared!(commands::publish))
            .on_map_publish(shared!(commands::map_publish))
            .on_presence(shared!(commands::presence))
            .on_presence_stats(shared!(commands::presence_stats))
            .on_history(shared!(commands::history))
            .on_rpc(shared!(commands::rpc))
            .on_refresh(shared!(connect::refresh))
            .on_disconnect(move |client, event| {
                p.shared.token_channels.lock().remove(client.id());
                p.app.proxies.contexts.remove(client.id());
                tracing::debug!(
                    client = %client.id(),
                    user = %client.user_id(),
                    code = event.disconnect.code,
                    reason = %event.disconnect.reason,
                    "client disconnected"
                );
            })
    }
}
