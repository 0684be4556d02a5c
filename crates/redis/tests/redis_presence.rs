//! Redis presence against the presence conformance suite (entries expire here), plus
//! upstream's key layout.

mod support;

use gyre::{ClientInfo, PresenceManager};
use gyre_redis::{RedisConfig, RedisPresenceManager};
use gyre_testkit::presence_conformance;
use support::{MAIN_REDIS, cleanup, redis, unique_prefix};

presence_conformance! {
    engine: redis, clock: Real,
    basic: run,
    ttl: run,
}

#[tokio::test]
async fn redis_presence_key_layout() {
    let prefix = unique_prefix("presence");
    let pm = RedisPresenceManager::new(RedisConfig::new(MAIN_REDIS).prefix(&prefix))
        .await
        .unwrap();
    pm.add_presence("ch", "c1", ClientInfo::new("u1", "c1"))
        .await
        .unwrap();
    pm.add_presence("ch", "c3", ClientInfo::new("u2", "c3"))
        .await
        .unwrap();
    pm.remove_presence("ch", "c1", "u1").await.unwrap();

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
