-- ARGV: topic. Returns the skipped id, or '' when nothing was in flight.
local id = redis.call('HGET', B, 'flight_id')
if not id then return '' end
retire('skipped')
ring(id, false)
return id
