"""The exact sliding window log core (memory twin of its Lua script; see :mod:`._algorithms`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .._backends._memory import MemoryStore
from ._algorithms import TICK, Reply, decide

__all__ = ["sliding_window"]


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
    reply = decide(peek, fits, waits, rem_now, rem_after, reset_now, reset_after)
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
