-- RedisState.heartbeat: push this node's expiry forward, unless it was reaped or Redis lost it.
-- KEYS: 1 the nodes sorted set (node -> expiry, ms on Redis's clock; 0: claimed by a reaper)
-- ARGV: 1 this node, 2 time to live in ms, 3 "register" to add the node when it is absent
-- Returns 1 when the node is registered now, 0 when it must re-register (absent or claimed).
local now = redis.call('TIME')
local expiry = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000) + tonumber(ARGV[2])
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if ARGV[3] ~= 'register' and (not score or tonumber(score) == 0) then
  return 0
end
redis.call('ZADD', KEYS[1], expiry, ARGV[1])
return 1
