-- Exact sliding log: one list of hit times per limit (KEYS[i]), oldest first, all limits of one
-- key in one step (twin: resilience/_ratelimit/_log.py). Expired entries are popped from
-- the head, so each hit costs amortized O(1) however full the window is.
-- ARGV: cost, peek, ttl (unused), n, then per limit limit, period (s).
-- Returns {allowed, index, remaining, pack("<dd", reset_after, retry_after)[, remaining_i...]}.
local ok = true
local counts = {}
local worst, worst_wait = 1, -1
for i = 1, n do
  local limit, period = tonumber(ARGV[3 + 2 * i]), tonumber(ARGV[4 + 2 * i])
  local key = KEYS[i]
  local cutoff = t - period + TICK
  local head = redis.call('LINDEX', key, 0)
  while head and tonumber(head) <= cutoff do
    redis.call('LPOP', key)
    head = redis.call('LINDEX', key, 0)
  end
  local count = redis.call('LLEN', key)
  counts[i] = count
  if count + cost > limit then
    ok = false
    local needed = tonumber(redis.call('LINDEX', key, count + cost - limit - 1))
    local wait = needed + period - t
    if wait < 0 then wait = 0 end
    if wait > worst_wait then worst, worst_wait = i, wait end
  end
end
local function f(x) return string.format('%.17g', x) end
local function times(a, b) return struct.pack('<dd', a, b) end
local function reset_now(i)
  if counts[i] == 0 then return 0 end
  return tonumber(redis.call('LINDEX', KEYS[i], -1)) + tonumber(ARGV[4 + 2 * i]) - t
end
local reply
if ok then
  local spend = cost
  if peek then spend = 0 end
  local best, best_rem = 1, nil
  for i = 1, n do
    local r = tonumber(ARGV[3 + 2 * i]) - counts[i] - spend
    if best_rem == nil or r < best_rem then best, best_rem = i, r end
  end
  local reset
  if peek then
    reset = reset_now(best)
  else
    reset = tonumber(ARGV[4 + 2 * best])
    local stamp = f(t)
    for i = 1, n do
      local left = cost
      while left > 0 do
        local chunk = math.min(left, 1000)
        local batch = {}
        for j = 1, chunk do batch[j] = stamp end
        redis.call('RPUSH', KEYS[i], unpack(batch))
        left = left - chunk
      end
      redis.call('PEXPIRE', KEYS[i], math.ceil(tonumber(ARGV[4 + 2 * i]) * 1000))
    end
  end
  reply = {1, best, best_rem, times(reset, 0)}
else
  reply = {0, worst, tonumber(ARGV[3 + 2 * worst]) - counts[worst],
    times(reset_now(worst), worst_wait)}
end
if peek then
  for i = 1, n do reply[4 + i] = tonumber(ARGV[3 + 2 * i]) - counts[i] end
end
return reply
