-- The shared priority queue: every step of it, one operation per call (ARGV[1]).
-- Mirrors resilience/_queue/_rules.py (admit, effective_level, pick); the admission
-- thresholds come from Python (in ARGV[3]) so that table lives in one place.
--
-- KEYS: 1 holders (ZSET ticket -> lease expiry), 2 info (HASH ticket -> "level enqueued"),
--       3 deadlines (ZSET ticket -> wait deadline), 4 seq (arrival counter),
--       5 limit (max_concurrent set by resize), 6..10 waiters of levels 0..4 (ZSET ticket -> seq)
-- ARGV: 1 op, 2 channel, 3 settings "limit lease aging th0 th1 th2 th3 th4" (limit: the
--       default, or the new one for resize; aging 0: off; th: admission thresholds of levels
--       0..4), 4 ticket, 5 level, 6 wait timeout (0: none), 7.. tickets (renew, reap)
-- Reply: {status, active, limit, queued level 0..4, displaced ticket or '' (renew: lapsed
--        tickets), server time}
-- Messages on the channel: 'g <ticket>' granted, 't <ticket>' timed out, 'x <ticket>'
-- displaced, 'c <ticket> ...' cleared.
-- ops: acquire, release, check, cancel, abandon, reap, renew, clear, resize, pump.
local H, INFO, DL, SEQ, LIM = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local op, channel = ARGV[1], ARGV[2]
local settings = {}
for value in string.gmatch(ARGV[3], '%S+') do
  settings[#settings + 1] = value
end
local lease = tonumber(settings[2])
local aging = tonumber(settings[3])
local ticket = ARGV[4]
local t = now()
local IDLE_MS = 86400000

if op == 'resize' then
  redis.call('SET', LIM, settings[1], 'PX', IDLE_MS)
end
local limit = tonumber(redis.call('GET', LIM) or settings[1])

-- Waiters per level, kept up to date below (no re-counting).
local counts = {}
local total = 0
for p = 0, 4 do
  counts[p] = redis.call('ZCARD', KEYS[6 + p])
  total = total + counts[p]
end

-- Remove a waiter from every structure; true if it was waiting.
local function forget(tk)
  local info = redis.call('HGET', INFO, tk)
  if not info then
    return false
  end
  local p = tonumber(string.match(info, '^(%d+)'))
  redis.call('ZREM', KEYS[6 + p], tk)
  redis.call('ZREM', DL, tk)
  redis.call('HDEL', INFO, tk)
  counts[p] = counts[p] - 1
  total = total - 1
  return true
end

-- Drop expired leases (crashed holders) and expired waiters (request_timeout).
local function housekeeping()
  redis.call('ZREMRANGEBYSCORE', H, '-inf', t)
  if total > 0 then
    local expired = redis.call('ZRANGEBYSCORE', DL, '-inf', t)
    for _, tk in ipairs(expired) do
      forget(tk)
      redis.call('PUBLISH', channel, 't ' .. tk)
    end
  end
end

-- effective_level() and pick() of _rules.py, then grant while slots are free.
local function pump()
  if total == 0 then
    return
  end
  local active = redis.call('ZCARD', H)
  while active < limit and total > 0 do
    local best, best_eff, best_seq = nil, 0, 0
    for p = 0, 4 do
      if counts[p] > 0 then
        local head = redis.call('ZRANGE', KEYS[6 + p], 0, 0, 'WITHSCORES')
        local seq = tonumber(head[2])
        local eff = p
        if aging > 0 then
          local info = redis.call('HGET', INFO, head[1])
          local waited = t - tonumber(string.match(info, ' (.+)$'))
          if waited > 0 then
            eff = math.max(0, p - math.floor(waited / aging))
          end
        end
        if best == nil or eff < best_eff or (eff == best_eff and seq < best_seq) then
          best, best_eff, best_seq = head[1], eff, seq
        end
        if aging <= 0 then
          break -- without aging the first non-empty level wins
        end
      end
    end
    forget(best)
    redis.call('ZADD', H, t + lease, best)
    redis.call('PUBLISH', channel, 'g ' .. best)
    active = active + 1
  end
end

local status = 0
local extra = ''
housekeeping()

if op == 'acquire' then
  pump()
  local level = tonumber(ARGV[5])
  if total == 0 and redis.call('ZCARD', H) < limit then
    redis.call('ZADD', H, t + lease, ticket)
    status = 1
  else
    -- admit() of _rules.py
    local decision = -1
    if total >= tonumber(settings[4 + level]) then
      decision = -2
      for lower = 4, level + 1, -1 do
        if counts[lower] > 0 then
          decision = lower
          break
        end
      end
    end
    if decision == -2 then
      status = -1
    else
      if decision >= 0 then
        local newest = redis.call('ZRANGE', KEYS[6 + decision], -1, -1)
        forget(newest[1])
        redis.call('PUBLISH', channel, 'x ' .. newest[1])
        extra = newest[1]
      end
      local seq = redis.call('INCR', SEQ)
      redis.call('ZADD', KEYS[6 + level], seq, ticket)
      redis.call('HSET', INFO, ticket, level .. ' ' .. string.format('%.17g', t))
      local timeout = tonumber(ARGV[6])
      if timeout > 0 then
        redis.call('ZADD', DL, t + timeout, ticket)
        redis.call('PEXPIRE', DL, IDLE_MS)
      end
      counts[level] = counts[level] + 1
      total = total + 1
      redis.call('PEXPIRE', KEYS[6 + level], IDLE_MS)
      redis.call('PEXPIRE', INFO, IDLE_MS)
      redis.call('PEXPIRE', SEQ, IDLE_MS)
      status = 0
    end
  end
elseif op == 'release' then
  status = redis.call('ZREM', H, ticket)
  pump()
elseif op == 'check' then
  pump()
  if redis.call('ZSCORE', H, ticket) then
    status = 1
  elseif redis.call('HEXISTS', INFO, ticket) == 1 then
    status = 0
  else
    status = -1
  end
elseif op == 'cancel' or op == 'abandon' then
  -- A waiter gives up: 0 removed while waiting; 1 it had been granted (released again for
  -- 'abandon', kept for 'cancel'); -1 it was gone already (expired, displaced, cleared).
  if forget(ticket) then
    status = 0
  elseif redis.call('ZSCORE', H, ticket) then
    status = 1
    if op == 'abandon' then
      redis.call('ZREM', H, ticket)
    end
  else
    status = -1
  end
  pump()
elseif op == 'reap' then
  -- Tickets a process gave up on while Redis did not answer (ARGV[7..]): withdrawn if still
  -- queued, released if granted meanwhile. Status: how many were found.
  for i = 7, #ARGV do
    if forget(ARGV[i]) or redis.call('ZREM', H, ARGV[i]) == 1 then
      status = status + 1
    end
  end
  pump()
elseif op == 'renew' then
  -- Status: leases renewed; extra: the tickets whose lease had already lapsed (space-separated).
  local lost = {}
  for i = 7, #ARGV do
    if redis.call('ZSCORE', H, ARGV[i]) then
      redis.call('ZADD', H, t + lease, ARGV[i])
      status = status + 1
    else
      lost[#lost + 1] = ARGV[i]
    end
  end
  extra = table.concat(lost, ' ')
  -- A live holder keeps the whole queue alive: long waiters' entries, the arrival counter and
  -- a resized limit expire only after 24 h without any holder (holders: refreshed below).
  for i = 2, 10 do
    redis.call('PEXPIRE', KEYS[i], IDLE_MS)
  end
  pump()
elseif op == 'clear' then
  local cleared = {}
  for p = 0, 4 do
    for _, tk in ipairs(redis.call('ZRANGE', KEYS[6 + p], 0, -1)) do
      cleared[#cleared + 1] = tk
    end
    redis.call('DEL', KEYS[6 + p])
    counts[p] = 0
  end
  total = 0
  redis.call('DEL', INFO, DL)
  for i = 1, #cleared, 100 do
    local last = math.min(i + 99, #cleared)
    redis.call('PUBLISH', channel, 'c ' .. table.concat(cleared, ' ', i, last))
  end
  status = #cleared
else
  -- 'resize' and 'pump': housekeeping, then grant what is free.
  pump()
end

redis.call('PEXPIRE', H, IDLE_MS)
return {status, redis.call('ZCARD', H), limit, counts[0], counts[1], counts[2], counts[3],
  counts[4], extra, string.format('%.17g', t)}
