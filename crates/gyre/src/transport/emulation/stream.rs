//! One streamed connection: the body of its response, fed by the connection task
//! (`transport::pump`) after the session handled the commands of the request.

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use gyre_protocol::{Disconnect, Protocol, proto};
use http_body_util::Full;
use hyper::body::{Body, Frame, SizeHint};
use tokio::sync::mpsc;

use super::request::Framing;
use crate::transport::Session;
use crate::transport::pump::{Chunks, pump};
use crate::wire;

/// The body of every response of the emulation endpoints: a fixed one, or the stream of
/// a connection.
pub struct ResponseBody {
    inner: Inner,
}

enum Inner {
    Full(Full<Bytes>),
    Stream(mpsc::Receiver<Bytes>),
}

impl std::fmt::Debug for ResponseBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self.inner {
            Inner::Full(_) => "full",
            Inner::Stream(_) => "stream",
        };
        f.debug_struct("ResponseBody").field("kind", &kind).finish()
    }
}

impl ResponseBody {
    pub(crate) fn empty() -> Self {
        Self::full(Full::new(Bytes::new()))
    }

    pub(crate) fn full(body: Full<Bytes>) -> Self {
        ResponseBody {
            inner: Inner::Full(body),
        }
    }
}

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        match &mut self.get_mut().inner {
            Inner::Full(full) => Pin::new(full).poll_frame(cx),
            Inner::Stream(rx) => rx
                .poll_recv(cx)
                .map(|chunk| chunk.map(|c| Ok(Frame::data(c)))),
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.inner {
            Inner::Full(full) => full.is_end_stream(),
            Inner::Stream(_) => false,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.inner {
            Inner::Full(full) => full.size_hint(),
            Inner::Stream(_) => SizeHint::default(),
        }
    }
}

/// How a streamed connection writes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct StreamParams {
    pub(crate) protocol: Protocol,
    pub(crate) framing: Framing,
    pub(crate) write_timeout: Duration,
}

/// Starts the connection task for `session` and returns the body it feeds. `prelude` is
/// written first (SSE's opening line); `first` holds the commands of the request.
pub(crate) fn open<S: Session>(
    session: S,
    first: Bytes,
    prelude: Option<Bytes>,
    params: StreamParams,
) -> ResponseBody {
    let (tx, rx) = mpsc::channel(1);
    if let Some(prelude) = prelude {
        // The channel is new and empty: this cannot fail.
        let _ = tx.try_send(prelude);
    }
    tokio::spawn(run(session, first, tx, params));
    ResponseBody {
        inner: Inner::Stream(rx),
    }
}

/// The body of a refused connection (e.g. the node shuts down): the disconnect push, if
/// the disconnect has one, and the end.
pub(crate) fn refused(
    disconnect: &Disconnect,
    prelude: Option<Bytes>,
    params: StreamParams,
) -> ResponseBody {
    let mut chunk = prelude.map(|p| p.to_vec()).unwrap_or_default();
    if let Some(push) = disconnect_push(params.protocol, disconnect) {
        chunk.extend_from_slice(&params.framing.encode(&[push]));
    }
    ResponseBody::full(Full::new(Bytes::from(chunk)))
}

/// The push that tells an emulated client why it was disconnected (WebSocket says it
/// in the close frame instead). A plain close (3000) has none.
fn disconnect_push(protocol: Protocol, d: &Disconnect) -> Option<Bytes> {
    if d.code == Disconnect::CONNECTION_CLOSED.code {
        return None;
    }
    let push = proto::Push {
        disconnect: Some(proto::Disconnect {
            code: d.code,
            reason: d.reason.to_string(),
            reconnect: false,
        }),
        ..Default::default()
    };
    wire::encode_push(protocol, &push)
}

/// Framing of one emulated stream: every batch in one chunk.
struct Emulated(StreamParams);

impl Chunks for Emulated {
    fn messages(&mut self, batch: &mut Vec<Bytes>, out: &mut Vec<Bytes>) {
        out.push(self.0.framing.encode(batch));
    }

    fn disconnect(&mut self, d: &Disconnect) -> Option<Bytes> {
        let push = disconnect_push(self.0.protocol, d)?;
        Some(self.0.framing.encode(&[push]))
    }
}

async fn run<S: Session>(session: S, first: Bytes, tx: mpsc::Sender<Bytes>, params: StreamParams) {
    if let Err(d) = session.handle_message(first).await {
        session.outbound().close(d);
    }
    pump(session, tx, Emulated(params), params.write_timeout).await;
}
