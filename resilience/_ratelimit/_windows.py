"""The fixed window and sliding window counter cores (see :mod:`._algorithms`)."""

from __future__ import annotations

from collections.abc import Sequence
from math import floor
from typing import Any

from .._backends._memory import MemoryStore
from ._algorithms import EPS, TICK, Reply, decide

__all__ = ["fixed_window", "sliding_window_counter"]


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
        if state is not None and state[0] > window:  # the server clock went back
            window = state[0]
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
        if state is not None and len(state) == 2 * n:
            if state[2 * i] > window:  # the server clock went back
                window = state[2 * i]
            if state[2 * i] == window:
                count = state[2 * i + 1]
        reset_after = (window + 1) * period - now
        fit = count + cost <= limit
        fits.append(fit)
        waits.append(0.0 if fit else reset_after)
        rem_now.append(limit - count)
        rem_after.append(limit - count - cost)
        resets.append(reset_after)
        new += (window, count + cost)
    reply = decide(peek, fits, waits, rem_now, rem_after, resets, resets)
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
        if state is not None and state[0] > window:  # the server clock went back
            window = state[0]
        prev = curr = 0
        if state is not None:
            if state[0] == window:
                prev, curr = state[1], state[2]
            elif state[0] == window - 1:
                prev = state[2]
        start = window * period
        weight = 1.0 - (now + TICK - start) / period
        if weight > 1.0:
            weight = 1.0
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
            if stored > window:  # the server clock went back
                window = stored
            if stored == window:
                prev, curr = state[3 * i + 1], state[3 * i + 2]
            elif stored == window - 1:
                prev = state[3 * i + 2]
        start = window * period
        weight = 1.0 - (now + TICK - start) / period
        if weight < 0.0:
            weight = 0.0
        elif weight > 1.0:
            weight = 1.0
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
    reply = decide(peek, fits, waits, rem_now, rem_after, reset_now, reset_after)
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
