"""The pure decision cores: one function per algorithm, the memory twins of the Lua scripts.

Every core is called as ``core(store, keys, args)`` under the memory backend's lock (or by a
Redis script's twin on the ``local`` fallback), with ``store.now`` the backend clock. The
arguments are the same the Lua script receives::

    args = (cost, peek, ttl, n, a_1, b_1, ..., a_n, b_n)

``cost`` hits; ``peek`` 1 to decide without consuming; ``ttl`` seconds every written key lives
(constant per limiter: the time after which a missing key means the same as the stored one);
``n`` limits with two numbers each (capacity and tokens per second for the token bucket, burst
and emission interval for GCRA, limit and period for the windows).

Each returns ``(allowed, index, remaining, reset_after, retry_after)`` for the deciding limit
(1-based ``index``): the limit with the longest wait when refused, the one with the fewest
hits left when admitted. With ``peek`` the reply also carries every limit's remaining hits.
A refused hit changes nothing (all or nothing). Time is resolved to :data:`TICK` (1 µs): a hit
that would pass within 1 µs passes now, so a retry exactly ``retry_after`` later is admitted
even where a float cannot hold that instant exactly (an epoch-scale time, as Redis ``TIME``
gives, is only resolved to about 0.24 µs). Hit counts allow :data:`EPS` of float error. The
Lua twins compute every quantity with the same operations in the same order (windows as
``floor(t / period)``, never Python's ``//``), so both backends return identical replies.
"""

from __future__ import annotations

from collections.abc import Sequence
from math import floor
from typing import Any

from .._backends._memory import MemoryStore

__all__ = [
    "EPS",
    "TICK",
    "Reply",
    "fixed_window",
    "gcra",
    "reset",
    "sliding_window",
    "sliding_window_counter",
    "token_bucket",
]

#: Tolerance of every comparison of hit counts.
EPS = 1e-9
#: Resolution of every decision in time (seconds): Redis ``TIME`` counts microseconds.
TICK = 1e-6

Reply = tuple[Any, ...]


def _decide(
    peek: Any,
    fits: list[bool],
    waits: list[float],
    rem_now: list[int],
    rem_after: list[int],
    reset_now: list[float],
    reset_after: list[float],
) -> Reply:
    """Combine per-limit outcomes into one reply (shared by the multi-limit paths)."""
    n = len(fits)
    if all(fits):
        rem = rem_now if peek else rem_after
        reset = reset_now if peek else reset_after
        best = min(range(n), key=rem.__getitem__)
        reply: Reply = (1, best + 1, rem[best], reset[best], 0.0)
    else:
        worst = max(range(n), key=waits.__getitem__)
        reply = (0, worst + 1, rem_now[worst], reset_now[worst], waits[worst])
    if peek:
        reply += tuple(rem_now)
    return reply


# -- token bucket ----------------------------------------------------------------------------


def token_bucket(store: MemoryStore, keys: Sequence[str], args: Sequence[Any]) -> Reply:
    """Token bucket; state ``[tokens_1, stamp_1, ..., touched]`` under ``keys[0]``."""
    if len(args) == 6:
        # One limit. The key lives 2 x ttl and is touched only when the last touch is more
        # than ttl old: it still outlives the refill (ttl after the last hit) without a TTL
        # update on every hit. ``remaining`` is returned unfloored (the result floors it).
        cost, peek, ttl, _, cap, rate = args
        now = store.now
        state = store.get(keys[0])
        if state is None:
            tokens = cap
        else:
            elapsed = now - state[1]
            tokens = state[0] + elapsed * rate if elapsed > 0 else state[0]
            if tokens > cap:
                tokens = cap
        if tokens + rate * TICK + EPS >= cost:
            if peek:
                level = tokens + rate * TICK
                return (1, 1, level, (cap - tokens) / rate, 0.0, level)
            left = tokens - cost
            if state is None:
                store.set(keys[0], [left, now, now], 2 * ttl)
            else:
                state[0] = left
                state[1] = now
                if now - state[2] > ttl:
                    state[2] = now
                    store.touch(keys[0], 2 * ttl)
            return (1, 1, left + rate * TICK, (cap - left) / rate, 0.0)
        level = tokens + rate * TICK
        if peek:
            return (0, 1, level, (cap - tokens) / rate, (cost - tokens) / rate, level)
        return (0, 1, level, (cap - tokens) / rate, (cost - tokens) / rate)
    cost, peek, ttl, n = args[0], args[1], args[2], args[3]
    now = store.now
    key = keys[0]
    state = store.get(key)
    levels: list[float] = []
    fits: list[bool] = []
    waits: list[float] = []
    for i in range(n):
        cap, rate = args[4 + 2 * i], args[5 + 2 * i]
        tokens = cap
        if state is not None and len(state) == 2 * n + 1:
            elapsed = now - state[2 * i + 1]
            tokens = state[2 * i] + (elapsed * rate if elapsed > 0 else 0.0)
            if tokens > cap:
                tokens = cap
        levels.append(tokens)
        fits.append(tokens + rate * TICK + EPS >= cost)
        waits.append(max(cost - tokens, 0.0) / rate)
    caps = [args[4 + 2 * i] for i in range(n)]
    rates = [args[5 + 2 * i] for i in range(n)]
    reply = _decide(
        peek,
        fits,
        waits,
        [floor(t + r * TICK + EPS) for t, r in zip(levels, rates, strict=True)],
        [floor(t - cost + r * TICK + EPS) for t, r in zip(levels, rates, strict=True)],
        [(c - t) / r for c, t, r in zip(caps, levels, rates, strict=True)],
        [(c - t + cost) / r for c, t, r in zip(caps, levels, rates, strict=True)],
    )
    if reply[0] and not peek:
        new: list[float] = []
        for tokens in levels:
            new += (tokens - cost, now)
        new.append(now)
        store.set(key, new, 2 * ttl)
    return reply


# -- GCRA ------------------------------------------------------------------------------------


def gcra(store: MemoryStore, keys: Sequence[str], args: Sequence[Any]) -> Reply:
    """GCRA; state ``[tat_1, ..., touched]`` (theoretical arrival times) under ``keys[0]``.

    Per limit the arguments are ``tau`` (burst x interval: how far ahead of now the arrival
    time may run) and ``interval`` (seconds per hit).
    """
    if len(args) == 6:
        # One limit; the key lives 2 x ttl, touched at most once per ttl.
        cost, peek, ttl, _, tau, interval = args
        now = store.now
        state = store.get(keys[0])
        tat = state[0] if state is not None and state[0] > now else now
        new_tat = tat + cost * interval
        if now + TICK >= new_tat - tau:
            if peek:
                rem = (tau - (tat - now) + TICK) / interval
                return (1, 1, rem, tat - now, 0.0, rem)
            if state is None:
                store.set(keys[0], [new_tat, now], 2 * ttl)
            else:
                state[0] = new_tat
                if now - state[1] > ttl:
                    state[1] = now
                    store.touch(keys[0], 2 * ttl)
            return (1, 1, (tau - (new_tat - now) + TICK) / interval, new_tat - now, 0.0)
        rem = (tau - (tat - now) + TICK) / interval
        if peek:
            return (0, 1, rem, tat - now, new_tat - tau - now, rem)
        return (0, 1, rem, tat - now, new_tat - tau - now)
    cost, peek, ttl, n = args[0], args[1], args[2], args[3]
    now = store.now
    key = keys[0]
    state = store.get(key)
    tats: list[float] = []
    fits: list[bool] = []
    waits: list[float] = []
    rem_now: list[int] = []
    rem_after: list[int] = []
    reset_now: list[float] = []
    reset_after: list[float] = []
    for i in range(n):
        tau, interval = args[4 + 2 * i], args[5 + 2 * i]
        tat = now
        if state is not None and len(state) == n + 1 and state[i] > now:
            tat = state[i]
        new_tat = tat + cost * interval
        allow_at = new_tat - tau
        tats.append(new_tat)
        fits.append(now + TICK >= allow_at)
        waits.append(max(allow_at - now, 0.0))
        rem_now.append(floor((tau - (tat - now) + TICK) / interval + EPS))
        rem_after.append(floor((tau - (new_tat - now) + TICK) / interval + EPS))
        reset_now.append(tat - now)
        reset_after.append(new_tat - now)
    reply = _decide(peek, fits, waits, rem_now, rem_after, reset_now, reset_after)
    if reply[0] and not peek:
        tats.append(now)
        store.set(key, tats, 2 * ttl)
    return reply


# -- fixed window ----------------------------------------------------------------------------


def fixed_window(store: MemoryStore, keys: Sequence[str], args: Sequence[Any]) -> Reply:
    """Fixed windows aligned on multiples of the period; state ``[window_1, count_1, ...]``.

    Refused hits are not counted (unlike ``limits``' fixed window).
    """
    cost, peek, ttl, n = args[0], args[1], args[2], args[3]
    now = store.now
    key = keys[0]
    state = store.get(key)
    if n == 1:
        # The key is written with ttl = period at the first hit of a window, so it outlives
        # the window without a TTL update on later hits.
        limit, period = args[4], args[5]
        window = floor((now + TICK) / period)
        count = state[1] if state is not None and state[0] == window else 0
        reset_after = (window + 1) * period - now
        if count + cost <= limit:
            if peek:
                return (1, 1, limit - count, reset_after, 0.0, limit - count)
            if state is None:
                store.set(key, [window, cost], ttl)
            elif state[0] == window:
                state[1] = count + cost
            else:
                state[0] = window
                state[1] = cost
                store.touch(key, ttl)
            return (1, 1, limit - count - cost, reset_after, 0.0)
        reply: Reply = (0, 1, limit - count, reset_after, reset_after)
        return (*reply, limit - count) if peek else reply
    fits: list[bool] = []
    waits: list[float] = []
    rem_now: list[int] = []
    rem_after: list[int] = []
    resets: list[float] = []
    new: list[float] = []
    for i in range(n):
        limit, period = args[4 + 2 * i], args[5 + 2 * i]
        window = floor((now + TICK) / period)
        count = 0
        if state is not None and len(state) == 2 * n and state[2 * i] == window:
            count = state[2 * i + 1]
        reset_after = (window + 1) * period - now
        fit = count + cost <= limit
        fits.append(fit)
        waits.append(0.0 if fit else reset_after)
        rem_now.append(limit - count)
        rem_after.append(limit - count - cost)
        resets.append(reset_after)
        new += (window, count + cost)
    reply = _decide(peek, fits, waits, rem_now, rem_after, resets, resets)
    if reply[0] and not peek:
        store.set(key, new, ttl)
    return reply


# -- sliding window counter ------------------------------------------------------------------


def sliding_window_counter(store: MemoryStore, keys: Sequence[str], args: Sequence[Any]) -> Reply:
    """Approximate sliding window: ``prev * (1 - elapsed/period) + current``.

    State ``[window_1, previous_1, current_1, ...]``. The retry-after is exact for this
    estimate: the moment the weighted previous window has decayed enough, or, when the current
    window alone is too full, the moment in the next window when it has.
    """
    if len(args) == 6:
        # One limit. The key is written with ttl = 2 x period at the first hit of a window,
        # so it outlives the next window (where the current count still weighs) without a
        # TTL update on later hits.
        cost, peek, ttl, _, limit, period = args
        now = store.now
        state = store.get(keys[0])
        window = floor((now + TICK) / period)
        prev = curr = 0
        if state is not None:
            if state[0] == window:
                prev, curr = state[1], state[2]
            elif state[0] == window - 1:
                prev = state[2]
        start = window * period
        weight = 1.0 - (now + TICK - start) / period
        estimate = (prev * weight if weight > 0.0 else 0.0) + curr
        if estimate + cost <= limit + EPS and not peek:
            if state is None:
                store.set(keys[0], [window, prev, curr + cost], ttl)
            elif state[0] == window:
                state[2] = curr + cost
            else:
                state[0] = window
                state[1] = prev
                state[2] = cost
                store.touch(keys[0], ttl)
            left = limit - estimate - cost
            return (1, 1, left if left > 0.0 else 0.0, start + 2 * period - now, 0.0)
        if peek or estimate + cost <= limit + EPS:
            return _counter_other(cost, peek, limit, period, now, prev, curr, start, estimate)
        # Refused (inlined: the other hot path).
        if curr + cost <= limit:
            wait = start + (1.0 - (limit - curr - cost) / prev) * period - now
        else:
            wait = start + period + (1.0 - (limit - cost) / curr) * period - now
        rem = limit - estimate
        reset = start + 2 * period - now if curr else (start + period - now if prev else 0.0)
        return (0, 1, rem if rem > 0.0 else 0.0, reset, wait if wait > 0.0 else 0.0)
    cost, peek, ttl, n = args[0], args[1], args[2], args[3]
    now = store.now
    key = keys[0]
    state = store.get(key)
    fits: list[bool] = []
    waits: list[float] = []
    rem_now: list[int] = []
    rem_after: list[int] = []
    reset_now: list[float] = []
    reset_after: list[float] = []
    new: list[float] = []
    for i in range(n):
        limit, period = args[4 + 2 * i], args[5 + 2 * i]
        window = floor((now + TICK) / period)
        prev = curr = 0
        if state is not None and len(state) == 3 * n:
            stored = state[3 * i]
            if stored == window:
                prev, curr = state[3 * i + 1], state[3 * i + 2]
            elif stored == window - 1:
                prev = state[3 * i + 2]
        start = window * period
        weight = 1.0 - (now + TICK - start) / period
        if weight < 0.0:
            weight = 0.0
        estimate = prev * weight + curr
        fit = estimate + cost <= limit + EPS
        fits.append(fit)
        if fit:
            wait = 0.0
        elif curr + cost <= limit:
            wait = start + (1.0 - (limit - curr - cost) / prev) * period - now
        else:
            wait = start + period + (1.0 - (limit - cost) / curr) * period - now
        waits.append(max(wait, 0.0))
        rem_now.append(max(int(limit - estimate + EPS), 0))
        rem_after.append(max(int(limit - estimate - cost + EPS), 0))
        reset_now.append(
            start + 2 * period - now if curr else (start + period - now if prev else 0.0)
        )
        reset_after.append(start + 2 * period - now)
        new += (window, prev, curr + cost)
    reply = _decide(peek, fits, waits, rem_now, rem_after, reset_now, reset_after)
    if reply[0] and not peek:
        store.set(key, new, ttl)
    return reply


def _counter_other(
    cost: int,
    peek: Any,
    limit: int,
    period: float,
    now: float,
    prev: int,
    curr: int,
    start: float,
    estimate: float,
) -> Reply:
    """The one-limit counter's peek and refusal replies (off the admitted hot path)."""
    rem = max(int(limit - estimate + EPS), 0)
    reset = start + 2 * period - now if curr else (start + period - now if prev else 0.0)
    if estimate + cost <= limit + EPS:  # a peek that would pass
        return (1, 1, rem, reset, 0.0, rem)
    if curr + cost <= limit:
        wait = start + (1.0 - (limit - curr - cost) / prev) * period - now
    else:
        wait = start + period + (1.0 - (limit - cost) / curr) * period - now
    reply: Reply = (0, 1, rem, reset, wait if wait > 0.0 else 0.0)
    return (*reply, rem) if peek else reply


# -- sliding window log ----------------------------------------------------------------------


class _Log:
    """Hit times in arrival order; ``head`` skips expired ones (compacted when half dead)."""

    __slots__ = ("head", "times", "touched")

    def __init__(self, now: float) -> None:
        self.times: list[float] = []
        self.head = 0
        self.touched = now

    def trim(self, cutoff: float) -> int:
        times, head = self.times, self.head
        end = len(times)
        while head < end and times[head] <= cutoff:
            head += 1
        if head > 32 and head * 2 > end:
            del times[:head]
            head = 0
        self.head = head
        return len(times) - head


def sliding_window(store: MemoryStore, keys: Sequence[str], args: Sequence[Any]) -> Reply:
    """Exact sliding log: one log per limit (``keys[i]``), at most ``limit`` hits per period.

    Trimming is amortized O(1) per hit, so the cost stays flat as the window fills.
    """
    cost, peek, n = args[0], args[1], args[3]
    now = store.now
    if n == 1:
        return _log_one(store, keys[0], cost, peek, now, args[4], args[5])
    logs: list[_Log | None] = []
    fits: list[bool] = []
    waits: list[float] = []
    rem_now: list[int] = []
    rem_after: list[int] = []
    reset_now: list[float] = []
    reset_after: list[float] = []
    for i in range(n):
        limit, period = args[4 + 2 * i], args[5 + 2 * i]
        log = store.get(keys[i])
        count = log.trim(now - period + TICK) if log is not None else 0
        logs.append(log)
        fit = count + cost <= limit
        fits.append(fit)
        if fit:
            waits.append(0.0)
        else:
            assert log is not None
            oldest_needed = log.times[log.head + count + cost - limit - 1]
            waits.append(max(oldest_needed + period - now, 0.0))
        rem_now.append(limit - count)
        rem_after.append(limit - count - cost)
        reset_now.append(log.times[-1] + period - now if count and log is not None else 0.0)
        reset_after.append(period)
    reply = _decide(peek, fits, waits, rem_now, rem_after, reset_now, reset_after)
    if reply[0] and not peek:
        for i in range(n):
            log = logs[i]
            period = args[5 + 2 * i]
            if log is None:
                log = _Log(now)
                log.times += [now] * cost
                store.set(keys[i], log, 2 * period)
            else:
                log.times += [now] * cost
                if now - log.touched > period:
                    log.touched = now
                    store.touch(keys[i], 2 * period)
    return reply


def _log_one(
    store: MemoryStore, key: str, cost: int, peek: Any, now: float, limit: int, period: float
) -> Reply:
    """One-limit path of :func:`sliding_window`.

    A log lives 2 x period and is touched at most once per period, so it outlives its newest
    entry by at least one period.
    """
    log = store.get(key)
    if log is None:
        count = 0
    else:
        times, head = log.times, log.head
        end = len(times)
        cutoff = now - period + TICK
        if head < end and times[head] <= cutoff:  # trim (inlined _Log.trim)
            head += 1
            while head < end and times[head] <= cutoff:
                head += 1
            if head > 32 and head * 2 > end:
                del times[:head]
                head = 0
            log.head = head
        count = len(times) - head
    if count + cost <= limit:
        if peek:
            reset = log.times[-1] + period - now if count and log is not None else 0.0
            return (1, 1, limit - count, reset, 0.0, limit - count)
        if log is None:
            log = _Log(now)
            store.set(key, log, 2 * period)
        elif now - log.touched > period:
            log.touched = now
            store.touch(key, 2 * period)
        if cost == 1:
            log.times.append(now)
        else:
            log.times += [now] * cost
        return (1, 1, limit - count - cost, period, 0.0)
    assert log is not None
    times = log.times
    wait = times[log.head + count + cost - limit - 1] + period - now
    reply: Reply = (0, 1, limit - count, times[-1] + period - now, wait if wait > 0.0 else 0.0)
    return (*reply, limit - count) if peek else reply


def reset(store: MemoryStore, keys: Sequence[str], args: Sequence[Any]) -> int:
    """Delete every key of one user key; return how many existed."""
    return sum(store.delete(key) for key in keys)
