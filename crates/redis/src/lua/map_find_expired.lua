-- Keys of a map channel past their TTL (Gyre's script; same KEYS, ARGV and reply as
-- upstream centrifuge's map_broker_find_expired.lua). Read-only.
--
-- KEYS: 1 state hash, 2 state expire zset.
-- ARGV: 1 now ms, 2 batch size.
-- Returns {key, state value ('' if gone), expire score, ...}.

local state, expire = KEYS[1], KEYS[2]
local now, batch = tonumber(ARGV[1]), tonumber(ARGV[2])

local out = {}
for _, key in ipairs(redis.call('zrangebyscore', expire, 0, now, 'LIMIT', 0, batch)) do
  local score = redis.call('zscore', expire, key)
  if score and tonumber(score) <= now then
    out[#out + 1] = key
    out[#out + 1] = redis.call('hget', state, key) or ''
    out[#out + 1] = score
  end
end
return out
