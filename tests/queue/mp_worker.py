"""One process of the multi-process test (imported by ``spawn`` children)."""

from __future__ import annotations

import time
from typing import Any

import anyio
import anyio.lowlevel

from resilience import Priority, PriorityQueue, backend_from_url

#: INCR the running counter and keep its maximum: the sampler of "how many ran at once".
ENTER = """
local running = redis.call('INCR', KEYS[1])
local peak = tonumber(redis.call('GET', KEYS[2]) or '0')
if running > peak then redis.call('SET', KEYS[2], running) end
return running
"""


def run(url: str, prefix: str, index: int, ready: Any, go: Any, results: Any) -> None:
    """Queue 25 BATCH then 25 CRITICAL tasks through the shared gate; report their waits."""
    anyio.run(_main, url, prefix, index, ready, go, results)


async def _main(url: str, prefix: str, index: int, ready: Any, go: Any, results: Any) -> None:
    import redis.asyncio

    backend = backend_from_url(url, prefix=prefix)
    client: Any = redis.asyncio.Redis.from_url(url)  # stubs differ across redis-py versions
    running, peak = f"{prefix}:mp:running", f"{prefix}:mp:peak"
    # no shedding here (every level may fill the queue): this test is about the shared limit
    queue = PriorityQueue(
        "mp",
        max_concurrent=8,
        max_queue_size=400,
        aging_interval=None,
        admission_shares=(1.0, 1.0, 1.0, 1.0, 1.0),
        backend=backend,
    )
    waits: list[tuple[str, float]] = []
    await queue.execute(lambda: None)  # connect and subscribe before the start
    ready.put(index)
    await anyio.to_thread.run_sync(go.wait, 30)

    async def task(priority: Priority) -> None:
        start = time.monotonic()
        async with queue.slot(priority=priority):
            waits.append((priority.name, time.monotonic() - start))
            await client.eval(ENTER, 2, running, peak)
            await anyio.sleep(0.02)
            await client.decr(running)

    async with anyio.create_task_group() as group:
        for priority in [Priority.BATCH] * 25 + [Priority.CRITICAL] * 25:
            group.start_soon(task, priority)
            await anyio.lowlevel.checkpoint()
    results.put((index, waits))
    queue.close()
    await client.aclose()
    await backend.aclose()
