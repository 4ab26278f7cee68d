-- viewer votes answer in poll id of kind ('poll' or 'ephemeralPoll').
-- Returns 'ok', 'same' (already that answer), 'absent' (an ephemeral vote
-- from a viewer not in the room) or 'answers' (a new answer past the cap).
local kind, id, viewer, answer = ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local max_polls, max_answers = tonumber(ARGV[6]), tonumber(ARGV[7])
if kind == 'ephemeralPoll' and redis.call('HEXISTS', B .. ':viewers', viewer) == 0 then
  return 'absent'
end
local idx, pre = polls_of(kind)
local tk = pre .. id .. ':t'
if redis.call('HGET', pre .. id .. ':v', viewer) == answer then return 'same' end
if redis.call('HEXISTS', tk, answer) == 0 and redis.call('HLEN', tk) >= max_answers then
  return 'answers'
end
if not redis.call('ZSCORE', idx, id) then
  -- A new poll: the least recently used ones make room.
  while redis.call('ZCARD', idx) >= max_polls do
    local oldest = redis.call('ZRANGE', idx, 0, 0)[1]
    redis.call('DEL', pre .. oldest .. ':t', pre .. oldest .. ':v')
    redis.call('ZREM', idx, oldest)
  end
end
unvote(pre, id, viewer)
redis.call('HSET', pre .. id .. ':v', viewer, answer)
redis.call('HINCRBY', tk, answer, 1)
local v = bump()
redis.call('ZADD', idx, v, id)
publish_poll(kind, id, v)
return 'ok'
