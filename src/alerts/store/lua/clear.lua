-- ARGV: topic. Empties the waiting queue; returns how many were dropped.
local n = redis.call('LLEN', Q)
redis.call('DEL', Q)
if n > 0 then redis.call('HINCRBY', B, 'rev', 1) end
return n
