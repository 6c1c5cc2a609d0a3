-- One atomic step of a circuit breaker. Mirrors resilience/_breaker/_core.py line by line (same
-- field names, same arithmetic); the parity tests run one sequence through both.
--
-- KEYS[1]: the state, a msgpack map.
-- ARGV[1]: the step: acquire | record | admin | status.
-- ARGV[2..15]: the caller's parameters (Params.args(): the caller's config is authoritative).
-- ARGV[16]: the channel on which state changes are published as "gen:state:retry_after".
-- record: ARGV[17] generation, ARGV[18] permit, ARGV[19] outcome, ARGV[20] duration,
--         ARGV[21] failure type.  admin: ARGV[17] operation.
-- Returns the reply documented in _scripts.py (floats as strings).
local CLOSED, OPEN, HALF_OPEN, FORCED_OPEN, DISABLED = 0, 1, 2, 3, 4
local CONSECUTIVE, COUNT = 0, 1
local FAILURE, IGNORED = 1, 2
local NO_CHANGE, STALE = -1, -2
local BUCKETS = 10

local step = ARGV[1]
local p = {
  kind = tonumber(ARGV[2]), threshold = tonumber(ARGV[3]), size = tonumber(ARGV[4]),
  min_calls = tonumber(ARGV[5]), rate = tonumber(ARGV[6]), slow = tonumber(ARGV[7]),
  slow_rate = tonumber(ARGV[8]), recovery = tonumber(ARGV[9]),
  multiplier = tonumber(ARGV[10]), max_recovery = tonumber(ARGV[11]),
  half_open = tonumber(ARGV[12]), success_threshold = tonumber(ARGV[13]),
  lease = tonumber(ARGV[14]), ttl = tonumber(ARGV[15]),
}
local channel = ARGV[16]
local t = now()

local function fmt(x)
  return string.format('%.17g', x)
end

local function buckets()
  local bi, bc, bf, bs = {}, {}, {}, {}
  for j = 1, BUCKETS do
    bi[j] = -1; bc[j] = 0; bf[j] = 0; bs[j] = 0
  end
  return bi, bc, bf, bs
end

-- The ring and the buckets are created on first use (window_add) and dropped on reset, so a
-- consecutive-mode state stays small (it is unpacked and packed on every step).
local function window_reset(st)
  st.wc = 0; st.wf = 0; st.ws = 0
  st.ring = nil
  st.wp = 0
  st.bi, st.bc, st.bf, st.bs = nil, nil, nil, nil
  st.head = -1
end

local function fresh()
  local st = {
    st = CLOSED, gen = math.floor(t * 1000), oa = -1, ou = 0, tr = 0, cf = 0, hs = 0, pn = 0,
    probes = {}, calls = 0, successes = 0, failures = 0, ignored = 0, rejected = 0, slow = 0,
    lft = '', lfa = -1, wk = CONSECUTIVE, wz = 0,
  }
  window_reset(st)
  return st
end

local raw = redis.call('GET', KEYS[1])
local st
if raw then st = cmsgpack.unpack(raw) else st = fresh() end

local function transition(state)
  local old = st.st
  st.st = state
  st.gen = st.gen + 1
  st.hs = 0
  st.probes = {}
  window_reset(st)
  return old
end

local function trip()
  local duration = p.recovery * p.multiplier ^ st.tr
  if duration >= p.max_recovery then
    duration = p.max_recovery
  else
    st.tr = st.tr + 1
  end
  st.oa = t
  st.ou = t + duration
  return transition(OPEN)
end

local function close()
  st.tr = 0
  st.cf = 0
  return transition(CLOSED)
end

local function window_add(failed, slow)
  if st.wk ~= p.kind or st.wz ~= p.size then
    window_reset(st)
    st.wk = p.kind
    st.wz = p.size
  end
  local code = failed + 2 * slow
  if p.kind == COUNT then
    if not st.ring then st.ring = {} end
    local ring = st.ring
    local pos = st.wp
    if pos < #ring then
      local old = ring[pos + 1]
      st.wc = st.wc - 1
      st.wf = st.wf - old % 2
      st.ws = st.ws - math.floor(old / 2)
      ring[pos + 1] = code
    else
      ring[#ring + 1] = code
    end
    st.wp = (pos + 1) % math.floor(p.size)
  else
    local idx = math.floor(t / (p.size / BUCKETS))
    if not st.bi then st.bi, st.bc, st.bf, st.bs = buckets() end
    local bi, bc, bf, bs = st.bi, st.bc, st.bf, st.bs
    if idx ~= st.head then
      for j = 1, BUCKETS do
        if bi[j] ~= -1 and bi[j] <= idx - BUCKETS then
          st.wc = st.wc - bc[j]
          st.wf = st.wf - bf[j]
          st.ws = st.ws - bs[j]
          bi[j] = -1
          bc[j] = 0; bf[j] = 0; bs[j] = 0
        end
      end
      st.head = idx
    end
    local slot = idx % BUCKETS + 1
    if bi[slot] ~= idx then
      st.wc = st.wc - bc[slot]
      st.wf = st.wf - bf[slot]
      st.ws = st.ws - bs[slot]
      bi[slot] = idx
      bc[slot] = 0; bf[slot] = 0; bs[slot] = 0
    end
    bc[slot] = bc[slot] + 1
    bf[slot] = bf[slot] + failed
    bs[slot] = bs[slot] + slow
  end
  st.wc = st.wc + 1
  st.wf = st.wf + failed
  st.ws = st.ws + slow
end

local function count_probes()
  local n = 0
  for _ in pairs(st.probes) do n = n + 1 end
  return n
end

local function acquire()
  local state = st.st
  if state == CLOSED or state == DISABLED then return 0 end
  if state == OPEN then
    if t < st.ou then
      st.rejected = st.rejected + 1
      return -1
    end
    transition(HALF_OPEN)
  elseif state == FORCED_OPEN then
    st.rejected = st.rejected + 1
    return -3
  end
  if count_probes() >= p.half_open then
    local expired = {}
    for permit, deadline in pairs(st.probes) do
      if deadline <= t then expired[#expired + 1] = permit end
    end
    for _, permit in ipairs(expired) do st.probes[permit] = nil end
    if count_probes() >= p.half_open then
      st.rejected = st.rejected + 1
      return -2
    end
  end
  st.pn = st.pn + 1
  st.probes[tostring(st.pn)] = t + p.lease
  return st.pn
end

local function record(gen, permit, outcome, duration, failure_type)
  if gen ~= st.gen then return STALE end
  if permit ~= 0 then st.probes[tostring(permit)] = nil end
  if outcome >= IGNORED then
    if outcome == IGNORED then st.ignored = st.ignored + 1 end
    return NO_CHANGE
  end
  local slow = 0
  if p.slow > 0 and duration >= p.slow then slow = 1 end
  st.calls = st.calls + 1
  st.slow = st.slow + slow
  local failed = 0
  if outcome == FAILURE then failed = 1 end
  if failed == 1 then
    st.failures = st.failures + 1
    st.cf = st.cf + 1
    st.lft = failure_type
    st.lfa = t
  else
    st.successes = st.successes + 1
    st.cf = 0
  end
  local state = st.st
  if state == CLOSED then
    if p.kind == CONSECUTIVE then
      if failed == 1 and st.cf >= p.threshold then return trip() end
      return NO_CHANGE
    end
    window_add(failed, slow)
    if st.wc >= p.min_calls and (
      st.wf >= p.rate * st.wc or (p.slow > 0 and st.ws >= p.slow_rate * st.wc)
    ) then
      return trip()
    end
    return NO_CHANGE
  end
  if state == HALF_OPEN then
    if failed == 1 or slow == 1 then return trip() end
    st.hs = st.hs + 1
    if st.hs >= p.success_threshold then return close() end
  end
  return NO_CHANGE
end

local function admin(op)
  if op == 0 then
    st.calls = 0; st.successes = 0; st.failures = 0; st.ignored = 0; st.rejected = 0
    st.slow = 0
    st.lft = ''
    st.lfa = -1
    st.oa = -1
    return close()
  end
  if op == 1 then
    st.oa = t
    return transition(FORCED_OPEN)
  end
  return transition(DISABLED)
end

local function retry_after()
  if st.st == OPEN then return math.max(st.ou - t, 0) end
  if st.st == FORCED_OPEN then return math.huge end
  return 0
end

local result, old = 0, NO_CHANGE
local gen0 = st.gen
if step == 'acquire' then
  result = acquire()
elseif step == 'record' then
  old = record(tonumber(ARGV[17]), tonumber(ARGV[18]), tonumber(ARGV[19]),
    tonumber(ARGV[20]), ARGV[21])
elseif step == 'admin' then
  old = admin(tonumber(ARGV[17]))
end
if step == 'acquire' and st.gen ~= gen0 then old = OPEN end

if step ~= 'status' then
  if st.st == FORCED_OPEN or st.st == DISABLED then
    redis.call('SET', KEYS[1], cmsgpack.pack(st))
  else
    local ttl = p.ttl + math.max(st.ou - t, 0)
    redis.call('SET', KEYS[1], cmsgpack.pack(st), 'PX', math.ceil(ttl * 1000))
  end
  if st.gen ~= gen0 then
    redis.call('PUBLISH', channel,
      string.format('%d:%d:%s', st.gen, st.st, fmt(retry_after())))
  end
end

local lage, oage = -1, -1
if st.lfa >= 0 then lage = t - st.lfa end
if st.oa >= 0 then oage = t - st.oa end
return {
  result, old, st.st, st.gen, fmt(retry_after()), st.calls, st.successes, st.failures,
  st.ignored, st.rejected, st.slow, st.cf, st.wc, st.wf, st.ws, fmt(oage), st.lft, fmt(lage),
  count_probes(),
}
