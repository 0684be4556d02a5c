//! What goes on the wire to a client: pushes and replies encoded once, and the
//! client-facing forms of library values.
//!
//! The hub encodes a broadcast here once per protocol and shares the bytes among all
//! subscribers of that protocol; a connection encodes its own replies here. Both sit
//! below the hub and the client so that neither reaches into the other to encode.

use bytes::{Bytes, BytesMut};
use gyre_protocol::{Protocol, proto};

use crate::broker::{ClientInfo, Publication};

/// Encodes a push for `protocol`; `None` when the payload cannot be carried by it.
pub(crate) fn encode_push(protocol: Protocol, push: &proto::Push) -> Option<Bytes> {
    let mut buf = BytesMut::new();
    gyre_protocol::encode_push(protocol, push, &mut buf).ok()?;
    Some(buf.freeze())
}

/// Encodes a reply for `protocol`; `None` when the payload cannot be carried by it.
pub(crate) fn encode_reply(protocol: Protocol, reply: &proto::Reply) -> Option<Bytes> {
    let mut buf = BytesMut::new();
    gyre_protocol::encode_reply(protocol, reply, &mut buf).ok()?;
    Some(buf.freeze())
}

pub(crate) fn info_to_proto(info: &ClientInfo) -> proto::ClientInfo {
    proto::ClientInfo {
        user: info.user.clone(),
        client: info.client.clone(),
        conn_info: info.conn_info.clone(),
        chan_info: info.chan_info.clone(),
    }
}

/// The client-facing form of a publication (no `time`, no epoch: those are internal).
pub(crate) fn publication_to_proto(p: &Publication) -> proto::Publication {
    proto::Publication {
        data: p.data.clone(),
        info: p.info.as_ref().map(info_to_proto),
        offset: p.offset,
        tags: p.tags.clone(),
        key: p.key.clone(),
        removed: p.removed,
        ..Default::default()
    }
}
