"""Rate-limit policies: ``limits`` notation or pydantic models, the algorithms and the presets.

A policy is ``rate`` hits per ``period`` seconds, with an optional ``burst`` (the bucket
capacity of the token bucket and GCRA; ``rate`` when not given). Strings are parsed with
:func:`limits.parse`, so ``"100/minute"``, ``"5 per 15 minutes"`` and ``"10/second"`` mean what
they mean in ``limits`` (and ``"10/second; 100/minute"`` is two policies).
"""

from __future__ import annotations

import enum
from collections.abc import Sequence

import limits
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from .._exceptions import ConfigurationError

__all__ = [
    "PRESETS",
    "RateLimit",
    "RateLimitAlgorithm",
    "parse_limits",
]


class RateLimitAlgorithm(str, enum.Enum):
    """How a limiter counts hits.

    - ``token_bucket`` (default): a bucket of ``burst`` tokens refilled continuously at
      ``rate / period`` tokens per second; idle keys start full.
    - ``gcra``: the generic cell rate algorithm (the token bucket expressed as one theoretical
      arrival time per key, as in redis-cell); same admissions as the token bucket.
    - ``sliding_window``: an exact log of hit times; at most ``rate`` hits in any ``period``.
    - ``sliding_window_counter``: two fixed-window counters weighted by overlap; approximate
      (see the docs for its error bound), constant memory per key.
    - ``fixed_window``: a counter per aligned window of ``period`` seconds.
    """

    TOKEN_BUCKET = "token_bucket"
    GCRA = "gcra"
    SLIDING_WINDOW = "sliding_window"
    SLIDING_WINDOW_COUNTER = "sliding_window_counter"
    FIXED_WINDOW = "fixed_window"


class RateLimit(BaseModel):
    """One policy: ``rate`` hits per ``period`` seconds, with an optional ``burst``.

    ``burst`` is the capacity of the token bucket and of GCRA (how many hits an idle key admits
    at once); it defaults to ``rate``. Window algorithms count exactly ``rate`` per window and
    refuse a ``burst``. Build one from ``limits`` notation with :meth:`parse`.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    rate: int = Field(gt=0, description="hits admitted per period")
    period: float = Field(gt=0, le=10 * 365 * 86400, description="period in seconds")
    burst: int | None = Field(
        default=None, gt=0, description="bucket capacity (token bucket, GCRA)"
    )
    #: The text this policy was parsed from, if any (display only; ignored by ``==``).
    text: str | None = Field(default=None, exclude=True, repr=False)

    @classmethod
    def parse(cls, text: str) -> RateLimit:
        """Parse one policy in ``limits`` notation (``"100/minute"``, ``"5 per 15 minutes"``)."""
        try:
            item = limits.parse(text)
        except ValueError as error:
            raise ConfigurationError(f"cannot parse rate limit {text!r}: {error}") from None
        return cls(rate=item.amount, period=float(item.get_expiry()), text=text.strip())

    @property
    def capacity(self) -> int:
        """Hits an idle key admits at once: ``burst`` or ``rate``."""
        return self.burst if self.burst is not None else self.rate

    @property
    def per_second(self) -> float:
        """The steady rate in hits per second."""
        return self.rate / self.period

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, RateLimit):
            return NotImplemented
        return (self.rate, self.period, self.burst) == (other.rate, other.period, other.burst)

    def __hash__(self) -> int:
        return hash((self.rate, self.period, self.burst))

    def __str__(self) -> str:
        text = self.text or f"{self.rate}/{self.period:g}s"
        return text if self.burst is None else f"{text} (burst {self.burst})"

    @model_validator(mode="after")
    def _finite(self) -> RateLimit:
        if self.period != self.period or self.period == float("inf"):  # pragma: no cover
            raise ValueError("period must be finite")
        return self


#: Named policies from the VetMed seed (``requests`` per ``window``).
PRESETS: dict[str, tuple[RateLimit, ...]] = {
    "general": (RateLimit(rate=100, period=60.0, text="100/minute"),),
    "auth": (RateLimit(rate=5, period=900.0, text="5 per 15 minutes"),),
    "recording": (RateLimit(rate=30, period=60.0, text="30/minute"),),
    "heavy": (RateLimit(rate=10, period=60.0, text="10/minute"),),
    "upload": (RateLimit(rate=10, period=300.0, text="10 per 5 minutes"),),
}


def _one(value: object) -> list[RateLimit]:
    if isinstance(value, RateLimit):
        return [value]
    if isinstance(value, str):
        parts = [p for p in value.replace(",", ";").split(";") if p.strip()]
        if not parts:
            raise ConfigurationError(f"no rate limit in {value!r}")
        return [RateLimit.parse(p) for p in parts]
    if isinstance(value, dict):
        try:
            return [RateLimit.model_validate(value)]
        except ValidationError as error:
            raise ConfigurationError(f"invalid rate limit {value!r}: {error}") from None
    raise ConfigurationError(
        f"a rate limit is a string, a RateLimit or a dict, not {type(value).__name__}"
    )


def parse_limits(
    value: str | RateLimit | Sequence[str | RateLimit], algorithm: RateLimitAlgorithm
) -> tuple[RateLimit, ...]:
    """Turn a limiter's ``limits`` argument into validated policies for ``algorithm``."""
    items: list[RateLimit] = []
    if isinstance(value, (str, RateLimit, dict)):
        items = _one(value)
    elif isinstance(value, Sequence):
        for entry in value:
            items += _one(entry)
    else:
        raise ConfigurationError(
            f"limits= takes a string, a RateLimit or a list of them, not {type(value).__name__}"
        )
    if not items:
        raise ConfigurationError("a rate limiter needs at least one limit")
    if len(items) > 16:
        raise ConfigurationError("at most 16 limits per limiter")
    windowed = algorithm not in (RateLimitAlgorithm.TOKEN_BUCKET, RateLimitAlgorithm.GCRA)
    for item in items:
        if windowed and item.burst is not None:
            raise ConfigurationError(
                f"burst= applies to token_bucket and gcra, not {algorithm.value} ({item})"
            )
    return tuple(items)
