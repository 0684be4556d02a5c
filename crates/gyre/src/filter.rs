//! Tags filters: a subscriber's predicate over publication tags (`SubscribeRequest.tf`).
//!
//! The wire form (`FilterNode`) is checked and compiled once at subscribe time into
//! [`TagsFilter`]: operators become enums and numeric operands are parsed up front, so
//! matching a publication walks the tree with map lookups only and allocates nothing. The
//! operators and their meaning follow upstream's `internal/filter` (`eq`, `neq`, `in`,
//! `nin`, `ex`, `nex`, `sw`, `ew`, `ct`, `gt`, `gte`, `lt`, `lte`; `and`, `or`, `not`),
//! including its validation rules, so a filter Centrifugo refuses is refused here too.

use std::cmp::Ordering;
use std::collections::HashMap;

use gyre_protocol::proto;

/// Deepest nesting accepted: the tree is walked recursively on every publication.
const MAX_DEPTH: usize = 32;
/// Most nodes accepted in one filter (upstream has no limit; this bounds the work a
/// single subscriber can put on every broadcast of its channel).
const MAX_NODES: usize = 256;

/// A checked, compiled tags filter.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct TagsFilter {
    root: Node,
}

#[derive(Debug, Clone, PartialEq)]
enum Node {
    Leaf { key: String, cmp: Cmp },
    And(Vec<Node>),
    Or(Vec<Node>),
    Not(Box<Node>),
}

#[derive(Debug, Clone, PartialEq)]
enum Cmp {
    Eq(String),
    NotEq(String),
    In(Vec<String>),
    NotIn(Vec<String>),
    Exists,
    NotExists,
    StartsWith(String),
    EndsWith(String),
    Contains(String),
    /// A numeric comparison; `None` when the operand is not a number, which (as upstream)
    /// matches nothing. Kept as text: parsing it again borrows and allocates nothing.
    Numeric(NumOp, Option<String>),
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum NumOp {
    Gt,
    Gte,
    Lt,
    Lte,
}

/// Why a filter was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid tags filter: {0}")]
pub(crate) struct InvalidFilter(&'static str);

impl TagsFilter {
    /// Checks and compiles a filter received from a client.
    pub(crate) fn compile(node: &proto::FilterNode) -> Result<Self, InvalidFilter> {
        let mut count = 0;
        Ok(TagsFilter {
            root: compile_node(node, 0, &mut count)?,
        })
    }

    /// Whether a publication with these tags passes the filter.
    pub(crate) fn matches(&self, tags: &HashMap<String, String>) -> bool {
        self.root.matches(tags)
    }
}

fn compile_node(
    node: &proto::FilterNode,
    depth: usize,
    count: &mut usize,
) -> Result<Node, InvalidFilter> {
    *count += 1;
    if depth > MAX_DEPTH {
        return Err(InvalidFilter("nested too deeply"));
    }
    if *count > MAX_NODES {
        return Err(InvalidFilter("too many nodes"));
    }
    let children = |count: &mut usize| {
        node.nodes
            .iter()
            .map(|n| compile_node(n, depth + 1, count))
            .collect::<Result<Vec<_>, _>>()
    };
    match node.op.as_str() {
        "" => compile_leaf(node).map(|cmp| Node::Leaf {
            key: node.key.clone(),
            cmp,
        }),
        "and" | "or" => {
            if node.nodes.is_empty() {
                return Err(InvalidFilter("and/or node needs at least one child"));
            }
            let nodes = children(count)?;
            Ok(if node.op == "and" {
                Node::And(nodes)
            } else {
                Node::Or(nodes)
            })
        }
        "not" => {
            if node.nodes.len() != 1 {
                return Err(InvalidFilter("not node needs exactly one child"));
            }
            let mut nodes = children(count)?;
            Ok(Node::Not(Box::new(nodes.remove(0))))
        }
        _ => Err(InvalidFilter("unknown op")),
    }
}

fn compile_leaf(node: &proto::FilterNode) -> Result<Cmp, InvalidFilter> {
    let single = || {
        if node.val.is_empty() {
            return Err(InvalidFilter("comparison requires val"));
        }
        if !node.vals.is_empty() {
            return Err(InvalidFilter("comparison must not use vals"));
        }
        Ok(node.val.clone())
    };
    let many = || {
        if node.vals.is_empty() {
            return Err(InvalidFilter("in/nin requires vals"));
        }
        if !node.val.is_empty() {
            return Err(InvalidFilter("in/nin must not use val"));
        }
        Ok(node.vals.clone())
    };
    let numeric = |op| {
        single().map(|v| {
            let operand = Decimal::parse(&v).is_some().then_some(v);
            Cmp::Numeric(op, operand)
        })
    };
    let cmp = match node.cmp.as_str() {
        "" => return Err(InvalidFilter("leaf node needs cmp")),
        "eq" => Cmp::Eq(single()?),
        "neq" => Cmp::NotEq(single()?),
        "sw" => Cmp::StartsWith(single()?),
        "ew" => Cmp::EndsWith(single()?),
        "ct" => Cmp::Contains(single()?),
        "gt" => numeric(NumOp::Gt)?,
        "gte" => numeric(NumOp::Gte)?,
        "lt" => numeric(NumOp::Lt)?,
        "lte" => numeric(NumOp::Lte)?,
        "in" => Cmp::In(many()?),
        "nin" => Cmp::NotIn(many()?),
        "ex" | "nex" => {
            if !node.val.is_empty() || !node.vals.is_empty() {
                return Err(InvalidFilter("ex/nex must not use val or vals"));
            }
            if node.cmp == "ex" {
                Cmp::Exists
            } else {
                Cmp::NotExists
            }
        }
        _ => return Err(InvalidFilter("unknown cmp")),
    };
    // Upstream lets ex/nex go without a key (they then test the empty key).
    if node.key.is_empty() && !matches!(cmp, Cmp::Exists | Cmp::NotExists) {
        return Err(InvalidFilter("leaf node needs key"));
    }
    Ok(cmp)
}

impl Node {
    fn matches(&self, tags: &HashMap<String, String>) -> bool {
        match self {
            Node::Leaf { key, cmp } => {
                let val = tags.get(key).map(String::as_str);
                match cmp {
                    Cmp::Eq(want) => val == Some(want.as_str()),
                    Cmp::NotEq(want) => val != Some(want.as_str()),
                    // As upstream: a missing tag compares as the empty string.
                    Cmp::In(set) => set.iter().any(|v| v == val.unwrap_or("")),
                    Cmp::NotIn(set) => !set.iter().any(|v| v == val.unwrap_or("")),
                    Cmp::Exists => val.is_some(),
                    Cmp::NotExists => val.is_none(),
                    Cmp::StartsWith(p) => val.is_some_and(|v| v.starts_with(p.as_str())),
                    Cmp::EndsWith(p) => val.is_some_and(|v| v.ends_with(p.as_str())),
                    Cmp::Contains(p) => val.is_some_and(|v| v.contains(p.as_str())),
                    Cmp::Numeric(op, operand) => {
                        let (Some(v), Some(operand)) = (
                            val.and_then(Decimal::parse),
                            operand.as_deref().and_then(Decimal::parse),
                        ) else {
                            return false;
                        };
                        let ord = v.cmp(&operand);
                        match op {
                            NumOp::Gt => ord == Ordering::Greater,
                            NumOp::Gte => ord != Ordering::Less,
                            NumOp::Lt => ord == Ordering::Less,
                            NumOp::Lte => ord != Ordering::Greater,
                        }
                    }
                }
            }
            Node::And(nodes) => nodes.iter().all(|n| n.matches(tags)),
            Node::Or(nodes) => nodes.iter().any(|n| n.matches(tags)),
            Node::Not(node) => !node.matches(tags),
        }
    }
}

/// A decimal number as borrowed digit strings, compared exactly (no float rounding), so
/// 20-digit ids and long fractions compare as written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Decimal<'a> {
    negative: bool,
    /// Integer digits without leading zeros.
    int: &'a str,
    /// Fraction digits without trailing zeros.
    frac: &'a str,
}

impl<'a> Decimal<'a> {
    /// Parses `[+-]digits[.digits]`; anything else is not a number.
    fn parse(s: &'a str) -> Option<Self> {
        let (negative, body) = match s.as_bytes().first()? {
            b'-' => (true, &s[1..]),
            b'+' => (false, &s[1..]),
            _ => (false, s),
        };
        let (int, frac) = body.split_once('.').unwrap_or((body, ""));
        if (int.is_empty() && frac.is_empty())
            || !int.bytes().all(|b| b.is_ascii_digit())
            || !frac.bytes().all(|b| b.is_ascii_digit())
            || (body.contains('.') && frac.is_empty())
        {
            return None;
        }
        let int = int.trim_start_matches('0');
        let frac = frac.trim_end_matches('0');
        // Minus zero is zero.
        let negative = negative && !(int.is_empty() && frac.is_empty());
        Some(Decimal {
            negative,
            int,
            frac,
        })
    }
}

impl Decimal<'_> {
    fn cmp_magnitude(&self, other: &Decimal<'_>) -> Ordering {
        self.int
            .len()
            .cmp(&other.int.len())
            .then_with(|| self.int.cmp(other.int))
            .then_with(|| self.frac.cmp(other.frac))
    }
}

impl Ord for Decimal<'_> {
    fn cmp(&self, other: &Self) -> Ordering {
        match (self.negative, other.negative) {
            (false, true) => Ordering::Greater,
            (true, false) => Ordering::Less,
            (false, false) => self.cmp_magnitude(other),
            (true, true) => other.cmp_magnitude(self),
        }
    }
}

impl PartialOrd for Decimal<'_> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaf(key: &str, cmp: &str, val: &str) -> proto::FilterNode {
        proto::FilterNode {
            key: key.into(),
            cmp: cmp.into(),
            val: val.into(),
            ..Default::default()
        }
    }

    fn set(key: &str, cmp: &str, vals: &[&str]) -> proto::FilterNode {
        proto::FilterNode {
            key: key.into(),
            cmp: cmp.into(),
            vals: vals.iter().map(|v| v.to_string()).collect(),
            ..Default::default()
        }
    }

    fn op(op: &str, nodes: Vec<proto::FilterNode>) -> proto::FilterNode {
        proto::FilterNode {
            op: op.into(),
            nodes,
            ..Default::default()
        }
    }

    fn tags(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn check(filter: proto::FilterNode, pairs: &[(&str, &str)]) -> bool {
        TagsFilter::compile(&filter)
            .expect("valid filter")
            .matches(&tags(pairs))
    }

    #[test]
    fn string_comparisons() {
        let t = [("ticker", "BTC-USD")];
        assert!(check(leaf("ticker", "eq", "BTC-USD"), &t));
        assert!(!check(leaf("ticker", "eq", "BTC"), &t));
        assert!(!check(leaf("other", "eq", "BTC-USD"), &t));
        assert!(check(leaf("ticker", "neq", "ETH"), &t));
        assert!(
            check(leaf("other", "neq", "ETH"), &t),
            "missing tag is not equal"
        );
        assert!(check(leaf("ticker", "sw", "BTC"), &t));
        assert!(check(leaf("ticker", "ew", "USD"), &t));
        assert!(check(leaf("ticker", "ct", "C-U"), &t));
        assert!(!check(leaf("other", "ct", "C"), &t));
        assert!(check(set("ticker", "in", &["ETH", "BTC-USD"]), &t));
        assert!(!check(set("ticker", "nin", &["ETH", "BTC-USD"]), &t));
        assert!(check(set("other", "nin", &["ETH"]), &t));
        assert!(
            check(set("other", "in", &["", "x"]), &t),
            "missing compares as empty"
        );
        let ex = proto::FilterNode {
            key: "ticker".into(),
            cmp: "ex".into(),
            ..Default::default()
        };
        assert!(check(ex.clone(), &t));
        assert!(!check(ex, &[]));
        let nex = proto::FilterNode {
            key: "ticker".into(),
            cmp: "nex".into(),
            ..Default::default()
        };
        assert!(check(nex, &[]));
    }

    #[test]
    fn numeric_comparisons_are_exact() {
        let t = [("price", "50000.5")];
        assert!(check(leaf("price", "gt", "50000"), &t));
        assert!(check(leaf("price", "gte", "50000.50"), &t));
        assert!(check(leaf("price", "lte", "50000.5"), &t));
        assert!(!check(leaf("price", "lt", "50000.5"), &t));
        assert!(check(leaf("price", "lt", "+50000.51"), &t));
        assert!(check(leaf("n", "gt", "-1"), &[("n", "-0.5")]));
        assert!(check(leaf("n", "lt", "-0.4"), &[("n", "-0.5")]));
        assert!(check(leaf("n", "gte", "0"), &[("n", "-0")]));
        assert!(check(leaf("n", "lt", "0.45"), &[("n", "0.4")]));
        assert!(check(leaf("n", "gt", "0.45"), &[("n", "0.5")]));
        assert!(check(
            leaf("id", "gt", "18446744073709551615"),
            &[("id", "18446744073709551616")]
        ));
        assert!(check(leaf("n", "gt", "9"), &[("n", "10")]));
        // Not numbers: never match.
        assert!(!check(leaf("n", "gt", "1"), &[("n", "abc")]));
        assert!(!check(leaf("n", "lt", "1"), &[]));
        assert!(!check(leaf("n", "lt", "x"), &[("n", "0")]));
        assert!(!check(leaf("n", "lt", "1"), &[("n", "1e0")]));
        assert!(!check(leaf("n", "lt", "1"), &[("n", "0.")]));
    }

    #[test]
    fn logical_nodes() {
        let btc_over = op(
            "and",
            vec![leaf("ticker", "eq", "BTC"), leaf("price", "gt", "100")],
        );
        assert!(check(
            btc_over.clone(),
            &[("ticker", "BTC"), ("price", "101")]
        ));
        assert!(!check(
            btc_over.clone(),
            &[("ticker", "BTC"), ("price", "99")]
        ));
        assert!(check(
            op("or", vec![btc_over.clone(), leaf("ticker", "eq", "ETH")]),
            &[("ticker", "ETH")]
        ));
        assert!(check(op("not", vec![btc_over]), &[("ticker", "ETH")]));
    }

    #[test]
    fn malformed_filters_are_refused_as_upstream() {
        let bad = [
            proto::FilterNode::default(),
            leaf("k", "eq", ""),
            leaf("", "eq", "v"),
            leaf("k", "zz", "v"),
            leaf("k", "in", "v"),
            set("k", "eq", &["v"]),
            set("k", "in", &[]),
            proto::FilterNode {
                key: "k".into(),
                cmp: "ex".into(),
                val: "v".into(),
                ..Default::default()
            },
            op("and", vec![]),
            op("not", vec![leaf("a", "eq", "b"), leaf("a", "eq", "c")]),
            op("xor", vec![leaf("a", "eq", "b")]),
            op("and", vec![leaf("a", "eq", "")]),
        ];
        for filter in bad {
            assert!(TagsFilter::compile(&filter).is_err(), "{filter:?}");
        }
        let mut deep = leaf("a", "eq", "b");
        for _ in 0..=MAX_DEPTH {
            deep = op("not", vec![deep]);
        }
        assert!(TagsFilter::compile(&deep).is_err());
        let wide = op("or", vec![leaf("a", "eq", "b"); MAX_NODES]);
        assert!(TagsFilter::compile(&wide).is_err());
    }
}
