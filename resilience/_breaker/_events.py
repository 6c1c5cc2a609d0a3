"""Breaker events and stats: what listeners receive and what ``stats()`` returns."""

from __future__ import annotations

import enum
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, NamedTuple

from pydantic import BaseModel, ConfigDict

from .._listeners import deliver
from ._config import STATES, CircuitState

if TYPE_CHECKING:
    from ._scripts import Reply

__all__ = ["BreakerEvent", "BreakerEventType", "BreakerListener", "BreakerStats", "Emitter"]

logger = logging.getLogger("resilience.breaker")


class BreakerEventType(str, enum.Enum):
    """What happened."""

    STATE_CHANGE = "state_change"
    SUCCESS = "success"
    FAILURE = "failure"
    IGNORED = "ignored"
    REJECTED = "rejected"
    #: The shared backend failed; the breaker now follows its failure policy.
    DEGRADED = "degraded"
    #: The shared backend answers again.
    RECOVERED = "recovered"


class BreakerEvent(NamedTuple):
    """One event; ``old_state``/``new_state`` are set for state changes."""

    breaker: str
    type: BreakerEventType
    old_state: CircuitState | None = None
    new_state: CircuitState | None = None
    #: The exception of a failure (or ignored call), or the backend error when degraded.
    error: BaseException | None = None
    #: Seconds the call took (successes and failures).
    duration: float | None = None


#: Receives events; one that raises is logged and changes nothing.
BreakerListener = Callable[[BreakerEvent], None]


class Emitter:
    """Delivers events in the order they were queued, outside the breaker's state lock.

    Events are queued while the state lock is held (so the queue order is the transition
    order) and delivered by whichever thread drains first; the drain lock keeps deliveries
    in order across threads.
    """

    __slots__ = ("_drain_lock", "listeners", "pending")

    def __init__(self) -> None:
        self.listeners: list[tuple[BreakerListener, frozenset[BreakerEventType]]] = []
        self.pending: deque[BreakerEvent] = deque()
        self._drain_lock = threading.RLock()

    def drain(self) -> None:
        """Deliver every queued event."""
        with self._drain_lock:
            pending = self.pending
            while pending:
                try:
                    event = pending.popleft()
                except IndexError:  # pragma: no cover - drained by a nested call
                    return
                wanted = [f for f, kinds in self.listeners if not kinds or event.type in kinds]
                deliver(wanted, event, logger, "breaker listener")


class BreakerStats(BaseModel):
    """A frozen snapshot of a breaker (from the last reply of the shared state on Redis)."""

    model_config = ConfigDict(frozen=True)

    name: str
    state: CircuitState
    #: Grows by one at every state change.
    generation: int
    calls: int
    successes: int
    failures: int
    ignored: int
    rejected: int
    slow: int
    #: Failures / calls over the window (over all calls in consecutive mode).
    failure_rate: float
    #: Slow calls / calls over the window (over all calls in consecutive mode).
    slow_call_rate: float
    consecutive_failures: int
    window_calls: int
    #: Probes holding a half-open permit.
    half_open_in_flight: int
    #: Wall-clock time (``time.time()``) the breaker last opened, if ever.
    opened_at: float | None
    #: Seconds until a probe may pass (``0`` unless open; ``inf`` when forced open).
    time_until_half_open: float
    last_failure_type: str | None
    #: Wall-clock time of the last failure, if any.
    last_failure_at: float | None
    #: URL of the backend holding the state.
    backend: str
    #: True while the shared backend is failing and the failure policy decides.
    degraded: bool
    #: Wall-clock time the numbers were read (the last reply from Redis).
    as_of: float


def stats_from_reply(
    name: str, reply: Reply, age: float, backend: str, degraded: bool
) -> BreakerStats:
    """Build a snapshot from a script reply received ``age`` seconds ago."""
    wall = time.time()
    at = wall - age
    calls, failures, slow = reply[5], reply[7], reply[10]
    window_calls = reply[12]
    if window_calls:
        rate, slow_rate = reply[13] / window_calls, reply[14] / window_calls
    else:
        rate = failures / calls if calls else 0.0
        slow_rate = slow / calls if calls else 0.0
    return BreakerStats(
        name=name,
        state=STATES[reply[2]],
        generation=reply[3],
        calls=calls,
        successes=reply[6],
        failures=failures,
        ignored=reply[8],
        rejected=reply[9],
        slow=slow,
        failure_rate=rate,
        slow_call_rate=slow_rate,
        consecutive_failures=reply[11],
        window_calls=window_calls,
        half_open_in_flight=reply[18] if reply[2] == 2 else 0,
        opened_at=at - reply[15] if reply[15] >= 0 else None,
        time_until_half_open=max(reply[4] - age, 0.0),
        last_failure_type=reply[16] or None,
        last_failure_at=at - reply[17] if reply[17] >= 0 else None,
        backend=backend,
        degraded=degraded,
        as_of=at,
    )
