-- ARGV: topic, a fresh key, '1' to replace the key or '0' to make one only
-- when there is none. Returns {key, generation}.
if ARGV[3] == '1' then
  redis.call('HSET', B, 'key', ARGV[2])
  redis.call('HINCRBY', B, 'keygen', 1)
  ring(nil, false)
elseif redis.call('HSETNX', B, 'key', ARGV[2]) == 1 then
  redis.call('HINCRBY', B, 'keygen', 1)
end
local k = redis.call('HMGET', B, 'key', 'keygen')
return {k[1], k[2]}
