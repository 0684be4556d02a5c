//! The task behind every connection whose output is a channel of chunks rather than a
//! socket (HTTP-streaming, SSE, their unidirectional forms, gRPC server streams): it
//! drains the session's queue into the channel, fires the session's timers, and ends the
//! session when the queue closes or the reader goes away.
//!
//! The channel holds one chunk: the next goes only after the reader took the previous
//! one, so a client that stops reading grows its session's queue until the queue's limit
//! closes it, as with WebSocket; a send that waits longer than the write timeout ends the
//! connection with 3009 (write error).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use gyre_protocol::Disconnect;
use tokio::sync::mpsc;

use crate::queue::Drained;
use crate::transport::Session;

/// How one kind of stream turns queued messages into chunks.
pub(crate) trait Chunks: Send + 'static {
    /// Appends to `out` the chunks for `batch` (queued, encoded messages, drained here).
    fn messages(&mut self, batch: &mut Vec<Bytes>, out: &mut Vec<Bytes>);

    /// The last chunk, telling the reader why the connection ends. Not asked for a plain
    /// close (3000): the reader is gone or closed it itself.
    fn disconnect(&mut self, disconnect: &Disconnect) -> Option<Bytes>;
}

/// Hands one chunk to the reader. `Err` = the connection is over, with this disconnect.
async fn send(tx: &mpsc::Sender<Bytes>, chunk: Bytes, timeout: Duration) -> Result<(), Disconnect> {
    match tokio::time::timeout(timeout, tx.send(chunk)).await {
        Ok(Ok(())) => Ok(()),
        // The server dropped the body (or the gRPC stream): the client is gone.
        Ok(Err(_)) => Err(Disconnect::CONNECTION_CLOSED),
        Err(_) => Err(Disconnect::WRITE_ERROR),
    }
}

/// Runs `session` until it ends, writing into `tx` through `chunks`.
pub(crate) async fn pump<S: Session>(
    session: S,
    tx: mpsc::Sender<Bytes>,
    mut chunks: impl Chunks,
    write_timeout: Duration,
) {
    let outbound = Arc::clone(session.outbound());
    let mut batch = Vec::new();
    let mut out = Vec::new();
    let disconnect = 'run: loop {
        match outbound.drain(0, &mut batch) {
            Drained::Messages => {
                chunks.messages(&mut batch, &mut out);
                batch.clear();
                for chunk in out.drain(..) {
                    if let Err(d) = send(&tx, chunk, write_timeout).await {
                        break 'run d;
                    }
                }
                continue;
            }
            Drained::Close(d) => {
                if d.code != Disconnect::CONNECTION_CLOSED.code
                    && let Some(chunk) = chunks.disconnect(&d)
                {
                    let _ = send(&tx, chunk, write_timeout).await;
                }
                break d;
            }
            Drained::Empty => {
                // An idle connection keeps no buffers.
                batch = Vec::new();
                out = Vec::new();
            }
        }
        let deadline = session.next_deadline();
        tokio::select! {
            () = tx.closed() => break Disconnect::CONNECTION_CLOSED,
            () = outbound.wait() => {}
            () = sleep_until(deadline) => {
                if let Err(d) = session.on_timer().await {
                    outbound.close(d);
                }
            }
        }
    };
    // Ends the stream before the session's cleanup runs.
    drop(tx);
    session.finish(disconnect).await;
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
