"""Behaviour 8: exact across processes (4 spawned processes x 2,000 hits, 1,000 per minute)."""

from __future__ import annotations

import multiprocessing
from collections import Counter

import pytest

from tests.conftest import unique_prefix
from tests.ratelimit import _exact_worker

ALGORITHMS = ["token_bucket", "gcra", "sliding_window"]


@pytest.mark.slow
@pytest.mark.redis
def test_four_processes_admit_exactly_the_limit(redis_url: str) -> None:
    # Token bucket and GCRA run with the server clock frozen (a test prelude): with time
    # moving they would rightly refill ~17 tokens per second of the run. The log runs on the
    # real server clock: the whole run fits well inside its minute.
    context = multiprocessing.get_context("spawn")
    processes, hits = 4, 2_000
    barrier = context.Barrier(processes)
    results = context.Queue()
    prefix = unique_prefix()
    workers = [
        context.Process(
            target=_exact_worker.run,
            args=(redis_url, prefix, ALGORITHMS, hits, barrier, results),
        )
        for _ in range(processes)
    ]
    for worker in workers:
        worker.start()
    admitted: Counter[str] = Counter()
    for _ in range(processes * len(ALGORITHMS)):
        algorithm, count = results.get(timeout=120)
        admitted[algorithm] += count
    for worker in workers:
        worker.join(30)
        assert worker.exitcode == 0
    assert dict(admitted) == dict.fromkeys(ALGORITHMS, 1000)
