#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    gyre_fuzz::check_emulation_request(data);
});
