"""Behaviour 4 and 5 at the edges: BaseExceptions, generators, fallbacks that raise."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Generator, Iterator

import anyio
import pytest

from resilience import CircuitBreaker, CircuitHalfOpenError, CircuitState
from tests.conftest import TestClock

from .conftest import Make, fail, state, succeed


def raiser(kind: type[BaseException]) -> Callable[..., None]:
    def raise_(*args: object, **kwargs: object) -> None:
        raise kind("x")

    return raise_


@pytest.mark.parametrize("kind", [KeyboardInterrupt, SystemExit])
def test_base_exceptions_are_neutral(make_sync: Make, kind: type[BaseException]) -> None:
    br = make_sync(failure_threshold=2)
    fail(br)
    with pytest.raises(kind):
        br.call(raiser(kind))
    stats = br.stats()
    # Neither a success (it would reset the consecutive count) nor a failure.
    assert (stats.calls, stats.failures, stats.consecutive_failures) == (1, 1, 1)
    fail(br)
    assert state(br) is CircuitState.OPEN


def test_base_exceptions_count_when_record_on_says_so(make_sync: Make) -> None:
    br = make_sync(failure_threshold=1, record_on=(BaseException,))
    with pytest.raises(SystemExit):
        br.call(raiser(SystemExit))
    assert state(br) is CircuitState.OPEN


def test_interrupted_probe_gives_its_permit_back(make_sync: Make, sync_clock: TestClock) -> None:
    br = make_sync(failure_threshold=1, recovery_timeout=10.0, half_open_max_calls=1)
    fail(br)
    sync_clock.advance(11)
    with pytest.raises(KeyboardInterrupt):
        br.call(raiser(KeyboardInterrupt))  # the probe is interrupted
    assert state(br) is CircuitState.HALF_OPEN
    assert br.refresh().half_open_in_flight == 0
    succeed(br)  # the permit came back at once, no lease wait
    assert state(br) is CircuitState.CLOSED


def test_generator_closed_inside_the_block_is_neutral(
    make_sync: Make, sync_clock: TestClock
) -> None:
    br = make_sync(failure_threshold=1, recovery_timeout=10.0, half_open_max_calls=1)
    fail(br)
    sync_clock.advance(11)

    def rows() -> Generator[int, None, None]:
        with br:
            yield 1
            yield 2

    reader = rows()
    assert next(reader) == 1  # holds the probe permit
    with pytest.raises(CircuitHalfOpenError):
        br.call(lambda: None)
    reader.close()  # GeneratorExit through the block: neutral, the permit comes back
    assert state(br) is CircuitState.HALF_OPEN
    assert br.stats().failures == 1
    succeed(br)
    assert state(br) is CircuitState.CLOSED


def test_generator_functions_are_refused_as_decorated_functions() -> None:
    br = CircuitBreaker("generator-refused")

    def rows() -> Iterator[int]:
        yield 1

    async def arows() -> AsyncIterator[int]:
        yield 1

    with pytest.raises(TypeError, match="generator function"):
        br(rows)
    with pytest.raises(TypeError, match="generator function"):
        br(arows)
    br.close()


def test_fallback_that_raises_changes_nothing(make_sync: Make, sync_clock: TestClock) -> None:
    br = make_sync(failure_threshold=1, recovery_timeout=10.0, fallback=raiser(LookupError))
    fail(br)
    with pytest.raises(LookupError):
        br.call(lambda: "fresh")  # refused: the fallback runs, and its error propagates
    stats = br.refresh()
    assert (stats.state, stats.failures, stats.rejected) == (CircuitState.OPEN, 1, 1)
    sync_clock.advance(11)
    assert br.call(lambda: "fresh") == "fresh"  # nothing taken by the raising fallback
    assert state(br) is CircuitState.CLOSED


def test_ignored_probe_returns_its_permit_and_does_not_close(
    make_sync: Make, sync_clock: TestClock
) -> None:
    br = make_sync(
        failure_threshold=1, recovery_timeout=10.0, half_open_max_calls=1, ignore_on=(KeyError,)
    )
    fail(br)
    sync_clock.advance(11)
    with pytest.raises(KeyError):
        br.call(raiser(KeyError))  # the probe's outcome is ignored
    stats = br.refresh()
    assert (stats.state, stats.half_open_in_flight, stats.ignored) == (CircuitState.HALF_OPEN, 0, 1)
    succeed(br)  # the next probe gets the permit at once and closes it
    assert state(br) is CircuitState.CLOSED


@pytest.mark.anyio
async def test_refusals_of_our_own_gates_are_ignored(anyio_backend: str) -> None:
    """A breaker stacked over a full priority queue does not open because the queue is full."""
    from resilience import CircuitBreaker, MemoryBackend, PriorityQueue, QueueFull

    backend = MemoryBackend()
    breaker = CircuitBreaker("stacked", failure_threshold=2, backend=backend)
    queue = PriorityQueue("stacked", max_concurrent=1, max_queue_size=1, backend=backend)
    release = anyio.Event()
    outcomes: list[str] = []

    @breaker
    @queue.limit(priority="NORMAL")
    async def query() -> str:
        await release.wait()
        return "rows"

    async def caller() -> None:
        try:
            outcomes.append(await query())
        except QueueFull:
            outcomes.append("full")

    async with anyio.create_task_group() as group:
        for _ in range(10):
            group.start_soon(caller)
        with anyio.fail_after(5):
            while outcomes.count("full") < 8:  # noqa: ASYNC110 - no event to wait on
                await anyio.sleep(0.001)
        release.set()
    assert sorted(outcomes) == ["full"] * 8 + ["rows"] * 2
    stats = breaker.stats()
    assert stats.state.value == "closed"
    assert (stats.failures, stats.ignored, stats.successes) == (0, 8, 2)
    queue.close()
