//! The classic chat: a page with a text box; every open tab sees every line.
//!
//! ```text
//! cargo run -p gyre-example-chat      # then open http://localhost:8000 in two tabs
//! ```
//!
//! Anonymous visitors connect over WebSocket with the unmodified `centrifuge` JS SDK,
//! subscribe to the channel `chat` and publish what they type. The channel keeps the
//! last 100 lines for 5 minutes, so a tab that loses its connection catches up when it
//! comes back (recovery), and a new tab shows the recent lines (history).
//!
//! The page loads the SDK from this example's own npm install
//! (`examples/chat/node_modules`), which the binary creates with `npm ci` when missing.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use axum::Router;
use axum::http::header;
use axum::response::{Html, IntoResponse};
use axum::routing::get;
use gyre::{
    ConnectReply, Credentials, Error, Node, PublishOptions, PublishReply, SubscribeOptions,
    SubscribeReply, WebSocketConfig, WebSocketHandler,
};

/// The only channel of the chat.
const CHANNEL: &str = "chat";
/// Lines kept for history and recovery.
const HISTORY_SIZE: usize = 100;
/// How long lines are kept.
const HISTORY_TTL: Duration = Duration::from_secs(300);
/// Longest accepted line, in characters.
const MAX_TEXT: usize = 1000;

const INDEX_HTML: &str = include_str!("../static/index.html");

/// Builds the node with the chat's rules: anyone may connect, subscribe to `chat`,
/// publish a line of text into it and read its history.
fn chat_node() -> Node {
    let node = Node::builder().build();

    node.on_connecting(|_event| async { Ok(ConnectReply::new(Credentials::new(""))) });

    node.on_connect(|client| {
        client.on_subscribe(|event| async move {
            if event.channel != CHANNEL {
                return Err(Error::PERMISSION_DENIED.into());
            }
            Ok(SubscribeReply::new(
                SubscribeOptions::new()
                    .history(HISTORY_SIZE, HISTORY_TTL)
                    .recovery(true)
                    .positioning(true),
            ))
        });
        client.on_publish(|event| async move {
            if event.channel != CHANNEL {
                return Err(Error::PERMISSION_DENIED.into());
            }
            if !is_chat_line(&event.data) {
                return Err(Error::BAD_REQUEST.into());
            }
            Ok(PublishReply::new(
                PublishOptions::new().history(HISTORY_SIZE, HISTORY_TTL),
            ))
        });
        client.on_history(|event| async move {
            if event.channel != CHANNEL {
                return Err(Error::PERMISSION_DENIED.into());
            }
            Ok(())
        });
    });

    node
}

/// A chat line is `{"text": "<1 to 1000 characters>"}`.
fn is_chat_line(data: &[u8]) -> bool {
    #[derive(serde::Deserialize)]
    struct Line {
        text: String,
    }
    match serde_json::from_slice::<Line>(data) {
        Ok(line) => {
            let len = line.text.chars().count();
            len > 0 && len <= MAX_TEXT
        }
        Err(_) => false,
    }
}

/// The SDK's browser bundle, from this example's npm install (running `npm ci` first
/// when the install is missing).
fn load_sdk(dir: &Path) -> anyhow::Result<Vec<u8>> {
    let bundle: PathBuf = dir.join("node_modules/centrifuge/dist/centrifuge.js");
    if !bundle.exists() {
        println!(
            "{} is missing; running `npm ci` in {}",
            bundle.display(),
            dir.display()
        );
        let status = std::process::Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(dir)
            .status();
        match status {
            Ok(status) if status.success() => {}
            _ => bail!(
                "could not install the JS SDK; run `npm ci` in {} and start again",
                dir.display()
            ),
        }
    }
    std::fs::read(&bundle).with_context(|| format!("reading {}", bundle.display()))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();

    let port: u16 = match std::env::var("PORT") {
        Ok(p) => p
            .parse()
            .with_context(|| format!("PORT={p} is not a port"))?,
        Err(_) => 8000,
    };
    let sdk = load_sdk(Path::new(env!("CARGO_MANIFEST_DIR")))?;

    let node = chat_node();
    node.run().await?;

    let ws = WebSocketHandler::new(node.clone(), WebSocketConfig::default());
    let app = Router::new()
        .route("/", get(|| async { Html(INDEX_HTML) }))
        .route(
            "/centrifuge.js",
            get(move || {
                let sdk = sdk.clone();
                async move { ([(header::CONTENT_TYPE, "text/javascript")], sdk).into_response() }
            }),
        )
        .route_service("/connection/websocket", ws);

    let addr = SocketAddr::from(([0, 0, 0, 0], port));
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding {addr}"))?;
    // PORT=0 picks a free port: print the one we got.
    let port = listener.local_addr()?.port();
    println!("chat on http://localhost:{port}");

    let shutdown_node = node.clone();
    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            // On Ctrl-C, tell every client to reconnect elsewhere (3001) before leaving.
            let _ = tokio::signal::ctrl_c().await;
            shutdown_node.shutdown().await;
        })
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::is_chat_line;

    #[test]
    fn chat_lines_are_checked() {
        assert!(is_chat_line(br#"{"text":"hello"}"#));
        assert!(!is_chat_line(br#"{"text":""}"#));
        assert!(!is_chat_line(br#"{"txt":"hello"}"#));
        assert!(!is_chat_line(b"not json"));
        let long = format!(r#"{{"text":"{}"}}"#, "x".repeat(1001));
        assert!(!is_chat_line(long.as_bytes()));
    }
}
