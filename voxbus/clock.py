"""The clock a decision-making part reads, injected so that it can be replaced.

Parts that decide (the call actor and its turn-taking) never read ``time`` directly: a test steps a
:class:`ManualClock` instead of sleeping, and a recorded call can be replayed with the times it
was recorded with.
"""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    def time(self) -> float:
        """Wall-clock seconds since the epoch: the time base of every timestamp on the bus."""
        ...

    def monotonic(self) -> float:
        """Seconds that only go forward: for timeouts and deadlines."""
        ...


class SystemClock:
    def time(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()


class ManualClock:
    """A clock that moves only when told; both readings advance together."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self._time = start
        self._monotonic = 0.0

    def time(self) -> float:
        return self._time

    def monotonic(self) -> float:
        return self._monotonic

    def advance(self, seconds: float) -> None:
        self._time += seconds
        self._monotonic += seconds
