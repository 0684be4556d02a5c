#![no_main]

use libfuzzer_sys::fuzz_target;

// Connection and subscription JWTs, verified with an HMAC key and with signature checks
// off (so that fuzzed claims get past the signature).
fuzz_target!(|data: &[u8]| {
    if let Ok(token) = std::str::from_utf8(data) {
        gyre_server::__fuzz::jwt(token);
    }
});
