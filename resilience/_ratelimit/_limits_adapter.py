"""Window limiters on any ``limits`` storage (memcached, MongoDB, its Redis...).

A team already on ``limits`` keeps its storage: :class:`LimitsStorageLimiter` has the same
front doors and result type as :class:`~resilience.RateLimiter` but decides with ``limits``'
own strategies (``fixed_window``, ``sliding_window_counter``, and ``sliding_window`` as its
moving window). What ``limits`` does, this does: its clock is the client's, and several limits
on one key are checked, then consumed one by one (not one atomic step, unlike our scripts).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Sequence
from typing import Any

import anyio.to_thread
import limits
import limits.aio.storage
import limits.aio.strategies
import limits.storage
import limits.strategies

from .._exceptions import ConfigurationError
from .._keys import escape
from ._front import KeyArg, LimiterFrontDoors
from ._policy import RateLimit, RateLimitAlgorithm, parse_limits
from ._result import PolicyStats, RateLimiterStats, RateLimitResult

__all__ = ["LimitsStorageLimiter"]

_SYNC = {
    RateLimitAlgorithm.FIXED_WINDOW: limits.strategies.FixedWindowRateLimiter,
    RateLimitAlgorithm.SLIDING_WINDOW_COUNTER: limits.strategies.SlidingWindowCounterRateLimiter,
    RateLimitAlgorithm.SLIDING_WINDOW: limits.strategies.MovingWindowRateLimiter,
}
_ASYNC = {
    RateLimitAlgorithm.FIXED_WINDOW: limits.aio.strategies.FixedWindowRateLimiter,
    RateLimitAlgorithm.SLIDING_WINDOW_COUNTER: (
        limits.aio.strategies.SlidingWindowCounterRateLimiter
    ),
    RateLimitAlgorithm.SLIDING_WINDOW: limits.aio.strategies.MovingWindowRateLimiter,
}


def _item(policy: RateLimit) -> limits.RateLimitItem:
    period = policy.period
    if period != int(period):
        raise ConfigurationError(f"limits storages need whole-second periods, not {policy}")
    return limits.RateLimitItemPerSecond(policy.rate, int(period))


class LimitsStorageLimiter(LimiterFrontDoors):
    """A window rate limiter that keeps its state in a ``limits`` storage.

    ``storage`` is a ``limits`` storage object (sync or ``limits.aio``) or a ``limits``
    storage URI (``"memory://"``, ``"redis://..."``, ``"memcached://..."``, ``"async+redis://..."``).
    ``algorithm`` is ``fixed_window`` (default), ``sliding_window_counter`` or
    ``sliding_window`` (``limits``' moving window). With an async storage only the async front
    doors work; with a sync one the async front doors run it in a worker thread (except the
    in-process memory storage, called directly).
    """

    def __init__(
        self,
        limits_: str | RateLimit | Sequence[str | RateLimit],
        *,
        storage: Any,
        algorithm: RateLimitAlgorithm | str = RateLimitAlgorithm.FIXED_WINDOW,
        name: str = "default",
    ) -> None:
        try:
            self.algorithm = RateLimitAlgorithm(algorithm)
        except ValueError:
            raise ConfigurationError(f"unknown algorithm {algorithm!r}") from None
        if self.algorithm not in _SYNC:
            raise ConfigurationError(
                f"limits storages run window algorithms only "
                f"({', '.join(a.value for a in _SYNC)}), not {self.algorithm.value}"
            )
        self.limits = parse_limits(limits_, self.algorithm)
        if isinstance(storage, str):
            storage = limits.storage.storage_from_string(storage)
        self.storage = storage
        self.is_async = isinstance(storage, limits.aio.storage.Storage)
        if not self.is_async and not isinstance(storage, limits.storage.Storage):
            raise ConfigurationError(
                f"storage= takes a limits storage or URI, not {type(storage).__name__}"
            )
        table: Any = _ASYNC if self.is_async else _SYNC
        self._strategy: Any = table[self.algorithm](storage)
        self._inline = isinstance(storage, limits.storage.MemoryStorage)
        self._items = [_item(p) for p in self.limits]
        self.name = name
        self._prefix = ("resilience", escape(name))
        self._count_lock = threading.Lock()
        self._allowed = 0
        self._rejected = [0] * len(self.limits)

    # -- the decision, written once for sync strategies and once for async ones --------------

    def _cost_check(self, key: KeyArg, cost: int) -> RateLimitResult | None:
        if type(cost) is not int or cost < 1:
            raise ValueError(f"cost must be a positive int, not {cost!r}")
        smallest = min(range(len(self.limits)), key=lambda i: self.limits[i].rate)
        policy = self.limits[smallest]
        if cost > policy.rate:
            return RateLimitResult.explained(
                (0, smallest + 1, policy.rate, 0.0, math.inf),
                self.limits,
                key,
                f"cost {cost} exceeds the capacity {policy.rate} of {policy}; "
                "it can never be admitted",
            )
        return None

    def _result(
        self, key: KeyArg, allowed: bool, stats: list[Any], fits: list[bool], cost: int
    ) -> RateLimitResult:
        now = time.time()
        if allowed:
            index = min(range(len(stats)), key=lambda i: stats[i].remaining)
            wait = 0.0
        else:
            failing = [i for i, fit in enumerate(fits) if not fit] or [0]
            index = max(failing, key=lambda i: stats[i].reset_time)
            wait = stats[index].reset_time - now
            if wait <= 0:
                # limits' counter storages may report no future reset (a missing previous
                # window reads as expired); a refused hit then waits at least until the
                # current aligned window ends, when its count starts to fade.
                period = self.limits[index].period
                wait = period - (now % period)
        reply = (
            int(allowed),
            index + 1,
            stats[index].remaining,
            max(stats[index].reset_time - now, 0.0),
            wait,
        )
        return RateLimitResult(reply, self.limits, key)

    def _ids(self, key: KeyArg) -> tuple[str, ...]:
        return (*self._prefix, escape(key))

    def _count(self, result: RateLimitResult) -> RateLimitResult:
        with self._count_lock:
            if result.allowed:
                self._allowed += 1
            else:
                self._rejected[result._reply[1] - 1] += 1
        return result

    def _decide_sync(self, key: KeyArg, cost: int, peek: bool) -> RateLimitResult:
        if self.is_async:
            raise ConfigurationError("this limiter has an async limits storage: use await hit()")
        ids = self._ids(key)
        strategy = self._strategy
        fits = [strategy.test(item, *ids, cost=cost) for item in self._items]
        allowed = all(fits)
        if allowed and not peek:
            for i, item in enumerate(self._items):
                fits[i] = strategy.hit(item, *ids, cost=cost)
            allowed = all(fits)
        stats = [strategy.get_window_stats(item, *ids) for item in self._items]
        return self._result(key, allowed, stats, fits, cost)

    async def _decide_async(self, key: KeyArg, cost: int, peek: bool) -> RateLimitResult:
        ids = self._ids(key)
        strategy = self._strategy
        fits = [await strategy.test(item, *ids, cost=cost) for item in self._items]
        allowed = all(fits)
        if allowed and not peek:
            for i, item in enumerate(self._items):
                fits[i] = await strategy.hit(item, *ids, cost=cost)
            allowed = all(fits)
        stats = [await strategy.get_window_stats(item, *ids) for item in self._items]
        return self._result(key, allowed, stats, fits, cost)

    async def _decide(self, key: KeyArg, cost: int, peek: bool) -> RateLimitResult:
        if self.is_async:
            return await self._decide_async(key, cost, peek)
        if self._inline:
            return self._decide_sync(key, cost, peek)
        return await anyio.to_thread.run_sync(self._decide_sync, key, cost, peek)

    # -- front doors -----------------------------------------------------------------------

    def hit_sync(self, key: KeyArg, cost: int = 1) -> RateLimitResult:
        """Decide one hit now (blocking; sync storages only)."""
        refused = self._cost_check(key, cost)
        if refused is not None:
            return self._count(refused)
        return self._count(self._decide_sync(key, cost, False))

    async def hit(self, key: KeyArg, cost: int = 1) -> RateLimitResult:
        """Decide one hit now; never waits."""
        refused = self._cost_check(key, cost)
        if refused is not None:
            return self._count(refused)
        return self._count(await self._decide(key, cost, False))

    def peek_sync(self, key: KeyArg, cost: int = 1) -> RateLimitResult:
        """Whether a hit would pass now, consuming nothing (blocking)."""
        refused = self._cost_check(key, cost)
        return refused if refused is not None else self._decide_sync(key, cost, True)

    async def peek(self, key: KeyArg, cost: int = 1) -> RateLimitResult:
        """Whether a hit would pass now, consuming nothing."""
        refused = self._cost_check(key, cost)
        return refused if refused is not None else await self._decide(key, cost, True)

    def reset_sync(self, key: KeyArg) -> None:
        """Forget ``key`` under every policy (blocking)."""
        for item in self._items:
            self._strategy.clear(item, *self._ids(key))

    async def reset(self, key: KeyArg) -> None:
        """Forget ``key`` under every policy."""
        if self.is_async:
            for item in self._items:
                await self._strategy.clear(item, *self._ids(key))
        else:
            self.reset_sync(key)

    def stats(self) -> RateLimiterStats:
        """Allowed and refused counts per policy (no backend failures: ``limits`` raises)."""
        return RateLimiterStats(
            name=self.name,
            algorithm=self.algorithm.value,
            backend=f"limits:{type(self.storage).__name__}",
            failure_policy="raise",
            policies=tuple(
                PolicyStats(limit=str(p), allowed=self._allowed, rejected=r)
                for p, r in zip(self.limits, self._rejected, strict=True)
            ),
            allowed=self._allowed,
            rejected=sum(self._rejected),
            backend_failures=0,
            degraded=False,
        )
