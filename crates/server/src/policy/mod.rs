//! Centrifugo's client policy: who may connect, subscribe, publish, read presence and
//! history, as the configuration and the tokens say.
//!
//! Mirrors Centrifugo v6 `internal/client/handler.go`: every decision reads the
//! configuration in force at the time of the event ([`App::config`]), so a reload
//! (SIGHUP) applies to connections that are already open. Proxies are not implemented:
//! namespaces that ask for one answer "not available" (108).

mod channel;
mod commands;
mod connect;
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
    let p = policy.clone();
    app.node
        .on_connecting(move |event| connect::connecting(p.clone(), event));
    let p = policy;
    app.node.on_connect(move |client| p.connected(client));
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
}

/// Per-connection state kept by the policy.
#[derive(Debug, Default)]
struct Connection {
    /// Server-side subscriptions that came from the connection token: a refresh token
    /// with other channels disconnects the client (3010) so that it reconnects with them.
    token_channels: Mutex<HashSet<String>>,
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

    /// Registers the per-connection handlers.
    fn connected(&self, client: gyre::Client) {
        let conn = Arc::new(Connection {
            token_channels: Mutex::new(self.take_token_channels(client.id())),
        });

        macro_rules! on {
            ($register:ident, $handler:path) => {{
                let (p, c) = (self.clone(), client.clone());
                client.$register(move |event| $handler(p.clone(), c.clone(), event));
            }};
            ($register:ident, $handler:path, conn) => {{
                let (p, c, conn) = (self.clone(), client.clone(), conn.clone());
                client.$register(move |event| $handler(p.clone(), c.clone(), conn.clone(), event));
            }};
        }
        on!(on_subscribe, subscribe::subscribe);
        on!(on_sub_refresh, subscribe::sub_refresh);
        on!(on_publish, commands::publish);
        on!(on_presence, commands::presence);
        on!(on_presence_stats, commands::presence_stats);
        on!(on_history, commands::history);
        on!(on_rpc, commands::rpc);
        on!(on_refresh, connect::refresh, conn);

        let (id, user) = (client.id().to_owned(), client.user_id());
        client.on_disconnect(move |event| {
            tracing::debug!(
                client = %id,
                user = %user,
                code = event.disconnect.code,
                reason = %event.disconnect.reason,
                "client disconnected"
            );
        });
    }
}
