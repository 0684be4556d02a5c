//! Repository chores. `cargo xtask codegen` regenerates the committed Protobuf types.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

fn main() -> Result<()> {
    let task = std::env::args().nth(1);
    match task.as_deref() {
        Some("codegen") => codegen(),
        _ => bail!("usage: cargo xtask codegen"),
    }
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives one level below the workspace root")
        .to_path_buf()
}

/// Compiles `proto/*.proto` without `protoc` and writes the Rust types into the
/// protocol crate, where they are committed like any other source file.
fn codegen() -> Result<()> {
    let root = workspace_root();
    let proto_dir = root.join("proto");
    let out_dir = root.join("crates/protocol/src/generated");
    std::fs::create_dir_all(&out_dir)?;

    let descriptors = protox::compile(
        [
            proto_dir.join("client.proto"),
            proto_dir.join("control.proto"),
        ],
        [&proto_dir],
    )
    .context("compiling proto/*.proto")?;

    let mut config = prost_build::Config::new();
    // `bytes` fields become `Bytes` so a decoded publication shares the input buffer.
    config.bytes(["."]);
    config.out_dir(&out_dir);
    config
        .compile_fds(descriptors)
        .context("generating Rust types")?;

    // rustfmt keeps the committed files stable between runs.
    for name in ["centrifugal.centrifuge.protocol.rs", "controlpb.rs"] {
        let generated = out_dir.join(name);
        let status = std::process::Command::new("rustfmt")
            .args(["--edition", "2024"])
            .arg(&generated)
            .status()
            .context("running rustfmt")?;
        if !status.success() {
            bail!("rustfmt failed on {}", generated.display());
        }
        println!("wrote {}", generated.display());
    }
    Ok(())
}
