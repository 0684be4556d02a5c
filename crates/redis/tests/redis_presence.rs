//! Presence against the real Redis: add/refresh/remove, stats with user counting, TTL
//! expiry, and upstream's key layout.

mod support;

use std::time::Duration;

use bytes::Bytes;
use gyre::{ClientInfo, PresenceManager, PresenceStats};
use gyre_redis::{RedisConfig, RedisPresenceManager};
use support::{MAIN_REDIS, cleanup, unique_prefix};

#[tokio::test]
async fn redis_presence_add_remove_stats() {
    let prefix = unique_prefix("presence");
    let pm = RedisPresenceManager::new(RedisConfig::new(MAIN_REDIS).prefix(&prefix))
        .await
        .unwrap();
    assert!(pm.presence("ch").await.unwrap().is_empty());
    assert_eq!(
        pm.presence_stats("ch").await.unwrap(),
        PresenceStats::default()
    );

    let mut info = ClientInfo::new("u1", "c1");
    info.conn_info = Bytes::from_static(b"{\"name\":\"a\"}");
    pm.add_presence("ch", "c1", info.clone()).await.unwrap();
    pm.add_presence("ch", "c2", ClientInfo::new("u1", "c2"))
        .await
        .unwrap();
    pm.add_presence("ch", "c3", ClientInfo::new("u2", "c3"))
        .await
        .unwrap();
    // Refreshing an entry does not duplicate it.
    pm.add_presence("ch", "c1", info.clone()).await.unwrap();
    let p = pm.presence("ch").await.unwrap();
    assert_eq!(p.len(), 3);
    assert_eq!(p["c1"], info);
    assert_eq!(p["c3"], ClientInfo::new("u2", "c3"));
    let stats = pm.presence_stats("ch").await.unwrap();
    assert_eq!((stats.num_clients, stats.num_users), (3, 2));

    pm.remove_presence("ch", "c2", "u1").await.unwrap();
    pm.remove_presence("ch", "missing", "u9").await.unwrap();
    let stats = pm.presence_stats("ch").await.unwrap();
    assert_eq!((stats.num_clients, stats.num_users), (2, 2));
    pm.remove_presence("ch", "c1", "u1").await.unwrap();
    let stats = pm.presence_stats("ch").await.unwrap();
    assert_eq!((stats.num_clients, stats.num_users), (1, 1));
    // Other channels are separate.
    assert!(pm.presence("other").await.unwrap().is_empty());

    // Upstream layout: hash client → protobuf ClientInfo, zset client → expire-at.
    let client = redis::Client::open(MAIN_REDIS).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let fields: Vec<String> = redis::cmd("HKEYS")
        .arg(format!("{prefix}.presence.data.ch"))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(fields, vec!["c3".to_owned()]);
    let score: f64 = redis::cmd("ZSCORE")
        .arg(format!("{prefix}.presence.expire.ch"))
        .arg("c3")
        .query_async(&mut conn)
        .await
        .unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    assert!(
        (now + 55.0..now + 62.0).contains(&score),
        "expire-at {score}"
    );
    cleanup(MAIN_REDIS, &prefix).await;
}

#[tokio::test]
async fn redis_presence_entries_expire_without_refresh() {
    let prefix = unique_prefix("presencettl");
    let mut config = RedisConfig::new(MAIN_REDIS).prefix(&prefix);
    config.presence_ttl = Duration::from_secs(1);
    let pm = RedisPresenceManager::new(config).await.unwrap();
    pm.add_presence("ch", "old", ClientInfo::new("u1", "old"))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(700)).await;
    pm.add_presence("ch", "new", ClientInfo::new("u2", "new"))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(700)).await;
    // "old" is past its expire-at, "new" is not: the read purges only the stale entry.
    let p = pm.presence("ch").await.unwrap();
    assert_eq!(p.keys().collect::<Vec<_>>(), vec!["new"]);
    let stats = pm.presence_stats("ch").await.unwrap();
    assert_eq!((stats.num_clients, stats.num_users), (1, 1));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(pm.presence("ch").await.unwrap().is_empty());
    cleanup(MAIN_REDIS, &prefix).await;
}
