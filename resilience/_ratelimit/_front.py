"""Front doors shared by every limiter: waiting (``acquire``) and the decorator.

A limiter only has to provide ``hit`` / ``hit_sync`` (decide without waiting); waiting is a tiny
loop around them that sleeps for the exact ``retry_after`` the backend returned.
"""

from __future__ import annotations

import abc
import functools
import inspect
import math
import time
from collections.abc import Awaitable, Callable
from typing import Any, ParamSpec, TypeVar

import anyio

from .._exceptions import RateLimitExceeded
from ._result import RateLimitResult

__all__ = ["KeyArg", "LimiterFrontDoors"]

P = ParamSpec("P")
R = TypeVar("R")

#: A rate-limit key: a user id, an IP, a route... (``str``, ``bytes`` or ``int``).
KeyArg = str | bytes | int

#: Shortest sleep between two attempts of ``acquire``.
_MIN_SLEEP = 0.001


def _exceeded(result: RateLimitResult, name: str) -> RateLimitExceeded:
    reason = f": {result.reason}" if result.reason else ""
    return RateLimitExceeded(
        f"rate limit {name!r} exceeded for key {result.key!r} ({result.policy}); "
        f"retry after {result.retry_after:.3f}s{reason}",
        retry_after=result.retry_after,
        result=result,
    )


class LimiterFrontDoors(abc.ABC):
    """``acquire``, ``acquire_sync`` and ``limit`` on top of ``hit`` and ``hit_sync``."""

    name: str

    # How acquire waits and reads the time: anyio's sleep (asyncio and trio; cancellable at the
    # sleep, never between an admitted hit and its return), the thread's sleep, the monotonic
    # clock. Instance attributes of the same names replace them (tests drive a fake clock).
    _sleep: Callable[[float], Awaitable[None]] = staticmethod(anyio.sleep)
    _sleep_sync: Callable[[float], None] = staticmethod(time.sleep)
    _monotonic: Callable[[], float] = staticmethod(time.monotonic)

    @abc.abstractmethod
    async def hit(self, key: KeyArg, cost: int = 1) -> RateLimitResult:
        """Decide one hit without waiting."""

    @abc.abstractmethod
    def hit_sync(self, key: KeyArg, cost: int = 1) -> RateLimitResult:
        """Blocking form of :meth:`hit`."""

    async def try_acquire(self, key: KeyArg, cost: int = 1) -> RateLimitResult:
        """Alias of :meth:`hit`: decide now, never wait."""
        return await self.hit(key, cost)

    def try_acquire_sync(self, key: KeyArg, cost: int = 1) -> RateLimitResult:
        """Alias of :meth:`hit_sync`."""
        return self.hit_sync(key, cost)

    async def acquire(
        self,
        key: KeyArg,
        cost: int = 1,
        *,
        timeout: float | None = None,  # noqa: ASYNC109 - bounds the waits, not a cancel scope
    ) -> RateLimitResult:
        """Wait until the hit is admitted, then return the result.

        Sleeps (with anyio, so asyncio and trio) exactly the ``retry_after`` of each refusal.
        Raises :class:`~resilience.RateLimitExceeded` as soon as it is clear the hit cannot be
        admitted within ``timeout`` seconds (``None``: wait as long as needed), and at once
        for a cost above the capacity.
        """
        deadline = None if timeout is None else self._monotonic() + timeout
        while True:
            result = await self.hit(key, cost)
            if result.allowed:
                return result
            wait = result.retry_after
            if not math.isfinite(wait) or (
                deadline is not None and self._monotonic() + wait > deadline
            ):
                raise _exceeded(result, self.name)
            await self._sleep(max(wait, _MIN_SLEEP))

    def acquire_sync(
        self, key: KeyArg, cost: int = 1, *, timeout: float | None = None
    ) -> RateLimitResult:
        """Blocking form of :meth:`acquire` (sleeps the thread)."""
        deadline = None if timeout is None else self._monotonic() + timeout
        while True:
            result = self.hit_sync(key, cost)
            if result.allowed:
                return result
            wait = result.retry_after
            if not math.isfinite(wait) or (
                deadline is not None and self._monotonic() + wait > deadline
            ):
                raise _exceeded(result, self.name)
            self._sleep_sync(max(wait, _MIN_SLEEP))

    def limit(
        self,
        key: Callable[..., KeyArg] | KeyArg | None = None,
        *,
        cost: int = 1,
        timeout: float | None = None,
    ) -> Callable[[Callable[P, R]], Callable[P, R]]:
        """Decorate a ``def`` or ``async def`` so each call is one hit.

        ``key`` is a callable receiving the call's arguments (``lambda username, **_:
        username``), a constant key, or ``None`` (the function's qualified name: one limit
        for all callers). With ``timeout=None`` a refused call raises
        :class:`~resilience.RateLimitExceeded` at once; with a number it waits up to that many
        seconds (:meth:`acquire`).
        """

        def decorate(fn: Callable[P, R]) -> Callable[P, R]:
            default_key = f"{fn.__module__}.{fn.__qualname__}"

            def key_of(args: tuple[Any, ...], kwargs: dict[str, Any]) -> KeyArg:
                if key is None:
                    return default_key
                if callable(key):
                    return key(*args, **kwargs)
                return key

            if inspect.iscoroutinefunction(fn):

                @functools.wraps(fn)
                async def async_wrapper(*args: P.args, **kwargs: P.kwargs) -> Any:
                    user_key = key_of(args, kwargs)
                    if timeout is None:
                        result = await self.hit(user_key, cost)
                        if not result.allowed:
                            raise _exceeded(result, self.name)
                    else:
                        await self.acquire(user_key, cost, timeout=timeout)
                    return await fn(*args, **kwargs)

                return async_wrapper  # type: ignore[return-value]

            @functools.wraps(fn)
            def sync_wrapper(*args: P.args, **kwargs: P.kwargs) -> Any:
                user_key = key_of(args, kwargs)
                if timeout is None:
                    result = self.hit_sync(user_key, cost)
                    if not result.allowed:
                        raise _exceeded(result, self.name)
                else:
                    self.acquire_sync(user_key, cost, timeout=timeout)
                return fn(*args, **kwargs)

            return sync_wrapper

        return decorate
