"""The one clock abstraction.

A clock is any zero-argument callable returning seconds as a float from an arbitrary, never
decreasing origin. Production uses :func:`time.monotonic`; tests (ours and our users') pass a
:class:`FakeClock` and move time by hand. The Redis backend ignores both and reads the server's
``TIME`` inside its scripts.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

__all__ = ["Clock", "FakeClock", "monotonic"]

#: The type of a clock: ``clock() -> seconds``.
Clock = Callable[[], float]

#: The production clock.
monotonic: Clock = time.monotonic


class FakeClock:
    """A clock that only moves when told to; thread-safe.

    >>> clock = FakeClock()
    >>> clock.advance(1.5)
    >>> clock()
    1.5
    """

    __slots__ = ("_lock", "_now")

    def __init__(self, start: float = 0.0) -> None:
        self._now = float(start)
        self._lock = threading.Lock()

    def __call__(self) -> float:
        """Return the current fake time."""
        return self._now

    def advance(self, seconds: float) -> None:
        """Move time forward by ``seconds`` (negative values are refused: clocks never go back)."""
        if seconds < 0:
            raise ValueError("a clock never goes backwards")
        with self._lock:
            self._now += seconds

    def set(self, now: float) -> None:
        """Jump to ``now``, which must not be earlier than the current time."""
        with self._lock:
            if now < self._now:
                raise ValueError("a clock never goes backwards")
            self._now = float(now)

    def __repr__(self) -> str:
        return f"FakeClock({self._now!r})"
