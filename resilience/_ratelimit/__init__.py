"""Rate limiters: token bucket, GCRA, sliding windows and fixed windows on any backend."""

from ._events import RateLimitEvent as RateLimitEvent
from ._events import RateLimitEventType as RateLimitEventType
from ._events import RateLimitListener as RateLimitListener
from ._limiter import RateLimiter as RateLimiter
from ._limits_adapter import LimitsStorageLimiter as LimitsStorageLimiter
from ._policy import PRESETS as PRESETS
from ._policy import RateLimit as RateLimit
from ._policy import RateLimitAlgorithm as RateLimitAlgorithm
from ._result import PolicyStats as PolicyStats
from ._result import PolicyUsage as PolicyUsage
from ._result import RateLimiterStats as RateLimiterStats
from ._result import RateLimitResult as RateLimitResult
from ._result import RateLimitUsage as RateLimitUsage

__all__ = [
    "PRESETS",
    "LimitsStorageLimiter",
    "PolicyStats",
    "PolicyUsage",
    "RateLimit",
    "RateLimitAlgorithm",
    "RateLimitEvent",
    "RateLimitEventType",
    "RateLimitListener",
    "RateLimitResult",
    "RateLimitUsage",
    "RateLimiter",
    "RateLimiterStats",
]
