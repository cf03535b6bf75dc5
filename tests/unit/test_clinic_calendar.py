"""The clinic's calendar (examples/clinic/calendar_db.py), on a real SQLite file: a patient who holds
an appointment is not booked a second one unless asked for (a move said as a booking)."""

from __future__ import annotations

import sys
from datetime import date
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "examples" / "clinic"))

from calendar_db import Calendar, CalendarError  # noqa: E402

TODAY = date(2026, 12, 1)  # a Tuesday
PETER = "+15551234567"  # holds appointment 12


def test_a_patient_with_an_appointment_is_told_to_move_it_not_booked_twice(tmp_path: Path) -> None:
    calendar = Calendar(tmp_path / "clinic.sqlite")
    calendar.seed(TODAY)
    with pytest.raises(CalendarError, match="already has appointment 12 .* use reschedule"):
        calendar.book("2026-12-07 11:30", "filling", PETER)
    held = calendar.patient(PETER)
    assert held is not None and [a["appointment_id"] for a in held["appointments"]] == [12]
    booked = calendar.book("2026-12-07 11:30", "filling", PETER, another=True)
    assert booked["start"] == "2026-12-07 11:30"
    assert len(calendar.patient(PETER)["appointments"]) == 2  # type: ignore[index]


def test_a_patient_without_an_appointment_is_booked(tmp_path: Path) -> None:
    calendar = Calendar(tmp_path / "clinic.sqlite")
    calendar.seed(TODAY)
    calendar.cancel(12, PETER)
    assert calendar.book("2026-12-07 11:30", "check-up", PETER)["weekday"] == "Monday"


def test_an_hour_before_opening_is_read_as_the_afternoons(tmp_path: Path) -> None:
    calendar = Calendar(tmp_path / "clinic.sqlite")
    calendar.seed(TODAY)
    moved = calendar.move(12, "2026-12-07 1:30", PETER)  # "Monday, one thirty", as the model wrote it
    assert moved["new_start"] == "2026-12-07 13:30"
    assert calendar.move(12, "2026-12-07 11:30", PETER)["new_start"] == "2026-12-07 11:30"
    with pytest.raises(CalendarError, match="not free"):
        calendar.move(12, "2026-12-07 1:30 am", PETER)  # said so: the night, and closed
