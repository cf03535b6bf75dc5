"""What every voxbus process does: connect, announce, heartbeat, stop cleanly on SIGTERM/SIGINT."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Callable

from voxbus.bus import subjects
from voxbus.bus.connection import Bus
from voxbus.logs import get_logger
from voxbus.schemas.messages import Heartbeat

log = get_logger(__name__)


async def heartbeat(
    bus: Bus,
    role: str,
    worker_id: str,
    interval_s: float,
    sessions: Callable[[], list[str]] = list,
    admitting: Callable[[], bool] | None = None,
) -> None:
    """Publish a heartbeat from the event loop: if the loop stalls, the heartbeats stop too.
    ``admitting``: a gateway's readiness for calls, said in each beat."""
    subject = subjects.health(role, worker_id)
    while True:
        if bus.nc.is_connected:
            times = os.times()
            beat = Heartbeat(
                role=role,
                worker_id=worker_id,
                pid=os.getpid(),
                sessions=sessions(),
                cpu_s=times.user + times.system + times.children_user + times.children_system,
                admitting=admitting() if admitting is not None else None,
            )
            await bus.publish(subject, beat)
        await asyncio.sleep(interval_s)


def stop_on_signals() -> asyncio.Event:
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)
    return stopping
