//! Centrifugo's limits: subscriptions per connection, connections per user and per node.

mod support;

use serde_json::json;
use support::{Server, WsClient};

fn config(client: serde_json::Value) -> serde_json::Value {
    let mut client = client;
    client["allow_anonymous_connect_without_token"] = json!(true);
    client["token"] = json!({"hmac_secret_key": "secret"});
    json!({
        "client": client,
        "channel": {"without_namespace": {"allow_subscribe_for_client": true, "allow_subscribe_for_anonymous": true}},
    })
}

#[tokio::test]
async fn channel_limit_answers_106() {
    let server = Server::start(config(json!({"channel_limit": 2})));
    let (mut c, reply) = WsClient::connect(&server.ws_url(), json!({})).await;
    reply.ok();
    c.call("subscribe", json!({"channel": "a"})).await.ok();
    c.call("subscribe", json!({"channel": "b"})).await.ok();
    let third = c.call("subscribe", json!({"channel": "c"})).await;
    assert_eq!(third.error(), Some(106));
}

#[tokio::test]
async fn user_connection_limit_closes_with_3504() {
    let server = Server::start(config(json!({"user_connection_limit": 1})));
    let token = support::hs256("secret", json!({"sub": "42"}));
    let (_first, reply) = WsClient::connect(&server.ws_url(), json!({"token": token})).await;
    reply.ok();
    let (_second, reply) = WsClient::connect(&server.ws_url(), json!({"token": token})).await;
    assert_eq!(reply.closed(), Some(3504));
}

#[tokio::test]
async fn node_connection_limit_answers_503_before_the_upgrade() {
    let server = Server::start(config(json!({"connection_limit": 1})));
    let (_first, reply) = WsClient::connect(&server.ws_url(), json!({})).await;
    reply.ok();
    let refused = tokio_tungstenite::connect_async(server.ws_url()).await;
    match refused {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 503)
        }
        other => panic!("expected HTTP 503, got {other:?}"),
    }
}
