"""The per-call decision object and the stats snapshots.

:class:`RateLimitResult` is built on every hit, so it is a plain ``__slots__`` object wrapping
the script's reply tuple (no pydantic, no copying); its fields are read-only properties.
"""

from __future__ import annotations

import math
from typing import Any

from pydantic import BaseModel, ConfigDict

from ._policy import RateLimit

__all__ = [
    "FAIL_CLOSED_REASON",
    "FAIL_OPEN_REASON",
    "PolicyStats",
    "PolicyUsage",
    "RateLimitResult",
    "RateLimitUsage",
    "RateLimiterStats",
]

#: ``reason`` of decisions taken without the backend.
FAIL_OPEN_REASON = "backend unavailable; admitted by the fail_open policy"
FAIL_CLOSED_REASON = "backend unavailable; refused by the fail_closed policy"


class RateLimitResult:
    """What a limiter decided for one hit (or a peek).

    - ``allowed``: whether the hit was admitted (and consumed);
    - ``limit``: the capacity of the deciding policy (burst for the bucket algorithms);
    - ``remaining``: hits of cost 1 still admissible under that policy after this decision;
    - ``reset_after``: seconds until that policy is back to its full capacity;
    - ``retry_after``: seconds to wait before the same hit would pass (``0.0`` when allowed,
      ``inf`` when it can never pass: cost above capacity);
    - ``policy``: the :class:`RateLimit` that decided: the one that refused with the longest
      wait, or, when admitted, the one with the fewest hits left;
    - ``key``: the user key; ``reason``: why it was refused or decided without the backend.
    """

    __slots__ = ("_policies", "_reply", "key")

    #: Why the hit was refused without a count, or decided without the backend.
    reason: str | None = None

    def __init__(
        self, reply: tuple[Any, ...], policies: tuple[RateLimit, ...], key: object
    ) -> None:
        self._reply = reply
        self._policies = policies
        self.key = key

    @staticmethod
    def explained(
        reply: tuple[Any, ...], policies: tuple[RateLimit, ...], key: object, reason: str
    ) -> RateLimitResult:
        """A result carrying a ``reason`` (cost above capacity, backend failure)."""
        return _ExplainedResult(reply, policies, key, reason)

    @property
    def allowed(self) -> bool:
        """Whether the hit was admitted."""
        return bool(self._reply[0] == 1)

    def __bool__(self) -> bool:
        return bool(self._reply[0] == 1)

    @property
    def policy(self) -> RateLimit:
        """The policy that decided."""
        policy: RateLimit = self._policies[self._reply[1] - 1]
        return policy

    @property
    def limit(self) -> int:
        """Capacity of the deciding policy."""
        return self.policy.capacity

    @property
    def remaining(self) -> int:
        """Hits still admissible under the deciding policy."""
        # The memory cores return the unfloored token level; Redis returns the floor.
        return math.floor(float(self._reply[2]) + 1e-9)

    @property
    def reset_after(self) -> float:
        """Seconds until the deciding policy is back to full capacity."""
        return float(self._reply[3])

    @property
    def retry_after(self) -> float:
        """Seconds until this hit would be admitted (``0.0`` if it was)."""
        return float(self._reply[4])

    @property
    def degraded(self) -> bool:
        """Whether the decision was taken without the backend (fail_open / fail_closed)."""
        return self.reason is FAIL_OPEN_REASON or self.reason is FAIL_CLOSED_REASON

    def headers(self) -> dict[str, str]:
        """``RateLimit-*`` / ``X-RateLimit-*`` headers for an HTTP response (and Retry-After)."""
        headers = {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(max(self.remaining, 0)),
            "X-RateLimit-Reset": str(math.ceil(self.reset_after)),
        }
        if not self.allowed and math.isfinite(self.retry_after):
            headers["Retry-After"] = str(math.ceil(self.retry_after))
        return headers

    def __repr__(self) -> str:
        return (
            f"RateLimitResult(allowed={self.allowed}, limit={self.limit}, "
            f"remaining={self.remaining}, reset_after={self.reset_after:.6g}, "
            f"retry_after={self.retry_after:.6g}, policy={str(self.policy)!r}"
            + (f", reason={self.reason!r})" if self.reason else ")")
        )


class _ExplainedResult(RateLimitResult):
    __slots__ = ("reason",)

    def __init__(
        self, reply: tuple[Any, ...], policies: tuple[RateLimit, ...], key: object, reason: str
    ) -> None:
        super().__init__(reply, policies, key)
        self.reason = reason


class PolicyStats(BaseModel):
    """Counts for one policy of a limiter since it was created."""

    model_config = ConfigDict(frozen=True)

    limit: str
    #: Hits admitted (an admitted hit is admitted by every policy: all or nothing).
    allowed: int
    #: Hits this policy refused (it was the deciding, longest-wait policy).
    rejected: int


class RateLimiterStats(BaseModel):
    """A frozen snapshot of a limiter's counters."""

    model_config = ConfigDict(frozen=True)

    name: str
    algorithm: str
    backend: str
    failure_policy: str
    policies: tuple[PolicyStats, ...]
    allowed: int
    rejected: int
    #: Decisions the backend could not take (each decided by the failure policy).
    backend_failures: int
    #: Whether the last decision was taken without the backend.
    degraded: bool


class PolicyUsage(BaseModel):
    """How much of one policy a key has used right now."""

    model_config = ConfigDict(frozen=True)

    limit: str
    capacity: int
    used: int
    remaining: int


class RateLimitUsage(BaseModel):
    """Current usage of one key under every policy of a limiter (read without consuming)."""

    model_config = ConfigDict(frozen=True)

    key: str
    policies: tuple[PolicyUsage, ...]
