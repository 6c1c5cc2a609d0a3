"""Fixtures of the queue tests: queues on the parametrized backend, closed after the test."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from resilience import Backend, PriorityQueue


@pytest.fixture
def make_queue() -> Iterator[Callable[..., PriorityQueue]]:
    """Build queues (unique names per call) and close them after the test."""
    made: list[PriorityQueue] = []
    counter = iter(range(1_000_000))

    def build(backend: Backend, name: str = "", **options: Any) -> PriorityQueue:
        queue = PriorityQueue(name or f"q{next(counter)}", backend=backend, **options)
        made.append(queue)
        return queue

    yield build
    for queue in made:
        queue.close()
