-- RedisState.reap_dead_nodes: claim every node whose heartbeat expired (score set to 0, so a
-- node that wakes up re-registers), and return them all, those a failed reaper claimed included.
-- KEYS: 1 the nodes sorted set (node -> expiry, ms on Redis's clock)
local now = redis.call('TIME')
local ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local dead = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ms)
for _, node in ipairs(dead) do
  redis.call('ZADD', KEYS[1], 0, node)
end
return dead
