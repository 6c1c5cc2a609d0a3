"""Behaviour 11: window limiters on ``limits``' own storages (memory and Redis)."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import limits.aio.storage
import limits.storage
import pytest

from resilience import ConfigurationError, LimitsStorageLimiter, RateLimitExceeded
from tests.conftest import unique_prefix

WINDOWS = ["fixed_window", "sliding_window_counter", "sliding_window"]


@pytest.fixture(
    params=[
        pytest.param("memory", id="limits-memory"),
        pytest.param("redis", id="limits-redis", marks=pytest.mark.redis),
    ]
)
def storage(request: pytest.FixtureRequest) -> Iterator[Any]:
    if request.param == "memory":
        yield limits.storage.MemoryStorage()
        return
    url = request.getfixturevalue("redis_url")
    built = limits.storage.RedisStorage(url, key_prefix=unique_prefix())
    yield built
    built.reset()


@pytest.mark.parametrize("algorithm", WINDOWS)
def test_window_limits_on_a_limits_storage(storage: Any, algorithm: str) -> None:
    limiter = LimitsStorageLimiter(
        "3 per 100 seconds", storage=storage, algorithm=algorithm, name="api"
    )
    results = [limiter.hit_sync("user:42") for _ in range(4)]
    assert [r.allowed for r in results] == [True, True, True, False]
    assert [r.remaining for r in results] == [2, 1, 0, 0]
    refused = results[3]
    assert 0 < refused.retry_after <= 200
    assert limiter.hit_sync("user:43").allowed  # keys are separate
    assert not limiter.peek_sync("user:42").allowed
    limiter.reset_sync("user:42")
    assert limiter.peek_sync("user:42").remaining == 3
    stats = limiter.stats()
    assert (stats.allowed, stats.rejected) == (4, 1)


def test_several_limits_and_cost(storage: Any) -> None:
    limiter = LimitsStorageLimiter(
        ["2 per 100 seconds", "3 per 1000 seconds"], storage=storage, name="two"
    )
    assert limiter.hit_sync("k").allowed
    assert limiter.hit_sync("k").allowed
    refused = limiter.hit_sync("k")
    assert not refused.allowed
    assert refused.policy == limiter.limits[0]
    # The refusal took nothing from the second limit.
    assert limiter.peek_sync("k").allowed is False
    limiter.reset_sync("k")
    too_big = limiter.hit_sync("k", cost=3)
    assert not too_big.allowed
    assert too_big.retry_after == math.inf
    with pytest.raises(RateLimitExceeded):
        limiter.acquire_sync("k", cost=5)


@pytest.mark.anyio
async def test_async_front_doors_with_a_sync_storage(storage: Any, anyio_backend: str) -> None:
    limiter = LimitsStorageLimiter("2 per 100 seconds", storage=storage, name="async")
    assert (await limiter.hit("k")).allowed
    assert (await limiter.peek("k")).remaining == 1
    assert (await limiter.hit("k")).allowed
    assert not (await limiter.hit("k")).allowed
    await limiter.reset("k")
    assert (await limiter.hit("k")).allowed


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
@pytest.mark.anyio
async def test_async_limits_storage(anyio_backend: str) -> None:
    limiter = LimitsStorageLimiter(
        "1 per 100 seconds",
        storage=limits.aio.storage.MemoryStorage(),
        algorithm="sliding_window",
    )
    assert (await limiter.hit("k")).allowed
    assert not (await limiter.hit("k")).allowed
    with pytest.raises(ConfigurationError, match="async"):
        limiter.hit_sync("k")


def test_only_window_algorithms_and_whole_seconds() -> None:
    with pytest.raises(ConfigurationError, match="window algorithms only"):
        LimitsStorageLimiter("1/second", storage="memory://", algorithm="token_bucket")
    with pytest.raises(ConfigurationError, match="whole-second"):
        LimitsStorageLimiter([_half()], storage="memory://")
    with pytest.raises(ConfigurationError, match="limits storage"):
        LimitsStorageLimiter("1/second", storage=object())


def _half() -> Any:
    from resilience import RateLimit

    return RateLimit(rate=1, period=1.5)


def test_a_refused_hit_never_reports_zero_retry_after() -> None:
    """limits may report a reset that is not in the future; a refusal must still wait."""
    import time
    from types import SimpleNamespace

    limiter = LimitsStorageLimiter("3 per 100 seconds", storage="memory://", name="stale")
    stale = SimpleNamespace(reset_time=time.time() - 1, remaining=0)
    refused = limiter._result("k", False, [stale], [False], 1)
    assert not refused.allowed
    assert 0 < refused.retry_after <= 100


def test_peek_counts_nothing(storage: Any) -> None:
    limiter = LimitsStorageLimiter("2 per 100 seconds", storage=storage, name="peek-count")
    assert limiter.peek_sync("k").allowed
    too_big = limiter.peek_sync("k", cost=3)
    assert not too_big.allowed
    assert too_big.retry_after == math.inf
    assert (limiter.stats().allowed, limiter.stats().rejected) == (0, 0)
    assert not limiter.hit_sync("k", cost=3).allowed  # a hit is counted
    assert (limiter.stats().allowed, limiter.stats().rejected) == (0, 1)
