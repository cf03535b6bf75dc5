"""Worker processes as supervised children, watched by their exit and by their heartbeats.

Each worker process publishes a heartbeat from its event loop. A process that exits is dead; a
process whose heartbeats stop (after its start-up allowance for loading models) is hung and is
killed. Either way ``run()`` raises, and the supervisor restarts it with the same worker id, so that
the restarted process takes over the dead one's name (and, for the agent, its calls).
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from dataclasses import dataclass

from nats.aio.msg import Msg

from voxbus.bus import subjects
from voxbus.bus.connection import Bus
from voxbus.logs import get_logger
from voxbus.schemas.events import WorkerExited, WorkerStarted
from voxbus.schemas.messages import Heartbeat
from voxbus.supervisors.heartbeat import Silence, cpu_seconds, describe, held_back, hung, thread_states
from voxbus.supervisors.settings import SupervisionSettings

log = get_logger(__name__)


SUPERVISOR_PID_ENV = "VOXBUS_SUPERVISOR_PID"  # a worker dies with the process that supervises it


class WorkerDied(RuntimeError):
    pass


@dataclass
class WorkerProcess:
    """Runs ``python -m voxbus <args>`` and watches it; one instance per (re)start."""

    role: str
    worker_id: str
    args: list[str]
    bus: Bus
    settings: SupervisionSettings
    env: dict[str, str] | None = None

    async def run(self) -> None:
        silence = Silence(self.settings.heartbeat_interval_s, last_beat=time.monotonic())
        beat_seen = asyncio.Event()

        async def on_beat(_hb: Heartbeat, _msg: Msg) -> None:
            silence.beat(time.monotonic())
            beat_seen.set()

        sub = await self.bus.subscribe(subjects.health(self.role, self.worker_id), Heartbeat, on_beat)
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "voxbus",
            *self.args,
            env={**os.environ, **(self.env or {}), SUPERVISOR_PID_ENV: str(os.getpid())},
            start_new_session=True,
        )
        log.info("worker process started", role=self.role, worker_id=self.worker_id, pid=proc.pid)
        self.bus.emit(WorkerStarted(role=self.role, worker_id=self.worker_id, pid=proc.pid))
        try:
            reason = await self._watch(proc, beat_seen, silence)
        except asyncio.CancelledError:
            await _terminate(proc)
            raise
        finally:
            await sub.unsubscribe()
        self.bus.emit(WorkerExited(role=self.role, worker_id=self.worker_id, reason=reason))
        raise WorkerDied(reason)

    async def _watch(
        self, proc: asyncio.subprocess.Process, beat_seen: asyncio.Event, silence: Silence
    ) -> str:
        exit_wait = asyncio.create_task(proc.wait())
        try:
            beat_wait = asyncio.create_task(beat_seen.wait())
            done, _ = await asyncio.wait(
                {exit_wait, beat_wait},
                timeout=self.settings.startup_timeout_s,
                return_when=asyncio.FIRST_COMPLETED,
            )
            beat_wait.cancel()
            if exit_wait in done:
                return f"exited with code {proc.returncode} during start-up"
            if not done:
                await _terminate(proc)
                return f"no heartbeat within {self.settings.startup_timeout_s:.0f} s of start"
            silence.checks_start(time.monotonic())
            while True:
                done, _ = await asyncio.wait({exit_wait}, timeout=self.settings.heartbeat_interval_s)
                if done:
                    code = proc.returncode
                    return (
                        f"killed by signal {signal.Signals(-code).name}"
                        if code and code < 0
                        else f"exited with code {code}"
                    )
                silent = silence.heard_for(time.monotonic())
                used = silence.cpu_used(cpu_seconds(proc.pid))
                held = silence.held_back(held_back(proc.pid))
                settings = self.settings
                if hung(silent, used, settings.heartbeat_timeout_s, settings.busy_timeout_s, held):
                    doing = describe(thread_states(proc.pid), used)  # before it is gone
                    await _terminate(proc)
                    busy = " (busy)" if used or held else ""
                    return f"hung: no heartbeat for {silent:.1f} s{busy} ({doing})"
        finally:
            exit_wait.cancel()


async def _terminate(proc: asyncio.subprocess.Process, grace_s: float = 3.0) -> None:
    if proc.returncode is not None:
        return
    proc.terminate()
    try:
        await asyncio.wait_for(proc.wait(), grace_s)
    except TimeoutError:
        proc.kill()
        await proc.wait()
