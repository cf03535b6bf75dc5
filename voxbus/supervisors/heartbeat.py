"""How long a worker has been silent, as far as its supervisor could hear.

A worker whose heartbeats stop is taken for hung and killed. But the supervisor hears them only
while its own event loop runs: when the loop stands still (a busy machine, the process descheduled,
a blocking call), heartbeats that came meanwhile wait unread in the socket, and the first check
after the stall would find every worker silent at once and kill them all. So the time the
supervisor itself stood still is not counted as the worker's silence.

Nor is every silent worker hung. On a loaded machine a worker's event loop can be starved for
seconds while its threads go on transcribing: a worker that stays silent but keeps using CPU is
busy, and is given ``busy_timeout_s`` (a worker stuck in a loop is caught then). So is one with a
thread that is ready to run but waits for a core, or waits in the kernel for the disk: the machine
holds it back, not itself (a stressed run killed an STT worker that had used no CPU for a second).
One that uses no CPU and has every thread asleep or stopped (SIGSTOP, a deadlock) is hung after
``heartbeat_timeout_s``.
"""

from __future__ import annotations

import os
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

CPU_WINDOW_S = 1.0  # CPU used over this much of the last checks: a worker stopped this long uses none
HELD_BACK_STATES = frozenset("RD")  # a thread runnable (no core free) or in disk sleep


def cpu_seconds(pid: int) -> float | None:
    """User and system CPU time of a process so far (all its threads), or None where the kernel does
    not say (no /proc, the process gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()  # after the command name, which may hold spaces
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime


def thread_states(pid: int) -> str | None:
    """The state letter of each thread of the process (R running or ready, S asleep, D waiting for
    the disk, T stopped...), in thread order; None where the kernel does not say."""
    try:
        threads = sorted(os.listdir(f"/proc/{pid}/task"), key=int)
    except OSError:
        return None
    states = []
    for tid in threads:
        try:
            stat = Path(f"/proc/{pid}/task/{tid}/stat").read_text()
        except OSError:
            continue  # the thread ended meanwhile
        states.append(stat[stat.rindex(")") + 2])
    return "".join(states)


def held_back(pid: int) -> bool | None:
    """Whether a thread of the process is ready to run but has no core, or waits in the kernel for
    the disk (:data:`HELD_BACK_STATES`); None where the kernel does not say."""
    states = thread_states(pid)
    return None if states is None else any(state in HELD_BACK_STATES for state in states)


def describe(states: str | None, cpu_used_s: float | None) -> str:
    """What a silent worker was doing, for the line that says it was killed: "12 threads S, 1 T;
    0.00 s CPU in the last second"."""
    counts = {state: (states or "").count(state) for state in dict.fromkeys(states or "")}
    threads = ", ".join(f"{n} {state}" for state, n in counts.items()) or "not known"
    cpu = "CPU not known" if cpu_used_s is None else f"{cpu_used_s:.2f} s CPU in the last second"
    return f"threads {threads}; {cpu}"


def hung(
    silent_s: float, cpu_used_s: float | None, timeout_s: float, busy_timeout_s: float, held: bool = False
) -> bool:
    """Whether a worker silent for ``silent_s`` is hung, given the CPU it used over the last
    :data:`CPU_WINDOW_S` (None: not known, judged on silence alone) and whether the machine held
    it back meanwhile (``held``, see :func:`held_back`)."""
    if silent_s <= timeout_s:
        return False
    busy = held or (cpu_used_s is not None and cpu_used_s > 0)
    return not busy or silent_s > busy_timeout_s


@dataclass
class Silence:
    """Checked every ``interval_s``; ``beat()`` when a heartbeat is read, ``heard_for()`` at each
    check (times from one monotonic clock)."""

    interval_s: float
    last_beat: float
    last_check: float = 0.0  # set by checks_start() once the worker serves and checks begin
    deaf_s: float = 0.0  # since the last beat: time the supervisor stood still and could not hear
    cpu: deque[float | None] = field(init=False)  # the worker's CPU time at the last checks
    held: deque[bool] = field(init=False)  # whether the machine held it back, at the last checks

    def __post_init__(self) -> None:
        self.cpu = deque(maxlen=max(int(CPU_WINDOW_S / self.interval_s) + 1, 2))
        self.held = deque(maxlen=self.cpu.maxlen)

    def held_back(self, now_held: bool | None) -> bool:
        """Record whether the machine holds the worker back at this check; whether it did at any
        of the last checks (about :data:`CPU_WINDOW_S`)."""
        self.held.append(bool(now_held))
        return any(self.held)

    def cpu_used(self, now_cpu: float | None) -> float | None:
        """Record the worker's CPU time at this check; what it used over the last checks (about
        :data:`CPU_WINDOW_S`), or None if not known."""
        self.cpu.append(now_cpu)
        first = self.cpu[0]
        if now_cpu is None or first is None or len(self.cpu) < 2:
            return None
        return now_cpu - first

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
