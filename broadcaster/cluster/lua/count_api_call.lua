-- RedisApiLimits.decide: take one of an app's API call tokens, on Redis's clock: the token
-- bucket of protocol/ratelimit.py (TokenBucket), for every node at once.
-- KEYS: 1 the app's bucket, a hash: tokens (left), at (when counted, microseconds)
-- ARGV: 1 the rate, in calls a second (the bucket holds as many)
-- Returns {1, 0} when the call is allowed, {0, milliseconds until the next token} when not.
local rate = tonumber(ARGV[1])
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000000 + tonumber(time[2])
local bucket = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(bucket[1]) or rate
local at = tonumber(bucket[2]) or now
tokens = math.min(rate, tokens + math.max(0, now - at) / 1000000 * rate)
local allowed = 0
if tokens >= 1 then
  tokens = tokens - 1
  allowed = 1
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
-- A bucket refills within a second; once gone, a new one starts full, as it would be by then.
redis.call('PEXPIRE', KEYS[1], 2000)
if allowed == 1 then
  return {1, 0}
end
return {0, math.ceil((1 - tokens) / rate * 1000)}
