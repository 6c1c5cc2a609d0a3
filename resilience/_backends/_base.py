"""The backend contract: atomic scripts, the ``Backend`` base class and its health status.

A primitive's rules live in pure functions. Each atomic step of a primitive is a
:class:`Script`: a pure Python function that the memory backend runs under its lock, and a Lua
file of the same name that the Redis backend runs with ``EVALSHA``. Both take the same keys and
arguments and return the same reply, so a primitive never knows which backend it is on, and
every decision is one atomic step (one round trip on Redis).
"""

from __future__ import annotations

import abc
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from importlib import resources
from typing import TYPE_CHECKING, Any, Protocol

from pydantic import BaseModel, ConfigDict

from .._exceptions import BackendUnavailable
from .._keys import make_key
from .._listeners import deliver

if TYPE_CHECKING:
    from ._memory import MemoryStore

__all__ = [
    "Backend",
    "BackendHealth",
    "BackendStatus",
    "MessageCallback",
    "Script",
    "Subscription",
]

logger = logging.getLogger("resilience.backend")

#: A script argument: what both Redis and the memory twin accept.
Arg = str | bytes | int | float

#: Receives a published message, or ``None`` when messages may have been missed (the
#: subscription was re-established after a connection loss): re-read state then.
MessageCallback = Callable[[bytes | None], None]

MemoryFunction = Callable[["MemoryStore", Sequence[str], Sequence[Any]], Any]


def _identity(reply: Any) -> Any:
    return reply


@dataclass(frozen=True, eq=False)
class Script:
    """One atomic step of a primitive.

    ``name`` names the Lua file ``resilience/lua/<name>.lua`` run on Redis; ``memory`` is its
    pure Python twin, called as ``memory(store, keys, args)`` under the memory backend's lock
    with ``store.now`` set to the backend clock. ``decode`` turns a raw Redis reply (bytes and
    integers; Lua truncates numbers, so scripts return non-integers as strings) into the shape
    ``memory`` returns. On Redis the script calls ``now()`` (defined by a prelude the backend
    prepends: the server's ``TIME`` in seconds) and never takes the time from its arguments;
    ``KEYS``/``ARGV`` are the ``keys``/``args`` given to :meth:`Backend.run`. Return non-integer
    numbers as strings (``string.format('%.17g', x)``): Redis truncates Lua numbers to integers.
    """

    name: str
    memory: MemoryFunction
    decode: Callable[[Any], Any] = field(default=_identity)
    package: str = "resilience.lua"
    #: Lua files of shared helper functions (``<include>.lua`` in the same package) placed
    #: before the script's own source, so scripts share code instead of repeating it.
    includes: tuple[str, ...] = ()

    @cached_property
    def source(self) -> str:
        """The Lua source (includes first, then the script), read once from package data."""
        folder = resources.files(self.package)
        parts = [folder.joinpath(f"{n}.lua").read_text("utf-8") for n in self.includes]
        parts.append(folder.joinpath(f"{self.name}.lua").read_text("utf-8"))
        return "\n".join(parts)

    def __repr__(self) -> str:
        return f"Script({self.name!r})"


class Subscription(Protocol):
    """A live subscription returned by :meth:`Backend.subscribe`."""

    def close(self) -> None:
        """Stop receiving messages; idempotent."""


class BackendHealth(BaseModel):
    """A frozen snapshot of a backend's availability, for stats and the health registry."""

    model_config = ConfigDict(frozen=True)

    url: str
    available: bool
    #: Failed calls since the backend object was created.
    failures: int
    #: Times the backend came back after being down.
    recoveries: int
    last_error: str | None
    #: Wall-clock (``time.time()``) moment the current outage began, if down.
    down_since: float | None


StatusListener = Callable[[BackendHealth], None]


class BackendStatus:
    """Tracks whether a backend is reachable and tells listeners when that changes.

    After a failure, calls are short-circuited (they raise :class:`BackendUnavailable` at once,
    with no network I/O) until ``probe_interval`` seconds have passed; then calls try the server
    again, and the first success marks the recovery. So an outage costs one timeout per
    interval, not one per call, and recovery needs no user action.
    """

    def __init__(self, url: str, probe_interval: float) -> None:
        self.url = url
        self.probe_interval = probe_interval
        self._lock = threading.Lock()
        self._listeners: list[StatusListener] = []
        self.available = True
        self.failures = 0
        self.recoveries = 0
        self.last_error: str | None = None
        self.down_since: float | None = None
        self._retry_at = 0.0

    def add_listener(self, listener: StatusListener) -> None:
        """Call ``listener(snapshot)`` whenever the backend goes down or comes back."""
        self._listeners.append(listener)

    def remove_listener(self, listener: StatusListener) -> None:
        """Forget a listener added with :meth:`add_listener`."""
        self._listeners.remove(listener)

    def check(self) -> None:
        """Raise :class:`BackendUnavailable` if the backend is down and not due for a retry."""
        if not self.available and time.monotonic() < self._retry_at:
            raise BackendUnavailable(
                f"backend {self.url} is down ({self.last_error}); next attempt in "
                f"{self._retry_at - time.monotonic():.2f}s",
                backend=self.url,
            )

    def record_success(self) -> None:
        """Note a successful call; fires the recovery event if the backend was down."""
        if self.available:
            return
        with self._lock:
            recovered = not self.available
            if recovered:
                self.available = True
                self.recoveries += 1
                self.down_since = None
        if not recovered:
            return
        logger.warning("backend %s recovered", self.url)
        self._emit()

    def record_failure(self, error: BaseException) -> None:
        """Note a failed call; fires the outage event on the first failure of an outage."""
        with self._lock:
            self.failures += 1
            self.last_error = f"{type(error).__name__}: {error}"
            self._retry_at = time.monotonic() + self.probe_interval
            if not self.available:
                return
            self.available = False
            self.down_since = time.time()
        logger.warning("backend %s is unavailable: %s", self.url, self.last_error)
        self._emit()

    def snapshot(self) -> BackendHealth:
        """Return the current state as a frozen model."""
        return BackendHealth(
            url=self.url,
            available=self.available,
            failures=self.failures,
            recoveries=self.recoveries,
            last_error=self.last_error,
            down_since=self.down_since,
        )

    def _emit(self) -> None:
        deliver(self._listeners, self.snapshot(), logger, "backend status listener")


class Backend(abc.ABC):
    """Where primitives keep shared state: a handful of atomic scripts and a pub/sub channel.

    Get one with :func:`resilience.backend_from_url`. Every method that talks to a server is
    bounded by the backend's timeout and raises :class:`~resilience.BackendError` (or its
    subclass :class:`~resilience.BackendUnavailable`) with the driver's error chained.
    """

    #: The URL this backend was made from, with any password masked.
    url: str
    #: First segment of every key, so several applications can share one server.
    prefix: str
    #: ``True`` when state lives in this process only.
    is_local: bool
    #: Reachability, read by the health registry and the failure policies.
    status: BackendStatus

    def key(self, kind: str, name: str | bytes, *parts: str | bytes | int) -> str:
        """Return the key ``prefix:kind:{name}:part...`` with user input escaped.

        ``kind`` is the primitive's fixed kind (``breaker``, ``ratelimit``, ``queue``);
        ``name`` is the instance name and becomes the Cluster hash tag.
        """
        return make_key(self.prefix, kind, name, *parts)

    def channel(self, kind: str, name: str | bytes) -> str:
        """Return the pub/sub channel on which an instance announces its changes."""
        return make_key(self.prefix, kind, name, "events")

    @abc.abstractmethod
    def run_sync(self, script: Script, keys: Sequence[str], args: Sequence[Arg]) -> Any:
        """Run ``script`` atomically and return its decoded reply (blocking form)."""

    @abc.abstractmethod
    async def run(self, script: Script, keys: Sequence[str], args: Sequence[Arg]) -> Any:
        """Run ``script`` atomically and return its decoded reply."""

    @abc.abstractmethod
    def subscribe(self, channel: str, callback: MessageCallback) -> Subscription:
        """Call ``callback(message)`` for each message published on ``channel``.

        Callbacks run on a background thread (Redis) or right after the publishing script
        (memory); they must be quick and thread-safe. A callback that raises is logged.
        """

    @abc.abstractmethod
    def ping_sync(self) -> float:
        """Round-trip the server; return the latency in seconds."""

    @abc.abstractmethod
    async def ping(self) -> float:
        """Round-trip the server; return the latency in seconds."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release connections and background threads; the backend must not be used after."""

    async def aclose(self) -> None:
        """Async form of :meth:`close`."""
        self.close()

    def health(self) -> BackendHealth:
        """Return a snapshot of this backend's availability."""
        return self.status.snapshot()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url!r})"
