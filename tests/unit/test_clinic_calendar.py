"""The clinic's calendar (examples/clinic/calendar_db.py), on a real SQLite file: a patient who holds
an appointment is not booked a second one unless asked for (a move said as a booking)."""

from __future__ import annotations

import sys
from datetime import date
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "examples" / "clinic"))

from calendar_db import Calendar, CalendarError, free_ranges, resolve_day, spoken_slot, spoken_times  # noqa: E402

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


def test_a_taken_time_is_refused_with_the_nearest_free_ones(tmp_path: Path) -> None:
    """The agent can offer another time at once: the refusal names the free times around it."""
    calendar = Calendar(tmp_path / "clinic.sqlite")
    calendar.seed(TODAY)
    with pytest.raises(CalendarError) as refused:
        calendar.move(12, "2026-12-04 3:00", PETER)  # Friday 15:00, another patient's cleaning
    assert str(refused.value) == (
        "2026-12-04 15:00 is not free; the nearest free times on Friday: 14:00, 14:30, 15:30"
    )
    assert (
        refused.value.say
        == "I'm sorry, Friday at 15:00 is taken. I have 14:00, 14:30 or 15:30. Which would suit you?"
    )
    with pytest.raises(CalendarError, match="no free time on Saturday") as closed:
        calendar.move(12, "2026-12-05 10:00", PETER)
    assert closed.value.say and "Saturday" in closed.value.say
    assert calendar.row(12)["start"] == "2026-12-03 10:00"  # not moved


async def test_a_cancellation_needs_the_callers_word(tmp_path: Path) -> None:
    """A model told to move, not book, once cancelled the appointment it was asked to move: the
    clinic's ``cancel`` takes a flag that voxbus lets be true only on the word "cancel"."""
    from calendar_service import Cancellation, build_service

    from voxbus.tools.heard import Said, unheard
    from voxbus.tools.service import ToolContext, ToolError

    calendar = Calendar(tmp_path / "clinic.sqlite")
    calendar.seed(TODAY)
    cancel = build_service(calendar).tools["cancel"]
    schema = cancel.parameters()
    assert "cancel" in schema["required"]
    asked = {"appointment_id": 12, "cancel": True}
    moved = "Could you put my appointment on Monday at 11:30 instead?"
    assert unheard(schema, asked, Said(moved, moved)) == ["word 'cancel'"]
    cancelled = "I can't come, please cancel it."
    assert unheard(schema, asked, Said(cancelled, cancelled)) == []
    ctx = ToolContext(call_id="c", caller=PETER, called="2000", idempotency_key="k", attempt=1)
    with pytest.raises(ToolError, match="not cancelled"):
        await cancel.function(Cancellation(appointment_id=12, cancel=False), ctx)
    assert calendar.row(12)["status"] == "booked"
    await cancel.function(Cancellation(appointment_id=12, cancel=True), ctx)
    assert calendar.row(12)["status"] == "cancelled"


def test_the_calendar_words_its_slots_and_refusals_for_the_caller() -> None:
    assert spoken_slot("2026-12-04 09:30") == "Friday, December 4, at 9:30"
    assert spoken_times(["09:00", "11:30", "14:00"]) == "9:00, 11:30 or 14:00"
    assert spoken_times(["16:00"]) == "16:00"


def test_a_day_or_time_that_is_none_asks_the_caller_again(tmp_path: Path) -> None:
    """Whisper heard "NZ" for "Wednesday": the model, reading the bare refusal, asked for a person."""
    with pytest.raises(CalendarError, match="is not a day") as day:
        resolve_day("NZ", TODAY)
    assert day.value.say == "Sorry, which day would you like?"
    calendar = Calendar(tmp_path / "clinic.sqlite")
    calendar.seed(TODAY)
    with pytest.raises(CalendarError, match="is not a time") as time:
        calendar.move(12, "2026-12-07 11:13:10", PETER)
    assert time.value.say == "Sorry, what time would you like?"


def test_free_times_are_given_as_runs() -> None:
    """Fewer tokens for the LLM to read than a list of every time (the seeded Friday: 77, not 101)."""
    assert free_ranges(["09:00", "09:30", "10:00", "11:30", "13:00", "13:30"]) == (
        "09:00 to 10:00, 11:30, 13:00 to 13:30 (every 30 minutes)"
    )
    assert free_ranges(["09:00", "11:30"]) == "09:00, 11:30"
