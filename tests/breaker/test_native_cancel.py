"""Behaviour 4 on asyncio's own cancellation (``task.cancel()``, ``wait_for``), which anyio's
shield does not stop.

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
) -> asyncio.Event:
    """Hold one step's round trip for 100 ms, before its script runs or after it ran.

    The returned event is set when the hold begins: the moment to cancel the caller.
    """
    real = backend.run
    holding = asyncio.Event()

    async def hold() -> None:
        holding.set()
        await asyncio.sleep(0.1)

    async def run(script: Any, keys: Any, args: Any) -> Any:
        if args[0] == step and before:
            await hold()
        reply = await real(script, keys, args)
        if args[0] == step and not before:
            await hold()
        return reply

    monkeypatch.setattr(backend, "run", run)
    return holding


async def cancel_when(holding: asyncio.Event, call: Any) -> None:
    """Run ``call`` in a task and cancel it natively (``task.cancel()``) once ``holding``."""
    task = asyncio.ensure_future(call)
    await holding.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


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
    holding = slow_step(monkeypatch, backend, "acquire", before=False)
    # The script granted the permit, and the caller is cancelled before the reply is in.
    await cancel_when(holding, br.acall(aok))
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
    holding = slow_step(monkeypatch, backend, "record", before=True)
    await cancel_when(holding, br.acall(aok))  # cancelled before the record's script runs
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
    holding = slow_step(monkeypatch, backend, "record", before=True)
    await cancel_when(holding, br.acall(aok))
    monkeypatch.undo()
    # The probe's SUCCESS is delivered before the cancellation goes on.
    assert kinds == [BreakerEventType.STATE_CHANGE, BreakerEventType.SUCCESS]
