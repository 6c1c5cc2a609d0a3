"""Delivering events to user callbacks: a callback that raises is logged and changes nothing.

Every primitive's listeners, the backend status listeners and pub/sub subscribers go through
:func:`deliver`, so the rule ("a raising listener never changes behaviour") lives in one place.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import TypeVar

__all__ = ["deliver"]

E = TypeVar("E")


def deliver(
    listeners: Iterable[Callable[[E], object]], event: E, logger: logging.Logger, what: str
) -> None:
    """Call every listener with ``event``; log (as ``what``) and skip any that raises."""
    for listener in list(listeners):
        try:
            listener(event)
        except Exception:
            logger.exception("%s %r raised; ignored", what, listener)
