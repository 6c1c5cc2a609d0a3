"""Rate limiters: in-memory and Redis decisions against limits, pyrate-limiter, throttled-py.

Run with ``python -m benchmarks ratelimit``. The Redis cases use a private ``redis-server``
pinned to CPU 0 (``taskset``) while this process is pinned to CPU 1, when the machine has two
CPUs or more; the shared server is not used.
"""

from __future__ import annotations

import itertools
import multiprocessing
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from functools import partial
from typing import Any

import redis

from benchmarks import _ratelimit_peers as peers
from benchmarks.harness import Report, measure_concurrent, measure_sync
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
            for name, hit in cases.items():
                if label == "denied":
                    for key in KEYS if keys != "hot key" else ["user:42"]:
                        hit(key)  # use up the one hit
                if keys == "hot key":
                    report.add(group, name, _sync(partial(hit, "user:42")))
                else:
                    nxt = _cycle()
                    report.add(group, name, _sync(_rotating(hit, nxt)))
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


class _PinnedServer:
    """A private redis-server on CPU 0; this process moves to the other CPUs."""

    def __init__(self) -> None:
        from tests.servers import free_port

        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="bench-redis-")
        self.pinned = (os.cpu_count() or 1) >= 2 and shutil.which("taskset") is not None
        command = [
            "redis-server",
            "--port",
            str(self.port),
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            self.dir,
            "--loglevel",
            "warning",
        ]
        if self.pinned:
            command = ["taskset", "-c", "0", *command]
            os.sched_setaffinity(0, set(range(1, os.cpu_count() or 2)))
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL)
        client = redis.Redis(port=self.port)
        for _ in range(200):
            try:
                client.ping()
                break
            except redis.ConnectionError:
                time.sleep(0.02)
        client.close()
        self.url = f"redis://127.0.0.1:{self.port}/0"

    def stop(self) -> None:
        self.process.kill()
        self.process.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


def _evalsha_calls(client: Any) -> int:
    stats = client.info("commandstats")
    return sum(int(v["calls"]) for k, v in stats.items() if k.startswith("cmdstat_eval"))


def _redis_sequential(report: Report, url: str) -> None:
    import limits.storage
    from throttled import RedisStore

    backend = backend_from_url(url, prefix="bench")
    assert isinstance(backend, RedisBackend)
    client = backend.client
    sha = backend.client.script_load(NOOP.source)
    limiter = RateLimiter(HUGE, backend=backend)
    floor_args = ("bench:ratelimit:{x}:user:42", 1, 0, 1.0, 1, 1e9, 1e9)
    group = "Redis decision, sequential"
    report.add(
        group,
        "raw redis-py EVALSHA (floor)",
        _sync(lambda: client.evalsha(sha, 1, *floor_args)),
    )
    for algorithm in ALGORITHMS:
        ours = RateLimiter(HUGE, algorithm=algorithm, backend=backend)
        report.add(group, f"resilience {algorithm}", _sync(partial(ours.hit_sync, "user:42")))
    two = RateLimiter([HUGE, "1000000000/hour"], backend=backend)
    report.add(group, "resilience token_bucket, 2 limits", _sync(lambda: two.hit_sync("user:42")))
    peer_client = redis.Redis.from_url(url)
    for strategy in ("fixed-window", "moving-window", "sliding-window-counter"):
        storage = limits.storage.RedisStorage(url, key_prefix=f"bench-limits-{strategy}")
        hit = peers.limits_hit(strategy, "1000000000/minute", storage)
        report.add(group, f"limits {strategy}", _sync(partial(hit, "user:42")))
    hit = peers.throttled_hit("token_bucket", 10**9, RedisStore(server=url))
    report.add(group, "throttled-py token_bucket", _sync(lambda: hit("user:42")))
    hit2 = peers.pyrate_hit(1_000_000, peer_client, name="bench-pyrate")
    report.add(group, "pyrate-limiter redis", _sync(lambda: hit2("user:42")))
    # The floor again: on a shared 2-CPU machine the sequential figure drifts during a run.
    report.add(
        group,
        "raw redis-py EVALSHA (floor, again)",
        _sync(lambda: client.evalsha(sha, 1, *floor_args)),
    )
    floor_ns = min(
        report.get(group, "raw redis-py EVALSHA (floor)").ns_per_op,
        report.get(group, "raw redis-py EVALSHA (floor, again)").ns_per_op,
    )
    report.note(
        f"{group}: ours / floor: "
        + ", ".join(
            f"{a} {report.get(group, f'resilience {a}').ns_per_op / floor_ns:.2f}x"
            for a in ALGORITHMS
        )
    )
    # Round trips: two limits on one key are still one EVALSHA per decision.
    before = _evalsha_calls(client)
    for _ in range(1000):
        two.hit_sync("rt")
    report.note(f"2 limits on one key: {_evalsha_calls(client) - before} EVALSHA for 1,000 hits")
    _ = limiter
    backend.close()


def _redis_concurrent(report: Report, url: str) -> None:
    import limits.aio.storage
    import limits.aio.strategies
    import redis.asyncio

    group = "Redis decision, 64 concurrent asyncio tasks"
    backend = backend_from_url(url, prefix="bench")
    assert isinstance(backend, RedisBackend)
    sha = backend.client.script_load(NOOP.source)
    floor_args = ("bench:ratelimit:{x}:user:42", 1, 0, 1.0, 1, 1e9, 1e9)
    holder: dict[str, Any] = {}

    async def floor() -> object:
        client = holder.get("floor")
        if client is None:
            client = holder["floor"] = backend.async_client()
        return await client.evalsha(sha, 1, *floor_args)

    report.add(group, "raw redis-py EVALSHA (floor)", measure_concurrent(floor))
    for algorithm in ("token_bucket", "gcra", "sliding_window"):
        ours = RateLimiter(HUGE, algorithm=algorithm, backend=backend)
        report.add(
            group,
            f"resilience {algorithm}",
            measure_concurrent(partial(ours.hit, "user:42")),
        )
    two = RateLimiter([HUGE, "1000000000/hour"], backend=backend)
    report.add(
        group, "resilience token_bucket, 2 limits", measure_concurrent(lambda: two.hit("user:42"))
    )

    item = limits.parse("1000000000/minute")

    async def limits_moving() -> object:
        strategy = holder.get("limits")
        if strategy is None:
            storage = limits.aio.storage.RedisStorage(
                f"async+{url}", key_prefix="bench-limits", implementation="redispy"
            )
            strategy = holder["limits"] = limits.aio.strategies.MovingWindowRateLimiter(storage)
        return await strategy.hit(item, "user:42")

    report.add(group, "limits.aio moving-window", measure_concurrent(limits_moving))

    async def throttled_tb() -> object:
        throttle = holder.get("throttled")
        if throttle is None:
            from throttled.asyncio import RedisStore, Throttled, rate_limiter

            throttle = holder["throttled"] = Throttled(
                using="token_bucket",
                quota=rate_limiter.per_min(10**9),
                store=RedisStore(server=url),
            )
        return await throttle.limit("user:42")

    report.add(group, "throttled-py.asyncio token_bucket", measure_concurrent(throttled_tb))

    async def pyrate() -> object:
        limiter = holder.get("pyrate")
        if limiter is None:
            import pyrate_limiter as p

            bucket = await p.RedisBucket.init(
                [p.Rate(1_000_000, p.Duration.MINUTE)], redis.asyncio.Redis.from_url(url), "bpa"
            )
            limiter = holder["pyrate"] = p.Limiter(bucket)
        acquired: Any = limiter.try_acquire("user:42", blocking=False)
        return await acquired

    try:
        report.add(group, "pyrate-limiter redis (asyncio)", measure_concurrent(pyrate))
    except Exception as error:  # a peer's failure must not hide our figures
        report.note(f"pyrate-limiter asyncio failed: {type(error).__name__}: {error}")
    floor_ns = report.get(group, "raw redis-py EVALSHA (floor)").ns_per_op
    report.note(
        f"{group}: ours / floor: "
        + ", ".join(
            f"{a} {report.get(group, f'resilience {a}').ns_per_op / floor_ns:.2f}x"
            for a in ("token_bucket", "gcra", "sliding_window")
        )
    )
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
    server = _PinnedServer()
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
