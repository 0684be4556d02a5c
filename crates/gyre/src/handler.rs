//! Storage of the async handlers registered by the application.

use std::future::Future;
use std::sync::Arc;

use crate::broker::BoxFuture;
use crate::events::HandlerError;

/// An async handler taking an event and answering with a reply or a refusal.
pub(crate) type Handler<E, R> =
    Arc<dyn Fn(E) -> BoxFuture<'static, Result<R, HandlerError>> + Send + Sync>;

/// A handler that only observes (unsubscribe, disconnect).
pub(crate) type Observer<E> = Arc<dyn Fn(E) + Send + Sync>;

/// Boxes an application closure into a [`Handler`].
pub(crate) fn handler<E, R, F, Fut>(f: F) -> Handler<E, R>
where
    E: 'static,
    F: Fn(E) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<R, HandlerError>> + Send + 'static,
{
    Arc::new(move |event| Box::pin(f(event)))
}
