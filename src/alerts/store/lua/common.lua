-- Shared by every alert script (prepended). KEYS[1] is the channel's
-- base key B: B (hash: rev, paused, flight, flight_id, settings, srev,
-- key, keygen), B:q (waiting, a list of alert JSON), B:r (the last 50
-- shown or skipped, newest first). ARGV[1] is the doorbell's pub/sub
-- channel. Rules: alerts::queue.
local B = KEYS[1]
local Q = B .. ':q'
local R = B .. ':r'
local TOPIC = ARGV[1]

-- The head moves into flight when nothing is there and not paused.
local function promote()
  if redis.call('HEXISTS', B, 'flight') == 0 and redis.call('HGET', B, 'paused') ~= '1' then
    local nxt = redis.call('LPOP', Q)
    if nxt then
      redis.call('HSET', B, 'flight', nxt, 'flight_id', cjson.decode(nxt).id)
    end
  end
end

-- The alert in flight leaves for `recent` (with its outcome); the next moves up.
local function retire(outcome)
  local f = redis.call('HGET', B, 'flight')
  if not f then return false end
  redis.call('LPUSH', R, '{"outcome":"' .. outcome .. '",' .. string.sub(f, 2))
  redis.call('LTRIM', R, 0, 49)
  redis.call('HDEL', B, 'flight', 'flight_id')
  promote()
  return f
end

-- Bumps the revision and publishes the overlay view (alerts::doorbell).
local function ring(skip, with_settings)
  redis.call('HINCRBY', B, 'rev', 1)
  local s = redis.call('HMGET', B, 'rev', 'flight', 'paused', 'keygen', 'srev', 'settings')
  local out = '{"rev":' .. s[1] .. ',"head":' .. (s[2] or 'null')
    .. ',"paused":' .. (s[3] == '1' and 'true' or 'false')
    .. ',"keygen":' .. (s[4] or '0') .. ',"srev":' .. (s[5] or '0')
  if with_settings and s[6] then out = out .. ',"settings":' .. s[6] end
  if skip then out = out .. ',"skip":"' .. skip .. '"' end
  redis.call('PUBLISH', TOPIC, out .. '}')
end
