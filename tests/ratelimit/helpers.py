"""Helpers for the rate-limiter tests."""

from __future__ import annotations

import math
from typing import Any

import pytest

from resilience import Backend, FakeClock, MemoryBackend, RateLimitAlgorithm
from resilience._backends._redis import RedisBackend
from resilience._backends._scripts import SERVER_TIME
from tests.conftest import TestClock, make_backend
from tests.ratelimit._exact_worker import FROZEN_PRELUDE

ALGORITHMS = [a.value for a in RateLimitAlgorithm]
WINDOWS = ["sliding_window", "sliding_window_counter", "fixed_window"]
BUCKETS = ["token_bucket", "gcra"]


def server_time(backend: Backend) -> float:
    """The time the backend's scripts see (fake clock or Redis TIME plus the test offset)."""
    return float(backend.run_sync(SERVER_TIME, [], []))


def align(backend: Backend, clock: TestClock, period: float, after: float = 0.001) -> None:
    """Move the clock to ``after`` seconds past the next multiple of ``period``."""
    now = server_time(backend)
    target = math.floor(now / period + 1) * period + after
    clock.advance(target - now)


def epsilon(backend: Backend) -> float:
    """How early a retry must be to fail: decisions resolve time to 1 µs (``TICK``) and the
    fake clock is exact; Redis time keeps moving in real time between two calls (a few ms at
    most), so use a margin well above that (``frozen_backend`` has none)."""
    return 1e-5 if backend.is_local else 0.5


#: An epoch-scale start for frozen clocks (Redis TIME is epoch seconds; a float's resolution
#: there is about 0.24 µs).
EPOCH = 1_700_000_000.0


def frozen_backend(kind: str, request: pytest.FixtureRequest) -> tuple[Backend, Any]:
    """A backend whose scripts see exactly :data:`EPOCH` plus what was advanced.

    ``memory``: a :class:`FakeClock`; Redis: a prelude whose ``now()`` is the test offset
    itself, so time moves only when the test says (no real time between two calls).
    Returns the backend and its ``advance(seconds)``.
    """
    if kind == "memory":
        clock = FakeClock(EPOCH)
        return MemoryBackend(clock=clock), clock.advance
    backend = make_backend(kind, request)
    assert isinstance(backend, RedisBackend)
    backend._prelude = FROZEN_PRELUDE
    backend.clock_offset = EPOCH
    return backend, backend.advance_clock
