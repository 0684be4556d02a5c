//! What a connection brought that later calls forward: the allow-listed headers of its
//! HTTP request, the emulated headers of its connect command, and its meta.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use parking_lot::Mutex;

/// The part of a connection that proxy calls forward.
///
/// Built at connect from the allow-lists of the proxies in use, so a connection keeps
/// only the headers some proxy forwards; most connections keep nothing.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct CallContext {
    /// Headers of the client's HTTP request (upgrade or emulation request).
    pub headers: http::HeaderMap,
    /// Headers the SDK sent in its connect command (lowercase names).
    pub emulated: HashMap<String, String>,
    /// The connection's meta (raw JSON from the connect proxy or the connection token).
    pub meta: Bytes,
}

impl CallContext {
    /// The headers of `event` that appear in `allowed` (lowercase names), and its
    /// emulated headers that appear in `allowed_emulated`.
    pub fn from_connect(
        event: &gyre::ConnectEvent,
        allowed: &[String],
        allowed_emulated: &[String],
    ) -> Self {
        let mut headers = http::HeaderMap::new();
        for name in allowed {
            let Ok(key) = http::HeaderName::from_bytes(name.as_bytes()) else {
                continue;
            };
            for value in event.request_headers.get_all(&key) {
                headers.append(key.clone(), value.clone());
            }
        }
        let emulated = event
            .headers
            .iter()
            .filter(|(k, _)| allowed_emulated.iter().any(|a| a.eq_ignore_ascii_case(k)))
            .map(|(k, v)| (k.to_ascii_lowercase(), v.clone()))
            .collect();
        CallContext {
            headers,
            emulated,
            meta: Bytes::new(),
        }
    }

    /// Sets the connection's meta.
    pub fn with_meta(mut self, meta: Bytes) -> Self {
        self.meta = meta;
        self
    }

    /// Nothing to forward.
    pub fn is_empty(&self) -> bool {
        self.headers.is_empty() && self.emulated.is_empty() && self.meta.is_empty()
    }
}

/// How long a context stored at `connecting` waits for its connection to be accepted: a
/// connect refused after the handler (e.g. by the connection limit) never disconnects.
const UNCONFIRMED_TTL: Duration = Duration::from_secs(60);

#[derive(Debug)]
struct Entry {
    context: Arc<CallContext>,
    /// `None` once the connection is accepted; else when it was stored.
    pending_since: Option<Instant>,
}

/// The [`CallContext`] of every connection that has one, by client id.
///
/// ```
/// use gyre_proxy::{CallContext, Contexts};
///
/// let contexts = Contexts::default();
/// contexts.insert("client-1", CallContext::default().with_meta(r#"{"plan":"pro"}"#.into()));
/// contexts.confirm("client-1");
/// assert_eq!(&contexts.get("client-1").meta[..], br#"{"plan":"pro"}"#);
/// contexts.remove("client-1");
/// assert!(contexts.get("client-1").is_empty());
/// ```
#[derive(Debug, Default)]
pub struct Contexts {
    map: Mutex<HashMap<String, Entry>>,
}

impl Contexts {
    /// Stores a connecting client's context (nothing when it is empty).
    pub fn insert(&self, client_id: &str, context: CallContext) {
        if context.is_empty() {
            return;
        }
        let now = Instant::now();
        let mut map = self.map.lock();
        map.retain(|_, e| {
            e.pending_since
                .is_none_or(|at| now.duration_since(at) < UNCONFIRMED_TTL)
        });
        map.insert(
            client_id.to_owned(),
            Entry {
                context: Arc::new(context),
                pending_since: Some(now),
            },
        );
    }

    /// The connection was accepted: its context lives until [`Contexts::remove`].
    pub fn confirm(&self, client_id: &str) {
        if let Some(e) = self.map.lock().get_mut(client_id) {
            e.pending_since = None;
        }
    }

    /// The context of a connection (empty when it has none).
    pub fn get(&self, client_id: &str) -> Arc<CallContext> {
        self.map
            .lock()
            .get(client_id)
            .map(|e| e.context.clone())
            .unwrap_or_default()
    }

    /// Replaces a connection's meta (a refresh answer may carry a new one).
    pub fn set_meta(&self, client_id: &str, meta: Bytes) {
        let mut map = self.map.lock();
        match map.get_mut(client_id) {
            Some(e) => Arc::make_mut(&mut e.context).meta = meta,
            None if !meta.is_empty() => {
                map.insert(
                    client_id.to_owned(),
                    Entry {
                        context: Arc::new(CallContext::default().with_meta(meta)),
                        pending_since: None,
                    },
                );
            }
            None => {}
        }
    }

    /// Forgets a disconnected client.
    pub fn remove(&self, client_id: &str) {
        self.map.lock().remove(client_id);
    }

    /// How many connections have a context.
    pub fn len(&self) -> usize {
        self.map.lock().len()
    }

    /// No connection has a context.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
