"""Helpers for the queue tests: holders that keep a slot until told, and bounded waits."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import anyio

from resilience import Priority, PriorityQueue
from resilience._queue._config import parse_priority


async def until(predicate: Callable[[], bool], what: str, limit: float = 10.0) -> None:
    """Yield until ``predicate()`` holds: synchronises test steps, never decides timing logic."""
    deadline = time.monotonic() + limit
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await anyio.sleep(0.002)


class Holder:
    """A task that takes a slot, records when it got it, and leaves when released."""

    def __init__(self, queue: PriorityQueue, priority: Priority | str, log: list[str]) -> None:
        self.queue = queue
        self.priority = parse_priority(priority)
        self.log = log
        self.leave = anyio.Event()
        self.entered = False
        self.error: BaseException | None = None
        self.done = False
        self.name = ""

    async def run(self, name: str = "") -> None:
        self.name = name or self.priority.name
        try:
            async with self.queue.slot(priority=self.priority):
                self.entered = True
                self.log.append(self.name)
                await self.leave.wait()
        except Exception as error:
            self.error = error
        finally:
            self.done = True


async def start_holder(
    group: Any, queue: PriorityQueue, priority: Priority | str, log: list[str], name: str = ""
) -> Holder:
    """Start a holder and wait until it holds its slot."""
    holder = Holder(queue, priority, log)
    group.start_soon(holder.run, name)
    await until(lambda: holder.entered or holder.done, f"{priority} to enter")
    return holder


async def start_waiter(
    group: Any, queue: PriorityQueue, priority: Priority | str, log: list[str], name: str = ""
) -> Holder:
    """Start a holder that must queue, and wait until the queue counts it."""
    before = queue.stats()
    holder = Holder(queue, priority, log)
    group.start_soon(holder.run, name)

    def queued() -> bool:
        now = queue.stats()
        return (
            now.queued_total > before.queued_total
            or now.displaced > before.displaced
            or holder.done
        )

    await until(queued, f"{priority} waiter to be queued")
    return holder
