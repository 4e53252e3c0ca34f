-- RedisWebhookQueue.release: end a delayed webhook's wait, unless it was cancelled or overtaken.
-- The Python reading of this script is LocalWebhookQueue.release.
-- KEYS: 1 the wait's key, 2 what shows the ending still holds: the channel's set of nodes
--       (channel_vacated) or its presence members hash (member_removed)
-- ARGV: 1 the token hold() set, 2 the user id for member_removed ("" for channel_vacated)
-- Returns 1 when the token was still there and the channel is still empty (the user still
-- gone): then the webhook is sent. A node that re-occupied the channel between the decision and
-- hold() (its resume() found nothing to cancel) has sent channel_occupied: this is then 0.
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return 0
end
redis.call('DEL', KEYS[1])
if ARGV[2] == '' then
  return redis.call('SCARD', KEYS[2]) == 0 and 1 or 0
end
return redis.call('HEXISTS', KEYS[2], ARGV[2]) == 0 and 1 or 0
