"""How long a worker has been silent, as far as its supervisor could hear.

A worker whose heartbeats stop is taken for hung and killed. But the supervisor hears them only
while its own event loop runs: when the loop stands still (a busy machine, the process descheduled,
a blocking call), heartbeats that came meanwhile wait unread in the socket, and the first check
after the stall would find every worker silent at once and kill them all. So the time the
supervisor itself stood still is not counted as the worker's silence.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Silence:
    """Checked every ``interval_s``; ``beat()`` when a heartbeat is read, ``heard_for()`` at each
    check (times from one monotonic clock)."""

    interval_s: float
    last_beat: float
    last_check: float = 0.0  # set by checks_start() once the worker serves and checks begin
    deaf_s: float = 0.0  # since the last beat: time the supervisor stood still and could not hear

    def checks_start(self, now: float) -> None:
        self.last_check = now

    def beat(self, now: float) -> None:
        self.last_beat, self.deaf_s = now, 0.0

    def heard_for(self, now: float) -> float:
        """Seconds of silence since the last beat, less the supervisor's own stalls: a check that
        comes more than an interval late found the supervisor stalled for the lateness."""
        late = now - self.last_check - self.interval_s
        if late > self.interval_s:
            self.deaf_s += late
        self.last_check = now
        return max(0.0, now - self.last_beat - self.deaf_s)
