"""The Lua gate and the in-process gate make the same decisions (one set of rules).

A fixed pseudo-random sequence of acquires (all priorities, with and without timeouts),
releases, cancellations and clock moves is applied to a :class:`LocalGate` on a fake clock and
to ``queue_gate.lua`` on Redis and Cluster with the test clock; after every step the holders
and the ordered waiters of each level must be identical. This covers grant order, FIFO,
aging, admission thresholds, displacement and expiry.
"""

from __future__ import annotations

import random
from typing import Any

import pytest

from resilience import Backend, FakeClock, PriorityQueue
from resilience._queue._local import CANCELLED, GRANTED, REFUSED, WAITING, LocalGate, Waiter
from resilience._queue._stats import Counters
from tests.conftest import REDIS_BACKENDS, TestClock


class Nudge:
    def set(self) -> None:
        pass


@pytest.fixture(params=REDIS_BACKENDS)
def backend_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def test_lua_gate_mirrors_the_local_gate(sync_backend: Backend, sync_clock: TestClock) -> None:
    queue = PriorityQueue(
        "parity",
        max_concurrent=2,
        max_queue_size=6,
        aging_interval=5.0,
        lease_ttl=1e6,
        backend=sync_backend,
    )
    remote = queue._remote
    assert remote is not None
    client: Any = sync_backend.client  # type: ignore[attr-defined]
    fake = FakeClock(1000.0)
    gate = LocalGate(2, queue.config.thresholds(), 5.0, fake, Counters())
    rng = random.Random(5)
    local: dict[str, Waiter] = {}
    released: set[str] = set()
    try:
        for step in range(250):
            roll = rng.random()
            ticket = f"t{step}"
            if roll < 0.5:
                level = rng.randrange(5)
                timeout = rng.choice([None, 6.0, 12.0])
                reply = remote._run_sync("acquire", ticket, level, timeout or 0.0)
                if gate.try_acquire(level):
                    state = GRANTED
                    local[ticket] = Waiter(level, 0, 0.0, None, Nudge())
                    local[ticket].state = GRANTED
                else:
                    local[ticket] = gate.enqueue(level, timeout, Nudge())
                    state = local[ticket].state
                expected = {GRANTED: 1, WAITING: 0, REFUSED: -1}[state]
                assert reply.status == expected, (step, "acquire", level)
            elif roll < 0.75:
                held = sorted(
                    t for t, w in local.items() if w.state == GRANTED and t not in released
                )
                if held:
                    victim = rng.choice(held)
                    released.add(victim)
                    assert remote._run_sync("release", victim).status == 1
                    gate.release(0)
            elif roll < 0.85:
                waiting = sorted(t for t, w in local.items() if w.state == WAITING)
                if waiting:
                    victim = rng.choice(waiting)
                    assert remote._run_sync("abandon", victim).status == 0
                    assert gate.abandon(local[victim], CANCELLED) == CANCELLED
            else:
                seconds = float(rng.randrange(1, 5))
                sync_clock.advance(seconds)
                fake.advance(seconds)
                remote._run_sync("pump")
                gate.expire()
            _compare(step, client, remote._keys, gate, local, released)
        counters = gate.counters  # the sequence exercised every rule
        assert counters.displaced > 0
        assert counters.timed_out > 0
        assert counters.rejected > counters.displaced
        assert counters.granted > 50
    finally:
        queue.close()


def _compare(
    step: int,
    client: Any,
    keys: list[str],
    gate: LocalGate,
    local: dict[str, Waiter],
    released: set[str],
) -> None:
    holders = {t.decode() for t in client.zrange(keys[0], 0, -1)}
    assert holders == {t for t, w in local.items() if w.state == GRANTED and t not in released}, (
        step
    )
    ticket_of = {id(w): t for t, w in local.items()}
    for level in range(5):
        remote_waiting = [t.decode() for t in client.zrange(keys[5 + level], 0, -1)]
        local_waiting = [ticket_of[id(w)] for w in gate._levels[level] if w.state == WAITING]
        assert remote_waiting == local_waiting, (step, level)
