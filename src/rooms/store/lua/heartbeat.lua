-- Every few seconds, for each room with members on instance ARGV[2]:
-- instances not heard from for ARGV[3] ms are reaped (their connections,
-- and with a viewer's last one their ephemeral votes and presence, and
-- their relays), then this instance's mark is renewed. With ARGV[5] >= 0
-- this instance's connections are also set to exactly the ARGV[5]
-- viewer/count pairs that follow, then its relays to the relay/count pairs
-- after those (a full re-sync after a failed call or a reap). Returns 1
-- when this instance's mark was missing (it had been reaped: re-sync).
local iid, dead_ms, profile_ttl = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local now = now_ms()
local presence_changed, relays_changed = false, false

for _, other in ipairs(redis.call('ZRANGEBYSCORE', B .. ':inst', '-inf', now - dead_ms)) do
  if other ~= iid then
    local ik = B .. ':i:' .. other
    local flat = redis.call('HGETALL', ik)
    for i = 1, #flat, 2 do
      if change_conns(other, flat[i], -tonumber(flat[i + 1]), profile_ttl) then
        presence_changed = true
      end
    end
    redis.call('DEL', ik)
    redis.call('ZREM', B .. ':inst', other)
    local prefix = other .. '|'
    for _, f in ipairs(redis.call('HKEYS', B .. ':relays')) do
      if string.sub(f, 1, #prefix) == prefix then
        redis.call('HDEL', B .. ':relays', f)
        relays_changed = true
      end
    end
  end
end

local missing = redis.call('ZADD', B .. ':inst', now, iid)

local nv = tonumber(ARGV[5])
if nv >= 0 then
  local ik = B .. ':i:' .. iid
  local want, have = {}, {}
  for i = 0, nv - 1 do want[ARGV[6 + 2 * i]] = tonumber(ARGV[7 + 2 * i]) end
  local flat = redis.call('HGETALL', ik)
  for i = 1, #flat, 2 do have[flat[i]] = tonumber(flat[i + 1]) end
  for viewer, n in pairs(want) do
    if change_conns(iid, viewer, n - (have[viewer] or 0), profile_ttl) then presence_changed = true end
  end
  for viewer, n in pairs(have) do
    if not want[viewer] then
      if change_conns(iid, viewer, -n, profile_ttl) then presence_changed = true end
    end
  end
  local base = 6 + 2 * nv
  local nr = tonumber(ARGV[base] or '0')
  local prefix = iid .. '|'
  local before = table.concat(relay_types(), '\n')
  for _, f in ipairs(redis.call('HKEYS', B .. ':relays')) do
    if string.sub(f, 1, #prefix) == prefix then redis.call('HDEL', B .. ':relays', f) end
  end
  for i = 0, nr - 1 do
    redis.call('HSET', B .. ':relays', prefix .. ARGV[base + 1 + 2 * i], ARGV[base + 2 + 2 * i])
  end
  if table.concat(relay_types(), '\n') ~= before then relays_changed = true end
end

if presence_changed then publish_presence() end
if relays_changed then publish_relays() end
return missing
