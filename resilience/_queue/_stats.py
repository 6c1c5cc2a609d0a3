"""Counters kept by the gates and the frozen snapshot :meth:`PriorityQueue.stats` returns."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from ._config import LEVELS, Priority

__all__ = ["Counters", "QueueStats", "WaitStats"]

#: Wait-time samples kept per priority (a ring: the most recent ones).
RING = 512


class Counters:
    """Plain counters, mutated by the gates under their own lock (no models, no allocation).

    ``waits[level]`` is a ring of the last :data:`RING` queue waits (seconds) of that level.
    """

    __slots__ = (
        "cancelled",
        "cleared",
        "completed",
        "displaced",
        "failed",
        "granted",
        "leases_lost",
        "rejected",
        "timed_out",
        "wait_index",
        "waits",
    )

    def __init__(self) -> None:
        self.granted = 0
        self.completed = 0
        self.failed = 0
        self.cancelled = 0
        self.timed_out = 0
        self.rejected = 0
        self.displaced = 0
        self.cleared = 0
        self.leases_lost = 0
        self.waits: list[list[float]] = [[0.0] * RING for _ in range(LEVELS)]
        self.wait_index = [0] * LEVELS

    def record_wait(self, level: int, seconds: float) -> None:
        """Add one queue-wait sample for ``level``."""
        index = self.wait_index[level]
        self.waits[level][index % RING] = seconds
        self.wait_index[level] = index + 1

    def wait_stats(self) -> dict[str, WaitStats]:
        """Percentiles of the retained samples, per priority name."""
        result = {}
        for level in range(LEVELS):
            count = min(self.wait_index[level], RING)
            samples = sorted(self.waits[level][:count])
            result[Priority(level).name] = WaitStats.of(samples, self.wait_index[level])
        return result


def _percentile(samples: list[float], q: float) -> float:
    if not samples:
        return 0.0
    index = min(len(samples) - 1, max(0, round(q * (len(samples) - 1))))
    return samples[index]


class WaitStats(BaseModel):
    """Queue-wait percentiles (seconds) of one priority over its most recent grants."""

    model_config = ConfigDict(frozen=True)

    #: Grants ever made at this priority.
    count: int
    #: Samples the percentiles are computed from (the most recent, at most 512).
    samples: int
    p50: float
    p90: float
    p99: float
    max: float

    @classmethod
    def of(cls, samples: list[float], count: int) -> WaitStats:
        """Build from sorted samples."""
        return cls(
            count=count,
            samples=len(samples),
            p50=_percentile(samples, 0.5),
            p90=_percentile(samples, 0.9),
            p99=_percentile(samples, 0.99),
            max=samples[-1] if samples else 0.0,
        )


class QueueStats(BaseModel):
    """A frozen snapshot of a :class:`~resilience.PriorityQueue` (``stats()`` never blocks).

    On a shared backend ``active``, ``available`` and ``queued`` are the global figures from
    this process's latest exchange with the backend (no extra round trip); the counters
    (``granted`` ... ``cancelled``) and wait times are this process's.
    """

    model_config = ConfigDict(frozen=True)

    name: str
    #: ``local`` (memory backend), ``global`` (shared backend) or ``degraded`` (shared backend
    #: down, the in-process fallback decides).
    scope: str
    max_concurrent: int
    max_queue_size: int
    active: int
    available: int
    queued: dict[str, int]
    queued_total: int
    granted: int
    completed: int
    failed: int
    timed_out: int
    #: Refused at admission (``QueueFull``), including displaced waiters.
    rejected: int
    #: Waiters pushed out by a more urgent newcomer (also counted in ``rejected``).
    displaced: int
    cancelled: int
    #: Waiters failed by :meth:`~resilience.PriorityQueue.clear`.
    cleared: int
    wait: dict[str, WaitStats]
    #: ``active / max_concurrent`` (may exceed 1.0 right after a resize down).
    utilization: float
    #: Slots held by this process (equal to ``active`` on a local queue).
    held_here: int
    #: Shared backends: slots of this process whose lease lapsed while it still used them
    #: (renewals failed or came too late, e.g. Redis unreachable for ``lease_ttl``). The gate
    #: may have granted such a slot again, so ``max_concurrent`` may have been exceeded; see
    #: ``docs/queue.md``. Always 0 on a local queue.
    leases_lost: int = 0
