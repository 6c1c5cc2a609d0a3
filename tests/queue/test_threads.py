"""Threads and tasks share one gate: wake-ups cross threads both ways; sync timeouts."""

from __future__ import annotations

import threading
from collections.abc import Callable

import anyio
import anyio.to_thread
import pytest

from resilience import Backend, PriorityQueue, QueueTimeout
from tests.conftest import TestClock
from tests.queue.helpers import Holder, start_holder, until

MakeQueue = Callable[..., PriorityQueue]


@pytest.mark.anyio
async def test_threads_and_tasks_hand_slots_to_each_other(
    backend: Backend, make_queue: MakeQueue
) -> None:
    queue = make_queue(backend, max_concurrent=1)
    log: list[str] = []
    thread_in = threading.Event()
    thread_leave = threading.Event()

    def thread_body() -> None:
        with queue.slot_sync(priority="HIGH"):
            log.append("thread")
            thread_in.set()
            thread_leave.wait(30)

    async with anyio.create_task_group() as group:
        holder = await start_holder(group, queue, "NORMAL", log, "task-1")
        group.start_soon(anyio.to_thread.run_sync, thread_body)
        await until(lambda: queue.stats().queued_total == 1, "the thread to queue")
        holder.leave.set()  # a task's release wakes a thread
        await until(thread_in.is_set, "the thread to get the slot")
        task = Holder(queue, "LOW", log)
        group.start_soon(task.run, "task-2")
        await until(lambda: queue.stats().queued_total == 1, "the task to queue")
        thread_leave.set()  # a thread's release wakes a task on the event loop
        await until(lambda: task.entered, "the task to get the slot from the thread")
        task.leave.set()
    assert log == ["task-1", "thread", "task-2"]
    stats = queue.stats()
    assert (stats.active, stats.queued_total, stats.completed) == (0, 0, 3)


def test_sync_waiter_times_out_by_the_clock(
    sync_backend: Backend, sync_clock: TestClock, make_queue: MakeQueue
) -> None:
    queue = make_queue(sync_backend, max_concurrent=1, request_timeout=10.0, lease_ttl=1000.0)
    errors: list[BaseException] = []
    started: list[str] = []

    def waiter() -> None:
        try:
            queue.execute_sync(started.append, "fn", priority="LOW")
        except QueueTimeout as error:
            errors.append(error)

    with queue.slot_sync():
        thread = threading.Thread(target=waiter)
        thread.start()
        for _ in range(1000):
            if queue.stats().queued_total == 1:
                break
            threading.Event().wait(0.005)
        assert queue.stats().queued_total == 1
        sync_clock.advance(11)
        queue.expire()
        thread.join(10)
    assert not thread.is_alive()
    assert len(errors) == 1
    assert started == []
    stats = queue.stats()
    assert (stats.timed_out, stats.active, stats.queued_total) == (1, 0, 0)
