"""The clinic's reminder calls (examples/clinic/reminders.py) over a real bus, a real gateway and a
real SQLite calendar, with an operator's credential: a patient whose phone is busy (a sipp UAS
answering 486) is recorded as busy, a destination outside sip.dial_allow as refused, and a second
run the same day calls nobody."""

from __future__ import annotations

import asyncio
import json
import sys
from datetime import date
from pathlib import Path

import pytest

from voxbus.bus.connection import Bus
from voxbus.bus.embedded import free_port
from voxbus.config import Settings, load_settings
from voxbus.supervisors.system import System, grant

from .helpers import pid_of, sipp_uas, udp_port_taken, until

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "examples" / "clinic"))

from calendar_db import Calendar  # noqa: E402
from reminders import ReminderBook, remind  # noqa: E402

pytestmark = pytest.mark.integration
BUSY = Path(__file__).parent / "sipp" / "desk_busy.xml"


@pytest.fixture
def settings(test_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("VOXBUS_AGENTS", json.dumps({"reminders": {"outbound": {"max_calls": 1}}}))
    return load_settings()


async def test_reminders_record_each_calls_outcome_and_call_nobody_twice(
    settings: Settings, tmp_path: Path
) -> None:
    system = System(settings, workers=(("sip", "sip-1"),))  # no agent is needed: nobody answers
    await system.start()
    calendar = Calendar(tmp_path / "clinic.sqlite")
    today = date(2026, 12, 1)
    calendar.seed(today)
    book = ReminderBook(calendar)
    day = date(2026, 12, 2)  # the seed's first working day
    due = book.due(day)
    assert len(due) >= 2
    bus = Bus(system.url, "clinic-reminders", creds=grant(settings, "operator", "clinic-reminders"))
    await bus.connect(attempts=10)
    try:
        await pid_of(bus, "sip", "sip-1")
        port = free_port()
        phones = asyncio.create_task(sipp_uas(port, ("-sf", str(BUSY)), calls=len(due)))
        await until(lambda: udp_port_taken(port), 10)  # sipp listens
        outcomes = await remind(bus, book, day, f"sip:{{phone}}@127.0.0.1:{port}", "reminders")
        assert outcomes == {r.appointment_id: "busy" for r in due}
        code, out = await asyncio.wait_for(phones, 30)
        assert code == 0, out
        assert await remind(bus, book, day, f"sip:{{phone}}@127.0.0.1:{port}", "reminders") == outcomes
        later = date(2026, 12, 3)
        refused = await remind(bus, book, later, "sip:{phone}@192.0.2.1", "reminders")  # not in dial_allow
        assert refused and set(refused.values()) == {"refused"}
    finally:
        await bus.close()
        await system.stop()
