-- One more (ARGV[4] = 1) or one fewer (-1) connection on instance ARGV[2]
-- relays event type ARGV[3].
local iid, event, delta = ARGV[2], ARGV[3], tonumber(ARGV[4])
local field = iid .. '|' .. event
local before = #relay_types()
local n = redis.call('HINCRBY', B .. ':relays', field, delta)
if n <= 0 then redis.call('HDEL', B .. ':relays', field) end
if #relay_types() ~= before then publish_relays() end
return 1
