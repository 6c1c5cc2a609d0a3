"""Behaviour 4 on asyncio's own cancellation (``wait_for``), which goes through anyio's shield.

A cancellation landing in an admission or a probe's record round trip must neither leak the
probe permit (a wedge for ``probe_lease`` seconds) nor lose the probe's outcome.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from resilience import Backend, BreakerEventType, CircuitBreaker, CircuitState
from tests.conftest import REDIS_BACKENDS, TestClock

from .conftest import Boom, Make, aboom, aok

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(params=REDIS_BACKENDS)
def backend_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def slow_step(
    monkeypatch: pytest.MonkeyPatch, backend: Backend, step: str, *, before: bool
) -> None:
    """Delay one step's round trip by 100 ms, before the script runs or after it ran."""
    real = backend.run

    async def run(script: Any, keys: Any, args: Any) -> Any:
        if args[0] == step and before:
            await asyncio.sleep(0.1)
        reply = await real(script, keys, args)
        if args[0] == step and not before:
            await asyncio.sleep(0.1)
        return reply

    monkeypatch.setattr(backend, "run", run)


async def half_open(make: Make, clock: TestClock, **options: Any) -> CircuitBreaker:
    br = make(failure_threshold=1, recovery_timeout=10.0, half_open_max_calls=1, **options)
    with pytest.raises(Boom):
        await br.acall(aboom)
    clock.advance(11)
    return br


async def test_cancelled_admission_gives_the_granted_permit_back(
    make: Make, clock: TestClock, backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    br = await half_open(make, clock)
    slow_step(monkeypatch, backend, "acquire", before=False)  # the script grants the permit
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(br.acall(aok), 0.03)  # ...and the caller is cancelled meanwhile
    monkeypatch.undo()
    stats = await br.arefresh()
    assert (stats.state, stats.half_open_in_flight) == (CircuitState.HALF_OPEN, 0)
    assert await br.acall(aok) == "ok"  # no lease wait
    assert (await br.arefresh()).state is CircuitState.CLOSED


async def test_cancelled_probe_record_still_lands(
    make: Make, clock: TestClock, backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    br = await half_open(make, clock)
    changes: list[tuple[CircuitState | None, CircuitState | None]] = []
    br.add_listener(
        lambda e: changes.append((e.old_state, e.new_state)), BreakerEventType.STATE_CHANGE
    )
    slow_step(monkeypatch, backend, "record", before=True)  # cancelled before the script runs
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(br.acall(aok), 0.03)
    monkeypatch.undo()
    # Delivered before the cancellation went on (the record's reply closed the breaker).
    assert changes[-1] == (CircuitState.HALF_OPEN, CircuitState.CLOSED)
    stats = await br.arefresh()
    assert (stats.state, stats.successes) == (CircuitState.CLOSED, 1)  # the probe's success


async def test_cancelled_probe_record_still_delivers_its_event(
    make: Make, clock: TestClock, backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    br = await half_open(make, clock, success_threshold=2)  # one success changes no state
    kinds: list[BreakerEventType] = []
    br.add_listener(lambda e: kinds.append(e.type))
    slow_step(monkeypatch, backend, "record", before=True)
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(br.acall(aok), 0.03)
    monkeypatch.undo()
    # The probe's SUCCESS is delivered before the cancellation goes on.
    assert kinds == [BreakerEventType.STATE_CHANGE, BreakerEventType.SUCCESS]
