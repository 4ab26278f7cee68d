-- A connection of viewer (ARGV[3]) on instance ARGV[2] left the room.
local iid, viewer, profile_ttl = ARGV[2], ARGV[3], tonumber(ARGV[4])
if change_conns(iid, viewer, -1, profile_ttl) then publish_presence() end
if redis.call('EXISTS', B .. ':i:' .. iid) == 0 then
  redis.call('ZREM', B .. ':inst', iid)
end
return 1
