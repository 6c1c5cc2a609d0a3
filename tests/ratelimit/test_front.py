"""Behaviour 5: the front doors (hit, acquire, peek, reset, decorators), async and sync."""

from __future__ import annotations

import time

import anyio
import anyio.lowlevel
import pytest

from resilience import Backend, RateLimiter, RateLimitExceeded
from tests.conftest import TestClock, make_backend
from tests.ratelimit.helpers import ALGORITHMS

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize("algorithm", ALGORITHMS)
async def test_hit_peek_reset(backend: Backend, clock: TestClock, algorithm: str) -> None:
    limiter = RateLimiter("2 per 10 seconds", algorithm=algorithm, backend=backend)
    peeked = await limiter.peek("user:42")
    assert peeked.allowed
    assert peeked.remaining == 2
    assert (await limiter.try_acquire("user:42")).allowed
    assert (await limiter.hit("user:42")).remaining == 0
    # peek never consumes, however often
    for _ in range(3):
        peeked = await limiter.peek("user:42")
        assert not peeked.allowed
        assert peeked.remaining == 0
        assert peeked.retry_after > 0
    refused = await limiter.hit("user:42")
    assert not refused.allowed
    assert refused.key == "user:42"
    assert refused.headers()["X-RateLimit-Remaining"] == "0"
    assert "Retry-After" in refused.headers()
    assert await limiter.reset("user:42")
    assert not await limiter.reset("user:42")
    assert (await limiter.hit("user:42")).remaining == 1


async def test_acquire_waits_until_allowed(
    backend_kind: str, request: pytest.FixtureRequest, anyio_backend: str
) -> None:
    # Real time here: acquire sleeps for retry_after (memory with the monotonic clock).
    options = {"clock": time.monotonic} if backend_kind == "memory" else {}
    backend = make_backend(backend_kind, request, **options)
    try:
        limiter = RateLimiter("10/second", algorithm="gcra", backend=backend)
        for _ in range(10):
            assert (await limiter.hit("k")).allowed
        start = time.monotonic()
        result = await limiter.acquire("k", timeout=2.0)
        elapsed = time.monotonic() - start
        assert result.allowed
        assert 0.05 < elapsed < 1.0
        # A wait longer than the timeout raises at once, with the retry-after.
        start = time.monotonic()
        with pytest.raises(RateLimitExceeded) as caught:
            await limiter.acquire("k", cost=5, timeout=0.1)
        assert time.monotonic() - start < 0.1
        assert caught.value.retry_after > 0.1
        assert caught.value.result is not None
        # A cost above capacity can never pass: raises immediately even without a timeout.
        with pytest.raises(RateLimitExceeded, match="exceeds the capacity"):
            await limiter.acquire("k", cost=11)
    finally:
        await backend.aclose()


def test_acquire_sync_waits(request: pytest.FixtureRequest) -> None:
    limiter = RateLimiter(
        "20/second", backend=make_backend("memory", request, clock=time.monotonic)
    )
    for _ in range(20):
        limiter.hit_sync("k")
    start = time.monotonic()
    assert limiter.acquire_sync("k", timeout=1.0).allowed
    assert 0.02 < time.monotonic() - start < 0.5
    with pytest.raises(RateLimitExceeded):
        limiter.acquire_sync("k", cost=10, timeout=0.05)
    assert limiter.try_acquire_sync("other").allowed


async def test_decorator_async(backend: Backend) -> None:
    login = RateLimiter("2 per 15 minutes", backend=backend, name="auth")
    calls: list[str] = []

    @login.limit(key=lambda username, **_: username)
    async def sign_in(username: str, password: str) -> bool:
        calls.append(username)
        return password == "pw"

    assert await sign_in("ann", password="pw")
    assert not await sign_in("ann", password="nope")
    with pytest.raises(RateLimitExceeded) as caught:
        await sign_in("ann", password="pw")
    assert caught.value.retry_after > 0
    assert await sign_in("bob", password="pw")  # another key
    assert calls == ["ann", "ann", "bob"]
    assert sign_in.__name__ == "sign_in"


def test_decorator_sync(sync_backend: Backend) -> None:
    limiter = RateLimiter("1/minute", backend=sync_backend)

    @limiter.limit()
    def report() -> int:
        return 7

    @limiter.limit(key="fixed", cost=1)
    def other() -> int:
        return 8

    assert report() == 7
    with pytest.raises(RateLimitExceeded):
        report()
    assert other() == 8


async def test_decorator_waits_with_timeout(anyio_backend: str) -> None:
    limiter = RateLimiter("20/second", backend=None, name="deco-wait")
    await limiter.reset("k")

    @limiter.limit(key="k", timeout=1.0)
    async def work() -> None:
        await anyio.lowlevel.checkpoint()

    start = time.monotonic()
    for _ in range(22):
        await work()
    assert 0.05 < time.monotonic() - start < 1.0


def test_sync_decorator_waits_with_timeout(request: pytest.FixtureRequest) -> None:
    limiter = RateLimiter(
        "20/second", backend=make_backend("memory", request, clock=time.monotonic)
    )

    @limiter.limit(key="k", timeout=1.0)
    def work() -> int:
        return 1

    start = time.monotonic()
    assert sum(work() for _ in range(22)) == 22
    assert 0.05 < time.monotonic() - start < 1.0


async def test_usage_and_headers(backend: Backend) -> None:
    limiter = RateLimiter(["3 per 10 seconds", "10 per 100 seconds"], backend=backend)
    await limiter.hit("k", cost=2)
    usage = await limiter.usage("k")
    assert [(u.capacity, u.used, u.remaining) for u in usage.policies] == [(3, 2, 1), (10, 2, 8)]
    result = await limiter.hit("k")
    assert result.headers() == {
        "X-RateLimit-Limit": "3",
        "X-RateLimit-Remaining": "0",
        "X-RateLimit-Reset": "10",
    }
    assert "allowed=True" in repr(result)
