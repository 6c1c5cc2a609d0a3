"""The priority connection queue (issue 5): see ``docs/queue.md``."""

from ._config import Priority as Priority
from ._queue import PriorityQueue as PriorityQueue
from ._queue import QueueSlot as QueueSlot
from ._queue import SyncQueueSlot as SyncQueueSlot
from ._stats import QueueStats as QueueStats
from ._stats import WaitStats as WaitStats

__all__ = ("Priority", "PriorityQueue", "QueueSlot", "QueueStats", "SyncQueueSlot", "WaitStats")
