"""The clinic's reminder calls (examples/clinic/reminders.py), without a bus: which appointments are
due, what the agent and the answering machine are told, and the outcome read from a call's events."""

from __future__ import annotations

import sys
from datetime import date, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "examples" / "clinic"))

from calendar_db import Calendar  # noqa: E402
from reminders import ReminderBook, outcome_of  # noqa: E402

from voxbus.schemas import events as ev  # noqa: E402

TODAY = date(2026, 12, 1)  # a Tuesday: the seed's first working day is Wednesday the 2nd
C = "remind-13-20261202"


def test_the_days_booked_appointments_are_due_once(tmp_path: Path) -> None:
    calendar = Calendar(tmp_path / "clinic.sqlite")
    calendar.seed(TODAY)
    book = ReminderBook(calendar)
    day = TODAY + timedelta(days=1)
    due = book.due(day)
    assert [r.start[:10] for r in due] == [day.isoformat()] * len(due) and due
    maria = next(r for r in due if r.name == "Maria Lopez")
    assert maria.call_id(day) == f"remind-{maria.appointment_id}-20261202"
    assert "Maria Lopez" in maria.context() and "14:00" in maria.context() and "Wednesday" in maria.context()
    assert maria.voicemail().startswith("Hello Maria") and "14:00" in maria.voicemail()
    book.record(maria, day, "voicemail")
    assert maria not in book.due(day)  # a second run the same day calls nobody twice
    assert book.outcomes(day) == {maria.appointment_id: "voicemail"}
    calendar.cancel(due[-1].appointment_id, due[-1].phone)
    assert due[-1] not in book.due(day)  # a cancelled appointment is not reminded of


def test_the_outcome_of_a_reminder_call_from_its_events() -> None:
    human = ev.AnsweredBy(call_id=C, answered_by="human", reason="a short hello", speech_ms=600)
    machine = ev.AnsweredBy(call_id=C, answered_by="machine", reason="a long greeting", speech_ms=4000)
    ended = ev.CallEnded(call_id=C, duration_s=30.0)
    assert outcome_of([]) is None
    assert outcome_of([ev.DialResult(call_id=C, uri="sip:1@x", result="answered", code=200), human]) is None
    assert outcome_of([ev.DialResult(call_id=C, uri="sip:1@x", result="busy", code=486)]) == "busy"
    assert outcome_of([machine, ev.VoicemailLeft(call_id=C, text="Hello")]) == "voicemail"
    assert outcome_of([human, ended]) == "talked"
    assert outcome_of([ended]) == "ended"
