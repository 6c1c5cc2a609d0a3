"""The shared gate: one ``max_concurrent`` for every process on the same Redis.

Each decision is one call of ``queue_gate.lua``: an uncontended acquire and its release are two
round trips. Holders are a sorted set scored by lease expiry; a background thread renews this
process's leases every ``lease_ttl / 3`` seconds, so a crashed process's slots come back within
``lease_ttl``. Waiters are per-level sorted sets scored by arrival number; the script that frees a
slot grants it and publishes ``g <ticket>``, and the pub/sub listener wakes the waiting task or
thread (push, not polling). A bounded re-check every ``recheck_interval`` seconds, and a re-check
whenever the listener reports missed messages, are the safety net.

When the backend fails, the failure policy decides: ``local`` (default) hands out slots of the
in-process gate with the same limits, ``fail_open`` runs the call without a slot, ``fail_closed``
refuses it with ``QueueFull``. Every call tries the backend again (the backend itself throttles
attempts while it is down), so recovery needs nothing from the user.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
import uuid
from typing import Any

import anyio
import anyio.to_thread

from .._backends._base import Backend, Subscription
from .._exceptions import BackendError, QueueFull
from .._policy import FailurePolicy
from ._config import LEVELS, QueueConfig
from ._events import QueueEvent, QueueEventType, QueueListener, emit
from ._local import CLEARED, DISPLACED, GRANTED, REFUSED, TIMED_OUT, LocalGate
from ._scripts import GATE, Reply
from ._stats import Counters
from ._waiting import outcome_error, wait_local, wait_local_sync
from ._wake import ThreadWaker, make_async_waker

__all__ = ["LOCAL", "OPEN", "Hold", "RemoteGate"]

logger = logging.getLogger("resilience.queue")

_STATES = {"g": GRANTED, "t": TIMED_OUT, "x": DISPLACED, "c": CLEARED}

#: Where a slot came from: the shared gate (a ticket), the local fallback, or nowhere
#: (``fail_open``).
LOCAL = "local"
OPEN = "open"

#: A held slot: a ticket of the shared gate, :data:`LOCAL` or :data:`OPEN`.
Hold = str


class _RemoteWaiter:
    __slots__ = ("state", "waker")

    def __init__(self, waker: Any) -> None:
        self.waker = waker
        self.state: int | None = None


class RemoteGate:
    """The shared-backend gate of one :class:`~resilience.PriorityQueue`."""

    def __init__(
        self, config: QueueConfig, backend: Backend, counters: Counters, local: LocalGate
    ) -> None:
        self.config = config
        self.backend = backend
        self.counters = counters
        self.local = local
        name = config.name
        self._keys = [
            backend.key("queue", name, part)
            for part in ("holders", "info", "deadlines", "seq", "limit")
        ] + [backend.key("queue", name, "waiting", level) for level in range(LEVELS)]
        self._channel = backend.channel("queue", name)
        self._thresholds = config.thresholds()
        self._limit = config.max_concurrent
        self._settings = self._pack_settings()
        self._id = uuid.uuid4().hex[:16]
        self._count = itertools.count()
        self._waiters: dict[str, _RemoteWaiter] = {}
        self._held: set[str] = set()
        #: Tickets given up on while Redis did not answer: withdrawn / released by ``reap``.
        self._orphans: set[str] = set()
        self._lock = threading.Lock()
        self._subscription: Subscription | None = None
        self._renewer: threading.Thread | None = None
        self._stop = threading.Event()
        #: The latest reply: global active and queued figures for stats.
        self.last: Reply | None = None
        #: Whether the latest decision came from the fallback.
        self.degraded = False
        #: Called on degraded / recovered transitions.
        self.listeners: list[QueueListener] = []

    # -- plumbing ------------------------------------------------------------------------------

    def _args(
        self, op: str, ticket: str = "", level: int = 0, timeout: float = 0.0, more: Any = ()
    ) -> list[Any]:
        return [op, self._channel, self._settings, ticket, int(level), repr(timeout), *more]

    def _pack_settings(self) -> str:
        # limit, lease, aging and the five thresholds in one argument: fewer to encode per call
        cfg = self.config
        values = [self._limit, cfg.lease_ttl, cfg.aging_interval or 0, *self._thresholds]
        return " ".join(repr(v) for v in values)

    async def _run(self, op: str, *args: Any) -> Reply:
        reply: Reply = await self.backend.run(GATE, self._keys, self._args(op, *args))
        self._ok(reply)
        if self._orphans:
            with anyio.CancelScope(shield=True):
                await self._reap()
        return reply

    def _run_sync(self, op: str, *args: Any) -> Reply:
        reply: Reply = self.backend.run_sync(GATE, self._keys, self._args(op, *args))
        self._ok(reply)
        if self._orphans:
            self._reap_sync()
        return reply

    def _orphan(self, ticket: str) -> None:
        # Redis may still have this ticket queued or granted (a call around it failed): the
        # next exchange (at the latest the renewer's next tick) withdraws or releases it.
        with self._lock:
            self._orphans.add(ticket)
            self._start_renewer()

    async def _reap(self) -> None:
        with self._lock:
            orphans, self._orphans = list(self._orphans), set()
        try:
            reply = await self.backend.run(GATE, self._keys, self._args("reap", more=orphans))
        except BackendError:
            with self._lock:
                self._orphans.update(orphans)  # next time
        else:
            self._ok(reply)

    def _reap_sync(self) -> None:
        with self._lock:
            orphans, self._orphans = list(self._orphans), set()
        try:
            reply = self.backend.run_sync(GATE, self._keys, self._args("reap", more=orphans))
        except BackendError:
            with self._lock:
                self._orphans.update(orphans)
        else:
            self._ok(reply)

    def _ok(self, reply: Reply) -> None:
        last = self.last
        if last is None or reply.at >= last.at:
            self.last = reply
        if self.degraded:
            self.degraded = False
            logger.warning("queue %r: shared backend is back; global gate on", self.config.name)
            emit(self.listeners, QueueEvent(self.config.name, QueueEventType.RECOVERED))

    def _failed(self, error: BackendError) -> None:
        if not self.degraded:
            self.degraded = True
            logger.warning(
                "queue %r: shared backend failed (%s); policy %s",
                self.config.name,
                error,
                self.config.failure_policy.value,
            )
            emit(self.listeners, QueueEvent(self.config.name, QueueEventType.DEGRADED, error))

    def _ticket(self) -> str:
        return f"{self._id}:{next(self._count)}"

    def _on_message(self, message: bytes | None) -> None:
        if message is None:  # messages may be lost: every waiter re-checks
            for waiter in list(self._waiters.values()):
                waiter.waker.set()
            return
        op, _, rest = message.decode().partition(" ")
        state = _STATES.get(op)
        if state is None:
            return
        for ticket in rest.split(" "):
            found = self._waiters.get(ticket)
            if found is not None and found.state is None:
                found.state = state
                found.waker.set()

    def _subscribe(self) -> None:
        with self._lock:
            if self._subscription is None:
                self._subscription = self.backend.subscribe(self._channel, self._on_message)

    def _hold(self, ticket: str, waited: float, level: int) -> Hold:
        with self._lock:
            self._held.add(ticket)
            counters = self.counters
            counters.granted += 1
            counters.record_wait(level, waited)
            self._start_renewer()
        return ticket

    def _start_renewer(self) -> None:
        """Start the lease renewer thread once (called under ``_lock``)."""
        if self._renewer is None and not self._stop.is_set():
            self._renewer = threading.Thread(
                target=self._renew_loop, name=f"resilience-queue-renew {self._id}", daemon=True
            )
            self._renewer.start()

    def _renew_loop(self) -> None:
        while not self._stop.wait(self.config.lease_ttl / 3):
            self._renew_once()

    def _renew_once(self) -> None:
        """Push out the leases of this process's slots (one round trip); count lapsed ones."""
        with self._lock:
            tickets = list(self._held)
        if not tickets:
            if self._orphans:
                self._reap_sync()
            return
        try:
            reply = self._run_sync("renew", "", 0, 0.0, tickets)
        except BackendError as error:
            logger.debug("queue %r: lease renewal failed: %s", self.config.name, error)
            return
        if not reply.displaced:
            return
        # A release discards its ticket before its script runs: a ticket still held here
        # was really in use when the script found its lease gone.
        with self._lock:
            lost = [t for t in reply.displaced.split(" ") if t in self._held]
            self._held.difference_update(lost)  # nothing left to renew
            self.counters.leases_lost += len(lost)
        if lost:
            logger.warning(
                "queue %r: %d slot leases lapsed while in use (renewal failed or was late); "
                "the shared gate may have granted them again",
                self.config.name,
                len(lost),
            )

    def held(self) -> int:
        """Slots this process holds on the shared gate."""
        return len(self._held)

    def _fallback(self, error: BackendError, level: int, deadline: float | None) -> None:
        # The failure policy (local: return; fail_closed: raise QueueFull); a request whose
        # timeout ran out meanwhile times out: no policy may start it late.
        self._failed(error)
        if deadline is not None and time.monotonic() >= deadline:
            self.counters.timed_out += 1
            raise outcome_error(self.config.name, TIMED_OUT, level) from error
        policy = self.config.failure_policy
        if policy is FailurePolicy.FAIL_CLOSED:
            self.counters.rejected += 1
            raise QueueFull(
                f"queue {self.config.name!r}: backend unavailable, refusing (fail_closed)"
            ) from error

    def _finish(self, ticket: str, state: int, level: int, started: float) -> Hold:
        self._waiters.pop(ticket, None)
        if state == GRANTED:
            return self._hold(ticket, time.monotonic() - started, level)
        counters = self.counters
        if state == TIMED_OUT:
            counters.timed_out += 1
        elif state == DISPLACED:
            counters.rejected += 1
            counters.displaced += 1
        elif state == CLEARED:
            counters.cleared += 1
        elif state == REFUSED:
            counters.rejected += 1
        raise outcome_error(self.config.name, state, level)

    # -- async ---------------------------------------------------------------------------------

    async def acquire(self, level: int, timeout: float | None) -> Hold:  # noqa: ASYNC109
        """Take a shared slot (waiting in the queue); return the hold to release."""
        if self._subscription is None:
            await anyio.to_thread.run_sync(self._subscribe)
        started = time.monotonic()
        deadline = None if timeout is None else started + timeout
        ticket = self._ticket()
        waiter = self._waiters[ticket] = _RemoteWaiter(make_async_waker())
        failure: BackendError | None = None
        state: int | None = None
        try:
            try:
                reply = await self._run("acquire", ticket, level, timeout or 0.0)
                state = {1: GRANTED, -1: REFUSED}.get(reply.status)
                while state is None:
                    state = waiter.state
                    if state is not None:
                        break
                    remaining = None if deadline is None else deadline - time.monotonic()
                    if remaining is not None and remaining <= 0:
                        reply = await self._run("cancel", ticket)
                        state = GRANTED if reply.status == 1 else (waiter.state or TIMED_OUT)
                        break
                    waiter.waker.fired = False
                    wait = self.config.recheck_interval
                    await waiter.waker.wait(wait if remaining is None else min(wait, remaining))
                    if waiter.state is None and (deadline is None or time.monotonic() < deadline):
                        reply = await self._run("check", ticket)
                        if reply.status == 1:
                            state = GRANTED
                        elif reply.status == -1:
                            state = waiter.state or TIMED_OUT
            except BackendError as error:
                self._waiters.pop(ticket, None)
                self._orphan(ticket)  # it may still wait (or hold a slot) in Redis
                failure = error
        except BaseException:
            self._waiters.pop(ticket, None)
            with anyio.CancelScope(shield=True):
                await self._abandon(ticket)
            raise
        if failure is not None:
            # outside the handler above: a refusal or a timeout of the fallback is its own
            # outcome (counted once), not a cancellation of the shared ticket
            self._fallback(failure, level, deadline)
            return await self._acquire_fallback(level, deadline)
        assert state is not None
        return self._finish(ticket, state, level, started)

    async def _abandon(self, ticket: str) -> None:
        self.counters.cancelled += 1
        try:
            await self._run("abandon", ticket)
        except BackendError as error:
            self._orphan(ticket)
            self._failed(error)

    async def _acquire_fallback(self, level: int, deadline: float | None) -> Hold:
        if self.config.failure_policy is FailurePolicy.FAIL_OPEN:
            return OPEN
        if not self.local.try_acquire(level):
            timeout = None if deadline is None else max(deadline - time.monotonic(), 0.0)
            await wait_local(self.local, self.config.name, level, timeout)
        return LOCAL

    async def release(self, hold: Hold, outcome: int) -> None:
        """Give back a slot taken by :meth:`acquire`; shielded from cancellation."""
        if hold == LOCAL:
            self.local.release(outcome)
            return
        self._count_outcome(outcome)
        if hold == OPEN:
            return
        with self._lock:
            self._held.discard(hold)
        with anyio.CancelScope(shield=True):
            try:
                await self._run("release", hold)
            except BackendError as error:  # released at the next exchange, or by the lease
                self._orphan(hold)
                self._failed(error)

    def _count_outcome(self, outcome: int) -> None:
        counters = self.counters
        if outcome == 0:
            counters.completed += 1
        elif outcome == 1:
            counters.failed += 1
        else:
            counters.cancelled += 1

    # -- blocking ------------------------------------------------------------------------------

    def acquire_sync(self, level: int, timeout: float | None) -> Hold:
        """Blocking form of :meth:`acquire`, for threads."""
        if self._subscription is None:
            self._subscribe()
        started = time.monotonic()
        deadline = None if timeout is None else started + timeout
        ticket = self._ticket()
        waker = ThreadWaker()
        waiter = self._waiters[ticket] = _RemoteWaiter(waker)
        failure: BackendError | None = None
        state: int | None = None
        try:
            try:
                reply = self._run_sync("acquire", ticket, level, timeout or 0.0)
                state = {1: GRANTED, -1: REFUSED}.get(reply.status)
                while state is None:
                    state = waiter.state
                    if state is not None:
                        break
                    remaining = None if deadline is None else deadline - time.monotonic()
                    if remaining is not None and remaining <= 0:
                        reply = self._run_sync("cancel", ticket)
                        state = GRANTED if reply.status == 1 else (waiter.state or TIMED_OUT)
                        break
                    waker.reset()
                    wait = self.config.recheck_interval
                    waker.wait(wait if remaining is None else min(wait, remaining))
                    if waiter.state is None and (deadline is None or time.monotonic() < deadline):
                        reply = self._run_sync("check", ticket)
                        if reply.status == 1:
                            state = GRANTED
                        elif reply.status == -1:
                            state = waiter.state or TIMED_OUT
            except BackendError as error:
                self._waiters.pop(ticket, None)
                self._orphan(ticket)  # it may still wait (or hold a slot) in Redis
                failure = error
        except BaseException:
            self._waiters.pop(ticket, None)
            self.counters.cancelled += 1
            try:
                self._run_sync("abandon", ticket)
            except BackendError as error:
                self._orphan(ticket)
                self._failed(error)
            raise
        if failure is not None:  # as in acquire: outside the cancellation handler
            self._fallback(failure, level, deadline)
            if self.config.failure_policy is FailurePolicy.FAIL_OPEN:
                return OPEN
            if not self.local.try_acquire(level):
                left = None if deadline is None else max(deadline - time.monotonic(), 0.0)
                wait_local_sync(self.local, self.config.name, level, left)
            return LOCAL
        assert state is not None
        return self._finish(ticket, state, level, started)

    def release_sync(self, hold: Hold, outcome: int) -> None:
        """Blocking form of :meth:`release`."""
        if hold == LOCAL:
            self.local.release(outcome)
            return
        self._count_outcome(outcome)
        if hold == OPEN:
            return
        with self._lock:
            self._held.discard(hold)
        try:
            self._run_sync("release", hold)
        except BackendError as error:
            self._orphan(hold)
            self._failed(error)

    # -- operations ----------------------------------------------------------------------------

    def operate_sync(self, op: str, limit: int | None = None) -> Reply:
        """Run ``clear`` or ``resize`` on the shared state; ``BackendError`` if unreachable."""
        if limit is not None:
            self._limit = limit
            self._settings = self._pack_settings()
        try:
            return self._run_sync(op)
        except BackendError as error:
            self._failed(error)
            raise

    async def operate(self, op: str, limit: int | None = None) -> Reply:
        """Async form of :meth:`operate_sync`."""
        if limit is not None:
            self._limit = limit
            self._settings = self._pack_settings()
        try:
            return await self._run(op)
        except BackendError as error:
            self._failed(error)
            raise

    def sweep_sync(self) -> None:
        """Housekeeping (expired leases and waiters, then grants); an outage only degrades."""
        try:
            self._run_sync("pump")
        except BackendError as error:
            self._failed(error)

    async def sweep(self) -> None:
        """Async form of :meth:`sweep_sync`."""
        try:
            await self._run("pump")
        except BackendError as error:
            self._failed(error)

    def close(self) -> None:
        """Stop renewing leases and listening; held slots expire within ``lease_ttl``."""
        self._stop.set()
        with self._lock:
            subscription, self._subscription = self._subscription, None
            renewer = self._renewer
        if subscription is not None:
            subscription.close()
        if renewer is not None and renewer is not threading.current_thread():
            renewer.join(timeout=1)
