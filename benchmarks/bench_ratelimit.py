"""Rate limiters: in-memory and Redis decisions against limits, pyrate-limiter, throttled-py.

Run with ``python -m benchmarks ratelimit``. The Redis cases use a private ``redis-server``
pinned to CPU 0 (``taskset``) while this process is pinned to CPU 1, when the machine has two
CPUs or more; the shared server is not used.
"""

from __future__ import annotations

import asyncio
import itertools
import multiprocessing
import os
import time
from collections.abc import Callable
from functools import partial
from typing import Any

import redis

from benchmarks import _ratelimit_peers as peers
from benchmarks.harness import (
    PinnedRedisServer,
    Report,
    interleaved,
    measure_concurrent,
    measure_sync,
)
from resilience import MemoryBackend, RateLimiter, backend_from_url
from resilience._backends._redis import RedisBackend
from resilience._backends._scripts import NOOP

ALGORITHMS = ["token_bucket", "gcra", "sliding_window", "sliding_window_counter", "fixed_window"]
HUGE = "1000000000/second"  # never refuses: the "allowed" cases
KEYS = [f"user:{i}" for i in range(10_000)]


def _cycle() -> Callable[[], str]:
    return itertools.cycle(KEYS).__next__


def _rotating(hit: Callable[[str], object], nxt: Callable[[], str]) -> Callable[[], object]:
    return lambda: hit(nxt())


def _sync(fn: Callable[[], object]) -> list[float]:
    return measure_sync(fn, repeat=5)


# -- in memory ---------------------------------------------------------------------------------


def _memory(report: Report) -> None:
    for label, limit in (("allowed", HUGE), ("denied", "1/hour")):
        for keys in ("hot key", "10,000 keys"):
            group = f"memory, {keys}, {label}"
            floor = peers.hand_written_bucket(1e12 if label == "allowed" else 0.0, 1e-9)
            cases: dict[str, Callable[[str], object]] = {"hand-written token bucket": floor}
            backend = MemoryBackend()
            for algorithm in ALGORITHMS:
                limiter = RateLimiter(limit, algorithm=algorithm, backend=backend)
                cases[f"resilience {algorithm}"] = limiter.hit_sync
            import limits.storage
            from throttled import MemoryStore

            per_minute = 10**9 if label == "allowed" else 1
            limits_limit = f"{per_minute}/minute"
            for strategy in ("fixed-window", "moving-window", "sliding-window-counter"):
                storage = limits.storage.MemoryStorage()
                cases[f"limits {strategy}"] = peers.limits_hit(strategy, limits_limit, storage)
            cases["throttled-py token_bucket"] = peers.throttled_hit(
                "token_bucket", per_minute, MemoryStore()
            )
            cases["throttled-py gcra"] = peers.throttled_hit("gcra", per_minute, MemoryStore())
            cases["pyrate-limiter in-memory"] = peers.pyrate_hit(min(per_minute, 1_000_000))
            calls: dict[str, Callable[[], object]] = {}
            for name, hit in cases.items():
                if label == "denied":
                    for key in KEYS if keys != "hot key" else ["user:42"]:
                        hit(key)  # use up the one hit
                if keys == "hot key":
                    calls[name] = partial(hit, "user:42")
                else:
                    calls[name] = _rotating(hit, _cycle())
            interleaved(report, group, calls, lambda fn: measure_sync(fn, repeat=1))
            floor_ns = report.get(group, "hand-written token bucket").ns_per_op
            ratios = ", ".join(
                f"{a} {report.get(group, f'resilience {a}').ns_per_op / floor_ns:.2f}x"
                for a in ALGORITHMS
            )
            report.note(f"{group}: ratio to the hand-written floor: {ratios}")


def _flatness(report: Report) -> None:
    """Cost per hit of the sliding log as the window fills (ours vs limits' moving window)."""
    import limits
    import limits.storage
    import limits.strategies

    group = "memory sliding log as the window fills"
    for fill in (0, 10_000, 100_000):
        limiter = RateLimiter(
            "1000000 per hour", algorithm="sliding_window", backend=MemoryBackend()
        )
        for _ in range(fill):
            limiter.hit_sync("k")
        report.add(
            group,
            f"resilience sliding_window, {fill:,} in window",
            measure_sync(partial(limiter.hit_sync, "k"), number=20_000, repeat=3),
        )
    for fill in (0, 10_000, 100_000):
        storage = limits.storage.MemoryStorage()
        moving = limits.strategies.MovingWindowRateLimiter(storage)
        item = limits.parse("1000000 per hour")
        for _ in range(fill):
            moving.hit(item, "k")
        report.add(
            group,
            f"limits moving-window, {fill:,} in window",
            measure_sync(partial(moving.hit, item, "k"), number=20_000, repeat=3),
        )
    # Full window: every hit refused (the check must not scan the log).
    full = RateLimiter("100000 per hour", algorithm="sliding_window", backend=MemoryBackend())
    for _ in range(100_000):
        full.hit_sync("k")
    report.add(
        group,
        "resilience sliding_window, full (100,000), denied",
        _sync(lambda: full.hit_sync("k")),
    )


# -- Redis -------------------------------------------------------------------------------------


def _evalsha_calls(client: Any) -> int:
    stats = client.info("commandstats")
    return sum(int(v["calls"]) for k, v in stats.items() if k.startswith("cmdstat_eval"))


def _ratio_note(report: Report, group: str, algorithms: list[str]) -> None:
    floor_ns = report.get(group, "raw redis-py EVALSHA (floor)").ns_per_op
    report.note(
        f"{group}: ours / floor: "
        + ", ".join(
            f"{a} {report.get(group, f'resilience {a}').ns_per_op / floor_ns:.2f}x"
            for a in algorithms
        )
    )


FLOOR_ARGS = ("bench:ratelimit:{x}:user:42", 1, 0, 1.0, 1, 1e9, 1e9)


def _redis_sequential(report: Report, url: str) -> None:
    import limits.storage
    from throttled import RedisStore

    backend = backend_from_url(url, prefix="bench")
    assert isinstance(backend, RedisBackend)
    client = backend.client
    sha = str(client.script_load(NOOP.source))
    group = "Redis decision, sequential"
    cases: dict[str, Callable[[], object]] = {
        "raw redis-py EVALSHA (floor)": lambda: client.evalsha(sha, 1, *FLOOR_ARGS)
    }
    for algorithm in ALGORITHMS:
        ours = RateLimiter(HUGE, algorithm=algorithm, backend=backend)
        cases[f"resilience {algorithm}"] = partial(ours.hit_sync, "user:42")
    two = RateLimiter([HUGE, "1000000000/hour"], backend=backend)
    cases["resilience token_bucket, 2 limits"] = partial(two.hit_sync, "user:42")
    for strategy in ("fixed-window", "moving-window", "sliding-window-counter"):
        storage = limits.storage.RedisStorage(url, key_prefix=f"bench-limits-{strategy}")
        cases[f"limits {strategy}"] = partial(
            peers.limits_hit(strategy, "1000000000/minute", storage), "user:42"
        )
    cases["throttled-py token_bucket"] = partial(
        peers.throttled_hit("token_bucket", 10**9, RedisStore(server=url)), "user:42"
    )
    cases["pyrate-limiter redis"] = partial(
        peers.pyrate_hit(1_000_000, redis.Redis.from_url(url), name="bench-pyrate"), "user:42"
    )
    interleaved(report, group, cases, lambda fn: measure_sync(fn, repeat=1))
    _ratio_note(report, group, ALGORITHMS)
    # Round trips: two limits on one key are still one EVALSHA per decision.
    before = _evalsha_calls(client)
    for _ in range(1000):
        two.hit_sync("rt")
    report.note(f"2 limits on one key: {_evalsha_calls(client) - before} EVALSHA for 1,000 hits")
    backend.close()


def _per_loop(build: Callable[[], Any]) -> Callable[[], Any]:
    """``build()`` once per event loop (each measurement runs on a fresh loop)."""
    built: dict[int, Any] = {}

    def get() -> Any:
        loop = id(asyncio.get_running_loop())
        if loop not in built:
            built[loop] = build()
        return built[loop]

    return get


def _redis_concurrent(report: Report, url: str) -> None:
    import limits.aio.storage
    import limits.aio.strategies
    import redis.asyncio

    group = "Redis decision, 64 concurrent asyncio tasks"
    backend = backend_from_url(url, prefix="bench")
    assert isinstance(backend, RedisBackend)
    sha = backend.client.script_load(NOOP.source)
    floor_client = _per_loop(backend.async_client)

    async def floor() -> object:
        return await floor_client().evalsha(sha, 1, *FLOOR_ARGS)

    cases: dict[str, Callable[[], Any]] = {"raw redis-py EVALSHA (floor)": floor}
    algorithms = ["token_bucket", "gcra", "sliding_window"]
    for algorithm in algorithms:
        ours = RateLimiter(HUGE, algorithm=algorithm, backend=backend)
        cases[f"resilience {algorithm}"] = partial(ours.hit, "user:42")
    two = RateLimiter([HUGE, "1000000000/hour"], backend=backend)
    cases["resilience token_bucket, 2 limits"] = partial(two.hit, "user:42")

    item = limits.parse("1000000000/minute")
    moving = _per_loop(
        lambda: limits.aio.strategies.MovingWindowRateLimiter(
            limits.aio.storage.RedisStorage(
                f"async+{url}", key_prefix="bench-limits", implementation="redispy"
            )
        )
    )

    async def limits_moving() -> object:
        return await moving().hit(item, "user:42")

    cases["limits.aio moving-window"] = limits_moving

    def make_throttle() -> Any:
        from throttled.asyncio import RedisStore, Throttled, rate_limiter

        return Throttled(
            using="token_bucket", quota=rate_limiter.per_min(10**9), store=RedisStore(server=url)
        )

    throttle = _per_loop(make_throttle)

    async def throttled_tb() -> object:
        return await throttle().limit("user:42")

    cases["throttled-py.asyncio token_bucket"] = throttled_tb
    pyrate_limiters: dict[int, Any] = {}

    async def pyrate() -> object:
        import pyrate_limiter as p

        loop = id(asyncio.get_running_loop())
        if loop not in pyrate_limiters:
            bucket = await p.RedisBucket.init(
                [p.Rate(1_000_000, p.Duration.MINUTE)], redis.asyncio.Redis.from_url(url), "bpa"
            )
            pyrate_limiters[loop] = p.Limiter(bucket)
        acquired: Any = pyrate_limiters[loop].try_acquire("user:42", blocking=False)
        return await acquired

    cases["pyrate-limiter redis (asyncio)"] = pyrate
    interleaved(report, group, cases, lambda fn: measure_concurrent(fn, repeat=1))
    _ratio_note(report, group, algorithms)
    backend.close()


def _exactness(report: Report, url: str) -> None:
    """4 spawned processes x 2,000 hits on one key, 1,000 per minute, real server clock."""
    cases = [
        "resilience token_bucket",
        "resilience gcra",
        "resilience sliding_window",
        "limits moving-window",
        "limits fixed-window",
        "pyrate-limiter redis",
        "throttled-py token_bucket",
    ]
    context = multiprocessing.get_context("spawn")
    for case in cases:
        barrier = context.Barrier(4)
        out = context.Queue()
        tag = f"exact{time.time_ns()}"
        start = time.perf_counter()
        procs = [
            context.Process(
                target=peers.exactness_worker, args=(case, url, tag, 2000, barrier, out)
            )
            for _ in range(4)
        ]
        for proc in procs:
            proc.start()
        try:
            admitted = sum(out.get(timeout=120) for _ in procs)
        except Exception as error:
            report.note(f"exactness {case}: failed ({type(error).__name__}: {error})")
            continue
        finally:
            for proc in procs:
                proc.join(30)
        report.note(
            f"exactness {case}: {admitted} admitted of 8,000 (limit 1,000/minute; "
            f"{time.perf_counter() - start:.1f} s incl. spawn)"
        )


def run(report: Report) -> None:
    """Every rate-limiter case of the suite (``BENCH_RATELIMIT_PARTS=memory,redis,exact``)."""
    parts = os.environ.get("BENCH_RATELIMIT_PARTS", "memory,redis,exact").split(",")
    if "memory" in parts:
        _memory(report)
        _flatness(report)
    if "redis" not in parts and "exact" not in parts:
        return
    server = PinnedRedisServer()
    try:
        report.note(
            "Redis: private redis-server pinned to CPU 0, client pinned to CPU 1"
            if server.pinned
            else "Redis: client and server NOT pinned (fewer than 2 CPUs or no taskset)"
        )
        if "redis" in parts:
            _redis_sequential(report, server.url)
            _redis_concurrent(report, server.url)
        if "exact" in parts:
            _exactness(report, server.url)
    finally:
        server.stop()
