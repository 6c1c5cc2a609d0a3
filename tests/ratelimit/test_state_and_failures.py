"""Behaviour 9 (bounded state) and behaviour 10 (backend down)."""

from __future__ import annotations

import logging
import time
from typing import Any

import pytest

from resilience import (
    Backend,
    BackendError,
    FakeClock,
    MemoryBackend,
    RateLimiter,
    RateLimitEvent,
    RateLimitEventType,
    backend_from_url,
)
from resilience._backends._redis import RedisBackend
from tests.conftest import REDIS_BACKENDS, TestClock
from tests.ratelimit.helpers import ALGORITHMS
from tests.servers import RedisServer


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_memory_drops_idle_keys(algorithm: str) -> None:
    clock = FakeClock(1000.0)
    backend = MemoryBackend(clock=clock)
    limiter = RateLimiter("10/second", algorithm=algorithm, backend=backend, key_cache_size=1000)
    # 100,000 distinct keys, each hit once, 2,000 new keys per (fake) second, then idle.
    for i in range(100_000):
        limiter.hit_sync(i)
        if i % 100 == 99:
            clock.advance(0.05)
    # Keys live at most a few seconds after their last hit: only the recent ones remain.
    assert len(backend.store) < 10_000
    clock.advance(60)
    for i in range(2000):  # any later traffic evicts the idle keys (several per write)
        limiter.hit_sync(f"new{i}")
    assert len(backend.store) <= 2000
    assert len(limiter._keys) <= 1000  # the escaped-key cache is bounded too


@pytest.mark.parametrize("kind", REDIS_BACKENDS)
@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_every_redis_key_has_a_ttl(
    kind: str, algorithm: str, request: pytest.FixtureRequest
) -> None:
    from tests.conftest import make_backend

    backend = make_backend(kind, request)
    assert isinstance(backend, RedisBackend)
    client: Any = backend.client
    try:
        limiter = RateLimiter(["5/second", "50/hour"], algorithm=algorithm, backend=backend)
        for i in range(20):
            limiter.hit_sync(f"user:{i % 4}", cost=1 + i % 2)
        keys = [k for k in client.scan_iter(match=f"{backend.prefix}:*")]
        assert len(keys) == 4 * (2 if algorithm == "sliding_window" else 1)

        def needed(key: bytes) -> float:
            """Milliseconds the key's state still matters after a write."""
            if key.endswith(b".0"):  # the log of the 5/second limit
                return 1000
            return 2 * 3600_000 if algorithm == "sliding_window_counter" else 3600_000

        def check() -> None:
            for key in keys:
                ttl = client.pttl(key)
                assert 0.9 * needed(key) <= ttl <= 2 * needed(key), (key, ttl)

        check()  # long enough for the longest policy
        for key in keys:
            client.pexpire(key, 500)
        backend.advance_clock(2.0)  # the per-second limit is free again
        for i in range(4):
            assert limiter.hit_sync(f"user:{i}").allowed
        check()  # and refreshed by every admitted hit
    finally:
        for key in client.scan_iter(match=f"{backend.prefix}:*"):
            client.delete(key)
        backend.close()


def _down_backend(server: RedisServer, probe_interval: float = 0.5) -> Backend:
    return backend_from_url(server.url, timeout=0.2, probe_interval=probe_interval)


@pytest.mark.redis
def test_fail_open_admits_counts_and_warns(
    redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    # probe_interval=0: every call tries the server, so the recovery needs no waiting.
    backend = _down_backend(redis_server, probe_interval=0.0)
    limiter = RateLimiter("1/minute", backend=backend)
    events: list[RateLimitEvent] = []
    limiter.add_listener(events.append)
    assert limiter.hit_sync("k").allowed
    assert not limiter.hit_sync("k").allowed
    redis_server.kill()
    caplog.set_level(logging.WARNING, logger="resilience.ratelimit")
    start = time.monotonic()
    results = [limiter.hit_sync("k") for _ in range(5)]
    assert time.monotonic() - start < 5 * 0.2 + 0.5  # each bounded by the backend timeout
    assert all(r.allowed and r.degraded for r in results)
    stats = limiter.stats()
    assert stats.backend_failures == 5
    assert stats.degraded
    warnings = [r for r in caplog.records if r.name == "resilience.ratelimit"]
    assert len(warnings) == 1  # one warning per outage, not per call
    assert "admitting" in warnings[0].getMessage()
    with pytest.raises(BackendError):
        limiter.reset_sync("k")
    redis_server.start()
    back = limiter.hit_sync("k")  # a fresh server (no persistence): a fresh bucket
    assert back.allowed
    assert not back.degraded
    assert not limiter.hit_sync("k").allowed  # and limiting again
    assert not limiter.stats().degraded
    assert [e.type for e in events] == [RateLimitEventType.DEGRADED, RateLimitEventType.RECOVERED]
    assert isinstance(events[0].error, BackendError)
    backend.close()


@pytest.mark.redis
def test_fail_closed_refuses(redis_server: RedisServer) -> None:
    backend = _down_backend(redis_server, probe_interval=0.0)
    limiter = RateLimiter("100/minute", backend=backend, failure_policy="fail_closed")
    events: list[RateLimitEvent] = []
    limiter.add_listener(events.append)
    assert limiter.hit_sync("k").allowed
    redis_server.kill()
    refused = limiter.hit_sync("k")
    assert not refused.allowed
    assert refused.degraded
    assert refused.retry_after > 0
    assert "fail_closed" in (refused.reason or "")
    assert limiter.stats().backend_failures == 1
    assert limiter.stats().rejected == 1
    redis_server.start()
    back = limiter.hit_sync("k")
    assert back.allowed
    assert not back.degraded
    assert [e.type for e in events] == [RateLimitEventType.DEGRADED, RateLimitEventType.RECOVERED]
    backend.close()


@pytest.mark.redis
@pytest.mark.anyio
async def test_local_policy_keeps_limiting_in_process(
    redis_server: RedisServer, anyio_backend: str
) -> None:
    backend = _down_backend(redis_server, probe_interval=0.0)
    limiter = RateLimiter("3/minute", backend=backend, failure_policy="local")
    events: list[RateLimitEvent] = []
    limiter.add_listener(events.append)
    assert (await limiter.hit("k")).allowed
    redis_server.kill()
    local = [(await limiter.hit("k")).allowed for _ in range(4)]
    assert local == [True, True, True, False]  # a fresh in-process bucket of 3
    stats = limiter.stats()
    assert stats.backend_failures == 4
    assert stats.degraded
    assert [e.type for e in events] == [RateLimitEventType.DEGRADED]
    redis_server.start()  # a fresh server (no persistence): a fresh shared bucket
    assert [(await limiter.hit("k")).allowed for _ in range(4)] == [True, True, True, False]
    stats = limiter.stats()
    assert stats.backend_failures == 4
    assert not stats.degraded
    assert [e.type for e in events] == [RateLimitEventType.DEGRADED, RateLimitEventType.RECOVERED]
    await backend.aclose()


def test_failure_policy_default_is_fail_open() -> None:
    assert RateLimiter("1/second").stats().failure_policy == "fail_open"


def test_memory_backend_never_degrades(sync_backend: Backend, sync_clock: TestClock) -> None:
    limiter = RateLimiter("1/second", backend=sync_backend)
    limiter.hit_sync("k")
    assert limiter.stats().backend_failures == 0
