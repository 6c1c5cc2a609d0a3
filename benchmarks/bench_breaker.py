"""Circuit breaker: per-call overhead in memory, round trips and latency on Redis.

Peers in the same run: pybreaker, aiobreaker, purgatory, circuitbreaker. Overhead is the
breaker-protected call minus the bare call (best of five repeats each). Redis round trips are
counted with ``INFO commandstats`` deltas on a private ``redis-server`` (so no other client's
commands are counted).
"""

from __future__ import annotations

import contextlib
import shutil
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import aiobreaker
import circuitbreaker
import purgatory
import pybreaker
import redis

from benchmarks.harness import Report, measure_async, measure_sync
from resilience import CircuitBreaker, CircuitOpenError, backend_from_url

TARGET = 0.6


def _bare(x: int) -> int:
    return x


async def _abare(x: int) -> int:
    return x


def _name() -> str:
    return "bench-" + uuid.uuid4().hex[:8]


def _overheads(
    report: Report, group: str, cases: dict[str, list[float]], bare: list[float]
) -> None:
    base = min(bare)
    for name, repeats in cases.items():
        report.add(group, name, [max(r - base, 1.0) for r in repeats])


def _ratio_note(report: Report, group: str, ours: str, peers: list[str]) -> None:
    fastest = min(peers, key=lambda p: report.get(group, p).ns_per_op)
    ratio = report.ratio(group, ours, fastest)
    verdict = "meets" if ratio <= TARGET else "MISSES"
    report.note(
        f"{group}: ours / fastest peer ({fastest}) = {ratio:.2f}x ({verdict} the {TARGET}x target)"
    )


def _memory_sync(report: Report) -> None:
    ours = CircuitBreaker(_name(), failure_threshold=5, recovery_timeout=30.0)(_bare)
    peers: dict[str, Callable[[int], int]] = {
        "pybreaker": pybreaker.CircuitBreaker(fail_max=5, reset_timeout=30)(_bare),
        "purgatory": purgatory.SyncCircuitBreakerFactory(default_threshold=5, default_ttl=30)(
            _name()
        )(_bare),
        "circuitbreaker": circuitbreaker.circuit(failure_threshold=5, recovery_timeout=30)(_bare),
    }
    bare = measure_sync(lambda: _bare(1))
    cases = {"resilience": measure_sync(lambda: ours(1))}
    for name, fn in peers.items():
        cases[name] = measure_sync(lambda fn=fn: fn(1))  # type: ignore[misc]
    bare += measure_sync(lambda: _bare(1))
    group = "memory sync closed: overhead per call"
    _overheads(report, group, cases, bare)
    _ratio_note(report, group, "resilience", list(peers))


def _memory_async(report: Report) -> None:
    ours = CircuitBreaker(_name(), failure_threshold=5, recovery_timeout=30.0)(_abare)
    peers: dict[str, Callable[[int], Awaitable[int]]] = {
        "aiobreaker": aiobreaker.CircuitBreaker(fail_max=5, timeout_duration=timedelta(seconds=30))(
            _abare
        ),
        "purgatory": purgatory.AsyncCircuitBreakerFactory(default_threshold=5, default_ttl=30)(
            _name()
        )(_abare),
        "circuitbreaker": circuitbreaker.circuit(failure_threshold=5, recovery_timeout=30)(_abare),
    }
    bare = measure_async(lambda: _abare(1))
    cases = {"resilience": measure_async(lambda: ours(1))}
    for name, fn in peers.items():
        cases[name] = measure_async(lambda fn=fn: fn(1))  # type: ignore[misc]
    bare += measure_async(lambda: _abare(1))
    group = "memory async closed: overhead per call"
    _overheads(report, group, cases, bare)
    _ratio_note(report, group, "resilience", list(peers))


def _memory_modes(report: Report) -> None:
    cases: dict[str, list[float]] = {}
    variants: dict[str, dict[str, Any]] = {
        "consecutive (fast path)": {},
        "consecutive + listener": {"listeners": [lambda event: None]},
        "count window (100 calls)": {"window": "count", "window_size": 100},
        "time window (60 s)": {"window": "time", "window_duration": 60.0},
        "time window + slow calls": {
            "window": "time",
            "window_duration": 60.0,
            "slow_call_duration": 1.0,
        },
    }
    bare = measure_sync(lambda: _bare(1))
    for label, options in variants.items():
        fn = CircuitBreaker(_name(), **options)(_bare)
        cases[label] = measure_sync(lambda fn=fn: fn(1))  # type: ignore[misc]
    _overheads(report, "memory sync closed by trip rule: overhead per call", cases, bare)


def _redis_server() -> tuple[str, Any]:
    if shutil.which("redis-server") is None:
        raise RuntimeError("redis-server is needed for the Redis part")
    from tests.servers import RedisServer

    server = RedisServer().start()
    return server.url, server


def _commands(client: Any, scripted: bool = False) -> int:
    """Commands sent by clients: scripts count once (not the commands they run inside)."""
    stats = client.info("commandstats")
    if scripted:
        return sum(stats.get(k, {}).get("calls", 0) for k in ("cmdstat_evalsha", "cmdstat_eval"))
    return sum(v["calls"] for k, v in stats.items() if k != "cmdstat_info")


def _per_call(
    client: Any, fn: Callable[[], object], calls: int = 200, scripted: bool = False
) -> float:
    before = _commands(client, scripted)
    for _ in range(calls):
        fn()
    return (_commands(client, scripted) - before) / calls


def _rejected(fn: Callable[[], object]) -> Callable[[], object]:
    def call() -> None:
        try:
            fn()
        except (CircuitOpenError, pybreaker.CircuitBreakerError):
            pass
        except Exception as error:
            if type(error).__name__ != "OpenedState":  # purgatory's open error
                raise

    return call


def _boom() -> None:
    raise RuntimeError("down")


def _purgatory_async(url: str, client: Any) -> tuple[float, float]:
    import anyio

    async def main() -> tuple[float, float]:
        uow = purgatory.AsyncRedisUnitOfWork(url)
        await uow.initialize()
        factory = purgatory.AsyncCircuitBreakerFactory(default_threshold=1, default_ttl=30, uow=uow)
        name = _name()

        async def ok_() -> int:
            return 1

        async def bad_() -> int:
            raise RuntimeError("down")

        fn: Callable[[], Awaitable[int]] = factory(name)(ok_)
        bad: Callable[[], Awaitable[int]] = factory(name)(bad_)

        await fn()
        before = _commands(client)
        for _ in range(200):
            await fn()
        closed = (_commands(client) - before) / 200
        with contextlib.suppress(RuntimeError):
            await bad()
        before = _commands(client)
        for _ in range(200):
            try:
                await fn()
            except Exception as error:
                if "open" not in type(error).__name__.lower():
                    raise
        opened = (_commands(client) - before) / 200
        return closed, opened

    return anyio.run(main)


def _redis(report: Report) -> None:
    url, server = _redis_server()
    client: Any = redis.Redis.from_url(url)
    rows: list[str] = []
    try:
        backend = backend_from_url(url, test_clock=True)
        breaker = CircuitBreaker(
            _name(), backend=backend, failure_threshold=1, recovery_timeout=30.0
        )
        ours = breaker(_bare)
        ours(1)  # learn the state
        closed = _per_call(client, lambda: ours(1), scripted=True)
        latency = measure_sync(lambda: ours(1), number=2000)
        with contextlib.suppress(RuntimeError):
            breaker.call(_boom)
        opened = _per_call(client, _rejected(lambda: ours(1)), scripted=True)
        backend.advance_clock(31)  # type: ignore[attr-defined]
        probe = _per_call(client, lambda: ours(1), calls=1, scripted=True)  # acquire + record
        rows.append(f"| resilience | {closed:.2f} | {opened:.2f} | {probe:.0f} |")

        pb = pybreaker.CircuitBreaker(
            fail_max=1,
            reset_timeout=30,
            state_storage=pybreaker.CircuitRedisStorage(
                pybreaker.STATE_CLOSED, redis.Redis.from_url(url), namespace=_name()
            ),
        )
        pb_fn = pb(_bare)
        pb_fn(1)
        pb_closed = _per_call(client, lambda: pb_fn(1))
        pb_latency = measure_sync(lambda: pb_fn(1), number=2000)
        with contextlib.suppress(RuntimeError, pybreaker.CircuitBreakerError):
            pb.call(_boom)
        pb_open = _per_call(client, _rejected(lambda: pb_fn(1)))
        rows.append(f"| pybreaker (CircuitRedisStorage) | {pb_closed:.2f} | {pb_open:.2f} | - |")

        # purgatory's SyncRedisUnitOfWork calls the asyncio client without awaiting it
        # (3.0.1), so its async flavour is measured.
        pu_closed, pu_open = _purgatory_async(url, client)
        rows.append(f"| purgatory (AsyncRedisUnitOfWork) | {pu_closed:.2f} | {pu_open:.2f} | - |")

        group = "redis sync closed: latency per call (local server)"
        report.add(group, "resilience", latency)
        report.add(group, "pybreaker (redis storage)", pb_latency)
        report.note(
            "Redis commands per protected call (INFO commandstats), "
            "closed | open (rejected) | half-open probe:\n"
            + "\n".join(["| case | closed | open | probe |", "|---|---:|---:|---:|", *rows])
        )
        breaker.close()
        backend.close()
    finally:
        client.close()
        server.stop()


def run(report: Report) -> None:
    """Memory overhead vs peers, trip-rule variants, Redis round trips and latency."""
    _memory_sync(report)
    _memory_async(report)
    _memory_modes(report)
    _redis(report)
