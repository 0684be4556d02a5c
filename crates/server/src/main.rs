//! `gyre`: a drop-in replacement for Centrifugo v6 (see the `gyre_server` library).

use std::process::ExitCode;

fn main() -> ExitCode {
    gyre_server::run()
}
