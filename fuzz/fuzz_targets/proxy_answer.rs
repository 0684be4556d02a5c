#![no_main]

use libfuzzer_sys::fuzz_target;

// What an application backend answers to a proxied event (connect, refresh, subscribe,
// publish, RPC, sub refresh): the first byte picks JSON (HTTP proxy) or Protobuf (gRPC).
fuzz_target!(|data: &[u8]| {
    let Some((&flavour, body)) = data.split_first() else {
        return;
    };
    gyre_proxy::__fuzz::proxy_answer(body, flavour & 1 == 0);
});
