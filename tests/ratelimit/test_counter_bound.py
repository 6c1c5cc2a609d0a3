"""Behaviour 1: the sliding window counter's documented error bound.

The counter estimates the hits in the last period as ``previous * (1 - x) + current`` where
``x`` is the elapsed fraction of the current fixed window. Documented bound (docs/ratelimit.md):

- it never admits more than ``limit`` in one fixed window, and at most ``limit + floor(limit
  * x)`` in the sliding window ending at fraction ``x`` of a window: worst case below ``2 *
  limit``, reached only when the whole previous window's hits came at its very end;
- for steady traffic it admits at most ``limit + 1`` in any sliding window, and under
  sustained overload about 10 % fewer hits than the exact log (it errs on the safe side).
"""

from __future__ import annotations

import pytest

from resilience import Backend, RateLimiter
from tests.conftest import TestClock
from tests.ratelimit.helpers import align


def test_worst_case_is_limit_times_elapsed_fraction(
    sync_backend: Backend, sync_clock: TestClock
) -> None:
    counter = RateLimiter(
        "10 per 10 seconds", algorithm="sliding_window_counter", backend=sync_backend
    )
    log = RateLimiter("10 per 10 seconds", algorithm="sliding_window", backend=sync_backend)
    align(sync_backend, sync_clock, 10, after=9.9)  # the end of a window
    for limiter in (counter, log):
        assert sum(limiter.hit_sync("k").allowed for _ in range(12)) == 10
    sync_clock.advance(0.1 + 5.0)  # half-way through the next window: x = 0.5
    over = sum(counter.hit_sync("k").allowed for _ in range(12))
    exact = sum(log.hit_sync("k").allowed for _ in range(12))
    assert exact == 0  # the 10 hits of 5.1 s ago are still in the exact window
    assert over == 5  # limit * x: 15 hits in the last 10 s, the documented worst case
    assert over <= 10 * 0.5 + 1


@pytest.mark.parametrize("step", [0.25, 0.7])
def test_steady_traffic_stays_within_one_hit_of_the_limit(
    sync_backend: Backend, sync_clock: TestClock, step: float
) -> None:
    period, limit = 10.0, 10
    counter = RateLimiter(
        f"{limit} per 10 seconds", algorithm="sliding_window_counter", backend=sync_backend
    )
    log = RateLimiter(f"{limit} per 10 seconds", algorithm="sliding_window", backend=sync_backend)
    align(sync_backend, sync_clock, period)
    times = {"counter": [], "log": []}  # type: dict[str, list[float]]
    now = 0.0
    for _ in range(int(60 / step)):
        if counter.hit_sync("k").allowed:
            times["counter"].append(now)
        if log.hit_sync("k").allowed:
            times["log"].append(now)
        sync_clock.advance(step)
        now += step
    assert 0.85 * len(times["log"]) <= len(times["counter"]) <= len(times["log"]) + 1
    # Max hits in any sliding window of one period.
    worst = max(sum(1 for u in times["counter"] if t - period < u <= t) for t in times["counter"])
    assert worst <= limit + 1
