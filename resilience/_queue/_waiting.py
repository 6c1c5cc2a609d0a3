"""Waiting on the in-process gate: the async shell and the blocking shell.

Both do the same three things: queue the request, block on the waker until the gate decides
(or the deadline passes, measured with the gate's clock), and turn the decision into a return or
an exception. Any exception while blocked (a cancellation) withdraws the waiter through
:meth:`LocalGate.abandon`, which passes on a slot granted in the meantime; that call is
synchronous, so nothing can interrupt it.
"""

from __future__ import annotations

import asyncio
from threading import get_ident

from .._exceptions import QueueCleared, QueueFull, QueueTimeout
from ._config import Priority
from ._local import CANCELLED, CLEARED, DISPLACED, GRANTED, TIMED_OUT, WAITING, LocalGate
from ._wake import ThreadWaker, TrioWaker

__all__ = ["outcome_error", "wait_local", "wait_local_sync"]


def outcome_error(name: str, state: int, level: int) -> BaseException:
    """The exception a front door raises for a waiter's final, non-granted state."""
    priority = Priority(level).name
    if state == TIMED_OUT:
        return QueueTimeout(f"queue {name!r}: no slot for a {priority} request within its timeout")
    if state == DISPLACED:
        return QueueFull(
            f"queue {name!r} is full: this {priority} waiter was displaced by a more urgent one"
        )
    if state == CLEARED:
        return QueueCleared(f"queue {name!r} was cleared while this {priority} request waited")
    if state == CANCELLED:  # pragma: no cover - a cancelled waiter re-raises its cancellation
        return QueueFull(f"queue {name!r}: request cancelled")
    return QueueFull(f"queue {name!r} is full: {priority} requests are refused at this depth")


async def wait_local(gate: LocalGate, name: str, level: int, timeout: float | None) -> None:
    """Queue on ``gate`` and wait for a slot; raise ``QueueFull``/``QueueTimeout`` otherwise."""
    loop = asyncio._get_running_loop()  # None on trio, without raising
    if loop is None:
        return await _wait_local_trio(gate, name, level, timeout)
    # asyncio: a bare future is the wake-up, the gate's per-loop watchdog the timeout, so a
    # waiter costs one future and one await. The future is resolved only after the gate has
    # decided the waiter's state, so there is nothing to re-check after it.
    future = loop.create_future()
    waiter = gate.enqueue(level, timeout, future, get_ident())
    if waiter.state == WAITING:
        if waiter.deadline is not None:
            gate.watch(loop, waiter.deadline)
        try:
            await future
        except BaseException:
            gate.abandon(waiter, CANCELLED)
            raise
    if waiter.state != GRANTED:
        raise outcome_error(name, waiter.state, level)
    return None


async def _wait_local_trio(gate: LocalGate, name: str, level: int, timeout: float | None) -> None:
    waker = TrioWaker()
    waiter = gate.enqueue(level, timeout, waker)
    try:
        while waiter.state == WAITING:
            deadline = waiter.deadline
            if deadline is not None:
                if deadline <= gate.clock():
                    gate.abandon(waiter, TIMED_OUT)
                    break
                gate.watch_trio(deadline, waker.token)  # one watchdog per run: no timer each
            await waker.wait(None)
    except BaseException:
        gate.abandon(waiter, CANCELLED)
        raise
    if waiter.state != GRANTED:
        raise outcome_error(name, waiter.state, level)


def wait_local_sync(gate: LocalGate, name: str, level: int, timeout: float | None) -> None:
    """Blocking form of :func:`wait_local`, for threads."""
    waker = ThreadWaker()
    waiter = gate.enqueue(level, timeout, waker)
    try:
        while waiter.state == WAITING:
            remaining = None if waiter.deadline is None else waiter.deadline - gate.clock()
            if remaining is not None and remaining <= 0:
                gate.abandon(waiter, TIMED_OUT)
                break
            waker.wait(remaining)
    except BaseException:
        gate.abandon(waiter, CANCELLED)
        raise
    if waiter.state != GRANTED:
        raise outcome_error(name, waiter.state, level)
