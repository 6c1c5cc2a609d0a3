"""Our backend's script call against the raw redis-py ``EVALSHA`` floor (same client settings).

Target (issue 2): our call costs at most 1.1x the raw floor, sequential and with 64 concurrent
asyncio tasks. Runs against a private ``redis-server`` pinned to CPU 0 with this process on the
other CPUs; the floor and ours are measured in interleaved rounds, best round kept, so both see
the same drift of a shared machine.
"""

from __future__ import annotations

import os
from typing import Any

import redis
import redis.asyncio

from benchmarks.harness import (
    PinnedRedisServer,
    Report,
    interleaved,
    measure_async,
    measure_concurrent,
    measure_sync,
)
from resilience import MemoryBackend, backend_from_url
from resilience._backends._redis import PRELUDE, RedisBackend
from resilience._backends._scripts import NOOP

SETTINGS: dict[str, Any] = {"socket_timeout": 1.0, "socket_connect_timeout": 1.0}
FLOOR = "raw redis-py evalsha"
GROUPS = {
    "script call, sync, sequential": "resilience run_sync",
    "script call, async, sequential": "resilience run",
    "script call, async, 64 concurrent tasks": "resilience run",
}


class RawAsync:
    """The floor: redis-py's asyncio client calling EVALSHA directly (one per event loop)."""

    def __init__(self, url: str, sha: str, key: str) -> None:
        self.url, self.sha, self.key = url, sha, key
        self.client: Any = None

    async def call(self) -> Any:
        if self.client is None:
            self.client = redis.asyncio.Redis.from_url(self.url, **SETTINGS)
        return await self.client.evalsha(self.sha, 1, self.key)

    async def close(self) -> None:
        await self.client.aclose()
        self.client = None


class OursAsync:
    """Our backend's async run, a fresh backend per measurement (async clients are per loop)."""

    def __init__(self, url: str, key: str) -> None:
        self.url, self.key = url, key
        self.backend = _backend(url)

    async def call(self) -> Any:
        return await self.backend.run(NOOP, [self.key], [])

    async def close(self) -> None:
        await self.backend.aclose()
        self.backend = _backend(self.url)


def _backend(url: str) -> RedisBackend:
    backend = backend_from_url(url, prefix="bench", timeout=1.0)
    assert isinstance(backend, RedisBackend)
    return backend


def run(report: Report) -> None:
    server = PinnedRedisServer()
    try:
        _run(report, server.url)
        report.note(
            f"client pinned to CPUs {sorted(os.sched_getaffinity(0))}, private server on CPU 0"
            if server.pinned
            else "client and server NOT pinned (fewer than 2 CPUs or no taskset)"
        )
    finally:
        server.stop()


def _run(report: Report, url: str) -> None:
    ours = _backend(url)
    key = ours.key("bench", "floor", "k")
    raw = redis.Redis.from_url(url, **SETTINGS)
    sha = str(raw.script_load(PRELUDE + NOOP.source))

    group = "script call, sync, sequential"
    cases: dict[str, Any] = {
        FLOOR: lambda: raw.evalsha(sha, 1, key),
        "resilience run_sync": lambda: ours.run_sync(NOOP, [key], []),
    }
    interleaved(report, group, cases, lambda fn: measure_sync(fn, repeat=1))
    ours.close()
    raw.close()

    for group, measure in (
        ("script call, async, sequential", measure_async),
        ("script call, async, 64 concurrent tasks", measure_concurrent),
    ):
        cases = {FLOOR: RawAsync(url, sha, key), "resilience run": OursAsync(url, key)}

        def once(case: Any, measure: Any = measure) -> list[float]:
            samples: list[float] = measure(case.call, repeat=1, teardown=case.close)
            return samples

        interleaved(report, group, cases, once)

    memory = MemoryBackend()
    report.add(
        "script call, memory backend",
        "resilience run_sync (memory)",
        measure_sync(lambda: memory.run_sync(NOOP, [key], [])),
    )
    for group, ours_name in GROUPS.items():
        ratio = report.ratio(group, ours_name, FLOOR)
        report.note(f"{group}: ours / raw floor = {ratio:.3f}x (target <= 1.10x)")
