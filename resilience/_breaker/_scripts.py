"""The breaker's atomic steps as :class:`~resilience.Script` objects.

All four run ``resilience/lua/breaker_step.lua`` on Redis (``ARGV[1]`` names the step, so the
Lua helpers exist once) and the pure rules of ``_core.py`` on a ``MemoryStore``. Every step
replies with the same flat tuple, :data:`Reply`::

    (result, old_state, state, gen, retry_after, calls, successes, failures, ignored, rejected,
     slow, consecutive_failures, window_calls, window_failures, window_slow, opened_age,
     last_failure_type, last_failure_age, probes_in_flight)

``result`` is the acquire decision (``0`` pass, ``> 0`` probe permit, ``< 0`` rejected);
``old_state`` is the state before the step if it changed, else ``NO_CHANGE`` (or ``STALE`` for a
dropped outcome); ages are seconds before the step (``-1``: never).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from .._backends._base import Script
from .._backends._memory import MemoryStore
from . import _core
from ._core import DISABLED, FORCED_OPEN, NO_CHANGE, Params, State

__all__ = ["STEP", "Reply", "decode", "state_reply", "transition_message"]

Reply = tuple[
    int,
    int,
    int,
    int,
    float,
    int,
    int,
    int,
    int,
    int,
    int,
    int,
    int,
    int,
    int,
    float,
    str,
    float,
    int,
]

#: Index of the first step-specific argument after the op, the parameters and the channel.
_EXTRA = 2 + Params.COUNT


def state_reply(st: State, now: float, result: int, old: int) -> Reply:
    """Build the reply of a step from the state after it."""
    return (
        result,
        old,
        st.st,
        st.gen,
        _core.retry_after(st, now),
        st.calls,
        st.successes,
        st.failures,
        st.ignored,
        st.rejected,
        st.slow,
        st.cf,
        st.wc,
        st.wf,
        st.ws,
        now - st.oa if st.oa >= 0 else -1.0,
        st.lft,
        now - st.lfa if st.lfa >= 0 else -1.0,
        len(st.probes),
    )


def decode(raw: list[Any]) -> Reply:
    """Turn the Lua reply (integers, and bytes for floats and text) into :data:`Reply`."""
    return (
        int(raw[0]),
        int(raw[1]),
        int(raw[2]),
        int(raw[3]),
        float(raw[4]),
        int(raw[5]),
        int(raw[6]),
        int(raw[7]),
        int(raw[8]),
        int(raw[9]),
        int(raw[10]),
        int(raw[11]),
        int(raw[12]),
        int(raw[13]),
        int(raw[14]),
        float(raw[15]),
        raw[16].decode() if isinstance(raw[16], bytes) else str(raw[16]),
        float(raw[17]),
        int(raw[18]),
    )


def transition_message(st: State, now: float) -> bytes:
    """What a step publishes when it changed the state: ``gen:state:retry_after``."""
    return f"{st.gen}:{st.st}:{_core.retry_after(st, now)!r}".encode()


def _seeded(old: State, now: float, args: Sequence[Any]) -> State:
    """A state that goes on from a shared one known elsewhere (state, retry, cf, opened age).

    Only the ``local`` failure policy runs this step, on its in-process fallback, when the
    shared backend fails: an open breaker stays open for the rest of its open time (a
    half-open one lets a local probe through at once), a forced or disabled one stays so, and a
    closed one keeps its consecutive failures. The generation keeps growing.
    """
    state, retry, cf, opened_age = int(args[0]), float(args[1]), int(args[2]), float(args[3])
    st = State(now)
    st.gen = max(st.gen, old.gen + 1)
    st.cf = cf
    if state in (_core.OPEN, _core.HALF_OPEN):
        st.st = _core.OPEN
        st.ou = now + retry if state == _core.OPEN else now
        st.oa = now - opened_age if opened_age >= 0 else now
    elif state in (FORCED_OPEN, DISABLED):
        st.st = state
        st.oa = now - opened_age if opened_age >= 0 else -1.0
    return st


def _step(store: MemoryStore, keys: Sequence[str], args: Sequence[Any]) -> Reply:
    now = store.now
    p = Params.from_args(args[1 : 1 + Params.COUNT])
    step = args[0]
    st = store.get(keys[0])
    if st is None:
        st = State(now)
        if step == "status":
            return state_reply(st, now, 0, NO_CHANGE)
    gen0 = st.gen
    result, old = 0, NO_CHANGE
    if step == "acquire":
        result = _core.acquire(st, p, now)
        if st.gen != gen0:
            old = _core.OPEN
    elif step == "record":
        old = _core.record(
            st,
            p,
            now,
            int(args[_EXTRA]),
            int(args[_EXTRA + 1]),
            int(args[_EXTRA + 2]),
            float(args[_EXTRA + 3]),
            str(args[_EXTRA + 4]),
        )
    elif step == "admin":
        old = _core.admin(st, now, int(args[_EXTRA]))
    elif step == "seed":
        st = _seeded(st, now, args[_EXTRA:])
    if step != "status":
        if st.st == FORCED_OPEN or st.st == DISABLED:
            store.set(keys[0], st, math.inf)
        else:
            store.set(keys[0], st, p.ttl + max(st.ou - now, 0.0))
        if st.gen != gen0:
            store.publish(str(args[1 + Params.COUNT]), transition_message(st, now))
    return state_reply(st, now, result, old)


#: Every step: ``[step, *params, channel, *step_args]`` where step is ``acquire``, ``record``
#: (gen, permit, outcome, duration, failure type), ``admin`` (op) or ``status``; and, on the
#: ``local`` policy's in-process fallback only (never sent to Redis), ``seed`` (state,
#: retry after, consecutive failures, opened age).
STEP = Script("breaker_step", _step, decode)
