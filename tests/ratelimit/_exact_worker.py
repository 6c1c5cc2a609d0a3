"""A process of the exactness test (imported by ``spawn`` children; not a test module)."""

from __future__ import annotations

from typing import Any

from resilience import RateLimiter, backend_from_url
from resilience._backends._redis import RedisBackend

#: A prelude whose now() is the offset argument itself: time stands still, so the token
#: bucket and GCRA refill nothing during the run and exactly the capacity may pass.
FROZEN_PRELUDE = """local __frozen = tonumber(table.remove(ARGV))
local function now()
  return __frozen
end
"""


def run(
    url: str, prefix: str, algorithms: list[str], hits: int, barrier: Any, results: Any
) -> None:
    """Hit one key ``hits`` times per algorithm, in step with the other processes."""
    frozen = backend_from_url(url, prefix=prefix, test_clock=True)
    assert isinstance(frozen, RedisBackend)
    frozen._prelude = FROZEN_PRELUDE
    frozen.clock_offset = 1_700_000_000.0
    live = backend_from_url(url, prefix=prefix)
    for algorithm in algorithms:
        backend = live if algorithm == "sliding_window" else frozen
        limiter = RateLimiter("1000/minute", algorithm=algorithm, backend=backend, name="exact")
        barrier.wait()
        admitted = sum(limiter.hit_sync("one-key").allowed for _ in range(hits))
        results.put((algorithm, admitted))
    frozen.close()
    live.close()
