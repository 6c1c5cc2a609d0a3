"""The pure grant rules and the in-process gate driven directly (no event loop)."""

from __future__ import annotations

import pytest

from resilience import FakeClock, Priority
from resilience._queue._config import QueueConfig, parse_priority
from resilience._queue._local import DISPLACED, GRANTED, REFUSED, TIMED_OUT, WAITING, LocalGate
from resilience._queue._rules import ADMIT, REJECT, admit, effective_level, pick
from resilience._queue._stats import RING, Counters


class Nudge:
    """A waker that only counts wake-ups."""

    def __init__(self) -> None:
        self.count = 0

    def set(self) -> None:
        self.count += 1


def test_priority_parsing() -> None:
    assert parse_priority("critical") is Priority.CRITICAL
    assert parse_priority(Priority.BATCH) is Priority.BATCH
    assert parse_priority(2) is Priority.NORMAL
    for bad in ("urgent", 5, -1, True, 1.0, None):
        with pytest.raises(ValueError, match="unknown priority"):
            parse_priority(bad)  # type: ignore[arg-type]
    assert Priority.CRITICAL < Priority.BATCH  # lower value, served first


def test_thresholds_follow_the_shares() -> None:
    config = QueueConfig.build(name="q", max_concurrent=8, max_queue_size=200, request_timeout=30.0)
    assert config.thresholds() == (200, 180, 150, 100, 50)


def test_admit_rule() -> None:
    thresholds = (8, 8, 6, 4, 2)
    assert admit(4, [0, 0, 0, 0, 1], thresholds) == ADMIT
    assert admit(4, [0, 0, 0, 0, 2], thresholds) == REJECT  # nothing below BATCH
    assert admit(3, [0, 0, 0, 2, 2], thresholds) == 4  # displace the lowest level below
    assert admit(0, [2, 2, 2, 2, 0], thresholds) == 3
    assert admit(2, [4, 2, 0, 0, 0], thresholds) == REJECT  # nothing below NORMAL waits
    assert admit(0, [8, 0, 0, 0, 0], thresholds) == REJECT


def test_aging_and_pick() -> None:
    assert effective_level(3, 14.9, 5.0) == 1
    assert effective_level(3, 15.0, 5.0) == 0
    assert effective_level(4, 100.0, None) == 4
    heads: list[tuple[int, float] | None] = [(10, 100.0), None, None, (2, 84.0), None]
    assert pick(heads, 98.0, 5.0) == 0  # LOW waited 14 s: level 1
    assert pick(heads, 99.0, 5.0) == 3  # 15 s: level 0 and older than the CRITICAL
    assert pick([None] * 5, 0.0, 5.0) == -1


def test_local_gate_counts_displacement_and_timeouts() -> None:
    clock = FakeClock()
    counters = Counters()
    gate = LocalGate(1, (2, 2, 2, 1, 1), 5.0, clock, counters)
    assert gate.try_acquire(2)
    batch = gate.enqueue(4, 10.0, Nudge())
    assert batch.state == WAITING
    refused = gate.enqueue(4, 10.0, Nudge())
    assert refused.state == REFUSED
    nudge = Nudge()
    low = gate.enqueue(3, 10.0, nudge)  # depth 1 = LOW's threshold: displaces BATCH
    assert (batch.state, low.state) == (DISPLACED, WAITING)
    clock.advance(10)
    assert gate.expire() == 1
    assert (low.state, nudge.count) == (TIMED_OUT, 1)
    gate.release(0)
    assert (gate.active, gate.queued) == (0, 0)
    assert (counters.rejected, counters.displaced, counters.timed_out) == (2, 1, 1)


def test_abandon_after_grant_passes_the_slot_on() -> None:
    clock = FakeClock()
    gate = LocalGate(1, (9,) * 5, None, clock, Counters())
    assert gate.try_acquire(0)
    first, second = gate.enqueue(2, None, Nudge()), gate.enqueue(2, None, Nudge())
    gate.release(0)
    assert first.state == GRANTED
    assert gate.abandon(first, 3) == GRANTED  # cancelled after the grant...
    assert second.state == GRANTED  # ...the slot went on
    assert gate.abandon(second, TIMED_OUT) == GRANTED  # a late timeout keeps the slot
    gate.release(0)
    assert gate.active == 0


def test_wait_samples_are_bounded() -> None:
    counters = Counters()
    for i in range(RING * 3):
        counters.record_wait(1, float(i))
    stats = counters.wait_stats()["HIGH"]
    assert stats.count == RING * 3
    assert stats.samples == RING
    assert stats.max == RING * 3 - 1
    assert stats.p50 >= RING * 2
