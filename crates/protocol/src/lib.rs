//! Wire types and codecs of the Centrifugal client protocol v2.
//!
//! No I/O and no runtime: encoders write into `BytesMut`, decoders read `Bytes`.

#![warn(missing_docs)]

mod codes;

/// Protobuf types generated from `proto/client.proto` by `cargo xtask codegen`.
#[allow(missing_docs, clippy::all)]
pub mod proto {
    include!("generated/centrifugal.centrifuge.protocol.rs");
}

pub use codes::{Disconnect, Error, Unsubscribe};

/// The encoding of a connection, fixed for its whole life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Protocol {
    /// Newline-joined JSON objects, payloads embedded as raw JSON.
    #[default]
    Json,
    /// Varint-length-delimited Protobuf messages.
    Protobuf,
}
