-- RedisState.leave_presence: remove a socket from a presence channel, atomically.
-- The Python reading of this script is LocalState._leave (broadcaster/cluster/local.py).
-- KEYS: as join_presence.lua (members, sockets, usersockets)
-- ARGV: 1 socket field, 2 user id, 3 the channel's stream, 4 the member_removed publication
-- Returns 1 when that was the user's last socket (member_removed is then published), else 0.
local user = ARGV[2]
if redis.call('HGET', KEYS[2], ARGV[1]) ~= user then
  return 0
end
redis.call('HDEL', KEYS[2], ARGV[1])
if redis.call('HINCRBY', KEYS[3], user, -1) > 0 then
  return 0
end
redis.call('HDEL', KEYS[3], user)
redis.call('HDEL', KEYS[1], user)
redis.call('SPUBLISH', ARGV[3], ARGV[4])
return 1
