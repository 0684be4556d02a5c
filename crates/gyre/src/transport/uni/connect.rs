//! The connect request of a unidirectional connection, from a URL query or a body.
//! Sans-IO: every input is untrusted, nothing here panics (property-tested below).

use gyre_protocol::{DecodeError, proto};

/// The query parameter that carries a JSON connect request (GET `uni_sse`, and
/// `uni_websocket` before the upgrade).
pub(crate) const CONNECT_PARAM: &str = "cf_connect";

/// Why a connect request cannot be read.
#[derive(Debug, thiserror::Error)]
pub(crate) enum BadConnect {
    #[error("malformed query string escape")]
    Escape,
    #[error("malformed connect request: {0}")]
    Json(#[from] DecodeError),
}

/// The connect request in `?cf_connect=` of `query`; `Ok(None)` when the parameter is
/// absent or empty (as upstream, an empty value means none).
pub(crate) fn from_query(query: Option<&str>) -> Result<Option<proto::ConnectRequest>, BadConnect> {
    let Some(value) = query.and_then(|q| query_value(q, CONNECT_PARAM)) else {
        return Ok(None);
    };
    let json = percent_decode(value).ok_or(BadConnect::Escape)?;
    if json.is_empty() {
        return Ok(None);
    }
    Ok(Some(from_body(&json)?))
}

/// The connect request that is a whole body or WebSocket message.
pub(crate) fn from_body(body: &[u8]) -> Result<proto::ConnectRequest, BadConnect> {
    Ok(gyre_protocol::decode_connect_request(body)?)
}

/// The raw (still escaped) value of the first `key=` pair of a query string.
fn query_value<'a>(query: &'a str, key: &str) -> Option<&'a str> {
    query
        .split('&')
        .filter_map(|pair| pair.split_once('=').or(Some((pair, ""))))
        .find(|(k, _)| *k == key)
        .map(|(_, v)| v)
}

/// Decodes `%XX` escapes and `+` (a space, in a query); `None` on a broken escape.
fn percent_decode(s: &str) -> Option<Vec<u8>> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' => {
                let hi = hex(*b.get(i + 1)?)?;
                let lo = hex(*b.get(i + 2)?)?;
                out.push(hi << 4 | lo);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    Some(out)
}

fn hex(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn escape(s: &str) -> String {
        s.bytes().map(|b| format!("%{b:02X}")).collect()
    }

    #[test]
    fn query_parameter_is_found_and_decoded() {
        let json = r#"{"token":"a+b","subs":{"news":{"recover":true,"epoch":"e","offset":7}}}"#;
        let query = format!("x=1&cf_connect={}&cf_connect=ignored", escape(json));
        let req = from_query(Some(&query)).unwrap().unwrap();
        assert_eq!(req.token, "a+b");
        let sub = &req.subs["news"];
        assert!(sub.recover);
        assert_eq!((sub.epoch.as_str(), sub.offset), ("e", 7));
        // `+` in a query is a space; JSON whitespace is fine.
        let req = from_query(Some("cf_connect={+\"token\":+\"t\"+}")).unwrap();
        assert_eq!(req.unwrap().token, "t");
    }

    #[test]
    fn absent_empty_and_broken_values() {
        assert!(from_query(None).unwrap().is_none());
        assert!(from_query(Some("a=b")).unwrap().is_none());
        assert!(from_query(Some("cf_connect=")).unwrap().is_none());
        assert!(from_query(Some("cf_connect")).unwrap().is_none());
        assert!(matches!(
            from_query(Some("cf_connect=%7")),
            Err(BadConnect::Escape)
        ));
        assert!(matches!(
            from_query(Some("cf_connect=%zz")),
            Err(BadConnect::Escape)
        ));
        assert!(matches!(
            from_query(Some("cf_connect=nope")),
            Err(BadConnect::Json(_))
        ));
        assert!(from_body(b"null").unwrap().token.is_empty());
        assert!(from_body(b"").is_err());
        assert!(from_body(b"{\"token\":1}").is_err());
        assert!(from_body(b"{} {}").is_err());
    }

    proptest! {
        #[test]
        fn arbitrary_queries_never_panic(query in "\\PC{0,200}") {
            let _ = from_query(Some(&query));
        }

        #[test]
        fn arbitrary_bodies_never_panic(body in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = from_body(&body);
        }

        #[test]
        fn escaped_requests_round_trip(token in "\\PC{0,40}", offset in any::<u64>()) {
            let json = serde_json::json!({
                "token": token,
                "subs": {"ch": {"recover": true, "offset": offset}},
            })
            .to_string();
            let req = from_query(Some(&format!("cf_connect={}", escape(&json)))).unwrap().unwrap();
            prop_assert_eq!(req.token, token);
            prop_assert_eq!(req.subs["ch"].offset, offset);
        }
    }
}
