-- RedisState.join_presence: add a socket to a presence channel, cluster-wide and atomically.
-- The Python reading of this script is LocalState._join (broadcaster/cluster/local.py).
-- KEYS: 1 members (user id -> user info JSON), 2 sockets ("<node>|<socket id>" -> user id),
--       3 usersockets (user id -> how many sockets)
-- ARGV: 1 socket field, 2 user id, 3 user info JSON, 4 member cap, 5 the channel's stream
--       (its hash tag is the keys'), 6 the member_added publication, 7 the marker ('!' and the
--       request id; '' for none), 8 (optional) a JSON list of user ids: the answered roster
--       holds only those present
-- Returns 0 when the channel is full. Otherwise publishes, on the channel's stream, any
-- member_added and then the marker (the answer's place among the channel's events), and
-- returns {1 if the user's first socket else 0, {user id, info JSON, ...}}.
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
  redis.call('SPUBLISH', ARGV[5], ARGV[6])
end
local members
if ARGV[8] then
  members = {}
  for _, id in ipairs(cjson.decode(ARGV[8])) do
    local info = redis.call('HGET', KEYS[1], id)
    if info then
      members[#members + 1] = id
      members[#members + 1] = info
    end
  end
else
  members = redis.call('HGETALL', KEYS[1])
end
if ARGV[7] ~= '' then
  redis.call('SPUBLISH', ARGV[5], ARGV[7])
end
return {first and 1 or 0, members}
