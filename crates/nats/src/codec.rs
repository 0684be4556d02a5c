//! What travels over NATS, as Centrifugo encodes it: every message on
//! `<prefix>.client.<channel>` is a protobuf `Push` carrying the channel and exactly one of
//! `pub`, `join` or `leave`. Pure functions, no I/O.

use std::collections::HashMap;

use bytes::Bytes;
use gyre::{ClientInfo, Publication, StreamPosition};
use gyre_protocol::proto;
use prost::Message;

/// Tag carrying a stream epoch alongside `Publication.offset`, set by Centrifugo nodes
/// that publish with an external stream position; stripped before delivery.
pub(crate) const EPOCH_TAG: &str = "__centrifugo_epoch";

/// A decoded message of a channel subject.
#[derive(Debug, PartialEq)]
pub(crate) enum Event {
    Publication {
        publication: Publication,
        position: StreamPosition,
        delta: bool,
    },
    Join(ClientInfo),
    Leave(ClientInfo),
}

/// Why a channel message could not be used.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum DecodeError {
    /// Not a protobuf `Push`.
    Malformed(String),
    /// A `Push` without `pub`, `join` or `leave`.
    Unknown,
}

pub(crate) fn encode_publication(
    channel: &str,
    data: Bytes,
    info: Option<&ClientInfo>,
    tags: HashMap<String, String>,
    delta: bool,
    time_ms: i64,
) -> Bytes {
    encode(proto::Push {
        channel: channel.to_owned(),
        r#pub: Some(proto::Publication {
            data,
            info: info.map(info_to_proto),
            tags,
            delta,
            time: time_ms,
            ..Default::default()
        }),
        ..Default::default()
    })
}

pub(crate) fn encode_join(channel: &str, info: &ClientInfo) -> Bytes {
    encode(proto::Push {
        channel: channel.to_owned(),
        join: Some(proto::Join {
            info: Some(info_to_proto(info)),
        }),
        ..Default::default()
    })
}

pub(crate) fn encode_leave(channel: &str, info: &ClientInfo) -> Bytes {
    encode(proto::Push {
        channel: channel.to_owned(),
        leave: Some(proto::Leave {
            info: Some(info_to_proto(info)),
        }),
        ..Default::default()
    })
}

/// Decodes a channel message into the push's channel and its event.
pub(crate) fn decode(data: &[u8]) -> Result<(String, Event), DecodeError> {
    let push = proto::Push::decode(data).map_err(|e| DecodeError::Malformed(e.to_string()))?;
    let event = if let Some(mut p) = push.r#pub {
        let mut position = StreamPosition::default();
        let epoch = p.tags.remove(EPOCH_TAG);
        if p.offset > 0
            && let Some(epoch) = epoch
        {
            position = StreamPosition::new(p.offset, epoch);
        }
        let mut publication = Publication::new(p.data);
        publication.offset = p.offset;
        publication.info = p.info.map(info_from_proto);
        publication.tags = p.tags;
        publication.time = p.time;
        Event::Publication {
            publication,
            position,
            delta: p.delta,
        }
    } else if let Some(join) = push.join {
        Event::Join(join.info.map(info_from_proto).unwrap_or_default())
    } else if let Some(leave) = push.leave {
        Event::Leave(leave.info.map(info_from_proto).unwrap_or_default())
    } else {
        return Err(DecodeError::Unknown);
    };
    Ok((push.channel, event))
}

fn encode(push: proto::Push) -> Bytes {
    Bytes::from(push.encode_to_vec())
}

fn info_to_proto(info: &ClientInfo) -> proto::ClientInfo {
    proto::ClientInfo {
        user: info.user.clone(),
        client: info.client.clone(),
        conn_info: info.conn_info.clone(),
        chan_info: info.chan_info.clone(),
    }
}

fn info_from_proto(info: proto::ClientInfo) -> ClientInfo {
    let mut out = ClientInfo::new(info.user, info.client);
    out.conn_info = info.conn_info;
    out.chan_info = info.chan_info;
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info() -> ClientInfo {
        let mut info = ClientInfo::new("u1", "c1");
        info.conn_info = Bytes::from_static(b"{\"a\":1}");
        info.chan_info = Bytes::from_static(b"{\"b\":2}");
        info
    }

    #[test]
    fn publication_round_trips_with_info_tags_delta_time() {
        let tags = HashMap::from([("k".to_owned(), "v".to_owned())]);
        let data = encode_publication(
            "ch",
            Bytes::from_static(b"x"),
            Some(&info()),
            tags.clone(),
            true,
            42,
        );
        let (channel, event) = decode(&data).unwrap();
        assert_eq!(channel, "ch");
        let mut expected = Publication::new(Bytes::from_static(b"x"));
        expected.info = Some(info());
        expected.tags = tags;
        expected.time = 42;
        assert_eq!(
            event,
            Event::Publication {
                publication: expected,
                position: StreamPosition::default(),
                delta: true
            }
        );
    }

    #[test]
    fn wire_format_is_a_centrifuge_push() {
        // Field numbers of centrifugal/protocol `Push`: channel = 2, pub = 4, join = 5, leave = 6.
        let data = encode_publication(
            "c",
            Bytes::from_static(b"d"),
            None,
            HashMap::new(),
            false,
            0,
        );
        assert_eq!(&data[..], &[0x12, 1, b'c', 0x22, 3, 0x22, 1, b'd']);
        let join = encode_join("c", &ClientInfo::new("", ""));
        assert_eq!(&join[..], &[0x12, 1, b'c', 0x2a, 2, 0x0a, 0]);
        let leave = encode_leave("c", &ClientInfo::new("", ""));
        assert_eq!(&leave[..], &[0x12, 1, b'c', 0x32, 2, 0x0a, 0]);
    }

    #[test]
    fn join_and_leave_round_trip() {
        assert_eq!(
            decode(&encode_join("ch", &info())).unwrap(),
            ("ch".into(), Event::Join(info()))
        );
        assert_eq!(
            decode(&encode_leave("ch", &info())).unwrap(),
            ("ch".into(), Event::Leave(info()))
        );
    }

    #[test]
    fn epoch_tag_gives_a_position_and_is_stripped() {
        let push = proto::Push {
            channel: "ch".into(),
            r#pub: Some(proto::Publication {
                offset: 7,
                tags: HashMap::from([
                    (EPOCH_TAG.to_owned(), "ep".to_owned()),
                    ("app".to_owned(), "1".to_owned()),
                ]),
                ..Default::default()
            }),
            ..Default::default()
        };
        let (_, event) = decode(&push.encode_to_vec()).unwrap();
        let Event::Publication {
            publication,
            position,
            ..
        } = event
        else {
            panic!("not a publication: {event:?}");
        };
        assert_eq!(position, StreamPosition::new(7, "ep"));
        assert_eq!(publication.offset, 7);
        assert_eq!(
            publication.tags,
            HashMap::from([("app".to_owned(), "1".to_owned())])
        );
    }

    #[test]
    fn garbage_and_empty_pushes_are_rejected() {
        assert!(matches!(
            decode(&[0xff, 0xff, 0xff]),
            Err(DecodeError::Malformed(_))
        ));
        let empty = proto::Push {
            channel: "ch".into(),
            ..Default::default()
        };
        assert_eq!(decode(&empty.encode_to_vec()), Err(DecodeError::Unknown));
    }
}
