"""The Lua script and the pure Python rules agree step by step (one source of truth, mirrored)."""

from __future__ import annotations

from typing import Any

import pytest

from resilience import FakeClock, MemoryBackend
from resilience._breaker._core import (
    CANCELLED,
    CONSECUTIVE,
    COUNT,
    FAILURE,
    IGNORED,
    SUCCESS,
    TIME,
    Params,
)
from resilience._breaker._scripts import STEP, Reply
from tests.conftest import REDIS_BACKENDS, make_backend

CONSEC = Params(CONSECUTIVE, 3, 100, 10, 0.5, 0.0, 1.0, 10.0, 2.0, 25.0, 2, 2, 5.0, 60.0)
WINDOW = Params(COUNT, 5, 4, 4, 0.5, 0.5, 0.5, 10.0, 1.0, 100.0, 1, 1, 5.0, 60.0)
TIMED = Params(TIME, 5, 10.0, 3, 0.5, 0.0, 1.0, 10.0, 1.0, 100.0, 1, 1, 5.0, 60.0)

# (seconds to advance, params, step, step arguments); "gen" stands for the current generation.
Step = tuple[float, Params, str, list[Any]]
SCRIPT: list[Step] = [
    (0, CONSEC, "acquire", []),  # creates the state (its generation is the clock in ms)
    (0, CONSEC, "record", ["gen", 0, FAILURE, 0.1, "Boom"]),
    (0, CONSEC, "record", ["gen", 0, SUCCESS, 0.1, ""]),
    (0, CONSEC, "record", ["gen", 0, IGNORED, 0.1, ""]),
    (0, CONSEC, "record", ["gen", 0, FAILURE, 0.1, "Boom"]),
    (0, CONSEC, "record", ["gen", 0, FAILURE, 0.1, "Boom"]),
    (0, CONSEC, "record", ["gen", 0, FAILURE, 0.1, "Boom"]),  # trips
    (0, CONSEC, "record", ["old", 0, FAILURE, 0.1, "Boom"]),  # stale
    (1, CONSEC, "acquire", []),  # rejected, 9 s left
    (10, CONSEC, "acquire", []),  # half-open, permit 1
    (0, CONSEC, "acquire", []),  # permit 2
    (0, CONSEC, "acquire", []),  # full
    (0, CONSEC, "record", ["gen", 1, CANCELLED, 0.0, ""]),  # permit 1 back
    (0, CONSEC, "acquire", []),  # permit 3
    (6, CONSEC, "acquire", []),  # leases expired: permit 4
    (0, CONSEC, "record", ["gen", 4, FAILURE, 0.1, "Boom"]),  # reopens for 20 s
    (19, CONSEC, "acquire", []),
    (2, CONSEC, "acquire", []),
    (0, CONSEC, "record", ["gen", 5, SUCCESS, 0.1, ""]),
    (0, CONSEC, "acquire", []),
    (0, CONSEC, "record", ["gen", 6, SUCCESS, 0.1, ""]),  # closes
    (0, CONSEC, "admin", [1]),  # force open
    (100, CONSEC, "acquire", []),
    (0, CONSEC, "admin", [2]),  # disable
    (0, CONSEC, "record", ["gen", 0, FAILURE, 0.1, "Boom"]),
    (0, CONSEC, "admin", [0]),  # reset
    (0, WINDOW, "record", ["gen", 0, SUCCESS, 0.6, ""]),  # slow
    (0, WINDOW, "record", ["gen", 0, FAILURE, 0.1, "Boom"]),
    (0, WINDOW, "record", ["gen", 0, SUCCESS, 0.1, ""]),
    (0, WINDOW, "record", ["gen", 0, SUCCESS, 0.1, ""]),
    (0, WINDOW, "record", ["gen", 0, SUCCESS, 0.1, ""]),  # slides
    (0, WINDOW, "record", ["gen", 0, SUCCESS, 0.7, ""]),
    (0, WINDOW, "record", ["gen", 0, SUCCESS, 0.7, ""]),  # 2 slow of 4: trips
    (0, WINDOW, "status", []),
    (11, WINDOW, "acquire", []),  # half-open, permit 7
    (0, WINDOW, "record", ["gen", 7, SUCCESS, 0.9, ""]),  # a slow probe reopens it
    (0, TIMED, "admin", [0]),
    (0, TIMED, "record", ["gen", 0, FAILURE, 0.1, "Boom"]),
    (4, TIMED, "record", ["gen", 0, FAILURE, 0.1, "Boom"]),
    (7, TIMED, "record", ["gen", 0, SUCCESS, 0.1, ""]),  # the first one is forgotten
    (0, TIMED, "record", ["gen", 0, SUCCESS, 0.1, ""]),
    (0, TIMED, "record", ["gen", 0, FAILURE, 0.1, "Boom"]),  # 2 / 4
]


def _normalise(reply: Reply, base: int) -> tuple[Any, ...]:
    out: list[Any] = list(reply)
    out[3] -= base
    for i in (4, 15, 17):
        out[i] = round(out[i], 1)
    return tuple(out)


def _run(backend: Any, advance: Any, name: str) -> list[tuple[Any, ...]]:
    keys = [backend.key("breaker", name, "state")]
    channel = backend.channel("breaker", name)
    replies: list[tuple[Any, ...]] = []
    base = gen = old = -1
    for seconds, params, step, extra in SCRIPT:
        if seconds:
            advance(seconds)
        extra = [gen if a == "gen" else old if a == "old" else a for a in extra]
        reply = backend.run_sync(STEP, keys, [step, *params.args(), channel, *extra])
        if base < 0:
            base = reply[3]
        if reply[3] != gen:
            old, gen = gen, reply[3]
        replies.append(_normalise(reply, base))
    return replies


@pytest.mark.parametrize("kind", REDIS_BACKENDS)
def test_lua_mirrors_python(kind: str, request: pytest.FixtureRequest) -> None:
    clock = FakeClock(1_000_000.0)
    memory = _run(MemoryBackend(clock=clock), clock.advance, "parity")
    redis = make_backend(kind, request)
    try:
        lua = _run(redis, redis.advance_clock, "parity")  # type: ignore[attr-defined]
    finally:
        redis.close()
    for step, (mine, theirs) in enumerate(zip(memory, lua, strict=True)):
        assert mine == theirs, f"step {step} {SCRIPT[step][2]}: python {mine} != lua {theirs}"
    states = [reply[2] for reply in memory]
    assert {0, 1, 2, 3, 4} <= set(states)  # every state was visited
