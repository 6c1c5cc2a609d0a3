"""A backend that dies: bounded failures, our own errors, automatic reconnection, policies."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from typing import Any

import anyio
import pytest
import redis

from resilience import (
    BackendError,
    BackendHealth,
    BackendUnavailable,
    FailurePolicy,
    backend_from_url,
)
from resilience._backends._redis import RedisBackend
from resilience._backends._scripts import COUNTER, NOOP
from resilience._policy import PolicyRunner
from tests.servers import RedisServer

pytestmark = pytest.mark.redis


@pytest.fixture
def private(redis_server: RedisServer) -> Iterator[RedisBackend]:
    backend = backend_from_url(redis_server.url, timeout=0.25, probe_interval=0.0)
    assert isinstance(backend, RedisBackend)
    yield backend
    backend.close()


def test_killed_and_restarted_server_is_reconnected(
    redis_server: RedisServer, private: RedisBackend
) -> None:
    key = private.key("test", "restart", "n")
    assert private.run_sync(COUNTER, [key], [1, 60_000]) == 1
    redis_server.kill()
    with pytest.raises(BackendUnavailable):
        private.run_sync(COUNTER, [key], [1, 60_000])
    redis_server.start()  # same port, empty data, empty script cache
    assert private.run_sync(COUNTER, [key], [1, 60_000]) == 1  # same backend object
    assert private.health().available
    assert private.health().recoveries == 1


@pytest.mark.anyio
async def test_killed_and_restarted_server_is_reconnected_async(
    redis_server: RedisServer, private: RedisBackend
) -> None:
    key = private.key("test", "restart", "n")
    assert await private.run(COUNTER, [key], [1, 60_000]) == 1
    redis_server.kill()
    with pytest.raises(BackendUnavailable):
        await private.run(COUNTER, [key], [1, 60_000])
    redis_server.start()
    assert await private.run(COUNTER, [key], [1, 60_000]) == 1
    await private.aclose()


def test_a_frozen_server_fails_within_the_timeout(
    redis_server: RedisServer, private: RedisBackend
) -> None:
    """SIGSTOP: the socket accepts but nothing answers. The call must not hang."""
    private.run_sync(NOOP, [private.key("test", "x")], [])
    assert redis_server.process is not None
    os.kill(redis_server.process.pid, signal.SIGSTOP)
    try:
        start = time.monotonic()
        with pytest.raises(BackendUnavailable) as info:
            private.run_sync(NOOP, [private.key("test", "x")], [])
        assert time.monotonic() - start < 0.25 * 4
        assert isinstance(info.value.__cause__, redis.TimeoutError)
    finally:
        os.kill(redis_server.process.pid, signal.SIGCONT)


@pytest.mark.anyio
async def test_a_frozen_server_fails_within_the_timeout_async(
    redis_server: RedisServer, private: RedisBackend
) -> None:
    await private.run(NOOP, [private.key("test", "x")], [])
    assert redis_server.process is not None
    os.kill(redis_server.process.pid, signal.SIGSTOP)
    try:
        start = time.monotonic()
        with pytest.raises(BackendUnavailable):
            await private.run(NOOP, [private.key("test", "x")], [])
        assert time.monotonic() - start < 0.25 * 4
    finally:
        os.kill(redis_server.process.pid, signal.SIGCONT)
    await private.aclose()


def test_nobody_listening_fails_fast() -> None:
    from tests.servers import free_port

    backend = backend_from_url(f"redis://127.0.0.1:{free_port()}/0", timeout=0.25)
    start = time.monotonic()
    with pytest.raises(BackendUnavailable) as info:
        backend.ping_sync()
    assert time.monotonic() - start < 1
    assert isinstance(info.value, BackendError)
    assert isinstance(info.value, ConnectionError)
    backend.close()


def test_outage_is_short_circuited_until_the_probe_interval(redis_server: RedisServer) -> None:
    backend = backend_from_url(redis_server.url, timeout=0.25, probe_interval=3600)
    events: list[BackendHealth] = []
    backend.status.add_listener(events.append)
    backend.ping_sync()
    redis_server.kill()
    with pytest.raises(BackendUnavailable):
        backend.ping_sync()
    redis_server.start()
    observer: Any = redis.Redis(port=redis_server.port)  # stubs differ across redis-py versions
    connections = int(observer.info("stats")["total_connections_received"])
    with pytest.raises(BackendUnavailable, match="next attempt in"):
        backend.ping_sync()  # no network I/O: the server is not even tried
    # the restarted server saw only the observer's own connection
    assert int(observer.info("stats")["total_connections_received"]) == connections
    observer.close()
    assert [e.available for e in events] == [False]
    assert events[0].last_error
    assert "ConnectionError" in events[0].last_error
    backend.close()


def test_status_listeners_hear_outage_and_recovery(
    redis_server: RedisServer, private: RedisBackend
) -> None:
    events: list[BackendHealth] = []
    private.status.add_listener(events.append)

    def broken(_: BackendHealth) -> None:
        raise ZeroDivisionError

    private.status.add_listener(broken)  # a raising listener changes nothing
    private.ping_sync()
    redis_server.kill()
    for _ in range(3):
        with pytest.raises(BackendUnavailable):
            private.ping_sync()
    redis_server.start()
    private.ping_sync()
    assert [e.available for e in events] == [False, True]
    assert events[0].down_since is not None
    assert events[1].down_since is None
    assert private.health().failures == 3


def test_policies(redis_server: RedisServer, private: RedisBackend) -> None:
    key = private.key("test", "policy", "n")
    runners = {p: PolicyRunner(private, p) for p in FailurePolicy}
    for runner in runners.values():
        runner.run_sync(COUNTER, [key], [1, 60_000])
    redis_server.kill()
    for policy in (FailurePolicy.FAIL_OPEN, FailurePolicy.FAIL_CLOSED):
        with pytest.raises(BackendUnavailable):
            runners[policy].run_sync(COUNTER, [key], [1, 60_000])
        assert runners[policy].degraded
        assert runners[policy].fallbacks == 1
    local = runners[FailurePolicy.LOCAL]
    # the local fallback keeps deciding with in-process state
    assert local.run_sync(COUNTER, [key], [1, 60_000]) == 1
    assert local.run_sync(COUNTER, [key], [1, 60_000]) == 2
    assert local.degraded
    assert local.fallbacks == 2
    redis_server.start()
    assert local.run_sync(COUNTER, [key], [1, 60_000]) == 1  # back on the (restarted) server
    assert not local.degraded


@pytest.mark.anyio
async def test_local_policy_async(redis_server: RedisServer, private: RedisBackend) -> None:
    runner = PolicyRunner(private, "local")  # type: ignore[arg-type]
    key = private.key("test", "policy", "n")
    assert await runner.run(COUNTER, [key], [1, 60_000]) == 1
    redis_server.kill()
    assert await runner.run(COUNTER, [key], [5, 60_000]) == 5
    await private.aclose()


def test_unknown_policy_is_refused(private: RedisBackend) -> None:
    with pytest.raises(ValueError, match="'sometimes'"):
        PolicyRunner(private, "sometimes")  # type: ignore[arg-type]


def test_subscribers_are_told_to_resync_after_a_restart(
    redis_server: RedisServer, private: RedisBackend
) -> None:
    from tests.backends.scripts import PUBLISH

    channel = private.channel("test", "events")
    received: list[bytes | None] = []
    changed = threading.Condition()

    def callback(message: bytes | None) -> None:
        with changed:
            received.append(message)
            changed.notify_all()

    def wait_for(count: int) -> None:
        with changed:
            assert changed.wait_for(lambda: len(received) >= count, timeout=10)

    private.subscribe(channel, callback)
    private.run_sync(PUBLISH, [private.key("test", "events")], [channel, "one"])
    wait_for(1)
    redis_server.kill()
    redis_server.start()
    wait_for(2)  # the listener reconnected, re-subscribed, and said "you may have missed some"
    assert received[1] is None
    private.run_sync(PUBLISH, [private.key("test", "events")], [channel, "two"])
    wait_for(3)
    assert received == [b"one", None, b"two"]


def test_closed_backend_refuses_work(private: RedisBackend) -> None:
    private.close()
    with pytest.raises(BackendError, match="closed"):
        private.run_sync(NOOP, [private.key("t", "x")], [])


@pytest.mark.anyio
async def test_trio_and_asyncio_share_one_backend_object(redis_url: str) -> None:
    backend = backend_from_url(redis_url, prefix="tshare")
    key = backend.key("test", "share", "n")
    first = await backend.run(COUNTER, [key], [1, 1000])
    second = await anyio.to_thread.run_sync(backend.run_sync, COUNTER, [key], [1, 1000])
    assert second == first + 1
    await backend.aclose()
