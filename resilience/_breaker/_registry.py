"""Breakers by name, for the health endpoint, the CLI and ``CircuitBreaker.get``.

The registry holds breakers weakly: a breaker lives as long as user code (a decorated function,
a module global) holds it, and a new breaker with a name replaces the old one.
"""

from __future__ import annotations

import threading
import weakref
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._breaker import CircuitBreaker

__all__ = ["breakers", "get", "register", "unregister"]

_lock = threading.Lock()
_breakers: weakref.WeakValueDictionary[str, CircuitBreaker] = weakref.WeakValueDictionary()


def register(breaker: CircuitBreaker) -> None:
    """Make ``breaker`` the one known under its name."""
    with _lock:
        _breakers[breaker.name] = breaker


def unregister(breaker: CircuitBreaker) -> None:
    """Forget ``breaker`` if it is still the one known under its name."""
    with _lock:
        if _breakers.get(breaker.name) is breaker:
            del _breakers[breaker.name]


def get(name: str) -> CircuitBreaker:
    """The live breaker named ``name``; ``KeyError`` if there is none."""
    with _lock:
        breaker = _breakers.get(name)
    if breaker is None:
        raise KeyError(f"no circuit breaker named {name!r}")
    return breaker


def breakers() -> dict[str, CircuitBreaker]:
    """Every live breaker, by name (sorted)."""
    with _lock:
        return dict(sorted(_breakers.items()))
