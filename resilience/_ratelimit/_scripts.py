"""The rate limiter's atomic steps: one :class:`~resilience.Script` per algorithm, plus reset.

Each pairs ``resilience/lua/ratelimit_<algorithm>.lua`` with its pure Python twin in
:mod:`._buckets`, :mod:`._windows` or :mod:`._log`; both give ``(allowed, index, remaining,
reset_after, retry_after)`` (plus every limit's remaining hits when peeking) once the Redis reply
is decoded.
"""

from __future__ import annotations

import struct
from typing import Any

from .._backends._base import Script
from . import _algorithms as algo
from . import _buckets, _log, _windows
from ._policy import RateLimitAlgorithm

__all__ = ["RESET", "SCRIPTS"]


_TIMES = struct.Struct("<dd").unpack


def _decode(reply: list[Any]) -> tuple[Any, ...]:
    """Redis reply to the twin's shape.

    The scripts return ``{allowed, index, remaining, times[, remaining_i...]}`` where
    ``times`` packs reset-after and retry-after as two little-endian doubles (cheaper than
    formatting them as text on the server, and exact).
    """
    reset_after, retry_after = _TIMES(reply[3])
    if len(reply) == 4:
        return (reply[0], reply[1], reply[2], reset_after, retry_after)
    return (reply[0], reply[1], reply[2], reset_after, retry_after, *reply[4:])


#: The arguments, clock and state reader every decision script shares (Lua).
_COMMON = ("ratelimit_common",)

#: The decision script of each algorithm.
SCRIPTS: dict[RateLimitAlgorithm, Script] = {
    algorithm: Script(f"ratelimit_{algorithm.value}", core, _decode, includes=_COMMON)
    for algorithm, core in (
        (RateLimitAlgorithm.TOKEN_BUCKET, _buckets.token_bucket),
        (RateLimitAlgorithm.GCRA, _buckets.gcra),
        (RateLimitAlgorithm.SLIDING_WINDOW, _log.sliding_window),
        (RateLimitAlgorithm.SLIDING_WINDOW_COUNTER, _windows.sliding_window_counter),
        (RateLimitAlgorithm.FIXED_WINDOW, _windows.fixed_window),
    )
}

#: Deletes every state key of one user key.
RESET = Script("ratelimit_reset", algo.reset, int)
