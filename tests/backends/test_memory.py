"""The memory backend: bounded memory, thread safety, the injected clock."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import pytest

from resilience import FakeClock, MemoryBackend, MemoryStore, Script
from resilience._backends import default_backend
from resilience._backends._scripts import COUNTER, SERVER_TIME


def _put(store: MemoryStore, keys: Sequence[str], args: Sequence[Any]) -> None:
    store.set(keys[0], args[0], float(args[1]))


def _get(store: MemoryStore, keys: Sequence[str], args: Sequence[Any]) -> Any:
    return store.get(keys[0])


PUT = Script("put", _put)
GET = Script("get", _get)


def test_values_expire_with_the_backend_clock() -> None:
    clock = FakeClock()
    backend = MemoryBackend(clock=clock)
    backend.run_sync(PUT, ["k"], ["v", 10])
    clock.advance(9.99)
    assert backend.run_sync(GET, ["k"], []) == "v"
    clock.advance(0.01)
    assert backend.run_sync(GET, ["k"], []) is None


def test_idle_keys_are_evicted_so_memory_stays_bounded() -> None:
    clock = FakeClock()
    backend = MemoryBackend(clock=clock)
    for i in range(50_000):
        backend.run_sync(COUNTER, [f"a{i}"], [1, 60_000])
    assert len(backend.store) == 50_000
    clock.advance(61)
    # new traffic evicts the expired keys as it goes: no sweep thread, no full scan
    for i in range(20_000):
        backend.run_sync(COUNTER, [f"b{i}"], [1, 60_000])
    assert len(backend.store) == 20_000


def test_keys_with_different_ttls_do_not_block_each_others_eviction() -> None:
    clock = FakeClock()
    backend = MemoryBackend(clock=clock)
    backend.run_sync(PUT, ["long"], ["v", 3600])
    for i in range(1000):
        backend.run_sync(PUT, [f"short{i}"], ["v", 1])
    clock.advance(2)
    for i in range(300):
        backend.run_sync(PUT, [f"new{i}"], ["v", 1])
    assert len(backend.store) == 301  # the long-lived key and the new ones


def test_touch_and_delete() -> None:
    clock = FakeClock()
    backend = MemoryBackend(clock=clock)
    backend.run_sync(PUT, ["k"], ["v", 1])
    backend.call(lambda store: store.touch("k", 10))
    clock.advance(5)
    assert backend.run_sync(GET, ["k"], []) == "v"
    assert backend.call(lambda store: store.delete("k")) is True
    assert backend.call(lambda store: store.delete("k")) is False


def test_refreshing_a_key_with_another_ttl_moves_it() -> None:
    clock = FakeClock()
    backend = MemoryBackend(clock=clock)
    backend.run_sync(PUT, ["k"], ["v", 1])
    backend.run_sync(PUT, ["k"], ["w", 100])
    clock.advance(50)
    assert backend.run_sync(GET, ["k"], []) == "w"


def test_scripts_are_atomic_across_threads() -> None:
    backend = MemoryBackend()
    threads = [
        threading.Thread(
            target=lambda: [backend.run_sync(COUNTER, ["n"], [1, 60_000]) for _ in range(2000)]
        )
        for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert backend.run_sync(COUNTER, ["n"], [0, 60_000]) == 16_000


def test_server_time_is_the_injected_clock() -> None:
    clock = FakeClock(123.0)
    assert MemoryBackend(clock=clock).run_sync(SERVER_TIME, [], []) == 123.0


def test_default_backend_is_one_memory_backend() -> None:
    assert default_backend() is default_backend()
    assert default_backend().is_local


def test_fake_clock_never_goes_back() -> None:
    clock = FakeClock(5)
    with pytest.raises(ValueError, match="never goes backwards"):
        clock.advance(-1)
    with pytest.raises(ValueError, match="never goes backwards"):
        clock.set(4)
    clock.set(6)
    assert clock() == 6.0
