//! Storage of the async handlers registered by the application.

use std::future::Future;
use std::sync::Arc;

use crate::Client;
use crate::broker::BoxFuture;
use crate::events::HandlerError;

/// An async handler taking the connection and an event, answering with a reply or a
/// refusal.
pub(crate) type Handler<E, R> =
    Arc<dyn Fn(Client, E) -> BoxFuture<'static, Result<R, HandlerError>> + Send + Sync>;

/// A handler that only observes (unsubscribe, disconnect).
pub(crate) type Observer<E> = Arc<dyn Fn(Client, E) + Send + Sync>;

/// Boxes a per-connection closure (it knows its connection already) into a [`Handler`].
pub(crate) fn handler<E, R, F, Fut>(f: F) -> Handler<E, R>
where
    E: 'static,
    F: Fn(E) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<R, HandlerError>> + Send + 'static,
{
    Arc::new(move |_client, event| Box::pin(f(event)))
}

/// Boxes a closure shared by many connections into a [`Handler`].
pub(crate) fn shared_handler<E, R, F, Fut>(f: F) -> Handler<E, R>
where
    E: 'static,
    F: Fn(Client, E) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<R, HandlerError>> + Send + 'static,
{
    Arc::new(move |client, event| Box::pin(f(client, event)))
}
