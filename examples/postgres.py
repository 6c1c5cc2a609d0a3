"""Decorating real PostgreSQL calls: a rate limit, a priority slot and a circuit breaker, stacked.

Run it against the local server::

    python -m examples.postgres postgresql://postgres@127.0.0.1:5432/test

The outermost decorator is the limiter (refuse a flood before it queues), then the breaker
(fail fast while the database is down, without taking a slot), then the queue slot (at most
``max_concurrent`` connections at once), then the call itself.
"""

from __future__ import annotations

import sys
from typing import Any

import anyio
import psycopg

from resilience import (
    CircuitBreaker,
    CircuitOpenError,
    Priority,
    PriorityQueue,
    RateLimiter,
    RateLimitExceeded,
)


class UserStore:
    """A tiny data-access layer whose every query is protected."""

    def __init__(self, dsn: str, *, backend: Any = None) -> None:
        self.dsn = dsn
        self.breaker = CircuitBreaker(
            "postgres", failure_threshold=3, recovery_timeout=30.0, backend=backend
        )
        self.queue = PriorityQueue("postgres", max_concurrent=4, max_queue_size=50, backend=backend)
        self.limiter = RateLimiter("50/second", name="postgres-users", backend=backend)

        @self.limiter.limit(key=lambda user_id: f"user:{user_id}")
        @self.breaker
        @self.queue.limit(priority=Priority.CRITICAL)
        async def load_user(user_id: int) -> tuple[Any, ...] | None:
            async with await psycopg.AsyncConnection.connect(self.dsn, connect_timeout=2) as conn:
                cursor = await conn.execute(
                    "SELECT %s::int AS id, 'user ' || %s::text AS name", (user_id, user_id)
                )
                return await cursor.fetchone()

        self.load_user = load_user


async def main(dsn: str) -> None:
    """Load a few users, then point at a dead port and watch the breaker open."""
    store = UserStore(dsn)
    for user_id in (1, 2, 3):
        print("loaded", await store.load_user(user_id))
    dead = UserStore("postgresql://postgres@127.0.0.1:1/test")
    for user_id in range(5):
        try:
            await dead.load_user(user_id)
        except psycopg.OperationalError:
            print(f"user {user_id}: database error")
        except CircuitOpenError as error:
            print(f"user {user_id}: circuit open, retry in {error.retry_after:.0f}s")
        except RateLimitExceeded as error:
            print(f"user {user_id}: rate limited, retry in {error.retry_after:.2f}s")
    print(store.breaker.stats().model_dump_json(include={"state", "calls", "failures"}))
    print(dead.breaker.stats().model_dump_json(include={"state", "calls", "failures", "rejected"}))
    print(store.queue.stats().model_dump_json(include={"granted", "completed", "available"}))


if __name__ == "__main__":
    anyio.run(main, sys.argv[1] if len(sys.argv) > 1 else "postgresql://postgres@127.0.0.1/test")
