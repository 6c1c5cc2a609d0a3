"""Where a breaker's state lives: in this process (here), or shared on Redis (``_remote.py``).

Both engines expose ``view`` (an object with ``st`` and ``gen``: the state the front door reads
to take the fast path), ``clock`` (measures call durations), ``admit_sync``/``admit`` and
``finish_sync``/``finish``. The rules are the pure functions of ``_core.py``:

- :class:`MemoryEngine` keeps a :class:`~._core.State` in the breaker and runs them directly
  under a lock (no script dispatch, no keys, no allocation on the closed path);
- :class:`RemoteEngine` runs them as one script per step on the backend and keeps a local view
  of the shared state, refreshed by every reply and by the transitions published on the
  breaker's channel. While the view says CLOSED a call costs one round trip (the record).
"""

from __future__ import annotations

import itertools
import logging
import sys
import threading
from collections.abc import Iterator
from typing import Any

from .._backends._memory import MemoryBackend
from .._exceptions import (
    CircuitHalfOpenError,
    CircuitOpenError,
)
from . import _core
from ._config import STATES
from ._events import BreakerEvent, BreakerEventType, Emitter
from ._scripts import Reply, state_reply

__all__ = ["MemoryEngine", "change_event", "rejection"]

logger = logging.getLogger("resilience.breaker")

_CHANGE = BreakerEventType.STATE_CHANGE


def rejection(name: str, result: int, retry_after: float, half_open: int) -> CircuitOpenError:
    """The error for an acquire result below zero."""
    if result == _core.REJECT_FULL:
        return CircuitHalfOpenError(
            name,
            0.0,
            f"circuit {name!r} is half-open and its {half_open} probe permit(s) are taken",
        )
    if result == _core.REJECT_FORCED:
        return CircuitOpenError(name, retry_after, f"circuit {name!r} is forced open")
    return CircuitOpenError(name, retry_after)


def change_event(name: str, old: int, new: int) -> BreakerEvent:
    """A state-change event."""
    return BreakerEvent(name, _CHANGE, STATES[old], STATES[new])


#: ``next()`` on an ``itertools.count`` is atomic only while the GIL serialises C calls.
_ATOMIC_NEXT = getattr(sys, "_is_gil_enabled", lambda: True)()


class MemoryEngine:
    """State in this breaker object, decided under its lock.

    While CLOSED in consecutive-failure mode, a success only resets the consecutive count and
    bumps two counters. Such successes are tallied lock-free on an ``itertools.count`` that
    belongs to the current generation (``fast``), and applied to the state through
    :func:`_core.record` (with ``n``) before anything else reads or changes it under the lock.
    That linearises every tallied success before the next locked step, and a success tallied
    on the count of an older generation is dropped, exactly like a stale outcome.
    """

    is_local = True

    def __init__(self, name: str, backend: MemoryBackend, emitter: Emitter) -> None:
        self.name = name
        self.backend = backend
        self.clock = backend.clock
        self.emitter = emitter
        self.lock = threading.Lock()
        self.st = _core.State(self.clock())
        self.view: Any = self.st
        #: ``(gen, tally)`` while successes may be tallied lock-free, else ``None``.
        self.fast: tuple[int, Iterator[int]] | None = None
        self._applied = 0
        self.params: _core.Params

    def trusted(self, view: Any) -> bool:
        """The state is here: always current."""
        return True

    def set_params(self, params: _core.Params) -> None:
        """Use new parameters from the next call on."""
        with self.lock:
            self._flush(self.clock())
            self.params = params
            self._refast()

    def _refast(self) -> None:
        # Under the lock, after any change of state or parameters.
        st, p = self.st, self.params
        if _ATOMIC_NEXT and st.st == _core.CLOSED and p.kind == _core.CONSECUTIVE and not p.slow:
            if self.fast is None or self.fast[0] != st.gen:
                self._applied = 0
                self.fast = (st.gen, itertools.count())
        else:
            self.fast = None

    def _flush(self, now: float) -> None:
        # Under the lock: apply the successes tallied since the last flush.
        fast = self.fast
        if fast is None:
            return
        value = next(fast[1])
        count = value - self._applied
        self._applied = value + 1
        if count:
            _core.record(self.st, self.params, now, fast[0], 0, _core.SUCCESS, 0.0, "", count)

    def admit_sync(self) -> tuple[int, int]:
        """Acquire; return ``(gen, permit)`` or raise the rejection."""
        now = self.clock()
        with self.lock:
            st = self.st
            self._flush(now)
            gen0 = st.gen
            result = _core.acquire(st, self.params, now)
            gen = st.gen
            if gen != gen0:
                self.emitter.pending.append(change_event(self.name, _core.OPEN, st.st))
                self._refast()
            if result < 0:
                retry = _core.retry_after(st, now)
        if self.emitter.pending:
            self.emitter.drain()
        if result < 0:
            raise rejection(self.name, result, retry, self.params.half_open)
        return gen, result

    async def admit(self) -> tuple[int, int]:
        """Same as :meth:`admit_sync` (no I/O)."""
        return self.admit_sync()

    def finish_sync(
        self,
        gen: int,
        permit: int,
        outcome: int,
        duration: float,
        failure_type: str,
        now: float | None = None,
    ) -> None:
        """Record an outcome (``now``: a clock reading the caller already took)."""
        if now is None:
            now = self.clock()
        lock = self.lock
        lock.acquire()  # cheaper than ``with`` on the per-call path
        try:
            if self.fast is not None:
                self._flush(now)
            old = _core.record(
                self.st, self.params, now, gen, permit, outcome, duration, failure_type
            )
            if old >= 0:
                self.emitter.pending.append(change_event(self.name, old, self.st.st))
                self._refast()
        finally:
            lock.release()

    async def finish(
        self, gen: int, permit: int, outcome: int, duration: float, failure_type: str
    ) -> None:
        """Same as :meth:`finish_sync` (no I/O)."""
        self.finish_sync(gen, permit, outcome, duration, failure_type)

    def admin_sync(self, op: int) -> Reply:
        """Apply an operator action."""
        now = self.clock()
        with self.lock:
            self._flush(now)
            old = _core.admin(self.st, now, op)
            if old != self.st.st:  # reset() of a closed breaker is no state change
                self.emitter.pending.append(change_event(self.name, old, self.st.st))
            self._refast()
            return state_reply(self.st, now, 0, old)

    async def admin(self, op: int) -> Reply:
        """Same as :meth:`admin_sync`."""
        return self.admin_sync(op)

    def snapshot(self) -> tuple[Reply, float, bool]:
        """The current state as a reply, its age (0) and whether degraded (never)."""
        now = self.clock()
        with self.lock:
            self._flush(now)
            return state_reply(self.st, now, 0, _core.NO_CHANGE), 0.0, False

    def refresh_sync(self) -> None:
        """Nothing to refresh: the state is here."""

    async def refresh(self) -> None:
        """Nothing to refresh: the state is here."""

    def close(self) -> None:
        """Nothing to release."""
