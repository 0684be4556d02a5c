#![no_main]

use libfuzzer_sys::fuzz_target;

// A PUB/SUB payload from another node sharing Redis (publication, join, leave).
fuzz_target!(|data: &[u8]| {
    let _ = gyre_redis::__fuzz::payload(data);
});
