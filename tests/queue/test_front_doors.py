"""Behaviour 1 (front doors) and 8 (operations): on memory, Redis and Cluster, asyncio and trio."""

from __future__ import annotations

from collections.abc import Callable

import anyio
import anyio.lowlevel
import pytest

from resilience import (
    Backend,
    ConfigurationError,
    Priority,
    PriorityQueue,
    QueueCleared,
    QueueFull,
    QueueTimeout,
)
from tests.queue.helpers import start_holder, start_waiter, until

pytestmark = pytest.mark.anyio

MakeQueue = Callable[..., PriorityQueue]


async def test_execute_slot_and_decorator(backend: Backend, make_queue: MakeQueue) -> None:
    queue = make_queue(backend, max_concurrent=2)

    async def fetch(query: str) -> str:
        await anyio.lowlevel.checkpoint()
        return f"rows of {query}"

    assert await queue.execute(fetch, "SELECT 1", priority=Priority.CRITICAL) == "rows of SELECT 1"
    assert await queue.execute(lambda x: x * 2, 21, priority="low") == 42
    async with queue.slot(priority="BATCH"):
        assert queue.stats().active == 1

    @queue.limit(priority="LOW")
    async def nightly_report() -> int:
        return queue.stats().active

    @queue.limit
    async def bare() -> int:
        return 7

    assert await nightly_report() == 1
    assert await bare() == 7
    stats = queue.stats()
    assert (stats.granted, stats.completed, stats.active) == (5, 5, 0)


async def test_priority_names_case_insensitive_and_unknown_fails(
    backend: Backend, make_queue: MakeQueue
) -> None:
    queue = make_queue(backend)
    for name in ("critical", "High", "NORMAL", "low", "bAtCh"):
        async with queue.slot(priority=name):
            pass
    with pytest.raises(ConfigurationError, match=r"unknown priority 'URGENT'.*CRITICAL, HIGH"):
        queue.slot(priority="URGENT")
    with pytest.raises(ConfigurationError, match="unknown priority"):
        await queue.execute(lambda: None, priority="nope")
    with pytest.raises(ConfigurationError):
        queue.limit(priority=9)
    assert queue.stats().granted == 5


def test_sync_front_doors_from_threads(sync_backend: Backend, make_queue: MakeQueue) -> None:
    import threading

    queue = make_queue(sync_backend, max_concurrent=3)
    running = 0
    peak = 0
    lock = threading.Lock()

    @queue.limit(priority="HIGH")
    def work(n: int) -> int:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        threading.Event().wait(0.01)
        with lock:
            running -= 1
        return n

    results: list[int] = []

    def worker(i: int) -> None:
        results.append(work(i))
        results.append(queue.execute_sync(lambda: i, priority=Priority.LOW))
        with queue.slot_sync(priority="batch"):
            results.append(i)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(results) == sorted(list(range(8)) * 3)
    assert peak <= 3
    stats = queue.stats()
    assert (stats.active, stats.queued_total, stats.available) == (0, 0, 3)
    assert stats.completed == 24


async def test_invalid_settings_fail_at_construction(backend: Backend) -> None:
    with pytest.raises(ConfigurationError, match="max_concurrent"):
        PriorityQueue("bad", max_concurrent=0, backend=backend)
    with pytest.raises(ConfigurationError, match="request_timeout"):
        PriorityQueue("bad", request_timeout=-1, backend=backend)
    with pytest.raises(ConfigurationError, match="admission shares"):
        PriorityQueue("bad", admission_shares=(1.0, 0.5, 0.9, 0.5, 0.1), backend=backend)
    with pytest.raises(ConfigurationError):
        PriorityQueue("bad", failure_policy="maybe", backend=backend)
    # a granted waiter whose push was lost must re-check before its (not yet renewed) lease ends
    with pytest.raises(ConfigurationError, match="recheck_interval"):
        PriorityQueue("bad", lease_ttl=4.0, recheck_interval=2.0, backend=backend)


async def test_clear_fails_every_waiter_clearly(backend: Backend, make_queue: MakeQueue) -> None:
    queue = make_queue(backend, max_concurrent=1)
    log: list[str] = []
    async with anyio.create_task_group() as group:
        holder = await start_holder(group, queue, "NORMAL", log)
        waiters = [await start_waiter(group, queue, p, log) for p in ("LOW", "BATCH", "HIGH")]
        assert await queue.aclear() == 3
        await until(lambda: all(w.done for w in waiters), "cleared waiters to finish")
        holder.leave.set()
    assert all(isinstance(w.error, QueueCleared) for w in waiters)
    assert isinstance(waiters[0].error, QueueFull)  # QueueCleared is a QueueFull
    assert "cleared" in str(waiters[0].error)
    assert log == ["NORMAL"]
    stats = queue.stats()
    assert (stats.cleared, stats.active, stats.queued_total) == (3, 0, 0)


async def test_stats_fields_and_utilization(backend: Backend, make_queue: MakeQueue) -> None:
    queue = make_queue(backend, max_concurrent=2, max_queue_size=10)
    log: list[str] = []
    async with anyio.create_task_group() as group:
        holders = [await start_holder(group, queue, "NORMAL", log) for _ in range(2)]
        waiter = await start_waiter(group, queue, "LOW", log)
        stats = queue.stats()
        assert (stats.active, stats.available, stats.utilization) == (2, 0, 1.0)
        assert stats.queued == {"CRITICAL": 0, "HIGH": 0, "NORMAL": 0, "LOW": 1, "BATCH": 0}
        assert stats.queued_total == 1
        for holder in holders:
            holder.leave.set()
        await until(lambda: waiter.entered, "the LOW waiter to be granted")
        waiter.leave.set()
    with pytest.raises(RuntimeError):
        async with queue.slot():
            raise RuntimeError("boom")
    stats = queue.stats()
    assert (stats.granted, stats.completed, stats.failed) == (4, 3, 1)
    assert stats.wait["LOW"].count == 1
    assert stats.wait["LOW"].samples == 1
    assert stats.wait["NORMAL"].count == 3
    assert stats.wait["LOW"].max >= 0.0
    assert stats.model_config["frozen"] is True
    assert stats.scope == ("local" if backend.is_local else "global")


async def test_execute_timeout_covers_the_call(backend: Backend, make_queue: MakeQueue) -> None:
    queue = make_queue(backend)
    started = anyio.current_time()
    with pytest.raises(QueueTimeout, match="did not finish"):
        await queue.execute(anyio.sleep, 30, timeout=0.2)
    assert anyio.current_time() - started < 5
    assert queue.stats().active == 0
