"""Behaviour 5: the front doors (hit, acquire, peek, reset, decorators), async and sync."""

from __future__ import annotations

import time
from collections.abc import Callable

import anyio
import anyio.lowlevel
import pytest

from resilience import Backend, RateLimiter, RateLimitExceeded, RateLimitResult
from tests.conftest import ALL_BACKENDS, TestClock, make_backend
from tests.ratelimit.helpers import ALGORITHMS, frozen_backend

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


class FakeTime:
    """Makes a limiter's ``acquire`` sleep by advancing the test clock, and records the sleeps.

    ``acquire`` reads its deadline from ``monotonic()``: a counter moved by the sleeps only.
    """

    def __init__(self, limiter: RateLimiter, advance: Callable[[float], None]) -> None:
        self.advance = advance
        self.now = 0.0
        self.sleeps: list[float] = []
        self.on_sleep: Callable[[], None] = lambda: None
        limiter._sleep = self.sleep
        limiter._sleep_sync = self.sleep_sync
        limiter._monotonic = self.monotonic

    def monotonic(self) -> float:
        return self.now

    def sleep_sync(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        self.advance(seconds)
        self.on_sleep()

    async def sleep(self, seconds: float) -> None:
        self.sleep_sync(seconds)
        await anyio.lowlevel.checkpoint()


def _fill(limiter: RateLimiter, key: str) -> None:
    for _ in range(1000):
        if not limiter.hit_sync(key).allowed:
            return
    raise AssertionError("never refused")


@pytest.mark.parametrize("kind", ALL_BACKENDS)
@pytest.mark.parametrize("algorithm", ALGORITHMS)
async def test_acquire_sleeps_exactly_retry_after(
    kind: str, algorithm: str, request: pytest.FixtureRequest, anyio_backend: str
) -> None:
    backend, advance = frozen_backend(kind, request)
    try:
        limiter = RateLimiter("3 per 2 seconds", algorithm=algorithm, backend=backend)
        fake = FakeTime(limiter, advance)
        _fill(limiter, "k")
        wait = (await limiter.peek("k")).retry_after
        assert wait > 0
        result = await limiter.acquire("k", timeout=wait)  # the deadline itself is in time
        assert result.allowed
        assert fake.sleeps == [wait]  # one sleep, exactly the retry-after
        # A cost of 2 may take more than one wait (other refills, other windows): each sleep
        # is the retry-after of the refusal before it, the first one the peeked one.
        _fill(limiter, "k")
        fake.sleeps.clear()
        first = (await limiter.peek("k", cost=2)).retry_after
        assert (await limiter.acquire("k", cost=2)).allowed
        assert fake.sleeps[0] == first
        assert all(s > 0 for s in fake.sleeps)
    finally:
        await backend.aclose()


@pytest.mark.parametrize("kind", ALL_BACKENDS)
@pytest.mark.parametrize("algorithm", ALGORITHMS)
async def test_acquire_gives_up_at_once_and_consumes_nothing(
    kind: str, algorithm: str, request: pytest.FixtureRequest, anyio_backend: str
) -> None:
    backend, advance = frozen_backend(kind, request)
    try:
        limiter = RateLimiter("3 per 2 seconds", algorithm=algorithm, backend=backend)
        fake = FakeTime(limiter, advance)
        _fill(limiter, "k")
        before = await limiter.peek("k")
        with pytest.raises(RateLimitExceeded) as caught:
            await limiter.acquire("k", timeout=before.retry_after - 1e-3)
        assert fake.sleeps == []  # it did not sleep in vain
        assert caught.value.retry_after == before.retry_after
        assert isinstance(caught.value.result, RateLimitResult)
        assert not caught.value.result.allowed
        after = await limiter.peek("k")
        assert (after.remaining, after.retry_after) == (before.remaining, before.retry_after)
        # A cost above the capacity raises at once, even without a timeout.
        with pytest.raises(RateLimitExceeded, match="exceeds the capacity"):
            await limiter.acquire("k", cost=4)
        assert fake.sleeps == []
    finally:
        await backend.aclose()


@pytest.mark.parametrize("kind", ALL_BACKENDS)
async def test_acquire_cancelled_while_waiting_consumes_nothing(
    kind: str, request: pytest.FixtureRequest, anyio_backend: str
) -> None:
    backend, advance = frozen_backend(kind, request)
    try:
        limiter = RateLimiter("1/second", backend=backend)
        fake = FakeTime(limiter, advance)
        assert (await limiter.hit("k")).allowed
        with anyio.CancelScope() as scope:
            fake.on_sleep = scope.cancel  # cancelled during its (first) sleep
            await limiter.acquire("k", timeout=10)
        assert scope.cancelled_caught
        assert fake.sleeps == [1.0]
        # The token that refilled meanwhile is still there: acquire took nothing.
        assert (await limiter.hit("k")).allowed
        assert not (await limiter.hit("k")).allowed
    finally:
        await backend.aclose()


@pytest.mark.parametrize("kind", ALL_BACKENDS)
def test_acquire_sync_sleeps_exactly_retry_after(kind: str, request: pytest.FixtureRequest) -> None:
    backend, advance = frozen_backend(kind, request)
    try:
        limiter = RateLimiter("20/second", algorithm="gcra", backend=backend)
        fake = FakeTime(limiter, advance)
        _fill(limiter, "k")
        wait = limiter.peek_sync("k").retry_after
        assert limiter.acquire_sync("k", timeout=1.0).allowed
        assert fake.sleeps == [wait]
        _fill(limiter, "k")
        with pytest.raises(RateLimitExceeded):
            limiter.acquire_sync("k", cost=10, timeout=0.05)
        assert fake.sleeps == [wait]
        assert limiter.try_acquire_sync("other").allowed
    finally:
        backend.close()


async def test_acquire_really_sleeps(
    backend_kind: str, request: pytest.FixtureRequest, anyio_backend: str
) -> None:
    # Real time (anyio's own sleep on asyncio and trio); the logic is tested above.
    options = {"clock": time.monotonic} if backend_kind == "memory" else {}
    backend = make_backend(backend_kind, request, **options)
    try:
        limiter = RateLimiter("10/second", algorithm="gcra", backend=backend)
        for _ in range(10):
            assert (await limiter.hit("k")).allowed
        start = time.monotonic()
        result = await limiter.acquire("k", timeout=2.0)
        assert result.allowed
        assert time.monotonic() - start >= 0.05  # it slept (the upper bound is load's)
    finally:
        await backend.aclose()


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


async def test_decorator_waits_with_timeout(backend: Backend, clock: TestClock) -> None:
    limiter = RateLimiter("20/second", backend=backend, name="deco-wait")
    fake = FakeTime(limiter, clock.advance)

    @limiter.limit(key="k", timeout=1.0)
    async def work() -> int:
        await anyio.lowlevel.checkpoint()
        return 1

    assert sum([await work() for _ in range(22)]) == 22
    # 20 at once, then one wait of about 1/20 s per call (Redis time also moves by itself).
    assert 1 <= len(fake.sleeps) <= 2
    assert all(0 < s <= 0.05 + 1e-6 for s in fake.sleeps)


def test_sync_decorator_waits_with_timeout(sync_backend: Backend, sync_clock: TestClock) -> None:
    limiter = RateLimiter("20/second", backend=sync_backend)
    fake = FakeTime(limiter, sync_clock.advance)

    @limiter.limit(key="k", timeout=1.0)
    def work() -> int:
        return 1

    assert sum(work() for _ in range(22)) == 22
    assert 1 <= len(fake.sleeps) <= 2
    assert all(0 < s <= 0.05 + 1e-6 for s in fake.sleeps)
    with pytest.raises(RateLimitExceeded):  # the next wait would end past the timeout
        limiter.limit(key="k", cost=20, timeout=0.5)(work)()


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
