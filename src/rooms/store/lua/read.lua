-- Reads current state with the room's version, as JSON: ARGV[2] names what
-- ('config', 'presence', 'poll', 'ephemeralPoll', 'counter', 'relays'),
-- ARGV[3] an optional id.
local what, id = ARGV[2], ARGV[3]
local out = {v = version()}
if what == 'config' then
  out.value = redis.call('GET', B .. ':config') or ''
elseif what == 'presence' then
  out.count = redis.call('HLEN', B .. ':viewers')
elseif what == 'poll' or what == 'ephemeralPoll' then
  local idx, pre = polls_of(what)
  local ids = redis.call('ZRANGE', idx, 0, -1)
  if id ~= '' then
    if redis.call('ZSCORE', idx, id) then ids = {id} else ids = {} end
  end
  local polls = {}
  for _, p in ipairs(ids) do polls[p] = tally(pre, p) end
  out.items = polls
elseif what == 'counter' then
  local values = {}
  if id ~= '' then
    local value = redis.call('HGET', B .. ':ctr', id)
    if value then values[id] = value end
  else
    local flat = redis.call('HGETALL', B .. ':ctr')
    for i = 1, #flat, 2 do values[flat[i]] = flat[i + 1] end
  end
  out.items = values
elseif what == 'relays' then
  out.types = relay_types()
end
return cjson.encode(out)
