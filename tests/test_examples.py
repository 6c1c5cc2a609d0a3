"""The examples run against the real local services (PostgreSQL, Redis)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import psycopg
import pytest

from examples.postgres import UserStore
from resilience import Backend, CircuitOpenError, CircuitState, MemoryBackend
from tests.conftest import REQUIRE_REDIS

DSN = os.environ.get("POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/test")
REQUIRE_POSTGRES = REQUIRE_REDIS or os.environ.get("RESILIENCE_REQUIRE_POSTGRES") == "1"

pytestmark = [pytest.mark.anyio, pytest.mark.postgres]


@pytest.fixture
def anyio_backend() -> str:
    """psycopg's async connections run on asyncio only (its waiting loop is asyncio's)."""
    return "asyncio"


@pytest.fixture(scope="module")
def postgres() -> str:
    try:
        psycopg.connect(DSN, connect_timeout=2).close()
    except psycopg.OperationalError as error:
        if REQUIRE_POSTGRES:
            pytest.fail(f"PostgreSQL is required in CI and did not answer: {error}")
        pytest.skip(f"no PostgreSQL at {DSN}")
    return DSN


@pytest.fixture
def memory() -> Iterator[Backend]:
    backend = MemoryBackend()
    yield backend
    backend.close()


async def test_protected_queries_reach_postgres(postgres: str, memory: Backend) -> None:
    store = UserStore(postgres, backend=memory)
    assert await store.load_user(7) == (7, "user 7")
    assert await store.load_user(8) == (8, "user 8")
    stats = store.breaker.stats()
    assert (stats.state, stats.successes, stats.failures) == (CircuitState.CLOSED, 2, 0)
    queue = store.queue.stats()
    assert (queue.granted, queue.completed, queue.active) == (2, 2, 0)
    assert store.limiter.stats().allowed == 2


async def test_a_dead_database_opens_the_breaker(memory: Backend) -> None:
    store = UserStore("postgresql://postgres@127.0.0.1:1/test", backend=memory)
    for user_id in range(3):
        with pytest.raises(psycopg.OperationalError):
            await store.load_user(user_id)
    with pytest.raises(CircuitOpenError) as info:
        await store.load_user(99)
    assert info.value.name == "postgres"
    stats = store.breaker.stats()
    assert (stats.state, stats.failures, stats.rejected) == (CircuitState.OPEN, 3, 1)
    # the refused call never took a connection slot
    assert store.queue.stats().granted == 3
