"""Heartbeat supervision with real processes: a worker that stops (SIGSTOP) is taken for hung and
replaced, and a supervisor whose own event loop stood still (a busy machine, a blocking call) does
not take its stall for its workers' silence."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time

import pytest
from nats.aio.msg import Msg

from voxbus.bus import subjects
from voxbus.bus.connection import Bus
from voxbus.schemas.events import Event, WorkerExited, WorkerRestarted
from voxbus.supervisors.system import System

from .helpers import pid_of, wait_all_serving

pytestmark = pytest.mark.integration


async def test_a_stalled_supervisor_kills_nobody_and_a_stopped_worker_is_replaced(
    system: System, client: Bus
) -> None:
    await wait_all_serving(client)
    pids = {role: await pid_of(client, role, f"{role}-1") for role in ("stt", "llm", "tts", "agent", "sip")}
    seen: list[Event] = []
    replaced = asyncio.Event()

    async def note(event: Event, _msg: Msg) -> None:
        seen.append(event)
        if isinstance(event, WorkerRestarted) and event.worker_id == "stt-1":
            replaced.set()

    await client.subscribe(subjects.ALL_SYSTEM_EVENTS, None, note)
    await client.nc.flush()
    # the supervisor runs on this test's event loop: stand it still for twice the heartbeat
    # timeout, while every worker goes on beating; then stop one worker for real
    time.sleep(2 * system.settings.supervision.heartbeat_timeout_s)
    os.kill(pids["stt"], signal.SIGSTOP)
    try:
        async with asyncio.timeout(60):  # a hang guard: hung after 3 s, killed 3 s after that
            await replaced.wait()
    finally:
        with contextlib.suppress(ProcessLookupError):  # killed by then, unless the test failed
            os.kill(pids["stt"], signal.SIGCONT)
    # a misjudged stall would have ended the others at once, before the stopped one was found
    gone = [(e.worker_id, e.reason) for e in seen if isinstance(e, WorkerExited)]
    assert [worker for worker, _ in gone] == ["stt-1"], gone
    assert gone[0][1].startswith("hung: no heartbeat")
    for role in ("llm", "tts", "agent", "sip"):
        assert await pid_of(client, role, f"{role}-1") == pids[role]
    assert await pid_of(client, "stt", "stt-1", timeout_s=120) != pids["stt"]
