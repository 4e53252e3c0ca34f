-- RedisWebhookQueue.occupancy: a node's first subscriber of a channel arrived, or its last left.
-- The Python reading of this script is LocalWebhookQueue.occupancy (one node is the cluster).
-- KEYS: 1 the set of node incarnations holding subscribers of the channel,
--       2 the registry of live nodes (RedisState's sorted set): reaped nodes are dropped first
-- ARGV: 1 this node's incarnation, 2 "1" when it opened the channel, "0" when it closed it
-- Returns 1 when this was the cluster's first node to open it, or its last to close it.
for _, node in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  if node ~= ARGV[1] and not redis.call('ZSCORE', KEYS[2], node) then
    redis.call('SREM', KEYS[1], node)
  end
end
if ARGV[2] == '1' then
  return (redis.call('SADD', KEYS[1], ARGV[1]) == 1 and redis.call('SCARD', KEYS[1]) == 1) and 1 or 0
end
return (redis.call('SREM', KEYS[1], ARGV[1]) == 1 and redis.call('SCARD', KEYS[1]) == 0) and 1 or 0
