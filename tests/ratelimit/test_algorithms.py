"""Behaviours 1, 3, 6 and 7: the algorithms, cost, exact retry-after, burst then steady rate."""

from __future__ import annotations

import math
import random

import pytest

from resilience import Backend, MemoryBackend, RateLimit, RateLimiter
from resilience._backends._redis import RedisBackend
from tests.conftest import ALL_BACKENDS, TestClock
from tests.ratelimit.helpers import ALGORITHMS, BUCKETS, EPOCH, align, epsilon, frozen_backend


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_admits_the_limit_then_refuses(
    sync_backend: Backend, sync_clock: TestClock, algorithm: str
) -> None:
    limiter = RateLimiter("5 per 10 seconds", algorithm=algorithm, backend=sync_backend)
    align(sync_backend, sync_clock, 10)
    results = [limiter.hit_sync("user:1") for _ in range(6)]
    assert [r.allowed for r in results] == [True] * 5 + [False]
    assert [r.remaining for r in results[:5]] == [4, 3, 2, 1, 0]
    assert results[5].remaining == 0
    assert results[5].limit == 5
    assert results[5].retry_after > 0
    # Another key is independent.
    assert limiter.hit_sync("user:2").allowed
    # After a whole period (two for the approximate counter) the key is fresh again.
    sync_clock.advance(20)
    assert limiter.hit_sync("user:1").remaining == 4


def test_token_bucket_refills_continuously(sync_backend: Backend, sync_clock: TestClock) -> None:
    limiter = RateLimiter("4/second", backend=sync_backend)
    for _ in range(4):
        assert limiter.hit_sync("k").allowed
    refused = limiter.hit_sync("k")
    assert not refused.allowed
    assert refused.retry_after == pytest.approx(0.25, abs=0.01)
    assert refused.reset_after == pytest.approx(1.0, abs=0.01)
    sync_clock.advance(0.5)
    assert [limiter.hit_sync("k").allowed for _ in range(3)] == [True, True, False]


def test_gcra_spaces_hits_by_the_emission_interval(
    sync_backend: Backend, sync_clock: TestClock
) -> None:
    limiter = RateLimiter(
        RateLimit(rate=2, period=1, burst=1), algorithm="gcra", backend=sync_backend
    )
    assert limiter.hit_sync("k").allowed
    refused = limiter.hit_sync("k")
    assert not refused.allowed
    assert refused.retry_after == pytest.approx(0.5, abs=0.01)
    sync_clock.advance(0.5)
    assert limiter.hit_sync("k").allowed


def test_sliding_window_log_is_exact_over_any_window(
    sync_backend: Backend, sync_clock: TestClock
) -> None:
    limiter = RateLimiter("3 per 10 seconds", algorithm="sliding_window", backend=sync_backend)
    assert limiter.hit_sync("k").allowed  # t = 0
    sync_clock.advance(4)
    assert limiter.hit_sync("k").allowed  # t = 4
    assert limiter.hit_sync("k").allowed  # t = 4
    refused = limiter.hit_sync("k")
    assert not refused.allowed
    # The oldest hit (t = 0) leaves the window at t = 10: 6 s from now.
    assert refused.retry_after == pytest.approx(6.0, abs=0.01)
    sync_clock.advance(6.5)
    assert limiter.hit_sync("k").allowed  # only the t = 0 hit expired
    assert not limiter.hit_sync("k").allowed


def test_fixed_window_resets_at_the_boundary(sync_backend: Backend, sync_clock: TestClock) -> None:
    limiter = RateLimiter("2 per 10 seconds", algorithm="fixed_window", backend=sync_backend)
    align(sync_backend, sync_clock, 10, after=7.0)
    assert limiter.hit_sync("k").allowed
    assert limiter.hit_sync("k").allowed
    refused = limiter.hit_sync("k")
    assert refused.retry_after == pytest.approx(3.0, abs=0.05)
    assert refused.reset_after == pytest.approx(3.0, abs=0.05)
    sync_clock.advance(3.1)  # next window: the boundary burst of fixed windows
    assert limiter.hit_sync("k").allowed
    assert limiter.hit_sync("k").allowed


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_cost_consumes_several_units(
    sync_backend: Backend, sync_clock: TestClock, algorithm: str
) -> None:
    limiter = RateLimiter("10 per 10 seconds", algorithm=algorithm, backend=sync_backend)
    align(sync_backend, sync_clock, 10)
    first = limiter.hit_sync("k", cost=4)
    assert first.allowed
    assert first.remaining == 6
    assert limiter.hit_sync("k", cost=6).allowed
    refused = limiter.hit_sync("k", cost=2)
    assert not refused.allowed
    assert refused.remaining == 0


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_cost_above_capacity_is_refused_at_once(sync_backend: Backend, algorithm: str) -> None:
    limiter = RateLimiter(["5/second", "20/minute"], algorithm=algorithm, backend=sync_backend)
    refused = limiter.hit_sync("k", cost=6)
    assert not refused.allowed
    assert refused.retry_after == math.inf
    assert refused.reason is not None
    assert "exceeds the capacity 5" in refused.reason
    # Nothing was consumed.
    assert limiter.peek_sync("k").remaining == 5
    with pytest.raises(ValueError, match="positive int"):
        limiter.hit_sync("k", cost=0)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_retry_after_is_exact(sync_backend: Backend, sync_clock: TestClock, algorithm: str) -> None:
    eps = epsilon(sync_backend)
    limiter = RateLimiter("3 per 30 seconds", algorithm=algorithm, backend=sync_backend)
    align(sync_backend, sync_clock, 30, after=3.0)
    for _ in range(3):
        assert limiter.hit_sync("k").allowed
        sync_clock.advance(1.0)
    refused = limiter.hit_sync("k")
    assert not refused.allowed
    wait = refused.retry_after
    assert 2 * eps < wait < 60
    sync_clock.advance(wait - eps)
    early = limiter.hit_sync("k")
    assert not early.allowed, (wait, early)
    assert early.retry_after <= eps + 1e-6
    sync_clock.advance(eps)
    assert limiter.hit_sync("k").allowed


@pytest.mark.parametrize("algorithm", BUCKETS)
def test_burst_then_steady_rate(
    sync_backend: Backend, sync_clock: TestClock, algorithm: str
) -> None:
    # Capacity 10, 2 per second: an idle bucket admits exactly 10 at once, then 2 per second.
    limiter = RateLimiter(
        RateLimit(rate=2, period=1, burst=10), algorithm=algorithm, backend=sync_backend
    )
    burst = sum(limiter.hit_sync("k").allowed for _ in range(15))
    assert burst == 10
    admitted = 0
    for _ in range(100):  # T = 10 s, a hit attempt every 0.1 s
        sync_clock.advance(0.1)
        admitted += limiter.hit_sync("k").allowed
    assert abs(admitted - 20) <= 1


@pytest.mark.parametrize("algorithm", BUCKETS)
def test_fractional_rates_lose_no_tokens(
    sync_backend: Backend, sync_clock: TestClock, algorithm: str
) -> None:
    # 2 per 5 s = 0.4 per second; refused attempts in between must not eat the refill.
    limiter = RateLimiter("2 per 5 seconds", algorithm=algorithm, backend=sync_backend)
    assert limiter.hit_sync("k").allowed
    assert limiter.hit_sync("k").allowed
    admitted = 0
    for _ in range(400):  # T = 100 s in steps of 0.25 s: 0.1 token per step
        sync_clock.advance(0.25)
        admitted += limiter.hit_sync("k").allowed
    assert abs(admitted - 40) <= 1


EXACT_SPECS: list[str | RateLimit | list[str | RateLimit]] = [
    "3 per 30 seconds",
    "7 per 3 seconds",
    "2 per 5 seconds",
    "100/minute",
    "5 per 15 minutes",
    RateLimit(rate=1, period=0.3),
    ["7 per 3 seconds", "20 per 60 seconds"],
    [RateLimit(rate=1, period=0.7), "2 per 5 seconds", "5 per 15 minutes"],
]


@pytest.mark.parametrize("kind", ALL_BACKENDS)
@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_retry_after_is_exact_at_epoch_scale(
    kind: str, algorithm: str, request: pytest.FixtureRequest
) -> None:
    # Decisions resolve time to 1 µs: a retry exactly retry_after later passes, one 10 µs
    # earlier does not, and a refusal never says "retry after 0".
    backend, advance = frozen_backend(kind, request)
    early = 1e-5
    try:
        for number, spec in enumerate(EXACT_SPECS):
            limiter = RateLimiter(spec, algorithm=algorithm, backend=backend, name=f"x{number}")
            rng = random.Random(number)
            for _ in range(8):
                for _ in range(1000):
                    result = limiter.hit_sync("k")
                    if not result.allowed:
                        break
                    advance(rng.choice([0.0, 0.013, 0.1, 0.37, 1.1]))
                wait = result.retry_after
                assert wait > 0, (spec, result)
                if wait > early:
                    advance(wait - early)
                    assert not limiter.peek_sync("k").allowed, (spec, wait)
                    advance(early)
                else:
                    advance(wait)
                assert limiter.hit_sync("k").allowed, (spec, wait)
    finally:
        backend.close()


@pytest.mark.parametrize("kind", ALL_BACKENDS)
@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_a_clock_that_goes_back_admits_no_more(
    kind: str, algorithm: str, request: pytest.FixtureRequest
) -> None:
    # A Redis failover to a server whose clock is behind (or a stepped clock): the time the
    # scripts see jumps back 6 s, then forward again. No more than the limit may pass.
    backend, _ = frozen_backend(kind, request)
    now = [EPOCH + 5.0]
    if isinstance(backend, MemoryBackend):
        backend = MemoryBackend(clock=lambda: now[0])

    def set_time(value: float) -> None:
        now[0] = value
        if isinstance(backend, RedisBackend):
            backend.clock_offset = value

    try:
        limiter = RateLimiter("4 per 10 seconds", algorithm=algorithm, backend=backend)
        set_time(EPOCH + 5.0)
        admitted = sum(limiter.hit_sync("k").allowed for _ in range(2))
        set_time(EPOCH - 1.0)  # 6 s back, into the previous window
        admitted += sum(limiter.hit_sync("k").allowed for _ in range(4))
        set_time(EPOCH + 5.0)
        admitted += sum(limiter.hit_sync("k").allowed for _ in range(4))
        assert admitted == 4
    finally:
        backend.close()
