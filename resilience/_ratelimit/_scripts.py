"""The rate limiter's atomic steps: one :class:`~resilience.Script` per algorithm, plus reset.

Each pairs ``resilience/lua/ratelimit_<algorithm>.lua`` with its pure Python twin in
:mod:`._algorithms`; both return ``(allowed, index, remaining, reset_after, retry_after)``
(plus every limit's remaining hits when peeking).
"""

from __future__ import annotations

from typing import Any

from .._backends._base import Script
from . import _algorithms as algo
from ._policy import RateLimitAlgorithm

__all__ = ["RESET", "SCRIPTS"]


def _decode(reply: list[Any]) -> tuple[Any, ...]:
    """Redis reply (integers and strings) to the twin's shape (floats for the times)."""
    if len(reply) == 5:
        return (reply[0], reply[1], reply[2], float(reply[3]), float(reply[4]))
    return (reply[0], reply[1], reply[2], float(reply[3]), float(reply[4]), *reply[5:])


#: The decision script of each algorithm.
SCRIPTS: dict[RateLimitAlgorithm, Script] = {
    RateLimitAlgorithm.TOKEN_BUCKET: Script("ratelimit_token_bucket", algo.token_bucket, _decode),
    RateLimitAlgorithm.GCRA: Script("ratelimit_gcra", algo.gcra, _decode),
    RateLimitAlgorithm.SLIDING_WINDOW: Script(
        "ratelimit_sliding_window", algo.sliding_window, _decode
    ),
    RateLimitAlgorithm.SLIDING_WINDOW_COUNTER: Script(
        "ratelimit_sliding_window_counter", algo.sliding_window_counter, _decode
    ),
    RateLimitAlgorithm.FIXED_WINDOW: Script("ratelimit_fixed_window", algo.fixed_window, _decode),
}

#: Deletes every state key of one user key.
RESET = Script("ratelimit_reset", algo.reset, int)
