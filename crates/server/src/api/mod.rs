//! The HTTP server API (`/api/<method>` and the legacy `/api`), compatible with
//! Centrifugo v6 (`internal/api/handler.go`, `internal/middleware/auth.go`).
//!
//! * `POST /api/<method>` with the method's request object. The answer is HTTP 200 with
//!   `{"result": ...}` or `{"error": {"code", "message"}}`; in the transport error mode
//!   (`http_api.error_mode: transport` or header `X-Centrifugo-Error-Mode: transport`) an
//!   error is instead the bare `{"code", "message"}` with an HTTP status
//!   ([`ApiError::http_status`]).
//! * `POST /api/batch` with `{"commands": [{"publish": {...}}, ...], "parallel": bool}` →
//!   `{"replies": [{"publish": {...}}, {"error": {...}}]}` (always 200).
//! * `POST /api`: the legacy stream of `{"id", "method", "params"}` commands.
//! * Auth: `X-API-Key: <key>`, else `Authorization: apikey <key>`, else `?api_key=<key>`.
//!   An empty `http_api.key` refuses everything unless `http_api.insecure`.
//!
//! Failures outside the API's own errors carry the same bare error object:
//! 400 undecodable body, 401 bad key, 404 unknown method, 405 not POST, 413 body too
//! large, 503 shutting down (legacy endpoint).
//!
//! The methods are listed once, in the table of `methods.rs`, which also says how to add
//! one; their code is in `executor.rs`, one function per method.

pub(crate) mod executor;
mod glob;
pub(crate) mod legacy;
pub(crate) mod methods;
pub(crate) mod proto;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use http::{HeaderMap, HeaderValue, StatusCode, Uri};
use serde::Serialize;

use crate::app::App;
use crate::metrics::ApiProtocol;
use methods::Method;
use proto::{ApiError, BatchRequest};

/// Request bodies above this size are refused with 413 (Centrifugo reads any size; this
/// only guards memory).
const MAX_BODY: usize = 64 << 20;

/// Decodes `body` as every method's request, as a batch and as a legacy body, the way
/// the handlers do before anything runs (the fuzz target's way in).
pub(crate) fn fuzz_decode(body: &[u8]) {
    for method in Method::ALL {
        let _ = method.decode(body);
    }
    if let Ok(batch) = serde_json::from_slice::<BatchRequest>(body) {
        for command in batch.commands.into_iter().flatten() {
            let _ = command.into_request();
        }
    }
    legacy::fuzz_decode(body);
}

/// Routes of the server API, relative to `http_api.handler_prefix`.
pub(crate) fn router(app: App) -> Router {
    Router::new()
        .route("/", any(legacy_handler))
        .route("/{method}", any(method_handler))
        .with_state(app)
}

fn json_response(status: StatusCode, body: Vec<u8>) -> Response {
    let mut response = (status, body).into_response();
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

fn serialize(status: StatusCode, value: &impl Serialize) -> Response {
    match serde_json::to_vec(value) {
        Ok(body) => json_response(status, body),
        Err(err) => {
            tracing::error!(error = %err, "server API: encoding a response");
            let e = ApiError::INTERNAL;
            error_response(StatusCode::INTERNAL_SERVER_ERROR, e.code, e.message)
        }
    }
}

/// A non-200 answer: the bare error object.
fn error_response(status: StatusCode, code: u32, message: &'static str) -> Response {
    serialize(status, &ApiError { code, message })
}

/// What every endpoint does first: checks the HTTP method and the API key, reads the
/// body. Returns the body and whether errors use the transport error mode.
async fn accept(
    app: &App,
    method: &http::Method,
    headers: &HeaderMap,
    uri: &Uri,
    body: Body,
) -> Result<(bytes::Bytes, bool), Response> {
    if method != http::Method::POST {
        let code = ApiError::BAD_REQUEST.code;
        return Err(error_response(
            StatusCode::METHOD_NOT_ALLOWED,
            code,
            "method not allowed",
        ));
    }
    let transport_errors = {
        let api = &app.config().http_api;
        if !api.insecure && !authorized(&api.key, headers, uri) {
            let e = ApiError::UNAUTHORIZED;
            return Err(error_response(StatusCode::UNAUTHORIZED, e.code, e.message));
        }
        api.error_mode == "transport"
            || headers
                .get("x-centrifugo-error-mode")
                .is_some_and(|v| v.as_bytes() == b"transport")
    };
    match axum::body::to_bytes(body, MAX_BODY).await {
        Ok(body) => Ok((body, transport_errors)),
        Err(_) => {
            let code = ApiError::BAD_REQUEST.code;
            Err(error_response(
                StatusCode::PAYLOAD_TOO_LARGE,
                code,
                "request body too large",
            ))
        }
    }
}

fn bad_request() -> Response {
    let e = ApiError::BAD_REQUEST;
    error_response(StatusCode::BAD_REQUEST, e.code, e.message)
}

/// Upstream `APIKeyAuth`: `X-API-Key` decides when present; else `Authorization: apikey
/// <key>`; the `api_key` query parameter is the last resort.
fn authorized(key: &str, headers: &HeaderMap, uri: &Uri) -> bool {
    if key.is_empty() {
        return false;
    }
    let header = |name| {
        headers
            .get(name)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .filter(|v| !v.is_empty())
    };
    let valid = if let Some(given) = header("x-api-key") {
        secure_eq(key, &given)
    } else if let Some(auth) = header("authorization") {
        let parts: Vec<&str> = auth.split_whitespace().collect();
        matches!(parts.as_slice(), [scheme, given]
            if scheme.eq_ignore_ascii_case("apikey") && secure_eq(key, given))
    } else {
        false
    };
    valid
        || uri.query().is_some_and(|q| !q.is_empty())
            && Query::<Vec<(String, String)>>::try_from_uri(uri)
                .ok()
                .and_then(|Query(pairs)| pairs.into_iter().find(|(k, _)| k == "api_key"))
                .is_some_and(|(_, given)| secure_eq(key, &given))
}

/// Compares without an early exit on the first differing byte.
pub(crate) fn secure_eq(expected: &str, given: &str) -> bool {
    expected.len() == given.len()
        && expected
            .bytes()
            .zip(given.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

async fn method_handler(
    State(app): State<App>,
    Path(name): Path<String>,
    method: http::Method,
    headers: HeaderMap,
    uri: Uri,
    body: Body,
) -> Response {
    let api_method = match (name.as_str(), Method::from_name(&name)) {
        ("batch", _) => None,
        (_, Some(m)) => Some(m),
        (_, None) => {
            let e = ApiError::NOT_FOUND;
            return error_response(StatusCode::NOT_FOUND, e.code, e.message);
        }
    };
    let (body, transport_errors) = match accept(&app, &method, &headers, &uri, body).await {
        Ok(accepted) => accepted,
        Err(response) => return response,
    };
    let Some(api_method) = api_method else {
        return match serde_json::from_slice::<BatchRequest>(&body) {
            Ok(batch) => serialize(
                StatusCode::OK,
                &executor::batch(&app, batch, ApiProtocol::Http).await,
            ),
            Err(_) => bad_request(),
        };
    };
    let request = match api_method.decode(&body[..]) {
        Ok(request) => request,
        Err(_) => return bad_request(),
    };
    match methods::execute(&app, request, ApiProtocol::Http).await {
        Err(error) if transport_errors => serialize(error.http_status(), &error),
        outcome => serialize(StatusCode::OK, &proto::Response::from(outcome)),
    }
}

async fn legacy_handler(
    State(app): State<App>,
    method: http::Method,
    headers: HeaderMap,
    uri: Uri,
    body: Body,
) -> Response {
    let body = match accept(&app, &method, &headers, &uri, body).await {
        Ok((body, _)) => body,
        Err(response) => return response,
    };
    if app.node.is_shutting_down() {
        let code = ApiError::INTERNAL.code;
        return error_response(StatusCode::SERVICE_UNAVAILABLE, code, "shutting down");
    }
    if body.is_empty() {
        return bad_request();
    }
    match legacy::run(&app, &body).await {
        Ok(replies) => json_response(StatusCode::OK, replies),
        Err(_) => bad_request(),
    }
}

/// The admin UI's command endpoint (upstream serves the legacy handler there, behind the
/// admin token instead of the API key): legacy commands, plus, as a Gyre extension, one
/// `{"method": "batch", "params": {"commands": [...], "parallel": bool}}` answered
/// `{"result": {"replies": [...]}}`.
pub(crate) async fn admin_command(app: &App, body: Body) -> Response {
    #[derive(serde::Deserialize)]
    struct BatchCommand {
        method: String,
        #[serde(default)]
        params: Option<BatchRequest>,
    }
    #[derive(Serialize)]
    struct BatchAnswer {
        result: proto::BatchResult,
    }
    let Ok(body) = axum::body::to_bytes(body, MAX_BODY).await else {
        let code = ApiError::BAD_REQUEST.code;
        return error_response(
            StatusCode::PAYLOAD_TOO_LARGE,
            code,
            "request body too large",
        );
    };
    if app.node.is_shutting_down() {
        let code = ApiError::INTERNAL.code;
        return error_response(StatusCode::SERVICE_UNAVAILABLE, code, "shutting down");
    }
    if body.is_empty() {
        return bad_request();
    }
    if let Ok(command) = serde_json::from_slice::<BatchCommand>(&body)
        && command.method.eq_ignore_ascii_case("batch")
    {
        let Some(batch) = command.params else {
            return bad_request();
        };
        let result = executor::batch(app, batch, ApiProtocol::Http).await;
        return serialize(StatusCode::OK, &BatchAnswer { result });
    }
    match legacy::run(app, &body).await {
        Ok(replies) => json_response(StatusCode::OK, replies),
        Err(_) => bad_request(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(k, v)| {
                (
                    http::HeaderName::from_static(k),
                    HeaderValue::from_static(v),
                )
            })
            .collect()
    }

    #[test]
    fn api_key_sources_in_upstream_order() {
        let uri: Uri = "/api/info".parse().unwrap();
        let with_query: Uri = "/api/info?x=1&api_key=k".parse().unwrap();
        assert!(authorized("k", &headers(&[("x-api-key", "k")]), &uri));
        assert!(!authorized("k", &headers(&[("x-api-key", "bad")]), &uri));
        assert!(authorized(
            "k",
            &headers(&[("authorization", "apikey k")]),
            &uri
        ));
        assert!(authorized(
            "k",
            &headers(&[("authorization", "APIKEY  k")]),
            &uri
        ));
        assert!(!authorized(
            "k",
            &headers(&[("authorization", "bearer k")]),
            &uri
        ));
        assert!(!authorized(
            "k",
            &headers(&[("authorization", "apikey k extra")]),
            &uri
        ));
        // A wrong header does not stop the query parameter from authorizing.
        assert!(authorized(
            "k",
            &headers(&[("x-api-key", "bad")]),
            &with_query
        ));
        assert!(authorized("k", &HeaderMap::new(), &with_query));
        assert!(!authorized("k", &HeaderMap::new(), &uri));
        assert!(!authorized("", &headers(&[("x-api-key", "")]), &with_query));
    }

    async fn post(router: &Router, path: &str, body: String) -> (StatusCode, String) {
        let request = http::Request::post(path).body(Body::from(body)).unwrap();
        let response = tower_service::Service::call(&mut router.clone(), request)
            .await
            .unwrap();
        let status = response.status();
        let body = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        (status, String::from_utf8(body.to_vec()).unwrap())
    }

    /// A JSON answer, without the node uptimes of `info` (they may tick between calls).
    fn parse(text: &str) -> serde_json::Value {
        let mut value: serde_json::Value =
            serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"));
        if let Some(nodes) = value.pointer_mut("/result/nodes") {
            for node in nodes.as_array_mut().unwrap() {
                node.as_object_mut().unwrap().remove("uptime");
            }
        }
        value
    }

    /// Every row of the method table is served at `/api/<name>`, in a batch, and by the
    /// legacy endpoint by name and by number, with the same answer everywhere.
    #[tokio::test]
    async fn every_method_is_served_by_every_endpoint() {
        use serde_json::{Value, json};

        let mut config = crate::config::Config::default();
        config.http_api.insecure = true;
        let app = App::new(config).await.unwrap();
        app.node.run().await.unwrap();
        let router = router(app);

        let commands: Vec<Value> = Method::ALL
            .iter()
            .map(|method| json!({ method.name(): {} }))
            .collect();
        let (status, text) = post(
            &router,
            "/batch",
            json!({ "commands": commands }).to_string(),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{text}");
        let batch = parse(&text);
        let replies = batch["replies"].as_array().unwrap();
        assert_eq!(replies.len(), Method::ALL.len(), "{text}");

        let mut legacy = String::new();
        for (i, method) in Method::ALL.iter().enumerate() {
            let name = method.name().to_ascii_uppercase();
            legacy += &json!({"id": 2 * i + 1, "method": name, "params": {}}).to_string();
            legacy +=
                &json!({"id": 2 * i + 2, "method": method.legacy_id(), "params": {}}).to_string();
        }
        let (status, text) = post(&router, "/", legacy).await;
        assert_eq!(status, StatusCode::OK, "{text}");
        let legacy: Vec<Value> = text.lines().map(parse).collect();
        assert_eq!(legacy.len(), 2 * Method::ALL.len(), "{text}");

        for (i, method) in Method::ALL.iter().enumerate() {
            let name = method.name();
            let (status, text) = post(&router, &format!("/{name}"), "{}".into()).await;
            assert_eq!(status, StatusCode::OK, "{name}: {text}");
            let answer = parse(&text);
            // `{}` is a valid request of every method: a result, or an error of the
            // method's own checks, never "not found".
            assert_ne!(answer["error"]["code"], 104, "{name}: {text}");
            let (batch_reply, legacy_reply) = if let Some(result) = answer.get("result") {
                (json!({ name: result }), json!({ "result": result }))
            } else {
                let error = &answer["error"];
                assert!(error.is_object(), "{name}: {text}");
                (json!({ "error": error }), json!({ "error": error }))
            };
            assert_eq!(answer.as_object().unwrap().len(), 1, "{name}: {text}");
            assert_eq!(replies[i], batch_reply, "{name}");
            for n in [2 * i, 2 * i + 1] {
                let mut expected = legacy_reply.clone();
                expected["id"] = json!(n + 1);
                assert_eq!(legacy[n], expected, "{name}");
            }
        }
    }

    /// Another API module (as the gRPC API does) generates its code from the same table:
    /// here a generator that types a handler per row with the row's request and result
    /// and the same executor function, as an rpc handler would.
    #[test]
    fn another_module_generates_from_the_same_table() {
        use super::methods::api_methods;
        use super::proto::*;

        macro_rules! handlers {
            ($($name:ident: $variant:ident = $legacy:literal, $request:ty => $result:ty;)*) => {
                [$({
                    async fn _handler(app: &App, request: $request) -> Result<$result, ApiError> {
                        executor::$name(app, request).await
                    }
                    (stringify!($name), $legacy)
                }),*]
            };
        }
        let rows = api_methods!(handlers);
        let table: Vec<_> = Method::ALL
            .iter()
            .map(|m| (m.name(), m.legacy_id()))
            .collect();
        assert_eq!(rows.to_vec(), table);
    }

    #[test]
    fn secure_eq_compares_whole_strings() {
        assert!(secure_eq("abc", "abc"));
        assert!(!secure_eq("abc", "abd"));
        assert!(!secure_eq("abc", "ab"));
    }
}
