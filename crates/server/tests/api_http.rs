//! The server API's HTTP surface against the real binary: auth, error modes, bad requests,
//! the legacy single endpoint.

mod api_support;

use api_support::{KEY, Server};
use serde_json::{Value, json};

fn namespaces() -> Value {
    json!({"channel": {
        "without_namespace": {"presence": true},
        "namespaces": [
            {"name": "hist", "history_size": 10, "history_ttl": "300s"},
            {"name": "plain"}
        ]
    }})
}

fn body(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{text:?}: {e}"))
}

#[tokio::test]
async fn api_key_in_header_authorization_or_query() {
    let server = Server::start(json!({}));
    let info = r#"{}"#;
    let ok = |(status, text): (u16, String)| {
        assert_eq!(status, 200, "{text}");
        assert!(body(&text)["result"]["nodes"].is_array(), "{text}");
    };
    ok(server
        .post_raw("/api/info", &[("X-API-Key", KEY)], info)
        .await);
    ok(server
        .post_raw(
            "/api/info",
            &[("Authorization", &format!("apikey {KEY}"))],
            info,
        )
        .await);
    ok(server
        .post_raw(
            "/api/info",
            &[("Authorization", &format!("ApiKey {KEY}"))],
            info,
        )
        .await);
    ok(server
        .post_raw(&format!("/api/info?api_key={KEY}"), &[], info)
        .await);

    for headers in [
        vec![],
        vec![("X-API-Key", "wrong")],
        vec![("Authorization", "apikey wrong")],
        vec![("Authorization", &*format!("Bearer {KEY}"))],
    ] {
        let (status, text) = server.post_raw("/api/info", &headers, info).await;
        assert_eq!(status, 401, "{headers:?}: {text}");
        assert_eq!(body(&text), json!({"code": 101, "message": "unauthorized"}));
    }
    let (status, _) = server
        .post_raw("/api?api_key=wrong", &[], r#"{"method":"info"}"#)
        .await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn empty_key_refuses_everything_unless_insecure() {
    let server = Server::start(json!({"http_api": {"key": ""}}));
    for headers in [vec![], vec![("X-API-Key", "")], vec![("X-API-Key", "x")]] {
        let (status, _) = server.post_raw("/api/info", &headers, "{}").await;
        assert_eq!(status, 401, "{headers:?}");
    }
    let (status, _) = server.post_raw("/api", &[], r#"{"method":"info"}"#).await;
    assert_eq!(status, 401);

    let insecure = Server::start(json!({"http_api": {"key": "", "insecure": true}}));
    let (status, text) = insecure.post_raw("/api/info", &[], "{}").await;
    assert_eq!(status, 200, "{text}");
    let (status, text) = insecure.post_raw("/api", &[], r#"{"method":"info"}"#).await;
    assert_eq!(status, 200, "{text}");
}

#[tokio::test]
async fn bad_requests_get_json_bodies() {
    let server = Server::start(namespaces());
    let key = [("X-API-Key", KEY)];
    let bad = json!({"code": 107, "message": "bad request"});
    for (path, text) in [
        ("/api/publish", "{not json"),
        ("/api/publish", r#"{"channel": 5}"#),
        ("/api/publish", r#"{"channel": "x"} trailing"#),
        ("/api/info", ""),
        ("/api/batch", r#"{"commands": 5}"#),
        ("/api/history", r#"{"channel":"hist:a","limit":"ten"}"#),
    ] {
        let (status, response) = server.post_raw(path, &key, text).await;
        assert_eq!(status, 400, "{path} {text}: {response}");
        assert_eq!(body(&response), bad, "{path} {text}");
    }

    let (status, response) = server.post_raw("/api/no_such_method", &key, "{}").await;
    assert_eq!(status, 404);
    assert_eq!(
        body(&response),
        json!({"code": 104, "message": "not found"})
    );

    let response = server.http_get("/api/info").await;
    assert_eq!(response.0, 405, "{}", response.1);
    assert_eq!(body(&response.1)["message"], "method not allowed");

    // Null fields are zero values, as Go decodes them; unknown fields are ignored.
    let result = server
        .api(
            "publish",
            json!({"channel": "plain:x", "data": {"a": 1}, "tags": null, "b64data": null, "extra": 1}),
        )
        .await;
    assert_eq!(result, json!({"result": {}}));
}

#[tokio::test]
async fn default_error_mode_answers_200_with_the_error() {
    let server = Server::start(namespaces());
    let cases = [
        (
            "publish",
            json!({"channel": "nope:x", "data": {}}),
            102,
            "unknown channel",
        ),
        (
            "publish",
            json!({"channel": "", "data": {}}),
            107,
            "bad request",
        ),
        (
            "history",
            json!({"channel": "plain:x"}),
            108,
            "not available",
        ),
        ("rpc", json!({"method": "anything"}), 104, "not found"),
    ];
    for (method, request, code, message) in cases {
        let value = server.api(method, request).await;
        assert_eq!(
            value,
            json!({"error": {"code": code, "message": message}}),
            "{method}"
        );
    }
}

async fn check_transport_mode(server: &Server, headers: &[(&str, &str)]) {
    let (_, top) = server
        .post(
            "/api/publish",
            headers,
            &json!({"channel": "hist:t", "data": {}}),
        )
        .await;
    let epoch = top["result"]["epoch"].as_str().unwrap().to_owned();
    let cases = [
        (
            "publish",
            json!({"channel": "nope:x", "data": {}}),
            404,
            102,
        ),
        ("publish", json!({"channel": "plain:x"}), 400, 107),
        ("presence", json!({"channel": "plain:x"}), 400, 108),
        ("rpc", json!({"method": "x"}), 404, 104),
        (
            "history",
            json!({"channel": "hist:t", "since": {"offset": 0, "epoch": format!("{epoch}-other")}, "limit": -1}),
            416,
            112,
        ),
    ];
    for (method, request, status, code) in cases {
        let (got, value) = server
            .post(&format!("/api/{method}"), headers, &request)
            .await;
        assert_eq!(got, status, "{method}: {value}");
        assert_eq!(value["code"], code, "{method}: {value}");
        assert!(value["message"].is_string() && value.get("error").is_none());
    }
    // Successes and batches are unaffected.
    let (status, value) = server
        .post("/api/presence_stats", headers, &json!({"channel": "x"}))
        .await;
    assert_eq!(
        (status, value),
        (200, json!({"result": {"num_clients": 0, "num_users": 0}}))
    );
    let (status, value) = server
        .post(
            "/api/batch",
            headers,
            &json!({"commands": [{"publish": {"channel": "nope:x", "data": 1}}]}),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(value["replies"][0]["error"]["code"], 102);
}

#[tokio::test]
async fn transport_error_mode_from_config_or_header() {
    let server = Server::start(namespaces());
    check_transport_mode(&server, &[("X-Centrifugo-Error-Mode", "transport")]).await;
    let configured = Server::start({
        let mut c = namespaces();
        c["http_api"] = json!({"key": KEY, "error_mode": "transport"});
        c
    });
    check_transport_mode(&configured, &[]).await;
}

#[tokio::test]
async fn legacy_endpoint_runs_a_stream_of_commands() {
    let server = Server::start(namespaces());
    let key = [("X-API-Key", KEY)];
    let commands = [
        r#"{"id": 1, "method": "publish", "params": {"channel": "hist:l", "data": {"n": 1}}}"#,
        r#"{"id": 2, "method": 0, "params": {"channel": "hist:l", "data": {"n": 2}}}"#,
        r#"{"id": 3, "method": "HISTORY", "params": {"channel": "hist:l", "limit": -1}}"#,
        r#"{"id": 4, "method": "info"}"#,
        r#"{"id": 5, "method": 13, "params": {}}"#,
        r#"{"id": 6, "method": "connections", "params": {}}"#,
        r#"{"id": 7, "method": "publish"}"#,
        r#"{"method": "presence_stats", "params": {"channel": "nope:x"}}"#,
        r#"{"id": 9, "method": "history_remove", "params": {"channel": "hist:l"}}"#,
    ];
    let (status, text) = server.post_raw("/api", &key, &commands.join("\n")).await;
    assert_eq!(status, 200, "{text}");
    let replies: Vec<Value> = text.lines().map(body).collect();
    assert_eq!(replies.len(), commands.len(), "{text}");
    assert_eq!(replies[0]["id"], 1);
    assert_eq!(replies[0]["result"]["offset"], 1);
    let epoch = replies[0]["result"]["epoch"].clone();
    assert!(epoch.is_string());
    assert_eq!(
        replies[1],
        json!({"id": 2, "result": {"offset": 2, "epoch": epoch}})
    );
    assert_eq!(replies[2]["id"], 3);
    let publications = &replies[2]["result"]["publications"];
    assert_eq!(publications[0], json!({"data": {"n": 1}, "offset": 1}));
    assert_eq!(publications[1], json!({"data": {"n": 2}, "offset": 2}));
    assert_eq!(replies[3]["id"], 4);
    assert!(replies[3]["result"]["nodes"][0]["uid"].is_string());
    let not_found = json!({"code": 104, "message": "not found"});
    assert_eq!(replies[4], json!({"id": 5, "error": not_found}));
    assert_eq!(replies[5], json!({"id": 6, "error": not_found}));
    assert_eq!(
        replies[6],
        json!({"id": 7, "error": {"code": 107, "message": "bad request"}})
    );
    // No id: the field is left out, as Go's omitempty does.
    assert_eq!(
        replies[7],
        json!({"error": {"code": 102, "message": "unknown channel"}})
    );
    assert_eq!(replies[8], json!({"id": 9, "result": {}}));

    // Concatenated without newlines works too.
    let (status, text) = server
        .post_raw(
            "/api",
            &key,
            r#"{"id":1,"method":"info"}{"id":2,"method":"rpc","params":{"method":"m"}}"#,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(text.lines().count(), 2, "{text}");

    // An unknown method name, `batch`, a broken stream or an empty body fail the request.
    for text in [
        r#"{"id": 1, "method": "nope", "params": {}}"#,
        r#"{"id": 1, "method": "batch", "params": {"commands": []}}"#,
        r#"{"id": 1, "method": "info"} {broken"#,
        "",
    ] {
        let (status, response) = server.post_raw("/api", &key, text).await;
        assert_eq!(status, 400, "{text:?}: {response}");
        assert_eq!(body(&response)["code"], 107);
    }
}

#[tokio::test]
async fn api_at_the_root_prefix() {
    let server = Server::start(json!({
        "http_api": {"handler_prefix": "/"},
        "health": {"enabled": true}
    }));
    let key = [("X-API-Key", KEY)];
    let (status, text) = server
        .post_raw("/publish", &key, r#"{"channel": "x", "data": 1}"#)
        .await;
    assert_eq!((status, body(&text)), (200, json!({"result": {}})));
    let (status, text) = server
        .post_raw("/", &key, r#"{"id": 1, "method": "info"}"#)
        .await;
    assert_eq!(status, 200, "{text}");
    assert_eq!(body(&text)["id"], 1);
    let health = reqwest::get(server.url("/health")).await.unwrap();
    assert_eq!(health.status().as_u16(), 200);
}
