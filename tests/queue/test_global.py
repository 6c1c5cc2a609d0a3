"""Behaviours 9 and 10: the queue shared through Redis (and Cluster), and backend outages."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anyio
import pytest

from resilience import (
    Backend,
    BackendError,
    FakeClock,
    PriorityQueue,
    QueueFull,
    QueueTimeout,
    backend_from_url,
)
from resilience._queue import QueueEvent, QueueEventType
from tests.conftest import REDIS_BACKENDS, TestClock, make_backend
from tests.queue.helpers import start_holder, start_waiter, until
from tests.servers import RedisServer

pytestmark = pytest.mark.anyio

MakeQueue = Callable[..., PriorityQueue]


@pytest.fixture(params=REDIS_BACKENDS)
def backend_kind(request: pytest.FixtureRequest) -> str:
    """Only the shared backends: these behaviours do not exist in one process."""
    return str(request.param)


async def test_crashed_holder_is_freed_within_its_lease(
    backend: Backend, clock: TestClock, make_queue: MakeQueue, request: pytest.FixtureRequest
) -> None:
    crashed = make_queue(backend, name="db", max_concurrent=1, lease_ttl=5.0)
    remote = crashed._remote
    assert remote is not None
    await remote.acquire(0, None)  # holds the only slot...
    crashed.close()  # ...and dies: no release, no more renewals
    other_backend = make_backend(
        request.getfixturevalue("backend_kind"), request, prefix=backend.prefix
    )
    try:
        survivor = make_queue(other_backend, name="db", max_concurrent=1, lease_ttl=5.0)
        log: list[str] = []
        async with anyio.create_task_group() as group:
            waiter = await start_waiter(group, survivor, "NORMAL", log, "survivor")
            assert isinstance(other_backend, type(backend))
            other_backend.advance_clock(4.0)  # type: ignore[attr-defined]
            await survivor.aexpire()
            await anyio.sleep(0.05)
            assert not waiter.entered  # the lease still runs
            other_backend.advance_clock(2.0)  # type: ignore[attr-defined]
            await survivor.aexpire()  # housekeeping drops the dead lease and grants
            await until(lambda: waiter.entered, "the survivor to get the crashed slot")
            waiter.leave.set()
        assert survivor.stats().active == 0
    finally:
        await other_backend.aclose()


@pytest.mark.parametrize("anyio_backend", ["asyncio"])  # the renewer is a thread: loop-agnostic
async def test_live_holders_renew_their_leases(
    backend: Backend, clock: TestClock, make_queue: MakeQueue
) -> None:
    # 1. The renewer thread renews by itself (every lease/3): no clock logic, only "it happens".
    ticking = make_queue(backend, max_concurrent=1, lease_ttl=3.0, recheck_interval=0.5)
    ticking_remote = ticking._remote
    assert ticking_remote is not None
    client: Any = backend.client  # type: ignore[attr-defined]
    log: list[str] = []
    async with anyio.create_task_group() as group:
        holder = await start_holder(group, ticking, "NORMAL", log)
        await next_renewal(client, ticking_remote._keys[0])
        holder.leave.set()
    # 2. What a renewal does, by the server clock: each one pushes the lease a full lease_ttl
    # past the server's now, so three moves of 0.6 lease (1.8 leases in all) keep the slot.
    # The lease is long, so real time cannot decide anything here.
    queue = make_queue(backend, max_concurrent=1, lease_ttl=100.0)
    remote = queue._remote
    assert remote is not None
    async with anyio.create_task_group() as group:
        holder = await start_holder(group, queue, "NORMAL", log)
        for _ in range(3):
            clock.advance(60.0)
            remote._renew_once()
        waiter = await start_waiter(group, queue, "LOW", log)
        await queue.aexpire()
        assert not waiter.entered
        assert queue.stats().active == 1
        assert queue.stats().leases_lost == 0
        holder.leave.set()
        await until(lambda: waiter.entered, "the waiter")
        waiter.leave.set()


def lease_end(client: Any, key: str) -> float:
    """The (only) holder's lease expiry, in server time."""
    return float(client.zrange(key, 0, -1, withscores=True)[0][1])


async def next_renewal(client: Any, key: str) -> None:
    """Wait until the renewer thread has pushed the lease out."""
    before = lease_end(client, key)
    await until(lambda: lease_end(client, key) > before, "a renewal")


async def test_double_or_foreign_release_adds_no_capacity(
    backend: Backend, make_queue: MakeQueue
) -> None:
    queue = make_queue(backend, max_concurrent=1)
    remote = queue._remote
    assert remote is not None
    slot = queue.slot()
    await slot.__aenter__()
    await slot.__aexit__(None, None, None)
    await slot.__aexit__(None, None, None)  # released twice
    await remote.release("someone-else:1", 0)  # a ticket this process never held
    await remote.release("", 0)
    log: list[str] = []
    async with anyio.create_task_group() as group:
        holder = await start_holder(group, queue, "NORMAL", log, "first")
        waiter = await start_waiter(group, queue, "NORMAL", log, "second")
        stats = queue.stats()
        assert (stats.active, stats.available, stats.queued_total) == (1, 0, 1)
        assert not waiter.entered
        holder.leave.set()
        await until(lambda: waiter.entered, "the second")
        waiter.leave.set()


async def test_waiters_are_woken_by_push(backend: Backend, make_queue: MakeQueue) -> None:
    # the safety-net re-check is a minute away: only the pub/sub message can wake the waiter
    queue = make_queue(backend, max_concurrent=1, recheck_interval=60.0, lease_ttl=1000.0)
    log: list[str] = []
    async with anyio.create_task_group() as group:
        holder = await start_holder(group, queue, "NORMAL", log)
        waiter = await start_waiter(group, queue, "NORMAL", log)
        released = anyio.current_time()
        holder.leave.set()
        await until(lambda: waiter.entered, "the push", limit=5.0)
        assert anyio.current_time() - released < 10.0  # the re-check is 60 s away
        waiter.leave.set()


async def test_priority_and_fifo_hold_across_processes(
    backend: Backend, make_queue: MakeQueue, request: pytest.FixtureRequest
) -> None:
    other = make_backend(request.getfixturevalue("backend_kind"), request, prefix=backend.prefix)
    try:
        a = make_queue(backend, name="shared", max_concurrent=1)
        b = make_queue(other, name="shared", max_concurrent=1)
        log: list[str] = []
        async with anyio.create_task_group() as group:
            holders = {"holder": await start_holder(group, a, "NORMAL", log, "holder")}
            for queue, priority, name in [
                (a, "LOW", "a-low"),
                (b, "HIGH", "b-high"),
                (a, "HIGH", "a-high"),
                (b, "LOW", "b-low"),
                (b, "CRITICAL", "b-critical"),
            ]:
                holders[name] = await start_waiter(group, queue, priority, log, name)
            while len(log) < 6:
                before = len(log)
                holders[log[-1]].leave.set()
                await until(lambda: len(log) > before, "the next grant")  # noqa: B023
            holders[log[-1]].leave.set()
        assert log == ["holder", "b-critical", "b-high", "a-high", "a-low", "b-low"]
    finally:
        await other.aclose()


@pytest.mark.redis
@pytest.mark.parametrize("backend_kind", ["redis"], indirect=False)
async def test_backend_down_uses_the_local_gate_and_recovers(
    redis_server: RedisServer, make_queue: MakeQueue, backend_kind: str
) -> None:
    backend = backend_from_url(redis_server.url, timeout=0.3, probe_interval=0.2)
    try:
        queue = make_queue(backend, max_concurrent=2)
        events: list[QueueEvent] = []
        queue.add_listener(events.append)
        queue.add_listener(_raising)  # a raising listener changes nothing
        assert await queue.execute(lambda: 1) == 1
        assert queue.stats().scope == "global"
        redis_server.kill()
        log: list[str] = []
        async with anyio.create_task_group() as group:
            first = await start_holder(group, queue, "NORMAL", log, "first")
            second = await start_holder(group, queue, "NORMAL", log, "second")
            assert queue.stats().scope == "degraded"
            third = await start_waiter(group, queue, "NORMAL", log, "third")
            assert not third.entered  # same limits in the fallback gate
            first.leave.set()
            await until(lambda: third.entered, "the local gate to hand over")
            second.leave.set()
            third.leave.set()
        assert queue.stats().active == 0
        redis_server.restart()
        await until_global(queue)
        assert queue.stats().scope == "global"
        assert [e.type for e in events] == [QueueEventType.DEGRADED, QueueEventType.RECOVERED]
        assert events[0].queue == queue.name
        assert isinstance(events[0].error, BackendError)
    finally:
        await backend.aclose()


def _raising(event: QueueEvent) -> None:
    raise RuntimeError("listener bug")


async def until_global(queue: PriorityQueue) -> None:
    """Retry calls until one goes through the shared gate again (automatic recovery)."""
    for _ in range(100):
        await queue.execute(lambda: None)
        if queue.stats().scope == "global":
            return
        await anyio.sleep(0.05)
    raise AssertionError("the queue never went back to the shared gate")


@pytest.mark.redis
@pytest.mark.parametrize("backend_kind", ["redis"], indirect=False)
async def test_fail_closed_and_fail_open(
    redis_server: RedisServer, make_queue: MakeQueue, backend_kind: str
) -> None:
    backend = backend_from_url(redis_server.url, timeout=0.3, probe_interval=0.2)
    try:
        closed = make_queue(backend, max_concurrent=1, failure_policy="fail_closed")
        opened = make_queue(backend, max_concurrent=1, failure_policy="fail_open")
        redis_server.kill()
        with pytest.raises(QueueFull, match="fail_closed"):
            await closed.execute(lambda: None)
        with pytest.raises(QueueFull, match="fail_closed"):
            closed.execute_sync(lambda: None)  # the blocking form (the backend fails fast)
        stats = closed.stats()
        assert (stats.rejected, stats.cancelled) == (2, 0)  # refused, not cancelled
        assert await opened.execute(lambda: 5) == 5
        assert opened.stats().scope == "degraded"
    finally:
        await backend.aclose()


async def test_live_queue_keeps_every_key_alive(backend: Backend, make_queue: MakeQueue) -> None:
    # Every key has a TTL, and a queue in use keeps all of them alive: a resize must not be
    # forgotten 24 h later while holders renew, nor a long waiter's entry or the arrival counter.
    queue = make_queue(backend, max_concurrent=2, request_timeout=None, lease_ttl=1000.0)
    remote = queue._remote
    assert remote is not None
    client: Any = backend.client  # type: ignore[attr-defined]
    await queue.aresize(1)
    log: list[str] = []
    async with anyio.create_task_group() as group:
        holder = await start_holder(group, queue, "NORMAL", log)
        waiter = await start_waiter(group, queue, "LOW", log)
        present = [key for key in remote._keys if client.exists(key)]
        assert len(present) == 5  # holders, info, seq, limit, LOW's waiters
        assert all(client.pttl(key) > 0 for key in present)  # nothing lives forever
        for key in present:
            client.pexpire(key, 1000)  # as if the last enqueue / resize were long ago
        (ticket,) = remote._held
        assert remote._run_sync("renew", "", 0, 0.0, [ticket]).status == 1
        assert {key: client.pttl(key) > 60_000 for key in present} == dict.fromkeys(present, True)
        holder.leave.set()
        await until(lambda: waiter.entered, "the waiter")
        waiter.leave.set()


async def test_a_lapsed_lease_is_counted(
    backend: Backend, clock: TestClock, make_queue: MakeQueue
) -> None:
    # A holder that is alive but whose renewals did not reach Redis within lease_ttl has lost
    # its lease: the gate may grant the slot again (documented). stats() must say so.
    queue = make_queue(backend, max_concurrent=1, lease_ttl=100.0)
    remote = queue._remote
    assert remote is not None
    log: list[str] = []
    async with anyio.create_task_group() as group:
        slow = await start_holder(group, queue, "NORMAL", log, "slow")
        (slow_ticket,) = remote._held
        clock.advance(101)  # no renewal in time (the renewer ticks every 33 s of real time)
        second = await start_holder(group, queue, "NORMAL", log, "second")
        assert second.entered  # two run at once: the documented risk
        assert not slow.done
        remote._renew_once()
        assert queue.stats().leases_lost == 1
        assert slow_ticket not in remote._held  # the second one's lease is still renewed
        remote._renew_once()
        assert queue.stats().leases_lost == 1  # counted once
        slow.leave.set()
        second.leave.set()
    stats = queue.stats()
    assert (stats.active, stats.leases_lost) == (0, 1)


@pytest.mark.redis
@pytest.mark.parametrize("backend_kind", ["redis"], indirect=False)
async def test_fallback_outcomes_are_counted_once(
    redis_server: RedisServer, make_queue: MakeQueue, backend_kind: str
) -> None:
    backend = backend_from_url(redis_server.url, timeout=0.3, probe_interval=60.0)
    fake = FakeClock(0.0)
    try:
        queue = make_queue(backend, max_concurrent=1, request_timeout=5.0, clock=fake)
        redis_server.kill()
        log: list[str] = []
        async with anyio.create_task_group() as group:
            holder = await start_holder(group, queue, "NORMAL", log, "holder")
            late = await start_waiter(group, queue, "NORMAL", log, "late")
            assert queue.stats().scope == "degraded"
            fake.advance(6.0)
            queue._local.expire()  # the fallback gate's clock decides the timeout
            await until(lambda: late.done, "the late waiter to time out")
            holder.leave.set()
        assert isinstance(late.error, QueueTimeout)
        stats = queue.stats()
        assert (stats.timed_out, stats.cancelled, stats.completed) == (1, 0, 1)
    finally:
        await backend.aclose()
