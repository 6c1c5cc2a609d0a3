"""Stats counters lose nothing when many threads decide at once."""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator

import pytest

from resilience import Backend, RateLimiter


@pytest.fixture
def busy_switching() -> Iterator[None]:
    """Switch threads as often as possible, so an unguarded ``+= 1`` loses updates."""
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(interval)


@pytest.mark.usefixtures("busy_switching")
def test_counters_are_exact_across_threads(sync_backend: Backend) -> None:
    limiter = RateLimiter("500/minute", backend=sync_backend, name="threads")
    threads_n, hits = 8, 300 if sync_backend.is_local else 60
    barrier = threading.Barrier(threads_n)

    def worker(index: int) -> None:
        barrier.wait()
        for i in range(hits):
            limiter.hit_sync(f"k{(index + i) % 3}")

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(threads_n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    stats = limiter.stats()
    assert stats.allowed + stats.rejected == threads_n * hits
    assert stats.allowed == min(threads_n * hits, 3 * 500)
