//! Presence conformance cases, in two groups:
//!
//! * `basic`: add, refresh, remove, read and count per channel;
//! * `ttl`: entries not refreshed within the TTL disappear.

use std::time::Duration;

use bytes::Bytes;
use gyre::{ClientInfo, PresenceStats};

use super::PresenceEngine;

fn info(user: &str, client: &str) -> ClientInfo {
    ClientInfo::new(user, client)
}

// ---- basic ----

/// Add, refresh, remove and count: users are counted once however many connections they
/// have (the anonymous user `""` too), refreshing replaces an entry, removing something
/// absent is harmless and channels are separate.
pub async fn presence_add_refresh_remove_and_stats(engine: &impl PresenceEngine) {
    let p = engine.presence().await;
    assert_eq!(
        p.presence_stats("ch").await.unwrap(),
        PresenceStats::default()
    );
    assert!(p.presence("ch").await.unwrap().is_empty());

    let mut first = info("alice", "c1");
    first.conn_info = Bytes::from_static(b"{\"name\":\"a\"}");
    p.add_presence("ch", "c1", first.clone()).await.unwrap();
    p.add_presence("ch", "c2", info("alice", "c2"))
        .await
        .unwrap();
    p.add_presence("ch", "c3", info("bob", "c3")).await.unwrap();
    // Refreshing an entry does not duplicate it.
    p.add_presence("ch", "c1", first.clone()).await.unwrap();
    let set = p.presence("ch").await.unwrap();
    assert_eq!(set.len(), 3);
    assert_eq!(set["c1"], first);
    assert_eq!(set["c3"], info("bob", "c3"));
    let stats = p.presence_stats("ch").await.unwrap();
    assert_eq!((stats.num_clients, stats.num_users), (3, 2));

    p.add_presence("ch", "c4", info("", "c4")).await.unwrap();
    p.add_presence("other", "c9", info("carol", "c9"))
        .await
        .unwrap();
    let stats = p.presence_stats("ch").await.unwrap();
    assert_eq!((stats.num_clients, stats.num_users), (4, 3));

    // Refreshing with new info replaces the entry and does not double count.
    let mut refreshed = info("alice", "c1");
    refreshed.conn_info = Bytes::from_static(b"{\"x\":1}");
    p.add_presence("ch", "c1", refreshed.clone()).await.unwrap();
    let set = p.presence("ch").await.unwrap();
    assert_eq!(set.len(), 4);
    assert_eq!(set["c1"], refreshed);

    p.remove_presence("ch", "c1", "alice").await.unwrap();
    let stats = p.presence_stats("ch").await.unwrap();
    assert_eq!((stats.num_clients, stats.num_users), (3, 3));
    p.remove_presence("ch", "c2", "alice").await.unwrap();
    let stats = p.presence_stats("ch").await.unwrap();
    assert_eq!((stats.num_clients, stats.num_users), (2, 2));

    // Removing something absent is harmless.
    p.remove_presence("ch", "nope", "x").await.unwrap();
    p.remove_presence("nope", "c1", "x").await.unwrap();
    let stats = p.presence_stats("ch").await.unwrap();
    assert_eq!((stats.num_clients, stats.num_users), (2, 2));

    p.remove_presence("ch", "c4", "").await.unwrap();
    let stats = p.presence_stats("ch").await.unwrap();
    assert_eq!((stats.num_clients, stats.num_users), (1, 1));
    p.remove_presence("ch", "c3", "bob").await.unwrap();
    assert!(p.presence("ch").await.unwrap().is_empty());
    // Other channels are untouched, and separate.
    assert_eq!(p.presence_stats("other").await.unwrap().num_clients, 1);
    assert!(p.presence("third").await.unwrap().is_empty());
    engine.cleanup().await;
}

// ---- ttl ----

/// An entry not refreshed within the TTL is dropped by the next read; a fresher one stays
/// until its own TTL passes.
pub async fn presence_entries_expire_without_refresh(engine: &impl PresenceEngine) {
    let p = engine.presence_with_ttl(Duration::from_secs(1)).await;
    p.add_presence("ch", "old", info("u1", "old"))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(700)).await;
    p.add_presence("ch", "new", info("u2", "new"))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(700)).await;
    // "old" is past its expire-at, "new" is not: the read purges only the stale entry.
    let set = p.presence("ch").await.unwrap();
    assert_eq!(set.keys().collect::<Vec<_>>(), vec!["new"]);
    let stats = p.presence_stats("ch").await.unwrap();
    assert_eq!((stats.num_clients, stats.num_users), (1, 1));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(p.presence("ch").await.unwrap().is_empty());
    engine.cleanup().await;
}

/// Runs the presence conformance suite for one engine, like
/// [`broker_conformance!`](crate::broker_conformance): groups `basic` and `ttl`.
#[macro_export]
macro_rules! presence_conformance {
    (
        engine: $engine:path, clock: $clock:ident,
        basic: $b:ident $($bw:literal)?,
        ttl: $t:ident $($tw:literal)? $(,)?
    ) => {
        mod presence_conformance {
            #[allow(unused_imports)]
            use super::*;
            $crate::__conformance_cases!(presence; ($b $($bw)?); $engine, $clock;
                presence_add_refresh_remove_and_stats,
            );
            $crate::__conformance_cases!(presence; ($t $($tw)?); $engine, $clock;
                presence_entries_expire_without_refresh,
            );
        }
    };
}
