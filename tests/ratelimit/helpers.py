"""Helpers for the rate-limiter tests."""

from __future__ import annotations

import math

from resilience import Backend, RateLimitAlgorithm
from resilience._backends._scripts import SERVER_TIME
from tests.conftest import TestClock

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
    """How early a retry must be to fail: the fake clock is exact; Redis time keeps moving
    in real time between two calls (a few ms at most), so use a margin well above that."""
    return 1e-6 if backend.is_local else 0.5
