"""The demo behind ``python -m resilience``: the three primitives guarding a flaky "database".

It runs in about a second on any backend (memory by default) and prints what happens: a rate
limiter refusing a burst with exact retry-after, a priority queue serving CRITICAL before BATCH
through two slots, and a circuit breaker opening on failures, failing fast, probing and closing.
Instance names carry the process id, so runs against a shared Redis never see each other.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable

import anyio

from ._backends._base import Backend
from ._breaker import BreakerEvent, BreakerEventType, CircuitBreaker
from ._exceptions import CircuitOpenError
from ._queue import Priority, PriorityQueue
from ._ratelimit import RateLimiter

__all__ = ["run_demo"]


class FlakyDatabase:
    """Answers queries, except while ``down``; counts the calls that reached it."""

    def __init__(self) -> None:
        self.down = False
        self.calls = 0

    async def query(self, sql: str) -> str:
        self.calls += 1
        await anyio.sleep(0.01)
        if self.down:
            raise ConnectionError("database is down")
        return f"rows for {sql!r}"


async def _rate_limit(backend: Backend, tag: str, say: Callable[[str], None]) -> None:
    say("1. Rate limiter: 5 per second per user, a burst of 8 requests from user:42")
    api = RateLimiter("5/second", name=f"demo-api-{tag}", backend=backend)
    outcomes = []
    for _ in range(8):
        result = await api.hit("user:42")
        outcomes.append("ok" if result.allowed else f"429 (retry in {result.retry_after:.2f}s)")
    say("   " + ", ".join(outcomes))
    policy = api.stats().policies[0]
    say(f"   stats: allowed={policy.allowed} rejected={policy.rejected}")


def _queued(queue: PriorityQueue, count: int) -> bool:
    return queue.stats().queued_total == count


async def _priority_queue(backend: Backend, tag: str, say: Callable[[str], None]) -> None:
    say("2. Priority queue: 2 slots, 6 waiting requests of mixed priority")
    queue = PriorityQueue(f"demo-db-{tag}", max_concurrent=2, max_queue_size=20, backend=backend)
    order: list[str] = []
    release = anyio.Event()

    async def hold() -> None:
        async with queue.slot(priority=Priority.NORMAL):
            await release.wait()

    async def request(label: str, priority: Priority) -> None:
        async with queue.slot(priority=priority):
            order.append(label)

    async def until(condition: Callable[[], bool]) -> None:
        # stats() is a snapshot with no change notification: poll it, bounded
        with anyio.fail_after(10):
            while not condition():  # noqa: ASYNC110
                await anyio.sleep(0.005)

    async with anyio.create_task_group() as group:
        group.start_soon(hold)
        group.start_soon(hold)
        await until(lambda: queue.stats().active == 2)
        for count, (label, priority) in enumerate(
            [
                ("batch-1", Priority.BATCH),
                ("low-1", Priority.LOW),
                ("critical-1", Priority.CRITICAL),
                ("normal-1", Priority.NORMAL),
                ("critical-2", Priority.CRITICAL),
                ("high-1", Priority.HIGH),
            ],
            start=1,
        ):
            group.start_soon(request, label, priority)
            await until(functools.partial(_queued, queue, count))
        release.set()
    say("   served in order: " + " → ".join(order))
    stats = queue.stats()
    say(
        f"   stats: granted={stats.granted} completed={stats.completed} "
        f"active={stats.active} available={stats.available}"
    )
    queue.close()


async def _circuit_breaker(backend: Backend, tag: str, say: Callable[[str], None]) -> None:
    say("3. Circuit breaker: 3 failures open it for 0.2 s; then one probe decides")
    database = FlakyDatabase()
    breaker = CircuitBreaker(
        f"demo-db-{tag}", failure_threshold=3, recovery_timeout=0.2, backend=backend
    )

    def on_event(event: BreakerEvent) -> None:
        if event.type is BreakerEventType.STATE_CHANGE and event.old_state and event.new_state:
            say(f"   event: {event.old_state.value} → {event.new_state.value}")

    breaker.add_listener(on_event)

    @breaker
    async def load_user(user_id: int) -> str:
        return await database.query(f"SELECT * FROM users WHERE id = {user_id}")

    database.down = True
    for user_id in range(6):
        try:
            await load_user(user_id)
        except ConnectionError:
            say(f"   call {user_id}: database error")
        except CircuitOpenError as error:
            say(f"   call {user_id}: failed fast, next probe in {error.retry_after:.2f}s")
    say(f"   the database saw {database.calls} calls out of 6")
    database.down = False
    await anyio.sleep(0.25)
    say(f"   after recovery: {await load_user(42)}")
    stats = breaker.stats()
    say(
        f"   stats: state={stats.state.value} calls={stats.calls} failures={stats.failures} "
        f"rejected={stats.rejected} successes={stats.successes}"
    )
    breaker.close()


async def run_demo(backend: Backend, say: Callable[[str], None] = print) -> None:
    """Run the three scenes on ``backend``, printing through ``say``."""
    tag = str(os.getpid())
    await _rate_limit(backend, tag, say)
    await _priority_queue(backend, tag, say)
    await _circuit_breaker(backend, tag, say)
