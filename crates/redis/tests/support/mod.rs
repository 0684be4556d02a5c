//! Shared helpers of the Redis integration tests: the conformance suite's Redis engine,
//! unique prefixes and cleanup. Events are recorded with `gyre_testkit::Recorder`,
//! dedicated servers come from `gyre_testkit::redis_server`.

#![allow(dead_code, unreachable_pub)]

use std::time::Duration;

use std::sync::Arc;

use gyre::{BoxFuture, PresenceManager};
use gyre_redis::{RedisBroker, RedisConfig, RedisPresenceManager};
use gyre_testkit::conformance::{BrokerEngine, PresenceEngine, TestNode};

pub const MAIN_REDIS: &str = "redis://127.0.0.1:6379";

/// A prefix no other test (or run) uses, so tests can share the main Redis.
pub fn unique_prefix(test: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("gyretest.{test}.{}.{nanos}", std::process::id())
}

/// The conformance suite's view of Redis: every node and presence manager of one case
/// uses the case's own key prefix.
pub struct Redis {
    pub config: RedisConfig,
    /// Every server holding keys (each master of a cluster, each shard).
    servers: Vec<String>,
}

impl Redis {
    /// `config` with a prefix of its own for `test`; `servers` are where its keys may go.
    pub fn on(config: RedisConfig, servers: &[String], test: &str) -> Redis {
        Redis {
            config: config.prefix(unique_prefix(test)),
            servers: servers.to_vec(),
        }
    }

    async fn keys(&self) -> Vec<String> {
        let mut all = Vec::new();
        for url in &self.servers {
            all.extend(keys(url, &self.config.prefix).await);
        }
        all
    }

    async fn cleanup(&self) {
        for url in &self.servers {
            cleanup(url, &self.config.prefix).await;
        }
    }
}

/// Standalone Redis with the default (stream) history.
pub async fn redis(test: &str) -> Redis {
    Redis::on(RedisConfig::new(MAIN_REDIS), &[MAIN_REDIS.to_owned()], test)
}

/// Standalone Redis keeping history in lists instead of streams.
pub async fn redis_lists(test: &str) -> Redis {
    let mut engine = redis(test).await;
    engine.config.history_use_lists = true;
    engine
}

impl BrokerEngine for Redis {
    fn node(&self) -> BoxFuture<'_, Arc<TestNode>> {
        Box::pin(async {
            let broker = RedisBroker::new(self.config.clone()).await.unwrap();
            let closer = broker.clone();
            Arc::new(
                TestNode::start(Arc::new(broker))
                    .await
                    .on_drop(move || closer.close()),
            )
        })
    }

    fn assert_nothing_stored(&self) -> BoxFuture<'_, ()> {
        Box::pin(async {
            let keys = self.keys().await;
            assert!(keys.is_empty(), "{keys:?}");
        })
    }

    fn cleanup(&self) -> BoxFuture<'_, ()> {
        Box::pin(Redis::cleanup(self))
    }
}

impl PresenceEngine for Redis {
    fn presence(&self) -> BoxFuture<'_, Arc<dyn PresenceManager>> {
        self.presence_with_ttl(self.config.presence_ttl)
    }

    fn presence_with_ttl(&self, ttl: Duration) -> BoxFuture<'_, Arc<dyn PresenceManager>> {
        let mut config = self.config.clone();
        config.presence_ttl = ttl;
        Box::pin(async move {
            Arc::new(RedisPresenceManager::new(config).await.unwrap()) as Arc<dyn PresenceManager>
        })
    }

    fn cleanup(&self) -> BoxFuture<'_, ()> {
        Box::pin(Redis::cleanup(self))
    }
}

/// Every key under `prefix` on the server at `url` (none when it cannot be reached).
pub async fn keys(url: &str, prefix: &str) -> Vec<String> {
    let Ok(client) = redis::Client::open(url) else {
        return Vec::new();
    };
    let Ok(mut conn) = client.get_multiplexed_async_connection().await else {
        return Vec::new();
    };
    redis::cmd("KEYS")
        .arg(format!("{prefix}.*"))
        .query_async(&mut conn)
        .await
        .unwrap_or_default()
}

/// Deletes every key under `prefix` on the server at `url`.
pub async fn cleanup(url: &str, prefix: &str) {
    let Ok(client) = redis::Client::open(url) else {
        return;
    };
    let Ok(mut conn) = client.get_multiplexed_async_connection().await else {
        return;
    };
    for key in keys(url, prefix).await {
        let _: redis::RedisResult<i64> = redis::cmd("DEL").arg(key).query_async(&mut conn).await;
    }
}
