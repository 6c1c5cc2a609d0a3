-- Token bucket, all limits of one key in one step (twin: resilience/_ratelimit/_buckets.py).
-- KEYS[1]: state: tokens_1, stamp_1, tokens_2, stamp_2 ... packed as little-endian doubles.
-- ARGV: cost, peek (1 = decide without consuming), ttl (s), n, then per limit capacity, rate/s.
-- Returns {allowed, index, remaining, pack("<dd", reset_after, retry_after)[, remaining_i...]};
-- a refused hit writes nothing.
local old, fmt = read_state(2)
local ok = true
local levels, stamps = {}, {}
local worst, worst_wait = 1, -1
for i = 1, n do
  local cap, rate = tonumber(ARGV[3 + 2 * i]), tonumber(ARGV[4 + 2 * i])
  local tokens = cap
  stamps[i] = t
  if old[2 * i] then
    local elapsed = t - old[2 * i]
    if elapsed < 0 then
      elapsed = 0
      stamps[i] = old[2 * i]  -- the server clock went back: the stamp does not
    end
    tokens = old[2 * i - 1] + elapsed * rate
    if tokens > cap then tokens = cap end
  end
  levels[i] = tokens
  if tokens + rate * TICK + EPS < cost then
    ok = false
    local wait = (cost - tokens) / rate
    if wait > worst_wait then worst, worst_wait = i, wait end
  end
end
local function times(a, b) return struct.pack('<dd', a, b) end
local reply
if ok then
  local spend = cost
  if peek then spend = 0 end
  local best, best_rem, best_reset = 1, nil, 0
  local parts = {}
  for i = 1, n do
    local cap, rate = tonumber(ARGV[3 + 2 * i]), tonumber(ARGV[4 + 2 * i])
    local left = levels[i] - spend
    local rem = math.floor(left + rate * TICK + EPS)
    if best_rem == nil or rem < best_rem then
      best, best_rem, best_reset = i, rem, (cap - left) / rate
    end
    parts[2 * i - 1] = left
    parts[2 * i] = stamps[i]
  end
  if not peek then
    redis.call('SET', KEYS[1], struct.pack(fmt, unpack(parts)), 'PX', math.ceil(ttl * 1000))
  end
  reply = {1, best, best_rem, times(best_reset, 0)}
else
  local cap, rate = tonumber(ARGV[3 + 2 * worst]), tonumber(ARGV[4 + 2 * worst])
  local tokens = levels[worst]
  reply = {0, worst, math.floor(tokens + rate * TICK + EPS), times((cap - tokens) / rate, worst_wait)}
end
if peek then
  for i = 1, n do
    local rate = tonumber(ARGV[4 + 2 * i])
    reply[4 + i] = math.floor(levels[i] + rate * TICK + EPS)
  end
end
return reply
