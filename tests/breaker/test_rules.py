"""Behaviour 2 (trip rules), 5 (three-way outcomes), 6 (stale outcomes dropped)."""

from __future__ import annotations

import time

import pytest

from resilience import BreakerEvent, BreakerEventType, CircuitOpenError, CircuitState
from tests.conftest import TestClock

from .conftest import Boom, Make, fail, state, succeed


def test_consecutive_failures_reset_by_success(make_sync: Make) -> None:
    br = make_sync(failure_threshold=3)
    fail(br, 2)
    succeed(br)
    fail(br, 2)
    assert state(br) is CircuitState.CLOSED
    assert br.stats().consecutive_failures == 2
    fail(br)
    assert state(br) is CircuitState.OPEN


def test_count_window_minimum_calls(make_sync: Make) -> None:
    br = make_sync(window="count", window_size=20, minimum_calls=10, failure_rate_threshold=0.5)
    fail(br, 9)
    assert state(br) is CircuitState.CLOSED  # nine failures never open it
    assert br.stats().window_calls == 9
    succeed(br)  # 9 / 10 >= 50 %
    assert state(br) is CircuitState.OPEN


def test_count_window_smaller_than_minimum_calls_still_trips(make_sync: Make) -> None:
    br = make_sync(window="count", window_size=4, failure_rate_threshold=0.5)  # minimum_calls 10
    fail(br, 2)
    succeed(br)
    assert state(br) is CircuitState.CLOSED
    succeed(br)  # four calls fill the window: 2 / 4
    assert state(br) is CircuitState.OPEN


def test_count_window_slides(make_sync: Make) -> None:
    br = make_sync(window="count", window_size=4, minimum_calls=4, failure_rate_threshold=0.5)
    fail(br)
    succeed(br, 3)  # [F S S S]: 25 %
    assert state(br) is CircuitState.CLOSED
    fail(br)  # [S S S F]: the first failure slid out, 25 %
    assert state(br) is CircuitState.CLOSED
    assert br.stats().failure_rate == 0.25
    fail(br)  # [S S F F]: 50 %
    assert state(br) is CircuitState.OPEN


def test_time_window_forgets_old_calls(make_sync: Make, sync_clock: TestClock) -> None:
    br = make_sync(window="time", window_duration=10.0, minimum_calls=3, failure_rate_threshold=0.5)
    fail(br, 2)
    sync_clock.advance(11.0)
    succeed(br, 2)
    fail(br)  # without forgetting: 3 / 5 would trip; the window holds [S S F]
    assert state(br) is CircuitState.CLOSED
    assert br.stats().window_calls == 3
    fail(br)  # [S S F F]: 50 %
    assert state(br) is CircuitState.OPEN


def test_time_window_keeps_recent_calls(make_sync: Make, sync_clock: TestClock) -> None:
    br = make_sync(window="time", window_duration=10.0, minimum_calls=4, failure_rate_threshold=0.5)
    fail(br, 2)
    sync_clock.advance(5.0)
    succeed(br)
    fail(br)  # all four within 10 s: 3 / 4
    assert state(br) is CircuitState.OPEN


def test_slow_call_rate(make_sync: Make, sync_clock: TestClock) -> None:
    br = make_sync(
        window="count",
        window_size=4,
        minimum_calls=4,
        slow_call_duration=0.2,
        slow_call_rate_threshold=0.5,
    )

    def slow() -> str:
        sync_clock.advance(0.25)  # memory measures with the backend clock
        if sync_clock.fake is None:
            # Redis measures call durations with the local monotonic clock. The margins are
            # wide: a slow call sleeps 0.25 s, a fast call must stay under 0.2 s even on a
            # loaded machine.
            time.sleep(0.25)
        return "slow"

    succeed(br)
    assert br.call(slow) == "slow"
    succeed(br)
    assert state(br) is CircuitState.CLOSED
    assert br.call(slow) == "slow"  # 2 slow of 4, no failure at all
    assert state(br) is CircuitState.OPEN
    stats = br.stats()
    assert (stats.slow, stats.failures) == (2, 0)


def test_ignored_exceptions_neither_trip_nor_reset(make_sync: Make) -> None:
    br = make_sync(failure_threshold=2, ignore_on=(KeyError,))

    def missing() -> None:
        raise KeyError("k")

    fail(br)
    for _ in range(3):
        with pytest.raises(KeyError):
            br.call(missing)
    stats = br.stats()
    assert (stats.ignored, stats.consecutive_failures, stats.state) == (3, 1, CircuitState.CLOSED)
    fail(br)
    assert state(br) is CircuitState.OPEN


def test_record_on_limits_failures(make_sync: Make) -> None:
    br = make_sync(failure_threshold=2, record_on=(Boom,))

    def other() -> None:
        raise ValueError("not ours")

    fail(br)
    with pytest.raises(ValueError, match="not ours"):
        br.call(other)  # not recorded as a failure: counts as a success
    fail(br)
    assert state(br) is CircuitState.CLOSED
    fail(br)
    assert state(br) is CircuitState.OPEN


def test_predicates(make_sync: Make) -> None:
    br = make_sync(
        failure_threshold=2,
        record_on=lambda exc: "fatal" in str(exc),
        ignore_on=lambda exc: isinstance(exc, LookupError),
    )

    def raise_(exc: Exception) -> None:
        raise exc

    with pytest.raises(ValueError, match="fatal"):
        br.call(raise_, ValueError("fatal"))
    with pytest.raises(IndexError):
        br.call(raise_, IndexError("fatal too, but ignored"))
    with pytest.raises(ValueError, match="fatal"):
        br.call(raise_, ValueError("fatal"))
    assert state(br) is CircuitState.OPEN
    assert br.stats().ignored == 1


def test_failure_result_predicate(make_sync: Make) -> None:
    br = make_sync(failure_threshold=2, failure_result=lambda r: r is None or r == 503)
    assert br.call(lambda: 200) == 200
    assert br.call(lambda: 503) == 503  # returned, but counted as a failure
    assert br.call(lambda: None) is None
    assert state(br) is CircuitState.OPEN
    stats = br.stats()
    assert (stats.failures, stats.last_failure_type) == (2, "failure_result")


def test_stale_outcome_cannot_close_half_open(make_sync: Make, sync_clock: TestClock) -> None:
    br = make_sync(failure_threshold=1, recovery_timeout=5.0, half_open_max_calls=1)
    old = br.guard()
    old.__enter__()  # admitted while CLOSED
    fail(br)
    sync_clock.advance(6)
    probe = br.guard()
    probe.__enter__()
    assert state(br) is CircuitState.HALF_OPEN
    old.__exit__(None, None, None)  # a success from before the trip: dropped
    assert state(br) is CircuitState.HALF_OPEN
    probe.__exit__(None, None, None)
    assert state(br) is CircuitState.CLOSED


def test_stale_failure_cannot_open_twice(make_sync: Make) -> None:
    br = make_sync(failure_threshold=1)
    events: list[BreakerEvent] = []
    br.add_listener(events.append, BreakerEventType.STATE_CHANGE)
    first, second = br.guard(), br.guard()
    first.__enter__()
    second.__enter__()
    first.__exit__(Boom, Boom("x"), None)
    second.__exit__(Boom, Boom("y"), None)  # admitted before the trip: dropped
    assert [(e.old_state, e.new_state) for e in events] == [
        (CircuitState.CLOSED, CircuitState.OPEN)
    ]
    stats = br.stats()
    assert (stats.failures, stats.last_failure_type) == (1, "Boom")
    with pytest.raises(CircuitOpenError):
        br.call(lambda: None)
