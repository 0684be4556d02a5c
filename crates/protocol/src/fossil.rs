//! Fossil delta encoding, the `delta: "fossil"` format of publications.
//!
//! A delta turns a *source* (the previous payload a subscriber holds) into a *target*
//! (the new payload). Its text is: the target length, `\n`, then commands — `N@O,` copies
//! `N` bytes from source offset `O`, `N:` inserts the `N` bytes that follow — and finally
//! `C;` where `C` is a checksum of the target. Numbers are written most significant digit
//! first in base 64 over `0-9A-Z_a-z~`. The SDKs apply deltas with the npm `fossil-delta`
//! package (centrifuge-js bundles the same decoder), which defines this format.
//!
//! The encoder finds matches the same way as fossil's: the source is indexed by a rolling
//! hash of every 16-byte block at 16-byte steps, and the target is scanned with the same
//! rolling hash, extending each candidate match forwards and backwards.
//!
//! ```
//! use gyre_protocol::fossil;
//! let old = br#"{"price":100,"symbol":"GYRE","volume":123456789,"note":"steady as she goes"}"#;
//! let new = br#"{"price":101,"symbol":"GYRE","volume":123456789,"note":"steady as she goes"}"#;
//! let delta = fossil::create(old, new);
//! assert!(delta.len() < new.len());
//! assert_eq!(fossil::apply(old, &delta).unwrap(), new);
//! ```

/// Width of the blocks the source is indexed by.
const NHASH: usize = 16;

/// Candidates tried per target position (bounds the work on repetitive input).
const MAX_CANDIDATES: usize = 250;

const DIGITS: &[u8; 64] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz~";

/// Value of each ASCII byte as a base-64 digit, -1 for bytes that are not digits.
const DIGIT_VALUE: [i8; 128] = {
    let mut table = [-1i8; 128];
    let mut i = 0;
    while i < 64 {
        table[DIGITS[i] as usize] = i as i8;
        i += 1;
    }
    table
};

/// Why a delta could not be applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FossilError {
    /// The header (target size and `\n`) is missing or malformed.
    #[error("bad delta header")]
    Header,
    /// A copy command reaches past the end of the source.
    #[error("copy exceeds source size")]
    CopyOutOfRange,
    /// The commands produce more bytes than the header announced.
    #[error("delta output exceeds the announced size")]
    TooLong,
    /// An insert command announces more bytes than the delta holds.
    #[error("insert exceeds delta size")]
    InsertOutOfRange,
    /// The output does not have the announced size.
    #[error("delta output has the wrong size")]
    SizeMismatch,
    /// The output checksum does not match.
    #[error("bad delta checksum")]
    Checksum,
    /// An unknown command byte, or a command cut short.
    #[error("malformed delta command")]
    Command,
    /// The delta has no terminating checksum.
    #[error("unterminated delta")]
    Unterminated,
}

/// Rolling hash over a window of `NHASH` bytes (a pair of 16-bit sums).
struct RollingHash {
    a: u16,
    b: u16,
    window: [u8; NHASH],
    pos: usize,
}

impl RollingHash {
    fn new(block: &[u8]) -> Self {
        let mut window = [0u8; NHASH];
        window.copy_from_slice(&block[..NHASH]);
        let mut a = u16::from(window[0]);
        let mut b = a;
        for &byte in &window[1..] {
            a = a.wrapping_add(u16::from(byte));
            b = b.wrapping_add(a);
        }
        RollingHash {
            a,
            b,
            window,
            pos: 0,
        }
    }

    /// Slides the window one byte forward.
    fn roll(&mut self, byte: u8) {
        let old = u16::from(self.window[self.pos]);
        self.window[self.pos] = byte;
        self.pos = (self.pos + 1) % NHASH;
        self.a = self.a.wrapping_sub(old).wrapping_add(u16::from(byte));
        self.b = self
            .b
            .wrapping_sub(old.wrapping_mul(NHASH as u16))
            .wrapping_add(self.a);
    }

    fn value(&self) -> u32 {
        u32::from(self.a) | (u32::from(self.b) << 16)
    }
}

/// Sum of the big-endian 32-bit words of `data` (a short tail counts as the high bytes
/// of a last word), wrapping.
fn checksum(data: &[u8]) -> u32 {
    let mut sums = [0u32; 4];
    let mut words = data.chunks_exact(4);
    for word in &mut words {
        for (sum, &byte) in sums.iter_mut().zip(word) {
            *sum = sum.wrapping_add(u32::from(byte));
        }
    }
    let mut total = sums[3]
        .wrapping_add(sums[2] << 8)
        .wrapping_add(sums[1] << 16)
        .wrapping_add(sums[0] << 24);
    for (i, &byte) in words.remainder().iter().enumerate() {
        total = total.wrapping_add(u32::from(byte) << (24 - 8 * i));
    }
    total
}

fn put_int(out: &mut Vec<u8>, mut v: u64) {
    if v == 0 {
        out.push(b'0');
        return;
    }
    let mut buf = [0u8; 11];
    let mut n = 0;
    while v > 0 {
        buf[n] = DIGITS[(v & 0x3f) as usize];
        v >>= 6;
        n += 1;
    }
    out.extend(buf[..n].iter().rev());
}

/// How many base-64 digits `v` takes.
fn digit_count(v: usize) -> usize {
    let mut n = 1;
    let mut limit = 64usize;
    while v >= limit {
        n += 1;
        match limit.checked_mul(64) {
            Some(next) => limit = next,
            None => break,
        }
    }
    n
}

fn put_insert(out: &mut Vec<u8>, bytes: &[u8]) {
    put_int(out, bytes.len() as u64);
    out.push(b':');
    out.extend_from_slice(bytes);
}

/// Creates a delta that turns `source` into `target`.
///
/// ```
/// let delta = gyre_protocol::fossil::create(b"hello world, hello world", b"hello world, hello there");
/// assert_eq!(gyre_protocol::fossil::apply(b"hello world, hello world", &delta).unwrap(), b"hello world, hello there");
/// ```
pub fn create(source: &[u8], target: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(target.len() / 4 + 32);
    put_int(&mut out, target.len() as u64);
    out.push(b'\n');

    // Without one full block of source no copy can be found: one insert of everything.
    if source.len() <= NHASH {
        put_insert(&mut out, target);
        put_int(&mut out, u64::from(checksum(target)));
        out.push(b';');
        return out;
    }

    // Index the source: for each hash bucket the last block that landed there, and for
    // each block the previous one of its bucket.
    let buckets = source.len() / NHASH;
    let mut collide = vec![usize::MAX; buckets];
    let mut landmark = vec![usize::MAX; buckets];
    let mut i = 0;
    while i + NHASH < source.len() {
        let hv = RollingHash::new(&source[i..]).value() as usize % buckets;
        collide[i / NHASH] = landmark[hv];
        landmark[hv] = i / NHASH;
        i += NHASH;
    }

    let mut base = 0;
    while base + NHASH < target.len() {
        let mut hash = RollingHash::new(&target[base..]);
        // Offset into the target from `base` of the current window.
        let mut i = 0;
        loop {
            let mut best: Option<(usize, usize, usize)> = None; // (count, source offset, literal)
            let mut block = landmark[hash.value() as usize % buckets];
            let mut tries = 0;
            while block != usize::MAX && tries < MAX_CANDIDATES {
                tries += 1;
                let src_at = block * NHASH;
                let forward = source[src_at..]
                    .iter()
                    .zip(&target[base + i..])
                    .take_while(|(s, t)| s == t)
                    .count();
                // Backwards from the block start, but never into the literal run's start
                // nor to the source's first byte.
                let mut back = 0;
                while back + 1 < src_at
                    && back < i
                    && source[src_at - back - 1] == target[base + i - back - 1]
                {
                    back += 1;
                }
                if forward > 0 || back > 0 {
                    let count = forward + back;
                    let offset = src_at - back;
                    let literal = i - back;
                    let cost = digit_count(literal) + digit_count(count) + digit_count(offset) + 3;
                    if count >= cost && best.is_none_or(|(c, _, _)| count > c) {
                        best = Some((count, offset, literal));
                    }
                }
                block = collide[block];
            }
            if let Some((count, offset, literal)) = best {
                if literal > 0 {
                    put_insert(&mut out, &target[base..base + literal]);
                    base += literal;
                }
                base += count;
                put_int(&mut out, count as u64);
                out.push(b'@');
                put_int(&mut out, offset as u64);
                out.push(b',');
                break;
            }
            if base + i + NHASH >= target.len() {
                put_insert(&mut out, &target[base..]);
                base = target.len();
                break;
            }
            hash.roll(target[base + i + NHASH]);
            i += 1;
        }
    }
    if base < target.len() {
        put_insert(&mut out, &target[base..]);
    }
    put_int(&mut out, u64::from(checksum(target)));
    out.push(b';');
    out
}

/// Reads commands of a delta.
struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    /// Reads a base-64 number; at least one digit is not required (as the JS decoder).
    fn int(&mut self) -> Result<u64, FossilError> {
        let mut v: u64 = 0;
        while let Some(&byte) = self.data.get(self.pos) {
            let digit = DIGIT_VALUE[usize::from(byte & 0x7f)];
            if digit < 0 {
                break;
            }
            v = v
                .checked_mul(64)
                .and_then(|v| v.checked_add(digit as u64))
                .ok_or(FossilError::Command)?;
            self.pos += 1;
        }
        Ok(v)
    }

    fn byte(&mut self) -> Option<u8> {
        let byte = self.data.get(self.pos).copied();
        self.pos += usize::from(byte.is_some());
        byte
    }
}

/// Applies `delta` to `source` and returns the target.
///
/// Never panics: any malformed delta is an error. The output never exceeds the size the
/// delta announces, and that size is only trusted as far as the commands fill it.
pub fn apply(source: &[u8], delta: &[u8]) -> Result<Vec<u8>, FossilError> {
    let mut reader = Reader {
        data: delta,
        pos: 0,
    };
    let limit = reader.int()?;
    if reader.byte() != Some(b'\n') {
        return Err(FossilError::Header);
    }
    // Reserve no more than the delta could plausibly describe up front.
    let reserve = usize::try_from(limit)
        .unwrap_or(usize::MAX)
        .min(source.len().saturating_add(delta.len()));
    let mut out = Vec::with_capacity(reserve);
    let mut total: u64 = 0;
    while reader.pos < delta.len() {
        let count = reader.int()?;
        match reader.byte() {
            Some(b'@') => {
                let offset = reader.int()?;
                if reader.byte() != Some(b',') {
                    return Err(FossilError::Command);
                }
                total = total.saturating_add(count);
                if total > limit {
                    return Err(FossilError::TooLong);
                }
                let end = offset
                    .checked_add(count)
                    .ok_or(FossilError::CopyOutOfRange)?;
                if end > source.len() as u64 {
                    return Err(FossilError::CopyOutOfRange);
                }
                out.extend_from_slice(&source[offset as usize..end as usize]);
            }
            Some(b':') => {
                total = total.saturating_add(count);
                if total > limit {
                    return Err(FossilError::TooLong);
                }
                let remaining = (delta.len() - reader.pos) as u64;
                if count > remaining {
                    return Err(FossilError::InsertOutOfRange);
                }
                let end = reader.pos + count as usize;
                out.extend_from_slice(&delta[reader.pos..end]);
                reader.pos = end;
            }
            Some(b';') => {
                if u64::from(checksum(&out)) != count {
                    return Err(FossilError::Checksum);
                }
                if total != limit {
                    return Err(FossilError::SizeMismatch);
                }
                return Ok(out);
            }
            _ => return Err(FossilError::Command),
        }
    }
    Err(FossilError::Unterminated)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn integers_use_the_fossil_alphabet() {
        let mut out = Vec::new();
        for v in [0u64, 9, 10, 63, 64, 4095, 4096] {
            put_int(&mut out, v);
            out.push(b' ');
        }
        assert_eq!(out, b"0 9 A ~ 10 ~~ 100 ");
        assert_eq!(digit_count(0), 1);
        assert_eq!(digit_count(63), 1);
        assert_eq!(digit_count(64), 2);
        assert_eq!(digit_count(4096), 3);
    }

    #[test]
    fn checksum_matches_the_reference_values() {
        assert_eq!(checksum(b""), 0);
        // 'a' in the high byte of the one partial word.
        assert_eq!(checksum(b"a"), 0x6100_0000);
        assert_eq!(checksum(b"abcd"), 0x6162_6364);
        assert_eq!(checksum(b"abcdab"), 0x6162_6364 + 0x6162_0000);
    }

    #[test]
    fn small_source_is_one_insert() {
        let delta = create(b"tiny", b"hello");
        let mut expected = b"5\n5:hello".to_vec();
        put_int(&mut expected, u64::from(checksum(b"hello")));
        expected.push(b';');
        assert_eq!(delta, expected);
    }

    #[test]
    fn copies_are_found_and_small() {
        let source: Vec<u8> = (0..2000u32).flat_map(|i| i.to_le_bytes()).collect();
        let mut target = source.clone();
        target[4000] ^= 0xff;
        let delta = create(&source, &target);
        assert!(delta.len() < 64, "delta of {} bytes", delta.len());
        assert!(delta.contains(&b'@'));
        assert_eq!(apply(&source, &delta).unwrap(), target);
    }

    #[test]
    fn malformed_deltas_are_errors() {
        let source = b"0123456789abcdefghijklmnopqrstuvwxyz";
        let target = b"0123456789abcdefghijklmnopqrstuvwxyZ!";
        let good = create(source, target);
        assert_eq!(apply(source, &good).unwrap(), target);
        assert_eq!(apply(source, b""), Err(FossilError::Header));
        assert_eq!(apply(source, b"5"), Err(FossilError::Header));
        assert_eq!(apply(source, b"5\n"), Err(FossilError::Unterminated));
        assert_eq!(
            apply(source, b"5\n5@100,0;"),
            Err(FossilError::CopyOutOfRange)
        );
        assert_eq!(apply(source, b"2\n5@0,0;"), Err(FossilError::TooLong));
        assert_eq!(
            apply(source, b"9\n9:abc"),
            Err(FossilError::InsertOutOfRange)
        );
        assert_eq!(apply(source, b"3\n3:abc0;"), Err(FossilError::Checksum));
        assert_eq!(apply(source, b"3\n3:abc!"), Err(FossilError::Command));
        assert_eq!(
            apply(source, b"~~~~~~~~~~~~~~~~~~~~\n"),
            Err(FossilError::Command)
        );
        let mut short = b"4\n3:abc".to_vec();
        put_int(&mut short, u64::from(checksum(b"abc")));
        short.push(b';');
        assert_eq!(apply(source, &short), Err(FossilError::SizeMismatch));
        let mut corrupted = good.clone();
        let at = corrupted.len() - 3;
        corrupted[at] = if corrupted[at] == b'1' { b'2' } else { b'1' };
        assert!(apply(source, &corrupted).is_err());
    }

    /// A JSON document with `n` items, of which those in `changed` differ.
    fn document(n: usize, changed: &[usize], salt: u32) -> Vec<u8> {
        let items: Vec<String> = (0..n)
            .map(|i| {
                let v = if changed.contains(&i) { salt } else { 0 };
                format!(
                    r#"{{"id":{i},"name":"item-{i}","price":{},"tags":["a","b"],"ok":true}}"#,
                    1000 + i as u32 + v
                )
            })
            .collect();
        format!(r#"{{"items":[{}],"version":{salt}}}"#, items.join(",")).into_bytes()
    }

    #[test]
    fn json_documents_with_small_changes_give_small_deltas() {
        let old = document(20, &[], 0);
        let new = document(20, &[3, 11], 7);
        let delta = create(&old, &new);
        assert!(
            delta.len() * 5 < new.len(),
            "{} vs {}",
            delta.len(),
            new.len()
        );
        assert_eq!(apply(&old, &delta).unwrap(), new);
    }

    proptest! {
        #[test]
        fn random_bytes_round_trip(source in proptest::collection::vec(any::<u8>(), 0..600),
                                   target in proptest::collection::vec(any::<u8>(), 0..600)) {
            let delta = create(&source, &target);
            prop_assert_eq!(apply(&source, &delta).unwrap(), target);
        }

        #[test]
        fn edited_copies_round_trip(source in proptest::collection::vec(0u8..4, 0..2000),
                                    edits in proptest::collection::vec((any::<usize>(), any::<u8>(), 0u8..3), 0..20)) {
            // Low-entropy sources with a few inserts, deletes and replacements exercise the
            // copy search (many hash collisions and long matches).
            let mut target = source.clone();
            for (at, byte, kind) in edits {
                let at = if target.is_empty() { 0 } else { at % target.len() };
                match kind {
                    0 => target.insert(at, byte),
                    1 if !target.is_empty() => { target.remove(at); }
                    _ if !target.is_empty() => target[at] = byte,
                    _ => target.push(byte),
                }
            }
            let delta = create(&source, &target);
            prop_assert_eq!(apply(&source, &delta).unwrap(), target);
        }

        #[test]
        fn json_documents_round_trip(n in 1usize..40, changed in proptest::collection::vec(0usize..40, 0..5), salt in any::<u32>()) {
            let old = document(n, &[], 0);
            let new = document(n, &changed, salt);
            let delta = create(&old, &new);
            prop_assert_eq!(apply(&old, &delta).unwrap(), new.clone());
            prop_assert_eq!(apply(&new, &create(&new, &old)).unwrap(), old);
        }

        #[test]
        fn apply_never_panics(source in proptest::collection::vec(any::<u8>(), 0..64),
                              delta in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = apply(&source, &delta);
        }
    }
}
