//! Test fixtures for Gyre.
//!
//! [`e2e_node`] is a node whose handlers allow everything the compatibility suites use;
//! [`e2e_app`] serves it over WebSocket next to a small HTTP control API that the suites
//! drive:
//!
//! | route | body | effect |
//! |---|---|---|
//! | `POST /publish` | `{"channel": "…", "data": <json>}` | [`Node::publish`] with history; answers `{"offset": n, "epoch": "…"}` |
//! | `POST /disconnect` | `{"user": "…", "code"?: n, "reason"?: "…"}` | closes every connection of the user (default code 3011, clients reconnect) |
//! | `GET /info` | | `{"num_clients": n, "num_users": n, "num_channels": n}` |
//!
//! Connection tokens are taken as the user id (an empty token connects anonymously).
//!
//! For the engine crates' tests: [`conformance`], the broker and presence suite every
//! engine runs against itself, and [`Recorder`], the event handler they record with. For
//! the server's tests: [`GyreBinary`], which runs the `gyre` executable. For both:
//! [`redis_server`], disposable `redis-server` processes and clusters.

pub mod conformance;
mod process;
mod recorder;
pub mod redis_server;

use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use gyre::{
    ConnectReply, Credentials, Disconnect, Error, Node, PublishOptions, PublishReply, RpcReply,
    SubscribeOptions, SubscribeReply, WebSocketConfig, WebSocketHandler,
};
use serde::Deserialize;
use serde_json::{Value, json};

pub use process::{GyreBinary, GyreProcess, free_port, merge_config};
pub use recorder::{Delivered, Reader, Recorder, Seen, eventually};

/// Publications kept per channel.
pub const HISTORY_SIZE: usize = 1000;
/// How long publications are kept.
pub const HISTORY_TTL: Duration = Duration::from_secs(600);

/// Options of every subscription: history, recovery, positioning, presence, join/leave.
pub fn subscribe_options() -> SubscribeOptions {
    SubscribeOptions::new()
        .history(HISTORY_SIZE, HISTORY_TTL)
        .recovery(true)
        .positioning(true)
        .presence(true)
        .join_leave(true)
}

/// Options of every publication (client or API): kept in history.
pub fn publish_options() -> PublishOptions {
    PublishOptions::new().history(HISTORY_SIZE, HISTORY_TTL)
}

/// A node that allows everything the compatibility suites use:
///
/// * connect: the token is the user id, connect data is returned as connect result data;
/// * subscribe to any channel with [`subscribe_options`];
/// * publish into any channel with [`publish_options`];
/// * presence, presence stats, history, async messages;
/// * RPC `echo` returns its data, any other method fails with 104 (method not found).
pub fn e2e_node() -> Node {
    let node = Node::builder().build();
    node.on_connecting(|event| async move {
        Ok(ConnectReply::new(Credentials::new(event.token)).data(event.data))
    });
    node.on_connect(|client| {
        client.on_subscribe(|_event| async { Ok(SubscribeReply::new(subscribe_options())) });
        client.on_publish(|_event| async { Ok(PublishReply::new(publish_options())) });
        client.on_rpc(|event| async move {
            match event.method.as_str() {
                "echo" => Ok(RpcReply::new(event.data)),
                _ => Err(Error::METHOD_NOT_FOUND.into()),
            }
        });
        client.on_presence(|_event| async { Ok(()) });
        client.on_presence_stats(|_event| async { Ok(()) });
        client.on_history(|_event| async { Ok(()) });
        client.on_message(|_event| async { Ok(()) });
    });
    node
}

/// The HTTP side: the WebSocket endpoint `/connection/websocket` plus the control API
/// described in the crate docs.
pub fn e2e_app(node: Node) -> Router {
    let ws = WebSocketHandler::new(node.clone(), WebSocketConfig::default());
    Router::new()
        .route("/publish", post(publish))
        .route("/disconnect", post(disconnect))
        .route("/info", get(info))
        .route_service("/connection/websocket", ws)
        .with_state(node)
}

#[derive(Deserialize)]
struct PublishRequest {
    channel: String,
    data: Value,
}

async fn publish(State(node): State<Node>, Json(req): Json<PublishRequest>) -> Response {
    if req.channel.is_empty() {
        return bad_request("channel required");
    }
    let data = match serde_json::to_vec(&req.data) {
        Ok(data) => data,
        Err(e) => return bad_request(&e.to_string()),
    };
    match node.publish(&req.channel, data, publish_options()).await {
        Ok(result) => Json(json!({
            "offset": result.position.offset,
            "epoch": result.position.epoch,
        }))
        .into_response(),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            Json(json!({ "error": e.to_string() })),
        )
            .into_response(),
    }
}

#[derive(Deserialize)]
struct DisconnectRequest {
    user: String,
    code: Option<u32>,
    reason: Option<String>,
}

async fn disconnect(State(node): State<Node>, Json(req): Json<DisconnectRequest>) -> Response {
    let disconnect = match req.code {
        None => Disconnect::FORCE_RECONNECT,
        Some(code) => Disconnect::new(code, req.reason.unwrap_or_default()),
    };
    node.disconnect(&req.user, disconnect).await;
    Json(json!({})).into_response()
}

async fn info(State(node): State<Node>) -> Json<Value> {
    let info = node.info();
    Json(json!({
        "num_clients": info.num_clients,
        "num_users": info.num_users,
        "num_channels": info.num_channels,
    }))
}

fn bad_request(message: &str) -> Response {
    (StatusCode::BAD_REQUEST, Json(json!({ "error": message }))).into_response()
}
