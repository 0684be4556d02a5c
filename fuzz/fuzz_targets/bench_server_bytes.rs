#![no_main]

use libfuzzer_sys::fuzz_target;

// What the load tool reads from the server it measures: WebSocket frames, then JSON or
// Protobuf replies and pushes inside them.
fuzz_target!(|data: &[u8]| {
    gyre_bench::__fuzz::server_bytes(data);
});
