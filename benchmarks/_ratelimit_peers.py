"""Peer rate limiters for ``bench_ratelimit`` and the cross-process exactness run.

Each factory returns a zero-argument (or key-taking) callable deciding one hit, built the way
the peer's documentation shows, so the benchmark compares like with like.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

__all__ = [
    "exactness_worker",
    "hand_written_bucket",
    "limits_hit",
    "pyrate_hit",
    "throttled_hit",
]


def hand_written_bucket(capacity: float, rate: float) -> Callable[[str], bool]:
    """The floor: a keyed token bucket in a handful of lines, no locking, no TTL."""
    buckets: dict[str, list[float]] = {}

    def hit(key: str, now: Callable[[], float] = time.monotonic) -> bool:
        t = now()
        b = buckets.get(key)
        if b is None:
            b = buckets[key] = [capacity, t]
        tokens = min(capacity, b[0] + (t - b[1]) * rate)
        b[1] = t
        if tokens >= 1:
            b[0] = tokens - 1
            return True
        b[0] = tokens
        return False

    return hit


def limits_hit(strategy: str, limit: str, storage: Any) -> Callable[[str], bool]:
    """``limits``: ``strategy`` is fixed-window, moving-window or sliding-window-counter."""
    import limits
    import limits.strategies

    item = limits.parse(limit)
    limiter = limits.strategies.STRATEGIES[strategy](storage)
    return lambda key: bool(limiter.hit(item, key))


def throttled_hit(algorithm: str, per_minute: int, store: Any) -> Callable[[str], bool]:
    """throttled-py: ``algorithm`` is token_bucket, gcra, sliding_window, fixed_window."""
    from throttled import Throttled, rate_limiter

    throttle = Throttled(using=algorithm, quota=rate_limiter.per_min(per_minute), store=store)
    return lambda key: not throttle.limit(key).limited


def pyrate_hit(
    per_minute: int, redis_client: Any = None, name: str = "bench"
) -> Callable[[str], bool]:
    """pyrate-limiter 4: an in-memory bucket, or a Redis bucket when given a client."""
    import pyrate_limiter as p

    rates = [p.Rate(per_minute, p.Duration.MINUTE)]
    if redis_client is None:
        limiter = p.Limiter(rates)
    else:
        limiter = p.Limiter(p.RedisBucket.init(rates, redis_client, name))
    return lambda key: bool(limiter.try_acquire(key, blocking=False))


def exactness_worker(case: str, url: str, tag: str, hits: int, barrier: Any, out: Any) -> None:
    """One of several processes hitting one key ``hits`` times; puts the admitted count."""
    import redis

    from resilience import RateLimiter, backend_from_url

    hit: Callable[[str], bool]
    if case.startswith("resilience "):
        algorithm = case.split()[1]
        limiter = RateLimiter(
            "1000/minute", algorithm=algorithm, backend=backend_from_url(url, prefix=tag)
        )
        hit = lambda key: limiter.hit_sync(key).allowed  # noqa: E731
    elif case.startswith("limits "):
        import limits.storage

        storage = limits.storage.RedisStorage(url, key_prefix=tag)
        hit = limits_hit(case.split()[1], "1000/minute", storage)
    elif case == "pyrate-limiter redis":
        hit = pyrate_hit(1000, redis.Redis.from_url(url), name=tag)
    elif case.startswith("throttled-py "):
        from throttled import RedisStore

        hit = throttled_hit(case.split()[1], 1000, RedisStore(server=url))
    else:  # pragma: no cover
        raise ValueError(case)
    barrier.wait()
    out.put(sum(hit(f"{tag}-one-key") for _ in range(hits)))
