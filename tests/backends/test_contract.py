"""The contract every backend keeps: memory, Redis and Redis Cluster, asyncio and trio."""

from __future__ import annotations

import threading
import time
from typing import Any

import anyio
import pytest
import redis
from redis.crc import key_slot

from resilience import Backend, MemoryBackend
from resilience._backends._redis import RedisBackend
from resilience._backends._scripts import COUNTER, NOOP, SERVER_TIME
from tests.conftest import REDIS_BACKENDS, TestClock, make_backend

pytestmark = pytest.mark.anyio


async def test_scripts_run_atomically_under_concurrency(backend: Backend) -> None:
    key = backend.key("test", "atomic", "n")

    async def bump() -> None:
        for _ in range(25):
            await backend.run(COUNTER, [key], [1, 60_000])

    async with anyio.create_task_group() as group:
        for _ in range(8):
            group.start_soon(bump)
    assert await backend.run(COUNTER, [key], [0, 60_000]) == 200


async def test_hostile_key_parts_do_not_collide(backend: Backend) -> None:
    parts: list[Any] = ["a:b", "a", "{x}", "\n", "x" * 10_000, b"\xff", "", "~"]
    keys = [backend.key("test", "hostile", p) for p in parts]
    for i, key in enumerate(keys):
        assert await backend.run(COUNTER, [key], [i + 1, 60_000]) == i + 1


async def test_the_clock_fixture_moves_script_time(backend: Backend, clock: TestClock) -> None:
    before = await backend.run(SERVER_TIME, [], [])
    clock.advance(3600)
    after = await backend.run(SERVER_TIME, [], [])
    assert 3600 <= after - before < 3610


def test_sync_front_door(sync_backend: Backend) -> None:
    key = sync_backend.key("test", "sync", "n")
    assert sync_backend.run_sync(COUNTER, [key], [5, 60_000]) == 5
    assert sync_backend.run_sync(NOOP, [key], []) == 1
    assert sync_backend.ping_sync() >= 0


async def test_ping(backend: Backend) -> None:
    assert await backend.ping() >= 0
    assert backend.health().available


async def test_publish_reaches_subscribers(backend: Backend) -> None:
    from tests.backends.scripts import PUBLISH

    channel = backend.channel("test", "events")
    received: list[bytes | None] = []
    arrived = threading.Event()

    def callback(message: bytes | None) -> None:
        received.append(message)
        arrived.set()

    subscription = backend.subscribe(channel, callback)
    try:
        await backend.run(PUBLISH, [backend.key("test", "events")], [channel, "hello"])
        assert await anyio.to_thread.run_sync(arrived.wait, 5)
        assert received == [b"hello"]
    finally:
        subscription.close()
    arrived.clear()
    await backend.run(PUBLISH, [backend.key("test", "events")], [channel, "after close"])
    await anyio.sleep(0.1 if not isinstance(backend, MemoryBackend) else 0)
    assert received == [b"hello"]


@pytest.mark.parametrize("backend_kind", REDIS_BACKENDS)
async def test_scripts_survive_script_flush(backend: Backend, redis_url: str) -> None:
    assert isinstance(backend, RedisBackend)
    key = backend.key("test", "flush", "n")
    assert await backend.run(COUNTER, [key], [1, 60_000]) == 1
    flush_all_nodes(backend)
    assert await backend.run(COUNTER, [key], [1, 60_000]) == 2
    flush_all_nodes(backend)
    assert backend.run_sync(COUNTER, [key], [1, 60_000]) == 3


def flush_all_nodes(backend: RedisBackend) -> None:
    client: Any = backend.client
    if backend.parsed.topology == "cluster":
        for node in client.get_nodes():
            client.get_redis_connection(node).script_flush()
    else:
        client.script_flush()


@pytest.mark.parametrize("backend_kind", REDIS_BACKENDS)
async def test_a_skewed_client_clock_changes_nothing(
    backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Decisions read Redis TIME: moving every client clock by a day changes no reply."""
    server = await backend.run(SERVER_TIME, [], [])
    day = 86_400.0
    real_time, real_monotonic = time.time, time.monotonic
    monkeypatch.setattr(time, "time", lambda: real_time() + day)
    monkeypatch.setattr(time, "monotonic", lambda: real_monotonic() + day)
    monkeypatch.setattr(time, "time_ns", lambda: int((real_time() + day) * 1e9))
    skewed = await backend.run(SERVER_TIME, [], [])
    assert 0 <= skewed - server < 5  # the server's clock, not the client's + 1 day
    monkeypatch.undo()
    assert abs(skewed - time.time()) < 5


@pytest.mark.parametrize("backend_kind", [REDIS_BACKENDS[1]])
async def test_cluster_routes_each_instance_to_one_slot(
    backend: Backend, request: pytest.FixtureRequest
) -> None:
    """All keys of one instance share a slot, so a multi-key script never crosses slots."""
    from tests.backends.scripts import SUM

    assert isinstance(backend, RedisBackend)
    slots = set()
    for name in ["db", "payments", "api", "{evil}", "a:b"]:
        keys = [backend.key("ratelimit", name, user) for user in ["u1", "u2", "u:3", "{u4}"]]
        slot = {key_slot(k.encode()) for k in keys}
        assert len(slot) == 1
        slots |= slot
        # a real multi-key script over those keys succeeds on the cluster
        assert await backend.run(SUM, keys, [60_000]) == len(keys)
    assert len(slots) > 1  # different instances spread over the cluster


async def test_dead_server_fails_fast_with_backend_error(request: pytest.FixtureRequest) -> None:
    from resilience import BackendUnavailable
    from tests.servers import free_port

    backend = make_backend("redis", request, timeout=0.2, probe_interval=0.0)
    dead = RedisBackend(
        f"redis://127.0.0.1:{free_port()}/0",
        *_parsed(f"redis://127.0.0.1:{free_port()}/0", timeout=0.2, probe_interval=0.0),
    )
    await backend.aclose()
    start = time.monotonic()
    with pytest.raises(BackendUnavailable) as info:
        await dead.run(NOOP, [dead.key("t", "x")], [])
    assert time.monotonic() - start < 2
    assert isinstance(info.value.__cause__, redis.ConnectionError)
    assert not dead.health().available
    await dead.aclose()


def _parsed(url: str, **options: Any) -> tuple[Any, Any]:
    from resilience._backends._urls import RedisOptions, parse_url

    return parse_url(url), RedisOptions(**options)


async def test_scripts_can_include_shared_lua(backend: Backend) -> None:
    from tests.backends.scripts import DOUBLE

    assert await backend.run(DOUBLE, [backend.key("test", "inc")], [21]) == 42


@pytest.mark.parametrize("backend_kind", REDIS_BACKENDS)
async def test_more_concurrent_calls_than_connections_wait_for_one(
    request: pytest.FixtureRequest, backend_kind: str, anyio_backend: str
) -> None:
    """A burst larger than the pool waits for a connection: load is not an outage."""
    small = make_backend(backend_kind, request, max_connections=4)
    key = small.key("test", "burst", "n")
    try:
        async with anyio.create_task_group() as group:
            for _ in range(200):
                group.start_soon(small.run, COUNTER, [key], [1, 60_000])
        assert await small.run(COUNTER, [key], [0, 60_000]) == 200
        assert small.health().available
        assert small.health().failures == 0
    finally:
        await small.aclose()


def test_more_threads_than_connections_wait_for_one(request: pytest.FixtureRequest) -> None:
    small = make_backend("redis", request, max_connections=2)
    key = small.key("test", "burst", "n")
    threads = [
        threading.Thread(
            target=lambda: [small.run_sync(COUNTER, [key], [1, 60_000]) for _ in range(20)]
        )
        for _ in range(16)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert small.run_sync(COUNTER, [key], [0, 60_000]) == 320
    assert small.health().failures == 0
    small.close()
