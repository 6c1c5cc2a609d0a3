"""Behaviour 10 in detail: a shared queue that loses Redis for a moment leaves nothing behind.

These tests pause the private ``redis_server`` with ``CLIENT PAUSE ... WRITE``: the gate's
scripts block (and time out on the client) while the server keeps its state, so a ticket the
client gave up on is still there when the pause ends. ``CLIENT`` itself is not a write command,
so the test's admin connection can unpause.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import anyio
import pytest
import redis

from resilience import Backend, BackendError, PriorityQueue, QueueTimeout, backend_from_url
from resilience._queue import QueueEvent, QueueEventType
from tests.conftest import unique_prefix
from tests.queue.helpers import start_holder, start_waiter, until
from tests.servers import RedisServer

pytestmark = [pytest.mark.anyio, pytest.mark.redis]

MakeQueue = Callable[..., PriorityQueue]


@pytest.fixture
def admin(redis_server: RedisServer) -> Iterator[Any]:
    """A plain client of the private server, for pausing and inspecting it."""
    client = redis.Redis.from_url(redis_server.url)
    yield client
    client.client_unpause()
    client.close()


def shared_state(client: Any, queue: PriorityQueue) -> tuple[int, int]:
    """(holders, waiters) as stored in Redis, whatever this process believes."""
    remote = queue._remote
    assert remote is not None
    keys = remote._keys
    return int(client.zcard(keys[0])), sum(int(client.zcard(key)) for key in keys[5:])


async def until_reachable(backend: Backend) -> None:
    """Ping until the backend answers again (it records the success: calls go through)."""
    for _ in range(200):
        try:
            await backend.ping()
            return
        except Exception:
            await anyio.sleep(0.02)
    raise AssertionError("the backend never came back")


async def test_a_waiter_cut_off_mid_wait_leaves_no_ticket_behind(
    redis_server: RedisServer, admin: Any, make_queue: MakeQueue
) -> None:
    # A waiter whose re-check fails moves to the local gate, but its ticket still waits in
    # Redis. Left there, the next release would grant the slot to nobody and the global gate
    # would lose it for a whole lease. The ticket is withdrawn at the next exchange instead.
    backend = backend_from_url(
        redis_server.url, timeout=0.3, probe_interval=0.1, prefix=unique_prefix()
    )
    try:
        queue = make_queue(backend, max_concurrent=1, recheck_interval=0.05, lease_ttl=60.0)
        log: list[str] = []
        async with anyio.create_task_group() as group:
            holder = await start_holder(group, queue, "NORMAL", log, "holder")
            waiter = await start_waiter(group, queue, "NORMAL", log, "waiter")
            assert shared_state(admin, queue) == (1, 1)
            admin.client_pause(60_000, all=False)  # WRITE: the gate's scripts block
            await until(lambda: waiter.entered, "the waiter to fall back to the local gate")
            assert queue.stats().scope == "degraded"
            admin.client_unpause()
            await until_reachable(backend)
            holder.leave.set()  # its release reaches Redis (and frees its slot)
            await until(lambda: holder.done, "the holder to leave")
            waiter.leave.set()
        assert shared_state(admin, queue) == (0, 0)  # no slot granted to the gone waiter
    finally:
        await backend.aclose()


async def until_blocked(client: Any, count: int) -> None:
    """Wait until ``count`` scripts sit in the paused server: they are in flight."""
    await until(lambda: int(client.info("clients")["blocked_clients"]) >= count, "in flight")


@pytest.mark.parametrize("contended", [False, True])
async def test_cancelled_while_its_acquire_is_in_flight(
    redis_server: RedisServer, admin: Any, make_queue: MakeQueue, contended: bool
) -> None:
    # The acquire script reaches Redis and will grant (or queue) the ticket, but the task is
    # cancelled before the reply arrives. The slot (or the queue entry) must be given back at
    # once by the shielded withdrawal, not left to the lease or the waiter's deadline.
    backend = backend_from_url(redis_server.url, timeout=30.0, prefix=unique_prefix())
    try:
        queue = make_queue(backend, max_concurrent=1, lease_ttl=600.0, request_timeout=600.0)
        log: list[str] = []
        async with anyio.create_task_group() as group:
            holder = await start_holder(group, queue, "NORMAL", log) if contended else None
            admin.client_pause(60_000, all=False)
            scope = anyio.CancelScope()
            finished = anyio.Event()

            async def doomed() -> None:
                with scope:
                    async with queue.slot(priority="CRITICAL"):
                        log.append("doomed")
                        await anyio.sleep_forever()
                finished.set()

            group.start_soon(doomed)
            await until_blocked(admin, 1)  # the acquire script waits in the server
            scope.cancel()
            admin.client_unpause()  # the acquire runs, then the withdrawal
            with anyio.fail_after(10):
                await finished.wait()
            assert shared_state(admin, queue) == ((1, 0) if contended else (0, 0))
            if holder is not None:
                holder.leave.set()
        assert shared_state(admin, queue) == (0, 0)
        stats = queue.stats()
        assert (stats.active, stats.queued_total, stats.available) == (0, 0, 1)
    finally:
        await backend.aclose()


async def test_operations_while_the_backend_is_down(
    redis_server: RedisServer, make_queue: MakeQueue
) -> None:
    # Housekeeping (expire) is routine and must not fail during an outage; clear() and resize()
    # change the shared state, so they say that they could not (after the local fallback gate
    # has been changed); every one of them marks the queue degraded.
    backend = backend_from_url(redis_server.url, timeout=0.3, probe_interval=60.0)
    try:
        queue = make_queue(backend, max_concurrent=2)
        events: list[QueueEvent] = []
        queue.add_listener(events.append)
        assert await queue.execute(lambda: 1) == 1
        redis_server.kill()
        queue.expire()
        await queue.aexpire()
        assert [event.type for event in events] == [QueueEventType.DEGRADED]
        assert queue.stats().scope == "degraded"
        with pytest.raises(BackendError):
            queue.clear()
        with pytest.raises(BackendError):
            await queue.aresize(3)
        assert queue.stats().max_concurrent == 3  # the fallback gate took the new limit
    finally:
        await backend.aclose()


async def test_no_fallback_slot_after_the_deadline(
    redis_server: RedisServer, admin: Any, make_queue: MakeQueue
) -> None:
    # The waiter's round trip fails only after its timeout has passed (the backend's timeout is
    # longer than the request's): it must time out, not start late on the fallback gate.
    backend = backend_from_url(
        redis_server.url, timeout=0.3, probe_interval=60.0, prefix=unique_prefix()
    )
    try:
        queue = make_queue(backend, max_concurrent=1, recheck_interval=0.05, lease_ttl=60.0)
        started: list[str] = []
        errors: list[BaseException] = []

        async def late() -> None:
            try:
                await queue.execute(started.append, "late", timeout=0.2)
            except QueueTimeout as error:
                errors.append(error)

        log: list[str] = []
        async with anyio.create_task_group() as group:
            holder = await start_holder(group, queue, "NORMAL", log, "holder")
            before = queue.stats().queued_total
            group.start_soon(late)
            await until(lambda: queue.stats().queued_total > before, "the request to queue")
            admin.client_pause(60_000, all=False)  # its next round trip fails after 0.3 s
            await until(lambda: bool(errors) or bool(started), "the request to end")
            admin.client_unpause()
            holder.leave.set()
        assert started == []
        assert len(errors) == 1
        assert queue.stats().timed_out == 1
    finally:
        await backend.aclose()
