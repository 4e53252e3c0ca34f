-- RedisWebhookQueue.occupancy: a node's first subscriber of a channel arrived, or its last left
-- (or the node died: RedisWebhookQueue._reclaim closes its channels for it).
-- The Python reading of this script is LocalWebhookQueue.occupancy (one node is the cluster).
-- KEYS: 1 the set of node ids holding subscribers of the channel
-- ARGV: 1 the node id, 2 "1" when it opened the channel, "0" when it closed it
-- Returns 1 when the node is now the channel's only one (it opened it) or none is left (it
-- closed it): then it was the cluster's first to open it, or its last to close it. Run again
-- (a retry after a lost answer), it answers the same; on a set Redis lost, a close still
-- answers 1 when no other node has put itself back.
if ARGV[2] == '1' then
  redis.call('SADD', KEYS[1], ARGV[1])
  return redis.call('SCARD', KEYS[1]) == 1 and 1 or 0
end
redis.call('SREM', KEYS[1], ARGV[1])
return redis.call('SCARD', KEYS[1]) == 0 and 1 or 0
