-- ARGV: topic, '1' to pause or '0' to resume. Returns 1 when it changed.
local now = redis.call('HGET', B, 'paused') == '1'
local want = ARGV[2] == '1'
if now == want then return 0 end
redis.call('HSET', B, 'paused', ARGV[2])
promote()
ring(nil, false)
return 1
