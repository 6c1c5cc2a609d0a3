"""The priority queue against asyncio.Semaphore and anyio.CapacityLimiter (issue 5).

- uncontended acquire + release in one task (asyncio, and trio for the anyio peers);
- 1,000 tasks through 8 slots with an ``await anyio.sleep(0)`` body: cost per task, and the
  extra over the same tasks with no gate;
- Redis: an uncontended acquire + release, in ns and in round trips (``INFO commandstats``).
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from typing import Any

import anyio

from benchmarks.harness import Report, measure_async
from resilience import PriorityQueue, backend_from_url
from resilience._backends._redis import RedisBackend


def _uncontended(report: Report, backend: str) -> None:
    group = f"uncontended acquire+release ({backend})"
    queue = PriorityQueue("bench", max_concurrent=8, max_queue_size=2000)
    limiter: Any = None
    semaphore: Any = None

    async def ours() -> None:
        async with queue.slot():
            pass

    async def peer_limiter() -> None:
        nonlocal limiter
        if limiter is None:
            limiter = anyio.CapacityLimiter(8)
        async with limiter:
            pass

    async def peer_semaphore() -> None:
        nonlocal semaphore
        if semaphore is None:
            semaphore = asyncio.Semaphore(8)
        async with semaphore:
            pass

    if backend == "asyncio":
        report.add(group, "asyncio.Semaphore", measure_async(peer_semaphore, repeat=7))
    report.add(
        group, "anyio.CapacityLimiter", measure_async(peer_limiter, backend=backend, repeat=7)
    )
    report.add(group, "PriorityQueue.slot", measure_async(ours, backend=backend, repeat=7))


def _contended_once(make: Callable[[], Any], tasks: int, backend: str) -> float:
    async def main() -> float:
        gate = make()

        async def body() -> None:
            await anyio.sleep(0)  # noqa: ASYNC115 - the body the issue names

        async def task() -> None:
            if gate is None:
                await body()
                return
            async with gate() if callable(gate) else gate:
                await body()

        start = time.perf_counter()
        async with anyio.create_task_group() as group:
            for _ in range(tasks):
                group.start_soon(task)
        return (time.perf_counter() - start) / tasks * 1e9

    return anyio.run(main, backend=backend)


def _contended(report: Report, backend: str) -> None:
    group = f"1000 tasks through 8 slots ({backend})"
    cases: dict[str, Callable[[], Any]] = {
        "no gate": lambda: None,
        "anyio.CapacityLimiter": lambda: anyio.CapacityLimiter(8),
        "PriorityQueue.slot": lambda: PriorityQueue("bench", 8, max_queue_size=2000).slot,
    }
    if backend == "asyncio":
        cases["asyncio.Semaphore"] = lambda: asyncio.Semaphore(8)
    # interleaved rounds, so load from other processes hits every case alike
    samples: dict[str, list[float]] = {name: [] for name in cases}
    for round_ in range(16):
        for name, make in cases.items():
            sample = _contended_once(make, 1000, backend)
            if round_:  # the first round warms up
                samples[name].append(sample)
    results = {name: report.add(group, name, samples[name]).ns_per_op for name in cases}
    base = results["no gate"]
    extra = {name: value - base for name, value in results.items() if name != "no gate"}
    report.note(
        f"{backend}: extra ns per task over no gate: "
        + ", ".join(f"{name} {value:,.0f}" for name, value in extra.items())
        + f"; PriorityQueue / CapacityLimiter extra = "
        f"{extra['PriorityQueue.slot'] / extra['anyio.CapacityLimiter']:.2f} (target <= 0.5)"
    )


def _commandstats(client: Any) -> int:
    stats = client.info("commandstats")
    return sum(
        int(value["calls"]) for key, value in stats.items() if key.startswith("cmdstat_eval")
    )


def _redis(report: Report) -> None:
    url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    backend = backend_from_url(url, prefix="bench-queue")
    try:
        backend.ping_sync()
    except Exception as error:  # pragma: no cover - no server, no Redis rows
        report.note(f"Redis rows skipped: {error}")
        return
    queue = PriorityQueue("bench", max_concurrent=8, backend=backend)
    assert isinstance(backend, RedisBackend)
    client: Any = backend.client

    def one_sync() -> None:
        with queue.slot_sync():
            pass

    one_sync()
    before = _commandstats(client)
    for _ in range(100):
        one_sync()
    trips = (_commandstats(client) - before) / 100
    report.note(f"Redis: {trips:.2f} EVALSHA round trips per uncontended acquire + release")

    async def one_async() -> None:
        async with queue.slot():
            pass

    async def noop_pair() -> None:
        from resilience._backends._scripts import NOOP

        await backend.run(NOOP, [], [])
        await backend.run(NOOP, [], [])

    group = "uncontended acquire+release (Redis, asyncio)"
    report.add(group, "2 x NOOP script (floor)", measure_async(noop_pair, number=2000))
    report.add(group, "PriorityQueue.slot", measure_async(one_async, number=2000))
    queue.close()
    backend.close()


def run(report: Report) -> None:
    """Run every queue benchmark."""
    _uncontended(report, "asyncio")
    _uncontended(report, "trio")
    sem = report.get("uncontended acquire+release (asyncio)", "asyncio.Semaphore").ns_per_op
    ours = report.get("uncontended acquire+release (asyncio)", "PriorityQueue.slot").ns_per_op
    limiter = report.get("uncontended acquire+release (asyncio)", "anyio.CapacityLimiter").ns_per_op
    report.note(
        f"uncontended: PriorityQueue = {ours / sem:.2f}x asyncio.Semaphore (target <= 3), "
        f"{limiter / ours:.2f}x faster than CapacityLimiter (target >= 4)"
    )
    _contended(report, "asyncio")
    _contended(report, "trio")
    _redis(report)
