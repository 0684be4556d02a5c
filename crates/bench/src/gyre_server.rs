//! The Gyre target server for benchmarks: a `gyre::Node` with permissive handlers,
//! `gyre::WebSocketHandler` at `/connection/websocket` served by hyper's HTTP/1
//! connection with upgrades (the library's fast path), and `POST /api/publish`
//! (Centrifugo body format; `X-API-Key` is not checked) calling `Node::publish`. The
//! emulated transports are served too: `/connection/http_stream`, `/connection/sse` and
//! `/emulation`.

use std::convert::Infallible;
use std::net::SocketAddr;

use bytes::Bytes;
use gyre::{
    ClientHandlers, ConnectReply, Credentials, EmulationConfig, EmulationHandler,
    HttpStreamHandler, Node, PublishOptions, PublishReply, SseHandler, StreamConfig,
    SubscribeOptions, SubscribeReply, WebSocketConfig, WebSocketHandler,
};
use http::{Method, Request, Response, StatusCode};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use serde::Deserialize;
use tokio::net::TcpListener;
use tower_service::Service;

/// A node that lets anyone connect, subscribe to anything and publish anywhere.
pub async fn permissive_node() -> anyhow::Result<Node> {
    let node = Node::builder().build();
    node.on_connecting(|_| async { Ok(ConnectReply::new(Credentials::new(""))) });
    // One handler set for every connection: a pointer each, not two closures each.
    let handlers = std::sync::Arc::new(
        ClientHandlers::new()
            .on_subscribe(|_, _| async { Ok(SubscribeReply::new(SubscribeOptions::new())) })
            .on_publish(|_, _| async { Ok(PublishReply::new(PublishOptions::new())) }),
    );
    node.on_connect(move |client| client.set_handlers(handlers.clone()));
    node.run().await?;
    Ok(node)
}

#[derive(Deserialize)]
struct PublishBody<'a> {
    #[serde(borrow)]
    channel: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    data: &'a serde_json::value::RawValue,
}

fn json_response(status: StatusCode, body: &'static str) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    resp
}

async fn api_publish(node: &Node, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let Ok(body) = req.into_body().collect().await.map(|b| b.to_bytes()) else {
        return json_response(
            StatusCode::BAD_REQUEST,
            r#"{"error":{"code":107,"message":"bad request"}}"#,
        );
    };
    let Ok(p) = serde_json::from_slice::<PublishBody<'_>>(&body) else {
        return json_response(
            StatusCode::BAD_REQUEST,
            r#"{"error":{"code":107,"message":"bad request"}}"#,
        );
    };
    let data = Bytes::copy_from_slice(p.data.get().as_bytes());
    match node.publish(&p.channel, data, PublishOptions::new()).await {
        Ok(_) => json_response(StatusCode::OK, r#"{"result":{}}"#),
        Err(_) => json_response(
            StatusCode::OK,
            r#"{"error":{"code":100,"message":"internal server error"}}"#,
        ),
    }
}

/// Serves `node` on `listener` until the process ends.
pub async fn serve(
    node: Node,
    listener: TcpListener,
    write_delay: std::time::Duration,
    direct_writes: bool,
) -> anyhow::Result<()> {
    let mut config = WebSocketConfig::default().check_origin(|_| true);
    config.write_delay = write_delay;
    config.direct_writes = direct_writes;
    let handlers = Handlers {
        ws: WebSocketHandler::new(node.clone(), config),
        http_stream: HttpStreamHandler::new(node.clone(), StreamConfig::default()),
        sse: SseHandler::new(node.clone(), StreamConfig::default()),
        emulation: EmulationHandler::new(node.clone(), EmulationConfig::default()),
    };
    let api = api_thread()?;
    loop {
        let (stream, _) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        let (node, ws, api) = (node.clone(), handlers.clone(), api.clone());
        tokio::spawn(async move {
            // `POST /api/...` connections are served on their own thread, as the `gyre`
            // server does: on the runtime that runs the subscribers' connections, a
            // publisher waits behind all the writes its publication caused.
            // (Streamed transports' `POST`s stay with the subscribers.)
            let mut head = [0u8; 10];
            let n = stream.peek(&mut head).await.unwrap_or(0);
            if &head[..n] == b"POST /api/" {
                let Ok(std_stream) = stream.into_std() else {
                    return;
                };
                api.spawn(async move {
                    if let Ok(stream) = tokio::net::TcpStream::from_std(std_stream) {
                        serve_http(stream, node, ws).await;
                    }
                });
            } else {
                serve_http(stream, node, ws).await;
            }
        });
    }
}

/// A current-thread runtime on a thread of its own, for the publish API.
fn api_thread() -> anyhow::Result<tokio::runtime::Handle> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let handle = runtime.handle().clone();
    std::thread::Builder::new()
        .name("gyre-api".into())
        .spawn(move || runtime.block_on(std::future::pending::<()>()))?;
    Ok(handle)
}

/// The transports' handlers.
#[derive(Clone)]
struct Handlers {
    ws: WebSocketHandler,
    http_stream: HttpStreamHandler,
    sse: SseHandler,
    emulation: EmulationHandler,
}

type AnyBody = UnsyncBoxBody<Bytes, Infallible>;

fn boxed<B>(resp: Response<B>) -> Response<AnyBody>
where
    B: hyper::body::Body<Data = Bytes, Error = Infallible> + Send + 'static,
{
    resp.map(|b| b.boxed_unsync())
}

/// One HTTP/1.1 connection: the WebSocket upgrade, a streamed transport's request or
/// the publish API.
async fn serve_http(stream: tokio::net::TcpStream, node: Node, handlers: Handlers) {
    let service = hyper::service::service_fn(move |req: Request<Incoming>| {
        let (node, mut h) = (node.clone(), handlers.clone());
        async move {
            let path = req.uri().path();
            let resp = match path {
                "/connection/websocket" => match h.ws.call(req).await {
                    Ok(r) => boxed(r),
                    Err(never) => match never {},
                },
                "/connection/http_stream" => boxed(h.http_stream.handle(req).await),
                "/connection/sse" => boxed(h.sse.handle(req).await),
                "/emulation" => boxed(h.emulation.handle(req).await),
                "/api/publish" if req.method() == Method::POST => {
                    boxed(api_publish(&node, req).await)
                }
                _ => boxed(json_response(
                    StatusCode::NOT_FOUND,
                    r#"{"error":{"code":104,"message":"not found"}}"#,
                )),
            };
            Ok::<_, Infallible>(resp)
        }
    });
    let _ = hyper::server::conn::http1::Builder::new()
        .serve_connection(TokioIo::new(stream), service)
        .with_upgrades()
        .await;
}

/// Binds `addr` and serves a permissive node in the background.
pub async fn spawn(
    addr: SocketAddr,
    write_delay: std::time::Duration,
    direct_writes: bool,
) -> anyhow::Result<(Node, SocketAddr)> {
    let node = permissive_node().await?;
    let listener = TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    tokio::spawn(serve(node.clone(), listener, write_delay, direct_writes));
    Ok((node, local))
}
