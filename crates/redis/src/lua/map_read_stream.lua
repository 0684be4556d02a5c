-- A map channel's stream and position (Gyre's script; same KEYS and ARGV as upstream
-- centrifuge's map_broker_stream_read.lua).
--
-- KEYS: 1 stream, 2 meta.
-- ARGV: 1 include publications '1'/'0', 2 start id ('-', '+' or an offset),
--       3 count ('0' = all), 4 reverse '1'/'0', 5 meta ttl ms ('0' = none),
--       6 epoch for a new meta.
-- Returns {top offset, epoch, entries}.

local stream, meta = KEYS[1], KEYS[2]
local include, start, count, reverse = ARGV[1] ~= '0', ARGV[2], ARGV[3], ARGV[4] == '1'
local meta_ttl, fresh_epoch = ARGV[5], ARGV[6]

local m = redis.call('hmget', meta, 'e', 's')
local epoch, top = m[1], m[2] or 0
if not epoch then
  -- A new epoch: a stream without meta belongs to a forgotten one.
  epoch, top = fresh_epoch, 0
  redis.call('hset', meta, 'e', epoch)
  redis.call('del', stream)
end
if meta_ttl ~= '0' then redis.call('pexpire', meta, meta_ttl) end

local entries = {}
if include then
  local args
  if reverse then
    local from = top
    if start ~= '-' and start ~= '0' then from = start end
    args = {'xrevrange', stream, from, '-'}
  else
    args = {'xrange', stream, start, '+'}
  end
  if count ~= '0' then
    args[#args + 1] = 'COUNT'
    args[#args + 1] = count
  end
  entries = redis.call(unpack(args))
end
return {top, epoch, entries}
