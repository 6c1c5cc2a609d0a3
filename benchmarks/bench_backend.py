"""Our backend's script call against the raw redis-py ``EVALSHA`` floor (same client settings).

Target (issue 2): our call costs at most 1.1x the raw floor, sequential and with 64 concurrent
asyncio tasks.
"""

from __future__ import annotations

import os
from typing import Any

import redis
import redis.asyncio

from benchmarks.harness import Report, measure_async, measure_concurrent, measure_sync
from resilience import MemoryBackend, backend_from_url
from resilience._backends._redis import PRELUDE, RedisBackend
from resilience._backends._scripts import NOOP

URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
SETTINGS: dict[str, Any] = {"socket_timeout": 1.0, "socket_connect_timeout": 1.0}
GROUPS = {
    "script call, sync, sequential": "resilience run_sync",
    "script call, async, sequential": "resilience run",
    "script call, async, 64 concurrent tasks": "resilience run",
}


class RawAsync:
    """The floor: redis-py's asyncio client calling EVALSHA directly (one per event loop)."""

    def __init__(self, sha: str, key: str) -> None:
        self.sha, self.key = sha, key
        self.client: Any = None

    async def call(self) -> Any:
        if self.client is None:
            self.client = redis.asyncio.Redis.from_url(URL, **SETTINGS)
        return await self.client.evalsha(self.sha, 1, self.key)

    async def close(self) -> None:
        await self.client.aclose()
        self.client = None


def _backend() -> RedisBackend:
    backend = backend_from_url(URL, prefix="bench", timeout=1.0)
    assert isinstance(backend, RedisBackend)
    return backend


def run(report: Report) -> None:
    backend = _backend()
    key = backend.key("bench", "floor", "k")
    raw = redis.Redis.from_url(URL, **SETTINGS)
    sha = str(raw.script_load(PRELUDE + NOOP.source))

    group = "script call, sync, sequential"
    report.add(group, "raw redis-py evalsha", measure_sync(lambda: raw.evalsha(sha, 1, key)))
    report.add(
        group, "resilience run_sync", measure_sync(lambda: backend.run_sync(NOOP, [key], []))
    )
    backend.close()

    for group, measure in (
        ("script call, async, sequential", measure_async),
        ("script call, async, 64 concurrent tasks", measure_concurrent),
    ):
        floor = RawAsync(sha, key)
        report.add(group, "raw redis-py evalsha", measure(floor.call, teardown=floor.close))
        ours = _backend()

        async def call(ours: RedisBackend = ours) -> Any:
            return await ours.run(NOOP, [key], [])

        report.add(group, "resilience run", measure(call, teardown=ours.aclose))

    memory = MemoryBackend()
    report.add(
        "script call, memory backend",
        "resilience run_sync (memory)",
        measure_sync(lambda: memory.run_sync(NOOP, [key], [])),
    )
    for group, ours_name in GROUPS.items():
        ratio = report.ratio(group, ours_name, "raw redis-py evalsha")
        report.note(f"{group}: ours / raw floor = {ratio:.3f}x (target <= 1.10x)")
    report.note(f"client CPUs {sorted(os.sched_getaffinity(0))}; server not pinned")
    raw.close()
