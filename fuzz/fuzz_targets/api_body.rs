#![no_main]

use libfuzzer_sys::fuzz_target;

// HTTP server-API bodies: every `/api/<method>` request, `/api/batch` and the legacy
// newline-delimited `POST /api`.
fuzz_target!(|data: &[u8]| {
    gyre_server::__fuzz::api_body(data);
});
