-- ARGV: topic, settings JSON.
redis.call('HSET', B, 'settings', ARGV[2])
redis.call('HINCRBY', B, 'srev', 1)
ring(nil, true)
return 1
