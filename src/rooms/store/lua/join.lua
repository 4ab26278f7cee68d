-- A connection of viewer (ARGV[3]) on instance ARGV[2] joined the room.
-- Returns the viewer's properties ('' when none).
local iid, viewer, profile_ttl = ARGV[2], ARGV[3], tonumber(ARGV[4])
redis.call('ZADD', B .. ':inst', now_ms(), iid)
if change_conns(iid, viewer, 1, profile_ttl) then publish_presence() end
return redis.call('GET', B .. ':prof:' .. viewer) or ''
