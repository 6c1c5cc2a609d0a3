"""Events a queue emits to its listeners: the shared backend went away, or came back."""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable
from typing import NamedTuple

from .._listeners import deliver

__all__ = ["QueueEvent", "QueueEventType", "QueueListener", "emit"]

logger = logging.getLogger("resilience.queue")


class QueueEventType(str, enum.Enum):
    """What happened to a queue."""

    #: The shared backend failed; slots now follow the failure policy.
    DEGRADED = "degraded"
    #: The shared backend answers again; the global gate is back.
    RECOVERED = "recovered"


class QueueEvent(NamedTuple):
    """One event: the queue's name, what happened, and the backend error when degraded."""

    queue: str
    type: QueueEventType
    error: BaseException | None = None


#: Receives events; one that raises is logged and changes nothing.
QueueListener = Callable[[QueueEvent], None]


def emit(listeners: list[QueueListener], event: QueueEvent) -> None:
    """Deliver ``event`` to every listener; a raising listener is logged and ignored."""
    deliver(listeners, event, logger, "queue listener")
