-- RedisWebhookQueue.count_due: whether a subscription_count webhook goes out. Every node with
-- subscribers of the channel sees each cluster-wide change; the first to ask sends it.
-- The Python reading of this script is LocalWebhookQueue.count_due (one node: always now).
-- KEYS: 1 the channel's hash of the last count sent: count, time_ms (when it was counted),
--       sent_ms (when it was sent)
-- ARGV: 1 the count, 2 its time_ms, 3 now (ms), 4 the throttle's threshold (subscribers),
--       5 the throttle (ms), 6 how long the hash outlives its last send (ms)
-- Returns -1: do not send (this count was the last sent, or a newer count was); 0: send now;
-- n > 0: ask again in n ms (above the threshold, the cluster sent one less than the throttle ago).
local last = redis.call('HMGET', KEYS[1], 'count', 'time_ms', 'sent_ms')
local count, time_ms, now = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
if last[2] and tonumber(last[2]) > time_ms then
  return -1
end
if last[1] and tonumber(last[1]) == count then
  return -1
end
if count > tonumber(ARGV[4]) and last[3] then
  local wait = tonumber(last[3]) + tonumber(ARGV[5]) - now
  if wait > 0 then
    return wait
  end
end
redis.call('HSET', KEYS[1], 'count', count, 'time_ms', time_ms, 'sent_ms', now)
redis.call('PEXPIRE', KEYS[1], ARGV[6])
return 0
