"""The shared queue's one Redis script, ``resilience/lua/queue_gate.lua``, and its reply.

On the memory backend the queue never runs it: the in-process :class:`~._local.LocalGate` is the
memory implementation (a script cannot wake a waiter later, a gate can; see ``docs/queue.md``).
The memory twin therefore refuses to run instead of pretending.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

from .._backends._base import Script
from .._backends._memory import MemoryStore
from .._exceptions import ConfigurationError

__all__ = ["GATE", "Reply"]


class Reply(NamedTuple):
    """What every operation of the gate script returns."""

    #: acquire: 1 granted, 0 queued, -1 refused; release: 1 if the ticket held a slot;
    #: check: 1 holds, 0 waits, -1 gone; cancel/abandon: 0 removed, 1 was granted, -1 gone;
    #: renew: leases renewed; clear: waiters cleared.
    status: int
    active: int
    limit: int
    queued: tuple[int, int, int, int, int]
    #: acquire: the ticket this newcomer displaced, or ``""``; renew: the tickets whose lease
    #: had lapsed, space-separated.
    displaced: str
    #: The server time of the decision: orders replies that arrive out of order.
    at: float


def _decode(raw: Sequence[Any]) -> Reply:
    extra = raw[8]
    return Reply(
        int(raw[0]),
        int(raw[1]),
        int(raw[2]),
        (int(raw[3]), int(raw[4]), int(raw[5]), int(raw[6]), int(raw[7])),
        extra.decode() if isinstance(extra, bytes) else str(extra),
        float(raw[9]),
    )


def _memory(store: MemoryStore, keys: Sequence[str], args: Sequence[Any]) -> Reply:
    raise ConfigurationError(
        "queue_gate runs on shared backends only; the memory backend uses the in-process gate"
    )


#: Every step of the shared gate (ARGV[1] names the operation).
GATE = Script("queue_gate", _memory, _decode)
