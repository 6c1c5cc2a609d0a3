"""The benchmark harness: run cases side by side in one process and compare them.

A suite is a module ``benchmarks/bench_<suite>.py`` with ``def run(report: Report) -> None``.
It measures each case with :func:`measure_sync`, :func:`measure_async` or
:func:`measure_concurrent` and adds the result to the report under a group (one comparison
table). Within a group, every row gets its ratio to each other row, so "ours / peer" is read
directly; the report is printed and written as JSON to ``benchmarks/results/<suite>.json``.

Timing takes the best of several repeats (the minimum is the least noisy estimate of the cost
on a shared 2-core machine); the JSON records every repeat.
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import platform
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "ROUNDS",
    "PinnedRedisServer",
    "Report",
    "Result",
    "interleaved",
    "measure_async",
    "measure_concurrent",
    "measure_sync",
]

RESULTS = Path(__file__).parent / "results"


@dataclass
class Result:
    """One measured case: nanoseconds per operation (best repeat) and every repeat."""

    group: str
    name: str
    ns_per_op: float
    repeats: list[float] = field(default_factory=list)
    note: str = ""

    @property
    def ops_per_s(self) -> float:
        return 1e9 / self.ns_per_op if self.ns_per_op else float("inf")


def _calibrate(run_once: Callable[[int], float], target: float = 0.2) -> int:
    number = 1
    while True:
        elapsed = run_once(number)
        if elapsed >= target or number >= 10_000_000:
            return number
        number = max(number * 2, int(number * target / max(elapsed, 1e-9)))


def _best(run_once: Callable[[int], float], number: int | None, repeat: int) -> list[float]:
    number = number or _calibrate(run_once)
    gc.collect()
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        return [run_once(number) / number * 1e9 for _ in range(repeat)]
    finally:
        if was_enabled:
            gc.enable()


def measure_sync(
    fn: Callable[[], object], *, number: int | None = None, repeat: int = 5
) -> list[float]:
    """ns per call of ``fn()`` for each repeat."""

    def run_once(n: int) -> float:
        start = time.perf_counter()
        for _ in range(n):
            fn()
        return time.perf_counter() - start

    return _best(run_once, number, repeat)


def measure_async(
    fn: Callable[[], Awaitable[object]],
    *,
    number: int | None = None,
    repeat: int = 5,
    backend: str = "asyncio",
    teardown: Callable[[], Awaitable[object]] | None = None,
) -> list[float]:
    """ns per ``await fn()`` in one task, on a fresh event loop (asyncio by default).

    ``teardown`` is awaited on that loop at the end (close the loop's connections there).
    """
    import anyio

    async def batch(n: int) -> float:
        start = time.perf_counter()
        for _ in range(n):
            await fn()
        return time.perf_counter() - start

    async def main() -> list[float]:
        async def run_batch(n: int) -> float:
            return await batch(n)

        n = number
        if n is None:
            n = 1
            while (elapsed := await run_batch(n)) < 0.2 and n < 10_000_000:
                n = max(n * 2, int(n * 0.2 / max(elapsed, 1e-9)))
        results = [await run_batch(n) / n * 1e9 for _ in range(repeat)]
        if teardown is not None:
            await teardown()
        return results

    return anyio.run(main, backend=backend)


def measure_concurrent(
    fn: Callable[[], Awaitable[object]],
    *,
    tasks: int = 64,
    per_task: int = 200,
    repeat: int = 5,
    teardown: Callable[[], Awaitable[object]] | None = None,
) -> list[float]:
    """ns per operation (wall time / total operations) with ``tasks`` asyncio tasks in flight."""

    async def main() -> list[float]:
        async def worker() -> None:
            for _ in range(per_task):
                await fn()

        results = []
        await worker()  # warm up connections and caches
        for _ in range(repeat):
            start = time.perf_counter()
            await asyncio.gather(*(worker() for _ in range(tasks)))
            results.append((time.perf_counter() - start) / (tasks * per_task) * 1e9)
        if teardown is not None:
            await teardown()
        return results

    return asyncio.run(main())


class Report:
    """Collects results of one suite, prints comparison tables, writes JSON."""

    def __init__(self, suite: str) -> None:
        self.suite = suite
        self.results: list[Result] = []
        self.notes: list[str] = []

    def add(self, group: str, name: str, repeats: list[float], note: str = "") -> Result:
        """Record a case; ``repeats`` are ns/op samples (the best one is reported)."""
        result = Result(group, name, min(repeats), repeats, note)
        self.results.append(result)
        print(
            f"  {group:<40} {name:<34} {result.ns_per_op:>12,.0f} ns/op"
            f" {result.ops_per_s:>14,.0f} ops/s",
            flush=True,
        )
        return result

    def note(self, text: str) -> None:
        """Attach a free-text observation (printed and saved)."""
        self.notes.append(text)
        print(f"  note: {text}", flush=True)

    def get(self, group: str, name: str) -> Result:
        """The result recorded for ``name`` in ``group``."""
        for result in self.results:
            if result.group == group and result.name == name:
                return result
        raise KeyError((group, name))

    def ratio(self, group: str, ours: str, peer: str) -> float:
        """``ours / peer`` in ns per op (below 1.0: ours is faster)."""
        return self.get(group, ours).ns_per_op / self.get(group, peer).ns_per_op

    def groups(self) -> dict[str, list[Result]]:
        """Results by group, in the order they were added."""
        grouped: dict[str, list[Result]] = {}
        for result in self.results:
            grouped.setdefault(result.group, []).append(result)
        return grouped

    def table(self) -> str:
        """The comparison tables as Markdown."""
        lines: list[str] = []
        for group, rows in self.groups().items():
            lines += [f"### {group}", "", "| case | ns/op | ops/s | ratio to each other row |"]
            lines.append("|---|---:|---:|---|")
            for row in rows:
                ratios = ", ".join(
                    f"{row.ns_per_op / other.ns_per_op:.2f}x {other.name}"
                    for other in rows
                    if other is not row
                )
                lines.append(
                    f"| {row.name} | {row.ns_per_op:,.0f} | {row.ops_per_s:,.0f} | {ratios} |"
                )
            lines.append("")
        return "\n".join(lines)

    def save(self) -> Path:
        """Print the tables and write ``benchmarks/results/<suite>.json``."""
        print()
        print(self.table())
        RESULTS.mkdir(exist_ok=True)
        path = RESULTS / f"{self.suite}.json"
        payload: dict[str, Any] = {
            "suite": self.suite,
            "python": platform.python_version(),
            "machine": platform.machine(),
            "cpus": os.cpu_count(),
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "results": [asdict(r) | {"ops_per_s": r.ops_per_s} for r in self.results],
            "notes": self.notes,
            "median_spread": {
                f"{r.group}/{r.name}": statistics.median(r.repeats) / r.ns_per_op
                for r in self.results
            },
        }
        path.write_text(json.dumps(payload, indent=2))
        print(f"wrote {path}")
        return path


class PinnedRedisServer:
    """A private redis-server on CPU 0; this process moves to the other CPUs."""

    def __init__(self) -> None:
        import redis

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


ROUNDS = 5


def interleaved(
    report: Report, group: str, cases: dict[str, Any], measure: Callable[[Any], list[float]]
) -> None:
    """Measure every case once per round, ROUNDS times, cases interleaved, best round kept.

    On a shared 2-CPU machine the Redis figures drift by tens of percent within a run; taking
    each case's best of rounds spread over the whole run compares them under the same drift.
    """
    samples: dict[str, list[float]] = {name: [] for name in cases}
    for round_ in range(ROUNDS):
        # Odd rounds run the cases in reverse: whichever runs first in a round is measurably
        # favoured on this machine (about 5-10 % on a Redis round trip).
        order = list(cases.items())
        for name, fn in order if round_ % 2 == 0 else order[::-1]:
            try:
                samples[name] += measure(fn)
            except Exception as error:  # a peer's failure must not hide the other figures
                report.note(f"{group} / {name} failed: {type(error).__name__}: {error}")
                samples[name] = []
                cases = {k: v for k, v in cases.items() if k != name}
                break
    for name, values in samples.items():
        if values:
            report.add(group, name, values)
