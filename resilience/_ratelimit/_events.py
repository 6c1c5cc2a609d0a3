"""Rate-limiter events: the backend went away (degraded) or came back (recovered)."""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable
from typing import NamedTuple

from .._listeners import deliver

__all__ = ["RateLimitEvent", "RateLimitEventType", "RateLimitListener", "emit"]

logger = logging.getLogger("resilience.ratelimit")


class RateLimitEventType(str, enum.Enum):
    """What happened to a limiter."""

    #: The backend failed; decisions now follow the failure policy.
    DEGRADED = "degraded"
    #: The backend answers again.
    RECOVERED = "recovered"


class RateLimitEvent(NamedTuple):
    """One event: the limiter's name, what happened, and the backend error when degraded."""

    limiter: str
    type: RateLimitEventType
    error: BaseException | None = None


#: Receives events; one that raises is logged and changes nothing.
RateLimitListener = Callable[[RateLimitEvent], None]


def emit(listeners: list[RateLimitListener], event: RateLimitEvent) -> None:
    """Deliver ``event`` to every listener; a raising listener is logged and ignored."""
    deliver(listeners, event, logger, "rate-limit listener")
