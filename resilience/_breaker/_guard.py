"""One protected block, and how an exception is classified."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from types import TracebackType
from typing import TYPE_CHECKING, Any

from ._core import SUCCESS as _SUCCESS

if TYPE_CHECKING:
    from ._breaker import CircuitBreaker

__all__ = ["Guard", "is_cancellation", "matcher"]


def is_cancellation(exc: BaseException) -> bool:
    """Whether ``exc`` is asyncio's or trio's cancellation."""
    if isinstance(exc, asyncio.CancelledError):
        return True
    trio = sys.modules.get("trio")
    return trio is not None and isinstance(exc, trio.Cancelled)


def matcher(spec: Any) -> Callable[[BaseException], bool]:
    """A predicate from exception classes (or the predicate itself)."""
    if isinstance(spec, tuple):
        classes = spec
        return lambda exc: isinstance(exc, classes)
    predicate: Callable[[BaseException], bool] = spec
    return predicate


class Guard:
    """One protected block: ``with breaker.guard():`` / ``async with breaker.guard():``."""

    __slots__ = ("_breaker", "_gen", "_permit", "_t0")

    def __init__(self, breaker: CircuitBreaker) -> None:
        self._breaker = breaker
        self._gen = -1
        self._permit = 0
        self._t0 = 0.0

    def __enter__(self) -> Guard:
        breaker = self._breaker
        self._gen, self._permit = breaker._admit_sync()
        self._t0 = breaker._engine.clock()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        outcome = _SUCCESS if exc is None else self._breaker._classify(exc)
        self._breaker._finish_sync(self._gen, self._permit, outcome, self._t0, exc)

    async def __aenter__(self) -> Guard:
        breaker = self._breaker
        self._gen, self._permit = await breaker._admit()
        self._t0 = breaker._engine.clock()
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        outcome = _SUCCESS if exc is None else self._breaker._classify(exc)
        await self._breaker._finish(self._gen, self._permit, outcome, self._t0, exc)
