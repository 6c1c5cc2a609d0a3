"""The circuit breaker's front doors: decorator, context managers, ``call``, operators, stats."""

from __future__ import annotations

import contextvars
import functools
import inspect
import logging
import weakref
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from types import TracebackType
from typing import Any, ParamSpec, TypeVar, overload

from .._backends import resolve_backend
from .._backends._base import Backend
from .._backends._memory import MemoryBackend
from .._exceptions import CircuitOpenError, ConfigurationError, QueueFull, RateLimitExceeded
from . import _core, _registry
from ._config import (
    NO_FALLBACK,
    PRESETS,
    STATES,
    BreakerConfig,
    CircuitState,
    build_config,
    params_of,
)
from ._engines import MemoryEngine
from ._events import (
    BreakerEvent,
    BreakerEventType,
    BreakerListener,
    BreakerStats,
    Emitter,
    stats_from_reply,
)
from ._guard import Guard, is_cancellation, matcher
from ._remote import RemoteEngine

__all__ = ["CircuitBreaker"]

#: Refusals by this library's own gates inside a protected call (a full priority queue, a
#: rate limit, another breaker): the dependency was never reached, so they count as ignored.
_REFUSALS = (QueueFull, RateLimitExceeded, CircuitOpenError)

logger = logging.getLogger("resilience.breaker")

P = ParamSpec("P")
R = TypeVar("R")

_CLOSED, _DISABLED = _core.CLOSED, _core.DISABLED
_SUCCESS, _FAILURE, _IGNORED = _core.SUCCESS, _core.FAILURE, _core.IGNORED
_OUTCOME_EVENTS = {
    _SUCCESS: BreakerEventType.SUCCESS,
    _FAILURE: BreakerEventType.FAILURE,
    _IGNORED: BreakerEventType.IGNORED,
}


class CircuitBreaker:
    """A circuit breaker: CLOSED -> OPEN -> HALF_OPEN, in memory or shared through Redis.

    ``CircuitBreaker("payments", failure_threshold=3, recovery_timeout=10.0, backend=...)``
    takes any :class:`BreakerConfig` field as a keyword (or ``config=``); invalid values raise
    :class:`~resilience.ConfigurationError` here. Use it as a decorator (``def`` and
    ``async def``), as a context manager (``with``/``async with``), or through
    :meth:`call`/:meth:`acall`. A refused call raises :class:`~resilience.CircuitOpenError`
    (or returns ``fallback``). No lock is held while the protected call runs.

    The breaker is registered under ``name`` (:meth:`get`, :func:`resilience.breakers`); a new
    breaker with the same name replaces the old one in the registry. On the memory backend the
    state belongs to this object; on Redis every breaker with the same name and key prefix shares
    one state, decided with the config of whichever caller runs each step.
    """

    def __init__(
        self,
        name: str,
        *,
        backend: Backend | str | None = None,
        config: BreakerConfig | None = None,
        listeners: Iterable[BreakerListener] = (),
        **options: Any,
    ) -> None:
        if not isinstance(name, str) or not name:
            raise ConfigurationError("a circuit breaker needs a non-empty name")
        cfg = build_config(config, **options)
        self.name = name
        self.backend = resolve_backend(backend)
        self._emitter = Emitter()
        self._engine: MemoryEngine | RemoteEngine
        if isinstance(self.backend, MemoryBackend):
            self._engine = MemoryEngine(name, self.backend, self._emitter)
        else:
            self._engine = RemoteEngine(name, self.backend, self._emitter, cfg.failure_policy)
            # A breaker dropped without close() still stops listening (the engine does not
            # reference the breaker, so this does not keep it alive).
            weakref.finalize(self, self._engine.close)
        self._apply(cfg)
        self._tokens: contextvars.ContextVar[tuple[Guard, ...]] = contextvars.ContextVar(
            f"resilience-breaker-{name}", default=()
        )
        for listener in listeners:
            self.add_listener(listener)
        _registry.register(self)

    # -- construction and configuration ----------------------------------------------------

    @classmethod
    def preset(
        cls,
        preset: str,
        *,
        name: str | None = None,
        backend: Backend | str | None = None,
        **options: Any,
    ) -> CircuitBreaker:
        """A breaker from one of the seed's presets; ``options`` override its values.

        ``database`` (5 failures, 30 s), ``critical`` (3, 10 s), ``analytics`` (8, 45 s),
        ``batch`` (10, 60 s). The breaker is named after the preset unless ``name`` is given.
        """
        if preset not in PRESETS:
            raise ConfigurationError(
                f"unknown circuit breaker preset {preset!r}; known: {', '.join(sorted(PRESETS))}"
            )
        return cls(name or preset, backend=backend, **{**PRESETS[preset], **options})

    @classmethod
    def get(cls, name: str) -> CircuitBreaker:
        """The live breaker registered under ``name`` (``KeyError`` if none)."""
        return _registry.get(name)

    @property
    def config(self) -> BreakerConfig:
        """The current (validated, frozen) configuration."""
        return self._config

    def configure(self, **changes: Any) -> BreakerConfig:
        """Change settings at runtime, validated like the constructor; applies to next calls.

        ``failure_policy`` is fixed at construction.
        """
        cfg = build_config(self._config, **changes)
        if cfg.failure_policy is not self._config.failure_policy:
            raise ConfigurationError("failure_policy cannot change after construction")
        self._apply(cfg)
        return cfg

    def _apply(self, cfg: BreakerConfig) -> None:
        self._config = cfg
        self._timed = cfg.slow_call_duration is not None
        self._plain = not self._timed and not self._emitter.listeners
        self._failure_result = cfg.failure_result
        self._fallback = cfg.fallback
        self._ignore = matcher(cfg.ignore_on)
        self._record = matcher(cfg.record_on)
        self._engine.set_params(params_of(cfg))

    # -- listeners -------------------------------------------------------------------------

    def add_listener(self, listener: BreakerListener, *types: BreakerEventType) -> None:
        """Call ``listener(event)`` for every event (or only those of ``types``).

        Events arrive in transition order; a listener that raises is logged and ignored.
        Transitions learned from other processes are delivered on the pub/sub thread.
        """
        self._emitter.listeners.append((listener, frozenset(types)))
        self._plain = False

    def remove_listener(self, listener: BreakerListener) -> None:
        """Forget a listener."""
        self._emitter.listeners[:] = [(f, t) for f, t in self._emitter.listeners if f != listener]
        self._plain = not self._timed and not self._emitter.listeners

    # -- outcome plumbing --------------------------------------------------------------------

    def _classify(self, exc: BaseException) -> int:
        if is_cancellation(exc):
            return _FAILURE if self._config.cancellation_is_failure else _core.CANCELLED
        if isinstance(exc, _REFUSALS):
            return _IGNORED  # a gate of ours refused: the dependency was never reached
        try:
            if self._ignore(exc):
                return _IGNORED
            if self._record(exc):
                return _FAILURE
        except Exception:
            logger.exception("breaker %r: record_on/ignore_on predicate raised", self.name)
            return _FAILURE
        return _SUCCESS if isinstance(exc, Exception) else _core.CANCELLED

    def _result_outcome(self, result: object) -> int:
        predicate = self._failure_result
        if predicate is None:
            return _SUCCESS
        try:
            return _FAILURE if predicate(result) else _SUCCESS
        except Exception:
            logger.exception("breaker %r: failure_result predicate raised", self.name)
            return _FAILURE

    def _outcome_event(self, outcome: int, duration: float, exc: BaseException | None) -> None:
        kind = _OUTCOME_EVENTS.get(outcome)
        if kind is not None:
            self._emitter.pending.append(
                BreakerEvent(self.name, kind, error=exc, duration=duration)
            )

    def _finish_sync(
        self, gen: int, permit: int, outcome: int, t0: float, exc: BaseException | None
    ) -> None:
        engine = self._engine
        now = engine.clock()
        # t0 == 0.0: the lock-free path took no start time (it times nothing); a configure()
        # that turned slow-call detection on meanwhile must not see a huge duration.
        duration = now - t0 if t0 else 0.0
        if self._emitter.listeners:
            self._outcome_event(outcome, duration, exc)
        ftype = ""
        if outcome == _FAILURE:
            ftype = "failure_result" if exc is None else type(exc).__name__
        engine.finish_sync(gen, permit, outcome, duration, ftype, now)
        if self._emitter.pending:
            self._emitter.drain()

    async def _finish(
        self, gen: int, permit: int, outcome: int, t0: float, exc: BaseException | None
    ) -> None:
        engine = self._engine
        if engine.is_local:
            self._finish_sync(gen, permit, outcome, t0, exc)
            return
        duration = engine.clock() - t0
        if self._emitter.listeners:
            self._outcome_event(outcome, duration, exc)
        ftype = ""
        if outcome == _FAILURE:
            ftype = "failure_result" if exc is None else type(exc).__name__
        try:
            await engine.finish(gen, permit, outcome, duration, ftype)
        finally:  # a probe's record re-raises an asyncio cancellation after it landed
            if self._emitter.pending:
                self._emitter.drain()

    def _rejected(self, error: CircuitOpenError) -> None:
        if self._emitter.listeners:
            self._emitter.pending.append(
                BreakerEvent(self.name, BreakerEventType.REJECTED, error=error)
            )
            self._emitter.drain()

    # The fast checks below read ``view.gen`` before ``view.st`` without a lock; the engines
    # write a new state before (memory) or around (Redis: UNKNOWN first) the new generation, so
    # a call admitted here under generation g saw the state of generation g or a newer one.

    def _admit_sync(self) -> tuple[int, int]:
        engine = self._engine
        view = engine.view
        gen = view.gen
        state = view.st
        if state in (_CLOSED, _DISABLED) and (engine.is_local or engine.trusted(view)):
            return gen, 0
        try:
            return engine.admit_sync()
        except CircuitOpenError as error:
            self._rejected(error)
            raise

    async def _admit(self) -> tuple[int, int]:
        engine = self._engine
        view = engine.view
        gen = view.gen
        state = view.st
        if state in (_CLOSED, _DISABLED) and (engine.is_local or engine.trusted(view)):
            return gen, 0
        try:
            return await engine.admit()
        except CircuitOpenError as error:
            self._rejected(error)
            raise

    # -- front doors -------------------------------------------------------------------------

    @overload
    def __call__(
        self, fn: Callable[P, Coroutine[Any, Any, R]]
    ) -> Callable[P, Coroutine[Any, Any, R]]: ...
    @overload
    def __call__(self, fn: Callable[P, R]) -> Callable[P, R]: ...
    def __call__(self, fn: Callable[P, Any]) -> Callable[P, Any]:
        """Decorate a ``def`` or ``async def`` function.

        Generator and async generator functions are refused with ``TypeError``: calling one
        only creates the generator, so the breaker would record a success before the body
        ran. Put ``with breaker:`` (or ``async with``) inside the generator instead.
        """
        if inspect.isgeneratorfunction(fn) or inspect.isasyncgenfunction(fn):
            raise TypeError(
                f"{getattr(fn, '__qualname__', fn)!r} is a generator function: a circuit breaker "
                "cannot protect its iteration as a decorator; use `with breaker:` inside it"
            )
        call = None if inspect.isroutine(fn) else type(fn).__call__  # ``async def __call__``
        if inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(call):
            return self._wrap_async(fn)
        return self._wrap_sync(fn)

    def _wrap_sync(self, fn: Callable[P, R], wraps: bool = True) -> Callable[P, R]:
        engine = self._engine
        clock = engine.clock
        breaker = self

        def protected(*args: P.args, **kwargs: P.kwargs) -> R:
            fast = engine.fast
            if fast is not None and breaker._plain:
                # Memory, CLOSED, consecutive mode, nothing to time or tell: tally lock-free.
                gen, tally = fast
                try:
                    result = fn(*args, **kwargs)
                except BaseException as exc:
                    breaker._finish_sync(gen, 0, breaker._classify(exc), 0.0, exc)
                    raise
                if breaker._failure_result is None:
                    next(tally)
                    return result
                breaker._finish_sync(gen, 0, breaker._result_outcome(result), 0.0, None)
                return result
            try:
                gen, permit = breaker._admit_sync()
            except CircuitOpenError as error:
                return breaker._fallback_sync(error, args, kwargs)  # type: ignore[no-any-return]
            t0 = clock()
            try:
                result = fn(*args, **kwargs)
            except BaseException as exc:
                breaker._finish_sync(gen, permit, breaker._classify(exc), t0, exc)
                raise
            breaker._finish_sync(gen, permit, breaker._result_outcome(result), t0, None)
            return result

        return functools.wraps(fn)(protected) if wraps else protected

    def _wrap_async(
        self, fn: Callable[P, Awaitable[R]], wraps: bool = True
    ) -> Callable[P, Coroutine[Any, Any, R]]:
        engine = self._engine
        clock = engine.clock
        breaker = self

        async def protected(*args: P.args, **kwargs: P.kwargs) -> R:
            fast = engine.fast
            if fast is not None and breaker._plain:
                gen, tally = fast
                try:
                    result = await fn(*args, **kwargs)
                except BaseException as exc:
                    breaker._finish_sync(gen, 0, breaker._classify(exc), 0.0, exc)
                    raise
                if breaker._failure_result is None:
                    next(tally)
                    return result
                breaker._finish_sync(gen, 0, breaker._result_outcome(result), 0.0, None)
                return result
            try:
                gen, permit = await breaker._admit()
            except CircuitOpenError as error:
                return await breaker._fallback_async(error, args, kwargs)  # type: ignore[no-any-return]
            t0 = clock()
            try:
                result = await fn(*args, **kwargs)
            except BaseException as exc:
                await breaker._finish(gen, permit, breaker._classify(exc), t0, exc)
                raise
            await breaker._finish(gen, permit, breaker._result_outcome(result), t0, None)
            return result

        return functools.wraps(fn)(protected) if wraps else protected

    def _fallback_sync(self, error: CircuitOpenError, args: Any, kwargs: Any) -> Any:
        fallback = self._fallback
        if fallback is NO_FALLBACK:
            raise error
        if callable(fallback):
            return fallback(*args, **kwargs)
        return fallback

    async def _fallback_async(self, error: CircuitOpenError, args: Any, kwargs: Any) -> Any:
        value = self._fallback_sync(error, args, kwargs)
        if inspect.isawaitable(value):
            return await value
        return value

    def call(self, fn: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> R:
        """Run ``fn(*args, **kwargs)`` under the breaker (see :meth:`acall` for coroutines)."""
        return self._wrap_sync(fn, wraps=False)(*args, **kwargs)

    async def acall(self, fn: Callable[P, Awaitable[R]], /, *args: P.args, **kwargs: P.kwargs) -> R:
        """Await ``fn(*args, **kwargs)`` under the breaker."""
        return await self._wrap_async(fn, wraps=False)(*args, **kwargs)

    def guard(self) -> Guard:
        """A context manager for one protected block (``with`` or ``async with``)."""
        return Guard(self)

    def __enter__(self) -> CircuitBreaker:
        guard = Guard(self)
        guard.__enter__()
        self._tokens.set((*self._tokens.get(), guard))
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        tokens = self._tokens.get()
        self._tokens.set(tokens[:-1])
        tokens[-1].__exit__(kind, exc, tb)

    async def __aenter__(self) -> CircuitBreaker:
        guard = Guard(self)
        await guard.__aenter__()
        self._tokens.set((*self._tokens.get(), guard))
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        tokens = self._tokens.get()
        self._tokens.set(tokens[:-1])
        await tokens[-1].__aexit__(kind, exc, tb)

    # -- operators ---------------------------------------------------------------------------

    def _admin_done(self) -> None:
        if self._emitter.pending:
            self._emitter.drain()

    def reset(self) -> None:
        """Close the breaker and clear its counts (fleet-wide on Redis)."""
        self._engine.admin_sync(_core.OP_RESET)
        self._admin_done()

    def force_open(self) -> None:
        """Refuse every call until :meth:`reset` (state FORCED_OPEN)."""
        self._engine.admin_sync(_core.OP_FORCE_OPEN)
        self._admin_done()

    def disable(self) -> None:
        """Let every call through, counting but never tripping, until :meth:`reset`."""
        self._engine.admin_sync(_core.OP_DISABLE)
        self._admin_done()

    async def areset(self) -> None:
        """Async form of :meth:`reset`."""
        await self._engine.admin(_core.OP_RESET)
        self._admin_done()

    async def aforce_open(self) -> None:
        """Async form of :meth:`force_open`."""
        await self._engine.admin(_core.OP_FORCE_OPEN)
        self._admin_done()

    async def adisable(self) -> None:
        """Async form of :meth:`disable`."""
        await self._engine.admin(_core.OP_DISABLE)
        self._admin_done()

    # -- stats -------------------------------------------------------------------------------

    @property
    def state(self) -> CircuitState:
        """The state as known here (never blocks; on Redis, from the last reply or message)."""
        st = self._engine.view.st
        if st < 0:
            st = max(self.stats_reply()[2], 0)
        return STATES[st]

    def stats_reply(self) -> Any:
        """The raw reply the snapshot is built from (for tests and exporters)."""
        return self._engine.snapshot()[0]

    def stats(self) -> BreakerStats:
        """A frozen snapshot; never does I/O (on Redis: the shared state as of the last reply)."""
        reply, age, degraded = self._engine.snapshot()
        return stats_from_reply(self.name, reply, age, self.backend.url, degraded)

    def refresh(self) -> BreakerStats:
        """Read the shared state now (one round trip on Redis) and return the snapshot."""
        self._engine.refresh_sync()
        self._admin_done()
        return self.stats()

    async def arefresh(self) -> BreakerStats:
        """Async form of :meth:`refresh`."""
        await self._engine.refresh()
        self._admin_done()
        return self.stats()

    def close(self) -> None:
        """Stop listening to shared transitions and leave the registry."""
        self._engine.close()
        _registry.unregister(self)

    def __repr__(self) -> str:
        return (
            f"CircuitBreaker({self.name!r}, state={self.state.value}, backend={self.backend.url})"
        )
