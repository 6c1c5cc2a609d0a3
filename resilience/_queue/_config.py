"""The queue's settings and its priority levels, validated once at construction."""

from __future__ import annotations

import enum
import itertools
import math

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .._exceptions import ConfigurationError
from .._policy import FailurePolicy

__all__ = ["DEFAULT_SHARES", "LEVELS", "Priority", "QueueConfig", "parse_priority"]


class Priority(enum.IntEnum):
    """How urgent a request is. A lower value is served first.

    ``CRITICAL`` (user-facing writes), ``HIGH`` (authentication), ``NORMAL`` (general API),
    ``LOW`` (analytics, reports) and ``BATCH`` (background jobs). Front doors also accept the
    names, case-insensitively (``"batch"``, ``"Critical"``).
    """

    CRITICAL = 0
    HIGH = 1
    NORMAL = 2
    LOW = 3
    BATCH = 4


#: Number of priority levels.
LEVELS = len(Priority)

_BY_NAME = {p.name: p for p in Priority}
_BY_VALUE = tuple(Priority)

#: Default share of ``max_queue_size`` each priority may fill (see :func:`admission_thresholds`).
DEFAULT_SHARES = (1.0, 0.9, 0.75, 0.5, 0.25)


def parse_priority(value: Priority | str | int) -> Priority:
    """Return the :class:`Priority` for an enum member, a name (any case) or a level number.

    Raises :class:`~resilience.ConfigurationError` (a ``ValueError``) naming the known levels.
    """
    if type(value) is Priority:
        return value
    if isinstance(value, str):
        found = _BY_NAME.get(value.upper())
        if found is not None:
            return found
    elif isinstance(value, int) and not isinstance(value, bool) and 0 <= value < LEVELS:
        return _BY_VALUE[value]
    raise ConfigurationError(
        f"unknown priority {value!r}; use one of {', '.join(_BY_NAME)} (names are case-insensitive)"
    )


class QueueConfig(BaseModel):
    """Validated settings of one :class:`~resilience.PriorityQueue`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1)
    #: Slots: how many requests may run at once (globally, on a shared backend).
    max_concurrent: int = Field(ge=1)
    #: Waiters at most, over all priorities; 0 means "never queue, refuse when busy".
    max_queue_size: int = Field(ge=0)
    #: Seconds a request may wait for a slot (and, with ``execute``, run); ``None``: no bound.
    request_timeout: float | None = Field(gt=0)
    #: A waiter moves up one level per ``aging_interval`` seconds of waiting; ``None``: never.
    aging_interval: float | None = Field(default=5.0, gt=0)
    #: Share of ``max_queue_size`` each level may fill, CRITICAL first; non-increasing.
    admission_shares: tuple[float, float, float, float, float] = DEFAULT_SHARES
    #: Shared backends: a holder's lease; a crashed process's slot is free after this long.
    lease_ttl: float = Field(default=10.0, gt=0)
    #: Shared backends: safety-net re-check of a waiter when no message came (seconds);
    #: below ``lease_ttl / 2``.
    recheck_interval: float = Field(default=2.0, gt=0)
    #: What a shared queue does when its backend is down.
    failure_policy: FailurePolicy = FailurePolicy.LOCAL

    @field_validator("admission_shares")
    @classmethod
    def _shares(cls, shares: tuple[float, ...]) -> tuple[float, ...]:
        if any(not 0.0 < s <= 1.0 for s in shares):
            raise ValueError("every admission share must be in (0, 1]")
        if shares[0] != 1.0:
            raise ValueError("CRITICAL's admission share must be 1.0 (it may fill the queue)")
        if any(b > a for a, b in itertools.pairwise(shares)):
            raise ValueError("admission shares must not increase from CRITICAL to BATCH")
        return shares

    @model_validator(mode="after")
    def _recheck_within_lease(self) -> QueueConfig:
        # A granted waiter's lease is renewed only once it has woken up: if its push message
        # is lost, the safety-net re-check must come well before that lease ends.
        if not self.recheck_interval < self.lease_ttl / 2:
            raise ValueError(
                f"recheck_interval ({self.recheck_interval}) must be below lease_ttl / 2 "
                f"({self.lease_ttl / 2})"
            )
        return self

    def thresholds(self) -> tuple[int, ...]:
        """Queue depth (all levels together) at which each level stops being admitted."""
        return tuple(math.ceil(self.max_queue_size * share) for share in self.admission_shares)

    @classmethod
    def build(cls, **values: object) -> QueueConfig:
        """Validate ``values``; raise :class:`~resilience.ConfigurationError` with the reasons."""
        try:
            return cls.model_validate(values)
        except ValidationError as error:
            raise ConfigurationError(f"invalid PriorityQueue settings: {error}") from error
