"""The breaker's configuration model and the seed's presets."""

from __future__ import annotations

import enum
from collections.abc import Callable
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .._exceptions import ConfigurationError
from .._policy import FailurePolicy
from . import _core

__all__ = ["PRESETS", "BreakerConfig", "CircuitState", "build_config", "params_of"]

#: Exception classes, or a predicate on the exception.
ExceptionFilter = tuple[type[BaseException], ...] | Callable[[BaseException], bool]


class CircuitState(str, enum.Enum):
    """The five states of a breaker; the last two are only entered by an operator."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"
    FORCED_OPEN = "forced_open"
    DISABLED = "disabled"


#: Core state number -> CircuitState.
STATES: tuple[CircuitState, ...] = (
    CircuitState.CLOSED,
    CircuitState.OPEN,
    CircuitState.HALF_OPEN,
    CircuitState.FORCED_OPEN,
    CircuitState.DISABLED,
)


class _NoFallback:
    __slots__ = ()

    def __repr__(self) -> str:
        return "NO_FALLBACK"


#: The default of ``fallback``: rejected calls raise :class:`~resilience.CircuitOpenError`.
NO_FALLBACK: Any = _NoFallback()


class BreakerConfig(BaseModel):
    """Everything a :class:`~resilience.CircuitBreaker` decides with; validated at construction.

    Trip rules (``window``):

    - ``"consecutive"`` (default): open after ``failure_threshold`` failures in a row;
    - ``"count"``: open when, over the last ``window_size`` calls (at least ``minimum_calls``),
      the failure rate reaches ``failure_rate_threshold`` or the slow-call rate reaches
      ``slow_call_rate_threshold``;
    - ``"time"``: the same over the last ``window_duration`` seconds (ten buckets, so calls are
      forgotten a tenth of the window at a time).

    Open time is ``recovery_timeout``, multiplied by ``recovery_multiplier`` after each failed
    recovery (d, 2d, 4d... with 2.0) up to ``max_recovery_timeout``, and back to d once closed.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)

    failure_threshold: int = Field(default=5, ge=1, description="consecutive failures that open it")
    recovery_timeout: float = Field(default=30.0, gt=0, description="seconds open before a probe")
    half_open_max_calls: int = Field(default=1, ge=1, description="probes in flight at once")
    success_threshold: int = Field(default=1, ge=1, description="successful probes that close it")
    window: Literal["consecutive", "count", "time"] = "consecutive"
    window_size: int = Field(default=100, ge=1, description="calls in a count window")
    window_duration: float = Field(default=60.0, gt=0, description="seconds of a time window")
    minimum_calls: int = Field(default=10, ge=1, description="calls before a rate trips")
    failure_rate_threshold: float = Field(default=0.5, gt=0, le=1)
    slow_call_duration: float | None = Field(default=None, gt=0, description="seconds; None: off")
    slow_call_rate_threshold: float = Field(default=1.0, gt=0, le=1)
    recovery_multiplier: float = Field(default=1.0, ge=1, description="growth of the open time")
    max_recovery_timeout: float | None = Field(
        default=None, gt=0, description="cap of the open time; None: 1 day (or recovery_timeout)"
    )
    probe_lease: float = Field(default=60.0, gt=0, description="seconds a permit lasts")
    record_on: ExceptionFilter = (Exception,)
    ignore_on: ExceptionFilter = ()
    failure_result: Callable[[Any], bool] | None = None
    cancellation_is_failure: bool = False
    fallback: Any = NO_FALLBACK
    failure_policy: FailurePolicy = FailurePolicy.LOCAL
    idle_ttl: float = Field(default=3600.0, gt=0, description="idle state lifetime")

    @field_validator("record_on", "ignore_on", mode="before")
    @classmethod
    def _exception_filter(cls, value: Any) -> Any:
        if isinstance(value, type):
            value = (value,)
        if isinstance(value, list | tuple):
            for item in value:
                if not (isinstance(item, type) and issubclass(item, BaseException)):
                    raise ValueError(f"{item!r} is not an exception class")
            return tuple(value)
        if not callable(value):
            raise ValueError("expected exception classes or a predicate")
        return value

    @model_validator(mode="after")
    def _coherent(self) -> BreakerConfig:
        if self.slow_call_duration is not None and self.window == "consecutive":
            raise ValueError("slow_call_duration needs window='count' or window='time'")
        if self.max_recovery_timeout is not None and (
            self.max_recovery_timeout < self.recovery_timeout
        ):
            raise ValueError("max_recovery_timeout must be >= recovery_timeout")
        return self


def build_config(base: BreakerConfig | None, **changes: Any) -> BreakerConfig:
    """Validate ``base`` updated with ``changes``; raise ConfigurationError on bad values."""
    # Field by field, not model_dump(): callables, classes and fallbacks keep their identity.
    values: dict[str, Any] = {}
    if base is not None:
        values = {name: getattr(base, name) for name in type(base).model_fields}
    values.update(changes)
    try:
        return BreakerConfig(**values)
    except ValidationError as error:
        raise ConfigurationError(f"invalid circuit breaker configuration: {error}") from error


_KINDS = {"consecutive": _core.CONSECUTIVE, "count": _core.COUNT, "time": _core.TIME}


def params_of(config: BreakerConfig) -> _core.Params:
    """The core's view of a config."""
    cap = config.max_recovery_timeout
    if cap is None:
        cap = max(86400.0, config.recovery_timeout)
    return _core.Params(
        kind=_KINDS[config.window],
        threshold=config.failure_threshold,
        size=float(config.window_size if config.window == "count" else config.window_duration),
        # A count window never holds more than window_size calls: a larger minimum would
        # mean it can never trip (Resilience4j caps it the same way).
        min_calls=(
            min(config.minimum_calls, config.window_size)
            if config.window == "count"
            else config.minimum_calls
        ),
        rate=config.failure_rate_threshold,
        slow=config.slow_call_duration or 0.0,
        slow_rate=config.slow_call_rate_threshold,
        recovery=config.recovery_timeout,
        multiplier=config.recovery_multiplier,
        max_recovery=cap,
        half_open=config.half_open_max_calls,
        success_threshold=config.success_threshold,
        lease=config.probe_lease,
        ttl=config.idle_ttl,
    )


#: The seed's breakers (VetMed tracker): failures in a row and seconds open.
PRESETS: dict[str, dict[str, Any]] = {
    "database": {"failure_threshold": 5, "recovery_timeout": 30.0},
    "critical": {"failure_threshold": 3, "recovery_timeout": 10.0},
    "analytics": {"failure_threshold": 8, "recovery_timeout": 45.0},
    "batch": {"failure_threshold": 10, "recovery_timeout": 60.0},
}
