"""The unix-socket and Sentinel URL forms against real private processes."""

from __future__ import annotations

import pytest

from resilience import backend_from_url
from resilience._backends._scripts import COUNTER
from tests.servers import RedisSentinel, RedisServer

pytestmark = [pytest.mark.redis, pytest.mark.anyio]


async def test_unix_socket(tmp_path_factory: pytest.TempPathFactory) -> None:
    socket = tmp_path_factory.mktemp("sock") / "redis.sock"
    server = RedisServer("--unixsocket", str(socket), "--unixsocketperm", "700").start()
    try:
        for scheme in ("redis+unix", "valkey+unix"):
            backend = backend_from_url(f"{scheme}://{socket}?db=1", prefix=scheme.replace("+", "-"))
            key = backend.key("test", "unix", "n")
            assert backend.run_sync(COUNTER, [key], [2, 60_000]) == 2
            assert await backend.run(COUNTER, [key], [3, 60_000]) == 5
            await backend.aclose()
    finally:
        server.stop()


async def test_sentinel_finds_the_master() -> None:
    master = RedisServer().start()
    sentinel = RedisSentinel(master).start()
    try:
        backend = backend_from_url(sentinel.url, timeout=1.0)
        key = backend.key("test", "sentinel", "n")
        assert backend.run_sync(COUNTER, [key], [2, 60_000]) == 2
        assert await backend.run(COUNTER, [key], [3, 60_000]) == 5
        await backend.aclose()
    finally:
        sentinel.stop()
        master.stop()
