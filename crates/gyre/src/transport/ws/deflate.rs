//! permessage-deflate (RFC 7692), always without context takeover.
//!
//! Why no context takeover, in both directions: a shared LZ77 window would cost every
//! connection its own zlib state (hundreds of KiB), and the same publication would have
//! to be compressed once per subscriber. Without it, every message is compressed on its
//! own, so one compressor and one decompressor per runtime thread serve every connection
//! (reset before each message), and a connection holds nothing but a flag.
//!
//! A broadcast reaches many connections with the same shared `Bytes`: [`compress_batch`]
//! keeps the last few compressed messages per thread, keyed by that allocation, so one
//! publication is compressed once per thread, not once per subscriber. A batch of queued
//! messages becomes one frame by concatenating the messages' compressed forms: each ends
//! with a sync flush (byte-aligned, and no message refers back into another), which is a
//! valid DEFLATE stream; the JSON separator `\n` is a 1-byte stored block between them.

use std::cell::RefCell;

use bytes::{Bytes, BytesMut};
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};
use http::HeaderMap;
use http::header::SEC_WEBSOCKET_EXTENSIONS;

/// The answer to an acceptable offer.
pub(crate) const RESPONSE: &str =
    "permessage-deflate; server_no_context_takeover; client_no_context_takeover";

/// What a sync flush appends to a message; RFC 7692 §7.2.1 strips it from the frame and
/// §7.2.2 has the receiver append it again.
const TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

/// `\n` as a non-final stored block: header byte (BFINAL=0, BTYPE=00, padding), LEN=1,
/// NLEN=!1, then the byte.
const NEWLINE_BLOCK: &[u8] = &[0x00, 0x01, 0x00, 0xfe, 0xff, b'\n'];

/// Compressed messages remembered per thread.
const CACHE_SLOTS: usize = 8;

/// Messages this large are compressed on their own rather than remembered: the cache must
/// not pin big buffers.
const CACHE_MAX_MESSAGE: usize = 256 * 1024;

/// Compression settings of an endpoint that offers permessage-deflate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct DeflateConfig {
    /// zlib level, 0 (stored) to 9 (best).
    pub(crate) level: u32,
    /// Frames whose payload is at most this long go out uncompressed (0 = compress all).
    pub(crate) min_size: usize,
    /// Largest inbound message after decompression (0 = no limit).
    pub(crate) decompressed_limit: usize,
    /// Reuse the compressed form of a message for every connection of the thread.
    pub(crate) cache: bool,
}

impl DeflateConfig {
    /// Settings from an endpoint's public configuration; a zero `decompressed_limit` is
    /// ten times the wire limit (upstream's default multiplier).
    pub(crate) fn new(
        level: u32,
        min_size: usize,
        decompressed_limit: usize,
        message_size_limit: usize,
    ) -> Self {
        DeflateConfig {
            level: level.min(9),
            min_size,
            decompressed_limit: if decompressed_limit == 0 {
                message_size_limit.saturating_mul(10)
            } else {
                decompressed_limit
            },
            cache: true,
        }
    }

    /// Whether a frame payload of `len` bytes is worth compressing (upstream compresses
    /// messages longer than `compression_min_size`).
    pub(crate) fn wants(&self, len: usize) -> bool {
        self.min_size == 0 || len > self.min_size
    }
}

/// Decides on the client's `Sec-WebSocket-Extensions` offers: `true` when one of them is a
/// permessage-deflate we can honour, in which case the response carries [`RESPONSE`].
///
/// An offer is acceptable when its parameters are each known, given at most once and
/// well formed (RFC 7692 §7.1): `server_no_context_takeover` and
/// `client_no_context_takeover` (we use no context takeover anyway),
/// `client_max_window_bits` with or without a value 8–15 (we inflate with the largest
/// window, which reads any smaller one), and `server_max_window_bits=15` only (a smaller
/// window for our compressor is not offered). Anything else declines that offer; with no
/// acceptable offer the connection runs uncompressed.
pub(crate) fn negotiate(headers: &HeaderMap) -> bool {
    headers
        .get_all(SEC_WEBSOCKET_EXTENSIONS)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(split_offers)
        .any(offer_acceptable)
}

/// Splits a header value into extension offers (commas outside quoted strings).
fn split_offers(value: &str) -> Vec<&str> {
    let mut offers = Vec::new();
    let mut start = 0;
    let mut quoted = false;
    for (i, c) in value.char_indices() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => {
                offers.push(&value[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    offers.push(&value[start..]);
    offers
}

fn offer_acceptable(offer: &str) -> bool {
    let mut parts = offer.split(';').map(str::trim);
    if !parts
        .next()
        .is_some_and(|name| name.eq_ignore_ascii_case("permessage-deflate"))
    {
        return false;
    }
    let mut seen = [false; 4];
    for param in parts {
        if param.is_empty() {
            return false;
        }
        let (name, value) = match param.split_once('=') {
            Some((n, v)) => {
                let v = v.trim();
                let v = v
                    .strip_prefix('"')
                    .and_then(|v| v.strip_suffix('"'))
                    .unwrap_or(v);
                (n.trim(), Some(v))
            }
            None => (param, None),
        };
        let slot = match name.to_ascii_lowercase().as_str() {
            "server_no_context_takeover" if value.is_none() => 0,
            "client_no_context_takeover" if value.is_none() => 1,
            "client_max_window_bits" if value.is_none_or(window_bits_valid) => 2,
            "server_max_window_bits" if value == Some("15") => 3,
            _ => return false,
        };
        if std::mem::replace(&mut seen[slot], true) {
            return false;
        }
    }
    true
}

/// RFC 7692 §7.1.2: 1*DIGIT of value 8 to 15, no leading zero.
fn window_bits_valid(v: &str) -> bool {
    !v.starts_with('0') && matches!(v.parse::<u8>(), Ok(8..=15))
}

/// Why an inbound compressed message was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum InflateError {
    /// Not a valid DEFLATE stream (close 1007).
    Invalid,
    /// Inflates past the limit (close 1009).
    TooBig,
}

struct Codec {
    /// The compressor and the level it was made with.
    deflate: Option<(u32, Compress)>,
    inflate: Decompress,
    cache: Vec<CacheEntry>,
    /// Slot the next new entry replaces.
    next: usize,
}

struct CacheEntry {
    /// Held so that its allocation (the key) cannot be freed and reused meanwhile.
    message: Bytes,
    level: u32,
    /// Sync-flushed DEFLATE of `message`, `TAIL` included.
    compressed: Bytes,
}

thread_local! {
    static CODEC: RefCell<Codec> = RefCell::new(Codec {
        deflate: None,
        inflate: Decompress::new(false),
        cache: Vec::new(),
        next: 0,
    });
}

impl Codec {
    fn compressor(&mut self, level: u32) -> &mut Compress {
        if self.deflate.as_ref().is_none_or(|(l, _)| *l != level) {
            self.deflate = Some((level, Compress::new(Compression::new(level), false)));
        }
        let (_, c) = self.deflate.as_mut().expect("just set");
        c.reset();
        c
    }

    /// Sync-flushed DEFLATE of `message` on its own (ends with `TAIL`), appended to `out`.
    fn compress_into(&mut self, level: u32, message: &[u8], out: &mut Vec<u8>) {
        let c = self.compressor(level);
        let start_in = c.total_in();
        out.reserve(message.len() / 2 + 64);
        loop {
            let consumed = (c.total_in() - start_in) as usize;
            // Errors only come from misuse (a buffer with no room), which the loop avoids.
            let _ = c.compress_vec(&message[consumed..], out, FlushCompress::Sync);
            let done = (c.total_in() - start_in) as usize == message.len();
            if done && out.len() < out.capacity() {
                return;
            }
            out.reserve(out.capacity().max(64));
        }
    }

    fn cached(&mut self, level: u32, message: &Bytes) -> Bytes {
        if let Some(e) = self.cache.iter().find(|e| {
            e.level == level
                && e.message.len() == message.len()
                && e.message.as_ptr() == message.as_ptr()
        }) {
            return e.compressed.clone();
        }
        let mut out = Vec::new();
        self.compress_into(level, message, &mut out);
        let compressed = Bytes::from(out);
        if message.len() <= CACHE_MAX_MESSAGE {
            let entry = CacheEntry {
                message: message.clone(),
                level,
                compressed: compressed.clone(),
            };
            if self.cache.len() < CACHE_SLOTS {
                self.cache.push(entry);
            } else {
                self.cache[self.next] = entry;
            }
            self.next = (self.next + 1) % CACHE_SLOTS;
        }
        compressed
    }
}

/// Compresses the messages of one frame (joined with `\n` when `json`) and returns the
/// frame payload as segments to write in order, with `TAIL` stripped from the end.
pub(crate) fn compress_batch(config: &DeflateConfig, batch: &[Bytes], json: bool) -> Vec<Bytes> {
    CODEC.with(|codec| {
        let mut codec = codec.borrow_mut();
        let mut segments = Vec::with_capacity(if json { batch.len() * 2 } else { batch.len() });
        if config.cache {
            for (i, m) in batch.iter().enumerate() {
                if json && i > 0 {
                    segments.push(Bytes::from_static(NEWLINE_BLOCK));
                }
                segments.push(codec.cached(config.level, m));
            }
        } else {
            // One pass over the whole payload, as a compressor without a cache would.
            let mut joined = BytesMut::new();
            for (i, m) in batch.iter().enumerate() {
                if json && i > 0 {
                    joined.extend_from_slice(b"\n");
                }
                joined.extend_from_slice(m);
            }
            let mut out = Vec::new();
            codec.compress_into(config.level, &joined, &mut out);
            segments.push(Bytes::from(out));
        }
        let last = segments.last_mut().expect("a batch is never empty");
        debug_assert!(last.ends_with(&TAIL));
        last.truncate(last.len() - TAIL.len());
        segments
    })
}

/// One message, compressed (the frame payload, `TAIL` stripped).
#[cfg(test)]
pub(crate) fn compress_message(config: &DeflateConfig, message: &Bytes) -> Bytes {
    let mut segments = compress_batch(config, std::slice::from_ref(message), false);
    segments.pop().unwrap_or_default()
}

/// Inflates one received message (`TAIL` appended as RFC 7692 §7.2.2 says). `limit` 0 is
/// no limit.
pub(crate) fn decompress(data: &[u8], limit: usize) -> Result<Bytes, InflateError> {
    let limit = if limit == 0 { usize::MAX } else { limit };
    CODEC.with(|codec| {
        let mut codec = codec.borrow_mut();
        let d = &mut codec.inflate;
        d.reset(false);
        let cap = limit.saturating_add(1);
        let mut out =
            Vec::with_capacity(data.len().saturating_mul(3).clamp(64, 64 * 1024).min(cap));
        for (ci, chunk) in [data, &TAIL[..]].into_iter().enumerate() {
            let mut pos = 0;
            loop {
                if out.len() == out.capacity() {
                    if out.len() > limit {
                        return Err(InflateError::TooBig);
                    }
                    let grow = out.len().max(4096).min(cap - out.len());
                    out.reserve_exact(grow);
                }
                let (in_before, out_before) = (d.total_in(), out.len());
                let status = d
                    .decompress_vec(&chunk[pos..], &mut out, FlushDecompress::Sync)
                    .map_err(|_| InflateError::Invalid)?;
                pos += (d.total_in() - in_before) as usize;
                if out.len() > limit {
                    return Err(InflateError::TooBig);
                }
                if status == Status::StreamEnd {
                    // A final block ends the message: nothing of the payload may follow
                    // it (the appended tail may).
                    if ci == 0 && chunk.len() > pos {
                        return Err(InflateError::Invalid);
                    }
                    return Ok(Bytes::from(out));
                }
                if pos == chunk.len() && out.len() < out.capacity() {
                    break;
                }
                if d.total_in() == in_before
                    && out.len() == out_before
                    && out.len() < out.capacity()
                {
                    return Err(InflateError::Invalid);
                }
            }
        }
        Ok(Bytes::from(out))
    })
}

/// Fuzz entry point: compresses `data` whole and split in two, as JSON and as binary
/// batches, with and without the cache, and panics unless each inflates back exactly.
pub(crate) fn fuzz_round_trip(data: &[u8], level: u32) {
    let whole = Bytes::copy_from_slice(data);
    let mid = data.len() / 2;
    let halves = [whole.slice(..mid), whole.slice(mid..)];
    for cache in [true, false] {
        let config = DeflateConfig {
            level,
            min_size: 0,
            decompressed_limit: 0,
            cache,
        };
        for json in [true, false] {
            for batch in [std::slice::from_ref(&whole), &halves[..]] {
                let payload: Vec<u8> = compress_batch(&config, batch, json).concat();
                let want = if json && batch.len() == 2 {
                    [&halves[0][..], b"\n", &halves[1][..]].concat()
                } else {
                    data.to_vec()
                };
                let got = decompress(&payload, 0).expect("our own output inflates");
                assert_eq!(
                    &got[..],
                    &want[..],
                    "level {level} cache {cache} json {json}"
                );
                // A limit one byte short of the message is refused (0 would mean none).
                if want.len() > 1 {
                    assert_eq!(
                        decompress(&payload, want.len() - 1),
                        Err(InflateError::TooBig)
                    );
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn round_trips_whatever_the_input(data in prop::collection::vec(any::<u8>(), 0..4096),
                                          level in 0u32..10) {
            fuzz_round_trip(&data, level);
        }

        #[test]
        fn arbitrary_compressed_payloads_never_panic(
            data in prop::collection::vec(any::<u8>(), 0..2048),
            limit in 0usize..8192,
        ) {
            let _ = decompress(&data, limit);
        }
    }

    fn offered(v: &str) -> bool {
        let mut h = HeaderMap::new();
        h.insert(SEC_WEBSOCKET_EXTENSIONS, v.parse().unwrap());
        negotiate(&h)
    }

    const CONFIG: DeflateConfig = DeflateConfig {
        level: 1,
        min_size: 0,
        decompressed_limit: 0,
        cache: true,
    };

    #[test]
    fn negotiation() {
        for ok in [
            "permessage-deflate",
            "permessage-deflate; client_max_window_bits",
            "permessage-deflate; client_max_window_bits=10",
            "permessage-deflate; client_max_window_bits=\"15\"",
            "Permessage-Deflate; server_no_context_takeover; client_no_context_takeover",
            "permessage-deflate; server_max_window_bits=15",
            "x-webkit-deflate-frame, permessage-deflate",
            "permessage-deflate; server_max_window_bits=10, permessage-deflate",
        ] {
            assert!(offered(ok), "{ok}");
        }
        for bad in [
            "",
            "x-webkit-deflate-frame",
            "permessage-deflate; server_max_window_bits=10",
            "permessage-deflate; server_max_window_bits",
            "permessage-deflate; client_max_window_bits=7",
            "permessage-deflate; client_max_window_bits=16",
            "permessage-deflate; client_max_window_bits=010",
            "permessage-deflate; client_no_context_takeover; client_no_context_takeover",
            "permessage-deflate; server_no_context_takeover=1",
            "permessage-deflate; unknown",
            "permessage-deflate;",
        ] {
            assert!(!offered(bad), "{bad}");
        }
        assert!(!negotiate(&HeaderMap::new()));
        // Offers may also come in separate header lines.
        let mut h = HeaderMap::new();
        h.append(SEC_WEBSOCKET_EXTENSIONS, "foo".parse().unwrap());
        h.append(
            SEC_WEBSOCKET_EXTENSIONS,
            "permessage-deflate; client_max_window_bits"
                .parse()
                .unwrap(),
        );
        assert!(negotiate(&h));
    }

    #[test]
    fn round_trip_strips_the_tail() {
        let message =
            Bytes::from(r#"{"channel":"news","pub":{"data":{"text":"hello hello hello hello"}}}"#);
        let compressed = compress_message(&CONFIG, &message);
        assert!(!compressed.ends_with(&TAIL));
        assert!(compressed.len() < message.len());
        assert_eq!(decompress(&compressed, 0).unwrap(), message);
        // An empty message too.
        let empty = compress_message(&CONFIG, &Bytes::new());
        assert_eq!(decompress(&empty, 0).unwrap(), Bytes::new());
    }

    #[test]
    fn batches_concatenate_into_one_stream() {
        let a = Bytes::from_static(b"{\"a\":\"xxxxxxxxxxxxxxxxxxxxxxxx\"}");
        let b = Bytes::from_static(b"{\"b\":\"yyyyyyyyyyyyyyyyyyyyyyyy\"}");
        let c = Bytes::from_static(b"{\"c\":3}");
        for cache in [true, false] {
            let config = DeflateConfig { cache, ..CONFIG };
            for json in [true, false] {
                let segments = compress_batch(&config, &[a.clone(), b.clone(), c.clone()], json);
                let payload: Vec<u8> = segments.iter().flat_map(|s| s.iter().copied()).collect();
                let sep: &[u8] = if json { b"\n" } else { b"" };
                let want = [&a[..], sep, &b[..], sep, &c[..]].concat();
                assert_eq!(
                    decompress(&payload, 0).unwrap(),
                    want,
                    "cache {cache} json {json}"
                );
            }
        }
    }

    #[test]
    fn cache_compresses_a_shared_message_once() {
        let message = Bytes::from(vec![b'z'; 1000]);
        let first = compress_batch(&CONFIG, std::slice::from_ref(&message), true);
        let again = compress_batch(&CONFIG, std::slice::from_ref(&message), true);
        // The stored form is shared, not recomputed.
        assert_eq!(first[0].as_ptr(), again[0].as_ptr());
        // The same content in another allocation is a different key.
        let copy = Bytes::from(message.to_vec());
        let other = compress_batch(&CONFIG, std::slice::from_ref(&copy), true);
        assert_ne!(first[0].as_ptr(), other[0].as_ptr());
        assert_eq!(first, other);
        // Stripping the tail of a cached entry does not touch the entry.
        let whole = compress_batch(&CONFIG, &[message.clone(), message.clone()], false);
        assert!(whole[0].ends_with(&TAIL));
    }

    #[test]
    fn limits_and_garbage() {
        let big = Bytes::from(vec![b'a'; 100_000]);
        let bomb = compress_message(&CONFIG, &big);
        assert!(bomb.len() < 1000);
        assert_eq!(decompress(&bomb, 99_999), Err(InflateError::TooBig));
        assert_eq!(decompress(&bomb, 100_000).unwrap().len(), 100_000);
        // Reserved block type 3.
        assert_eq!(
            decompress(&[0xff, 0xff, 0xff], 0),
            Err(InflateError::Invalid)
        );
        // The codec recovers after an error.
        let ok = compress_message(&CONFIG, &Bytes::from_static(b"fine"));
        assert_eq!(&decompress(&ok, 0).unwrap()[..], b"fine");
    }

    #[test]
    fn levels() {
        assert_eq!(DeflateConfig::new(42, 0, 0, 100).level, 9);
        assert_eq!(DeflateConfig::new(1, 0, 0, 100).decompressed_limit, 1000);
        assert_eq!(DeflateConfig::new(1, 0, 5, 100).decompressed_limit, 5);
        let stored = DeflateConfig { level: 0, ..CONFIG };
        let m = Bytes::from_static(b"stored as is");
        assert_eq!(decompress(&compress_message(&stored, &m), 0).unwrap(), m);
        assert!(CONFIG.wants(0));
        let min = DeflateConfig {
            min_size: 10,
            ..CONFIG
        };
        assert!(!min.wants(10));
        assert!(min.wants(11));
    }
}
