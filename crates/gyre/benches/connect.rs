//! The connect path inside the library: a session receives `connect` (and a pipelined
//! `subscribe`), runs the handlers, registers in the hub and queues its replies.

use std::hint::black_box;

use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use gyre::{
    ConnectReply, Credentials, Disconnect, LocalConnection, Node, SubscribeOptions, SubscribeReply,
};

fn connect(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let node = Node::builder().build();
    node.on_connecting(|e| async move { Ok(ConnectReply::new(Credentials::new(e.token))) });
    node.on_connect(|client| {
        client.on_subscribe(|_| async { Ok(SubscribeReply::new(SubscribeOptions::new())) });
    });
    rt.block_on(node.run()).expect("broker starts");

    let mut group = c.benchmark_group("connect");
    for (name, frame) in [
        ("connect", &b"{\"id\":1,\"connect\":{\"token\":\"42\",\"name\":\"js\"}}"[..]),
        (
            "connect_and_subscribe",
            &b"{\"id\":1,\"connect\":{\"token\":\"42\",\"name\":\"js\"}}\n{\"id\":2,\"subscribe\":{\"channel\":\"news\"}}"[..],
        ),
    ] {
        let frame = Bytes::from_static(frame);
        let mut out = Vec::with_capacity(4);
        group.bench_function(name, |b| {
            b.iter(|| {
                rt.block_on(async {
                    let conn = LocalConnection::open(&node, false).expect("session");
                    conn.handle(frame.clone()).await.expect("accepted");
                    out.clear();
                    black_box(conn.drain(&mut out));
                    // Leave the hub as it was so every iteration does the same work.
                    conn.close(Disconnect::CONNECTION_CLOSED).await;
                })
            })
        });
    }
    group.finish();
}

criterion_group!(benches, connect);
criterion_main!(benches);
