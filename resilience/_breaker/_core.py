"""The breaker's rules: a pure state machine, no I/O, no clock of its own.

Every function takes the mutable :class:`State`, the caller's :class:`Params` and ``now`` (the
backend's clock) and changes the state in place. Three callers share them:

- the in-memory breaker runs them directly under its lock (the hot path: no allocation);
- the memory twins of the Redis scripts (``_scripts.py``) run them on a ``MemoryStore`` value,
  which is also what the ``local`` failure policy falls back to;
- ``resilience/lua/breaker_*.lua`` mirror them line by line for Redis (same field names, same
  arithmetic), and the parity tests run one sequence through both.

The generation ``gen`` grows by one at every state change and starts at the clock in
milliseconds, so it never goes back even when an idle state expires and is created again. An
outcome carries the generation it was admitted under; a different one means the call began
before a state change, and the outcome is dropped.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

__all__ = [
    "CANCELLED",
    "CLOSED",
    "CONSECUTIVE",
    "COUNT",
    "DISABLED",
    "FAILURE",
    "FORCED_OPEN",
    "HALF_OPEN",
    "IGNORED",
    "NO_CHANGE",
    "OPEN",
    "REJECT_FORCED",
    "REJECT_FULL",
    "REJECT_OPEN",
    "STALE",
    "SUCCESS",
    "TIME",
    "Params",
    "State",
    "acquire",
    "admin",
    "record",
    "retry_after",
]

# States (the values of CircuitState).
CLOSED, OPEN, HALF_OPEN, FORCED_OPEN, DISABLED = 0, 1, 2, 3, 4
# Outcomes of a call.
SUCCESS, FAILURE, IGNORED, CANCELLED = 0, 1, 2, 3
# Trip rules.
CONSECUTIVE, COUNT, TIME = 0, 1, 2
# acquire() results below zero; zero admits without a permit, above zero is a probe permit.
REJECT_OPEN, REJECT_FULL, REJECT_FORCED = -1, -2, -3
# record() results: the old state when it changed, else one of these.
NO_CHANGE, STALE = -1, -2
# Admin operations.
OP_RESET, OP_FORCE_OPEN, OP_DISABLE = 0, 1, 2

#: Buckets of a time window (each covers a tenth of the window).
BUCKETS = 10


class Params:
    """The caller's configuration in the shape the rules use (also sent as script ARGV)."""

    __slots__ = (
        "half_open",
        "kind",
        "lease",
        "max_recovery",
        "min_calls",
        "multiplier",
        "rate",
        "recovery",
        "size",
        "slow",
        "slow_rate",
        "success_threshold",
        "threshold",
        "ttl",
    )

    def __init__(
        self,
        kind: int,
        threshold: int,
        size: float,
        min_calls: int,
        rate: float,
        slow: float,
        slow_rate: float,
        recovery: float,
        multiplier: float,
        max_recovery: float,
        half_open: int,
        success_threshold: int,
        lease: float,
        ttl: float,
    ) -> None:
        self.kind = kind
        self.threshold = threshold
        #: Calls (count window) or seconds (time window).
        self.size = size
        self.min_calls = min_calls
        self.rate = rate
        #: Slow-call duration in seconds; 0 disables slow-call detection.
        self.slow = slow
        self.slow_rate = slow_rate
        self.recovery = recovery
        self.multiplier = multiplier
        self.max_recovery = max_recovery
        self.half_open = half_open
        self.success_threshold = success_threshold
        self.lease = lease
        self.ttl = ttl

    def args(self) -> list[Any]:
        """The ARGV prefix every breaker script takes (order matters: the Lua reads it)."""
        return [
            self.kind,
            self.threshold,
            repr(float(self.size)),
            self.min_calls,
            repr(self.rate),
            repr(self.slow),
            repr(self.slow_rate),
            repr(self.recovery),
            repr(self.multiplier),
            repr(self.max_recovery),
            self.half_open,
            self.success_threshold,
            repr(self.lease),
            repr(self.ttl),
        ]

    @classmethod
    def from_args(cls, args: Sequence[Any]) -> Params:
        """Rebuild from :meth:`args` (the memory twins' side of ARGV)."""
        return cls(
            int(args[0]),
            int(args[1]),
            float(args[2]),
            int(args[3]),
            float(args[4]),
            float(args[5]),
            float(args[6]),
            float(args[7]),
            float(args[8]),
            float(args[9]),
            int(args[10]),
            int(args[11]),
            float(args[12]),
            float(args[13]),
        )

    #: How many ARGV entries :meth:`args` produces.
    COUNT = 14


class State:
    """One breaker's shared state (a Redis msgpack map with the same field names)."""

    __slots__ = (
        "bc",
        "bf",
        "bi",
        "bs",
        "calls",
        "cf",
        "failures",
        "gen",
        "head",
        "hs",
        "ignored",
        "lfa",
        "lft",
        "oa",
        "ou",
        "pn",
        "probes",
        "rejected",
        "ring",
        "slow",
        "st",
        "successes",
        "tr",
        "wc",
        "wf",
        "wk",
        "wp",
        "ws",
        "wz",
    )

    def __init__(self, now: float) -> None:
        self.st = CLOSED  # state
        self.gen = math.floor(now * 1000)  # generation
        self.oa = -1.0  # opened at (-1: never)
        self.ou = 0.0  # open until
        self.tr = 0  # trips since the last close (exponential open time)
        self.cf = 0  # consecutive failures
        self.hs = 0  # half-open successes
        self.pn = 0  # last probe permit id
        self.probes: dict[int, float] = {}  # permit id -> lease deadline
        self.calls = 0
        self.successes = 0
        self.failures = 0
        self.ignored = 0
        self.rejected = 0
        self.slow = 0
        self.lft = ""  # last failure type
        self.lfa = -1.0  # last failure at
        self.wk = CONSECUTIVE  # window kind the window fields below were built for
        self.wz = 0.0  # and its size
        self.wc = 0  # calls in the window
        self.wf = 0  # failures in the window
        self.ws = 0  # slow calls in the window
        self.ring: list[int] = []  # count window: outcome codes (1 failure + 2 slow)
        self.wp = 0  # count window: next position
        self.bi: list[int] = [-1] * BUCKETS  # time window: bucket index held by each slot
        self.bc: list[int] = [0] * BUCKETS
        self.bf: list[int] = [0] * BUCKETS
        self.bs: list[int] = [0] * BUCKETS
        self.head = -1  # time window: newest bucket index seen


def _window_reset(st: State) -> None:
    st.wc = st.wf = st.ws = 0
    st.ring = []
    st.wp = 0
    st.bi = [-1] * BUCKETS
    st.bc = [0] * BUCKETS
    st.bf = [0] * BUCKETS
    st.bs = [0] * BUCKETS
    st.head = -1


def _transition(st: State, state: int) -> int:
    old = st.st
    st.st = state
    st.gen += 1
    st.hs = 0
    if st.probes:
        st.probes = {}
    _window_reset(st)
    return old


def _trip(st: State, p: Params, now: float) -> int:
    duration = p.recovery * p.multiplier**st.tr
    if duration >= p.max_recovery:
        duration = p.max_recovery
    else:
        st.tr += 1
    st.oa = now
    st.ou = now + duration
    return _transition(st, OPEN)


def _close(st: State) -> int:
    st.tr = 0
    st.cf = 0
    return _transition(st, CLOSED)


def _window_add(st: State, p: Params, now: float, failed: int, slow: int) -> None:
    if st.wk != p.kind or st.wz != p.size:
        _window_reset(st)
        st.wk = p.kind
        st.wz = p.size
    code = failed + 2 * slow
    if p.kind == COUNT:
        ring = st.ring
        pos = st.wp
        if pos < len(ring):
            old = ring[pos]
            st.wc -= 1
            st.wf -= old & 1
            st.ws -= old >> 1
            ring[pos] = code
        else:
            ring.append(code)
        st.wp = (pos + 1) % int(p.size)
    else:
        idx = math.floor(now / (p.size / BUCKETS))
        bi = st.bi
        if idx != st.head:
            for j in range(BUCKETS):
                if bi[j] != -1 and bi[j] <= idx - BUCKETS:
                    st.wc -= st.bc[j]
                    st.wf -= st.bf[j]
                    st.ws -= st.bs[j]
                    bi[j] = -1
                    st.bc[j] = st.bf[j] = st.bs[j] = 0
            st.head = idx
        slot = idx % BUCKETS
        if bi[slot] != idx:
            st.wc -= st.bc[slot]
            st.wf -= st.bf[slot]
            st.ws -= st.bs[slot]
            bi[slot] = idx
            st.bc[slot] = st.bf[slot] = st.bs[slot] = 0
        st.bc[slot] += 1
        st.bf[slot] += failed
        st.bs[slot] += slow
    st.wc += 1
    st.wf += failed
    st.ws += slow


def acquire(st: State, p: Params, now: float) -> int:
    """Admit a call: ``0`` passes, a positive number is a probe permit, negative rejects.

    An OPEN breaker whose open time is over turns HALF_OPEN here (``st.gen`` changes), and then
    hands out at most ``p.half_open`` permits at once; a permit not returned within
    ``p.lease`` seconds is taken back.
    """
    state = st.st
    if state in (CLOSED, DISABLED):
        return 0
    if state == OPEN:
        if now < st.ou:
            st.rejected += 1
            return REJECT_OPEN
        _transition(st, HALF_OPEN)
    elif state == FORCED_OPEN:
        st.rejected += 1
        return REJECT_FORCED
    probes = st.probes
    if len(probes) >= p.half_open:
        for permit in [k for k, deadline in probes.items() if deadline <= now]:
            del probes[permit]
        if len(probes) >= p.half_open:
            st.rejected += 1
            return REJECT_FULL
    st.pn += 1
    probes[st.pn] = now + p.lease
    return st.pn


def record(
    st: State,
    p: Params,
    now: float,
    gen: int,
    permit: int,
    outcome: int,
    duration: float,
    failure_type: str,
    n: int = 1,
) -> int:
    """Apply one outcome; return the old state if it changed, else NO_CHANGE or STALE.

    ``n`` applies ``n`` identical successes at once (the memory engine's batched closed path;
    the Lua script always records one).
    """
    if gen != st.gen:
        return STALE
    if permit:
        st.probes.pop(permit, None)
    if outcome >= IGNORED:
        if outcome == IGNORED:
            st.ignored += 1
        return NO_CHANGE
    slow = 1 if p.slow > 0 and duration >= p.slow else 0
    st.calls += n
    st.slow += slow
    failed = 1 if outcome == FAILURE else 0
    if failed:
        st.failures += 1
        st.cf += 1
        st.lft = failure_type
        st.lfa = now
    else:
        st.successes += n
        st.cf = 0
    state = st.st
    if state == CLOSED:
        if p.kind == CONSECUTIVE:
            if failed and st.cf >= p.threshold:
                return _trip(st, p, now)
            return NO_CHANGE
        _window_add(st, p, now, failed, slow)
        if st.wc >= p.min_calls and (
            st.wf >= p.rate * st.wc or (p.slow > 0 and st.ws >= p.slow_rate * st.wc)
        ):
            return _trip(st, p, now)
        return NO_CHANGE
    if state == HALF_OPEN:
        if failed or slow:
            return _trip(st, p, now)
        st.hs += 1
        if st.hs >= p.success_threshold:
            return _close(st)
    return NO_CHANGE


def admin(st: State, now: float, op: int) -> int:
    """Operator actions: reset (closed, counters cleared), force open, disable; return old."""
    if op == OP_RESET:
        st.calls = st.successes = st.failures = st.ignored = st.rejected = st.slow = 0
        st.lft = ""
        st.lfa = -1.0
        st.oa = -1.0
        return _close(st)
    if op == OP_FORCE_OPEN:
        st.oa = now
        return _transition(st, FORCED_OPEN)
    return _transition(st, DISABLED)


def retry_after(st: State, now: float) -> float:
    """Seconds until the next probe may pass (``inf`` while forced open)."""
    if st.st == OPEN:
        return max(st.ou - now, 0.0)
    if st.st == FORCED_OPEN:
        return math.inf
    return 0.0
