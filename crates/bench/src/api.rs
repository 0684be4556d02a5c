//! A minimal keep-alive HTTP/1.1 client for the Centrifugo server API
//! (`POST {api}/publish`), written over a raw `TcpStream` so the publisher costs
//! next to nothing on the client side.

use anyhow::{Context, anyhow, bail};
use bytes::{Buf, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Where and how to call the API.
#[derive(Debug, Clone)]
pub struct ApiTarget {
    /// `host:port`.
    pub hostport: String,
    /// Path prefix, e.g. `/api`.
    pub prefix: String,
    /// Value of `X-API-Key` (empty = header not sent).
    pub key: String,
}

impl ApiTarget {
    /// Parses `http://host:port/prefix`.
    pub fn parse(url: &str, key: &str) -> anyhow::Result<ApiTarget> {
        let rest = url
            .strip_prefix("http://")
            .ok_or_else(|| anyhow!("only http:// API URLs are supported: {url}"))?;
        let (hostport, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        Ok(ApiTarget {
            hostport: hostport.to_owned(),
            prefix: path.trim_end_matches('/').to_owned(),
            key: key.to_owned(),
        })
    }
}

/// One keep-alive connection to the API.
#[derive(Debug)]
pub struct ApiConn {
    stream: TcpStream,
    target: ApiTarget,
    buf: BytesMut,
    req: Vec<u8>,
}

impl ApiConn {
    /// Connects.
    pub async fn connect(target: &ApiTarget) -> anyhow::Result<ApiConn> {
        let stream = TcpStream::connect(&target.hostport)
            .await
            .with_context(|| format!("connecting to API at {}", target.hostport))?;
        stream.set_nodelay(true)?;
        Ok(ApiConn {
            stream,
            target: target.clone(),
            buf: BytesMut::with_capacity(4096),
            req: Vec::with_capacity(1024),
        })
    }

    /// `POST {prefix}/publish` with `{"channel":…,"data":…}`; `data` must be JSON.
    /// Fails on a non-2xx status or an `"error"` in the body.
    pub async fn publish(&mut self, channel: &str, data: &[u8]) -> anyhow::Result<()> {
        let body_len = br#"{"channel":"#.len()
            + json_string_len(channel)
            + br#","data":"#.len()
            + data.len()
            + 1;
        self.req.clear();
        self.req.extend_from_slice(b"POST ");
        self.req.extend_from_slice(self.target.prefix.as_bytes());
        self.req.extend_from_slice(b"/publish HTTP/1.1\r\nHost: ");
        self.req.extend_from_slice(self.target.hostport.as_bytes());
        self.req
            .extend_from_slice(b"\r\nContent-Type: application/json\r\n");
        if !self.target.key.is_empty() {
            self.req.extend_from_slice(b"X-API-Key: ");
            self.req.extend_from_slice(self.target.key.as_bytes());
            self.req.extend_from_slice(b"\r\n");
        }
        self.req.extend_from_slice(b"Content-Length: ");
        self.req
            .extend_from_slice(itoa::Buffer::new().format(body_len).as_bytes());
        self.req.extend_from_slice(b"\r\n\r\n{\"channel\":");
        write_json_string(&mut self.req, channel);
        self.req.extend_from_slice(b",\"data\":");
        self.req.extend_from_slice(data);
        self.req.push(b'}');
        self.stream.write_all(&self.req).await?;
        let (status, body) = self.read_response().await?;
        if !(200..300).contains(&status) {
            bail!(
                "API publish: HTTP {status}: {}",
                String::from_utf8_lossy(&body)
            );
        }
        if memchr::memmem::find(&body, b"\"error\"").is_some() {
            bail!("API publish: {}", String::from_utf8_lossy(&body));
        }
        Ok(())
    }

    /// `POST {prefix}/{method}` with a JSON `body`; returns the response body. Fails on a
    /// non-2xx status or an `"error"` in the body.
    pub async fn call(&mut self, method: &str, body: &[u8]) -> anyhow::Result<Vec<u8>> {
        self.req.clear();
        self.req.extend_from_slice(b"POST ");
        self.req.extend_from_slice(self.target.prefix.as_bytes());
        self.req.push(b'/');
        self.req.extend_from_slice(method.as_bytes());
        self.req.extend_from_slice(b" HTTP/1.1\r\nHost: ");
        self.req.extend_from_slice(self.target.hostport.as_bytes());
        self.req
            .extend_from_slice(b"\r\nContent-Type: application/json\r\n");
        if !self.target.key.is_empty() {
            self.req.extend_from_slice(b"X-API-Key: ");
            self.req.extend_from_slice(self.target.key.as_bytes());
            self.req.extend_from_slice(b"\r\n");
        }
        self.req.extend_from_slice(b"Content-Length: ");
        self.req
            .extend_from_slice(itoa::Buffer::new().format(body.len()).as_bytes());
        self.req.extend_from_slice(b"\r\n\r\n");
        self.req.extend_from_slice(body);
        self.stream.write_all(&self.req).await?;
        let (status, body) = self.read_response().await?;
        if !(200..300).contains(&status) {
            bail!(
                "API {method}: HTTP {status}: {}",
                String::from_utf8_lossy(&body)
            );
        }
        if memchr::memmem::find(&body, b"\"error\"").is_some() {
            bail!("API {method}: {}", String::from_utf8_lossy(&body));
        }
        Ok(body)
    }

    async fn fill(&mut self) -> anyhow::Result<()> {
        if self.stream.read_buf(&mut self.buf).await? == 0 {
            bail!("API connection closed");
        }
        Ok(())
    }

    /// Reads one response: status and body (Content-Length or chunked).
    async fn read_response(&mut self) -> anyhow::Result<(u16, Vec<u8>)> {
        let head_end = loop {
            if let Some(i) = memchr::memmem::find(&self.buf, b"\r\n\r\n") {
                break i + 4;
            }
            self.fill().await?;
        };
        let head = self.buf.split_to(head_end);
        let head = std::str::from_utf8(&head).context("response head is not UTF-8")?;
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap_or_default();
        let status: u16 = status_line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| anyhow!("bad status line {status_line:?}"))?;
        let mut content_length = None;
        let mut chunked = false;
        for line in lines {
            let Some((name, value)) = line.split_once(':') else {
                continue;
            };
            let value = value.trim();
            if name.eq_ignore_ascii_case("content-length") {
                content_length = Some(value.parse::<usize>()?);
            } else if name.eq_ignore_ascii_case("transfer-encoding")
                && value.eq_ignore_ascii_case("chunked")
            {
                chunked = true;
            }
        }
        let body = if chunked {
            self.read_chunked().await?
        } else {
            let len = content_length.unwrap_or(0);
            while self.buf.len() < len {
                self.fill().await?;
            }
            self.buf.split_to(len).to_vec()
        };
        Ok((status, body))
    }

    async fn read_chunked(&mut self) -> anyhow::Result<Vec<u8>> {
        let mut body = Vec::new();
        loop {
            let line_end = loop {
                if let Some(i) = memchr::memmem::find(&self.buf, b"\r\n") {
                    break i;
                }
                self.fill().await?;
            };
            let size_line = std::str::from_utf8(&self.buf[..line_end])?;
            let size = usize::from_str_radix(size_line.split(';').next().unwrap_or("").trim(), 16)
                .with_context(|| format!("bad chunk size {size_line:?}"))?;
            self.buf.advance(line_end + 2);
            while self.buf.len() < size + 2 {
                self.fill().await?;
            }
            body.extend_from_slice(&self.buf[..size]);
            self.buf.advance(size + 2);
            if size == 0 {
                return Ok(body);
            }
        }
    }
}

fn json_string_len(s: &str) -> usize {
    let mut v = Vec::new();
    write_json_string(&mut v, s);
    v.len()
}

fn write_json_string(out: &mut Vec<u8>, s: &str) {
    // serde_json never fails on a &str.
    serde_json::to_writer(out, s).unwrap_or(());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_api_urls() {
        let t = ApiTarget::parse("http://127.0.0.1:8000/api", "k").unwrap();
        assert_eq!(
            (t.hostport.as_str(), t.prefix.as_str()),
            ("127.0.0.1:8000", "/api")
        );
        let t = ApiTarget::parse("http://localhost:9/", "").unwrap();
        assert_eq!(
            (t.hostport.as_str(), t.prefix.as_str()),
            ("localhost:9", "")
        );
        assert!(ApiTarget::parse("https://x/api", "").is_err());
    }

    #[tokio::test]
    async fn publish_writes_centrifugo_body_and_reads_both_framings() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut got = Vec::new();
            let mut buf = [0u8; 4096];
            let mut bodies = Vec::new();
            for response in [
                &b"HTTP/1.1 200 OK\r\ncontent-length: 13\r\n\r\n{\"result\":{}}"[..],
                &b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n{\"res\r\n8\r\nult\":{}}\r\n0\r\n\r\n"[..],
            ] {
                loop {
                    let n = s.read(&mut buf).await.unwrap();
                    got.extend_from_slice(&buf[..n]);
                    let text = String::from_utf8_lossy(&got).to_string();
                    if let Some(i) = text.find("\r\n\r\n") {
                        let len: usize = text
                            .lines()
                            .find_map(|l| l.strip_prefix("Content-Length: "))
                            .unwrap()
                            .parse()
                            .unwrap();
                        if got.len() >= i + 4 + len {
                            assert!(text.contains("X-API-Key: secret\r\n"));
                            bodies.push(text[i + 4..i + 4 + len].to_owned());
                            got.drain(..i + 4 + len);
                            break;
                        }
                    }
                }
                s.write_all(response).await.unwrap();
            }
            bodies
        });
        let target = ApiTarget::parse(&format!("http://{addr}/api"), "secret").unwrap();
        let mut conn = ApiConn::connect(&target).await.unwrap();
        conn.publish("news\"1", br#"{"s":1}"#).await.unwrap();
        conn.publish("news", br#"{"s":2}"#).await.unwrap();
        let bodies = server.await.unwrap();
        assert_eq!(bodies[0], r#"{"channel":"news\"1","data":{"s":1}}"#);
        assert_eq!(bodies[1], r#"{"channel":"news","data":{"s":2}}"#);
    }
}
