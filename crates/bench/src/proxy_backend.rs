//! `connect-proxy-backend`: the smallest backend for a server's HTTP connect proxy
//! (`client.proxy.connect`). Every `POST` is answered `{"result":{"user":USER}}`, so
//! each connection without a token is accepted as that user; the connect scenario then
//! measures what the proxy round trip costs against a JWT.
//!
//! The request body is read to its end but not parsed: the figure is meant to be the
//! server's cost, not the backend's.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::Context;
use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

/// A running backend.
#[derive(Debug, Clone)]
pub struct ProxyBackend {
    /// Where it listens.
    pub addr: SocketAddr,
    answered: Arc<AtomicU64>,
}

impl ProxyBackend {
    /// Connect requests answered so far.
    pub fn answered(&self) -> u64 {
        self.answered.load(Ordering::Relaxed)
    }
}

/// The answer accepting every connection as `user`.
fn accept_body(user: &str) -> Bytes {
    Bytes::from(serde_json::json!({"result": {"user": user}}).to_string())
}

/// Binds `addr` and answers connect requests in the background until the process ends.
pub async fn spawn(addr: SocketAddr, user: &str) -> anyhow::Result<ProxyBackend> {
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding {addr}"))?;
    let backend = ProxyBackend {
        addr: listener.local_addr()?,
        answered: Arc::new(AtomicU64::new(0)),
    };
    let body = accept_body(user);
    let answered = backend.answered.clone();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                // Out of file descriptors and similar: let the server's pool retry.
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                continue;
            };
            let _ = stream.set_nodelay(true);
            let (body, answered) = (body.clone(), answered.clone());
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                    let (body, answered) = (body.clone(), answered.clone());
                    async move { Ok::<_, Infallible>(answer(req, body, &answered).await) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Ok(backend)
}

async fn answer(
    req: Request<Incoming>,
    body: Bytes,
    answered: &AtomicU64,
) -> Response<Full<Bytes>> {
    let post = req.method() == Method::POST;
    // Reading the body keeps the connection reusable for the next request.
    let read = req.into_body().collect().await.is_ok();
    let mut resp = if post && read {
        answered.fetch_add(1, Ordering::Relaxed);
        Response::new(Full::new(body))
    } else {
        let mut r = Response::new(Full::new(Bytes::new()));
        *r.status_mut() = StatusCode::METHOD_NOT_ALLOWED;
        r
    };
    resp.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    resp
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{ApiConn, ApiTarget};

    #[tokio::test]
    async fn answers_every_post_with_the_user() {
        let backend = spawn("127.0.0.1:0".parse().unwrap(), "42").await.unwrap();
        assert_eq!(
            accept_body("42"),
            Bytes::from_static(br#"{"result":{"user":"42"}}"#)
        );
        // Two requests on one keep-alive connection, as a server's proxy client sends them.
        let target = ApiTarget::parse(&format!("http://{}/connect", backend.addr), "").unwrap();
        let mut conn = ApiConn::connect(&target).await.unwrap();
        for _ in 0..2 {
            conn.publish("ignored", b"{}").await.unwrap();
        }
        assert_eq!(backend.answered(), 2);
    }
}
