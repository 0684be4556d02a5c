//! The UI's files: the ones embedded in the binary from `web/admin/`, or those of the
//! directory `admin.web_path`.

use std::path::PathBuf;
use std::sync::Arc;

use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, Uri, header};

/// Name, content type and bytes of every embedded file.
const EMBEDDED: &[(&str, &str, &[u8])] = &[
    (
        "index.html",
        "text/html; charset=utf-8",
        include_bytes!("../../../../web/admin/index.html"),
    ),
    (
        "admin.css",
        "text/css; charset=utf-8",
        include_bytes!("../../../../web/admin/admin.css"),
    ),
    (
        "admin.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../../../web/admin/admin.js"),
    ),
    (
        "live.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../../../web/admin/live.js"),
    ),
    (
        "favicon.svg",
        "image/svg+xml",
        include_bytes!("../../../../web/admin/favicon.svg"),
    ),
];

/// The embedded page only talks to its own origin and to the client WebSocket endpoint,
/// which may be on another port.
const CSP: &str = "default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data:; \
                   frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

fn content_type(name: &str) -> &'static str {
    match name.rsplit_once('.').map(|(_, ext)| ext) {
        Some("html" | "htm") => "text/html; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("json") => "application/json",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("ico") => "image/x-icon",
        Some("woff2") => "font/woff2",
        _ => "application/octet-stream",
    }
}

/// Where the UI's files come from, and the path prefix they are served under.
#[derive(Clone)]
pub(crate) struct Web {
    prefix: Arc<str>,
    directory: Option<Arc<PathBuf>>,
}

impl Web {
    /// Files under `prefix` (without a trailing `/`): the embedded ones, or those of
    /// `web_path` when it is set.
    pub(crate) fn new(prefix: &str, web_path: &str) -> Web {
        Web {
            prefix: prefix.into(),
            directory: (!web_path.is_empty()).then(|| Arc::new(PathBuf::from(web_path))),
        }
    }

    /// Answers a GET of a file; `<prefix>/` is `index.html`.
    pub(crate) async fn serve(&self, uri: &Uri) -> Response {
        let Some(name) = self.file_name(uri) else {
            return not_found();
        };
        match &self.directory {
            None => {
                let name = if name.is_empty() { "index.html" } else { &name };
                match EMBEDDED.iter().find(|(n, _, _)| *n == name) {
                    Some((_, kind, bytes)) => file(kind, bytes.to_vec(), true),
                    None => not_found(),
                }
            }
            Some(dir) => {
                let mut path = dir.join(&name);
                if tokio::fs::metadata(&path).await.is_ok_and(|m| m.is_dir()) {
                    path = path.join("index.html");
                }
                match tokio::fs::read(&path).await {
                    Ok(bytes) => file(content_type(&path.to_string_lossy()), bytes, false),
                    Err(_) => not_found(),
                }
            }
        }
    }

    /// The requested file relative to the UI's root; `None` when the path is not under the
    /// prefix or would leave the root (`..`, backslashes, NUL).
    fn file_name(&self, uri: &Uri) -> Option<String> {
        let path = percent_decode(uri.path())?;
        let rest = path.strip_prefix(&*self.prefix)?;
        let mut parts = Vec::new();
        for segment in rest.split('/') {
            match segment {
                "" | "." => {}
                ".." => return None,
                s if s.contains('\\') || s.contains('\0') => return None,
                s => parts.push(s),
            }
        }
        Some(parts.join("/"))
    }
}

fn percent_decode(path: &str) -> Option<String> {
    let bytes = path.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

fn file(kind: &'static str, bytes: Vec<u8>, embedded: bool) -> Response {
    let mut response = (StatusCode::OK, bytes).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if embedded {
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CSP),
        );
    }
    response
}

fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        [(header::CONTENT_TYPE, "application/json")],
        r#"{"error":"not found"}"#,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(prefix: &str, path: &str) -> Option<String> {
        Web::new(prefix, "").file_name(&path.parse().unwrap())
    }

    #[test]
    fn names_stay_inside_the_root() {
        assert_eq!(name("", "/").as_deref(), Some(""));
        assert_eq!(name("", "/admin.js").as_deref(), Some("admin.js"));
        assert_eq!(name("/ui", "/ui/a/b.css").as_deref(), Some("a/b.css"));
        assert_eq!(name("/ui", "/other/b.css"), None);
        assert_eq!(name("", "/../etc/passwd"), None);
        assert_eq!(name("", "/a/%2e%2e/%2e%2e/etc/passwd"), None);
        assert_eq!(name("", "/a%5c..%5cb"), None);
        assert_eq!(name("", "/%zz"), None);
    }

    #[test]
    fn every_embedded_file_has_its_type() {
        for (name, kind, bytes) in EMBEDDED {
            assert_eq!(content_type(name), *kind);
            assert!(!bytes.is_empty(), "{name}");
        }
    }
}
