-- Removes expired map keys with a removal publication each (Gyre's script; same KEYS and
-- ARGV as upstream centrifuge's map_broker_batch_remove.lua). A key whose expire score
-- changed since it was found (refreshed meanwhile, or removed by another node's pass)
-- is left alone, so every node may run the cleanup.
--
-- KEYS: 1 state hash, 2 state expire zset, 3 stream, 4 meta, 5 cleanup registration,
--       6 state order zset, 7 state meta.
-- ARGV: 1 entry count, 2 PUB/SUB channel, 3 publish command, 4 stream size,
--       5 stream ttl ms, 6 meta ttl ms, 7 epoch for a new meta, 8 channel (cleanup member),
--       9 streamless '1'/'0', then per entry from 10: key, removal publication, score.
-- Returns {removed, final offset, epoch}.

local state, expire, stream, meta = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local cleanup, order, state_meta = KEYS[5], KEYS[6], KEYS[7]
local n, channel, publish_cmd = tonumber(ARGV[1]), ARGV[2], ARGV[3]
local stream_size, stream_ttl, meta_ttl = ARGV[4], tonumber(ARGV[5]), ARGV[6]
local fresh_epoch, member, streamless = ARGV[7], ARGV[8], ARGV[9] == '1'

local function repoint_cleanup()
  if cleanup == '' then return end
  local first = redis.call('zrange', expire, 0, 0, 'WITHSCORES')
  if #first >= 2 then
    redis.call('zadd', cleanup, first[2], member)
  else
    redis.call('zrem', cleanup, member)
  end
end

if n == 0 then
  repoint_cleanup()
  return {0, '0', ''}
end

local epoch = fresh_epoch
if not streamless then
  epoch = redis.call('hget', meta, 'e')
  if not epoch then
    epoch = fresh_epoch
    redis.call('hset', meta, 'e', epoch)
  end
end

local removed, offset = 0, 0
for i = 0, n - 1 do
  local at = 10 + i * 3
  local key, body, score = ARGV[at], ARGV[at + 1], ARGV[at + 2]
  if redis.call('zscore', expire, key) == score then
    if not streamless then
      offset = redis.call('hincrby', meta, 's', 1)
      if meta_ttl ~= '0' then redis.call('pexpire', meta, meta_ttl) end
      redis.call('xadd', stream, 'MAXLEN', '~', stream_size, offset, 'e', epoch, 'd', body)
      if stream_ttl > 0 then redis.call('pexpire', stream, stream_ttl) end
    end
    if channel ~= '' and publish_cmd ~= '' then
      redis.call(publish_cmd, channel, offset .. ':' .. epoch .. ':' .. body)
    end
    redis.call('hdel', state, key)
    redis.call('zrem', expire, key)
    redis.call('zrem', order, key)
    if state_meta ~= '' then redis.call('hdel', state_meta, 'v:' .. key, 've:' .. key) end
    removed = removed + 1
  end
end

repoint_cleanup()

local final = 0
if not streamless then final = redis.call('hget', meta, 's') or 0 end
return {removed, tostring(final), epoch}
