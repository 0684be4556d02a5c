//! Centrifugo-compatible event proxies for [`gyre`]: an application backend decides who
//! connects, who subscribes, what is published and answers RPC calls.
//!
//! A [`Proxy`] is one backend endpoint. `http://` and `https://` endpoints receive a JSON
//! POST per event, `grpc://` endpoints a unary call of
//! `centrifugal.centrifugo.proxy.CentrifugoProxy`; both speak the messages of Centrifugo
//! v6, so a backend written for Centrifugo answers Gyre unchanged. The backend answers with
//! a result, an `error` (the client's command fails with it) or a `disconnect` (the
//! connection is closed with it). When it cannot answer (down, timeout, bad answer) the
//! client gets error 100, or what the proxy's status transforms say for an HTTP status;
//! refresh and sub-refresh instead extend the session by one minute and ask again.
//!
//! [`ProxyHandlers`] wires proxies into a [`gyre::Node`]; the Gyre server uses the
//! per-event methods of [`Proxy`] inside its own channel policy.
//!
//! ```no_run
//! use gyre::Node;
//! use gyre_proxy::{Proxy, ProxyConfig, ProxyHandlers};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let node = Node::builder().build();
//! let backend = Proxy::new(ProxyConfig::new("grpc://127.0.0.1:10001"))?;
//! ProxyHandlers::new()
//!     .connect(backend.clone())
//!     .subscribe(backend.clone())
//!     .rpc(backend)
//!     .install(&node);
//! node.run().await?;
//! # Ok(())
//! # }
//! ```

mod config;
mod context;
mod error;
mod events;
mod handlers;
mod map_events;
mod proto;
mod stats;
mod transport;

pub use config::{ProxyConfig, StatusTransform, TlsOptions};
pub use context::{CallContext, Contexts};
pub use error::ProxyError;
pub use events::{Caller, ConnectAnswer, Grant, Overrides, PublishAnswer, RefreshAnswer};
pub use handlers::ProxyHandlers;
pub use map_events::MapChangeAnswer;
pub use stats::{EventStats, ProxyStats};
pub use transport::Proxy;

/// Entry points for the fuzz targets; not part of the API.
#[doc(hidden)]
pub mod __fuzz {
    /// Decodes a backend's answer body as every proxy event's response, JSON or
    /// Protobuf, and maps it to what the client would get.
    pub fn proxy_answer(body: &[u8], json: bool) {
        crate::events::fuzz_answers(body, json);
    }
}
