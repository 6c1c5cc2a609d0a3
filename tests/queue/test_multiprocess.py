"""4 processes x 50 tasks through one global limit of 8 on Redis."""

from __future__ import annotations

import multiprocessing
import queue as queue_module
from statistics import mean
from typing import Any

import pytest
import redis

from tests.conftest import unique_prefix
from tests.queue import mp_worker

pytestmark = [pytest.mark.redis, pytest.mark.slow]


def test_four_processes_share_one_limit(redis_url: str) -> None:
    ctx = multiprocessing.get_context("spawn")
    prefix = unique_prefix()
    ready, results = ctx.Queue(), ctx.Queue()
    go = ctx.Event()
    processes = [
        ctx.Process(target=mp_worker.run, args=(redis_url, prefix, i, ready, go, results))
        for i in range(4)
    ]
    for process in processes:
        process.start()
    try:
        for _ in processes:
            ready.get(timeout=30)
        go.set()
        collected = [results.get(timeout=30) for _ in processes]
    except queue_module.Empty:  # pragma: no cover - reported as a failure below
        collected = []
    finally:
        for process in processes:
            process.join(10)
            if process.is_alive():  # pragma: no cover
                process.kill()
    assert len(collected) == 4, "a worker did not finish"
    waits = [w for _, per_process in collected for w in per_process]
    assert len(waits) == 200  # all completed
    client: Any = redis.Redis.from_url(redis_url)  # stubs differ across redis-py versions
    try:
        peak = int(client.get(f"{prefix}:mp:peak") or 0)
        assert int(client.get(f"{prefix}:mp:running") or 0) == 0
        for key in client.scan_iter(match=f"{prefix}:*"):
            client.delete(key)
    finally:
        client.close()
    assert 1 < peak <= 8  # never more than the global limit at once
    critical = mean(w for p, w in waits if p == "CRITICAL")
    batch = mean(w for p, w in waits if p == "BATCH")
    assert critical < batch, (critical, batch)
