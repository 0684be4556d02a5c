//! Creates fossil deltas with Gyre's encoder for the interop test that applies them with
//! the npm `fossil-delta` package (`e2e/test/fossil_interop.test.js`).
//!
//! Reads lines of `<source hex> <target hex>` from stdin and answers each with one line,
//! the delta in hex. An empty field is an empty byte string.

use std::io::{BufRead, Write};

use anyhow::{Context, bail};

fn decode_hex(field: &str) -> anyhow::Result<Vec<u8>> {
    if !field.len().is_multiple_of(2) {
        bail!("odd number of hex digits");
    }
    (0..field.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&field[i..i + 2], 16).context("not a hex digit"))
        .collect()
}

fn encode_hex(bytes: &[u8], out: &mut String) {
    use std::fmt::Write as _;
    for b in bytes {
        // Writing into a String cannot fail.
        let _ = write!(out, "{b:02x}");
    }
}

fn main() -> anyhow::Result<()> {
    let stdin = std::io::stdin();
    let mut stdout = std::io::BufWriter::new(std::io::stdout().lock());
    let mut line_out = String::new();
    for (n, line) in stdin.lock().lines().enumerate() {
        let line = line?;
        let (source, target) = line
            .split_once(' ')
            .with_context(|| format!("line {}: expected `<source hex> <target hex>`", n + 1))?;
        let source = decode_hex(source).with_context(|| format!("line {}: source", n + 1))?;
        let target = decode_hex(target).with_context(|| format!("line {}: target", n + 1))?;
        let delta = gyre_protocol::fossil::create(&source, &target);
        line_out.clear();
        encode_hex(&delta, &mut line_out);
        writeln!(stdout, "{line_out}")?;
    }
    stdout.flush()?;
    Ok(())
}
