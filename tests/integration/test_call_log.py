"""The clinic's call log, a third party on a durable JetStream consumer: stopped during a call and
started again, it catches up and writes the call's row (a real system, a real SQLite file)."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest
from nats.js.errors import NotFoundError

from voxbus.bus import subjects
from voxbus.bus.connection import Bus
from voxbus.media.file_call import FileCall
from voxbus.media.script import CallerScript, Line
from voxbus.media.wav import WavSource
from voxbus.schemas.events import SttFinal
from voxbus.supervisors.system import System, grant

from .helpers import wait_all_serving

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "examples" / "clinic"))

from call_log import DURABLE, CallLog, follow  # noqa: E402

pytestmark = pytest.mark.integration
QUESTION = CallerScript(lines=[Line(text="What colour is the sky?", pause_before_s=2.5)], tail_s=1.0)


async def caught_up(bus: Bus) -> bool:
    """The call log's durable consumer has nothing left to deliver and nothing unacknowledged."""
    try:
        info = await bus.js.consumer_info(subjects.EVENTS_STREAM, DURABLE)
    except NotFoundError:  # the call log has not created it yet
        return False
    return info.num_pending == 0 and info.num_ack_pending == 0


async def run_log(bus: Bus, admin: Bus, log: CallLog, timeout_s: float = 30.0) -> None:
    """Run the call log (on its reader's credentials) until it has read and acknowledged every
    event in the stream (asked with the admin's, which may read consumer state), then stop it."""
    stop = asyncio.Event()
    task = asyncio.create_task(follow(bus, log, stop))
    try:
        async with asyncio.timeout(timeout_s):
            while not await caught_up(admin):
                await asyncio.sleep(0.05)
    finally:
        stop.set()
        await task


async def test_a_call_log_down_during_the_call_catches_up(
    system: System, client: Bus, caller, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    await wait_all_serving(client)
    reader = Bus(system.url, "clinic-call-log", creds=grant(system.settings, "reader", "clinic-call-log"))
    await reader.connect(attempts=5)
    log = CallLog(tmp_path / "calls.sqlite")
    await run_log(reader, client, log)  # the durable consumer exists; the log then goes down
    wav, _ = caller(QUESTION)
    call = FileCall(client, WavSource(wav))
    await call.run()
    assert log.row(call.call_id) is None  # nothing written while it was down
    await run_log(reader, client, log)  # up again: it reads what it missed
    row = log.row(call.call_id)
    assert row is not None and row["duration_s"] > 2 and row["ended"] > row["started"]
    heard = [e.text for e in call.result.events if isinstance(e, SttFinal)]
    assert heard and f"caller: {heard[0]}" in row["transcript"] and "agent:" in row["transcript"]
    written = log.last_seq
    await run_log(reader, client, log)  # started again with nothing new: nothing written twice
    assert log.last_seq == written and log.row(call.call_id) == row
    await reader.close()
