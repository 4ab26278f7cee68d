-- Adds ARGV[3] (a canonical decimal) to counter ARGV[2]. Returns
-- {'ok', value} or {'range'} when the sum needs more digits than allowed.
local id, delta = ARGV[2], ARGV[3]
local max_counters, max_digits = tonumber(ARGV[4]), tonumber(ARGV[5])
local ck, zk = B .. ':ctr', B .. ':ctrs'
local current = redis.call('HGET', ck, id)
local value = dec_add(current or '0', delta, max_digits)
if not value then return {'range'} end
if not current then
  while redis.call('ZCARD', zk) >= max_counters do
    local oldest = redis.call('ZRANGE', zk, 0, 0)[1]
    redis.call('HDEL', ck, oldest)
    redis.call('ZREM', zk, oldest)
  end
end
redis.call('HSET', ck, id, value)
local v = bump()
redis.call('ZADD', zk, v, id)
publish({k = 'counter', v = v, id = id, value = value})
return {'ok', value}
