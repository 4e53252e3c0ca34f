-- RedisState.read_history: a history channel's kept events after a serial, and its position.
-- The Python reading of this script is Ring.window (broadcaster/protocol/history.py).
-- KEYS: 1 the channel's meta hash (epoch, serial), 2 its log (a stream of kept frames)
-- ARGV: 1 after this serial, 2 at most this many, 3 none older than this (ms)
-- Returns {epoch ('' for none), latest serial, oldest kept (0: none), {serial, frame, ...}}.
local epoch = redis.call('HGET', KEYS[1], 'epoch') or ''
local latest = tonumber(redis.call('HGET', KEYS[1], 'serial') or '0')
local now = redis.call('TIME')
local ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local entries = redis.call('XRANGE', KEYS[2], ms - tonumber(ARGV[3]), '+')
local after, limit = tonumber(ARGV[1]), tonumber(ARGV[2])
local oldest = 0
local frames = {}
for _, entry in ipairs(entries) do
  local fields = entry[2]
  local serial = tonumber(fields[2])
  if oldest == 0 then
    oldest = serial
  end
  if serial > after and #frames < 2 * limit then
    frames[#frames + 1] = serial
    frames[#frames + 1] = fields[4]
  end
end
return {epoch, latest, oldest, frames}
