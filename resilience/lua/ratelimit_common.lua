-- Shared by every rate-limit script, placed before it (Script.includes in _ratelimit/_scripts.py).
-- ARGV: cost, peek (1 = decide without consuming), ttl (s), n (limits), then per-limit values.
local EPS = 1e-9
local TICK = 1e-6  -- time resolution of decisions (s): TICK in _algorithms.py
local cost = tonumber(ARGV[1])
local peek = ARGV[2] == '1'
local ttl = tonumber(ARGV[3])
local n = tonumber(ARGV[4])
local t = now()

-- The state under KEYS[1]: `width` little-endian doubles per limit, or {} when it is absent or
-- of another shape (the limits changed). Returns the values and their struct format.
local function read_state(width)
  local fmt = '<' .. string.rep('d', width * n)
  local raw = redis.call('GET', KEYS[1])
  if raw and #raw == 8 * width * n then return {struct.unpack(fmt, raw)}, fmt end
  return {}, fmt
end
