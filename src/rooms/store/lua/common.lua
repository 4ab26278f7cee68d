-- Shared by every room script (prepended to each). KEYS[1] is the room's
-- base key `{prefix}:room:{<channel>}`: every key of the room derives from it
-- and shares its hash tag. ARGV[1] is the room's pub/sub topic channel;
-- events are published in the same step as the change they announce.
local B = KEYS[1]
local TOPIC = ARGV[1]

local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- The room's version: bumped by every change, so updates can be ordered.
local function bump()
  return redis.call('HINCRBY', B .. ':meta', 'v', 1)
end

local function version()
  return tonumber(redis.call('HGET', B .. ':meta', 'v') or '0')
end

local function publish(event)
  redis.call('PUBLISH', TOPIC, cjson.encode(event))
end

-- The index (a sorted set by last use) and the key prefix of a kind's polls.
local function polls_of(kind)
  if kind == 'poll' then return B .. ':polls', B .. ':p:' end
  return B .. ':eps', B .. ':e:'
end

local function tally(pre, id)
  local flat = redis.call('HGETALL', pre .. id .. ':t')
  local stats = {}
  for i = 1, #flat, 2 do stats[flat[i]] = tonumber(flat[i + 1]) end
  return stats
end

local function publish_poll(kind, id, v)
  local _, pre = polls_of(kind)
  publish({k = 'poll', v = v, kind = kind, id = id, stats = tally(pre, id)})
end

-- Removes viewer's vote from a poll; true when there was one.
local function unvote(pre, id, viewer)
  local old = redis.call('HGET', pre .. id .. ':v', viewer)
  if not old then return false end
  redis.call('HDEL', pre .. id .. ':v', viewer)
  if redis.call('HINCRBY', pre .. id .. ':t', old, -1) <= 0 then
    redis.call('HDEL', pre .. id .. ':t', old)
  end
  return true
end

local function publish_presence()
  publish({k = 'presence', v = bump(), count = redis.call('HLEN', B .. ':viewers')})
end

-- A viewer's last connection left the room (on every instance): their
-- ephemeral votes go and their profile starts to expire.
local function gone(viewer, profile_ttl)
  local idx, pre = polls_of('ephemeralPoll')
  for _, id in ipairs(redis.call('ZRANGE', idx, 0, -1)) do
    if unvote(pre, id, viewer) then publish_poll('ephemeralPoll', id, bump()) end
  end
  redis.call('PEXPIRE', B .. ':prof:' .. viewer, profile_ttl)
end

-- n more (or fewer) connections of viewer on instance iid. The instance's
-- own count never goes below 0, and only real changes reach the room-wide
-- count. True when the viewer arrived in or left the room.
local function change_conns(iid, viewer, n, profile_ttl)
  local ik = B .. ':i:' .. iid
  local had = tonumber(redis.call('HGET', ik, viewer) or '0')
  local now = had + n
  if now < 0 then now = 0 end
  local change = now - had
  if now == 0 then
    redis.call('HDEL', ik, viewer)
  else
    redis.call('HSET', ik, viewer, now)
  end
  if change == 0 then return false end
  local total = redis.call('HINCRBY', B .. ':viewers', viewer, change)
  if total <= 0 then
    redis.call('HDEL', B .. ':viewers', viewer)
    gone(viewer, profile_ttl)
    return true
  end
  if total == change then
    redis.call('PERSIST', B .. ':prof:' .. viewer)
    return true
  end
  return false
end

-- The event types relayed by some admin anywhere in the room
-- (`B:relays` fields are `<instance>|<type>`).
local function relay_types()
  local seen, types = {}, {}
  for _, f in ipairs(redis.call('HKEYS', B .. ':relays')) do
    local t = string.sub(f, (string.find(f, '|', 1, true) or 0) + 1)
    if not seen[t] then
      seen[t] = true
      types[#types + 1] = t
    end
  end
  table.sort(types)
  return types
end

local function publish_relays()
  publish({k = 'relays', types = relay_types()})
end

-- Exact decimal addition on canonical strings ("-12.5", "0", "3"), the same
-- arithmetic as rooms::amount: nil when the result has more than
-- max_digits significant or fractional digits.
local function dec_parse(s)
  local neg = false
  if string.sub(s, 1, 1) == '-' then
    neg = true
    s = string.sub(s, 2)
  end
  local int, frac = string.match(s, '^(%d+)%.?(%d*)$')
  return neg, int or '0', frac or ''
end

local function digits_add(a, b)
  local out, carry = {}, 0
  for i = #a, 1, -1 do
    local d = string.byte(a, i) + string.byte(b, i) - 96 + carry
    out[i] = d % 10
    carry = math.floor(d / 10)
  end
  local s = table.concat(out)
  if carry > 0 then s = carry .. s end
  return s
end

local function digits_sub(a, b)
  local out, borrow = {}, 0
  for i = #a, 1, -1 do
    local d = string.byte(a, i) - string.byte(b, i) - borrow
    if d < 0 then
      d = d + 10
      borrow = 1
    else
      borrow = 0
    end
    out[i] = d
  end
  return table.concat(out)
end

local function dec_add(a, b, max_digits)
  local an, ai, af = dec_parse(a)
  local bn, bi, bf = dec_parse(b)
  local scale = math.max(#af, #bf)
  af = af .. string.rep('0', scale - #af)
  bf = bf .. string.rep('0', scale - #bf)
  local ad, bd = ai .. af, bi .. bf
  local n = math.max(#ad, #bd)
  ad = string.rep('0', n - #ad) .. ad
  bd = string.rep('0', n - #bd) .. bd
  local neg, digits
  if an == bn then
    neg, digits = an, digits_add(ad, bd)
  elseif ad >= bd then
    neg, digits = an, digits_sub(ad, bd)
  else
    neg, digits = bn, digits_sub(bd, ad)
  end
  local int = string.sub(digits, 1, #digits - scale)
  local frac = ''
  if scale > 0 then frac = string.sub(digits, #digits - scale + 1) end
  int = string.gsub(int, '^0+', '')
  frac = string.gsub(frac, '0+$', '')
  local mantissa = string.gsub(int .. frac, '^0+', '')
  if #mantissa > max_digits or #frac > max_digits then return nil end
  if mantissa == '' then return '0' end
  if int == '' then int = '0' end
  local s = int
  if #frac > 0 then s = s .. '.' .. frac end
  if neg then s = '-' .. s end
  return s
end
