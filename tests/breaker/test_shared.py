"""Behaviour 12: one state shared through Redis (and Cluster) by several processes."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from resilience import Backend, BreakerEventType, CircuitBreaker, CircuitOpenError, CircuitState
from resilience._backends._redis import RedisBackend
from resilience._breaker._remote import UNKNOWN, View
from tests.conftest import REDIS_BACKENDS, make_backend

from .conftest import fail, fresh_name, state, succeed

pytestmark = pytest.mark.parametrize("kind", REDIS_BACKENDS)


@pytest.fixture
def pair(kind: str, request: pytest.FixtureRequest) -> Iterator[tuple[Backend, Backend]]:
    """Two backends on one key prefix: two processes, as far as the state can tell."""
    first = make_backend(kind, request)
    second = make_backend(kind, request, prefix=first.prefix)
    yield first, second
    client: Any = first.client  # type: ignore[attr-defined]
    for key in client.scan_iter(match=f"{first.prefix}:*"):
        client.delete(key)
    first.close()
    second.close()


def wait_until(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.005)


def test_failures_add_up_and_transitions_propagate(pair: tuple[Backend, Backend]) -> None:
    name = fresh_name()
    a = CircuitBreaker(name, backend=pair[0], failure_threshold=4)
    b = CircuitBreaker(name, backend=pair[1], failure_threshold=4)
    fail(a, 2)
    fail(b, 2)  # the fourth failure, from the other process
    assert state(b) is CircuitState.OPEN
    wait_until(lambda: state(a) is CircuitState.OPEN)  # learned by pub/sub, no call made
    with pytest.raises(CircuitOpenError):
        a.call(lambda: None)
    b.reset()
    wait_until(lambda: state(a) is CircuitState.CLOSED)
    succeed(a)
    assert a.stats().calls == 1
    a.close()
    b.close()


def test_callers_config_is_authoritative(pair: tuple[Backend, Backend]) -> None:
    name = fresh_name()
    lenient = CircuitBreaker(name, backend=pair[0], failure_threshold=10)
    strict = CircuitBreaker(name, backend=pair[1], failure_threshold=2)
    fail(lenient)
    assert state(lenient) is CircuitState.CLOSED
    fail(strict)  # two in a row under the strict caller's rule
    assert state(strict) is CircuitState.OPEN
    strict.reset()
    wait_until(lambda: state(lenient) is CircuitState.CLOSED)
    fail(lenient, 5)
    assert state(lenient) is CircuitState.CLOSED
    lenient.close()
    strict.close()


def test_transitions_are_published(pair: tuple[Backend, Backend]) -> None:
    backend = pair[0]
    assert isinstance(backend, RedisBackend)
    name = fresh_name()
    messages: list[bytes] = []
    got = threading.Event()

    def collect(message: bytes | None) -> None:
        if message is not None:
            messages.append(message)
            got.set()

    subscription = backend.subscribe(backend.channel("breaker", name), collect)
    br = CircuitBreaker(name, backend=pair[1], failure_threshold=1, recovery_timeout=5.0)
    fail(br)
    pair[1].advance_clock(6)  # type: ignore[attr-defined]
    succeed(br)
    wait_until(lambda: len(messages) == 3)
    states = [int(m.split(b":")[1]) for m in messages]
    assert states == [1, 2, 0]  # OPEN, HALF_OPEN, CLOSED
    gens = [int(m.split(b":")[0]) for m in messages]
    assert gens == sorted(gens)
    assert len(set(gens)) == 3
    subscription.close()
    br.close()


def test_keys_expire_when_idle(pair: tuple[Backend, Backend]) -> None:
    backend = pair[0]
    br = CircuitBreaker(fresh_name(), backend=backend, failure_threshold=1, idle_ttl=60.0)
    succeed(br)
    key = backend.key("breaker", br.name, "state")
    client: Any = backend.client  # type: ignore[attr-defined]
    assert 0 < client.pttl(key) <= 60_000
    fail(br)  # open: kept at least for the open time plus the idle time
    assert 60_000 < client.pttl(key) <= 90_000
    gen = br.stats().generation
    client.delete(key)  # as if it expired
    backend.advance_clock(31)  # type: ignore[attr-defined]
    succeed(br)  # a fresh state, with a generation that never goes back
    assert state(br) is CircuitState.CLOSED
    assert br.stats().generation > gen
    br.close()


def test_transitions_from_other_processes_reach_listeners_once(
    pair: tuple[Backend, Backend],
) -> None:
    name = fresh_name()
    a = CircuitBreaker(name, backend=pair[0], failure_threshold=1)
    b = CircuitBreaker(name, backend=pair[1], failure_threshold=1)
    changes: list[tuple[CircuitState | None, CircuitState | None]] = []
    a.add_listener(
        lambda e: changes.append((e.old_state, e.new_state)), BreakerEventType.STATE_CHANGE
    )
    messages: list[bytes | None] = []
    # Subscribed after ``a``: called after ``a`` for each message on the same listener thread.
    subscription = pair[0].subscribe(pair[0].channel("breaker", name), messages.append)
    succeed(a)
    changes.clear()
    fail(b)  # b trips it: a learns it on the pub/sub thread, no call made
    b.reset()
    wait_until(lambda: len(messages) == 2)
    fail(a)  # a trips it itself: the reply and the message both tell a, one event
    wait_until(lambda: len(messages) == 3)
    C, OP = CircuitState.CLOSED, CircuitState.OPEN
    assert changes == [(C, OP), (OP, C), (C, OP)]
    subscription.close()
    a.close()
    b.close()


def test_lock_free_reader_never_pairs_a_new_generation_with_an_old_state(
    pair: tuple[Backend, Backend],
) -> None:
    """The front door reads ``view.gen`` then ``view.st`` without a lock (see ``_remote``)."""
    br = CircuitBreaker(fresh_name(), backend=pair[0], failure_threshold=1, recovery_timeout=5.0)
    succeed(br)
    engine: Any = br._engine
    seen: list[tuple[int, int]] = []

    class Spy(View):
        def __setattr__(self, attr: str, value: Any) -> None:
            super().__setattr__(attr, value)
            if attr in ("gen", "st"):
                seen.append((getattr(self, "gen", -1), getattr(self, "st", UNKNOWN)))

    spy = Spy()
    for attr in View.__slots__:
        setattr(spy, attr, getattr(engine.remote, attr))
    closed_gen = spy.gen
    engine.remote = engine.view = spy
    seen.clear()
    fail(br)  # the reply moves the view to OPEN
    pair[0].advance_clock(6)  # type: ignore[attr-defined]
    succeed(br)  # OPEN -> HALF_OPEN (acquire reply) -> CLOSED (record reply)
    assert state(br) is CircuitState.CLOSED
    states: dict[int, set[int]] = {}
    for gen, st in seen:
        if st != UNKNOWN:
            states.setdefault(gen, set()).add(st)
    assert sorted(states) == [closed_gen + 1, closed_gen + 2, closed_gen + 3]
    # One state per generation: a reader never saw a new generation with the previous state.
    assert states == {closed_gen + 1: {1}, closed_gen + 2: {2}, closed_gen + 3: {0}}
    br.close()


def test_a_missed_transition_is_reported_before_the_next(pair: tuple[Backend, Backend]) -> None:
    name = fresh_name()
    a = CircuitBreaker(name, backend=pair[0], failure_threshold=1, recovery_timeout=5.0)
    b = CircuitBreaker(name, backend=pair[1], failure_threshold=1, recovery_timeout=5.0)
    changes: list[tuple[CircuitState | None, CircuitState | None]] = []
    a.add_listener(
        lambda e: changes.append((e.old_state, e.new_state)), BreakerEventType.STATE_CHANGE
    )
    succeed(a)
    engine: Any = a._engine
    engine._subscription.close()  # a misses what is published from now on
    fail(b)  # CLOSED -> OPEN, made by b
    pair[0].advance_clock(6)  # type: ignore[attr-defined]
    engine.view.confirmed -= 2  # a's closed view is no longer trusted: it asks first
    succeed(a)  # a's acquire turns it HALF_OPEN (two generations on), its record closes it
    C, OP, H = CircuitState.CLOSED, CircuitState.OPEN, CircuitState.HALF_OPEN
    assert changes == [(C, OP), (OP, H), (H, C)]
    a.close()
    b.close()
