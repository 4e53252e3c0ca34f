-- RedisState.join_presence: add a socket to a presence channel, cluster-wide and atomically.
-- The Python reading of this script is LocalState._join (broadcaster/cluster/local.py).
-- KEYS: 1 members (user id -> user info JSON), 2 sockets ("<node>|<socket id>" -> user id),
--       3 usersockets (user id -> how many sockets)
-- ARGV: 1 socket field, 2 user id, 3 user info JSON, 4 member cap, 5 bus channel,
--       6 the member_added publication, 7 the node's channel, 8 request id
-- Returns 0 when the channel is full. Otherwise publishes, on the node's channel, after any
-- member_added, the answer {id, first, members: [user id, info JSON, ...]}, and returns 1.
local user = ARGV[2]
local first = redis.call('HEXISTS', KEYS[3], user) == 0
if first and redis.call('HLEN', KEYS[1]) >= tonumber(ARGV[4]) then
  return 0
end
if redis.call('HSETNX', KEYS[2], ARGV[1], user) == 1 then
  redis.call('HINCRBY', KEYS[3], user, 1)
end
if first then
  redis.call('HSET', KEYS[1], user, ARGV[3])
  redis.call('PUBLISH', ARGV[5], ARGV[6])
end
local answer = {id = ARGV[8], first = first, members = redis.call('HGETALL', KEYS[1])}
redis.call('PUBLISH', ARGV[7], cjson.encode(answer))
return 1
