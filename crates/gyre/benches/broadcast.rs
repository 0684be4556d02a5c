//! Broadcast of one publication to 1,000 subscribers of one channel: the push is encoded
//! once per protocol and its bytes are queued 1,000 times.

use std::hint::black_box;

use bytes::Bytes;
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use gyre::{
    ConnectReply, Credentials, LocalConnection, Node, PublishOptions, SubscribeOptions,
    SubscribeReply,
};

const SUBSCRIBERS: usize = 1_000;

fn setup(rt: &tokio::runtime::Runtime, protobuf: bool) -> (Node, Vec<LocalConnection>) {
    rt.block_on(async {
        let node = Node::builder().build();
        node.on_connecting(|_| async { Ok(ConnectReply::new(Credentials::new(""))) });
        node.on_connect(|client| {
            client.on_subscribe(|_| async { Ok(SubscribeReply::new(SubscribeOptions::new())) });
        });
        node.run().await.expect("broker starts");
        let mut conns = Vec::with_capacity(SUBSCRIBERS);
        for _ in 0..SUBSCRIBERS {
            let conn = LocalConnection::open(&node, protobuf).expect("session");
            let frame = if protobuf {
                // connect{} and subscribe{channel:"bench"} as varint-delimited commands.
                Bytes::from_static(&[
                    4, 0x08, 1, 0x22, 0, 11, 0x08, 2, 0x2a, 7, 0x0a, 5, b'b', b'e', b'n', b'c',
                    b'h',
                ])
            } else {
                Bytes::from_static(
                    b"{\"id\":1,\"connect\":{}}\n{\"id\":2,\"subscribe\":{\"channel\":\"bench\"}}",
                )
            };
            conn.handle(frame).await.expect("connect and subscribe");
            let mut out = Vec::new();
            assert!(conn.drain(&mut out).is_none());
            assert_eq!(out.len(), 2, "connect and subscribe replies");
            conns.push(conn);
        }
        (node, conns)
    })
}

fn broadcast(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let payload = Bytes::from(format!(r#"{{"text":"{}"}}"#, "x".repeat(116)));
    let mut group = c.benchmark_group("broadcast_1000_subscribers");
    group.throughput(Throughput::Elements(SUBSCRIBERS as u64));
    for (name, protobuf) in [("json", false), ("protobuf", true)] {
        let (node, conns) = setup(&rt, protobuf);
        let mut out = Vec::with_capacity(16);
        group.bench_function(name, |b| {
            b.iter_batched(
                || payload.clone(),
                |data| {
                    rt.block_on(node.publish("bench", data, PublishOptions::new()))
                        .expect("publish");
                    // Empty the queues so every iteration measures the same work.
                    for conn in &conns {
                        out.clear();
                        black_box(conn.drain(&mut out));
                    }
                },
                BatchSize::SmallInput,
            )
        });
    }
    group.finish();
}

criterion_group!(benches, broadcast);
criterion_main!(benches);
