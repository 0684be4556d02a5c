#![no_main]

use libfuzzer_sys::fuzz_target;

// Client-to-server WebSocket frames straight off the socket.
fuzz_target!(|data: &[u8]| {
    let _ = gyre::__fuzz::ws_parse(data);
});
