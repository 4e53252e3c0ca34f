-- RedisWebhookQueue.release: end a delayed webhook's wait, unless it was cancelled or overtaken.
-- The Python reading of this script is LocalWebhookQueue.release.
-- KEYS: 1 the wait's key, 2 what shows the ending still holds: the channel's set of nodes
--       (channel_vacated) or its presence members hash (member_removed)
-- ARGV: 1 the token hold() set, 2 the user id for member_removed ("" for channel_vacated)
-- Returns 1 when the channel is still empty (the user still gone) and no newer ending holds the
-- key: then the webhook is sent. The key may be gone: a beginning cancelled the wait (then the
-- channel is occupied again, the user back), Redis lost it (restarted), or this script ran
-- already (a retry after a lost answer): the channel decides. A node that re-occupied the
-- channel between the decision and hold() (its resume() found nothing to cancel) has sent
-- channel_occupied: this is then 0.
local held = redis.call('GET', KEYS[1])
if held and held ~= ARGV[1] then
  return 0
end
if held then
  redis.call('DEL', KEYS[1])
end
if ARGV[2] == '' then
  return redis.call('SCARD', KEYS[2]) == 0 and 1 or 0
end
return redis.call('HEXISTS', KEYS[2], ARGV[2]) == 0 and 1 or 0
