//! [`RedisPresenceManager`]: presence sets in Redis, as upstream stores them.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use gyre::{
    BoxFuture, BrokerError, ClientInfo, EngineError, PresenceError, PresenceManager, PresenceStats,
};
use gyre_protocol::proto;
use prost::Message;
use redis::Value;

use crate::broker::{ttl_secs, value_bytes, value_string};
use crate::config::{RedisConfig, RedisEngineError};
use crate::keys::{Keys, consistent_index};
use crate::payload::{info_from_proto, info_to_proto};
use crate::scripts::{
    PRESENCE_ADD_SCRIPT, PRESENCE_GET_SCRIPT, PRESENCE_REMOVE_SCRIPT, PRESENCE_STATS_SCRIPT,
};
use crate::shard::Shard;

/// Presence in `<p>.presence.data.<channel>` (hash client id → protobuf `ClientInfo`)
/// and `<p>.presence.expire.<channel>` (zset client id → expire-at unix seconds). Entries
/// not refreshed within `presence_ttl` are dropped by the next read.
#[derive(Debug, Clone)]
pub struct RedisPresenceManager {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    shards: Vec<Arc<Shard>>,
    keys: Keys,
    ttl: Duration,
}

/// Unix time in seconds with millisecond decimals. Upstream scores are whole seconds;
/// zset scores are doubles, so fractional ones compare fine with them while sparing a
/// short TTL up to a second of rounding error.
fn unix_secs(plus: Duration) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        + plus;
    format!("{}.{:03}", now.as_secs(), now.subsec_millis())
}

pub(crate) fn presence_error(e: BrokerError) -> PresenceError {
    match e {
        BrokerError::Unavailable(engine) => PresenceError::Unavailable(engine),
        other => PresenceError::Unavailable(EngineError::new(other)),
    }
}

fn bad_reply(what: &str) -> PresenceError {
    EngineError::msg(format!("unexpected Redis reply: {what}")).into()
}

fn decode_info(v: Value) -> Result<ClientInfo, PresenceError> {
    let bytes = value_bytes(v).ok_or_else(|| bad_reply("presence info"))?;
    proto::ClientInfo::decode(bytes)
        .map(info_from_proto)
        .map_err(|e| EngineError::with_context("bad presence info", e).into())
}

impl RedisPresenceManager {
    /// Connects its own command connections.
    pub async fn new(config: RedisConfig) -> Result<Self, RedisEngineError> {
        let shards = Shard::connect_all(&config).await?;
        let keys = Keys::new(&config.prefix, config.is_cluster());
        Ok(Self::from_parts(shards, keys, config.presence_ttl))
    }

    pub(crate) fn from_parts(shards: Vec<Arc<Shard>>, keys: Keys, ttl: Duration) -> Self {
        RedisPresenceManager {
            inner: Arc::new(Inner { shards, keys, ttl }),
        }
    }
}

impl Inner {
    fn shard(&self, channel: &str) -> &Arc<Shard> {
        &self.shards[consistent_index(channel, self.shards.len())]
    }

    /// Runs a presence script on the channel's keys.
    async fn invoke(
        &self,
        channel: &str,
        script: &redis::Script,
        args: &[Vec<u8>],
    ) -> Result<Value, PresenceError> {
        let shard = self.shard(channel);
        let mut invocation = script.key(self.keys.presence_expire(channel));
        invocation.key(self.keys.presence_data(channel));
        for arg in args {
            invocation.arg(&arg[..]);
        }
        let mut conn = shard.conn();
        shard
            .exec(invocation.invoke_async(&mut conn))
            .await
            .map_err(presence_error)
    }

    async fn presence(&self, channel: &str) -> Result<HashMap<String, ClientInfo>, PresenceError> {
        let now = unix_secs(Duration::ZERO).into_bytes();
        let reply = self.invoke(channel, &PRESENCE_GET_SCRIPT, &[now]).await?;
        let Value::Array(items) = reply else {
            return Err(bad_reply("presence"));
        };
        let mut out = HashMap::with_capacity(items.len() / 2);
        let mut it = items.into_iter();
        while let (Some(k), Some(v)) = (it.next(), it.next()) {
            let client = value_string(&k).ok_or_else(|| bad_reply("client id"))?;
            out.insert(client, decode_info(v)?);
        }
        Ok(out)
    }

    async fn stats(&self, channel: &str) -> Result<PresenceStats, PresenceError> {
        let now = unix_secs(Duration::ZERO).into_bytes();
        let reply = self.invoke(channel, &PRESENCE_STATS_SCRIPT, &[now]).await?;
        let Value::Array(items) = reply else {
            return Err(bad_reply("presence stats"));
        };
        let clients = items.len();
        let mut users = HashSet::new();
        for v in items {
            users.insert(decode_info(v)?.user);
        }
        Ok(PresenceStats {
            num_clients: u32::try_from(clients).unwrap_or(u32::MAX),
            num_users: u32::try_from(users.len()).unwrap_or(u32::MAX),
        })
    }

    async fn add(
        &self,
        channel: &str,
        client: &str,
        info: &ClientInfo,
    ) -> Result<(), PresenceError> {
        let ttl = ttl_secs(self.ttl);
        let args = [
            ttl.to_string().into_bytes(),
            unix_secs(self.ttl).into_bytes(),
            client.as_bytes().to_vec(),
            info_to_proto(info).encode_to_vec(),
        ];
        self.invoke(channel, &PRESENCE_ADD_SCRIPT, &args).await?;
        Ok(())
    }

    async fn remove(&self, channel: &str, client: &str) -> Result<(), PresenceError> {
        self.invoke(
            channel,
            &PRESENCE_REMOVE_SCRIPT,
            &[client.as_bytes().to_vec()],
        )
        .await?;
        Ok(())
    }
}

impl PresenceManager for RedisPresenceManager {
    fn presence(
        &self,
        channel: &str,
    ) -> BoxFuture<'_, Result<HashMap<String, ClientInfo>, PresenceError>> {
        let channel = channel.to_owned();
        Box::pin(async move { self.inner.presence(&channel).await })
    }

    fn presence_stats(&self, channel: &str) -> BoxFuture<'_, Result<PresenceStats, PresenceError>> {
        let channel = channel.to_owned();
        Box::pin(async move { self.inner.stats(&channel).await })
    }

    fn add_presence(
        &self,
        channel: &str,
        client_id: &str,
        info: ClientInfo,
    ) -> BoxFuture<'_, Result<(), PresenceError>> {
        let channel = channel.to_owned();
        let client = client_id.to_owned();
        Box::pin(async move { self.inner.add(&channel, &client, &info).await })
    }

    fn remove_presence(
        &self,
        channel: &str,
        client_id: &str,
        _user: &str,
    ) -> BoxFuture<'_, Result<(), PresenceError>> {
        // The user only matters for upstream's optional user mapping, not kept here.
        let channel = channel.to_owned();
        let client = client_id.to_owned();
        Box::pin(async move { self.inner.remove(&channel, &client).await })
    }
}
