//! The server API's own threads.
//!
//! One publish request wakes every subscriber's connection task. On the shared runtime
//! the API connection then queues behind all of them before its next request is read:
//! under load the publishers are throttled by the very fan-out they cause, and each
//! connection ends up writing more, smaller frames (measured: about 10 messages per frame
//! instead of 15, and 70% of the throughput, with 1,000 subscribers on one core).
//! Connections that come for the server API are therefore served by a runtime of their
//! own (one thread per four cores, at least one), which the OS runs as soon as a request
//! arrives.
//!
//! Which connection goes where is decided once, from the first bytes of its first request
//! (peeked, not consumed); both runtimes serve the same routes, so a guess that turns out
//! wrong costs only the scheduling benefit, never a response.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpStream;
use tokio::runtime::Handle;
use tokio_util::sync::CancellationToken;

/// Thread name of the lane, visible in `top -H` and in profiles.
pub(crate) const THREAD_NAME: &str = "gyre-api";

/// Which connections of a listener go to the lane.
#[derive(Debug, Clone)]
pub(crate) enum Route {
    /// Every connection (a listener that serves only the API and other internal endpoints).
    All,
    /// Connections whose first request is a `POST` under this prefix (`""` = at the root).
    Prefix(Arc<str>),
}

/// A runtime on threads of its own for server-API connections.
#[derive(Debug, Clone)]
pub(crate) struct ApiLane {
    handle: Handle,
}

impl ApiLane {
    /// Starts the lane's threads. They run until `exit` is cancelled; connections still open
    /// then are dropped with the runtime.
    pub(crate) fn start(exit: CancellationToken) -> io::Result<ApiLane> {
        // API work is parsing and fan-out of publications; a quarter of the cores keeps a
        // heavy API load from being capped at one core without taking the clients' share.
        let threads = std::thread::available_parallelism()
            .map(|n| n.get() / 4)
            .unwrap_or(1)
            .max(1);
        Self::with_threads(exit, threads)
    }

    fn with_threads(exit: CancellationToken, threads: usize) -> io::Result<ApiLane> {
        // One thread: the current-thread scheduler, run by the lane's own thread, is the
        // cheaper of the two (measured 6% less server CPU per delivery in fan-out).
        let mut builder = if threads == 1 {
            tokio::runtime::Builder::new_current_thread()
        } else {
            let mut b = tokio::runtime::Builder::new_multi_thread();
            b.worker_threads(threads).thread_name(THREAD_NAME);
            b
        };
        let runtime = builder.enable_all().build()?;
        let handle = runtime.handle().clone();
        std::thread::Builder::new()
            .name(THREAD_NAME.to_owned())
            .spawn(move || {
                runtime.block_on(exit.cancelled());
                runtime.shutdown_timeout(Duration::from_millis(100));
            })?;
        Ok(ApiLane { handle })
    }

    /// Moves `stream` onto the lane and serves it there with `serve`. The socket is
    /// re-registered with the lane's reactor, so it must not be in use elsewhere.
    pub(crate) fn spawn<F, Fut>(&self, stream: TcpStream, serve: F)
    where
        F: FnOnce(TcpStream) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let std_stream = match stream.into_std() {
            Ok(s) => s,
            Err(e) => {
                tracing::debug!(error = %e, "cannot hand a connection to the API thread");
                return;
            }
        };
        self.handle.spawn(async move {
            match TcpStream::from_std(std_stream) {
                Ok(stream) => serve(stream).await,
                Err(e) => {
                    tracing::debug!(error = %e, "cannot register a connection on the API thread")
                }
            }
        });
    }
}

/// How many bytes of a request are peeked to route it: the method and the API prefix.
pub(crate) const PEEK_LEN: usize = 128;

/// Whether a connection whose first request starts with `head` belongs on the lane.
///
/// Only complete evidence counts: a request line that has not fully arrived (or a prefix
/// longer than what was peeked) stays on the shared runtime.
pub(crate) fn routes_to_lane(route: &Route, head: &[u8]) -> bool {
    let prefix = match route {
        Route::All => return true,
        Route::Prefix(p) => p.trim_end_matches('/').as_bytes(),
    };
    let Some(target) = head.strip_prefix(b"POST ") else {
        return false;
    };
    let Some(rest) = target.strip_prefix(prefix) else {
        return false;
    };
    if prefix.is_empty() {
        return rest.first() == Some(&b'/');
    }
    matches!(rest.first(), Some(b'/' | b' ' | b'?'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn lane_tasks_run_on_named_threads_with_one_or_more_workers() {
        for threads in [1, 2] {
            let exit = CancellationToken::new();
            let lane = ApiLane::with_threads(exit.clone(), threads).unwrap();
            let name = lane
                .handle
                .spawn(async { std::thread::current().name().map(str::to_owned) })
                .await
                .unwrap();
            assert_eq!(name.as_deref(), Some(THREAD_NAME), "{threads} thread(s)");
            exit.cancel();
        }
    }

    fn prefix(p: &str) -> Route {
        Route::Prefix(Arc::from(p))
    }

    #[test]
    fn api_requests_are_recognised_by_method_and_prefix() {
        let api = prefix("/api");
        assert!(routes_to_lane(&api, b"POST /api HTTP/1.1\r\n"));
        assert!(routes_to_lane(&api, b"POST /api/publish HTTP/1.1\r\n"));
        assert!(routes_to_lane(&api, b"POST /api?x=1 HTTP/1.1\r\n"));
        assert!(!routes_to_lane(&api, b"POST /apis HTTP/1.1\r\n"));
        assert!(!routes_to_lane(&api, b"GET /api/info HTTP/1.1\r\n"));
        assert!(!routes_to_lane(
            &api,
            b"GET /connection/websocket HTTP/1.1\r\n"
        ));
        // Not enough of the request line has arrived to tell.
        assert!(!routes_to_lane(&api, b"POST /ap"));
        assert!(!routes_to_lane(&api, b""));
    }

    #[test]
    fn prefixes_with_a_trailing_slash_or_at_the_root() {
        assert!(routes_to_lane(
            &prefix("/api/"),
            b"POST /api/publish HTTP/1.1"
        ));
        let root = prefix("/");
        assert!(routes_to_lane(&root, b"POST /publish HTTP/1.1"));
        assert!(!routes_to_lane(&root, b"GET /publish HTTP/1.1"));
        assert!(routes_to_lane(&Route::All, b"GET /metrics HTTP/1.1"));
        assert!(routes_to_lane(&Route::All, b""));
    }
}
