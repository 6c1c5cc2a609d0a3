"""Every error the library raises.

The tree::

    ResilienceError
    ├── ConfigurationError(ValueError)        bad settings, unknown backend URL scheme
    ├── BackendError                          a backend call failed (driver error wrapped)
    │   └── BackendUnavailable(ConnectionError)   the backend cannot be reached, or timed out
    ├── CircuitOpenError                      a circuit breaker refused the call
    │   └── CircuitHalfOpenError              ...because its half-open probe permits are taken
    ├── RateLimitExceeded                     a rate limiter refused the hit
    ├── QueueFull                             the priority queue refused a newcomer
    │   └── QueueCleared                      the queue was cleared while the request waited
    └── QueueTimeout(TimeoutError)            the wait for a queue slot ran out

Catch :class:`ResilienceError` to handle everything the library itself decides; the builtin
bases let code that already catches ``ValueError``, ``ConnectionError`` or ``TimeoutError`` keep
working.
"""

from __future__ import annotations

__all__ = [
    "BackendError",
    "BackendUnavailable",
    "CircuitHalfOpenError",
    "CircuitOpenError",
    "ConfigurationError",
    "QueueCleared",
    "QueueFull",
    "QueueTimeout",
    "RateLimitExceeded",
    "ResilienceError",
]


class ResilienceError(Exception):
    """Root of every error raised by ``resilience``."""


class ConfigurationError(ResilienceError, ValueError):
    """A setting is invalid: raised at construction, never later."""


class BackendError(ResilienceError):
    """A backend operation failed; the driver's exception is chained as ``__cause__``."""

    def __init__(self, message: str, *, backend: str = "") -> None:
        super().__init__(message)
        #: The URL (without password) of the backend that failed.
        self.backend = backend


class BackendUnavailable(BackendError, ConnectionError):
    """The backend could not be reached, or did not answer within its timeout."""


class CircuitOpenError(ResilienceError):
    """A circuit breaker refused a call.

    ``name`` is the breaker's name and ``retry_after`` the seconds until it will let a probe
    through (``0.0`` when it is half-open and its probe permits are taken).
    """

    def __init__(self, name: str, retry_after: float, message: str | None = None) -> None:
        self.name = name
        self.retry_after = retry_after
        super().__init__(message or f"circuit {name!r} is open; next probe in {retry_after:.3f}s")


class CircuitHalfOpenError(CircuitOpenError):
    """The breaker is half-open and all its probe permits are taken (``retry_after`` is 0)."""


class RateLimitExceeded(ResilienceError):
    """A rate limiter refused a hit; ``retry_after`` is the seconds until it would pass.

    ``result`` is the limiter's decision (with limit, remaining and reset) when one was made.
    """

    def __init__(self, message: str, *, retry_after: float, result: object = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.result = result


class QueueFull(ResilienceError):
    """The priority queue refused a request because its queue (or its priority's share) is full."""


class QueueCleared(QueueFull):
    """A waiting request was failed by ``PriorityQueue.clear()`` (an operator's decision)."""


class QueueTimeout(ResilienceError, TimeoutError):
    """A request did not get a queue slot (or finish) within its timeout."""
