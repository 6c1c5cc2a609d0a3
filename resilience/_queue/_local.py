"""The in-process gate: the memory backend's queue, and the fallback of a shared one.

All state sits behind one :class:`threading.Lock`, held only for a few dictionary operations
(never across an await or user code), so async tasks on any loop and plain threads share one
gate. The rules (admission, grant order, aging) are the pure functions of :mod:`._rules`.

Why not a ``MemoryStore`` script: a script answers one request and returns, but a waiter must
be *woken* later by somebody else's release. Here the release itself picks the next waiter and
wakes it, which keeps the uncontended path to one lock round and the handover to one wake-up.

Waiters are kept per level in deques (O(1) append and pop at either end); a waiter that leaves
from the middle (cancelled, timed out) is only marked and counted out, and dropped when it
reaches an end. Deadlines sit in one deque in deadline order that every contended operation
sweeps, so an expired waiter is removed even when nobody polls it; on asyncio one timer per
loop (:meth:`LocalGate.watch`) makes sure a sweep happens when nothing else moves.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
from collections import deque
from collections.abc import Sequence
from threading import Lock, get_ident
from typing import Any, Protocol

from .._clock import Clock
from ._config import LEVELS
from ._rules import ADMIT, REJECT, admit, pick
from ._stats import RING, Counters

__all__ = ["CANCELLED", "CLEARED", "DISPLACED", "GRANTED", "TIMED_OUT", "WAITING", "LocalGate"]

WAITING, GRANTED, TIMED_OUT, CANCELLED, DISPLACED, CLEARED, REFUSED = range(7)


class _Wakeable(Protocol):
    def set(self) -> None: ...


#: What wakes a waiter: an object with ``set()`` (trio, threads), or an asyncio future.
Wakeable = _Wakeable | asyncio.Future[None]


class Waiter:
    """One queued request; ``state`` changes only under the gate's lock.

    ``thread`` is the ident of the event loop's thread when ``waker`` is an asyncio future (the
    cheapest wake-up there), else 0.
    """

    __slots__ = ("deadline", "enqueued", "level", "seq", "state", "thread", "waker")

    def __init__(
        self,
        level: int,
        seq: int,
        enqueued: float,
        deadline: float | None,
        waker: Wakeable,
        thread: int = 0,
    ) -> None:
        self.level = level
        self.seq = seq
        self.enqueued = enqueued
        self.deadline = deadline
        self.state = WAITING
        self.waker = waker
        self.thread = thread


_new_waiter = Waiter.__new__


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def wake(woken: Sequence[Waiter]) -> None:
    """Wake decided waiters, outside the lock, from whatever thread decided."""
    for waiter in woken:
        waker = waiter.waker
        if waiter.thread:
            future: asyncio.Future[None] = waker  # type: ignore[assignment]  # (no cast() call)
            if waiter.thread == get_ident():
                if not future.done():
                    future.set_result(None)
            else:
                with contextlib.suppress(RuntimeError):  # a closed loop: nobody to wake
                    future.get_loop().call_soon_threadsafe(_resolve, future)
        else:
            waker.set()  # type: ignore[union-attr]


class LocalGate:
    """A priority gate with ``limit`` slots, shared by every task and thread of this process."""

    def __init__(
        self,
        limit: int,
        thresholds: tuple[int, ...],
        aging_interval: float | None,
        clock: Clock,
        counters: Counters,
    ) -> None:
        self.limit = limit
        self.active = 0
        self.queued = 0
        self.thresholds = thresholds
        self.aging_interval = aging_interval
        self.clock = clock
        self.counters = counters
        self._lock = Lock()
        # Per level, waiters in arrival order; entries that left (cancelled, timed out) stay
        # until they reach an end ("lazy deletion"), so ``_counts`` holds the live numbers.
        self._levels: list[deque[Waiter]] = [deque() for _ in range(LEVELS)]
        self._counts = [0] * LEVELS
        # Waiters with a deadline, earliest first (arrival order when timeouts are equal).
        self._deadlines: deque[Waiter] = deque()
        self._seq = 0
        #: Per asyncio loop, the armed watchdog: (deadline, timer handle). Loop thread only.
        self.watchdogs: dict[asyncio.AbstractEventLoop, tuple[float, asyncio.TimerHandle]] = {}
        self._trio_watchdogs: dict[object, list[Any]] = {}

    # -- the uncontended path ------------------------------------------------------------------

    # The hot paths below take the lock with acquire()/try/finally rather than ``with``: on
    # CPython 3.11 ``with`` allocates two bound methods per use, measurable on a path this short.

    def try_acquire(self, level: int) -> bool:
        """Take a slot at once if one is free and nobody waits; never blocks."""
        if self.queued or self.active >= self.limit:  # racy pre-check; decided under the lock
            return False
        lock = self._lock
        lock.acquire()
        try:
            if self.active < self.limit and not self.queued:
                self.active += 1
                counters = self.counters
                counters.granted += 1
                index = counters.wait_index[level]  # record_wait(level, 0.0), inlined
                counters.waits[level][index % RING] = 0.0
                counters.wait_index[level] = index + 1
                return True
        finally:
            lock.release()
        return False

    def release(self, outcome: int) -> None:
        """Give a slot back (``outcome``: 0 completed, 1 failed, 2 cancelled) and hand it on."""
        lock = self._lock
        lock.acquire()
        try:
            counters = self.counters
            if outcome == 0:
                counters.completed += 1
            elif outcome == 1:
                counters.failed += 1
            else:
                counters.cancelled += 1
            if not self.queued:
                self.active -= 1
                return
            now = self.clock()
            deadlines = self._deadlines
            if self.active != self.limit or (deadlines and deadlines[0].deadline <= now):  # type: ignore[operator]
                self.active -= 1
                woken = self._pump(now)
            else:
                # The common contended case, a hand-off: this slot goes to exactly one waiter
                # (``active`` stays the same), decided and woken here without building a list.
                counts = self._counts
                found = 0
                while not counts[found]:
                    found += 1
                if counts[found] != self.queued and self.aging_interval is not None:
                    waiter = self._grant_next(now)  # several levels wait: the rules decide
                else:  # _grant_next() for a single waiting level, inlined
                    queue = self._levels[found]
                    waiter = queue.popleft()
                    while waiter.state != WAITING:  # skip entries that left
                        waiter = queue.popleft()
                    counts[found] -= 1
                    self.queued -= 1
                    waiter.state = GRANTED
                    counters.granted += 1
                    index = counters.wait_index[found]  # record_wait(), inlined
                    counters.waits[found][index % RING] = now - waiter.enqueued
                    counters.wait_index[found] = index + 1
                while deadlines and deadlines[0].state != WAITING:
                    deadlines.popleft()
                woken = None
        finally:
            lock.release()
        if woken is None:
            if waiter.thread == get_ident():  # an asyncio future of this thread's loop
                future: asyncio.Future[None] = waiter.waker  # type: ignore[assignment]
                if not future.done():
                    future.set_result(None)
            else:
                wake((waiter,))
        else:
            wake(woken)

    # -- queueing ------------------------------------------------------------------------------

    def enqueue(
        self, level: int, timeout: float | None, waker: Wakeable, thread: int = 0
    ) -> Waiter:
        """Queue a request (after :meth:`try_acquire` failed) and return its waiter.

        The waiter may come back already ``GRANTED`` (a slot freed meanwhile) or ``REFUSED``
        (``QueueFull``; counted as rejected).
        """
        lock = self._lock
        lock.acquire()
        try:
            now = self.clock()
            deadlines = self._deadlines
            queued = self.queued
            if (
                self.active >= self.limit
                and queued < self.thresholds[level]
                and not (deadlines and deadlines[0].deadline <= now)  # type: ignore[operator]
            ):
                # The common contended case: no slot, room in the queue, nothing expired.
                # admit()'s first rule, then _admit() without the displacement branch.
                self._seq = seq = self._seq + 1
                waiter = _new_waiter(Waiter)  # Waiter(...) without its __init__ frame
                waiter.level = level
                waiter.seq = seq
                waiter.enqueued = now
                waiter.state = WAITING
                waiter.waker = waker
                waiter.thread = thread
                if timeout is None:
                    waiter.deadline = None
                else:
                    waiter.deadline = deadline = now + timeout
                    if not deadlines or deadlines[-1].deadline <= deadline:  # type: ignore[operator]
                        deadlines.append(waiter)
                    else:  # a shorter per-call timeout: keep the order
                        bisect.insort(deadlines, waiter, key=_deadline)
                self._levels[level].append(waiter)
                self._counts[level] += 1
                self.queued = queued + 1
                return waiter
            woken = (
                self._pump(now)
                if self.queued
                and (self.active < self.limit or (deadlines and deadlines[0].deadline <= now))  # type: ignore[operator]
                else []
            )
            if self.active < self.limit and not self.queued:
                self.active += 1
                self.counters.granted += 1
                self.counters.record_wait(level, 0.0)
                waiter = Waiter(level, 0, now, None, waker, thread)
                waiter.state = GRANTED
            else:
                waiter = self._admit(level, now, timeout, waker, thread, woken)
        finally:
            lock.release()
        if woken:
            wake(woken)
        return waiter

    def _admit(
        self,
        level: int,
        now: float,
        timeout: float | None,
        waker: Wakeable,
        thread: int,
        woken: list[Waiter],
    ) -> Waiter:
        if self.queued < self.thresholds[level]:  # admit()'s first rule, without counting
            decision = ADMIT
        else:
            decision = admit(level, self._counts, self.thresholds)
        self._seq += 1
        deadline = None if timeout is None else now + timeout
        waiter = Waiter(level, self._seq, now, deadline, waker, thread)
        if decision == REJECT:
            waiter.state = REFUSED
            self.counters.rejected += 1
            return waiter
        if decision != ADMIT:
            lower = self._levels[decision]
            while lower[-1].state != WAITING:
                lower.pop()
            victim = lower.pop()
            victim.state = DISPLACED
            self._counts[decision] -= 1
            self.queued -= 1
            self.counters.rejected += 1
            self.counters.displaced += 1
            woken.append(victim)
        self._levels[level].append(waiter)
        self._counts[level] += 1
        self.queued += 1
        if deadline is not None:
            deadlines = self._deadlines
            if not deadlines or deadlines[-1].deadline <= deadline:  # type: ignore[operator]
                deadlines.append(waiter)
            else:  # a shorter per-call timeout: keep the order
                bisect.insort(deadlines, waiter, key=_deadline)
        return waiter

    def abandon(self, waiter: Waiter, state: int) -> int:
        """Withdraw a waiter that gave up (``CANCELLED`` or ``TIMED_OUT``); return its final state.

        Exactly one outcome: if the gate granted it first, the result is ``GRANTED`` and, for a
        cancellation, the slot is passed on at once; a timeout that lost the race keeps the slot.
        """
        with self._lock:
            if waiter.state == WAITING:
                self._remove(waiter)
                waiter.state = state
                if state == TIMED_OUT:
                    self.counters.timed_out += 1
                else:
                    self.counters.cancelled += 1
                return state
            if waiter.state != GRANTED or state != CANCELLED:
                return waiter.state
        self.release(2)
        return GRANTED

    def expire(self) -> int:
        """Remove every waiter whose deadline has passed (by the gate's clock); return how many."""
        with self._lock:
            woken = self._expire(self.clock())
            if self.queued:
                woken += self._pump(self.clock())
        wake(woken)
        return sum(waiter.state == TIMED_OUT for waiter in woken)

    def clear(self) -> int:
        """Fail every waiter with ``CLEARED``; return how many."""
        with self._lock:
            woken = [w for q in self._levels for w in q if w.state == WAITING]
            for queue in self._levels:
                queue.clear()
            self._counts = [0] * LEVELS
            self._deadlines.clear()
            self.queued = 0
            for waiter in woken:
                waiter.state = CLEARED
            self.counters.cleared += len(woken)
        wake(woken)
        return len(woken)

    def resize(self, limit: int) -> None:
        """Change the number of slots; extra holders finish normally, nobody is over-granted."""
        with self._lock:
            self.limit = limit
            woken = self._pump(self.clock()) if self.queued else []
        wake(woken)

    def watch(self, loop: asyncio.AbstractEventLoop, deadline: float) -> None:
        """Make sure ``loop`` runs :meth:`expire` by ``deadline`` (asyncio waiters; loop thread).

        One timer per loop and gate instead of one per waiter: deadlines arrive roughly in
        order, so the armed timer is nearly always early enough already.
        """
        armed = self.watchdogs.get(loop)
        if armed is not None:
            if armed[0] <= deadline:
                return
            armed[1].cancel()
        elif len(self.watchdogs) > 8:
            for old in [lp for lp in list(self.watchdogs) if lp.is_closed()]:
                self.watchdogs.pop(old, None)
        delay = max(deadline - self.clock(), 0.0)
        handle = loop.call_at(loop.time() + delay, self._watchdog, loop)
        self.watchdogs[loop] = (deadline, handle)

    def _watchdog(self, loop: asyncio.AbstractEventLoop) -> None:
        self.watchdogs.pop(loop, None)
        following = self._next_deadline()
        if following is not None:
            self.watch(loop, following)

    def watch_trio(self, deadline: float, token: object = None) -> None:
        """The trio form of :meth:`watch` (from a task of the trio run, whose ``token`` it is).

        One system task per trio run and gate sleeps until the earliest deadline; an earlier
        deadline moves its cancel scope's deadline.
        """
        armed = self._trio_watchdogs.get(token) if token is not None else None
        if armed is not None and armed[0] <= deadline:  # nearly always: nothing to do
            return
        import trio

        if token is None:
            token = trio.lowlevel.current_trio_token()
            armed = self._trio_watchdogs.get(token)
        if armed is not None:
            if armed[0] <= deadline:
                return
            armed[0] = deadline
            if armed[1] is not None:
                armed[1].deadline = trio.current_time() + max(deadline - self.clock(), 0.0)
            return
        armed = self._trio_watchdogs[token] = [deadline, None]
        trio.lowlevel.spawn_system_task(self._trio_watchdog, token, armed)

    async def _trio_watchdog(self, token: object, armed: list[Any]) -> None:
        import trio

        try:
            while True:
                delay = max(armed[0] - self.clock(), 0.0)
                with trio.CancelScope(deadline=trio.current_time() + delay) as scope:
                    armed[1] = scope
                    await trio.sleep_forever()
                armed[1] = None
                following = self._next_deadline()
                if following is None:
                    return
                armed[0] = following
        finally:
            self._trio_watchdogs.pop(token, None)

    def _next_deadline(self) -> float | None:
        self.expire()
        with self._lock:
            deadlines = self._deadlines
            while deadlines and deadlines[0].state != WAITING:
                deadlines.popleft()
            return deadlines[0].deadline if deadlines else None

    def queued_per_level(self) -> list[int]:
        """Waiters per level (a racy read: for stats)."""
        return list(self._counts)

    # -- under the lock --------------------------------------------------------------------------

    def _remove(self, waiter: Waiter) -> None:
        level = waiter.level
        self._counts[level] -= 1
        self.queued -= 1
        queue = self._levels[level]
        if len(queue) > 64 and len(queue) > 4 * self._counts[level]:  # many dead entries
            self._levels[level] = deque(w for w in queue if w is not waiter and w.state == WAITING)

    def _expire(self, now: float) -> list[Waiter]:
        expired = []
        deadlines = self._deadlines
        while deadlines and deadlines[0].deadline <= now:  # type: ignore[operator]
            waiter = deadlines.popleft()
            if waiter.state == WAITING:
                self._remove(waiter)
                waiter.state = TIMED_OUT
                self.counters.timed_out += 1
                expired.append(waiter)
        return expired

    def _head(self, level: int) -> Waiter:
        queue = self._levels[level]
        head = queue[0]
        while head.state != WAITING:
            queue.popleft()
            head = queue[0]
        return head

    def _pump(self, now: float) -> list[Waiter]:
        deadlines = self._deadlines
        woken = (
            self._expire(now) if deadlines and deadlines[0].deadline <= now else []  # type: ignore[operator]
        )
        while self.active < self.limit and self.queued:
            self.active += 1
            woken.append(self._grant_next(now))
        while deadlines and deadlines[0].state != WAITING:
            deadlines.popleft()
        return woken

    def _grant_next(self, now: float) -> Waiter:
        """Grant the next waiter by the rules (the caller counts its slot in ``active``)."""
        counts = self._counts
        found = 0
        while not counts[found]:
            found += 1
        aging = self.aging_interval
        if aging is not None and counts[found] != self.queued:
            found = self._pick(now, aging)  # several levels wait: the rules decide
        queue = self._levels[found]
        waiter = queue.popleft()
        while waiter.state != WAITING:  # skip entries that left
            waiter = queue.popleft()
        counts[found] -= 1
        self.queued -= 1
        waiter.state = GRANTED
        counters = self.counters
        counters.granted += 1
        index = counters.wait_index[found]  # record_wait(), inlined
        counters.waits[found][index % RING] = now - waiter.enqueued
        counters.wait_index[found] = index + 1
        return waiter

    def _pick(self, now: float, aging: float) -> int:
        heads: list[tuple[int, float] | None] = [None] * LEVELS
        for level in range(LEVELS):
            if self._counts[level]:
                head = self._head(level)
                heads[level] = (head.seq, head.enqueued)
        return pick(heads, now, aging)


def _deadline(waiter: Waiter) -> float:
    return waiter.deadline or 0.0
