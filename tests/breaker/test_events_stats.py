"""Behaviour 11: listeners and stats snapshots."""

from __future__ import annotations

import logging
import math
import time

import pytest

from resilience import (
    Backend,
    BreakerEvent,
    BreakerEventType,
    BreakerStats,
    CircuitBreaker,
    CircuitOpenError,
    CircuitState,
)
from tests.conftest import TestClock

from .conftest import Make, fail, fresh_name, state, succeed

C, OP, H = CircuitState.CLOSED, CircuitState.OPEN, CircuitState.HALF_OPEN


def test_events_arrive_in_transition_order(make_sync: Make, sync_clock: TestClock) -> None:
    br = make_sync(failure_threshold=2, recovery_timeout=10.0)
    events: list[BreakerEvent] = []
    br.add_listener(events.append)
    succeed(br)
    fail(br, 2)
    with pytest.raises(CircuitOpenError):
        br.call(lambda: None)
    sync_clock.advance(11)
    succeed(br)
    kinds = [e.type for e in events]
    T = BreakerEventType
    assert kinds == [
        T.SUCCESS,
        T.FAILURE,
        T.FAILURE,
        T.STATE_CHANGE,
        T.REJECTED,
        T.STATE_CHANGE,
        T.SUCCESS,
        T.STATE_CHANGE,
    ]
    changes = [(e.old_state, e.new_state) for e in events if e.type is T.STATE_CHANGE]
    assert changes == [(C, OP), (OP, H), (H, C)]
    assert all(e.breaker == br.name for e in events)
    failure = events[1]
    assert isinstance(failure.error, Exception)
    assert failure.duration is not None
    assert failure.duration >= 0
    rejected = events[4].error
    assert isinstance(rejected, CircuitOpenError)


def test_filtered_and_removed_listeners(make_sync: Make) -> None:
    br = make_sync(failure_threshold=1)
    changes: list[BreakerEvent] = []
    everything: list[BreakerEvent] = []
    br.add_listener(changes.append, BreakerEventType.STATE_CHANGE)
    br.add_listener(everything.append)
    succeed(br)
    br.remove_listener(everything.append)
    fail(br)
    assert [e.type for e in changes] == [BreakerEventType.STATE_CHANGE]
    assert [e.type for e in everything] == [BreakerEventType.SUCCESS]


def test_raising_listener_is_logged_and_changes_nothing(
    make_sync: Make, caplog: pytest.LogCaptureFixture
) -> None:
    br = make_sync(failure_threshold=2)
    seen: list[BreakerEvent] = []

    def broken(event: BreakerEvent) -> None:
        raise RuntimeError("listener bug")

    br.add_listener(broken)
    br.add_listener(seen.append)
    with caplog.at_level(logging.ERROR, logger="resilience.breaker"):
        succeed(br)
        fail(br, 2)
    assert state(br) is CircuitState.OPEN
    assert len(seen) == 4  # success, failure, failure, state change
    assert "listener" in caplog.text
    assert "listener bug" in caplog.text


def test_listener_may_call_back_into_the_breaker(make_sync: Make) -> None:
    br = make_sync(failure_threshold=1)
    changes: list[tuple[CircuitState | None, CircuitState | None]] = []

    def reset_on_open(event: BreakerEvent) -> None:
        changes.append((event.old_state, event.new_state))
        if event.new_state is CircuitState.OPEN:
            br.reset()

    br.add_listener(reset_on_open, BreakerEventType.STATE_CHANGE)
    fail(br)
    assert changes == [(C, OP), (OP, C)]
    assert state(br) is CircuitState.CLOSED


def test_stats_snapshot(make_sync: Make, sync_clock: TestClock) -> None:
    br = make_sync(failure_threshold=3, recovery_timeout=30.0, ignore_on=(KeyError,))
    before = time.time()
    succeed(br, 2)

    def missing() -> None:
        raise KeyError("k")

    with pytest.raises(KeyError):
        br.call(missing)
    fail(br, 3)
    with pytest.raises(CircuitOpenError):
        br.call(lambda: None)
    stats = br.stats()
    assert isinstance(stats, BreakerStats)
    assert stats.name == br.name
    assert stats.state is CircuitState.OPEN
    assert (stats.calls, stats.successes, stats.failures) == (5, 2, 3)
    assert (stats.ignored, stats.rejected, stats.slow) == (1, 1, 0)
    assert stats.failure_rate == pytest.approx(3 / 5)
    assert stats.consecutive_failures == 3
    assert stats.opened_at is not None
    assert before - 1 <= stats.opened_at <= time.time() + 1
    assert 29.0 < stats.time_until_half_open <= 30.0
    assert stats.last_failure_type == "Boom"
    assert stats.last_failure_at is not None
    assert stats.backend == br.backend.url
    assert not stats.degraded
    with pytest.raises(Exception, match="frozen"):
        stats.calls = 0
    br.force_open()
    assert math.isinf(br.stats().time_until_half_open)
    sync_clock.advance(1)
    assert br.refresh().state is CircuitState.FORCED_OPEN


def test_listeners_at_construction_preset_backend_and_repr(sync_backend: Backend) -> None:
    events: list[BreakerEvent] = []
    br = CircuitBreaker.preset(
        "critical", name=fresh_name(), backend=sync_backend, listeners=[events.append]
    )
    assert br.backend is sync_backend
    fail(br, 3)  # the preset's threshold
    assert [e.type for e in events][-1] is BreakerEventType.STATE_CHANGE
    assert (events[-1].old_state, events[-1].new_state) == (C, OP)
    assert repr(br) == f"CircuitBreaker({br.name!r}, state=open, backend={sync_backend.url})"
    br.close()


def test_repeated_operator_actions_are_no_state_change(make_sync: Make) -> None:
    br = make_sync(failure_threshold=1)
    changes: list[tuple[CircuitState | None, CircuitState | None]] = []
    br.add_listener(
        lambda e: changes.append((e.old_state, e.new_state)), BreakerEventType.STATE_CHANGE
    )
    br.reset()  # already closed
    br.force_open()
    br.force_open()
    br.reset()
    F = CircuitState.FORCED_OPEN
    assert changes == [(C, F), (F, C)]
