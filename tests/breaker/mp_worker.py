"""One process of the multi-process breaker test (imported by spawned children)."""

from __future__ import annotations

import contextlib
import threading
import time
from typing import Any

from resilience import (
    CircuitBreaker,
    CircuitHalfOpenError,
    CircuitOpenError,
    CircuitState,
    backend_from_url,
)

THRESHOLD = 8
PROBES = 2
CALLERS = 5  # threads per process trying to probe at once


class Boom(Exception):
    """The failure."""


def _boom() -> None:
    raise Boom("down")


def _wait_state(breaker: CircuitBreaker, state: CircuitState) -> None:
    deadline = time.monotonic() + 10
    while breaker.state is not state:
        if time.monotonic() > deadline:
            raise AssertionError(f"{breaker.name}: still {breaker.state}, wanted {state}")
        time.sleep(0.005)


def run(url: str, prefix: str, name: str, sync: Any, counts: Any, release: Any, out: Any) -> None:
    """Fail, see the breaker open, race for probes, see it close."""
    backend = backend_from_url(url, prefix=prefix, test_clock=True)
    breaker = CircuitBreaker(
        name,
        backend=backend,
        failure_threshold=THRESHOLD,
        recovery_timeout=10.0,
        half_open_max_calls=PROBES,
        success_threshold=PROBES,
    )
    try:
        sync.wait(30)
        for _ in range(3):  # 12 failures fleet-wide for a threshold of 8
            with contextlib.suppress(Boom, CircuitOpenError):
                breaker.call(_boom)
        sync.wait(30)
        _wait_state(breaker, CircuitState.OPEN)  # learned from replies or pub/sub
        backend.advance_clock(11)  # type: ignore[attr-defined]
        sync.wait(30)

        def probe() -> None:
            with counts.get_lock():
                counts[0] += 1
            release.wait(30)

        def caller() -> None:
            try:
                breaker.call(probe)
            except CircuitHalfOpenError:
                with counts.get_lock():
                    counts[1] += 1

        threads = [threading.Thread(target=caller) for _ in range(CALLERS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        sync.wait(30)
        _wait_state(breaker, CircuitState.CLOSED)
        out.put(("ok", breaker.stats().state.value))
    except BaseException as error:  # report, so the parent fails with the reason
        out.put(("error", repr(error)))
        raise
    finally:
        breaker.close()
        backend.close()
