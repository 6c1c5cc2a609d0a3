"""A breaker whose state is shared on a backend (Redis): one script per step, a local view.

:class:`RemoteEngine` runs the rules of ``_core.py`` as one script per step on the backend and
keeps a :class:`View` of the shared state, refreshed by every reply and by the transitions
published on the breaker's channel. While the view says CLOSED a call costs one round trip (the
record).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from typing import Any

import anyio

from .._backends._base import Backend, BackendHealth
from .._exceptions import BackendError, BackendUnavailable, CircuitOpenError
from .._policy import FailurePolicy, PolicyRunner
from . import _core
from ._engines import change_event, rejection
from ._events import BreakerEvent, BreakerEventType, Emitter
from ._scripts import STEP, Reply, state_reply

__all__ = ["UNKNOWN", "VIEW_TRUST", "RemoteEngine", "View"]

logger = logging.getLogger("resilience.breaker")

#: A view state meaning "not known here": the next call asks the backend.
UNKNOWN = -1
#: Seconds a closed view is trusted without news (a reply or a transition message): an idle
#: process asks first (two round trips) rather than trusting a view that pub/sub may have
#: failed to update.
VIEW_TRUST = 1.0


def _publish_view(view: View, state: int, gen: int) -> None:
    """Store a new ``(state, gen)`` so the lock-free reader never pairs a new gen with an old state.

    The front door reads ``view.gen`` and then ``view.st`` without the lock. Writing the state
    as UNKNOWN first, then the generation, then the state means a reader that sees the new
    generation sees UNKNOWN or the new state (it asks the backend), never the old CLOSED: that
    pairing would let a call through an OPEN or HALF_OPEN breaker without a permit, under a
    generation its record would match.
    """
    view.st = UNKNOWN
    view.gen = gen
    view.st = view.last = state


def _progress(reply: Reply) -> int:
    return reply[5] + reply[8] + reply[9]


class View:
    """What this process knows of a shared state: the last reply and its generation."""

    __slots__ = ("at", "confirmed", "gen", "last", "reply", "retry_at", "st")

    def __init__(self) -> None:
        #: The state the fast path trusts (UNKNOWN: ask the backend first).
        self.st = UNKNOWN
        #: The last state known, kept when ``st`` is marked unknown.
        self.last = UNKNOWN
        self.gen = -1
        self.reply: Reply | None = None
        self.at = 0.0
        #: When a reply or a transition message last confirmed ``st`` (monotonic time).
        self.confirmed = 0.0
        #: When a probe may pass, from the last transition message (monotonic time).
        self.retry_at = 0.0


class RemoteEngine:
    """State in a shared backend; one script per step, a local view for the closed fast path."""

    is_local = False
    clock = staticmethod(time.monotonic)
    #: Never lock-free: every outcome is a script call.
    fast = None

    def __init__(
        self, name: str, backend: Backend, emitter: Emitter, policy: FailurePolicy
    ) -> None:
        self.name = name
        self.backend = backend
        self.emitter = emitter
        self.runner = PolicyRunner(backend, policy)
        self.keys = [backend.key("breaker", name, "state")]
        self.channel = backend.channel("breaker", name)
        self.lock = threading.Lock()
        self.remote = View()
        #: The view while degraded: the local fallback's (policy ``local``) or always unknown.
        self.fallback = View()
        self.view = self.remote
        self.degraded = False
        self.last_error: BaseException | None = None
        self.params: _core.Params
        self.head: list[Any] = []
        self._subscription = backend.subscribe(self.channel, self._on_message)
        backend.status.add_listener(self._on_status)

    def _on_status(self, health: BackendHealth) -> None:
        # Another call on this backend saw it go down: stop trusting the closed view at once.
        if not health.available:
            error = BackendUnavailable(health.last_error or "unavailable", backend=health.url)
            self._set_degraded(True, error)
            if self.emitter.pending:  # tell listeners now, not at this breaker's next call
                self.emitter.drain()

    def trusted(self, view: View) -> bool:
        """Whether a closed view was confirmed recently enough to skip the acquire step."""
        return time.monotonic() - view.confirmed < VIEW_TRUST

    def set_params(self, params: _core.Params) -> None:
        """Send these parameters (the caller's config is authoritative) from now on."""
        self.params = params
        self.head = [*params.args(), self.channel]

    # -- replies and the view --------------------------------------------------------------

    def _observe(self, view: View, reply: Reply) -> None:
        gen, state = reply[3], reply[2]
        with self.lock:
            if gen < view.gen:
                return  # an older reply overtaken by a newer one
            view.confirmed = time.monotonic()
            if gen > view.gen or view.st == UNKNOWN:
                old = view.last if view.last >= 0 else reply[1]
                newer = gen > view.gen
                via = reply[1]  # the state this step changed from, if it changed one
                if via >= 0 and old >= 0 and via != old and gen == view.gen + 2:
                    # One transition made elsewhere was missed, and this step made the next:
                    # both are known, so report both, in order.
                    self.emitter.pending.append(change_event(self.name, old, via))
                    old = via
                _publish_view(view, state, gen)
                if newer and old >= 0 and old != state:
                    self.emitter.pending.append(change_event(self.name, old, state))
            last = view.reply
            # Counters only grow within a generation: keep the most advanced reply.
            if last is None or last[3] != gen or _progress(reply) >= _progress(last):
                view.reply = reply
                view.at = time.monotonic()

    def _on_message(self, message: bytes | None) -> None:
        view = self.remote
        if message is None:  # messages may have been missed: ask on the next call
            with self.lock:
                view.st = UNKNOWN
            return
        gen_text, state_text, retry_text = message.decode().split(":")
        gen, state = int(gen_text), int(state_text)
        with self.lock:
            if gen > view.gen:
                old = view.last
                _publish_view(view, state, gen)
                view.retry_at = time.monotonic() + float(retry_text)
                view.confirmed = time.monotonic()
                if old >= 0 and old != state:
                    self.emitter.pending.append(change_event(self.name, old, state))
        if self.emitter.pending:
            self.emitter.drain()

    def _set_degraded(self, degraded: bool, error: BaseException | None) -> None:
        with self.lock:
            if degraded == self.degraded:
                return
            self.degraded = degraded
            if degraded:
                if self.runner.policy is FailurePolicy.LOCAL:
                    self._seed_local()
                self.fallback = View()
                self.view = self.fallback
                self.last_error = error
                event = BreakerEvent(self.name, BreakerEventType.DEGRADED, error=error)
            else:
                self.remote.st = UNKNOWN
                self.view = self.remote
                event = BreakerEvent(self.name, BreakerEventType.RECOVERED)
            self.emitter.pending.append(event)
        if degraded:
            logger.warning(
                "breaker %r: backend %s failed (%s); policy %s applies",
                self.name,
                self.backend.url,
                error,
                self.runner.policy.value,
            )
        else:
            logger.warning("breaker %r: backend %s is back", self.name, self.backend.url)

    def _seed_local(self) -> None:
        # Under the lock: the local fallback goes on from the last shared state known here, so
        # an outage does not reopen the gate of a breaker the fleet had opened.
        reply, age = self._latest(self.remote)
        if reply is None:
            return
        opened_age = reply[15] + age if reply[15] >= 0 else -1.0
        retry = max(reply[4] - age, 0.0)
        args = ["seed", *self.head, reply[2], repr(retry), reply[11], repr(opened_age)]
        self.runner.local.run_sync(STEP, self.keys, args)

    def _succeeded(self, reply: Reply) -> Reply:
        self.runner.degraded = False
        if self.degraded:
            self._set_degraded(False, None)
        self._observe(self.remote, reply)
        if reply[1] >= 0:
            # This step changed the state. Its event may be in delivery on the pub/sub
            # thread (the message can beat the reply): wait for it, so a caller's events
            # are delivered by the time its call returns.
            self.emitter.drain()
        return reply

    def _failed(self, error: BackendError, args: list[Any]) -> Reply | None:
        runner = self.runner
        runner.degraded = True
        runner.fallbacks += 1
        self._set_degraded(True, error)
        if runner.policy is not FailurePolicy.LOCAL:
            return None
        reply: Reply = runner.local.run_sync(STEP, self.keys, args)
        self._observe(self.fallback, reply)
        return reply

    def _run_sync(self, args: list[Any]) -> Reply | None:
        try:
            reply: Reply = self.backend.run_sync(STEP, self.keys, args)
        except BackendError as error:
            return self._failed(error, args)
        return self._succeeded(reply)

    async def _run(self, args: list[Any]) -> Reply | None:
        try:
            with anyio.CancelScope(shield=True):
                reply: Reply = await self.backend.run(STEP, self.keys, args)
        except BackendError as error:
            return self._failed(error, args)
        return self._succeeded(reply)

    async def _run_to_end(self, args: list[Any]) -> tuple[Reply | None, BaseException | None]:
        """Run a step that holds or may grant a probe permit to its end, whatever cancels.

        anyio's shield in :meth:`_run` covers anyio and trio cancellation, but asyncio's own
        (``task.cancel()``, ``asyncio.wait_for``, ``asyncio.timeout``) goes through it: the
        step's reply would be lost after the script ran (a granted permit leaks until its
        lease) or the script would never run (a probe's outcome and permit are lost). On
        asyncio the step runs in its own task; a cancellation of the caller waits for it and
        is returned, for the caller to re-raise once the permit is settled. Only admissions
        and probe records pay for the task: the closed path keeps :meth:`_run`.
        """
        try:
            asyncio.get_running_loop()
        except RuntimeError:  # trio: the shield in _run holds
            return await self._run(args), None
        task = asyncio.ensure_future(self._run(args))
        cancelled: BaseException | None = None
        with anyio.CancelScope(shield=True):  # anyio's cancellation: delivered after, as before
            while not task.done():
                try:
                    await asyncio.wait((task,))
                except asyncio.CancelledError as error:
                    cancelled = error
        return task.result(), cancelled

    # -- steps -----------------------------------------------------------------------------

    def _admitted(self, reply: Reply | None) -> tuple[int, int]:
        if reply is None:
            if self.runner.policy is FailurePolicy.FAIL_OPEN:
                return -1, 0  # admitted, nothing to record
            raise CircuitOpenError(
                self.name,
                self.backend.status.probe_interval,
                f"circuit {self.name!r}: backend down and policy is fail_closed",
            )
        result = reply[0]
        if result < 0:
            raise rejection(self.name, result, reply[4], self.params.half_open)
        return reply[3], result

    def admit_sync(self) -> tuple[int, int]:
        """Acquire (one round trip); return ``(gen, permit)`` or raise the rejection."""
        reply = self._run_sync(["acquire", *self.head])
        if self.emitter.pending:
            self.emitter.drain()
        return self._admitted(reply)

    async def admit(self) -> tuple[int, int]:
        """Acquire (one round trip); return ``(gen, permit)`` or raise the rejection."""
        reply, cancelled = await self._run_to_end(["acquire", *self.head])
        if self.emitter.pending:
            self.emitter.drain()
        if cancelled is not None:
            if reply is not None and reply[0] > 0:  # give the permit back before going
                await self._run_to_end(
                    ["record", *self.head, reply[3], reply[0], _core.CANCELLED, "0.0", ""]
                )
            raise cancelled
        return self._admitted(reply)

    def finish_sync(
        self,
        gen: int,
        permit: int,
        outcome: int,
        duration: float,
        failure_type: str,
        now: float | None = None,
    ) -> None:
        """Record an outcome (one round trip); its reply refreshes the view."""
        if gen >= 0:
            self._run_sync(
                ["record", *self.head, gen, permit, outcome, repr(duration), failure_type]
            )

    async def finish(
        self, gen: int, permit: int, outcome: int, duration: float, failure_type: str
    ) -> None:
        """Record an outcome (one round trip, shielded from cancellation).

        A probe's record runs to its end even through asyncio's native cancellation (the
        cancellation is re-raised after it); a closed-state record interrupted that way is
        lost (one uncounted outcome, no permit involved).
        """
        if gen < 0:
            return
        args = ["record", *self.head, gen, permit, outcome, repr(duration), failure_type]
        if not permit:
            await self._run(args)
            return
        _, cancelled = await self._run_to_end(args)
        if cancelled is not None:
            raise cancelled

    def admin_sync(self, op: int) -> Reply:
        """Apply an operator action to the shared state."""
        reply = self._run_sync(["admin", *self.head, op])
        if reply is None:
            raise self._down()
        return reply

    async def admin(self, op: int) -> Reply:
        """Apply an operator action to the shared state."""
        reply = await self._run(["admin", *self.head, op])
        if reply is None:
            raise self._down()
        return reply

    def _down(self) -> BackendError:
        return BackendError(
            f"breaker {self.name!r}: backend unavailable ({self.last_error})",
            backend=self.backend.url,
        )

    def refresh_sync(self) -> None:
        """Read the shared state (one round trip) into the view."""
        self._run_sync(["status", *self.head])

    async def refresh(self) -> None:
        """Read the shared state (one round trip) into the view."""
        await self._run(["status", *self.head])

    def snapshot(self) -> tuple[Reply, float, bool]:
        """The last reply known here, its age in seconds, and whether degraded."""
        with self.lock:
            view = self.view
            reply, age = self._latest(view)
        if reply is None:
            blank = state_reply(_core.State(0.0), 0.0, 0, _core.NO_CHANGE)
            reply = (*blank[:2], max(view.last, 0), view.gen, *blank[4:])
            return reply, 0.0, self.degraded
        return reply, age, self.degraded

    @staticmethod
    def _latest(view: View) -> tuple[Reply | None, float]:
        # Under the lock: the view's last reply and its age in seconds.
        reply, at = view.reply, view.at
        now = time.monotonic()
        if reply is not None and reply[3] < view.gen:
            # A transition message is newer than the last reply: its state wins.
            retry = max(view.retry_at - now, 0.0) + (now - at)
            reply = (*reply[:2], view.last, view.gen, retry, *reply[5:])
        return reply, now - at

    def close(self) -> None:
        """Stop listening to transitions and to the backend's status; idempotent."""
        self._subscription.close()
        with contextlib.suppress(ValueError):
            self.backend.status.remove_listener(self._on_status)
