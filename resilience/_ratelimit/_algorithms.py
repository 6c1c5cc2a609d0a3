"""The pure decision cores: one function per algorithm, the memory twins of the Lua scripts.

The cores live in :mod:`._buckets` (token bucket, GCRA), :mod:`._windows` (fixed window,
sliding window counter) and :mod:`._log` (sliding window log); this module holds what they
share. Every core is called as ``core(store, keys, args)`` under the memory backend's lock (or
on the ``local`` fallback's), with ``store.now`` the backend clock. The arguments are the same
the Lua script receives::

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
from typing import Any

from .._backends._memory import MemoryStore

__all__ = ["EPS", "TICK", "Reply", "decide", "reset"]

#: Tolerance of every comparison of hit counts.
EPS = 1e-9
#: Resolution of every decision in time (seconds): Redis ``TIME`` counts microseconds.
TICK = 1e-6

Reply = tuple[Any, ...]


def decide(
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


def reset(store: MemoryStore, keys: Sequence[str], args: Sequence[Any]) -> int:
    """Delete every key of one user key; return how many existed."""
    return sum(store.delete(key) for key in keys)
