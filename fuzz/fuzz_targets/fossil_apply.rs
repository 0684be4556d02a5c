#![no_main]

use libfuzzer_sys::fuzz_target;

// The first byte splits the input into a source and a delta: applying any delta to any
// source returns an error or a target, never panics; a produced target re-encodes.
fuzz_target!(|data: &[u8]| {
    let Some((&split, rest)) = data.split_first() else {
        return;
    };
    let (source, delta) = rest.split_at(usize::from(split).min(rest.len()));
    if let Ok(target) = gyre_protocol::fossil::apply(source, delta) {
        let again = gyre_protocol::fossil::create(source, &target);
        assert_eq!(gyre_protocol::fossil::apply(source, &again).as_deref(), Ok(&target[..]));
    }
});
