//! The Lua scripts, one per operation so each runs atomically inside Redis. They read and
//! write the same keys and PUB/SUB payloads as upstream centrifuge's scripts (FEATURES
//! §11.1), so Go and Rust nodes can share streams; the code itself is ours.

use std::sync::LazyLock;

use redis::Script;

/// Appends to a history stream and publishes, atomically.
///
/// KEYS: stream, meta, result. ARGV: 1 publication, 2 max length, 3 stream TTL s,
/// 4 PUB/SUB channel ('' = do not publish), 5 meta TTL s ('0' = none), 6 epoch to use if
/// the meta is missing, 7 publish command, 8 result TTL s ('' = no idempotency key),
/// 9 use delta '1'/'0', 10 version ('0' = unversioned), 11 version epoch.
/// Returns {offset, epoch, from_cache '1'/'0', version_skipped '1'/'0'}.
const PUBLISH_STREAM: &str = r#"
local stream, meta, result = KEYS[1], KEYS[2], KEYS[3]
local body, maxlen, ttl, channel = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local meta_ttl, fresh_epoch, publish_cmd, result_ttl = ARGV[5], ARGV[6], ARGV[7], ARGV[8]
local delta, version, version_epoch = ARGV[9], ARGV[10], ARGV[11]

if result_ttl ~= '' then
  local saved = redis.call('hmget', result, 'e', 's')
  if saved[1] then
    return {saved[2] or '0', saved[1], '1', '0'}
  end
end

local epoch = redis.call('hget', meta, 'e')
if not epoch then
  epoch = fresh_epoch
  redis.call('hset', meta, 'e', epoch)
end

if version ~= '0' then
  local last = redis.call('hmget', meta, 'v', 've', 's')
  if last[1] and (version_epoch == '' or version_epoch == last[2])
     and tonumber(last[1]) >= tonumber(version) then
    return {tonumber(last[3] or '0'), epoch, '0', '1'}
  end
  redis.call('hset', meta, 'v', version, 've', version_epoch)
end

local offset = redis.call('hincrby', meta, 's', 1)
if meta_ttl ~= '0' then
  redis.call('expire', meta, meta_ttl)
end

local prev = ''
if offset == 1 then
  -- A new epoch: whatever stream is left (meta evicted first) belongs to the old one.
  redis.call('del', stream)
elseif delta == '1' then
  local last = redis.call('xrevrange', stream, '+', '-', 'COUNT', 1)
  if #last > 0 then
    local fields = last[1][2]
    for i = 1, #fields, 2 do
      if fields[i] == 'd' then prev = fields[i + 1] break end
    end
  end
end

redis.call('xadd', stream, 'MAXLEN', maxlen, offset, 'd', body)
redis.call('expire', stream, ttl)

if channel ~= '' then
  local msg
  if delta == '1' then
    msg = '__d1:' .. offset .. ':' .. epoch .. ':' .. #prev .. ':' .. prev .. ':' .. #body .. ':' .. body
  else
    msg = '__p1:' .. offset .. ':' .. epoch .. '__' .. body
  end
  redis.call(publish_cmd, channel, msg)
end

if result_ttl ~= '' then
  redis.call('hset', result, 'e', epoch, 's', offset)
  redis.call('expire', result, result_ttl)
end
return {offset, epoch, '0', '0'}
"#;

/// List-mode twin of [`PUBLISH_STREAM`]: the list holds `__p1:<offset>:<epoch>__<pub>`
/// items, newest first. ARGV 2 is the LTRIM right bound (size - 1); no versions (upstream
/// list mode has none either).
const PUBLISH_LIST: &str = r#"
local list, meta, result = KEYS[1], KEYS[2], KEYS[3]
local body, bound, ttl, channel = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local meta_ttl, fresh_epoch, publish_cmd, result_ttl = ARGV[5], ARGV[6], ARGV[7], ARGV[8]
local delta = ARGV[9]

if result_ttl ~= '' then
  local saved = redis.call('hmget', result, 'e', 's')
  if saved[1] then
    return {saved[2] or '0', saved[1], '1', '0'}
  end
end

local epoch = redis.call('hget', meta, 'e')
if not epoch then
  epoch = fresh_epoch
  redis.call('hset', meta, 'e', epoch)
end
local offset = redis.call('hincrby', meta, 's', 1)
if meta_ttl ~= '0' then
  redis.call('expire', meta, meta_ttl)
end

local prev = ''
if offset == 1 then
  redis.call('del', list)
elseif delta == '1' then
  local last = redis.call('lindex', list, 0)
  if last then
    -- Strip the position header: receivers expect a bare protobuf publication.
    local header_end = string.find(last, '__', 6, true)
    if header_end then prev = string.sub(last, header_end + 2) end
  end
end

local item = '__p1:' .. offset .. ':' .. epoch .. '__' .. body
redis.call('lpush', list, item)
redis.call('ltrim', list, 0, bound)
redis.call('expire', list, ttl)

if channel ~= '' then
  local msg = item
  if delta == '1' then
    msg = '__d1:' .. offset .. ':' .. epoch .. ':' .. #prev .. ':' .. prev .. ':' .. #body .. ':' .. body
  end
  redis.call(publish_cmd, channel, msg)
end

if result_ttl ~= '' then
  redis.call('hset', result, 'e', epoch, 's', offset)
  redis.call('expire', result, result_ttl)
end
return {offset, epoch, '0', '0'}
"#;

/// Publish without history but with an idempotency key.
///
/// KEYS: result. ARGV: 1 payload, 2 PUB/SUB channel, 3 publish command, 4 result TTL s.
/// Returns 1 when the key was already used (nothing published), else 0.
const PUBLISH_IDEMPOTENT: &str = r#"
if redis.call('exists', KEYS[1]) == 1 then
  return 1
end
redis.call(ARGV[3], ARGV[2], ARGV[1])
-- Same shape as a history result, with an empty epoch (no stream).
redis.call('hset', KEYS[1], 'e', '')
redis.call('expire', KEYS[1], ARGV[4])
return 0
"#;

/// Reads a history stream, creating its meta (new epoch) when missing.
///
/// KEYS: stream, meta. ARGV: 1 include publications '1'/'0', 2 start id, 3 count
/// ('0' = no limit), 4 reverse '1'/'0', 5 meta TTL s, 6 epoch to use if missing.
/// A reverse read with start '0' starts from the top. Returns {top, epoch, entries|nil}.
const HISTORY_STREAM: &str = r#"
local stream, meta = KEYS[1], KEYS[2]
local include, start, count, reverse = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local meta_ttl, fresh_epoch = ARGV[5], ARGV[6]

local m = redis.call('hmget', meta, 'e', 's')
local epoch, top = m[1], m[2] or 0
if not epoch then
  epoch = fresh_epoch
  top = 0
  redis.call('hset', meta, 'e', epoch)
end
if meta_ttl ~= '0' then
  redis.call('expire', meta, meta_ttl)
end

local entries = nil
if include == '1' then
  local args
  if reverse == '1' then
    local from = start
    if from == '0' then from = top end
    args = {'xrevrange', stream, from, '-'}
  else
    args = {'xrange', stream, start, '+'}
  end
  if count ~= '0' then
    table.insert(args, 'COUNT')
    table.insert(args, count)
  end
  entries = redis.call(unpack(args))
end
return {top, epoch, entries}
"#;

/// List-mode read: meta as [`HISTORY_STREAM`] plus every item (filtering happens in Rust,
/// as upstream does). KEYS: list, meta. ARGV: 1 include '1'/'0', 2 meta TTL s, 3 epoch.
const HISTORY_LIST: &str = r#"
local list, meta = KEYS[1], KEYS[2]
local m = redis.call('hmget', meta, 'e', 's')
local epoch, top = m[1], m[2] or 0
if not epoch then
  epoch = ARGV[3]
  top = 0
  redis.call('hset', meta, 'e', epoch)
end
if ARGV[2] ~= '0' then
  redis.call('expire', meta, ARGV[2])
end
local items = nil
if ARGV[1] == '1' then
  items = redis.call('lrange', list, 0, -1)
end
return {top, epoch, items}
"#;

/// Adds or refreshes a presence entry.
/// KEYS: expire zset, data hash. ARGV: 1 key TTL s, 2 expire-at unix s, 3 client, 4 info.
const PRESENCE_ADD: &str = r#"
redis.call('hset', KEYS[2], ARGV[3], ARGV[4])
redis.call('expire', KEYS[2], ARGV[1])
redis.call('zadd', KEYS[1], ARGV[2], ARGV[3])
redis.call('expire', KEYS[1], ARGV[1])
return 0
"#;

/// Removes a presence entry. KEYS: expire zset, data hash. ARGV: 1 client.
const PRESENCE_REMOVE: &str = r#"
redis.call('hdel', KEYS[2], ARGV[1])
redis.call('zrem', KEYS[1], ARGV[1])
return 0
"#;

/// Drops expired entries, then returns the whole hash (client, info, client, info, …).
/// KEYS: expire zset, data hash. ARGV: 1 now unix s.
const PRESENCE_GET: &str = r#"
local gone = redis.call('zrangebyscore', KEYS[1], '0', ARGV[1])
if #gone > 0 then
  -- One HDEL per id: unpacking a large list would overflow Lua's stack.
  for i = 1, #gone do redis.call('hdel', KEYS[2], gone[i]) end
  redis.call('zremrangebyscore', KEYS[1], '0', ARGV[1])
end
return redis.call('hgetall', KEYS[2])
"#;

/// Like [`PRESENCE_GET`] but returns only the infos: stats need users, not client ids.
const PRESENCE_STATS: &str = r#"
local gone = redis.call('zrangebyscore', KEYS[1], '0', ARGV[1])
if #gone > 0 then
  -- One HDEL per id: unpacking a large list would overflow Lua's stack.
  for i = 1, #gone do redis.call('hdel', KEYS[2], gone[i]) end
  redis.call('zremrangebyscore', KEYS[1], '0', ARGV[1])
end
return redis.call('hvals', KEYS[2])
"#;

/// Scripts are hashed once; `Script` sends EVALSHA and falls back to EVAL (loading it)
/// on NOSCRIPT, e.g. after a Redis restart emptied the script cache.
pub(crate) static PUBLISH_STREAM_SCRIPT: LazyLock<Script> =
    LazyLock::new(|| Script::new(PUBLISH_STREAM));
pub(crate) static PUBLISH_LIST_SCRIPT: LazyLock<Script> =
    LazyLock::new(|| Script::new(PUBLISH_LIST));
pub(crate) static PUBLISH_IDEMPOTENT_SCRIPT: LazyLock<Script> =
    LazyLock::new(|| Script::new(PUBLISH_IDEMPOTENT));
pub(crate) static HISTORY_STREAM_SCRIPT: LazyLock<Script> =
    LazyLock::new(|| Script::new(HISTORY_STREAM));
pub(crate) static HISTORY_LIST_SCRIPT: LazyLock<Script> =
    LazyLock::new(|| Script::new(HISTORY_LIST));
pub(crate) static PRESENCE_ADD_SCRIPT: LazyLock<Script> =
    LazyLock::new(|| Script::new(PRESENCE_ADD));
pub(crate) static PRESENCE_REMOVE_SCRIPT: LazyLock<Script> =
    LazyLock::new(|| Script::new(PRESENCE_REMOVE));
pub(crate) static PRESENCE_GET_SCRIPT: LazyLock<Script> =
    LazyLock::new(|| Script::new(PRESENCE_GET));
pub(crate) static PRESENCE_STATS_SCRIPT: LazyLock<Script> =
    LazyLock::new(|| Script::new(PRESENCE_STATS));
