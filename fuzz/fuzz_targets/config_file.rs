#![no_main]

use libfuzzer_sys::fuzz_target;

// Configuration files: the first byte picks JSON, YAML or TOML, the rest is the file,
// loaded and validated as `gyre -c` would.
fuzz_target!(|data: &[u8]| {
    let Some((&format, file)) = data.split_first() else {
        return;
    };
    let extension = ["json", "yaml", "toml"][usize::from(format % 3)];
    gyre_server::__fuzz::config_file(extension, file);
});
