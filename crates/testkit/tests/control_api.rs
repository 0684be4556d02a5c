//! The HTTP control API of the end-to-end server, without any client connection.

use axum::body::{Body, to_bytes};
use axum::http::{Request, StatusCode};
use gyre::HistoryOptions;
use serde_json::{Value, json};
use tower::ServiceExt;

async fn call(app: axum::Router, method: &str, uri: &str, body: &str) -> (StatusCode, Value) {
    let request = Request::builder()
        .method(method)
        .uri(uri)
        .header("content-type", "application/json")
        .body(Body::from(body.to_owned()))
        .expect("request");
    let response = app.oneshot(request).await.expect("infallible");
    let status = response.status();
    let bytes = to_bytes(response.into_body(), 1 << 20).await.expect("body");
    let value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (status, value)
}

#[tokio::test]
async fn publish_goes_to_history_with_increasing_offsets() {
    let node = gyre_testkit::e2e_node();
    node.run().await.expect("broker");
    let app = gyre_testkit::e2e_app(node.clone());

    let (status, first) = call(
        app.clone(),
        "POST",
        "/publish",
        r#"{"channel":"news","data":{"n":1}}"#,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(first["offset"], json!(1));
    let epoch = first["epoch"].as_str().expect("epoch").to_owned();
    assert!(!epoch.is_empty());

    let (status, second) = call(
        app,
        "POST",
        "/publish",
        r#"{"channel":"news","data":"text"}"#,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(second["offset"], json!(2));
    assert_eq!(second["epoch"], json!(epoch));

    let history = node
        .history("news", HistoryOptions::new(-1))
        .await
        .expect("history");
    assert_eq!(history.position.offset, 2);
    let data: Vec<&[u8]> = history.publications.iter().map(|p| &p.data[..]).collect();
    assert_eq!(data, vec![&br#"{"n":1}"#[..], &br#""text""#[..]]);
}

#[tokio::test]
async fn bad_control_requests_are_refused() {
    let node = gyre_testkit::e2e_node();
    node.run().await.expect("broker");
    let app = gyre_testkit::e2e_app(node);

    let (status, _) = call(app.clone(), "POST", "/publish", "{not json").await;
    assert!(status.is_client_error(), "{status}");
    let (status, body) = call(
        app.clone(),
        "POST",
        "/publish",
        r#"{"channel":"","data":1}"#,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], json!("channel required"));
    let (status, _) = call(app, "POST", "/disconnect", r#"{"code":3011}"#).await;
    assert!(status.is_client_error(), "{status}");
}

#[tokio::test]
async fn info_and_disconnect_answer_without_clients() {
    let node = gyre_testkit::e2e_node();
    node.run().await.expect("broker");
    let app = gyre_testkit::e2e_app(node);

    let (status, info) = call(app.clone(), "GET", "/info", "").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        info,
        json!({"num_clients": 0, "num_users": 0, "num_channels": 0})
    );
    let (status, body) = call(app, "POST", "/disconnect", r#"{"user":"nobody"}"#).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!({}));
}
