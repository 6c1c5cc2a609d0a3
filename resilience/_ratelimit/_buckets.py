"""The token bucket and GCRA cores (memory twins of their Lua scripts; see :mod:`._algorithms`)."""

from __future__ import annotations

from collections.abc import Sequence
from math import floor
from typing import Any

from .._backends._memory import MemoryStore
from ._algorithms import EPS, TICK, Reply, decide

__all__ = ["gcra", "token_bucket"]


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
                if now > state[1]:  # a server clock that went back moves no stamp back
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
    stamps: list[float] = []
    fits: list[bool] = []
    waits: list[float] = []
    for i in range(n):
        cap, rate = args[4 + 2 * i], args[5 + 2 * i]
        tokens = cap
        stamp = now
        if state is not None and len(state) == 2 * n + 1:
            elapsed = now - state[2 * i + 1]
            tokens = state[2 * i] + (elapsed * rate if elapsed > 0 else 0.0)
            if tokens > cap:
                tokens = cap
            if elapsed < 0:
                stamp = state[2 * i + 1]
        levels.append(tokens)
        stamps.append(stamp)
        fits.append(tokens + rate * TICK + EPS >= cost)
        waits.append(max(cost - tokens, 0.0) / rate)
    caps = [args[4 + 2 * i] for i in range(n)]
    rates = [args[5 + 2 * i] for i in range(n)]
    reply = decide(
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
        for tokens, stamp in zip(levels, stamps, strict=True):
            new += (tokens - cost, stamp)
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
    reply = decide(peek, fits, waits, rem_now, rem_after, reset_now, reset_after)
    if reply[0] and not peek:
        tats.append(now)
        store.set(key, tats, 2 * ttl)
    return reply
