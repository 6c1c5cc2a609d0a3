"""Scripts that belong to the backend itself rather than to a primitive."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ._base import Script
from ._memory import MemoryStore

__all__ = ["COUNTER", "NOOP", "SERVER_TIME"]


def _server_time(store: MemoryStore, keys: Sequence[str], args: Sequence[Any]) -> float:
    return store.now


def _decode_time(reply: bytes) -> float:
    return float(reply)


def _noop(store: MemoryStore, keys: Sequence[str], args: Sequence[Any]) -> int:
    return 1


def _counter(store: MemoryStore, keys: Sequence[str], args: Sequence[Any]) -> int:
    value = int(store.get(keys[0]) or 0) + int(args[0])
    store.set(keys[0], value, int(args[1]) / 1000)
    return value


#: The backend's clock in seconds: ``TIME`` on Redis, the injected clock in memory.
SERVER_TIME = Script("server_time", _server_time, _decode_time)
#: Does nothing: one round trip, the floor every other script is measured against.
NOOP = Script("noop", _noop)
#: ``INCRBY`` with a TTL in milliseconds.
COUNTER = Script("counter", _counter, int)
