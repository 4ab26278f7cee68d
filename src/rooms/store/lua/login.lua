-- Compare-and-set of a viewer's properties (merged by the caller): sets
-- ARGV[4] when the stored text is still ARGV[3] ('' for none). Returns
-- {1, version} on success, {0, current} when it changed meanwhile.
local viewer, expected, new, profile_ttl = ARGV[2], ARGV[3], ARGV[4], tonumber(ARGV[5])
local key = B .. ':prof:' .. viewer
local current = redis.call('GET', key) or ''
if current ~= expected then return {0, current} end
redis.call('SET', key, new)
if redis.call('HEXISTS', B .. ':viewers', viewer) == 0 then
  redis.call('PEXPIRE', key, profile_ttl)
end
local v = bump()
publish({k = 'profile', v = v, viewer = viewer, props = new})
return {1, v}
