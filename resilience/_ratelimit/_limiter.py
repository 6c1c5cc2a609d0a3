"""``RateLimiter``: the front doors over one atomic script per decision.

Per call the limiter looks up the user key's backend keys (a bounded cache of escaped
strings), runs its algorithm's script with precomputed arguments, counts the outcome and wraps
the reply in a :class:`RateLimitResult`. On the memory backend that is a function call under
the backend's lock; on Redis it is one ``EVALSHA``, whatever the number of limits.
"""

from __future__ import annotations

import hashlib
import logging
import math
import threading
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .._backends import resolve_backend
from .._backends._base import Backend
from .._backends._memory import MemoryBackend
from .._exceptions import BackendError, ConfigurationError
from .._keys import escape
from .._policy import FailurePolicy, PolicyRunner
from ._events import RateLimitEvent, RateLimitEventType, RateLimitListener, emit
from ._front import KeyArg, LimiterFrontDoors
from ._policy import PRESETS, RateLimit, RateLimitAlgorithm, parse_limits
from ._result import (
    FAIL_CLOSED_REASON,
    FAIL_OPEN_REASON,
    PolicyStats,
    PolicyUsage,
    RateLimiterStats,
    RateLimitResult,
    RateLimitUsage,
)
from ._scripts import RESET, SCRIPTS

__all__ = ["RateLimiter"]

logger = logging.getLogger("resilience.ratelimit")

_KIND = "ratelimit"
_new = object.__new__
_CODES = {
    RateLimitAlgorithm.TOKEN_BUCKET: "tb",
    RateLimitAlgorithm.GCRA: "gcra",
    RateLimitAlgorithm.SLIDING_WINDOW: "sw",
    RateLimitAlgorithm.SLIDING_WINDOW_COUNTER: "swc",
    RateLimitAlgorithm.FIXED_WINDOW: "fw",
}


def _floor(value: float) -> int:
    return math.floor(value + 1e-9)


class _Config(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    algorithm: RateLimitAlgorithm = RateLimitAlgorithm.TOKEN_BUCKET
    name: str | None = Field(default=None, min_length=1, max_length=200)
    failure_policy: FailurePolicy = FailurePolicy.FAIL_OPEN
    key_cache_size: int = Field(32_768, ge=0, le=10_000_000)


def _params(algorithm: RateLimitAlgorithm, policy: RateLimit) -> tuple[float, float]:
    if algorithm is RateLimitAlgorithm.TOKEN_BUCKET:
        return (float(policy.capacity), policy.per_second)
    if algorithm is RateLimitAlgorithm.GCRA:
        interval = policy.period / policy.rate
        return (policy.capacity * interval, interval)
    return (policy.rate, policy.period)


def _ttl(algorithm: RateLimitAlgorithm, policy: RateLimit) -> float:
    """Seconds after the last write when a missing key means the same as the stored state."""
    if algorithm in (RateLimitAlgorithm.TOKEN_BUCKET, RateLimitAlgorithm.GCRA):
        return policy.capacity / policy.per_second  # refilled to full
    if algorithm is RateLimitAlgorithm.SLIDING_WINDOW_COUNTER:
        return 2 * policy.period  # the current window weighs on the next one
    return policy.period


class RateLimiter(LimiterFrontDoors):
    """A keyed rate limiter: one or several policies checked and consumed all or nothing.

    ``limits`` is ``limits`` notation (``"100/minute"``, ``"10/second; 100/minute"``), a
    :class:`RateLimit`, or a list of them. ``algorithm`` is a :class:`RateLimitAlgorithm` or its
    name (``token_bucket`` by default). ``backend`` is a :class:`~resilience.Backend`, a URL, or
    ``None`` for the process-wide memory backend. ``name`` names the limiter's keys and is the
    Redis Cluster hash tag (limiters with the same name, algorithm and limits share state; the
    default name is derived from the algorithm and limits). ``failure_policy`` is what to
    do when the backend cannot answer: ``fail_open`` (default: admit, count, log a warning),
    ``fail_closed`` (refuse) or ``local`` (decide with in-process state until it is back).

    Async front doors: :meth:`hit` (alias :meth:`try_acquire`), :meth:`acquire`, :meth:`peek`,
    :meth:`reset`, :meth:`usage`. Blocking twins: :meth:`hit_sync`, :meth:`acquire_sync`,
    :meth:`peek_sync`, :meth:`reset_sync`, :meth:`usage_sync`.
    """

    def __init__(
        self,
        limits: str | RateLimit | Sequence[str | RateLimit],
        *,
        algorithm: RateLimitAlgorithm | str = RateLimitAlgorithm.TOKEN_BUCKET,
        backend: Backend | str | None = None,
        name: str | None = None,
        failure_policy: FailurePolicy | str = FailurePolicy.FAIL_OPEN,
        key_cache_size: int = 32_768,
    ) -> None:
        try:
            config = _Config(
                algorithm=algorithm,  # type: ignore[arg-type]
                name=name,
                failure_policy=failure_policy,  # type: ignore[arg-type]
                key_cache_size=key_cache_size,
            )
        except ValidationError as error:
            raise ConfigurationError(f"invalid RateLimiter settings: {error}") from None
        self.algorithm = config.algorithm
        #: The policies, in the order given.
        self.limits: tuple[RateLimit, ...] = parse_limits(limits, self.algorithm)
        self.backend = resolve_backend(backend)
        self.failure_policy = config.failure_policy
        code = _CODES[self.algorithm]
        spec = ";".join(f"{p.rate}/{p.period:g}/{p.capacity}" for p in self.limits)
        self.name = config.name or f"{code}:{spec}"
        self._suffix = f"{code}.{hashlib.sha1(spec.encode()).hexdigest()[:8]}"
        self._key_head = self.backend.key(_KIND, self.name)
        self._script = SCRIPTS[self.algorithm]
        self._core = self._script.memory
        self._runner = PolicyRunner(self.backend, self.failure_policy)
        self._direct = self.failure_policy is not FailurePolicy.LOCAL
        self._backend_run = self.backend.run
        self._backend_run_sync = self.backend.run_sync
        self._fast: MemoryBackend | None = None
        #: Guards the counters. On the memory fast path it is the backend's own lock, already
        #: held for the decision, so counting costs nothing extra there.
        self._count_lock = threading.Lock()
        if type(self.backend) is MemoryBackend:
            # Memory fast path: the backend's lock, clock and store, used as run_sync does.
            self._fast = self.backend
            self._count_lock = self.backend._lock
            self._lock_acquire = self.backend._lock.acquire
            self._lock_release = self.backend._lock.release
            self._clock = self.backend.clock
        flat: list[float] = []
        for policy in self.limits:
            flat += _params(self.algorithm, policy)
        ttl = max(_ttl(self.algorithm, p) for p in self.limits)
        self._tail = (ttl, len(self.limits), *flat)
        self._hit1 = (1, 0, *self._tail)
        self._peek1 = (1, 1, *self._tail)
        self._capacity = min(p.capacity for p in self.limits)
        self._smallest = 1 + min(range(len(self.limits)), key=lambda i: self.limits[i].capacity)
        self._keys: dict[Any, tuple[str, ...]] = {}
        self._key_cache_size = config.key_cache_size
        self._allowed = 0
        self._rejected = [0] * len(self.limits)
        self._failures = 0
        self._outage = False
        self._listeners: list[RateLimitListener] = []

    @classmethod
    def preset(cls, name: str, **options: Any) -> RateLimiter:
        """A limiter with a named policy from :data:`PRESETS`.

        ``general`` 100/min, ``auth`` 5/15 min, ``recording`` 30/min, ``heavy`` 10/min,
        ``upload`` 10/5 min. ``options`` go to the constructor; the limiter's ``name``
        defaults to the preset's.
        """
        try:
            limits = PRESETS[name]
        except KeyError:
            raise ConfigurationError(
                f"unknown rate-limit preset {name!r}; known: {', '.join(sorted(PRESETS))}"
            ) from None
        options.setdefault("name", name)
        return cls(list(limits), **options)

    # -- keys and arguments ----------------------------------------------------------------

    def _make_keys(self, key: KeyArg) -> tuple[str, ...]:
        # Same as backend.key(_KIND, name, key, suffix), with the constant head built once.
        part = escape(key)
        if self.algorithm is RateLimitAlgorithm.SLIDING_WINDOW:
            keys = tuple(
                f"{self._key_head}:{part}:{self._suffix}.{i}" for i in range(len(self.limits))
            )
        else:
            keys = (f"{self._key_head}:{part}:{self._suffix}",)
        cache = self._keys
        if len(cache) >= self._key_cache_size:
            cache.clear()
        if self._key_cache_size and type(key) in (str, bytes):
            # Only str and bytes: 1, 1.0 and True are equal dict keys, and must not share a
            # cached entry (True and 1.0 are not valid keys at all; an int is its decimal string).
            cache[key] = keys
        return keys

    def _args(self, cost: int, peek: int) -> tuple[Any, ...] | RateLimitResult:
        if type(cost) is not int or cost < 1:
            raise ValueError(f"cost must be a positive int, not {cost!r}")
        if cost > self._capacity:
            policy = self.limits[self._smallest - 1]
            return RateLimitResult.explained(
                (0, self._smallest, policy.capacity, 0.0, float("inf")),
                self.limits,
                None,
                f"cost {cost} exceeds the capacity {policy.capacity} of {policy}; "
                "it can never be admitted",
            )
        return (cost, peek, *self._tail)

    # -- decisions ---------------------------------------------------------------------------

    def hit_sync(self, key: KeyArg, cost: int = 1) -> RateLimitResult:
        """Decide one hit of ``cost`` for ``key`` now (blocking form of :meth:`hit`)."""
        keys = self._keys.get(key)
        if keys is None:
            keys = self._make_keys(key)
        if cost == 1:
            args: Any = self._hit1
        else:
            args = self._args(cost, 0)
            if isinstance(args, RateLimitResult):
                return self._too_costly(key, args)
        fast = self._fast
        if fast is None:
            try:
                if self._direct:  # fail_open / fail_closed: no fallback to run
                    reply = self._backend_run_sync(self._script, keys, args)
                else:
                    reply = self._runner.run_sync(self._script, keys, args)
            except BackendError as error:
                return self._failed(key, error)
            return self._finish(key, reply)
        # The memory backend's own run_sync, inlined: the core under the store's lock, which
        # also guards the counters.
        self._lock_acquire()
        try:
            store = fast._store
            store.now = self._clock()
            reply = self._core(store, keys, args)
            if reply[0] == 1:
                self._allowed += 1
            else:
                self._rejected[reply[1] - 1] += 1
        finally:
            self._lock_release()
        # RateLimitResult(reply, self.limits, key) without the __init__ call (hot path).
        result = _new(RateLimitResult)
        result._reply = reply
        result._policies = self.limits
        result.key = key
        return result

    async def hit(self, key: KeyArg, cost: int = 1) -> RateLimitResult:
        """Decide one hit of ``cost`` for ``key`` now; never waits.

        Returns a :class:`RateLimitResult`; a refused hit consumes nothing from any policy.
        A cost above the smallest capacity is refused at once (``retry_after`` is ``inf``).
        """
        if self._fast is not None:
            return self.hit_sync(key, cost)  # memory: no I/O, the very same decision
        keys = self._keys.get(key)
        if keys is None:
            keys = self._make_keys(key)
        if cost == 1:
            args: Any = self._hit1
        else:
            args = self._args(cost, 0)
            if isinstance(args, RateLimitResult):
                return self._too_costly(key, args)
        try:
            if self._direct:  # fail_open / fail_closed: no fallback to run
                reply = await self._backend_run(self._script, keys, args)
            else:
                reply = await self._runner.run(self._script, keys, args)
        except BackendError as error:
            return self._failed(key, error)
        return self._finish(key, reply)

    def _too_costly(self, key: KeyArg, refused: RateLimitResult) -> RateLimitResult:
        """Count and return the refusal of a cost no policy can ever admit."""
        refused.key = key
        with self._count_lock:
            self._rejected[refused._reply[1] - 1] += 1
        return refused

    def _finish(self, key: KeyArg, reply: Any) -> RateLimitResult:
        """Count a backend's decision and wrap it (the shared-backend path)."""
        if self._outage or not self._direct:
            self._transition()
        with self._count_lock:
            if reply[0] == 1:
                self._allowed += 1
            else:
                self._rejected[reply[1] - 1] += 1
        result = _new(RateLimitResult)
        result._reply = reply
        result._policies = self.limits
        result.key = key
        return result

    def _peek_args(self, cost: int) -> tuple[Any, ...] | RateLimitResult:
        return self._peek1 if cost == 1 else self._args(cost, 1)

    def peek_sync(self, key: KeyArg, cost: int = 1) -> RateLimitResult:
        """Blocking form of :meth:`peek`."""
        args = self._peek_args(cost)
        if isinstance(args, RateLimitResult):
            args.key = key
            return args
        keys = self._keys.get(key) or self._make_keys(key)
        try:
            reply = self._runner.run_sync(self._script, keys, args)
        except BackendError as error:
            return self._failed(key, error, count=False)
        return RateLimitResult(reply, self.limits, key)

    async def peek(self, key: KeyArg, cost: int = 1) -> RateLimitResult:
        """Tell whether a hit of ``cost`` would be admitted now, without consuming anything.

        ``remaining`` and ``reset_after`` describe the key as it is (nothing consumed).
        """
        args = self._peek_args(cost)
        if isinstance(args, RateLimitResult):
            args.key = key
            return args
        keys = self._keys.get(key) or self._make_keys(key)
        try:
            reply = await self._runner.run(self._script, keys, args)
        except BackendError as error:
            return self._failed(key, error, count=False)
        return RateLimitResult(reply, self.limits, key)

    def reset_sync(self, key: KeyArg) -> bool:
        """Blocking form of :meth:`reset`."""
        keys = self._keys.get(key) or self._make_keys(key)
        return bool(self._runner.run_sync(RESET, keys, ()))

    async def reset(self, key: KeyArg) -> bool:
        """Forget everything about ``key`` (every policy); return whether it had state.

        Backend errors propagate (a reset is an administrative act, not a decision).
        """
        keys = self._keys.get(key) or self._make_keys(key)
        return bool(await self._runner.run(RESET, keys, ()))

    # -- failures ----------------------------------------------------------------------------

    def _failed(self, key: KeyArg, error: BackendError, *, count: bool = True) -> RateLimitResult:
        with self._count_lock:
            self._failures += 1
            first = not self._outage
            self._outage = True
        if first:  # one event and one warning per outage, however many threads fail at once
            emit(self._listeners, RateLimitEvent(self.name, RateLimitEventType.DEGRADED, error))
            logger.warning(
                "rate limiter %r: backend %s failed (%s); %s until it is back",
                self.name,
                self.backend.url,
                error,
                "admitting hits"
                if self.failure_policy is FailurePolicy.FAIL_OPEN
                else "refusing hits",
            )
        capacity = self.limits[0].capacity
        if self.failure_policy is FailurePolicy.FAIL_OPEN:
            if count:
                with self._count_lock:
                    self._allowed += 1
            return RateLimitResult.explained(
                (1, 1, capacity, 0.0, 0.0), self.limits, key, FAIL_OPEN_REASON
            )
        if count:
            with self._count_lock:
                self._rejected[0] += 1
        retry = max(self.backend.status.probe_interval, 0.001)
        return RateLimitResult.explained(
            (0, 1, 0, retry, retry), self.limits, key, FAIL_CLOSED_REASON
        )

    def _transition(self) -> None:
        """Note a change of outage state after a decision (``local``: the runner fell back)."""
        degraded = not self._direct and self._runner.degraded
        with self._count_lock:  # flip once: concurrent callers emit one event, not several
            if degraded is self._outage:
                return
            self._outage = degraded
        if not degraded:
            logger.warning("rate limiter %r: backend %s is back", self.name, self.backend.url)
            emit(self._listeners, RateLimitEvent(self.name, RateLimitEventType.RECOVERED))
        else:
            logger.warning(
                "rate limiter %r: backend %s failed; deciding in process (local) until it is back",
                self.name,
                self.backend.url,
            )
            emit(self._listeners, RateLimitEvent(self.name, RateLimitEventType.DEGRADED))

    def add_listener(self, listener: RateLimitListener) -> None:
        """Call ``listener(event)`` when the backend goes away (degraded) or comes back."""
        self._listeners.append(listener)

    def remove_listener(self, listener: RateLimitListener) -> None:
        """Forget a listener added with :meth:`add_listener`."""
        if listener in self._listeners:
            self._listeners.remove(listener)

    # -- stats -------------------------------------------------------------------------------

    def stats(self) -> RateLimiterStats:
        """A frozen snapshot: allowed and refused per policy, backend failures, degraded.

        ``backend_failures`` counts decisions the backend could not take (fail_open and
        fail_closed decisions, and ``local`` fallbacks). Counters are exact under any mix of
        threads and event loops: they change under a lock (on memory, the backend's lock that
        the decision holds anyway).
        """
        local = self._runner.fallbacks if self.failure_policy is FailurePolicy.LOCAL else 0
        return RateLimiterStats(
            name=self.name,
            algorithm=self.algorithm.value,
            backend=self.backend.url,
            failure_policy=self.failure_policy.value,
            policies=tuple(
                PolicyStats(limit=str(p), allowed=self._allowed, rejected=r)
                for p, r in zip(self.limits, self._rejected, strict=True)
            ),
            allowed=self._allowed,
            rejected=sum(self._rejected),
            backend_failures=self._failures + local,
            degraded=self._outage,
        )

    def _usage(self, key: KeyArg, reply: Any) -> RateLimitUsage:
        remaining = list(reply[5:]) if len(reply) > 5 else [None] * len(self.limits)
        return RateLimitUsage(
            key=str(key),
            policies=tuple(
                PolicyUsage(
                    limit=str(p),
                    capacity=p.capacity,
                    remaining=max(_floor(r if r is not None else p.capacity), 0),
                    used=max(p.capacity - _floor(r if r is not None else p.capacity), 0),
                )
                for p, r in zip(self.limits, remaining, strict=True)
            ),
        )

    async def usage(self, key: KeyArg) -> RateLimitUsage:
        """How much of each policy ``key`` has used right now (reads, consumes nothing)."""
        keys = self._keys.get(key) or self._make_keys(key)
        return self._usage(key, await self._runner.run(self._script, keys, self._peek1))

    def usage_sync(self, key: KeyArg) -> RateLimitUsage:
        """Blocking form of :meth:`usage`."""
        keys = self._keys.get(key) or self._make_keys(key)
        return self._usage(key, self._runner.run_sync(self._script, keys, self._peek1))

    def __repr__(self) -> str:
        limits = ", ".join(str(p) for p in self.limits)
        return (
            f"RateLimiter([{limits}], algorithm={self.algorithm.value!r}, "
            f"name={self.name!r}, backend={self.backend.url!r})"
        )
