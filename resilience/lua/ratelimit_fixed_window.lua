-- Fixed windows aligned on multiples of the period, all limits of one key in one step
-- (twin: resilience/_ratelimit/_windows.py). Refused hits are not counted.
-- KEYS[1]: state: window_1, count_1, window_2, count_2 ... as little-endian doubles.
-- ARGV: cost, peek, ttl (s), n, then per limit limit, period (s).
-- Returns {allowed, index, remaining, pack("<dd", reset_after, retry_after)[, remaining_i...]}.
local old, fmt = read_state(2)
local ok = true
local counts, resets, parts = {}, {}, {}
local worst, worst_wait = 1, -1
for i = 1, n do
  local limit, period = tonumber(ARGV[3 + 2 * i]), tonumber(ARGV[4 + 2 * i])
  local window = math.floor((t + TICK) / period)
  if old[2 * i - 1] and old[2 * i - 1] > window then window = old[2 * i - 1] end  -- clock went back
  local count = 0
  if old[2 * i - 1] == window then count = old[2 * i] end
  counts[i] = count
  resets[i] = (window + 1) * period - t
  parts[2 * i - 1] = window
  parts[2 * i] = count + cost
  if count + cost > limit then
    ok = false
    if resets[i] > worst_wait then worst, worst_wait = i, resets[i] end
  end
end
local function times(a, b) return struct.pack('<dd', a, b) end
local reply
if ok then
  local spend = cost
  if peek then spend = 0 end
  local best, best_rem = 1, nil
  for i = 1, n do
    local r = tonumber(ARGV[3 + 2 * i]) - counts[i] - spend
    if best_rem == nil or r < best_rem then best, best_rem = i, r end
  end
  if not peek then
    redis.call('SET', KEYS[1], struct.pack(fmt, unpack(parts)), 'PX', math.ceil(ttl * 1000))
  end
  reply = {1, best, best_rem, times(resets[best], 0)}
else
  reply = {0, worst, tonumber(ARGV[3 + 2 * worst]) - counts[worst],
    times(resets[worst], worst_wait)}
end
if peek then
  for i = 1, n do reply[4 + i] = tonumber(ARGV[3 + 2 * i]) - counts[i] end
end
return reply
