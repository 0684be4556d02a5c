//! Repository chores. `cargo xtask codegen` regenerates the committed Protobuf types, the
//! gRPC server API's service and client code, the `uni_grpc` service, and the proxy
//! service that the proxy crate's tests serve.

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
        rustfmt(&out_dir.join(name))?;
    }
    grpc_api(&root, &proto_dir)?;
    uni_grpc(&root, &proto_dir)?;
    proxy(&root, &proto_dir)
}

/// The unidirectional gRPC transport (`proto/unistream.proto`): the service in the server
/// crate, whose `Push` is the library's already encoded push (`RawPush`), and a plain
/// client for its tests.
fn uni_grpc(root: &Path, proto_dir: &Path) -> Result<()> {
    let targets = [
        (root.join("crates/server/src/unigrpc/generated"), true),
        (root.join("crates/server/tests/unigrpc_support"), false),
    ];
    for (out_dir, server) in targets {
        std::fs::create_dir_all(&out_dir)?;
        let descriptors = protox::compile([proto_dir.join("unistream.proto")], [proto_dir])
            .context("compiling proto/unistream.proto")?;
        let mut builder = tonic_prost_build::configure()
            .build_server(server)
            .build_client(!server)
            .bytes(".")
            .out_dir(&out_dir);
        if server {
            builder = builder.extern_path(
                ".centrifugal.centrifugo.unistream.Push",
                "crate::unigrpc::RawPush",
            );
        }
        builder
            .compile_fds(descriptors)
            .context("generating the uni_grpc service")?;
        rustfmt(&out_dir.join("centrifugal.centrifugo.unistream.rs"))?;
    }
    Ok(())
}

/// The event proxy (`proto/proxy.proto`): messages for the gRPC flavour, which also
/// (de)serialize as the HTTP flavour's JSON, in the proxy crate; and the same messages
/// with the service's server side for that crate's tests, which play the backend.
fn proxy(root: &Path, proto_dir: &Path) -> Result<()> {
    let compile = || {
        protox::compile([proto_dir.join("proxy.proto")], [proto_dir])
            .context("compiling proto/proxy.proto")
    };
    let name = "centrifugal.centrifugo.proxy.rs";

    let out_dir = root.join("crates/proxy/src/generated");
    std::fs::create_dir_all(&out_dir)?;
    let descriptors = compile()?;
    let mut config = proxy_messages(&descriptors, "crate::proto");
    config.out_dir(&out_dir);
    config
        .compile_fds(descriptors)
        .context("generating the proxy messages")?;
    rustfmt(&out_dir.join(name))?;

    let out_dir = root.join("crates/proxy/tests/support");
    std::fs::create_dir_all(&out_dir)?;
    let descriptors = compile()?;
    let config = proxy_messages(&descriptors, "super");
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(false)
        .out_dir(&out_dir)
        .compile_fds_with_config(descriptors, config)
        .context("generating the proxy service for tests")?;
    rustfmt(&out_dir.join(name))
}

/// Settings for the proxy messages. Field attributes follow each field's type, so the
/// JSON matches Centrifugo's: empty fields are left out, and `bytes` fields carry raw JSON
/// (`data`, `info`, `meta`). `helpers` is the module holding `raw_json`, `is_false` and
/// `is_zero`.
fn proxy_messages(
    descriptors: &prost_types::FileDescriptorSet,
    helpers: &str,
) -> prost_build::Config {
    use prost_types::field_descriptor_proto::{Label, Type};

    let mut config = prost_build::Config::new();
    config.bytes(["."]).message_attribute(
        ".",
        "#[derive(serde::Serialize, serde::Deserialize)] #[serde(default)]",
    );
    for file in &descriptors.file {
        let package = file.package();
        for message in &file.message_type {
            let maps: Vec<String> = message
                .nested_type
                .iter()
                .filter(|n| n.options.as_ref().is_some_and(|o| o.map_entry()))
                .map(|n| n.name().to_owned())
                .collect();
            for field in &message.field {
                let repeated = field.label() == Label::Repeated;
                let is_map = repeated
                    && maps
                        .iter()
                        .any(|m| field.type_name().ends_with(&format!(".{m}")));
                let attribute = if is_map {
                    "#[serde(skip_serializing_if = \"::std::collections::HashMap::is_empty\")]"
                        .to_owned()
                } else if repeated {
                    "#[serde(skip_serializing_if = \"::std::vec::Vec::is_empty\")]".to_owned()
                } else {
                    match field.r#type() {
                        Type::String => {
                            "#[serde(skip_serializing_if = \"String::is_empty\")]".to_owned()
                        }
                        Type::Bytes => format!(
                            "#[serde(with = \"{helpers}::raw_json\", skip_serializing_if = \"bytes::Bytes::is_empty\")]"
                        ),
                        Type::Bool => {
                            format!("#[serde(skip_serializing_if = \"{helpers}::is_false\")]")
                        }
                        Type::Message => {
                            "#[serde(skip_serializing_if = \"Option::is_none\")]".to_owned()
                        }
                        _ => format!("#[serde(skip_serializing_if = \"{helpers}::is_zero\")]"),
                    }
                };
                config.field_attribute(
                    format!(".{package}.{}.{}", message.name(), field.name()),
                    attribute,
                );
            }
        }
    }
    config
}

/// Which code of `proto/api.proto` a crate gets.
#[derive(Clone, Copy, PartialEq)]
enum GrpcSide {
    /// The service and the encoded descriptors (for reflection).
    Server,
    /// A client whose messages serialize to the HTTP API's JSON (for comparing answers).
    TestClient,
    /// A plain client.
    Client,
}

/// The server API over gRPC (`proto/api.proto`): the service and the encoded descriptors
/// (for reflection) in the server crate, a client of the same file for its tests, and a
/// plain client for the load tool's publishers.
fn grpc_api(root: &Path, proto_dir: &Path) -> Result<()> {
    let targets = [
        (
            root.join("crates/server/src/grpc/generated"),
            GrpcSide::Server,
        ),
        (
            root.join("crates/server/tests/grpc_support"),
            GrpcSide::TestClient,
        ),
        (root.join("crates/bench/src/generated"), GrpcSide::Client),
    ];
    for (out_dir, side) in targets {
        let server = side == GrpcSide::Server;
        std::fs::create_dir_all(&out_dir)?;
        let descriptors = protox::compile([proto_dir.join("api.proto")], [proto_dir])
            .context("compiling proto/api.proto")?;
        let mut builder = tonic_prost_build::configure()
            .build_server(server)
            .build_client(!server)
            .bytes(".")
            .out_dir(&out_dir);
        if server {
            // For the reflection service (`grpc_api.reflection`).
            let encoded = prost::Message::encode_to_vec(&descriptors);
            std::fs::write(out_dir.join("api.bin"), encoded)?;
            println!("wrote {}", out_dir.join("api.bin").display());
        } else if side == GrpcSide::TestClient {
            // The tests compare answers with the HTTP API's JSON; payload bytes are JSON
            // text there, so they are written as the JSON value they hold.
            builder = builder.message_attribute(".", "#[derive(serde::Serialize)]");
            for field in BYTES_FIELDS {
                builder = builder.field_attribute(
                    format!(".centrifugal.centrifugo.api.{field}"),
                    "#[serde(serialize_with = \"super::json_bytes\")]",
                );
            }
        }
        builder
            .compile_fds(descriptors)
            .context("generating the gRPC API")?;
        rustfmt(&out_dir.join("centrifugal.centrifugo.api.rs"))?;
    }
    Ok(())
}

/// Every `bytes` field of `proto/api.proto`.
const BYTES_FIELDS: &[&str] = &[
    "PublishRequest.data",
    "BroadcastRequest.data",
    "SubscribeRequest.info",
    "SubscribeRequest.data",
    "ClientInfo.conn_info",
    "ClientInfo.chan_info",
    "Publication.data",
    "RPCRequest.params",
    "RPCResult.data",
    "RefreshRequest.info",
];

fn rustfmt(generated: &Path) -> Result<()> {
    let status = std::process::Command::new("rustfmt")
        .args(["--edition", "2024"])
        .arg(generated)
        .status()
        .context("running rustfmt")?;
    if !status.success() {
        bail!("rustfmt failed on {}", generated.display());
    }
    println!("wrote {}", generated.display());
    Ok(())
}
