"""Behaviour 12 (round trips) and 13 (backend down) on a private redis-server."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

import pytest
import redis

from resilience import (
    BreakerEvent,
    BreakerEventType,
    CircuitBreaker,
    CircuitOpenError,
    CircuitState,
    backend_from_url,
)
from tests.servers import RedisServer

from .conftest import Boom, fail, fresh_name, state, succeed

pytestmark = pytest.mark.redis


def wait_until(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.01)


def test_round_trips(redis_server: RedisServer) -> None:
    backend = backend_from_url(redis_server.url, test_clock=True)
    client: Any = redis.Redis.from_url(redis_server.url)

    def scripts() -> int:
        stats = client.info("commandstats")
        return sum(stats.get(f"cmdstat_{c}", {}).get("calls", 0) for c in ("evalsha", "eval"))

    br = CircuitBreaker(fresh_name(), backend=backend, failure_threshold=1, recovery_timeout=5.0)
    succeed(br)  # learns the state (acquire + record)
    before = scripts()
    succeed(br, 10)
    assert scripts() - before == 10  # one round trip per call while CLOSED
    br._engine.view.confirmed -= 2  # as if no news for two seconds (idle process)
    before = scripts()
    succeed(br)
    assert scripts() - before == 2  # an idle view is checked first: acquire + record
    before = scripts()
    succeed(br)
    assert scripts() - before == 1  # and trusted again
    fail(br)
    before = scripts()
    for _ in range(5):
        with pytest.raises(CircuitOpenError):
            br.call(lambda: None)
    assert scripts() - before == 5  # one per rejected call
    backend.advance_clock(6)  # type: ignore[attr-defined]
    before = scripts()
    succeed(br)
    assert scripts() - before == 2  # the probe: acquire + record
    br.close()
    client.close()
    backend.close()


def _down_backend(server: RedisServer) -> Any:
    return backend_from_url(server.url, timeout=0.3, probe_interval=0.2)


def test_local_policy_keeps_protecting(
    redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    backend = _down_backend(redis_server)
    br = CircuitBreaker(fresh_name(), backend=backend, failure_threshold=3)
    events: list[BreakerEvent] = []
    br.add_listener(events.append)
    succeed(br)
    fail(br)
    redis_server.kill()
    with caplog.at_level(logging.WARNING, logger="resilience"):
        succeed(br)  # the backend fails: the local state takes over
        assert br.stats().degraded
        # It goes on from the shared state (one failure in a row); the success that found the
        # outage was admitted under the shared generation, so it is stale locally.
        fail(br, 2)  # local failures trip the local state
        assert state(br) is CircuitState.OPEN
        with pytest.raises(CircuitOpenError):
            br.call(lambda: None)
    kinds = [e.type for e in events]
    assert BreakerEventType.DEGRADED in kinds
    degraded = next(e for e in events if e.type is BreakerEventType.DEGRADED)
    assert degraded.error is not None
    assert "policy local applies" in caplog.text
    redis_server.start()

    def recovered() -> bool:
        with contextlib.suppress(CircuitOpenError):
            br.call(lambda: None)
        return not br.stats().degraded

    wait_until(recovered)
    assert BreakerEventType.RECOVERED in [e.type for e in events]
    assert state(br) is CircuitState.CLOSED  # the server's state (a fresh one after the crash)
    succeed(br)
    br.close()
    backend.close()


def test_local_policy_goes_on_from_the_shared_state(redis_server: RedisServer) -> None:
    backend = _down_backend(redis_server)
    br = CircuitBreaker(fresh_name(), backend=backend, failure_threshold=2, recovery_timeout=30.0)
    fail(br, 2)
    assert state(br) is CircuitState.OPEN
    redis_server.kill()
    with pytest.raises(CircuitOpenError) as info:
        br.call(lambda: None)  # the shared breaker was open: the local one is too
    assert br.stats().degraded
    assert 25.0 < info.value.retry_after <= 30.0
    br.close()
    backend.close()


def test_fail_closed_and_fail_open(redis_server: RedisServer) -> None:
    backend = _down_backend(redis_server)
    closed = CircuitBreaker(fresh_name(), backend=backend, failure_policy="fail_closed")
    opened = CircuitBreaker(fresh_name(), backend=backend, failure_policy="fail_open")
    succeed(closed)
    succeed(opened)
    events: list[BreakerEvent] = []
    opened.add_listener(events.append, BreakerEventType.DEGRADED)
    redis_server.kill()
    ran: list[str] = []
    closed.call(ran.append, "first")  # nothing told us yet: its record finds the server down
    assert closed.stats().degraded
    # The other breaker on this backend is told at once, before any call of its own.
    assert opened.stats().degraded
    assert [e.type for e in events] == [BreakerEventType.DEGRADED]
    with pytest.raises(CircuitOpenError, match="fail_closed"):
        closed.call(ran.append, "closed")  # the closed view is not trusted any more: refused
    for _ in range(3):
        opened.call(ran.append, "open")  # admitted without state
        with pytest.raises(Boom):
            opened.call(_boom)
    assert ran == ["first"] + ["open"] * 3
    redis_server.start()
    wait_until(lambda: _passes(closed))
    assert not closed.stats().degraded
    closed.close()
    opened.close()
    backend.close()


def _boom() -> None:
    raise Boom("x")


def _passes(br: CircuitBreaker) -> bool:
    try:
        br.call(lambda: None)
    except CircuitOpenError:
        return False
    return True
