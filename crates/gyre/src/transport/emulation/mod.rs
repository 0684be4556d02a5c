//! Bidirectional emulation: a long-lived HTTP response carries what the server sends, and
//! short `POST /emulation` requests carry what the client sends.
//!
//! * `http_stream` — `POST /connection/http_stream`: the body holds the first commands
//!   (connect); the response streams newline-terminated JSON or varint-length-prefixed
//!   Protobuf replies and pushes;
//! * `sse` — `GET /connection/sse?cf_connect=…` (or `POST` with the commands as the body):
//!   the response is an event stream, one JSON message per `data:` event;
//! * `endpoint` — `POST /emulation`: `{node, session, data}` (JSON or Protobuf
//!   `EmulationRequest`) hands `data` to the session named by the connect reply's
//!   `session` field;
//! * `stream` — the task that drives a session and feeds the response body;
//! * `request` — reading bounded request bodies, small responses, and the framings
//!   (sans-IO, property-tested).

/// `tower_service::Service` for a handler with an `async fn handle(&self, request) ->
/// http::Response<ResponseBody>`: the three endpoints serve the same way.
macro_rules! service_via_handle {
    ($handler:ident) => {
        impl<B> tower_service::Service<http::Request<B>> for $handler
        where
            B: hyper::body::Body + Send + 'static,
            B::Data: Send,
            B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
        {
            type Response = http::Response<super::stream::ResponseBody>;
            type Error = std::convert::Infallible;
            type Future = std::pin::Pin<
                Box<dyn std::future::Future<Output = Result<Self::Response, Self::Error>> + Send>,
            >;

            fn poll_ready(
                &mut self,
                _cx: &mut std::task::Context<'_>,
            ) -> std::task::Poll<Result<(), Self::Error>> {
                std::task::Poll::Ready(Ok(()))
            }

            fn call(&mut self, request: http::Request<B>) -> Self::Future {
                let this = self.clone();
                Box::pin(async move { Ok(this.handle(request).await) })
            }
        }
    };
}
use service_via_handle;

mod config;
mod endpoint;
mod http_stream;
mod request;
mod sse;
mod stream;
#[cfg(test)]
mod tests;

pub use config::{EmulationConfig, StreamConfig};
pub use endpoint::EmulationHandler;
pub use http_stream::HttpStreamHandler;
pub use sse::SseHandler;
pub use stream::ResponseBody;

/// The `cf_connect` value of an SSE request's query (a fuzz entry point).
pub(crate) fn sse_connect_param(query: &str) -> Option<String> {
    request::query_param(query, sse::CONNECT_PARAM)
}
