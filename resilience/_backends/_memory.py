"""The in-memory backend: one process, any thread, asyncio or trio.

Scripts run under one :class:`threading.Lock`, exactly as Redis runs one script at a time; each
script is a short pure function, so the lock is never held across I/O or user code, and async
callers run it inline (no thread hop, nothing to cancel half-way).

Memory stays bounded: every key is stored with a time to live, refreshed by the scripts that
touch it. Keys are kept in one insertion-ordered queue per TTL value, ordered by last touch, so
the oldest key of each queue is the first to expire; each write evicts a few expired keys from
the queue fronts, which keeps up with any rate of new keys at O(1) cost per call.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any

from .._clock import Clock, monotonic
from .._listeners import deliver
from ._base import Arg, Backend, BackendStatus, MessageCallback, Script

__all__ = ["MemoryBackend", "MemoryStore"]

logger = logging.getLogger("resilience.backend")

#: Expired keys evicted per write, at most (more than one so eviction outpaces creation).
_EVICT_PER_WRITE = 4


class _Entry:
    __slots__ = ("deadline", "ttl", "value")

    def __init__(self, value: Any, deadline: float, ttl: float) -> None:
        self.value = value
        self.deadline = deadline
        self.ttl = ttl


class MemoryStore:
    """The key space a memory script sees: Python objects with a time to live.

    ``now`` is the backend clock's reading for the running script (the twin of Redis ``TIME``).
    Values may be mutated in place by the script holding them; call :meth:`set` or
    :meth:`touch` to refresh their TTL.
    """

    __slots__ = ("_entries", "_outbox", "_queues", "now")

    def __init__(self) -> None:
        self.now = 0.0
        self._entries: dict[str, _Entry] = {}
        self._queues: dict[float, OrderedDict[str, None]] = {}
        self._outbox: list[tuple[str, bytes]] = []

    def get(self, key: str) -> Any:
        """Return the live value of ``key``, or ``None``."""
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry.deadline <= self.now:
            self._drop(key, entry)
            return None
        return entry.value

    def set(self, key: str, value: Any, ttl: float) -> None:
        """Store ``value`` under ``key`` for ``ttl`` seconds from now (``ttl`` > 0)."""
        entry = self._entries.get(key)
        if entry is None:
            self._entries[key] = _Entry(value, self.now + ttl, ttl)
            self._enqueue(key, ttl)
        else:
            entry.value = value
            self._refresh(key, entry, ttl)
        self._evict()

    def touch(self, key: str, ttl: float) -> None:
        """Extend the life of an existing ``key`` to ``ttl`` seconds from now."""
        entry = self._entries.get(key)
        if entry is not None:
            self._refresh(key, entry, ttl)

    def delete(self, key: str) -> bool:
        """Remove ``key``; return whether it existed."""
        entry = self._entries.get(key)
        if entry is None:
            return False
        self._drop(key, entry)
        return True

    def publish(self, channel: str, message: bytes) -> None:
        """Queue ``message`` for ``channel``; delivered after the script returns."""
        self._outbox.append((channel, message))

    def __len__(self) -> int:
        return len(self._entries)

    def _refresh(self, key: str, entry: _Entry, ttl: float) -> None:
        entry.deadline = self.now + ttl
        if entry.ttl == ttl:
            self._queues[ttl].move_to_end(key)
        else:
            self._dequeue(key, entry.ttl)
            entry.ttl = ttl
            self._enqueue(key, ttl)

    def _enqueue(self, key: str, ttl: float) -> None:
        queue = self._queues.get(ttl)
        if queue is None:
            queue = self._queues[ttl] = OrderedDict()
        queue[key] = None

    def _dequeue(self, key: str, ttl: float) -> None:
        queue = self._queues[ttl]
        del queue[key]
        if not queue:
            del self._queues[ttl]

    def _drop(self, key: str, entry: _Entry) -> None:
        del self._entries[key]
        self._dequeue(key, entry.ttl)

    def _evict(self) -> None:
        budget = _EVICT_PER_WRITE
        now = self.now
        for ttl, queue in list(self._queues.items()):
            while budget and queue:
                key = next(iter(queue))
                entry = self._entries[key]
                if entry.deadline > now:
                    break
                budget -= 1
                del self._entries[key]
                queue.popitem(last=False)
            if not queue:
                del self._queues[ttl]
            if not budget:
                return


class _MemorySubscription:
    __slots__ = ("_backend", "_callback", "_channel")

    def __init__(self, backend: MemoryBackend, channel: str, callback: MessageCallback) -> None:
        self._backend = backend
        self._channel = channel
        self._callback = callback

    def close(self) -> None:
        self._backend._unsubscribe(self._channel, self._callback)


class MemoryBackend(Backend):
    """State in this process; the default backend.

    ``clock`` is the time source of every decision (``time.monotonic`` unless a test passes a
    :class:`~resilience.FakeClock`). Thread-safe for sync callers and safe on asyncio and trio.
    """

    is_local = True

    def __init__(self, *, clock: Clock = monotonic, prefix: str = "resilience") -> None:
        self.clock = clock
        self.prefix = prefix
        self.url = "memory://"
        self.status = BackendStatus(self.url, probe_interval=0.0)
        self._lock = threading.Lock()
        self._store = MemoryStore()
        self._subscribers: dict[str, list[MessageCallback]] = {}

    @property
    def store(self) -> MemoryStore:
        """The key space, for tests and introspection (hold no reference across calls)."""
        return self._store

    def run_sync(self, script: Script, keys: Sequence[str], args: Sequence[Arg]) -> Any:
        """Run ``script``'s Python twin under the lock and return its reply."""
        with self._lock:
            store = self._store
            store.now = self.clock()
            reply = script.memory(store, keys, args)
            if not store._outbox:
                return reply
            outbox, store._outbox = store._outbox, []
        self._deliver(outbox)
        return reply

    async def run(self, script: Script, keys: Sequence[str], args: Sequence[Arg]) -> Any:
        """Same as :meth:`run_sync`: no I/O, so nothing to await."""
        return self.run_sync(script, keys, args)

    def call(self, fn: Callable[[MemoryStore], Any]) -> Any:
        """Run ``fn(store)`` under the lock: for introspection and tests, not for primitives."""
        with self._lock:
            self._store.now = self.clock()
            return fn(self._store)

    def subscribe(self, channel: str, callback: MessageCallback) -> _MemorySubscription:
        """Deliver messages published by scripts on ``channel`` to ``callback``."""
        with self._lock:
            self._subscribers.setdefault(channel, []).append(callback)
        return _MemorySubscription(self, channel, callback)

    def _unsubscribe(self, channel: str, callback: MessageCallback) -> None:
        with self._lock:
            callbacks = self._subscribers.get(channel, [])
            if callback in callbacks:
                callbacks.remove(callback)
            if not callbacks:
                self._subscribers.pop(channel, None)

    def _deliver(self, outbox: list[tuple[str, bytes]]) -> None:
        for channel, message in outbox:
            deliver(self._subscribers.get(channel, ()), message, logger, f"subscriber of {channel}")

    def ping_sync(self) -> float:
        """Nothing to reach: always ``0.0``."""
        return 0.0

    async def ping(self) -> float:
        """Nothing to reach: always ``0.0``."""
        return 0.0

    def close(self) -> None:
        """Drop all state and subscribers."""
        with self._lock:
            self._store = MemoryStore()
            self._subscribers.clear()
