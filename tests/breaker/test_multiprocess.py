"""Four processes on one Redis: opens once, exactly N probes fleet-wide, closes once."""

from __future__ import annotations

import multiprocessing
import threading
import time
import uuid

import pytest

from resilience import backend_from_url

from . import mp_worker

pytestmark = [pytest.mark.redis, pytest.mark.slow]

PROCESSES = 4


def test_four_processes_share_one_breaker(redis_url: str) -> None:
    ctx = multiprocessing.get_context("spawn")
    prefix = "mp" + uuid.uuid4().hex[:10]
    name = "payments"
    listener = backend_from_url(redis_url, prefix=prefix)
    messages: list[bytes] = []
    lock = threading.Lock()

    def collect(message: bytes | None) -> None:
        if message is not None:
            with lock:
                messages.append(message)

    subscription = listener.subscribe(listener.channel("breaker", name), collect)
    sync = ctx.Barrier(PROCESSES + 1)
    counts = ctx.Array("i", [0, 0])  # probes that ran, callers refused
    release = ctx.Event()
    out = ctx.Queue()
    procs = [
        ctx.Process(
            target=mp_worker.run, args=(redis_url, prefix, name, sync, counts, release, out)
        )
        for _ in range(PROCESSES)
    ]
    for proc in procs:
        proc.start()
    try:
        sync.wait(60)  # all built
        sync.wait(30)  # all failed
        sync.wait(30)  # all saw it open and moved their clocks past the open time
        total = PROCESSES * mp_worker.CALLERS
        deadline = time.monotonic() + 20
        while counts[0] + counts[1] < total:
            assert time.monotonic() < deadline, f"stuck at {counts[:]}"
            time.sleep(0.01)
        assert counts[:] == [mp_worker.PROBES, total - mp_worker.PROBES]
        release.set()
        sync.wait(30)  # all probes done
        results = [out.get(timeout=30) for _ in procs]
        assert results == [("ok", "closed")] * PROCESSES
    finally:
        release.set()
        for proc in procs:
            proc.join(30)
            if proc.is_alive():
                proc.kill()
        subscription.close()
        client = listener.client  # type: ignore[attr-defined]
        for key in client.scan_iter(match=f"{prefix}:*"):
            client.delete(key)
        listener.close()
    assert all(proc.exitcode == 0 for proc in procs)
    deadline = time.monotonic() + 5
    while len(messages) < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.1)  # a duplicate transition, if any, would arrive now
    states = [int(m.split(b":")[1]) for m in messages]
    assert states == [1, 2, 0]  # opened once, half-open once, closed once
    assert counts[0] == mp_worker.PROBES  # exactly N probes ran fleet-wide
