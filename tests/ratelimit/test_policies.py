"""Behaviour 2 (policies and presets), behaviour 4 (all or nothing) and behaviour 12 (stats)."""

from __future__ import annotations

from typing import Any

import pytest
import redis

from resilience import (
    Backend,
    ConfigurationError,
    RateLimit,
    RateLimitAlgorithm,
    RateLimiter,
    backend_from_url,
)
from tests.conftest import TestClock
from tests.ratelimit.helpers import ALGORITHMS, align
from tests.servers import RedisServer


def test_limits_notation_is_parsed_with_limits() -> None:
    limiter = RateLimiter("5 per 15 minutes")
    assert limiter.limits == (RateLimit(rate=5, period=900.0),)
    assert RateLimiter("100/minute").limits[0].period == 60.0
    two = RateLimiter("10/second; 100/minute").limits
    assert [(p.rate, p.period) for p in two] == [(10, 1.0), (100, 60.0)]
    listed = RateLimiter(["10/second", RateLimit(rate=100, period=60)]).limits
    assert [(p.rate, p.period) for p in listed] == [(10, 1.0), (100, 60.0)]


def test_policy_models_validate() -> None:
    policy = RateLimit(rate=3, period=1.5, burst=6)
    assert policy.capacity == 6
    assert policy.per_second == 2.0
    with pytest.raises(ValueError, match="greater than 0"):
        RateLimit(rate=0, period=1)
    with pytest.raises(ConfigurationError, match="cannot parse"):
        RateLimiter("lots per fortnight")
    with pytest.raises(ConfigurationError, match="burst= applies"):
        RateLimiter(RateLimit(rate=1, period=1, burst=2), algorithm="fixed_window")
    with pytest.raises(ConfigurationError, match="algorithm"):
        RateLimiter("1/second", algorithm="leaky")
    with pytest.raises(ConfigurationError, match="failure_policy"):
        RateLimiter("1/second", failure_policy="shrug")
    with pytest.raises(ConfigurationError, match="at least one"):
        RateLimiter([])


@pytest.mark.parametrize(
    ("preset", "rate", "period"),
    [
        ("general", 100, 60),
        ("auth", 5, 900),
        ("recording", 30, 60),
        ("heavy", 10, 60),
        ("upload", 10, 300),
    ],
)
def test_presets_from_the_seed(preset: str, rate: int, period: float) -> None:
    limiter = RateLimiter.preset(preset, algorithm="sliding_window")
    assert limiter.name == preset
    assert [(p.rate, p.period) for p in limiter.limits] == [(rate, period)]
    assert limiter.algorithm is RateLimitAlgorithm.SLIDING_WINDOW
    with pytest.raises(ConfigurationError, match="known: auth, general"):
        RateLimiter.preset("nope")


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_several_limits_are_all_or_nothing(
    sync_backend: Backend, sync_clock: TestClock, algorithm: str
) -> None:
    limiter = RateLimiter(
        ["3 per 10 seconds", "5 per 1000 seconds"], algorithm=algorithm, backend=sync_backend
    )
    align(sync_backend, sync_clock, 1000)
    assert [limiter.hit_sync("k").allowed for _ in range(4)] == [True, True, True, False]
    refused = limiter.hit_sync("k")
    assert refused.policy == limiter.limits[0]
    usage = limiter.usage_sync("k")
    # The refusals by the first limit took nothing from the second.
    assert [(u.used, u.remaining) for u in usage.policies] == [(3, 0), (3, 2)]
    sync_clock.advance(21)  # the short limit is fresh again, the long one is not
    assert limiter.hit_sync("k", cost=2).allowed
    refused = limiter.hit_sync("k")
    assert not refused.allowed
    assert refused.policy == limiter.limits[1]
    assert refused.limit == 5
    usage = limiter.usage_sync("k")
    assert [u.remaining for u in usage.policies][1] == 0
    # A cost that fits the second limit but not the first consumes from neither.
    before = [u.remaining for u in limiter.usage_sync("k").policies]
    assert not limiter.hit_sync("k", cost=2).allowed
    assert [u.remaining for u in limiter.usage_sync("k").policies] == before


@pytest.mark.redis
@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_two_limits_are_one_round_trip(redis_server: RedisServer, algorithm: str) -> None:
    # A private server, so no other test's scripts show up in its command stats.
    backend = backend_from_url(redis_server.url)
    client: Any = redis.Redis.from_url(redis_server.url)
    try:
        limiter = RateLimiter(["10/second", "100/minute"], algorithm=algorithm, backend=backend)
        limiter.hit_sync("warm")
        client.config_resetstat()
        for _ in range(20):
            limiter.hit_sync("k")
        stats = client.info("commandstats")
        scripts = {k: int(v["calls"]) for k, v in stats.items() if k.startswith("cmdstat_eval")}
        assert scripts == {"cmdstat_evalsha": 20}
    finally:
        client.close()
        backend.close()


def test_stats_count_per_policy_and_usage(sync_backend: Backend, sync_clock: TestClock) -> None:
    limiter = RateLimiter(["2/second", "3/minute"], backend=sync_backend, name="api")
    for _ in range(3):
        limiter.hit_sync("a")
    sync_clock.advance(1.0)
    for _ in range(2):
        limiter.hit_sync("a")
    stats = limiter.stats()
    assert stats.name == "api"
    assert stats.algorithm == "token_bucket"
    assert stats.allowed == 3
    assert stats.rejected == 2
    assert [(p.allowed, p.rejected) for p in stats.policies] == [(3, 1), (3, 1)]
    assert stats.backend_failures == 0
    assert not stats.degraded
    usage = limiter.usage_sync("a")
    assert usage.key == "a"
    assert [(u.capacity, u.used) for u in usage.policies][1] == (3, 3)
    # peek and usage consume nothing and count nothing
    limiter.peek_sync("a")
    assert limiter.stats().allowed == 3


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_reset_and_peek_cover_every_policy(
    sync_backend: Backend, sync_clock: TestClock, algorithm: str
) -> None:
    limiter = RateLimiter(
        ["2 per 10 seconds", "3 per 100 seconds", "4 per 1000 seconds"],
        algorithm=algorithm,
        backend=sync_backend,
    )
    align(sync_backend, sync_clock, 1000)
    assert limiter.hit_sync("k").allowed
    assert limiter.hit_sync("k").allowed
    sync_clock.advance(21)
    assert limiter.hit_sync("k").allowed
    used = [u.used for u in limiter.usage_sync("k").policies]
    assert used[1:] == [3, 3]
    for _ in range(3):  # peeks (allowed or not) change nothing
        limiter.peek_sync("k")
        limiter.peek_sync("k", cost=2)
    assert [u.used for u in limiter.usage_sync("k").policies] == used
    assert not limiter.hit_sync("k").allowed  # the second policy is full
    assert limiter.reset_sync("k")
    # Every policy forgot the key (the log keeps one key per policy).
    assert [u.used for u in limiter.usage_sync("k").policies] == [0, 0, 0]
    assert not limiter.reset_sync("k")
    assert limiter.hit_sync("k", cost=2).allowed
