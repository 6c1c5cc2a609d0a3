"""The priority connection queue (issue 5): see ``docs/queue.md``."""

from ._config import Priority as Priority
from ._events import QueueEvent as QueueEvent
from ._events import QueueEventType as QueueEventType
from ._events import QueueListener as QueueListener
from ._queue import PriorityQueue as PriorityQueue
from ._queue import QueueSlot as QueueSlot
from ._queue import SyncQueueSlot as SyncQueueSlot
from ._stats import QueueStats as QueueStats
from ._stats import WaitStats as WaitStats

__all__ = (
    "Priority",
    "PriorityQueue",
    "QueueEvent",
    "QueueEventType",
    "QueueListener",
    "QueueSlot",
    "QueueStats",
    "SyncQueueSlot",
    "WaitStats",
)
