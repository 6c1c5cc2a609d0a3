"""Wake-ups a waiter can block on, that any thread may fire.

A gate decides under its lock and then calls :meth:`set` on the waiter's waker from whatever
thread made the decision: the waiter's own event loop, a worker thread, or the Redis pub/sub
listener. Each waker knows its owner's thread and hops onto it when called from elsewhere.

- :class:`AsyncioWaker`: a bare future plus ``call_later`` for the timeout (the cheapest wait
  on asyncio; anyio cancel scopes cancel it like any other await);
- :class:`TrioWaker`: the task parks with ``wait_task_rescheduled`` and is rescheduled (through
  the trio token from other threads);
- :class:`ThreadWaker`: a ``threading.Event`` for sync callers.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from typing import Any, Protocol

__all__ = ["AsyncWaker", "ThreadWaker", "make_async_waker"]

_get_ident = threading.get_ident


class AsyncWaker(Protocol):
    """What an async waiter blocks on."""

    fired: bool

    def set(self) -> None:
        """Wake the waiter (any thread)."""

    async def wait(self, timeout: float | None) -> None:
        """Block until :meth:`set` or ``timeout`` seconds; return at once if already fired."""


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class AsyncioWaker:
    """A waker for a task on an asyncio loop."""

    __slots__ = ("_future", "_thread", "fired", "loop")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self._thread = _get_ident()
        self._future: asyncio.Future[None] | None = None
        self.fired = False

    def set(self) -> None:
        """Wake the waiter; from a foreign thread through ``call_soon_threadsafe``."""
        if _get_ident() == self._thread:
            self._fire()
        else:
            with contextlib.suppress(RuntimeError):  # a closed loop: nobody left to wake
                self.loop.call_soon_threadsafe(self._fire)

    def _fire(self) -> None:
        self.fired = True
        future = self._future
        if future is not None and not future.done():
            future.set_result(None)

    def park(self) -> asyncio.Future[None]:
        """A future that :meth:`set` resolves (already resolved if it fired): await it."""
        future = self._future = self.loop.create_future()
        if self.fired:
            future.set_result(None)
        return future

    async def wait(self, timeout: float | None) -> None:
        """Wait for :meth:`set` (or the timeout)."""
        if self.fired:
            return
        loop = self.loop
        future = self._future = loop.create_future()
        handle = None if timeout is None else loop.call_later(max(timeout, 0.0), _resolve, future)
        try:
            await future
        finally:
            self._future = None
            if handle is not None:
                handle.cancel()


# trio is optional: its low-level functions are bound on the first TrioWaker (no import
# statement and attribute chain per wait, wake-up and abort on the contended path).
_reschedule: Any = None
_wait_task_rescheduled: Any = None
_ABORT_SUCCEEDED: Any = None


def _trio_lowlevel() -> Any:
    global _reschedule, _wait_task_rescheduled, _ABORT_SUCCEEDED
    import trio

    lowlevel = trio.lowlevel
    if _reschedule is None:
        _wait_task_rescheduled = lowlevel.wait_task_rescheduled
        _ABORT_SUCCEEDED = lowlevel.Abort.SUCCEEDED
        _reschedule = lowlevel.reschedule
    return lowlevel


class TrioWaker:
    """A waker for a task on a trio run: the task parks itself and is rescheduled directly."""

    __slots__ = ("_parked", "_task", "_thread", "fired", "token")

    def __init__(self) -> None:
        lowlevel = _trio_lowlevel()
        #: The trio run's token (the run this waiter belongs to).
        self.token: Any = lowlevel.current_trio_token()
        self._task: Any = lowlevel.current_task()
        self._thread = _get_ident()
        self._parked = False
        self.fired = False

    def set(self) -> None:
        """Wake the waiter; from a foreign thread through the trio token."""
        if _get_ident() == self._thread:
            self._fire()
        else:
            with contextlib.suppress(RuntimeError):  # trio.RunFinishedError: nobody to wake
                self.token.run_sync_soon(self._fire)

    def _fire(self) -> None:
        self.fired = True
        if self._parked:
            self._parked = False
            _reschedule(self._task)

    def _abort(self, _: Any) -> Any:
        self._parked = False
        return _ABORT_SUCCEEDED

    async def wait(self, timeout: float | None) -> None:
        """Wait for :meth:`set` (or the timeout)."""
        if self.fired:
            return
        self._parked = True
        if timeout is None:
            await _wait_task_rescheduled(self._abort)
            return
        import trio

        with trio.move_on_after(max(timeout, 0.0)):
            await _wait_task_rescheduled(self._abort)


class ThreadWaker:
    """A waker for a blocking caller in any thread."""

    __slots__ = ("_event",)

    def __init__(self) -> None:
        self._event = threading.Event()

    @property
    def fired(self) -> bool:
        """Whether :meth:`set` was called since the last :meth:`reset`."""
        return self._event.is_set()

    def set(self) -> None:
        """Wake the waiter."""
        self._event.set()

    def reset(self) -> None:
        """Forget a previous :meth:`set`."""
        self._event.clear()

    def wait(self, timeout: float | None) -> None:
        """Block until :meth:`set` or ``timeout`` seconds."""
        self._event.wait(timeout)


def make_async_waker() -> AsyncioWaker | TrioWaker:
    """A waker for the current task, on asyncio or trio."""
    loop = asyncio._get_running_loop()  # None on trio, without raising
    if loop is None:
        return TrioWaker()
    return AsyncioWaker(loop)
