//! `uni_sse` and `uni_http_stream`: one long HTTP response per connection.
//!
//! The connect runs before the response starts, so that a refusal can still become an
//! HTTP status (`connect_error_responses`). Then a task per connection drains the
//! session's queue into the response body through a one-slot channel: a client that
//! stops reading blocks that channel, and after `write_timeout` it is dropped (3009).

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::{BufMut, Bytes, BytesMut};
use http::{HeaderValue, Method, StatusCode, header};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, Limited, StreamBody};
use hyper::body::Frame;
use tokio::sync::mpsc;

use super::config::UniStreamConfig;
use super::{bare_push, connect, disconnect_push, transport_info};
use crate::Node;
use crate::session::ConnectRefused;
use crate::transport::pump::{Chunks, pump};
use crate::transport::{Session, SessionFactory};

/// The response body of the streaming endpoints.
pub(crate) type StreamResponse = http::Response<BoxBody<Bytes, Infallible>>;

/// How pushes are framed in the body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    /// `data: <push>\n\n` (`text/event-stream`).
    Sse,
    /// `<push>\n`.
    Lines,
}

impl Framing {
    fn name(self) -> &'static str {
        match self {
            Framing::Sse => "uni_sse",
            Framing::Lines => "uni_http_stream",
        }
    }

    fn append(self, push: &[u8], out: &mut BytesMut) {
        match self {
            Framing::Sse => {
                out.put_slice(b"data: ");
                out.put_slice(push);
                out.put_slice(b"\n\n");
            }
            Framing::Lines => {
                out.put_slice(push);
                out.put_u8(b'\n');
            }
        }
    }

    /// What the body starts with (an SSE stream opens with an empty line).
    fn prelude(self) -> &'static [u8] {
        match self {
            Framing::Sse => b"\r\n",
            Framing::Lines => b"",
        }
    }
}

fn full(status: StatusCode, body: impl Into<Bytes>) -> StreamResponse {
    let mut r = http::Response::new(Full::new(body.into()).boxed());
    *r.status_mut() = status;
    r
}

#[derive(Debug)]
struct Inner<F> {
    factory: Arc<F>,
    config: UniStreamConfig,
    framing: Framing,
}

/// Serves one endpoint for any [`SessionFactory`].
#[derive(Debug)]
struct StreamHandler<F> {
    inner: Arc<Inner<F>>,
}

impl<F> Clone for StreamHandler<F> {
    fn clone(&self) -> Self {
        StreamHandler {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<F: SessionFactory> StreamHandler<F> {
    fn new(factory: Arc<F>, config: UniStreamConfig, framing: Framing) -> Self {
        StreamHandler {
            inner: Arc::new(Inner {
                factory,
                config,
                framing,
            }),
        }
    }

    async fn handle<B>(self, request: http::Request<B>) -> StreamResponse
    where
        B: hyper::body::Body + Send + 'static,
        B::Data: Send,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let inner = &self.inner;
        let framing = inner.framing;
        let (parts, body) = request.into_parts();
        let request = match (framing, &parts.method) {
            (Framing::Lines, &Method::OPTIONS) => {
                let mut r = full(StatusCode::NO_CONTENT, Bytes::new());
                let h = r.headers_mut();
                h.insert(
                    header::ACCESS_CONTROL_MAX_AGE,
                    HeaderValue::from_static("300"),
                );
                h.insert(
                    header::ACCESS_CONTROL_ALLOW_METHODS,
                    HeaderValue::from_static("POST, OPTIONS"),
                );
                return r;
            }
            (Framing::Sse, &Method::GET) => {
                drop(body);
                match connect::from_query(parts.uri.query()) {
                    Ok(req) => Ok(req.unwrap_or_default()),
                    Err(e) => Err(e),
                }
            }
            (_, &Method::POST) => {
                let limit = inner.config.max_request_body_size;
                let bytes = match Limited::new(body, limit).collect().await {
                    Ok(collected) => collected.to_bytes(),
                    Err(e) => {
                        if e.downcast_ref::<http_body_util::LengthLimitError>()
                            .is_some()
                        {
                            return full(StatusCode::PAYLOAD_TOO_LARGE, "request body too large");
                        }
                        tracing::debug!(transport = framing.name(), error = %e, "error reading connect request body");
                        return full(StatusCode::BAD_REQUEST, "error reading request body");
                    }
                };
                connect::from_body(&bytes)
            }
            _ => {
                let mut r = full(StatusCode::METHOD_NOT_ALLOWED, Bytes::new());
                let allow = match framing {
                    Framing::Sse => "GET, POST",
                    Framing::Lines => "POST, OPTIONS",
                };
                r.headers_mut()
                    .insert(header::ALLOW, HeaderValue::from_static(allow));
                return r;
            }
        };
        let request = match request {
            Ok(r) => r,
            Err(e) => {
                tracing::debug!(transport = framing.name(), error = %e, "malformed connect request");
                return full(StatusCode::BAD_REQUEST, "malformed connect request");
            }
        };

        let session = inner
            .factory
            .new_session(transport_info(framing.name()), &parts);
        drop(parts);
        let outcome = match session {
            Ok(session) => match session.connect_unidirectional(request).await {
                Ok(()) => Ok(session),
                Err(refused) => Err((Some(session), refused)),
            },
            Err(d) => Err((
                None,
                ConnectRefused {
                    code: d.code,
                    message: d.reason.to_string(),
                    disconnect: d,
                },
            )),
        };
        let mut first = BytesMut::new();
        first.put_slice(framing.prelude());
        let body = match outcome {
            Ok(session) => {
                // One slot: the writer never runs ahead of what the client takes.
                let (tx, rx) = mpsc::channel(1);
                if !first.is_empty() {
                    let _ = tx.try_send(first.freeze());
                }
                tokio::spawn(pump(
                    session,
                    tx,
                    UniChunks(framing),
                    inner.config.write_timeout,
                ));
                StreamBody::new(ChunkStream(rx)).boxed()
            }
            Err((session, refused)) => {
                if let Some(responses) = &inner.config.connect_error_responses {
                    if let Some(session) = session {
                        session
                            .finish(gyre_protocol::Disconnect::CONNECTION_CLOSED)
                            .await;
                    }
                    return match responses.iter().find(|r| r.code == refused.code) {
                        Some(r) if r.body.is_empty() => full(r.status, refused.message),
                        Some(r) => full(r.status, r.body.clone()),
                        None => full(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error"),
                    };
                }
                if let Some(session) = session {
                    session.finish(refused.disconnect.clone()).await;
                }
                framing.append(&disconnect_push(&refused.disconnect), &mut first);
                Full::new(first.freeze()).boxed()
            }
        };
        let mut r = http::Response::new(body);
        let h = r.headers_mut();
        if framing == Framing::Sse {
            h.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/event-stream; charset=utf-8"),
            );
        }
        h.insert("x-accel-buffering", HeaderValue::from_static("no"));
        h.insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static("private, no-cache, no-store, must-revalidate, max-age=0"),
        );
        h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
        h.insert("expire", HeaderValue::from_static("0"));
        r
    }
}

/// The body: chunks from the connection task until it drops its sender.
struct ChunkStream(mpsc::Receiver<Bytes>);

impl futures_util::Stream for ChunkStream {
    type Item = Result<Frame<Bytes>, Infallible>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.0.poll_recv(cx).map(|c| c.map(|b| Ok(Frame::data(b))))
    }
}

/// Pushes of a uni stream, framed for SSE or as lines, a batch per chunk.
struct UniChunks(Framing);

impl Chunks for UniChunks {
    fn messages(&mut self, batch: &mut Vec<Bytes>, out: &mut Vec<Bytes>) {
        let mut chunk = BytesMut::new();
        for message in batch.drain(..) {
            self.0.append(&bare_push(message), &mut chunk);
        }
        out.push(chunk.freeze());
    }

    fn disconnect(&mut self, d: &gyre_protocol::Disconnect) -> Option<Bytes> {
        let mut chunk = BytesMut::new();
        self.0.append(&disconnect_push(d), &mut chunk);
        Some(chunk.freeze())
    }
}

type HandleFuture = Pin<Box<dyn Future<Output = Result<StreamResponse, Infallible>> + Send>>;

macro_rules! stream_handler {
    ($(#[$doc:meta])* $name:ident, $framing:expr) => {
        $(#[$doc])*
        #[derive(Clone, Debug)]
        pub struct $name {
            inner: StreamHandler<Node>,
        }

        impl $name {
            /// A handler feeding connections to `node`.
            pub fn new(node: Node, config: UniStreamConfig) -> Self {
                $name {
                    inner: StreamHandler::new(Arc::new(node), config, $framing),
                }
            }
        }

        impl<B> tower_service::Service<http::Request<B>> for $name
        where
            B: hyper::body::Body + Send + 'static,
            B::Data: Send,
            B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
        {
            type Response = StreamResponse;
            type Error = Infallible;
            type Future = HandleFuture;

            fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
                Poll::Ready(Ok(()))
            }

            fn call(&mut self, request: http::Request<B>) -> Self::Future {
                let inner = self.inner.clone();
                Box::pin(async move { Ok(inner.handle(request).await) })
            }
        }
    };
}

stream_handler!(
    /// The `uni_sse` endpoint (`/connection/uni_sse`) as a tower `Service`: `GET` with
    /// the connect request in `?cf_connect=` (none = an empty request) or `POST` with
    /// it as the body; every push arrives as one `data:` event.
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// use gyre::{Node, UniSseHandler, UniStreamConfig};
    /// let node = Node::builder().build();
    /// node.run().await?;
    /// let sse = UniSseHandler::new(node.clone(), UniStreamConfig::default());
    /// // axum::Router::new().route_service("/connection/uni_sse", sse)
    /// # let _ = sse; Ok(()) }
    /// ```
    UniSseHandler,
    Framing::Sse
);

stream_handler!(
    /// The `uni_http_stream` endpoint (`/connection/uni_http_stream`) as a tower
    /// `Service`: `POST` with the connect request as the body; the response streams
    /// one push per line.
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// use gyre::{Node, UniHttpStreamHandler, UniStreamConfig};
    /// let node = Node::builder().build();
    /// node.run().await?;
    /// let stream = UniHttpStreamHandler::new(node.clone(), UniStreamConfig::default());
    /// // axum::Router::new().route_service("/connection/uni_http_stream", stream)
    /// # let _ = stream; Ok(()) }
    /// ```
    UniHttpStreamHandler,
    Framing::Lines
);
