//! Channel patterns of the `channels` method: the syntax of `gobwas/glob` without
//! separators, as Centrifugo compiles them.
//!
//! `*` any run of characters, `?` one character, `[abc]` / `[a-z]` / `[!abc]` a class,
//! `{one,two}` alternatives (nestable), `\x` a literal `x`.

/// A compiled pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Glob(Vec<Token>);

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Char(char),
    Any,
    Single,
    Class {
        negated: bool,
        ranges: Vec<(char, char)>,
    },
    Alternatives(Vec<Vec<Token>>),
}

/// The pattern is malformed (an unclosed `[` or `{`, a trailing `\`, an empty class).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad channel pattern")]
pub(crate) struct BadPattern;

impl Glob {
    pub(crate) fn compile(pattern: &str) -> Result<Glob, BadPattern> {
        let chars: Vec<char> = pattern.chars().collect();
        let mut pos = 0;
        let tokens = parse_sequence(&chars, &mut pos, false)?;
        if pos != chars.len() {
            return Err(BadPattern);
        }
        Ok(Glob(tokens))
    }

    pub(crate) fn matches(&self, text: &str) -> bool {
        let chars: Vec<char> = text.chars().collect();
        match_tokens(&self.0, &chars)
    }
}

/// Parses until the end of input or, inside `{}`, until an unescaped `,` or `}`.
fn parse_sequence(chars: &[char], pos: &mut usize, in_alt: bool) -> Result<Vec<Token>, BadPattern> {
    let mut tokens = Vec::new();
    while let Some(&c) = chars.get(*pos) {
        match c {
            ',' | '}' if in_alt => break,
            '*' => {
                *pos += 1;
                if tokens.last() != Some(&Token::Any) {
                    tokens.push(Token::Any);
                }
            }
            '?' => {
                *pos += 1;
                tokens.push(Token::Single);
            }
            '\\' => {
                let escaped = *chars.get(*pos + 1).ok_or(BadPattern)?;
                *pos += 2;
                tokens.push(Token::Char(escaped));
            }
            '[' => {
                *pos += 1;
                tokens.push(parse_class(chars, pos)?);
            }
            '{' => {
                *pos += 1;
                let mut alternatives = Vec::new();
                loop {
                    alternatives.push(parse_sequence(chars, pos, true)?);
                    match chars.get(*pos) {
                        Some(',') => *pos += 1,
                        Some('}') => {
                            *pos += 1;
                            break;
                        }
                        _ => return Err(BadPattern),
                    }
                }
                tokens.push(Token::Alternatives(alternatives));
            }
            _ => {
                *pos += 1;
                tokens.push(Token::Char(c));
            }
        }
    }
    Ok(tokens)
}

fn parse_class(chars: &[char], pos: &mut usize) -> Result<Token, BadPattern> {
    let negated = chars.get(*pos) == Some(&'!');
    if negated {
        *pos += 1;
    }
    let mut ranges = Vec::new();
    loop {
        let c = *chars.get(*pos).ok_or(BadPattern)?;
        *pos += 1;
        match c {
            ']' if !ranges.is_empty() => break,
            ']' => return Err(BadPattern),
            _ if chars.get(*pos) == Some(&'-')
                && chars.get(*pos + 1).is_some_and(|&h| h != ']') =>
            {
                let hi = chars[*pos + 1];
                *pos += 2;
                if hi < c {
                    return Err(BadPattern);
                }
                ranges.push((c, hi));
            }
            _ => ranges.push((c, c)),
        }
    }
    Ok(Token::Class { negated, ranges })
}

fn match_tokens(tokens: &[Token], text: &[char]) -> bool {
    let Some((first, rest)) = tokens.split_first() else {
        return text.is_empty();
    };
    match first {
        Token::Char(c) => text.first() == Some(c) && match_tokens(rest, &text[1..]),
        Token::Single => !text.is_empty() && match_tokens(rest, &text[1..]),
        Token::Class { negated, ranges } => text.first().is_some_and(|t| {
            ranges.iter().any(|&(lo, hi)| (lo..=hi).contains(t)) != *negated
                && match_tokens(rest, &text[1..])
        }),
        Token::Any => (0..=text.len()).any(|skip| match_tokens(rest, &text[skip..])),
        Token::Alternatives(alternatives) => alternatives.iter().any(|alt| {
            let mut joined = alt.clone();
            joined.extend_from_slice(rest);
            match_tokens(&joined, text)
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(pattern: &str, text: &str) -> bool {
        Glob::compile(pattern).unwrap().matches(text)
    }

    #[test]
    fn wildcards() {
        assert!(m("*", ""));
        assert!(m("*", "chat:index"));
        assert!(m("chat:*", "chat:index"));
        assert!(!m("chat:*", "news"));
        assert!(m("*:index", "chat:index"));
        assert!(m("a*b*c", "a__b__c"));
        assert!(!m("a*b*c", "a__b__"));
        assert!(m("user?", "user1"));
        assert!(!m("user?", "user"));
        assert!(m("exact", "exact"));
        assert!(!m("exact", "exactly"));
    }

    #[test]
    fn classes_alternatives_escapes() {
        assert!(m("user[0-9]", "user7"));
        assert!(!m("user[0-9]", "userx"));
        assert!(m("user[!0-9]", "userx"));
        assert!(m("[abc]x", "bx"));
        assert!(m("{chat,news}:*", "news:1"));
        assert!(!m("{chat,news}:*", "misc:1"));
        assert!(m("a{b,c{d,e}}f", "acef"));
        assert!(m(r"a\*b", "a*b"));
        assert!(!m(r"a\*b", "axb"));
        assert!(m("é?", "éü"));
    }

    #[test]
    fn malformed_patterns() {
        for bad in ["[abc", "{a,b", r"a\", "[]", "[z-a]"] {
            assert_eq!(Glob::compile(bad), Err(BadPattern), "{bad}");
        }
    }
}
