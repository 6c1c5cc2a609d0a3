"""The grant rules: pure functions, no I/O, no clock of their own.

The in-process gate (:mod:`._local`) calls them directly; the Redis script
(``resilience/lua/queue_gate.lua``) mirrors them line for line, with the admission thresholds
computed here and passed in as arguments, so the table lives in one place.

- **Admission** (:func:`admit`): a newcomer of level ``p`` is queued while the total number of
  waiters is below ``thresholds[p]``. At or above it, it displaces the *newest* waiter of the
  *lowest* non-empty level below ``p`` (that waiter gets ``QueueFull``); with nothing below it to
  displace, it is refused.
- **Grant order** (:func:`pick`): the waiter with the smallest ``(effective level, sequence)``,
  where the sequence is the arrival order and the effective level is the priority lowered by one
  per ``aging_interval`` waited (:func:`effective_level`). Within a level the head is always the
  oldest waiter, so only the heads of the five levels are compared.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["ADMIT", "REJECT", "admit", "effective_level", "pick"]

#: :func:`admit` result: queue the newcomer.
ADMIT = -1
#: :func:`admit` result: refuse the newcomer (``QueueFull``).
REJECT = -2


def admit(level: int, counts: Sequence[int], thresholds: Sequence[int]) -> int:
    """Decide a newcomer of ``level`` given the waiters per level.

    Returns :data:`ADMIT`, :data:`REJECT`, or the level whose newest waiter is displaced (the
    newcomer is then admitted in its place, so the total does not grow).
    """
    if sum(counts) < thresholds[level]:
        return ADMIT
    for lower in range(len(counts) - 1, level, -1):
        if counts[lower]:
            return lower
    return REJECT


def effective_level(level: int, waited: float, aging_interval: float | None) -> int:
    """The level a waiter competes at after ``waited`` seconds: one step up per interval."""
    if aging_interval is None or waited <= 0:
        return level
    return max(0, level - int(waited // aging_interval))


def pick(
    heads: Sequence[tuple[int, float] | None], now: float, aging_interval: float | None
) -> int:
    """Index of the level whose head waiter is granted next, or ``-1`` when none waits.

    ``heads[level]`` is ``(sequence, enqueued_at)`` of that level's oldest waiter, or ``None``.
    """
    best = -1
    best_key = (0, 0)
    for level, head in enumerate(heads):
        if head is None:
            continue
        seq, enqueued = head
        key = (effective_level(level, now - enqueued, aging_interval), seq)
        if best < 0 or key < best_key:
            best, best_key = level, key
    return best
