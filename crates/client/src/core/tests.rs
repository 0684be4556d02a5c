//! The core driven in memory: scripted server frames in, exact frames and events out.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use gyre_protocol::{Disconnect, Protocol, Unsubscribe, decode_commands, encode_reply, proto};

use super::*;

fn config(protocol: Protocol) -> CoreConfig {
    CoreConfig {
        protocol,
        token: "t".into(),
        name: "rust".into(),
        ..Default::default()
    }
}

fn drain(core: &mut ClientCore) -> Vec<Output> {
    std::iter::from_fn(|| core.poll_output()).collect()
}

fn transmits(outputs: &[Output]) -> Vec<Bytes> {
    outputs
        .iter()
        .filter_map(|o| match o {
            Output::Transmit(b) => Some(b.clone()),
            _ => None,
        })
        .collect()
}

fn events(outputs: &[Output]) -> Vec<ClientEvent> {
    outputs
        .iter()
        .filter_map(|o| match o {
            Output::Event(e) => Some(e.clone()),
            _ => None,
        })
        .collect()
}

fn sub_events(outputs: &[Output], channel: &str) -> Vec<SubscriptionEvent> {
    outputs
        .iter()
        .filter_map(|o| match o {
            Output::SubEvent { channel: c, event } if c == channel => Some(event.clone()),
            _ => None,
        })
        .collect()
}

/// Decodes the one frame the outputs must contain.
fn single_frame(protocol: Protocol, outputs: &[Output]) -> Vec<proto::Command> {
    let frames = transmits(outputs);
    assert_eq!(frames.len(), 1, "expected exactly one frame in {outputs:?}");
    decode_commands(protocol, frames[0].clone())
        .collect::<Result<_, _>>()
        .unwrap()
}

/// Encodes server replies into one frame.
fn frame(protocol: Protocol, replies: &[proto::Reply]) -> Bytes {
    let mut out = BytesMut::new();
    for (i, r) in replies.iter().enumerate() {
        if i > 0 {
            out.extend_from_slice(protocol.frame_separator());
        }
        encode_reply(protocol, r, &mut out).unwrap();
    }
    out.freeze()
}

fn connect_reply(id: u32, result: proto::ConnectResult) -> proto::Reply {
    proto::Reply {
        id,
        connect: Some(result),
        ..Default::default()
    }
}

fn subscribe_reply(id: u32, result: proto::SubscribeResult) -> proto::Reply {
    proto::Reply {
        id,
        subscribe: Some(result),
        ..Default::default()
    }
}

fn error_reply(id: u32, e: gyre_protocol::Error) -> proto::Reply {
    proto::Reply {
        id,
        error: Some(e.to_proto()),
        ..Default::default()
    }
}

fn push(channel: &str, f: impl FnOnce(&mut proto::Push)) -> proto::Reply {
    let mut p = proto::Push {
        channel: channel.into(),
        ..Default::default()
    };
    f(&mut p);
    proto::Reply {
        push: Some(p),
        ..Default::default()
    }
}

fn publication(offset: u64, data: &str) -> proto::Publication {
    proto::Publication {
        data: Bytes::copy_from_slice(data.as_bytes()),
        offset,
        ..Default::default()
    }
}

fn ping_result() -> proto::ConnectResult {
    proto::ConnectResult {
        client: "c1".into(),
        version: "v".into(),
        ping: 25,
        pong: true,
        ..Default::default()
    }
}

/// connect → open → connect reply; returns the outputs after the reply.
fn connect(core: &mut ClientCore, now: Instant, result: proto::ConnectResult) -> Vec<Output> {
    core.connect(now);
    let out = drain(core);
    assert!(out.contains(&Output::OpenTransport), "{out:?}");
    core.transport_opened(now);
    let out = drain(core);
    let cmds = single_frame(core.cfg.protocol, &out);
    assert!(cmds[0].connect.is_some());
    core.frame_received(
        now,
        frame(core.cfg.protocol, &[connect_reply(cmds[0].id, result)]),
    );
    drain(core)
}

/// Lets the reconnect timer fire and opens the transport; returns the frame written.
fn reconnect(core: &mut ClientCore, now: Instant) -> (Instant, Vec<proto::Command>) {
    let at = core.poll_timeout().expect("reconnect scheduled");
    core.handle_timeout(at);
    assert_eq!(drain(core), vec![Output::OpenTransport]);
    core.transport_opened(at);
    let cmds = single_frame(core.cfg.protocol, &drain(core));
    assert!(at >= now);
    (at, cmds)
}

fn subscribed(
    core: &mut ClientCore,
    now: Instant,
    channel: &str,
    opts: SubOptions,
    result: proto::SubscribeResult,
) -> Vec<Output> {
    core.new_subscription(channel, opts).unwrap();
    core.subscribe(now, channel);
    let cmds = single_frame(core.cfg.protocol, &drain(core));
    let cmd = &cmds[0];
    assert_eq!(cmd.subscribe.as_ref().unwrap().channel, channel);
    core.frame_received(
        now,
        frame(core.cfg.protocol, &[subscribe_reply(cmd.id, result)]),
    );
    drain(core)
}

#[test]
fn connect_and_subscribes_are_pipelined_in_one_json_frame() {
    let now = Instant::now();
    let mut core = ClientCore::new(config(Protocol::Json), now, 1);
    core.new_subscription("a", SubOptions::default()).unwrap();
    let recoverable = SubOptions {
        recoverable: true,
        positioned: true,
        ..Default::default()
    };
    core.new_subscription("b", recoverable).unwrap();
    core.subscribe(now, "a");
    core.subscribe(now, "b");
    // Not connected: subscribing, nothing written.
    let out = drain(&mut core);
    assert_eq!(
        sub_events(&out, "a"),
        [SubscriptionEvent::Subscribing(Unsubscribe::new(
            0,
            "subscribe called"
        ))]
    );
    assert!(transmits(&out).is_empty());

    core.connect(now);
    assert_eq!(
        drain(&mut core),
        [
            Output::Event(ClientEvent::Connecting(Disconnect::new(
                0,
                "connect called"
            ))),
            Output::OpenTransport
        ]
    );
    core.transport_opened(now);
    let out = drain(&mut core);
    assert_eq!(
        transmits(&out),
        [Bytes::from_static(
            b"{\"id\":1,\"connect\":{\"token\":\"t\",\"name\":\"rust\"}}\n\
              {\"id\":2,\"subscribe\":{\"channel\":\"a\"}}\n\
              {\"id\":3,\"subscribe\":{\"channel\":\"b\",\"positioned\":true,\"recoverable\":true}}"
        )]
    );

    let server = Bytes::from_static(
        b"{\"id\":1,\"connect\":{\"client\":\"c1\",\"version\":\"v\",\"ping\":25,\"pong\":true}}\n\
          {\"id\":2,\"subscribe\":{}}\n\
          {\"id\":3,\"subscribe\":{\"recoverable\":true,\"positioned\":true,\"epoch\":\"e\",\"offset\":4}}",
    );
    core.frame_received(now, server);
    let out = drain(&mut core);
    assert_eq!(core.state(), State::Connected);
    assert_eq!(
        events(&out),
        [ClientEvent::Connected {
            client: "c1".into(),
            version: "v".into(),
            data: Bytes::new()
        }]
    );
    assert!(matches!(
        &sub_events(&out, "a")[..],
        [SubscriptionEvent::Subscribed(_)]
    ));
    let [SubscriptionEvent::Subscribed(ctx)] = &sub_events(&out, "b")[..] else {
        panic!("{out:?}")
    };
    assert!(ctx.recoverable && ctx.positioned && !ctx.recovered);
    assert_eq!(
        ctx.stream_position,
        Some(StreamPosition {
            offset: 4,
            epoch: "e".into()
        })
    );
    assert!(transmits(&out).is_empty());
}

#[test]
fn connect_and_subscribes_are_pipelined_in_one_protobuf_frame() {
    let now = Instant::now();
    let mut core = ClientCore::new(config(Protocol::Protobuf), now, 1);
    core.new_subscription("a", SubOptions::default()).unwrap();
    core.subscribe(now, "a");
    core.connect(now);
    drain(&mut core);
    core.transport_opened(now);
    let out = drain(&mut core);
    let frames = transmits(&out);
    // Two varint-delimited records back to back in one binary frame.
    let mut expected = BytesMut::new();
    let connect = proto::Command {
        id: 1,
        connect: Some(proto::ConnectRequest {
            token: "t".into(),
            name: "rust".into(),
            ..Default::default()
        }),
        ..Default::default()
    };
    let subscribe = proto::Command {
        id: 2,
        subscribe: Some(proto::SubscribeRequest {
            channel: "a".into(),
            ..Default::default()
        }),
        ..Default::default()
    };
    encode_command(Protocol::Protobuf, &connect, &mut expected).unwrap();
    encode_command(Protocol::Protobuf, &subscribe, &mut expected).unwrap();
    assert_eq!(frames, [expected.freeze()]);
    let ids: Vec<u32> = decode_commands(Protocol::Protobuf, frames[0].clone())
        .map(|c| c.unwrap().id)
        .collect();
    assert_eq!(ids, [1, 2]);

    let reply = frame(
        Protocol::Protobuf,
        &[
            connect_reply(1, ping_result()),
            subscribe_reply(2, proto::SubscribeResult::default()),
        ],
    );
    core.frame_received(now, reply);
    let out = drain(&mut core);
    assert_eq!(core.state(), State::Connected);
    assert!(matches!(
        &sub_events(&out, "a")[..],
        [SubscriptionEvent::Subscribed(_)]
    ));
}

#[test]
fn server_ping_is_answered_with_pong_json_and_protobuf() {
    for (protocol, ping, pong) in [
        (Protocol::Json, &b"{}"[..], &b"{}"[..]),
        (Protocol::Protobuf, &[0u8][..], &[0u8][..]),
    ] {
        let now = Instant::now();
        let mut core = ClientCore::new(config(protocol), now, 1);
        connect(&mut core, now, ping_result());
        core.frame_received(now, Bytes::copy_from_slice(ping));
        assert_eq!(
            drain(&mut core),
            [Output::Transmit(Bytes::copy_from_slice(pong))],
            "{protocol:?}"
        );
    }
    // Without `pong: true` a ping is not answered.
    let now = Instant::now();
    let mut core = ClientCore::new(config(Protocol::Json), now, 1);
    let result = proto::ConnectResult {
        pong: false,
        ..ping_result()
    };
    connect(&mut core, now, result);
    core.frame_received(now, Bytes::from_static(b"{}"));
    assert_eq!(drain(&mut core), []);
}

#[test]
fn silence_longer_than_ping_plus_delay_reconnects() {
    let now = Instant::now();
    let mut core = ClientCore::new(config(Protocol::Json), now, 1);
    connect(&mut core, now, ping_result());
    assert_eq!(core.poll_timeout(), Some(now + Duration::from_secs(35)));
    // Any frame re-arms the check.
    let later = now + Duration::from_secs(20);
    core.frame_received(later, Bytes::from_static(b"{}"));
    drain(&mut core);
    assert_eq!(core.poll_timeout(), Some(later + Duration::from_secs(35)));
    let dead = later + Duration::from_secs(35);
    core.handle_timeout(dead);
    let out = drain(&mut core);
    assert_eq!(
        out,
        [
            Output::Event(ClientEvent::Connecting(Disconnect::new(2, "no ping"))),
            Output::CloseTransport
        ]
    );
    let next = core.poll_timeout().unwrap() - dead;
    assert!(next >= Duration::from_millis(500) && next <= Duration::from_secs(1));
}

#[test]
fn reconnect_backoff_stays_within_bounds_and_grows() {
    for seed in 0..20 {
        let now = Instant::now();
        let mut core = ClientCore::new(config(Protocol::Json), now, seed);
        core.connect(now);
        drain(&mut core);
        let mut t = now;
        let mut delays = Vec::new();
        for _ in 0..12 {
            // The dial fails.
            core.transport_closed(t, None);
            let out = drain(&mut core);
            assert!(
                out.contains(&Output::Event(ClientEvent::Error(ClientError::Transport(
                    "transport closed".into()
                ))))
            );
            let at = core.poll_timeout().unwrap();
            delays.push(at - t);
            core.handle_timeout(at);
            assert_eq!(drain(&mut core), [Output::OpenTransport]);
            t = at;
        }
        for (step, d) in delays.iter().enumerate() {
            let upper = Duration::from_millis((500 + 500u64 * (1 << step)).min(20_000));
            assert!(
                *d >= Duration::from_millis(500) && *d <= upper,
                "seed {seed} step {step}: {d:?} > {upper:?}"
            );
        }
    }
    // Jitter: different seeds give different delays.
    let firsts: std::collections::HashSet<Duration> = (0..20)
        .map(|seed| {
            let now = Instant::now();
            let mut core = ClientCore::new(config(Protocol::Json), now, seed);
            core.connect(now);
            core.transport_closed(now, None);
            core.poll_timeout().unwrap() - now
        })
        .collect();
    assert!(firsts.len() > 5, "{firsts:?}");
}

#[test]
fn terminal_close_codes_do_not_reconnect() {
    let now = Instant::now();
    let mut core = ClientCore::new(config(Protocol::Json), now, 1);
    connect(&mut core, now, proto::ConnectResult::default());
    core.transport_closed(now, Some((3501, "bad request".into())));
    assert_eq!(
        events(&drain(&mut core)),
        [ClientEvent::Disconnected(Disconnect::new(
            3501,
            "bad request"
        ))]
    );
    assert_eq!(core.state(), State::Disconnected);
    assert_eq!(core.poll_timeout(), None);

    for code in [3500u16, 3999, 4500, 4999] {
        let mut core = ClientCore::new(config(Protocol::Json), now, 1);
        connect(&mut core, now, proto::ConnectResult::default());
        core.transport_closed(now, Some((code, "x".into())));
        assert_eq!(core.state(), State::Disconnected, "{code}");
    }
    for code in [3000u16, 3011, 3499, 4000, 4499, 5000] {
        let mut core = ClientCore::new(config(Protocol::Json), now, 1);
        connect(&mut core, now, proto::ConnectResult::default());
        core.transport_closed(now, Some((code, "x".into())));
        assert_eq!(core.state(), State::Connecting, "{code}");
        assert!(core.poll_timeout().is_some());
    }
    // A disconnect push follows the same rule.
    let mut core = ClientCore::new(config(Protocol::Json), now, 1);
    connect(&mut core, now, proto::ConnectResult::default());
    let d = push("", |p| {
        p.disconnect = Some(Disconnect::FORCE_NO_RECONNECT.to_proto())
    });
    core.frame_received(now, frame(Protocol::Json, &[d]));
    let out = drain(&mut core);
    assert!(out.contains(&Output::CloseTransport));
    assert_eq!(
        events(&out),
        [ClientEvent::Disconnected(Disconnect::new(
            3503,
            "force disconnect"
        ))]
    );
}

#[test]
fn connect_errors_retry_only_when_temporary_or_token_expired() {
    let now = Instant::now();
    let cases = [
        (gyre_protocol::Error::PERMISSION_DENIED, State::Disconnected),
        (gyre_protocol::Error::INTERNAL, State::Connecting),
        (gyre_protocol::Error::new(50, "low"), State::Connecting),
        (gyre_protocol::Error::TOKEN_EXPIRED, State::Connecting),
    ];
    for (error, state) in cases {
        let mut core = ClientCore::new(
            CoreConfig {
                has_get_token: true,
                ..config(Protocol::Json)
            },
            now,
            1,
        );
        core.connect(now);
        drain(&mut core);
        core.transport_opened(now);
        drain(&mut core);
        core.frame_received(now, frame(Protocol::Json, &[error_reply(1, error.clone())]));
        let out = drain(&mut core);
        assert_eq!(core.state(), state, "{error:?}");
        assert!(out.contains(&Output::CloseTransport));
        if state == State::Connecting {
            // 109: the next attempt first asks for a fresh token.
            let at = core.poll_timeout().unwrap();
            core.handle_timeout(at);
            let expected = if error.code == 109 {
                Output::GetToken
            } else {
                Output::OpenTransport
            };
            assert_eq!(drain(&mut core), [expected]);
        }
    }
}

#[test]
fn get_token_before_first_connect_and_unauthorized_stops() {
    let now = Instant::now();
    let cfg = CoreConfig {
        token: String::new(),
        has_get_token: true,
        ..config(Protocol::Json)
    };
    let mut core = ClientCore::new(cfg.clone(), now, 1);
    core.connect(now);
    assert_eq!(drain(&mut core).last(), Some(&Output::GetToken));
    core.token_result(now, Ok("fresh".into()));
    assert_eq!(drain(&mut core), [Output::OpenTransport]);
    core.transport_opened(now);
    let cmds = single_frame(Protocol::Json, &drain(&mut core));
    assert_eq!(cmds[0].connect.as_ref().unwrap().token, "fresh");

    let mut core = ClientCore::new(cfg, now, 1);
    core.connect(now);
    drain(&mut core);
    core.token_result(now, Err(TokenError::Unauthorized));
    assert_eq!(
        events(&drain(&mut core)),
        [ClientEvent::Disconnected(Disconnect::new(
            1,
            "unauthorized"
        ))]
    );
}

#[test]
fn connect_expiry_schedules_refresh_command() {
    let now = Instant::now();
    let mut core = ClientCore::new(
        CoreConfig {
            has_get_token: true,
            ..config(Protocol::Json)
        },
        now,
        1,
    );
    let result = proto::ConnectResult {
        client: "c1".into(),
        expires: true,
        ttl: 60,
        ..Default::default()
    };
    connect(&mut core, now, result);
    let at = now + Duration::from_secs(60);
    assert_eq!(core.poll_timeout(), Some(at));
    core.handle_timeout(at);
    assert_eq!(drain(&mut core), [Output::GetToken]);
    core.token_result(at, Ok("t2".into()));
    assert_eq!(
        transmits(&drain(&mut core)),
        [Bytes::from_static(
            b"{\"id\":2,\"refresh\":{\"token\":\"t2\"}}"
        )]
    );
    core.frame_received(
        at,
        Bytes::from_static(b"{\"id\":2,\"refresh\":{\"expires\":true,\"ttl\":120}}"),
    );
    drain(&mut core);
    assert_eq!(core.poll_timeout(), Some(at + Duration::from_secs(120)));

    // A permanent refresh error disconnects with its code.
    let at2 = at + Duration::from_secs(120);
    core.handle_timeout(at2);
    drain(&mut core);
    core.token_result(at2, Ok("t3".into()));
    drain(&mut core);
    core.frame_received(
        at2,
        frame(
            Protocol::Json,
            &[error_reply(3, gyre_protocol::Error::EXPIRED)],
        ),
    );
    assert_eq!(
        events(&drain(&mut core)),
        [ClientEvent::Disconnected(Disconnect::new(110, "expired"))]
    );
}

#[test]
fn resubscribe_after_disconnect_recovers_from_tracked_position() {
    for protocol in [Protocol::Json, Protocol::Protobuf] {
        let now = Instant::now();
        let mut core = ClientCore::new(config(protocol), now, 1);
        connect(&mut core, now, ping_result());
        let opts = SubOptions {
            recoverable: true,
            positioned: true,
            ..Default::default()
        };
        let result = proto::SubscribeResult {
            recoverable: true,
            positioned: true,
            epoch: "e1".into(),
            offset: 5,
            ..Default::default()
        };
        subscribed(&mut core, now, "news", opts, result);
        let pubs = [6, 7].map(|o| push("news", |p| p.r#pub = Some(publication(o, "{}"))));
        core.frame_received(now, frame(protocol, &pubs));
        assert_eq!(sub_events(&drain(&mut core), "news").len(), 2);

        core.transport_closed(now, Some((3011, "force reconnect".into())));
        let out = drain(&mut core);
        assert_eq!(
            sub_events(&out, "news"),
            [SubscriptionEvent::Subscribing(Unsubscribe::new(
                1,
                "transport closed"
            ))]
        );
        assert_eq!(
            events(&out),
            [ClientEvent::Connecting(Disconnect::new(
                3011,
                "force reconnect"
            ))]
        );
        let (at, cmds) = reconnect(&mut core, now);
        assert_eq!(cmds.len(), 2);
        let sub = cmds[1].subscribe.clone().unwrap();
        assert_eq!(
            sub,
            proto::SubscribeRequest {
                channel: "news".into(),
                recover: true,
                epoch: "e1".into(),
                offset: 7,
                positioned: true,
                recoverable: true,
                ..Default::default()
            },
            "{protocol:?}"
        );
        if protocol == Protocol::Json {
            let mut raw = BytesMut::new();
            encode_command(protocol, &cmds[1], &mut raw).unwrap();
            assert_eq!(
                &raw[..],
                b"{\"id\":2,\"subscribe\":{\"channel\":\"news\",\"recover\":true,\"epoch\":\"e1\",\"offset\":7,\"positioned\":true,\"recoverable\":true}}"
            );
        }
        let recovered = proto::SubscribeResult {
            recoverable: true,
            positioned: true,
            epoch: "e1".into(),
            offset: 7,
            recovered: true,
            was_recovering: true,
            publications: vec![publication(8, "{\"n\":8}")],
            ..Default::default()
        };
        core.frame_received(
            at,
            frame(
                protocol,
                &[
                    connect_reply(1, ping_result()),
                    subscribe_reply(2, recovered),
                ],
            ),
        );
        let events = sub_events(&drain(&mut core), "news");
        let [
            SubscriptionEvent::Subscribed(ctx),
            SubscriptionEvent::Publication(p),
        ] = &events[..]
        else {
            panic!("{events:?}")
        };
        assert!(ctx.recovered && ctx.was_recovering);
        assert_eq!(p.offset, 8);
        assert_eq!(&p.data[..], b"{\"n\":8}");
    }
}

#[test]
fn unsubscribe_push_2500_resubscribes_and_2000_unsubscribes() {
    let now = Instant::now();
    let mut core = ClientCore::new(config(Protocol::Json), now, 1);
    connect(&mut core, now, ping_result());
    subscribed(
        &mut core,
        now,
        "a",
        SubOptions::default(),
        Default::default(),
    );

    let p = push("a", |p| {
        p.unsubscribe = Some(Unsubscribe::INSUFFICIENT_STATE.to_proto())
    });
    core.frame_received(now, frame(Protocol::Json, &[p]));
    let out = drain(&mut core);
    assert_eq!(
        sub_events(&out, "a"),
        [SubscriptionEvent::Subscribing(Unsubscribe::new(
            2500,
            "insufficient state"
        ))]
    );
    assert_eq!(
        transmits(&out),
        [Bytes::from_static(
            b"{\"id\":3,\"subscribe\":{\"channel\":\"a\"}}"
        )]
    );
    core.frame_received(now, Bytes::from_static(b"{\"id\":3,\"subscribe\":{}}"));
    assert!(matches!(
        &sub_events(&drain(&mut core), "a")[..],
        [SubscriptionEvent::Subscribed(_)]
    ));

    let p = push("a", |p| {
        p.unsubscribe = Some(Unsubscribe::SERVER.to_proto())
    });
    core.frame_received(now, frame(Protocol::Json, &[p]));
    let out = drain(&mut core);
    assert_eq!(
        sub_events(&out, "a"),
        [SubscriptionEvent::Unsubscribed(Unsubscribe::new(
            2000,
            "server unsubscribe"
        ))]
    );
    assert!(transmits(&out).is_empty());
    // Publications for an unsubscribed channel are dropped.
    let p = push("a", |p| p.r#pub = Some(publication(0, "{}")));
    core.frame_received(now, frame(Protocol::Json, &[p]));
    assert_eq!(drain(&mut core), []);
}

#[test]
fn subscribe_error_109_refreshes_the_subscription_token() {
    let now = Instant::now();
    let mut core = ClientCore::new(config(Protocol::Json), now, 1);
    connect(&mut core, now, proto::ConnectResult::default());
    let opts = SubOptions {
        token: "old".into(),
        has_get_token: true,
        ..Default::default()
    };
    core.new_subscription("$private", opts).unwrap();
    core.subscribe(now, "$private");
    assert_eq!(
        transmits(&drain(&mut core)),
        [Bytes::from_static(
            b"{\"id\":2,\"subscribe\":{\"channel\":\"$private\",\"token\":\"old\"}}"
        )]
    );
    core.frame_received(
        now,
        frame(
            Protocol::Json,
            &[error_reply(2, gyre_protocol::Error::TOKEN_EXPIRED)],
        ),
    );
    let out = drain(&mut core);
    assert_eq!(
        sub_events(&out, "$private"),
        [SubscriptionEvent::Error(ClientError::Server(
            gyre_protocol::Error::TOKEN_EXPIRED
        ))]
    );
    let at = core.poll_timeout().unwrap();
    assert!(at - now >= Duration::from_millis(500) && at - now <= Duration::from_secs(1));
    core.handle_timeout(at);
    assert_eq!(drain(&mut core), [Output::GetSubToken("$private".into())]);
    core.sub_token_result(at, "$private", Ok("new".into()));
    assert_eq!(
        transmits(&drain(&mut core)),
        [Bytes::from_static(
            b"{\"id\":3,\"subscribe\":{\"channel\":\"$private\",\"token\":\"new\"}}"
        )]
    );
    // A non-retryable error ends the subscription.
    core.frame_received(
        at,
        frame(
            Protocol::Json,
            &[error_reply(3, gyre_protocol::Error::PERMISSION_DENIED)],
        ),
    );
    assert_eq!(
        sub_events(&drain(&mut core), "$private"),
        [SubscriptionEvent::Unsubscribed(Unsubscribe::new(
            103,
            "permission denied"
        ))]
    );
}

#[test]
fn subscription_expiry_sends_sub_refresh() {
    let now = Instant::now();
    let mut core = ClientCore::new(config(Protocol::Json), now, 1);
    connect(&mut core, now, proto::ConnectResult::default());
    let opts = SubOptions {
        token: "s1".into(),
        has_get_token: true,
        ..Default::default()
    };
    let result = proto::SubscribeResult {
        expires: true,
        ttl: 30,
        ..Default::default()
    };
    subscribed(&mut core, now, "a", opts, result);
    let at = now + Duration::from_secs(30);
    assert_eq!(core.poll_timeout(), Some(at));
    core.handle_timeout(at);
    assert_eq!(drain(&mut core), [Output::GetSubToken("a".into())]);
    core.sub_token_result(at, "a", Ok("s2".into()));
    assert_eq!(
        transmits(&drain(&mut core)),
        [Bytes::from_static(
            b"{\"id\":3,\"sub_refresh\":{\"channel\":\"a\",\"token\":\"s2\"}}"
        )]
    );
}

#[test]
fn server_side_subscriptions_are_resumed_through_connect_subs() {
    for protocol in [Protocol::Json, Protocol::Protobuf] {
        let now = Instant::now();
        let mut core = ClientCore::new(config(protocol), now, 1);
        let mut result = ping_result();
        result.subs.insert(
            "news".into(),
            proto::SubscribeResult {
                recoverable: true,
                positioned: true,
                epoch: "x".into(),
                offset: 3,
                ..Default::default()
            },
        );
        result
            .subs
            .insert("plain".into(), proto::SubscribeResult::default());
        let out = connect(&mut core, now, result);
        let subscribed: Vec<_> = events(&out)
            .into_iter()
            .filter_map(|e| match e {
                ClientEvent::ServerSubscribed(ctx) => Some(ctx.channel),
                _ => None,
            })
            .collect();
        assert_eq!(subscribed, ["news", "plain"]);

        let p = push("news", |p| p.r#pub = Some(publication(4, "{\"n\":4}")));
        core.frame_received(now, frame(protocol, &[p]));
        let out = drain(&mut core);
        let [
            ClientEvent::ServerPublication {
                channel,
                publication: p,
            },
        ] = &events(&out)[..]
        else {
            panic!("{out:?}")
        };
        assert_eq!((channel.as_str(), p.offset), ("news", 4));

        // A runtime `subscribe` push adds one more, `unsubscribe` removes it.
        let p = push("extra", |p| p.subscribe = Some(proto::Subscribe::default()));
        core.frame_received(now, frame(protocol, &[p]));
        assert!(matches!(
            &events(&drain(&mut core))[..],
            [ClientEvent::ServerSubscribed(c)] if c.channel == "extra"
        ));
        let p = push("extra", |p| {
            p.unsubscribe = Some(Unsubscribe::SERVER.to_proto())
        });
        core.frame_received(now, frame(protocol, &[p]));
        assert_eq!(
            events(&drain(&mut core)),
            [ClientEvent::ServerUnsubscribed {
                channel: "extra".into()
            }]
        );

        core.transport_closed(now, Some((3001, "shutdown".into())));
        let out = events(&drain(&mut core));
        assert!(out.contains(&ClientEvent::ServerSubscribing {
            channel: "news".into()
        }));
        let (at, cmds) = reconnect(&mut core, now);
        let connect_req = cmds[0].connect.clone().unwrap();
        // Only the recoverable one, from the last seen position.
        assert_eq!(
            connect_req.subs,
            HashMap::from([(
                "news".to_owned(),
                proto::SubscribeRequest {
                    recover: true,
                    epoch: "x".into(),
                    offset: 4,
                    ..Default::default()
                }
            )])
        );
        let mut result = ping_result();
        result.subs.insert(
            "news".into(),
            proto::SubscribeResult {
                recoverable: true,
                positioned: true,
                epoch: "x".into(),
                offset: 4,
                recovered: true,
                was_recovering: true,
                publications: vec![publication(5, "{\"n\":5}")],
                ..Default::default()
            },
        );
        core.frame_received(at, frame(protocol, &[connect_reply(1, result)]));
        let out = events(&drain(&mut core));
        let [
            ClientEvent::Connected { .. },
            ClientEvent::ServerSubscribed(ctx),
            ClientEvent::ServerPublication { publication: p, .. },
            ClientEvent::ServerUnsubscribed { channel },
        ] = &out[..]
        else {
            panic!("{out:?}")
        };
        assert!(ctx.recovered && ctx.was_recovering);
        assert_eq!(p.offset, 5);
        // "plain" was not in the new connect result.
        assert_eq!(channel, "plain");
    }
}

#[test]
fn replies_are_matched_by_id_across_interleaved_pushes() {
    for protocol in [Protocol::Json, Protocol::Protobuf] {
        let now = Instant::now();
        let mut core = ClientCore::new(config(protocol), now, 1);
        connect(&mut core, now, ping_result());
        subscribed(
            &mut core,
            now,
            "a",
            SubOptions::default(),
            Default::default(),
        );
        core.call(
            now,
            10,
            Request::Rpc {
                method: "echo".into(),
                data: Bytes::from_static(b"{\"x\":1}"),
            },
        );
        core.call(
            now,
            11,
            Request::PresenceStats {
                channel: "a".into(),
            },
        );
        core.call(
            now,
            12,
            Request::Send {
                data: Bytes::from_static(b"{}"),
            },
        );
        let out = drain(&mut core);
        // `send` has no id and no reply: done as soon as it is written.
        assert!(out.contains(&Output::CallDone {
            call: 12,
            result: Ok(CallReply::Done)
        }));
        // One frame per input: rpc (id 3), presence_stats (id 4), send (no id).
        let cmds: Vec<proto::Command> = transmits(&out)
            .into_iter()
            .flat_map(|f| decode_commands(protocol, f).map(Result::unwrap))
            .collect();
        assert_eq!(cmds.len(), 3);
        assert_eq!(
            (cmds[0].id, cmds[0].rpc.as_ref().unwrap().method.as_str()),
            (3, "echo")
        );
        assert_eq!(cmds[1].id, 4);
        assert_eq!(cmds[1].presence_stats.as_ref().unwrap().channel, "a");
        assert_eq!(cmds[2].id, 0);
        assert_eq!(&cmds[2].send.as_ref().unwrap().data[..], b"{}");

        let replies = [
            proto::Reply {
                id: 4,
                presence_stats: Some(proto::PresenceStatsResult {
                    num_clients: 2,
                    num_users: 1,
                }),
                ..Default::default()
            },
            push("a", |p| p.r#pub = Some(publication(0, "{\"p\":1}"))),
            push("", |p| {
                p.message = Some(proto::Message {
                    data: Bytes::from_static(b"{\"m\":1}"),
                })
            }),
            proto::Reply {
                id: 3,
                rpc: Some(proto::RpcResult {
                    data: Bytes::from_static(b"{\"x\":1}"),
                }),
                ..Default::default()
            },
        ];
        core.frame_received(now, frame(protocol, &replies));
        let out = drain(&mut core);
        let kinds: Vec<String> = out
            .iter()
            .map(|o| match o {
                Output::CallDone { call, result } => format!("call {call} {result:?}"),
                Output::SubEvent { channel, event } => format!("sub {channel} {event:?}"),
                Output::Event(e) => format!("event {e:?}"),
                other => format!("{other:?}"),
            })
            .collect();
        assert_eq!(out.len(), 4, "{kinds:?}");
        assert_eq!(
            out[0],
            Output::CallDone {
                call: 11,
                result: Ok(CallReply::PresenceStats(PresenceStats {
                    num_clients: 2,
                    num_users: 1
                }))
            }
        );
        assert!(
            matches!(&out[1], Output::SubEvent { event: SubscriptionEvent::Publication(p), .. } if &p.data[..] == b"{\"p\":1}")
        );
        assert_eq!(
            out[2],
            Output::Event(ClientEvent::Message(Bytes::from_static(b"{\"m\":1}")))
        );
        assert_eq!(
            out[3],
            Output::CallDone {
                call: 10,
                result: Ok(CallReply::Rpc(Bytes::from_static(b"{\"x\":1}")))
            }
        );
        // An unknown id is ignored.
        core.frame_received(
            now,
            frame(protocol, &[error_reply(99, gyre_protocol::Error::INTERNAL)]),
        );
        assert_eq!(drain(&mut core), []);
    }
}

#[test]
fn calls_wait_for_connection_and_fail_on_timeout_or_disconnect() {
    let now = Instant::now();
    let mut core = ClientCore::new(config(Protocol::Json), now, 1);
    // Disconnected: fails at once.
    core.call(
        now,
        1,
        Request::Presence {
            channel: "a".into(),
        },
    );
    assert_eq!(
        drain(&mut core),
        [Output::CallDone {
            call: 1,
            result: Err(ClientError::Disconnected)
        }]
    );
    // Connecting: queued, written right after the connect reply.
    core.connect(now);
    drain(&mut core);
    core.call(
        now,
        2,
        Request::Publish {
            channel: "a".into(),
            data: Bytes::from_static(b"{}"),
        },
    );
    assert_eq!(drain(&mut core), []);
    core.transport_opened(now);
    drain(&mut core);
    core.frame_received(
        now,
        frame(Protocol::Json, &[connect_reply(1, ping_result())]),
    );
    let out = drain(&mut core);
    assert_eq!(
        transmits(&out),
        [Bytes::from_static(
            b"{\"id\":2,\"publish\":{\"channel\":\"a\",\"data\":{}}}"
        )]
    );
    // No reply within the timeout.
    let at = now + Duration::from_secs(5);
    assert_eq!(core.poll_timeout(), Some(at));
    core.handle_timeout(at);
    assert_eq!(
        drain(&mut core),
        [Output::CallDone {
            call: 2,
            result: Err(ClientError::Timeout)
        }]
    );
    // In flight when the connection closes.
    core.call(
        at,
        3,
        Request::Rpc {
            method: "m".into(),
            data: Bytes::from_static(b"{}"),
        },
    );
    drain(&mut core);
    core.disconnect(at);
    let out = drain(&mut core);
    assert_eq!(
        out,
        [
            Output::CallDone {
                call: 3,
                result: Err(ClientError::ConnectionClosed)
            },
            Output::Event(ClientEvent::Disconnected(Disconnect::new(
                0,
                "disconnect called"
            ))),
            Output::CloseTransport
        ]
    );
    // Invalid JSON payload: typed encode error, nothing written.
    core.connect(at);
    drain(&mut core);
    core.transport_opened(at);
    drain(&mut core);
    core.frame_received(
        at,
        frame(Protocol::Json, &[connect_reply(1, ping_result())]),
    );
    drain(&mut core);
    core.call(
        at,
        4,
        Request::Publish {
            channel: "a".into(),
            data: Bytes::from_static(b"not json"),
        },
    );
    let out = drain(&mut core);
    assert!(matches!(
        &out[..],
        [Output::CallDone {
            call: 4,
            result: Err(ClientError::Encode(_))
        }]
    ));
}

#[test]
fn unsubscribe_sends_command_and_stops_resubscribing() {
    let now = Instant::now();
    let mut core = ClientCore::new(config(Protocol::Json), now, 1);
    connect(&mut core, now, ping_result());
    subscribed(
        &mut core,
        now,
        "a",
        SubOptions::default(),
        Default::default(),
    );
    core.unsubscribe(now, "a");
    let out = drain(&mut core);
    assert_eq!(
        transmits(&out),
        [Bytes::from_static(
            b"{\"id\":3,\"unsubscribe\":{\"channel\":\"a\"}}"
        )]
    );
    assert_eq!(
        sub_events(&out, "a"),
        [SubscriptionEvent::Unsubscribed(Unsubscribe::new(
            0,
            "unsubscribe called"
        ))]
    );
    core.frame_received(now, Bytes::from_static(b"{\"id\":3,\"unsubscribe\":{}}"));
    drain(&mut core);
    core.transport_closed(now, Some((3001, "shutdown".into())));
    drain(&mut core);
    let (_, cmds) = reconnect(&mut core, now);
    assert_eq!(cmds.len(), 1, "only connect: {cmds:?}");
    assert_eq!(
        core.new_subscription("a", SubOptions::default()),
        Err(ClientError::DuplicateSubscription("a".into()))
    );
}
