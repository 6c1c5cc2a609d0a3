"""Fixtures for breaker tests: breakers on the parametrized backends, closed after each test."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from resilience import Backend, CircuitBreaker, CircuitState

Make = Callable[..., CircuitBreaker]


def fresh_name() -> str:
    return "b-" + uuid.uuid4().hex[:10]


def _factory(backend: Backend) -> tuple[Make, list[CircuitBreaker]]:
    created: list[CircuitBreaker] = []

    def make(name: str | None = None, **options: Any) -> CircuitBreaker:
        breaker = CircuitBreaker(name or fresh_name(), backend=backend, **options)
        created.append(breaker)
        return breaker

    return make, created


@pytest.fixture
def make_sync(sync_backend: Backend) -> Iterator[Make]:
    """Build breakers on ``sync_backend``."""
    make, created = _factory(sync_backend)
    yield make
    for breaker in created:
        breaker.close()


@pytest.fixture
def make(backend: Backend) -> Iterator[Make]:
    """Build breakers on the async ``backend``."""
    factory, created = _factory(backend)
    yield factory
    for breaker in created:
        breaker.close()


class Boom(Exception):
    """The failure the tests raise."""


def boom() -> None:
    raise Boom("down")


async def aboom() -> None:
    raise Boom("down")


def ok() -> str:
    return "ok"


async def aok() -> str:
    return "ok"


def state(breaker: CircuitBreaker) -> CircuitState:
    """The breaker's state (a call, so type checkers do not narrow it between steps)."""
    return breaker.state


def fail(breaker: CircuitBreaker, times: int = 1) -> None:
    """Record ``times`` failures through ``call``."""
    for _ in range(times):
        with pytest.raises(Boom):
            breaker.call(boom)


def succeed(breaker: CircuitBreaker, times: int = 1) -> None:
    for _ in range(times):
        assert breaker.call(ok) == "ok"
