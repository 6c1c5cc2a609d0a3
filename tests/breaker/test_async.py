"""Behaviour 4 (half-open permits), 5 (cancellation), 7 (no lock held), 8 (front doors)."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable

import anyio
import pytest

from resilience import (
    Backend,
    BreakerEventType,
    CircuitBreaker,
    CircuitHalfOpenError,
    CircuitOpenError,
    CircuitState,
)
from tests.conftest import TestClock, make_backend

from .conftest import Boom, Make, aboom, aok, state

pytestmark = pytest.mark.anyio


async def trip(br: CircuitBreaker, times: int = 1) -> None:
    for _ in range(times):
        with pytest.raises(Boom):
            await br.acall(aboom)


async def wait_for(predicate: Callable[[], bool]) -> None:
    """Poll ``predicate`` (other tasks or threads make it true), failing after 5 s."""
    with anyio.fail_after(5.0):
        while not predicate():  # noqa: ASYNC110 - the condition is set by worker threads too
            await anyio.sleep(0.005)


async def test_half_open_admits_exactly_n_of_50(make: Make, clock: TestClock) -> None:
    br = make(
        failure_threshold=1, recovery_timeout=10.0, half_open_max_calls=3, success_threshold=3
    )
    await trip(br)
    clock.advance(11)
    entered, refused = 0, 0
    errors: list[CircuitHalfOpenError] = []
    release = anyio.Event()

    @br
    async def probe() -> str:
        nonlocal entered
        entered += 1
        await release.wait()
        return "ok"

    async def caller() -> None:
        nonlocal refused
        try:
            await probe()
        except CircuitHalfOpenError as error:
            errors.append(error)
            refused += 1

    async with anyio.create_task_group() as tg:
        for _ in range(50):
            tg.start_soon(caller)
        await wait_for(lambda: entered + refused == 50 or entered > 3)
        assert (entered, refused) == (3, 47)
        assert {(e.name, e.retry_after) for e in errors} == {(br.name, 0.0)}
        assert state(br) is CircuitState.HALF_OPEN
        release.set()
    assert state(br) is CircuitState.CLOSED  # three successful probes


async def test_cancelled_probe_gives_its_permit_back(make: Make, clock: TestClock) -> None:
    br = make(failure_threshold=1, recovery_timeout=10.0, half_open_max_calls=1)
    await trip(br)
    clock.advance(11)
    started = anyio.Event()

    @br
    async def hang() -> None:
        started.set()
        await anyio.sleep_forever()

    async with anyio.create_task_group() as tg:
        tg.start_soon(hang)
        await started.wait()
        with pytest.raises(CircuitHalfOpenError):
            await br.acall(aok)
        tg.cancel_scope.cancel()
    assert state(br) is CircuitState.HALF_OPEN
    assert await br.acall(aok) == "ok"  # the permit came back at once, no lease wait
    assert state(br) is CircuitState.CLOSED


async def test_cancellation_is_neutral_by_default(make: Make) -> None:
    neutral = make(failure_threshold=2)
    counted = make(failure_threshold=2, cancellation_is_failure=True)
    for br in (neutral, counted):

        @br
        async def hang() -> None:
            await anyio.sleep_forever()

        await trip(br)
        with anyio.move_on_after(0.01):
            await hang()
    stats = neutral.stats()
    # Neither a failure nor a success (a success would reset the consecutive count).
    assert (stats.state, stats.calls, stats.consecutive_failures) == (CircuitState.CLOSED, 1, 1)
    await trip(neutral)
    assert state(neutral) is CircuitState.OPEN
    assert state(counted) is CircuitState.OPEN


async def test_asyncio_timeout_gives_the_probe_permit_back(
    make: Make, clock: TestClock, anyio_backend: str
) -> None:
    if anyio_backend != "asyncio":
        pytest.skip("asyncio.wait_for cancels natively, outside anyio's cancel scopes")
    br = make(failure_threshold=1, recovery_timeout=10.0, half_open_max_calls=1)
    await trip(br)
    clock.advance(11)

    @br
    async def hang() -> None:
        await asyncio.sleep(10)

    with pytest.raises(TimeoutError):
        await asyncio.wait_for(hang(), 0.05)
    stats = await br.arefresh()
    assert (stats.state, stats.half_open_in_flight, stats.failures) == (
        CircuitState.HALF_OPEN,
        0,
        1,
    )
    assert await br.acall(aok) == "ok"
    assert state(br) is CircuitState.CLOSED


async def test_async_operators(
    make: Make,
    clock: TestClock,
    backend: Backend,
    backend_kind: str,
    request: pytest.FixtureRequest,
) -> None:
    br = make(failure_threshold=2, recovery_timeout=1.0)
    changes: list[tuple[CircuitState | None, CircuitState | None]] = []
    br.add_listener(
        lambda e: changes.append((e.old_state, e.new_state)), BreakerEventType.STATE_CHANGE
    )
    await br.acall(aok)
    await br.aforce_open()
    assert state(br) is CircuitState.FORCED_OPEN
    clock.advance(1000)  # forced open never times out
    with pytest.raises(CircuitOpenError) as info:
        await br.acall(aok)
    assert math.isinf(info.value.retry_after)
    if backend_kind != "memory":  # fleet-wide: another process reads the same state
        other_backend = make_backend(backend_kind, request, prefix=backend.prefix)
        other = CircuitBreaker(br.name, backend=other_backend)
        try:
            assert (await other.arefresh()).state is CircuitState.FORCED_OPEN
        finally:
            other.close()
            await other_backend.aclose()
    await br.areset()
    stats = await br.arefresh()
    assert (stats.state, stats.calls, stats.rejected) == (CircuitState.CLOSED, 0, 0)
    await br.adisable()
    assert state(br) is CircuitState.DISABLED
    await trip(br, 5)  # counted, never trips
    stats = await br.arefresh()
    assert (stats.state, stats.failures) == (CircuitState.DISABLED, 5)
    await br.areset()
    await trip(br, 2)
    assert state(br) is CircuitState.OPEN
    await br.areset()  # closes an open breaker too
    assert await br.acall(aok) == "ok"
    C, OP, F, D = (
        CircuitState.CLOSED,
        CircuitState.OPEN,
        CircuitState.FORCED_OPEN,
        CircuitState.DISABLED,
    )
    assert changes == [(C, F), (F, C), (C, D), (D, C), (C, OP), (OP, C)]


async def test_no_lock_held_during_calls(make: Make) -> None:
    br = make(failure_threshold=1)

    @br
    async def work() -> str:
        await anyio.sleep(0.1)
        return "done"

    await work()  # warm up connections
    start = time.perf_counter()
    results: list[str] = []

    async def one() -> None:
        results.append(await work())

    async with anyio.create_task_group() as tg:
        for _ in range(20):
            tg.start_soon(one)
    elapsed = time.perf_counter() - start
    assert results == ["done"] * 20
    assert elapsed < 1.0, f"20 concurrent 100 ms calls took {elapsed:.2f}s"
    assert br.stats().successes == 21


async def test_async_context_manager_and_rejection(make: Make, clock: TestClock) -> None:
    br = make(failure_threshold=1, recovery_timeout=10.0)
    async with br:
        pass
    with pytest.raises(Boom):
        async with br:
            raise Boom("x")
    with pytest.raises(CircuitOpenError) as info:
        async with br:
            pytest.fail("an open breaker must not run the block")
    assert info.value.name == br.name
    assert 9.0 < info.value.retry_after <= 10.0
    clock.advance(11)
    async with br.guard():
        pass
    assert state(br) is CircuitState.CLOSED


async def test_async_fallbacks(make: Make) -> None:
    value = make(failure_threshold=1, fallback="cached")
    computed = make(failure_threshold=1, fallback=lambda user: f"cached {user}")

    async def slow_fallback(user: int) -> str:
        return f"async cached {user}"

    awaited = make(failure_threshold=1, fallback=slow_fallback)
    for br in (value, computed, awaited):
        await trip(br)

    @value
    async def a(user: int) -> str:
        return "fresh"

    @computed
    async def b(user: int) -> str:
        return "fresh"

    @awaited
    async def c(user: int) -> str:
        return "fresh"

    assert await a(1) == "cached"
    assert await b(2) == "cached 2"
    assert await c(3) == "async cached 3"
    assert value.stats().rejected == 1


async def test_decorating_an_object_with_async_call(make: Make) -> None:
    br = make(failure_threshold=1)

    class Client:
        async def __call__(self) -> None:
            await anyio.sleep(0.001)
            raise Boom("down")

    protected = br(Client())
    with pytest.raises(Boom):
        await protected()
    assert state(br) is CircuitState.OPEN  # the failure was awaited, not a coroutine's creation
