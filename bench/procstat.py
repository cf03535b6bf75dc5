"""What a process costs, read from /proc: CPU seconds and resident memory (0 once it has gone)."""

from __future__ import annotations

import os
from pathlib import Path


def cpu_seconds(pid: int) -> float:
    """User and system CPU seconds of a running process."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_kb(pid: int) -> int:
    """Resident set size in KiB; 0 for a process that has gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


async def until_idle(
    pid: int, quiet_s: float = 3.0, busy_below: float = 0.1, timeout_s: float = 240.0
) -> float:
    """Wait until the process has used less than ``busy_below`` of a core over the last ``quiet_s``
    (a worker done with the work it started on its own, such as evaluating the agents' prompts);
    returns the seconds waited. Raises TimeoutError after ``timeout_s``."""
    import asyncio
    import time

    started = time.monotonic()
    samples = [(started, cpu_seconds(pid))]
    while time.monotonic() - started < timeout_s:
        await asyncio.sleep(0.5)
        now = time.monotonic()
        samples.append((now, cpu_seconds(pid)))
        window = [(t, cpu) for t, cpu in samples if t >= now - quiet_s]
        if now - samples[0][0] >= quiet_s and window[-1][1] - window[0][1] < busy_below * quiet_s:
            return now - started
    raise TimeoutError(f"process {pid} still busy after {timeout_s:.0f} s")
