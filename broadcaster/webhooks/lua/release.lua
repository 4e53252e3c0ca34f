-- RedisWebhookQueue.release: end a delayed webhook's wait, unless it was cancelled.
-- The Python reading of this script is LocalWebhookQueue.release.
-- KEYS: 1 the wait's key; ARGV: 1 the token hold() set there
-- Returns 1 when the token was still there (then the webhook is sent), else 0.
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
