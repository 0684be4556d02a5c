//! `client.allowed_origins`: which browser origins may open connections.

/// Checks `Origin` headers against Centrifugo's `client.allowed_origins` patterns.
///
/// A request without `Origin` (not a browser) always passes. With an empty list no browser
/// may connect; `*` allows every origin; other patterns match the whole origin
/// case-insensitively, `*` standing for any run of characters (`https://*.example.com`).
#[derive(Debug, Clone)]
pub(crate) struct OriginCheck {
    patterns: Vec<String>,
}

impl OriginCheck {
    pub(crate) fn new(allowed: &[String]) -> Self {
        OriginCheck {
            patterns: allowed.iter().map(|p| p.to_ascii_lowercase()).collect(),
        }
    }

    pub(crate) fn allows(&self, origin: Option<&str>) -> bool {
        let Some(origin) = origin else {
            return true;
        };
        let origin = origin.to_ascii_lowercase();
        self.patterns
            .iter()
            .any(|p| p == "*" || glob_match(p.as_bytes(), origin.as_bytes()))
    }
}

/// `*` matches any (possibly empty) run of bytes; everything else matches itself.
fn glob_match(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && pattern[p] == b'*' {
            star = Some((p, t));
            p += 1;
        } else if p < pattern.len() && pattern[p] == text[t] {
            p += 1;
            t += 1;
        } else if let Some((sp, st)) = star {
            // Let the last `*` swallow one more byte and retry.
            p = sp + 1;
            t = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&b| b == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(list: &[&str]) -> OriginCheck {
        OriginCheck::new(&list.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn empty_list_allows_only_requests_without_origin() {
        let c = check(&[]);
        assert!(c.allows(None));
        assert!(!c.allows(Some("https://example.com")));
    }

    #[test]
    fn star_allows_all_and_patterns_match_whole_origin() {
        assert!(check(&["*"]).allows(Some("http://anything:8080")));
        let c = check(&["https://*.example.com", "http://localhost:3000"]);
        assert!(c.allows(Some("https://app.example.com")));
        assert!(c.allows(Some("HTTPS://A.B.Example.com")));
        assert!(c.allows(Some("http://localhost:3000")));
        assert!(!c.allows(Some("https://example.com")));
        assert!(!c.allows(Some("https://app.example.com.evil.org")));
        assert!(!c.allows(Some("http://localhost:30000")));
    }

    #[test]
    fn glob_edge_cases() {
        assert!(glob_match(b"a*b*c", b"aXbYc"));
        assert!(glob_match(b"a**", b"a"));
        assert!(!glob_match(b"a*b", b"aXc"));
        assert!(glob_match(b"", b""));
        assert!(!glob_match(b"", b"x"));
    }
}
