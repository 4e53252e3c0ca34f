-- RedisIdempotency.claim: claim a request's idempotency keys, all or none.
-- KEYS: the Redis key of each idempotency key, in request order (one may come twice)
-- ARGV: 1 the window in seconds, then the fingerprint of each key's event, in the same order
-- Returns, per key: 1 fresh (now claimed), 0 a repeat of the same event, -1 claimed within the
-- window for another event. With any -1, nothing is claimed.
local claimed = {}  -- key -> the fingerprint it holds: stored, or claimed earlier in this call
local answers = {}
local reused = false
for i, key in ipairs(KEYS) do
  local fingerprint = ARGV[i + 1]
  local held = claimed[key]
  if held == nil then
    held = redis.call('GET', key)
  end
  if not held then
    answers[i] = 1
    claimed[key] = fingerprint
  elseif held == fingerprint then
    answers[i] = 0
    claimed[key] = held
  else
    answers[i] = -1
    claimed[key] = held
    reused = true
  end
end
if not reused then
  for i, key in ipairs(KEYS) do
    if answers[i] == 1 then
      redis.call('SET', key, ARGV[i + 1], 'EX', ARGV[1])
    end
  end
end
return answers
