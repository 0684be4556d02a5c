//! The admin endpoints of the running server: login, the session token (its format,
//! expiry and tampering), the command endpoint, insecure mode, which port serves the UI,
//! `admin.web_path`, the live view's connection token, and the start-up warning for an
//! admin UI nobody can log in to.

mod support;

use aws_lc_rs::hmac;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE;
use serde_json::{Value, json};
use support::{Server, WsClient, now};

const PASSWORD: &str = "admin-password";
const SECRET: &str = "admin-secret";

fn admin_config() -> Value {
    json!({
        "admin": {"enabled": true, "password": PASSWORD, "secret": SECRET},
        "http_api": {"key": "api-key"},
        "client": {"token": {"hmac_secret_key": "client-secret"}},
        "channel": {"without_namespace": {"allow_subscribe_for_client": true}},
    })
}

/// A session token made independently of the server, in gorilla/securecookie's format:
/// `base64url(ts|base64url(gob("authorized"))|hmac)`, the MAC over `token|ts|value`.
fn session_token(secret: &str, made: i64) -> String {
    let value = URL_SAFE.encode(b"\x0d\x0c\x00\x0aauthorized");
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes());
    let tag = hmac::sign(&key, format!("token|{made}|{value}").as_bytes());
    let mut body = format!("{made}|{value}|").into_bytes();
    body.extend_from_slice(tag.as_ref());
    URL_SAFE.encode(body)
}

async fn login(base: &str, password: &str) -> reqwest::Response {
    reqwest::Client::new()
        .post(format!("{base}/admin/auth"))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(format!("password={password}"))
        .send()
        .await
        .unwrap()
}

async fn token(base: &str) -> String {
    let answer = json_of(login(base, PASSWORD).await).await;
    answer["token"].as_str().expect("a token").to_owned()
}

/// `POST /admin/api` with an optional `Authorization: token ...`; status and body.
async fn command(base: &str, token: Option<&str>, body: Value) -> (u16, String) {
    let mut request = reqwest::Client::new()
        .post(format!("{base}/admin/api"))
        .body(body.to_string());
    if let Some(token) = token {
        request = request.header("Authorization", format!("token {token}"));
    }
    let response = request.send().await.unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

async fn init(base: &str, token: Option<&str>) -> Value {
    let mut request = reqwest::Client::new().get(format!("{base}/admin/init"));
    if let Some(token) = token {
        request = request.header("Authorization", format!("token {token}"));
    }
    json_of(request.send().await.unwrap()).await
}

async fn json_of(response: reqwest::Response) -> Value {
    let text = response.text().await.unwrap();
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

fn info() -> Value {
    json!({"method": "info", "params": {}})
}

#[tokio::test]
async fn login_then_commands_with_the_token() {
    let server = Server::start(admin_config());
    let base = server.http_url();
    assert_eq!(
        init(&base, None).await,
        json!({"insecure": false, "edition": "oss", "authenticated": false})
    );

    let wrong = login(&base, "not-it").await;
    assert_eq!(wrong.status(), 400);
    let wrong = json_of(wrong).await;
    assert!(wrong["error"].is_string(), "{wrong}");

    let token = token(&base).await;
    assert_eq!(init(&base, Some(&token)).await["authenticated"], true);

    let (status, text) = command(&base, None, info()).await;
    assert_eq!(status, 401, "{text}");
    let (status, text) = command(&base, Some(&token), info()).await;
    assert_eq!(status, 200, "{text}");
    let answer: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(answer["result"]["nodes"].as_array().unwrap().len(), 1);

    // The query parameter works too, and an API key is no admin token.
    let by_query = reqwest::Client::new()
        .post(format!("{base}/admin/api?token={token}"))
        .body(info().to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(by_query.status(), 200);
    let by_key = reqwest::Client::new()
        .post(format!("{base}/admin/api"))
        .header("X-API-Key", "api-key")
        .body(info().to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(by_key.status(), 401);

    // A publication made here reaches a subscriber; a batch answers every command.
    let (mut client, reply) = WsClient::connect(
        &server.ws_url(),
        json!({"token": support::hs256("client-secret", json!({"sub": "u1"}))}),
    )
    .await;
    reply.ok();
    client
        .call("subscribe", json!({"channel": "news"}))
        .await
        .ok();
    let publish = json!({"method": "publish", "params": {"channel": "news", "data": {"n": 1}}});
    let (status, text) = command(&base, Some(&token), publish).await;
    assert_eq!((status, text.as_str()), (200, r#"{"result":{}}"#));
    assert_eq!(
        client.publication("news").await.unwrap()["data"],
        json!({"n": 1})
    );
    let batch = json!({"method": "batch", "params": {"commands": [
        {"publish": {"channel": "news", "data": {"n": 2}}},
        {"presence_stats": {"channel": "news"}},
    ]}});
    let (status, text) = command(&base, Some(&token), batch).await;
    assert_eq!(status, 200, "{text}");
    let answer: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        answer["result"]["replies"][0],
        json!({"publish": {}}),
        "{text}"
    );
    assert!(
        answer["result"]["replies"][1]["error"].is_object(),
        "{text}"
    );
    assert_eq!(
        client.publication("news").await.unwrap()["data"],
        json!({"n": 2})
    );

    // Not POST.
    let get = reqwest::get(format!("{base}/admin/api")).await.unwrap();
    assert_eq!(get.status(), 405);
}

#[tokio::test]
async fn tokens_are_securecookie_values_valid_for_thirty_days() {
    let server = Server::start(admin_config());
    let base = server.http_url();

    // The server's token has the securecookie layout and a current timestamp.
    let issued = token(&base).await;
    let body = URL_SAFE.decode(&issued).unwrap();
    let made: i64 = String::from_utf8_lossy(&body[..body.iter().position(|&b| b == b'|').unwrap()])
        .parse()
        .unwrap();
    assert!((made - now()).abs() < 60);
    assert_eq!(issued, session_token(SECRET, made));

    let day = 24 * 3600;
    let fresh = session_token(SECRET, now() - 29 * day);
    assert_eq!(command(&base, Some(&fresh), info()).await.0, 200);
    let expired = session_token(SECRET, now() - 31 * day);
    assert_eq!(command(&base, Some(&expired), info()).await.0, 401);
    assert_eq!(init(&base, Some(&expired)).await["authenticated"], false);
    let foreign = session_token("another-secret", now());
    assert_eq!(command(&base, Some(&foreign), info()).await.0, 401);

    // Any changed byte of the signed body is refused.
    for i in [0, body.len() / 2, body.len() - 1] {
        let mut tampered = body.clone();
        tampered[i] ^= 0x01;
        let tampered = URL_SAFE.encode(tampered);
        assert_eq!(
            command(&base, Some(&tampered), info()).await.0,
            401,
            "byte {i}"
        );
    }
    assert_eq!(command(&base, Some("garbage"), info()).await.0, 401);
}

#[tokio::test]
async fn insecure_mode_needs_no_token() {
    let server = Server::start(json!({"admin": {"enabled": true, "insecure": true}}));
    let base = server.http_url();
    assert_eq!(
        init(&base, None).await,
        json!({"insecure": true, "edition": "oss", "authenticated": true})
    );
    let (status, text) = command(&base, None, info()).await;
    assert_eq!(status, 200, "{text}");
    assert!(server.logs().contains("INSECURE admin mode"));
}

#[tokio::test]
async fn nobody_can_log_in_without_password_and_secret() {
    let server = Server::start(json!({"admin": {"enabled": true}}));
    let base = server.http_url();
    let logs = server.logs();
    let warning = logs
        .lines()
        .find(|l| l.contains("nobody can log in"))
        .unwrap_or_else(|| panic!("no warning in:\n{logs}"));
    assert!(warning.contains(r#""level":"WARN""#), "{warning}");
    let refused = login(&base, "").await;
    assert_eq!(refused.status(), 400);
    assert!(json_of(refused).await["error"].is_string());
    assert_eq!(command(&base, None, info()).await.0, 401);
}

#[tokio::test]
async fn the_ui_lives_on_the_internal_port_unless_external() {
    let internal = gyre_testkit::free_port();
    let mut config = admin_config();
    config["http_server"] =
        json!({"internal_port": internal.to_string(), "internal_address": "127.0.0.1"});
    let server = Server::start(config.clone());
    let internal_base = format!("http://127.0.0.1:{internal}");
    let mut page = None;
    for _ in 0..50 {
        if let Ok(r) = reqwest::get(format!("{internal_base}/")).await {
            page = Some(r);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let page = page.expect("internal port answers");
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("Gyre admin"));
    assert_eq!(init(&internal_base, None).await["edition"], "oss");
    let outside = reqwest::get(format!("{}/admin/init", server.http_url()))
        .await
        .unwrap();
    assert_eq!(outside.status(), 404);
    drop(server);

    config["admin"]["external"] = json!(true);
    config["admin"]["handler_prefix"] = json!("/ui");
    config["http_server"]["internal_port"] = json!(gyre_testkit::free_port().to_string());
    let server = Server::start(config);
    let base = format!("{}/ui", server.http_url());
    assert_eq!(init(&base, None).await["edition"], "oss");
    let token = token(&base).await;
    assert_eq!(command(&base, Some(&token), info()).await.0, 200);
    let script = reqwest::get(format!("{base}/admin.js")).await.unwrap();
    assert_eq!(script.status(), 200);
    assert!(
        script.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/javascript")
    );
    // `/ui` without the slash is sent to `/ui/`, where the page's relative links work.
    let bare = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(format!("{}/ui", server.http_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(bare.status(), 301);
    assert_eq!(bare.headers()["location"], "/ui/");
}

#[tokio::test]
async fn web_path_serves_files_from_a_directory() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("index.html"), "<p>custom admin</p>").unwrap();
    std::fs::create_dir(dir.path().join("js")).unwrap();
    std::fs::write(dir.path().join("js/app.js"), "console.log(1)").unwrap();
    std::fs::write(dir.path().parent().unwrap().join("outside.txt"), "secret").ok();
    let mut config = admin_config();
    config["admin"]["web_path"] = json!(dir.path().to_str().unwrap());
    let server = Server::start(config);
    let base = server.http_url();
    let index = reqwest::get(format!("{base}/")).await.unwrap();
    assert_eq!(index.text().await.unwrap(), "<p>custom admin</p>");
    let script = reqwest::get(format!("{base}/js/app.js")).await.unwrap();
    assert_eq!(script.status(), 200);
    assert_eq!(script.text().await.unwrap(), "console.log(1)");
    // The embedded files are not served, and nothing above the directory is.
    assert_eq!(
        reqwest::get(format!("{base}/admin.js"))
            .await
            .unwrap()
            .status(),
        404
    );
    let escape = reqwest::get(format!("{base}/%2e%2e/outside.txt"))
        .await
        .unwrap();
    assert_eq!(escape.status(), 404);
    // The endpoints stay.
    assert_eq!(init(&base, None).await["edition"], "oss");
}

#[tokio::test]
async fn live_view_token_subscribes_server_side() {
    let server = Server::start(admin_config());
    let base = server.http_url();
    let token = token(&base).await;
    let live = |body: Value, token: Option<String>| {
        let mut request = reqwest::Client::new()
            .post(format!("{base}/admin/live"))
            .body(body.to_string());
        if let Some(token) = token {
            request = request.header("Authorization", format!("token {token}"));
        }
        request.send()
    };
    assert_eq!(
        live(json!({"channel": "news"}), None)
            .await
            .unwrap()
            .status(),
        401
    );
    assert_eq!(
        live(json!({}), Some(token.clone())).await.unwrap().status(),
        400
    );
    let answer = json_of(
        live(json!({"channel": "news"}), Some(token.clone()))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(answer["user"], "gyre-admin");
    assert_eq!(answer["websocket"]["path"], "/connection/websocket");
    assert_eq!(answer["websocket"]["port"], server.port());

    let (mut viewer, reply) = WsClient::connect(
        &server.ws_url(),
        json!({"token": answer["token"], "name": "test"}),
    )
    .await;
    let connected = reply.ok();
    assert_eq!(connected["subs"]["news"], json!({}), "{connected}");
    let publish =
        json!({"method": "publish", "params": {"channel": "news", "data": {"live": true}}});
    assert_eq!(command(&base, Some(&token), publish).await.0, 200);
    assert_eq!(
        viewer.publication("news").await.unwrap()["data"],
        json!({"live": true})
    );
    drop(server);

    // Without an HMAC secret there is no token to give, and the answer says why.
    let mut config = admin_config();
    config["client"] = json!({});
    let server = Server::start(config);
    let base = server.http_url();
    let token = self::token(&base).await;
    let refused = reqwest::Client::new()
        .post(format!("{base}/admin/live"))
        .header("Authorization", format!("token {token}"))
        .body(json!({"channel": "news"}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 409);
    let refused = json_of(refused).await;
    assert!(
        refused["error"]
            .as_str()
            .unwrap()
            .contains("client.token.hmac_secret_key")
    );
}
