-- A page of a map channel's state (Gyre's script; same KEYS and ARGV as upstream
-- centrifuge's map_broker_read_unordered.lua).
--
-- KEYS: 1 state hash, 2 state expire zset, 3 meta, 4 state meta.
-- ARGV: 1 HSCAN cursor, 2 limit (0 = everything), 3 now ms, 4 meta ttl ms,
--       5 state ttl ms, 6 streamless '1'/'0'.
-- Returns {offset, epoch, next cursor ('0' = done), {field, value, ...}}.

local state, expire, meta, state_meta = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local cursor, limit, now = ARGV[1], tonumber(ARGV[2]), ARGV[3]
local meta_ttl, state_ttl, streamless = tonumber(ARGV[4]), tonumber(ARGV[5]), ARGV[6] == '1'

local epoch, offset = '', '0'

if not streamless then
  if meta ~= '' then
    epoch = redis.call('hget', meta, 'e')
    if not epoch then
      -- Upstream starts an epoch here from the clock.
      epoch = now
      redis.call('hset', meta, 'e', epoch)
    end
    offset = redis.call('hget', meta, 's') or '0'
    if meta_ttl > 0 then redis.call('pexpire', meta, meta_ttl) end
  end
  if state_meta ~= '' then
    -- State is valid only under the epoch it was written in.
    if redis.call('hget', state_meta, 'epoch') ~= epoch then
      return {offset, epoch, '0', {}}
    end
  end
end

if state_ttl > 0 then
  redis.call('pexpire', state, state_ttl)
  if expire ~= '' then redis.call('pexpire', expire, state_ttl) end
  if not streamless and state_meta ~= '' then redis.call('pexpire', state_meta, state_ttl) end
end

if limit > 0 then
  local page = redis.call('hscan', state, cursor, 'COUNT', limit)
  return {offset, epoch, page[1], page[2]}
end
return {offset, epoch, '0', redis.call('hgetall', state)}
