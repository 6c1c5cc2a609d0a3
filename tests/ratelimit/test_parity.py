"""The Lua scripts and their pure Python twins give identical replies, step by step.

Redis runs with a frozen clock (``now()`` is exactly the test offset), so both sides decide at
the same instants: epoch-scale times, where a float's resolution is about 0.24 µs.
"""

from __future__ import annotations

import math
import random
from typing import Any

import pytest

from resilience import Backend, MemoryBackend, RateLimit, RateLimitAlgorithm
from resilience._backends._redis import RedisBackend
from resilience._ratelimit._limiter import _params
from resilience._ratelimit._scripts import RESET, SCRIPTS
from tests.conftest import REDIS_BACKENDS, make_backend
from tests.ratelimit._exact_worker import FROZEN_PRELUDE

#: An epoch-scale start (Redis TIME is epoch seconds).
BASE = 1_700_000_000.0

Policies = list[RateLimit]
CONFIGS: list[Policies] = [
    [RateLimit(rate=3, period=10)],
    [RateLimit(rate=2, period=5)],  # 0.4 per second
    [RateLimit(rate=7, period=3)],
    [RateLimit(rate=1, period=0.3)],
    [RateLimit(rate=3, period=10), RateLimit(rate=5, period=100)],
    [RateLimit(rate=4, period=1), RateLimit(rate=6, period=7.5), RateLimit(rate=20, period=60)],
]
BURSTS: list[Policies] = [
    [RateLimit(rate=2, period=5, burst=4)],
    [RateLimit(rate=3, period=7, burst=5), RateLimit(rate=10, period=60)],
]
# Negative: the server clock goes back (a failover to a server whose clock is behind).
DELAYS = [0.0, 0.0, 0.0, 0.001, 0.1, 0.25, 1 / 3, 0.5, 1.0, 2.7, 11.0, -0.2, -4.0]

# (seconds to advance, step, cost); step is "hit", "peek" or "reset".
Step = tuple[float, str, int]


def _steps(seed: int, policies: Policies) -> list[Step]:
    rng = random.Random(seed)
    smallest = min(p.capacity for p in policies)
    # 1_700_000_000.1 is where floor(t / 0.3) and Python's t // 0.3 disagree.
    steps: list[Step] = [(0.1, "hit", 1)]
    for _ in range(150):
        kind = rng.choices(["hit", "peek", "reset"], [12, 3, 0.2])[0]
        steps.append((rng.choice(DELAYS), kind, min(rng.choice([1, 1, 1, 2, 3]), smallest)))
    return steps


def _normalise(reply: Any) -> tuple[Any, ...]:
    if not isinstance(reply, tuple):
        # reset: whether the key had state (Redis drops a list the log emptied; the memory
        # log stays as an empty object, so the number of keys may differ, not the answer).
        return (bool(reply),)
    out = list(reply)
    if len(out) > 1:
        # Remaining hits: the memory cores may return the unfloored level (the result floors).
        out[2] = math.floor(float(out[2]) + 1e-9)
        out[5:] = [math.floor(float(r) + 1e-9) for r in out[5:]]
    return tuple(out)


def _run(
    backend: Backend, advance: Any, algorithm: RateLimitAlgorithm, policies: Policies, seed: int
) -> list[tuple[Any, ...]]:
    flat: list[float] = []
    for policy in policies:
        flat += _params(algorithm, policy)
    # Keys outlive the test: Redis expires keys in real time, the memory store on the fake
    # clock, and once the clock goes back an expired state and a stale one differ. (The TTLs
    # themselves are tested in test_state_and_failures.py.)
    ttl = 1e6
    n = len(policies)
    if algorithm is RateLimitAlgorithm.SLIDING_WINDOW:
        keys = [backend.key("ratelimit", "parity", "k", str(i)) for i in range(n)]
    else:
        keys = [backend.key("ratelimit", "parity", "k")]
    replies = []
    for seconds, kind, cost in _steps(seed, policies):
        if seconds:
            advance(seconds)
        if kind == "reset":
            reply = backend.run_sync(RESET, keys, ())
        else:
            reply = backend.run_sync(
                SCRIPTS[algorithm], keys, [cost, int(kind == "peek"), ttl, n, *flat]
            )
        replies.append(_normalise(reply))
    return replies


def _frozen(kind: str, request: pytest.FixtureRequest) -> RedisBackend:
    backend = make_backend(kind, request)
    assert isinstance(backend, RedisBackend)
    backend._prelude = FROZEN_PRELUDE  # now() is the offset itself: time moves only by advance
    backend.clock_offset = BASE
    return backend


@pytest.mark.parametrize("kind", REDIS_BACKENDS)
@pytest.mark.parametrize("algorithm", list(RateLimitAlgorithm))
def test_lua_mirrors_python(
    kind: str, algorithm: RateLimitAlgorithm, request: pytest.FixtureRequest
) -> None:
    configs = CONFIGS + (
        BURSTS if algorithm in (RateLimitAlgorithm.TOKEN_BUCKET, RateLimitAlgorithm.GCRA) else []
    )
    redis = _frozen(kind, request)
    now = [BASE]  # the memory side's clock, which may go back

    def move(seconds: float) -> None:
        now[0] += seconds

    def move_redis(seconds: float) -> None:
        redis.clock_offset += seconds

    try:
        for number, policies in enumerate(configs):
            now[0] = redis.clock_offset = BASE
            memory = _run(MemoryBackend(clock=lambda: now[0]), move, algorithm, policies, number)
            lua = _run(redis, move_redis, algorithm, policies, number)
            steps = _steps(number, policies)
            for index, (mine, theirs) in enumerate(zip(memory, lua, strict=True)):
                assert mine == theirs, (
                    f"config {number} step {index} {steps[index]}: python {mine} != lua {theirs}"
                )
            redis.run_sync(
                RESET, [redis.key("ratelimit", "parity", "k", str(i)) for i in range(3)], ()
            )
            redis.run_sync(RESET, [redis.key("ratelimit", "parity", "k")], ())
            outcomes = {reply[0] for reply in memory if len(reply) > 1}
            assert outcomes == {0, 1}  # both admissions and refusals were compared
    finally:
        redis.close()
