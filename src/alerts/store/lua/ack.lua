-- ARGV: topic, id. Returns 1 when `id` was in flight (the queue moved on).
if redis.call('HGET', B, 'flight_id') ~= ARGV[2] then return 0 end
retire('shown')
ring(nil, false)
return 1
