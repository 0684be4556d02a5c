#![no_main]

use libfuzzer_sys::fuzz_target;

// A message from another node sharing NATS (publication, join, leave).
fuzz_target!(|data: &[u8]| {
    let _ = gyre_nats::__fuzz::message(data);
});
