#![no_main]

use libfuzzer_sys::fuzz_target;

// permessage-deflate: client frames (compressed or not) straight off the socket with the
// extension negotiated, and the compressor's output inflating back to its input.
fuzz_target!(|data: &[u8]| {
    let _ = gyre::__fuzz::ws_parse_deflate(data);
    if let Some((&level, rest)) = data.split_first() {
        gyre::__fuzz::ws_deflate_round_trip(rest, level);
    }
});
