-- RedisState.join_presence: add a socket to a presence channel, cluster-wide and atomically.
-- The Python reading of this script is LocalState._join (broadcaster/cluster/local.py).
-- KEYS: 1 members (user id -> user info JSON), 2 sockets ("<node>|<socket id>" -> user id),
--       3 usersockets (user id -> how many sockets)
-- ARGV: 1 socket field, 2 user id, 3 user info JSON, 4 member cap, 5 bus channel,
--       6 the member_added publication, 7 the node's channel, 8 request id,
--       9 (optional) a JSON list of user ids: the answered roster holds only those present
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
local members
if ARGV[9] then
  members = {}
  for _, id in ipairs(cjson.decode(ARGV[9])) do
    local info = redis.call('HGET', KEYS[1], id)
    if info then
      members[#members + 1] = id
      members[#members + 1] = info
    end
  end
else
  members = redis.call('HGETALL', KEYS[1])
end
local answer = {id = ARGV[8], first = first, members = members}
redis.call('PUBLISH', ARGV[7], cjson.encode(answer))
return 1
