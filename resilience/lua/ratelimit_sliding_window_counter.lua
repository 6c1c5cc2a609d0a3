-- Approximate sliding window (previous window weighted by overlap + current window), all
-- limits of one key in one step (twin: resilience/_ratelimit/_windows.py).
-- KEYS[1]: state: window_1, previous_1, current_1 ... as little-endian doubles.
-- ARGV: cost, peek, ttl (s), n, then per limit limit, period (s).
-- Returns {allowed, index, remaining, pack("<dd", reset_after, retry_after)[, remaining_i...]}.
local old, fmt = read_state(3)
local ok = true
local est, prevs, curs, starts, parts = {}, {}, {}, {}, {}
local worst, worst_wait = 1, -1
for i = 1, n do
  local limit, period = tonumber(ARGV[3 + 2 * i]), tonumber(ARGV[4 + 2 * i])
  local window = math.floor((t + TICK) / period)
  if old[3 * i - 2] and old[3 * i - 2] > window then window = old[3 * i - 2] end  -- clock went back
  local prev, curr = 0, 0
  if old[3 * i - 2] == window then
    prev, curr = old[3 * i - 1], old[3 * i]
  elseif old[3 * i - 2] == window - 1 then
    prev = old[3 * i]
  end
  local start = window * period
  local weight = 1 - (t + TICK - start) / period
  if weight < 0 then weight = 0 elseif weight > 1 then weight = 1 end
  est[i] = prev * weight + curr
  curs[i] = curr
  prevs[i] = prev
  starts[i] = start
  parts[3 * i - 2] = window
  parts[3 * i - 1] = prev
  parts[3 * i] = curr + cost
  if est[i] + cost > limit + EPS then
    ok = false
    local wait
    if curr + cost <= limit then
      wait = start + (1 - (limit - curr - cost) / prev) * period - t
    else
      wait = start + period + (1 - (limit - cost) / curr) * period - t
    end
    if wait < 0 then wait = 0 end
    if wait > worst_wait then worst, worst_wait = i, wait end
  end
end
local function times(a, b) return struct.pack('<dd', a, b) end
local function rem(i, spend)
  local r = math.floor(tonumber(ARGV[3 + 2 * i]) - est[i] - spend + EPS)
  if r < 0 then r = 0 end
  return r
end
local function reset_now(i)
  local period = tonumber(ARGV[4 + 2 * i])
  if curs[i] > 0 then return starts[i] + 2 * period - t end
  if prevs[i] > 0 then return starts[i] + period - t end
  return 0
end
local reply
if ok then
  local spend = cost
  if peek then spend = 0 end
  local best, best_rem = 1, nil
  for i = 1, n do
    local r = rem(i, spend)
    if best_rem == nil or r < best_rem then best, best_rem = i, r end
  end
  local reset = starts[best] + 2 * tonumber(ARGV[4 + 2 * best]) - t
  if peek then reset = reset_now(best) end
  if not peek then
    redis.call('SET', KEYS[1], struct.pack(fmt, unpack(parts)), 'PX', math.ceil(ttl * 1000))
  end
  reply = {1, best, best_rem, times(reset, 0)}
else
  reply = {0, worst, rem(worst, 0), times(reset_now(worst), worst_wait)}
end
if peek then
  for i = 1, n do reply[4 + i] = rem(i, 0) end
end
return reply
