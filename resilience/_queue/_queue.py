"""The front doors: :class:`PriorityQueue`, its slots, ``execute`` and the decorator."""

from __future__ import annotations

import enum
import functools
import inspect
import time
from asyncio import _get_running_loop
from collections.abc import Awaitable, Callable
from threading import get_ident
from types import TracebackType
from typing import Any, ParamSpec, TypeVar, cast, overload

import anyio

from .._backends import resolve_backend
from .._backends._base import Backend
from .._backends._memory import MemoryBackend
from .._clock import Clock, monotonic
from .._exceptions import ConfigurationError, QueueTimeout
from .._policy import FailurePolicy
from ._config import DEFAULT_SHARES, LEVELS, Priority, QueueConfig, parse_priority
from ._events import QueueListener
from ._local import CANCELLED, GRANTED, WAITING, LocalGate
from ._remote import Hold, RemoteGate
from ._stats import Counters, QueueStats
from ._waiting import outcome_error, wait_local, wait_local_sync

__all__ = ["PriorityQueue", "QueueSlot", "SyncQueueSlot"]

P = ParamSpec("P")
T = TypeVar("T")

PriorityLike = Priority | str | int


class _Default(enum.Enum):
    TOKEN = 0


#: "Use the queue's ``request_timeout``".
DEFAULT = _Default.TOKEN


class QueueSlot:
    """``async with queue.slot(priority=...)``: holds one slot for the body of the block.

    Entering waits in the queue (``QueueFull`` / ``QueueTimeout`` when refused); leaving gives
    the slot back, shielded from cancellation. On a shared backend one object serves one
    ``async with`` at a time (it remembers its ticket); on the memory backend it keeps no
    per-use state.
    """

    __slots__ = ("_hold", "_level", "_queue", "_timeout")

    def __init__(self, queue: PriorityQueue, level: int, timeout: float | None) -> None:
        self._queue = queue
        self._level = int(level)  # a plain int indexes the gate's lists faster than an enum
        self._timeout = timeout
        self._hold: Hold = ""

    async def __aenter__(self) -> QueueSlot:
        queue = self._queue
        remote = queue._remote
        if remote is None:
            gate = queue._local
            if not gate.queued and gate.try_acquire(self._level):  # no call when others wait
                return self
            loop = _get_running_loop()  # None on trio, without raising
            if loop is None:
                await wait_local(gate, queue.name, self._level, self._timeout)
                return self
            # wait_local()'s asyncio branch, inlined: one coroutine frame less per waiter
            future = loop.create_future()
            waiter = gate.enqueue(self._level, self._timeout, future, get_ident())
            if waiter.state == WAITING:
                deadline = waiter.deadline
                if deadline is not None:
                    armed = gate.watchdogs.get(loop)  # watch()'s first test, inlined:
                    if armed is None or armed[0] > deadline:  # nearly always armed already
                        gate.watch(loop, deadline)
                try:
                    await future
                except BaseException:
                    gate.abandon(waiter, CANCELLED)
                    raise
            if waiter.state != GRANTED:
                raise outcome_error(queue.name, waiter.state, self._level)
        else:
            self._hold = await remote.acquire(self._level, self._timeout)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if exc_type is None:
            outcome = 0
        else:
            outcome = 2 if issubclass(exc_type, anyio.get_cancelled_exc_class()) else 1
        queue = self._queue
        if queue._remote is None:
            queue._local.release(outcome)
        else:
            await queue._remote.release(self._hold, outcome)


class SyncQueueSlot:
    """``with queue.slot_sync(priority=...)``: the blocking form of :class:`QueueSlot`."""

    __slots__ = ("_hold", "_level", "_queue", "_timeout")

    def __init__(self, queue: PriorityQueue, level: int, timeout: float | None) -> None:
        self._queue = queue
        self._level = int(level)
        self._timeout = timeout
        self._hold: Hold = ""

    def __enter__(self) -> SyncQueueSlot:
        queue = self._queue
        remote = queue._remote
        if remote is None:
            if not queue._local.try_acquire(self._level):
                wait_local_sync(queue._local, queue.name, self._level, self._timeout)
        else:
            self._hold = remote.acquire_sync(self._level, self._timeout)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        outcome = 0 if exc_type is None else 1
        queue = self._queue
        if queue._remote is None:
            queue._local.release(outcome)
        else:
            queue._remote.release_sync(self._hold, outcome)


class PriorityQueue:
    """A bounded priority gate in front of a scarce resource (a database allowing few connections).

    At most ``max_concurrent`` requests run at once; up to ``max_queue_size`` more wait, served
    highest priority first and first-come-first-served within a priority, with aging so that no
    priority starves. A request waits at most ``request_timeout`` seconds (``QueueTimeout``);
    when the queue is deep, lower priorities are refused first (``QueueFull``); see
    ``docs/queue.md`` for the exact admission rule and aging bound.

    On the memory backend (the default) the gate is in-process: one per ``PriorityQueue``
    object, shared by every task and thread. On Redis every process using the same name and
    backend prefix shares one ``max_concurrent``.

    ``clock`` is the time source of the in-process gate (timeouts and aging); it defaults to the
    memory backend's clock. Tests pass a :class:`~resilience.FakeClock`.
    """

    def __init__(
        self,
        name: str,
        max_concurrent: int = 8,
        max_queue_size: int = 200,
        request_timeout: float | None = 30.0,
        *,
        backend: Backend | str | None = None,
        aging_interval: float | None = 5.0,
        admission_shares: tuple[float, float, float, float, float] = DEFAULT_SHARES,
        lease_ttl: float = 10.0,
        recheck_interval: float = 2.0,
        failure_policy: FailurePolicy | str = FailurePolicy.LOCAL,
        clock: Clock | None = None,
    ) -> None:
        self.config = QueueConfig.build(
            name=name,
            max_concurrent=max_concurrent,
            max_queue_size=max_queue_size,
            request_timeout=request_timeout,
            aging_interval=aging_interval,
            admission_shares=admission_shares,
            lease_ttl=lease_ttl,
            recheck_interval=recheck_interval,
            failure_policy=failure_policy,
        )
        #: The queue's name: the key of its shared state.
        self.name = name
        #: Where the shared state lives.
        self.backend = resolve_backend(backend)
        if clock is None:
            clock = self.backend.clock if isinstance(self.backend, MemoryBackend) else monotonic
        self._request_timeout = self.config.request_timeout
        self._counters = Counters()
        self._local = LocalGate(
            max_concurrent, self.config.thresholds(), aging_interval, clock, self._counters
        )
        self._remote = (
            None
            if self.backend.is_local
            else RemoteGate(self.config, self.backend, self._counters, self._local)
        )
        self._shared_slots = (
            [QueueSlot(self, level, self._request_timeout) for level in Priority]
            if self._remote is None
            else None
        )

    def __repr__(self) -> str:
        return (
            f"PriorityQueue({self.name!r}, max_concurrent={self._local.limit}, "
            f"max_queue_size={self.config.max_queue_size}, backend={self.backend.url!r})"
        )

    def _timeout(self, timeout: float | _Default | None) -> float | None:
        if timeout is DEFAULT:
            return self._request_timeout
        if timeout is not None and not timeout > 0:
            raise ConfigurationError(f"timeout must be positive or None, not {timeout!r}")
        return timeout

    # -- front doors ---------------------------------------------------------------------------

    def slot(
        self,
        priority: PriorityLike = Priority.NORMAL,
        *,
        timeout: float | _Default | None = DEFAULT,
    ) -> QueueSlot:
        """``async with queue.slot(priority=...)``: run the block holding one slot.

        ``priority`` is a :class:`Priority` or its name in any case; ``timeout`` (default
        ``request_timeout``) bounds the wait for the slot.
        """
        shared = self._shared_slots
        if shared is not None and timeout is DEFAULT:
            # in-process gate: a slot object keeps no per-use state, so one per level is
            # shared by every ``async with`` (no allocation on the hot path)
            return shared[priority if type(priority) is Priority else parse_priority(priority)]
        return QueueSlot(self, parse_priority(priority), self._timeout(timeout))

    def slot_sync(
        self,
        priority: PriorityLike = Priority.NORMAL,
        *,
        timeout: float | _Default | None = DEFAULT,
    ) -> SyncQueueSlot:
        """``with queue.slot_sync(priority=...)``: the blocking form of :meth:`slot` (threads)."""
        return SyncQueueSlot(self, parse_priority(priority), self._timeout(timeout))

    @overload
    async def execute(
        self,
        fn: Callable[..., Awaitable[T]],
        /,
        *args: Any,
        priority: PriorityLike = ...,
        timeout: float | _Default | None = ...,  # noqa: ASYNC109
    ) -> T: ...
    @overload
    async def execute(
        self,
        fn: Callable[..., T],
        /,
        *args: Any,
        priority: PriorityLike = ...,
        timeout: float | _Default | None = ...,  # noqa: ASYNC109
    ) -> T: ...
    async def execute(
        self,
        fn: Callable[..., Any],
        /,
        *args: Any,
        priority: PriorityLike = Priority.NORMAL,
        timeout: float | _Default | None = DEFAULT,  # noqa: ASYNC109
    ) -> Any:
        """Run ``fn(*args)`` (awaited if it returns an awaitable) holding one slot.

        ``timeout`` (default ``request_timeout``) covers the queue wait *and* the call: the call
        gets whatever the wait left and is cancelled with ``QueueTimeout`` when it runs out. A
        request that times out while queued never starts.
        """
        level = parse_priority(priority)
        budget = self._timeout(timeout)
        started = time.monotonic()
        async with QueueSlot(self, level, budget):
            if budget is None:
                result = fn(*args)
                if inspect.isawaitable(result):
                    return await result
                return result
            with anyio.move_on_after(budget - (time.monotonic() - started)) as scope:
                result = fn(*args)
                if inspect.isawaitable(result):
                    result = await result
            if scope.cancelled_caught:
                self._counters.timed_out += 1
                raise QueueTimeout(
                    f"queue {self.name!r}: call did not finish within its {budget}s timeout"
                )
            return result

    def execute_sync(
        self,
        fn: Callable[..., T],
        /,
        *args: Any,
        priority: PriorityLike = Priority.NORMAL,
        timeout: float | _Default | None = DEFAULT,
    ) -> T:
        """Blocking form of :meth:`execute`.

        ``timeout`` bounds the wait only: a running thread cannot be interrupted.
        """
        with SyncQueueSlot(self, parse_priority(priority), self._timeout(timeout)):
            return fn(*args)

    @overload
    def limit(
        self, priority: PriorityLike = ..., *, timeout: float | _Default | None = ...
    ) -> Callable[[Callable[P, T]], Callable[P, T]]: ...
    @overload
    def limit(self, priority: Callable[P, T]) -> Callable[P, T]: ...
    def limit(self, priority: Any = Priority.NORMAL, *, timeout: Any = DEFAULT) -> Any:
        """Decorator: every call of the function holds one slot.

        ``@queue.limit(priority="LOW")`` (or bare ``@queue.limit``). Coroutine functions use
        :meth:`slot`, plain functions :meth:`slot_sync`.
        """
        if callable(priority) and not isinstance(priority, (str, int)):
            return self.limit()(priority)
        level = parse_priority(priority)
        budget = self._timeout(timeout)

        def decorate(fn: Callable[P, T]) -> Callable[P, T]:
            if inspect.iscoroutinefunction(fn):
                afn = cast(Callable[P, Awaitable[Any]], fn)

                @functools.wraps(fn)
                async def async_wrapper(*args: P.args, **kwargs: P.kwargs) -> Any:
                    async with QueueSlot(self, level, budget):
                        return await afn(*args, **kwargs)

                return cast(Callable[P, T], async_wrapper)

            @functools.wraps(fn)
            def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
                with SyncQueueSlot(self, level, budget):
                    return fn(*args, **kwargs)

            return wrapper

        return decorate

    # -- operations ----------------------------------------------------------------------------

    def stats(self) -> QueueStats:
        """A snapshot of the queue; never blocks and never does I/O."""
        counters = self._counters
        local = self._local
        remote = self._remote
        held = local.active
        if remote is None or remote.degraded or remote.last is None:
            scope = "local" if remote is None else "degraded" if remote.degraded else "global"
            active, limit, queued = local.active, local.limit, local.queued_per_level()
            if remote is not None and not remote.degraded:
                active, held = remote.held(), remote.held() + local.active
        else:
            scope = "global"
            last = remote.last
            active, limit, queued = last.active, last.limit, list(last.queued)
            held += remote.held()
        return QueueStats(
            name=self.name,
            scope=scope,
            max_concurrent=limit,
            max_queue_size=self.config.max_queue_size,
            active=active,
            available=max(limit - active, 0),
            queued={Priority(level).name: queued[level] for level in range(LEVELS)},
            queued_total=sum(queued),
            granted=counters.granted,
            completed=counters.completed,
            failed=counters.failed,
            timed_out=counters.timed_out,
            rejected=counters.rejected,
            displaced=counters.displaced,
            cancelled=counters.cancelled,
            cleared=counters.cleared,
            wait=counters.wait_stats(),
            utilization=active / limit if limit else 0.0,
            held_here=held,
            leases_lost=counters.leases_lost,
        )

    def clear(self) -> int:
        """Fail every queued request with ``QueueCleared``; return how many.

        On Redis this clears every process's waiters. Holders keep their slots. With Redis
        unreachable it clears the local fallback gate, then raises the ``BackendError``.
        """
        cleared = self._local.clear()
        if self._remote is not None:
            cleared += self._remote.operate_sync("clear").status
        return cleared

    async def aclear(self) -> int:
        """Async form of :meth:`clear`."""
        cleared = self._local.clear()
        if self._remote is not None:
            cleared += (await self._remote.operate("clear")).status
        return cleared

    def resize(self, max_concurrent: int) -> None:
        """Change the number of slots at run time (on Redis: for every process).

        Shrinking never interrupts holders: new grants wait until ``active`` is below the new
        limit. Growing grants waiters at once. With Redis unreachable the local fallback gate
        takes the new limit, then the ``BackendError`` is raised (retry after recovery).
        """
        self._check_size(max_concurrent)
        self._local.resize(max_concurrent)
        if self._remote is not None:
            self._remote.operate_sync("resize", max_concurrent)

    async def aresize(self, max_concurrent: int) -> None:
        """Async form of :meth:`resize`."""
        self._check_size(max_concurrent)
        self._local.resize(max_concurrent)
        if self._remote is not None:
            await self._remote.operate("resize", max_concurrent)

    @staticmethod
    def _check_size(max_concurrent: int) -> None:
        if isinstance(max_concurrent, bool) or not isinstance(max_concurrent, int):
            raise ConfigurationError("max_concurrent must be an int")
        if max_concurrent < 1:
            raise ConfigurationError(f"max_concurrent must be at least 1, not {max_concurrent}")

    def expire(self) -> None:
        """Remove waiters whose timeout has passed now (by the queue's clock, or the server's).

        Happens by itself on every contended acquire and release and when a waiter's own timer
        fires; call it after moving a fake clock in tests.
        """
        self._local.expire()
        if self._remote is not None:
            self._remote.sweep_sync()

    async def aexpire(self) -> None:
        """Async form of :meth:`expire`."""
        self._local.expire()
        if self._remote is not None:
            await self._remote.sweep()

    def add_listener(self, listener: QueueListener) -> None:
        """Call ``listener(event)`` when the shared backend goes away (degraded) or comes back.

        A memory-backed queue never emits. A listener that raises is logged and ignored.
        """
        if self._remote is not None:
            self._remote.listeners.append(listener)

    def remove_listener(self, listener: QueueListener) -> None:
        """Forget a listener added with :meth:`add_listener`."""
        if self._remote is not None and listener in self._remote.listeners:
            self._remote.listeners.remove(listener)

    def close(self) -> None:
        """Stop background work (lease renewal, pub/sub); slots still held expire by lease."""
        if self._remote is not None:
            self._remote.close()
