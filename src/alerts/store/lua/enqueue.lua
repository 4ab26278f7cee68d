-- KEYS[2]: the source key ('' for none). ARGV: topic, alert JSON, id,
-- front (1/0), cap, source TTL in ms.
-- Returns {'ok', waiting} | {'dup', first id} | {'full', waiting}.
local SRC = KEYS[2]
if SRC ~= '' then
  local first = redis.call('GET', SRC)
  if first then return {'dup', first} end
end
local waiting = redis.call('LLEN', Q)
local must_wait = redis.call('HEXISTS', B, 'flight') == 1
  or redis.call('HGET', B, 'paused') == '1' or waiting > 0
if must_wait and waiting >= tonumber(ARGV[5]) then
  return {'full', tostring(waiting)}
end
if ARGV[4] == '1' then
  redis.call('LPUSH', Q, ARGV[2])
else
  redis.call('RPUSH', Q, ARGV[2])
end
promote()
if SRC ~= '' then
  redis.call('SET', SRC, ARGV[3], 'PX', ARGV[6])
end
ring(nil, false)
return {'ok', tostring(redis.call('LLEN', Q))}
