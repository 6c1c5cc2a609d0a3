-- GCRA, all limits of one key in one step (twin: resilience/_ratelimit/_buckets.py).
-- KEYS[1]: state: tat_1, tat_2 ... (theoretical arrival times) as little-endian doubles.
-- ARGV: cost, peek, ttl (s), n, then per limit tau (burst * interval), interval (s per hit).
-- Returns {allowed, index, remaining, pack("<dd", reset_after, retry_after)[, remaining_i...]}.
local old, fmt = read_state(1)
local ok = true
local tats, news = {}, {}
local worst, worst_wait = 1, -1
for i = 1, n do
  local tau, interval = tonumber(ARGV[3 + 2 * i]), tonumber(ARGV[4 + 2 * i])
  local tat = t
  if old[i] and old[i] > t then tat = old[i] end
  tats[i] = tat
  news[i] = tat + cost * interval
  local allow_at = news[i] - tau
  if t + TICK < allow_at then
    ok = false
    if allow_at - t > worst_wait then worst, worst_wait = i, allow_at - t end
  end
end
local function times(a, b) return struct.pack('<dd', a, b) end
local function rem(i, tat)
  local tau, interval = tonumber(ARGV[3 + 2 * i]), tonumber(ARGV[4 + 2 * i])
  return math.floor((tau - (tat - t) + TICK) / interval + EPS)
end
local reply
if ok then
  local chosen = news
  if peek then chosen = tats end
  local best, best_rem = 1, nil
  local parts = {}
  for i = 1, n do
    local r = rem(i, chosen[i])
    if best_rem == nil or r < best_rem then best, best_rem = i, r end
    parts[i] = news[i]
  end
  if not peek then
    redis.call('SET', KEYS[1], struct.pack(fmt, unpack(parts)), 'PX', math.ceil(ttl * 1000))
  end
  reply = {1, best, best_rem, times(chosen[best] - t, 0)}
else
  reply = {0, worst, rem(worst, tats[worst]), times(tats[worst] - t, worst_wait)}
end
if peek then
  for i = 1, n do reply[4 + i] = rem(i, tats[i]) end
end
return reply
