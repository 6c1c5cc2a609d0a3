"""The circuit breaker: a pure state machine (``_core``), one Redis script per step, front doors."""

from ._breaker import CircuitBreaker as CircuitBreaker
from ._config import BreakerConfig as BreakerConfig
from ._config import CircuitState as CircuitState
from ._events import BreakerEvent as BreakerEvent
from ._events import BreakerEventType as BreakerEventType
from ._events import BreakerListener as BreakerListener
from ._events import BreakerStats as BreakerStats
from ._registry import breakers as breakers

__all__ = [
    "BreakerConfig",
    "BreakerEvent",
    "BreakerEventType",
    "BreakerListener",
    "BreakerStats",
    "CircuitBreaker",
    "CircuitState",
    "breakers",
]
