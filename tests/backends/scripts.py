"""Test-only scripts, shipped from tests/backends/lua."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from resilience import MemoryStore, Script


def _publish(store: MemoryStore, keys: Sequence[str], args: Sequence[Any]) -> int:
    store.publish(str(args[0]), str(args[1]).encode())
    return 1


def _sum(store: MemoryStore, keys: Sequence[str], args: Sequence[Any]) -> int:
    for key in keys:
        store.set(key, int(store.get(key) or 0) + 1, int(args[0]) / 1000)
    return len(keys)


PUBLISH = Script("publish", _publish, package="tests.backends.lua")
SUM = Script("sum", _sum, package="tests.backends.lua")


def _double(store: MemoryStore, keys: Sequence[str], args: Sequence[Any]) -> int:
    return 2 * int(args[0])


#: Uses a helper function defined in an included Lua file.
DOUBLE = Script("double", _double, int, package="tests.backends.lua", includes=("helpers",))
