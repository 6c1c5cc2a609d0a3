"""Behaviour 8 (front doors, sync), 7 with threads, 4 (lease)."""

from __future__ import annotations

import contextlib
import threading
import time

import pytest

from resilience import CircuitHalfOpenError, CircuitOpenError, CircuitState, MemoryBackend
from tests.conftest import TestClock

from .conftest import Boom, Make, fail, state


def test_decorator_keeps_metadata_and_result(make_sync: Make) -> None:
    br = make_sync()

    @br
    def load_user(user_id: int) -> dict[str, int]:
        """Load a user."""
        return {"id": user_id}

    assert load_user(7) == {"id": 7}
    assert load_user.__name__ == "load_user"
    assert load_user.__doc__ == "Load a user."
    assert br.call(load_user, 8) == {"id": 8}


def test_sync_context_manager(make_sync: Make, sync_clock: TestClock) -> None:
    br = make_sync(failure_threshold=2, recovery_timeout=10.0)
    with br:
        pass
    for _ in range(2):
        with pytest.raises(Boom), br:
            raise Boom("x")
    with pytest.raises(CircuitOpenError) as info, br:
        pytest.fail("an open breaker must not run the block")
    assert 9.0 < info.value.retry_after <= 10.0
    sync_clock.advance(11)
    with br:
        assert state(br) is CircuitState.HALF_OPEN
    assert state(br) is CircuitState.CLOSED


def test_nested_probe_refused(make_sync: Make, sync_clock: TestClock) -> None:
    br = make_sync(failure_threshold=1, recovery_timeout=10.0, half_open_max_calls=1)
    fail(br)
    sync_clock.advance(11)
    with br, pytest.raises(CircuitHalfOpenError), br.guard():
        pass
    assert state(br) is CircuitState.CLOSED


def test_sync_fallbacks(make_sync: Make) -> None:
    value = make_sync(failure_threshold=1, fallback=None)
    computed = make_sync(failure_threshold=1, fallback=lambda user: {"id": user, "stale": True})
    fail(value)
    fail(computed)
    assert value.call(lambda: "fresh") is None
    assert computed.call(lambda user: {"id": user}, 3) == {"id": 3, "stale": True}


def test_probe_that_never_reports_loses_its_permit(make_sync: Make, sync_clock: TestClock) -> None:
    br = make_sync(failure_threshold=1, recovery_timeout=10.0, probe_lease=5.0)
    fail(br)
    sync_clock.advance(11)
    lost = br.guard()
    lost.__enter__()  # the probe's process dies: it never reports
    with pytest.raises(CircuitHalfOpenError):
        br.call(lambda: None)
    sync_clock.advance(5.1)
    assert br.call(lambda: "ok") == "ok"  # the lease ran out: a new probe may go
    assert state(br) is CircuitState.CLOSED


@pytest.mark.parametrize(
    "options",
    [{}, {"window": "count", "slow_call_duration": 10.0}],
    ids=["fast-path", "locked-path"],
)
def test_threads_run_concurrently(make_sync: Make, options: dict[str, object]) -> None:
    br = make_sync(**options)  # timing calls takes the admit/record path under the lock
    if options and not isinstance(br.backend, MemoryBackend):
        pytest.skip("on Redis both variants take the same path (one script per step)")

    @br
    def work() -> None:
        time.sleep(0.1)

    work()
    threads = [threading.Thread(target=work) for _ in range(20)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert time.perf_counter() - start < 1.0
    assert br.stats().successes == 21


def test_thread_safety_of_counts(make_sync: Make) -> None:
    br = make_sync(failure_threshold=10_000)

    @br
    def work(i: int) -> None:
        if i % 10 == 0:
            raise Boom("x")

    def loop() -> None:
        for i in range(500):
            with contextlib.suppress(Boom):
                work(i)

    threads = [threading.Thread(target=loop) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    stats = br.refresh()
    assert (stats.calls, stats.failures, stats.successes) == (2000, 200, 1800)


def test_success_in_flight_across_a_trip_is_dropped(make_sync: Make) -> None:
    br = make_sync(failure_threshold=1, recovery_timeout=10.0)
    started, release = threading.Event(), threading.Event()
    results: list[str] = []

    @br
    def slow() -> str:
        started.set()
        release.wait(5)
        return "late"

    thread = threading.Thread(target=lambda: results.append(slow()))
    thread.start()
    assert started.wait(5)
    fail(br)  # trips while slow() is in flight (admitted on the closed fast path)
    release.set()
    thread.join(5)
    assert results == ["late"]
    stats = br.refresh()
    assert stats.state is CircuitState.OPEN
    assert (stats.calls, stats.successes) == (1, 0)  # the late success was dropped


def test_call_in_flight_across_configure_is_not_slow(make_sync: Make) -> None:
    br = make_sync(failure_threshold=5)
    started, release = threading.Event(), threading.Event()

    @br
    def failing() -> None:
        started.set()
        release.wait(5)
        raise Boom("late")

    def run() -> None:
        with contextlib.suppress(Boom):
            failing()

    thread = threading.Thread(target=run)
    thread.start()  # admitted on the closed fast path, which times nothing
    assert started.wait(5)
    br.configure(window="count", minimum_calls=5, slow_call_duration=30.0)
    release.set()
    thread.join(5)
    stats = br.refresh()
    assert (stats.failures, stats.slow) == (1, 0)
