-- Map publish and remove, atomically (Gyre's script; same KEYS, ARGV, stored values and
-- PUB/SUB payloads as upstream centrifuge's map_broker_add.lua, so Go and Rust nodes
-- share map channels).
--
-- KEYS: 1 stream, 2 meta, 3 idempotency result, 4 state hash, 5 state order zset,
--       6 state expire zset, 7 state meta hash, 8 cleanup registration zset.
--       '' (or ARGV[23] in cluster) means "not used".
-- ARGV: 1 key, 2 publication, 3 stream size, 4 stream ttl ms, 5 PUB/SUB channel,
--       6 meta ttl ms, 7 epoch for a new meta, 8 publish command, 9 result ttl ms,
--       10 use delta, 11 version, 12 version epoch, 13 is remove, 14 score,
--       15 key ttl ms, 16 use hpexpire, 17 channel (cleanup member), 18 key mode,
--       19 refresh ttl on suppress, 20 expected offset, 21 expected epoch,
--       22 state payload, 23 nil key, 24 version field, 25 version epoch field, 26 now ms.
-- Returns {offset, epoch, suppress reason ('' = applied)[, current state value]}.

local function used(k)
  if k == '' or (ARGV[23] ~= '' and k == ARGV[23]) then return '' end
  return k
end

local stream, meta, result = used(KEYS[1]), used(KEYS[2]), used(KEYS[3])
local state, order, expire = used(KEYS[4]), used(KEYS[5]), used(KEYS[6])
local state_meta, cleanup = used(KEYS[7]), used(KEYS[8])

local key, body = ARGV[1], ARGV[2]
local stream_size, stream_ttl = ARGV[3], tonumber(ARGV[4])
local pubsub_channel, meta_ttl = ARGV[5], tonumber(ARGV[6])
local fresh_epoch, publish_cmd, result_ttl = ARGV[7], ARGV[8], ARGV[9]
local delta, version, version_epoch = ARGV[10] == '1', ARGV[11], ARGV[12]
local removing, score, key_ttl = ARGV[13] == '1', ARGV[14], tonumber(ARGV[15])
local hpexpire, member = ARGV[16] == '1', ARGV[17]
local key_mode, refresh = ARGV[18], ARGV[19] == '1'
local want_offset, want_epoch = ARGV[20], ARGV[21]
local stored_body = ARGV[22]
if stored_body == '' then stored_body = body end
local v_field, ve_field, now = ARGV[24], ARGV[25], tonumber(ARGV[26])

if result ~= '' and result_ttl ~= '' then
  local saved = redis.call('hmget', result, 'e', 's')
  if saved[1] then
    return {saved[2] or '0', saved[1], 'idempotency'}
  end
end

-- Lowers the channel's cleanup score to `at` when it is earlier.
local function register_cleanup(at)
  if cleanup == '' or member == '' then return end
  local current = redis.call('zscore', cleanup, member)
  if not current or tonumber(current) > at then
    redis.call('zadd', cleanup, at, member)
  end
end

local epoch, offset = fresh_epoch, 0

local function top()
  if meta == '' then return 0 end
  return tonumber(redis.call('hget', meta, 's') or '0')
end

if meta ~= '' then
  epoch = redis.call('hget', meta, 'e')
  if not epoch then
    epoch = fresh_epoch
    redis.call('hset', meta, 'e', epoch)
  end

  -- State written under another epoch (or whose epoch record is gone) is dead: drop it
  -- before any check reads it.
  if state ~= '' and redis.call('hlen', state) > 0 then
    local state_epoch = false
    if state_meta ~= '' then state_epoch = redis.call('hget', state_meta, 'epoch') end
    if state_epoch ~= epoch then
      redis.call('del', state)
      if order ~= '' then redis.call('del', order) end
      if expire ~= '' then redis.call('del', expire) end
      if state_meta ~= '' then redis.call('del', state_meta) end
      if cleanup ~= '' and member ~= '' then redis.call('zrem', cleanup, member) end
    end
  end

  if version ~= '0' and v_field ~= '' and state_meta ~= '' then
    local last = redis.call('hmget', state_meta, v_field, ve_field)
    if last[1] and (version_epoch == '' or version_epoch == last[2])
       and tonumber(last[1]) >= tonumber(version) then
      return {top(), epoch, 'version'}
    end
  end
end

-- Key modes apply in every mode. (Upstream checks them only with a stream; Gyre checks
-- them for ephemeral maps too, so the presence refreshes of map_clients/map_users channels
-- stay silent as on the memory broker.)
if key_mode ~= '' and key ~= '' and state ~= '' and not removing then
  local exists = redis.call('hexists', state, key) == 1
  if key_mode == 'if_new' and exists then
    if refresh and key_ttl > 0 then
      local at = now + key_ttl
      if expire ~= '' then redis.call('zadd', expire, at, key) end
      register_cleanup(at)
      if hpexpire then
        redis.call('hpexpire', state, key_ttl, 'FIELDS', '1', key)
      end
      if meta_ttl > 0 then
        if expire ~= '' then redis.call('pexpire', expire, meta_ttl) end
        if not hpexpire then redis.call('pexpire', state, meta_ttl) end
        if meta ~= '' then redis.call('pexpire', meta, meta_ttl) end
      end
      if stream ~= '' and stream_ttl > 0 then
        redis.call('pexpire', stream, stream_ttl)
      end
    end
    return {top(), epoch, 'key_exists'}
  end
  if key_mode == 'if_exists' and not exists then
    return {top(), epoch, 'key_not_found'}
  end
end

if meta ~= '' then
  if want_offset ~= '' and want_epoch ~= '' and key ~= '' and state ~= '' then
    local current = redis.call('hget', state, key)
    if want_epoch ~= epoch or not current then
      return {top(), epoch, 'position_mismatch', current or ''}
    end
    local sep = string.find(current, ':', 1, true)
    if not sep or tonumber(string.sub(current, 1, sep - 1)) ~= tonumber(want_offset) then
      return {top(), epoch, 'position_mismatch', current}
    end
  end
end

if removing and key ~= '' and state ~= '' and redis.call('hexists', state, key) == 0 then
  return {top(), epoch, 'key_not_found'}
end

if meta ~= '' then
  offset = redis.call('hincrby', meta, 's', 1)
  if meta_ttl > 0 then redis.call('pexpire', meta, meta_ttl) end
  if version ~= '0' and v_field ~= '' and state_meta ~= '' then
    redis.call('hset', state_meta, v_field, version, ve_field, version_epoch)
  end
end

local prev = nil

if removing then
  if state ~= '' then
    redis.call('hdel', state, key)
    if order ~= '' then redis.call('zrem', order, key) end
    if expire ~= '' then redis.call('zrem', expire, key) end
    if v_field ~= '' and state_meta ~= '' then
      redis.call('hdel', state_meta, v_field, ve_field)
    end
    if cleanup ~= '' and member ~= '' and expire ~= '' then
      local first = redis.call('zrange', expire, 0, 0, 'WITHSCORES')
      if #first >= 2 then
        redis.call('zadd', cleanup, first[2], member)
      else
        redis.call('zrem', cleanup, member)
      end
    end
  end
elseif state ~= '' then
  if delta and key ~= '' and ARGV[22] == '' then
    prev = redis.call('hget', state, key) or nil
  end
  redis.call('hset', state, key, offset .. ':' .. epoch .. ':' .. stored_body)
  if order ~= '' then redis.call('zadd', order, tonumber(score), key) end
  if key_ttl > 0 then
    local at = now + key_ttl
    if expire ~= '' then redis.call('zadd', expire, at, key) end
    if hpexpire and order == '' then
      redis.call('hpexpire', state, key_ttl, 'FIELDS', '1', key)
    end
    register_cleanup(at)
  end
  if meta_ttl > 0 then
    if expire ~= '' then redis.call('pexpire', expire, meta_ttl) end
    if order ~= '' then redis.call('pexpire', order, meta_ttl) end
    if order ~= '' or not hpexpire then redis.call('pexpire', state, meta_ttl) end
  end
  if state_meta ~= '' then
    redis.call('hset', state_meta, 'epoch', epoch, 'updated_at', tostring(now))
    if meta_ttl > 0 then redis.call('pexpire', state_meta, meta_ttl) end
  end
end

if stream ~= '' and meta ~= '' then
  -- Offset 1 opens a new epoch: a stream left from an old one must go.
  if offset == 1 then redis.call('del', stream) end
  redis.call('xadd', stream, 'MAXLEN', '~', stream_size, offset, 'e', epoch, 'd', body)
  if stream_ttl > 0 then redis.call('pexpire', stream, stream_ttl) end
end

if pubsub_channel ~= '' and publish_cmd ~= '' then
  local msg
  if prev then
    msg = 'd:' .. offset .. ':' .. epoch .. ':' .. #prev .. ':' .. prev .. ':' .. #body .. ':' .. body
  else
    msg = offset .. ':' .. epoch .. ':' .. body
  end
  redis.call(publish_cmd, pubsub_channel, msg)
end

if result ~= '' and result_ttl ~= '' then
  redis.call('hset', result, 'e', epoch, 's', offset)
  redis.call('pexpire', result, result_ttl)
end

return {offset, epoch, ''}
