"""The shared test harness.

- Async tests use the anyio plugin and run on asyncio and trio (``anyio_backend``).
- ``backend`` (async tests) and ``sync_backend`` (sync tests) are parametrized over
  :data:`ALL_BACKENDS`: memory (with a fake clock), the local
  Redis server (``REDIS_URL`` or 127.0.0.1:6379, a fresh key prefix per test) and a private
  3-master Redis Cluster built once per session. Every behaviour test that takes ``backend``
  runs on all three. Redis backends are built with ``test_clock=True`` so ``clock.advance()``
  moves the server-side time the scripts see; memory gets a :class:`~resilience.FakeClock`.
- ``RESILIENCE_REQUIRE_REDIS=1`` (set by ``.ci/run``) turns a missing Redis into a failure.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import redis

from resilience import Backend, FakeClock, MemoryBackend, backend_from_url
from resilience._backends._redis import RedisBackend
from tests.servers import RedisCluster, RedisServer

REQUIRE_REDIS = os.environ.get("RESILIENCE_REQUIRE_REDIS", "") not in ("", "0")

#: Every backend a behaviour test must pass on.
ALL_BACKENDS = [
    pytest.param("memory", id="memory"),
    pytest.param("redis", id="redis", marks=pytest.mark.redis),
    pytest.param("cluster", id="cluster", marks=[pytest.mark.redis, pytest.mark.cluster]),
]
#: The shared-state backends only.
REDIS_BACKENDS = ALL_BACKENDS[1:]


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    """Run every anyio test on asyncio and on trio (Redis runs on trio via worker threads)."""
    return str(request.param)


def _missing(reason: str) -> None:
    if REQUIRE_REDIS:
        pytest.fail(f"{reason} (RESILIENCE_REQUIRE_REDIS=1 forbids skipping)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def redis_url() -> str:
    """URL of the shared Redis server; fails or skips when it does not answer."""
    url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    client = redis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1)
    try:
        client.ping()
    except (redis.RedisError, OSError) as error:
        _missing(f"no Redis at {url}: {error}")
    finally:
        client.close()
    return url


@pytest.fixture(scope="session")
def redis_cluster() -> Iterator[RedisCluster]:
    """A private 3-master Redis Cluster, built once per session and torn down after it."""
    if shutil.which("redis-server") is None or shutil.which("redis-cli") is None:
        _missing("redis-server / redis-cli not on PATH")
    cluster = RedisCluster()
    try:
        cluster.start()
    except Exception:
        cluster.stop()
        raise
    yield cluster
    cluster.stop()


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    """A private ``redis-server`` this test may kill and restart; stopped by PID after it."""
    if shutil.which("redis-server") is None:
        _missing("redis-server not on PATH")
    server = RedisServer().start()
    yield server
    server.stop()


def unique_prefix() -> str:
    """A key prefix no other test uses."""
    return "t" + uuid.uuid4().hex[:12]


class TestClock:
    """Moves the time a backend's scripts see: the fake clock, or the Redis test offset."""

    __test__ = False

    def __init__(self, backend: Backend, fake: FakeClock | None) -> None:
        self.backend = backend
        self.fake = fake

    def advance(self, seconds: float) -> None:
        if self.fake is not None:
            self.fake.advance(seconds)
        else:
            assert isinstance(self.backend, RedisBackend)
            self.backend.advance_clock(seconds)


def _drop_keys(backend: RedisBackend) -> None:
    client: Any = backend.client
    keys = list(client.scan_iter(match=f"{backend.prefix}:*", count=1000))
    for key in keys:
        client.delete(key)


def make_backend(kind: str, request: pytest.FixtureRequest, **options: Any) -> Backend:
    """Build a fresh backend of ``kind`` (memory, redis, cluster) for one test."""
    if kind == "memory":
        return MemoryBackend(clock=options.pop("clock", None) or FakeClock(1000.0))
    if kind == "redis":
        url = request.getfixturevalue("redis_url")
    elif kind == "cluster":
        url = request.getfixturevalue("redis_cluster").url
    else:  # pragma: no cover
        raise ValueError(kind)
    options.setdefault("prefix", unique_prefix())
    options.setdefault("test_clock", True)
    return backend_from_url(url, **options)


@pytest.fixture(params=ALL_BACKENDS)
def backend_kind(request: pytest.FixtureRequest) -> str:
    """``memory``, ``redis`` or ``cluster``."""
    return str(request.param)


def _cleanup(built: Backend) -> None:
    if isinstance(built, RedisBackend):
        _drop_keys(built)


@pytest.fixture
async def backend(
    backend_kind: str, request: pytest.FixtureRequest, anyio_backend: str
) -> AsyncIterator[Backend]:
    """For async tests: a fresh backend of every kind, closed on the test's own event loop."""
    built = make_backend(backend_kind, request)
    try:
        yield built
    finally:
        try:
            _cleanup(built)
        finally:
            await built.aclose()


@pytest.fixture
def sync_backend(backend_kind: str, request: pytest.FixtureRequest) -> Iterator[Backend]:
    """For sync tests: a fresh backend of every kind, cleaned up after the test."""
    built = make_backend(backend_kind, request)
    try:
        yield built
    finally:
        try:
            _cleanup(built)
        finally:
            built.close()


def _clock_for(backend: Backend) -> TestClock:
    fake = backend.clock if isinstance(backend, MemoryBackend) else None
    assert fake is None or isinstance(fake, FakeClock)
    return TestClock(backend, fake)


@pytest.fixture
def clock(backend: Backend) -> TestClock:
    """Advance the time the (async) ``backend``'s scripts decide with."""
    return _clock_for(backend)


@pytest.fixture
def sync_clock(sync_backend: Backend) -> TestClock:
    """Advance the time the ``sync_backend``'s scripts decide with."""
    return _clock_for(sync_backend)
