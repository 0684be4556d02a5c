#![no_main]

use libfuzzer_sys::fuzz_target;

// A unidirectional connect request, as a body or as the value of `?cf_connect=`.
fuzz_target!(|data: &[u8]| {
    gyre::__fuzz::uni_connect(data);
});
