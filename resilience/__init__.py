"""Circuit breakers, rate limiters and a priority connection queue.

They share an in-memory or Redis backend and report their stats as frozen snapshots and
events. Every public name is re-exported here; the implementation lives in private modules.
"""

from ._backends import backend_from_url as backend_from_url
from ._backends import default_backend as default_backend
from ._backends._base import Backend as Backend
from ._backends._base import BackendHealth as BackendHealth
from ._backends._base import Script as Script
from ._backends._memory import MemoryBackend as MemoryBackend
from ._backends._memory import MemoryStore as MemoryStore
from ._breaker import BreakerConfig as BreakerConfig
from ._breaker import BreakerEvent as BreakerEvent
from ._breaker import BreakerEventType as BreakerEventType
from ._breaker import BreakerListener as BreakerListener
from ._breaker import BreakerStats as BreakerStats
from ._breaker import CircuitBreaker as CircuitBreaker
from ._breaker import CircuitState as CircuitState
from ._breaker import breakers as breakers
from ._clock import Clock as Clock
from ._clock import FakeClock as FakeClock
from ._exceptions import BackendError as BackendError
from ._exceptions import BackendUnavailable as BackendUnavailable
from ._exceptions import CircuitHalfOpenError as CircuitHalfOpenError
from ._exceptions import CircuitOpenError as CircuitOpenError
from ._exceptions import ConfigurationError as ConfigurationError
from ._exceptions import QueueCleared as QueueCleared
from ._exceptions import QueueFull as QueueFull
from ._exceptions import QueueTimeout as QueueTimeout
from ._exceptions import RateLimitExceeded as RateLimitExceeded
from ._exceptions import ResilienceError as ResilienceError
from ._policy import FailurePolicy as FailurePolicy
from ._queue import Priority as Priority
from ._queue import PriorityQueue as PriorityQueue
from ._queue import QueueEvent as QueueEvent
from ._queue import QueueEventType as QueueEventType
from ._queue import QueueListener as QueueListener
from ._queue import QueueSlot as QueueSlot
from ._queue import QueueStats as QueueStats
from ._queue import SyncQueueSlot as SyncQueueSlot
from ._queue import WaitStats as WaitStats
from ._ratelimit import LimitsStorageLimiter as LimitsStorageLimiter
from ._ratelimit import PolicyStats as PolicyStats
from ._ratelimit import PolicyUsage as PolicyUsage
from ._ratelimit import RateLimit as RateLimit
from ._ratelimit import RateLimitAlgorithm as RateLimitAlgorithm
from ._ratelimit import RateLimiter as RateLimiter
from ._ratelimit import RateLimiterStats as RateLimiterStats
from ._ratelimit import RateLimitEvent as RateLimitEvent
from ._ratelimit import RateLimitEventType as RateLimitEventType
from ._ratelimit import RateLimitListener as RateLimitListener
from ._ratelimit import RateLimitResult as RateLimitResult
from ._ratelimit import RateLimitUsage as RateLimitUsage
from ._version import __version__ as __version__

__all__ = (
    "Backend",
    "BackendError",
    "BackendHealth",
    "BackendUnavailable",
    "BreakerConfig",
    "BreakerEvent",
    "BreakerEventType",
    "BreakerListener",
    "BreakerStats",
    "CircuitBreaker",
    "CircuitHalfOpenError",
    "CircuitOpenError",
    "CircuitState",
    "Clock",
    "ConfigurationError",
    "FailurePolicy",
    "FakeClock",
    "LimitsStorageLimiter",
    "MemoryBackend",
    "MemoryStore",
    "PolicyStats",
    "PolicyUsage",
    "Priority",
    "PriorityQueue",
    "QueueCleared",
    "QueueEvent",
    "QueueEventType",
    "QueueFull",
    "QueueListener",
    "QueueSlot",
    "QueueStats",
    "QueueTimeout",
    "RateLimit",
    "RateLimitAlgorithm",
    "RateLimitEvent",
    "RateLimitEventType",
    "RateLimitExceeded",
    "RateLimitListener",
    "RateLimitResult",
    "RateLimitUsage",
    "RateLimiter",
    "RateLimiterStats",
    "ResilienceError",
    "Script",
    "SyncQueueSlot",
    "WaitStats",
    "__version__",
    "backend_from_url",
    "breakers",
    "default_backend",
)
