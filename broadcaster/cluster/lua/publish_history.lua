-- RedisBus: publish an event on a history channel with its position, atomically: the next
-- serial of the channel (and its epoch, made when the channel has none: a history lost with
-- Redis, or idle past its ttl, starts a new sequence), the frame kept, and the publication.
-- The Python reading of this script is Ring.append (broadcaster/protocol/history.py).
-- KEYS: 1 the channel's meta hash (epoch, serial), 2 its log (a stream of kept frames)
-- ARGV: 1 the channel's pub/sub stream, 2 the message as subscribers get it (a JSON object,
--       without its position), 3 the publication as the bus carries it, 4 how many events to
--       keep, 5 for how long (ms)
-- Returns the serial.
local epoch = redis.call('HGET', KEYS[1], 'epoch')
if not epoch then
  local now = redis.call('TIME')
  epoch = string.format('%x%05x', tonumber(now[1]), tonumber(now[2]))
  redis.call('HSET', KEYS[1], 'epoch', epoch)
end
local serial = redis.call('HINCRBY', KEYS[1], 'serial', 1)
local frame = string.sub(ARGV[2], 1, -2) .. ',"serial":' .. serial .. ',"epoch":"' .. epoch .. '"}'
local now = redis.call('TIME')
local ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
redis.call('XADD', KEYS[2], 'MAXLEN', ARGV[4], '*', 's', serial, 'f', frame)
redis.call('XTRIM', KEYS[2], 'MINID', ms - tonumber(ARGV[5]))
redis.call('PEXPIRE', KEYS[1], ARGV[5])
redis.call('PEXPIRE', KEYS[2], ARGV[5])
redis.call('SPUBLISH', ARGV[1], '#' .. serial .. ':' .. epoch .. ':' .. ARGV[3])
return serial
