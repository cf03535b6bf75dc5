"""The clinic's calendar: patients and appointments in one SQLite file.

One chair, half-hour slots from 09:00 to 16:30 on weekdays. Plain ``sqlite3``: the calendar is a
stand-in for whatever system a clinic already runs.
"""

from __future__ import annotations

import re
import sqlite3
from datetime import date, datetime, timedelta
from pathlib import Path

SLOT_MINUTES = 30
FIRST, LAST = "09:00", "16:30"
NEAREST_OFFERED = 3  # free times named when the one asked for is taken
SCHEMA = """
CREATE TABLE IF NOT EXISTS patients (
    id INTEGER PRIMARY KEY, name TEXT NOT NULL, phone TEXT NOT NULL UNIQUE);
CREATE TABLE IF NOT EXISTS appointments (
    id INTEGER PRIMARY KEY, patient_id INTEGER NOT NULL REFERENCES patients(id),
    start TEXT NOT NULL, kind TEXT NOT NULL, status TEXT NOT NULL DEFAULT 'booked',
    changed TEXT NOT NULL DEFAULT '');
CREATE UNIQUE INDEX IF NOT EXISTS one_per_slot ON appointments(start) WHERE status = 'booked';
"""


class CalendarError(ValueError):
    """Something the caller asked that the calendar cannot do; the message says what, for the
    agent; ``say``, where the calendar can word it, what the agent tells the caller."""

    def __init__(self, message: str, say: str | None = None) -> None:
        super().__init__(message)
        self.say = say


def spoken_slot(start: str) -> str:
    """``2026-12-04 11:30`` as the agent says it: "Friday, December 4, at 11:30"."""
    when = datetime.strptime(start, "%Y-%m-%d %H:%M")
    return f"{when:%A}, {when:%B} {when.day}, at {when.hour}:{when:%M}"


def free_ranges(free: list[str]) -> str:
    """A day's free times as runs ("09:00 to 10:30, 14:00 (every 30 minutes)"): the LLM reads the
    tool's response before it answers, at about 22 ms a token on two cores, and as a list of
    every time the seeded Friday's response was 101 tokens, as runs 77."""
    runs: list[list[str]] = []
    for slot in free:
        if runs and _minutes(slot) - _minutes(runs[-1][-1]) == SLOT_MINUTES:
            runs[-1].append(slot)
        else:
            runs.append([slot])
    said = ", ".join(run[0] if len(run) == 1 else f"{run[0]} to {run[-1]}" for run in runs)
    return f"{said} (every {SLOT_MINUTES} minutes)" if any(len(run) > 1 for run in runs) else said


def spoken_times(times: list[str]) -> str:
    """["09:00", "11:30", "14:00"] as said: "9:00, 11:30 or 14:00"."""
    said = [t.lstrip("0") if not t.startswith("00") else t for t in times]
    return said[0] if len(said) == 1 else f"{', '.join(said[:-1])} or {said[-1]}"


def phone_of(address: str) -> str:
    """The digits (and leading +) of a phone number or SIP address."""
    found = re.search(r"(?:sips?:|tel:)?(\+?\d[\d\-\s]{3,})", address)
    return re.sub(r"[\s\-]", "", found.group(1)) if found else ""


def day_slots(day: date) -> list[str]:
    if day.weekday() >= 5:
        return []
    at = datetime.combine(day, datetime.strptime(FIRST, "%H:%M").time())
    end = datetime.combine(day, datetime.strptime(LAST, "%H:%M").time())
    slots = []
    while at <= end:
        slots.append(at.strftime("%Y-%m-%d %H:%M"))
        at += timedelta(minutes=SLOT_MINUTES)
    return slots


class Calendar:
    def __init__(self, path: Path) -> None:
        self.db = sqlite3.connect(path, isolation_level=None)  # autocommit; changes use BEGIN
        self.db.row_factory = sqlite3.Row
        self.db.executescript(SCHEMA)

    def seed(self, today: date) -> None:
        """Demo data: a few patients, a booking for each, some slots taken."""
        if self.db.execute("SELECT count(*) FROM patients").fetchone()[0]:
            return
        days = [today + timedelta(days=n) for n in range(1, 15) if (today + timedelta(days=n)).weekday() < 5]
        patients = [
            ("Peter Walsh", "+15551234567"),
            ("Maria Lopez", "+15557654321"),
            ("Ken Ito", "+15550001111"),
        ]
        for n, (name, phone) in enumerate(patients, start=1):
            self.db.execute("INSERT INTO patients (id, name, phone) VALUES (?, ?, ?)", (n, name, phone))
        booked = [
            (1, f"{days[1]} 10:00", "check-up"),
            (2, f"{days[0]} 14:00", "cleaning"),
            (3, f"{days[3]} 09:00", "filling"),
        ]
        for day in days[:5]:  # some slots taken by others, so that not every time is free
            booked += [
                (3 if day != days[3] else 2, f"{day} {t}", "cleaning") for t in ("09:30", "11:00", "15:00")
            ]
        for n, (patient, start, kind) in enumerate(booked, start=12):
            self.db.execute(
                "INSERT INTO appointments (id, patient_id, start, kind) VALUES (?, ?, ?, ?)",
                (n, patient, start, kind),
            )

    def patient(self, phone: str) -> dict | None:
        row = self.db.execute("SELECT * FROM patients WHERE phone = ?", (phone_of(phone),)).fetchone()
        if row is None:
            return None
        return {"patient_id": row["id"], "name": row["name"], "appointments": self.appointments(row["id"])}

    def appointments(self, patient_id: int) -> list[dict]:
        rows = self.db.execute(
            "SELECT id, start, kind FROM appointments"
            " WHERE patient_id = ? AND status = 'booked' ORDER BY start",
            (patient_id,),
        ).fetchall()
        return [
            {
                "appointment_id": r["id"],
                "start": r["start"],
                "weekday": _weekday(r["start"]),
                "kind": r["kind"],
            }
            for r in rows
        ]

    def appointment(self, appointment_id: int) -> sqlite3.Row | None:
        return self.db.execute("SELECT * FROM appointments WHERE id = ?", (appointment_id,)).fetchone()

    def free(self, day: date) -> list[str]:
        taken = {
            r["start"]
            for r in self.db.execute(
                "SELECT start FROM appointments WHERE status = 'booked' AND start LIKE ?", (f"{day}%",)
            )
        }
        return [slot[11:] for slot in day_slots(day) if slot not in taken]

    def move(self, appointment_id: int, new_start: str, phone: str) -> dict:
        row = self._own(appointment_id, phone)
        start = _slot(new_start)
        if start == row["start"]:  # asked twice: it is there already
            return {"appointment_id": appointment_id, "new_start": start, "weekday": _weekday(start)}
        self._free_or_refuse(start)
        self.db.execute(
            "UPDATE appointments SET start = ?, changed = ? WHERE id = ?",
            (start, f"moved from {row['start']}", appointment_id),
        )
        return {
            "appointment_id": appointment_id,
            "old_start": row["start"],
            "new_start": start,
            "weekday": _weekday(start),
        }

    def cancel(self, appointment_id: int, phone: str) -> dict:
        row = self._own(appointment_id, phone)
        self.db.execute(
            "UPDATE appointments SET status = 'cancelled', changed = 'cancelled' WHERE id = ?",
            (appointment_id,),
        )
        return {"appointment_id": appointment_id, "cancelled": row["start"]}

    def book(self, start: str, kind: str, phone: str, another: bool = False) -> dict:
        """A new booking. A patient who already holds one gets a second only when ``another`` says
        so: a caller moving their appointment is not booked twice (a small model that heard "Monday
        at eleven thirty" again once wrote ``book`` where the move was done)."""
        patient = self.patient(phone)
        if patient is None:
            raise CalendarError("the caller is not a registered patient")
        slot = _slot(start)
        held = patient["appointments"]
        if held and not another:
            first = held[0]
            raise CalendarError(
                f"the caller already has appointment {first['appointment_id']} on {first['weekday']} "
                f"{first['start']}: to change it use reschedule; book only an appointment the caller "
                "wants besides it (another: true)"
            )
        self._free_or_refuse(slot)
        cursor = self.db.execute(
            "INSERT INTO appointments (patient_id, start, kind) VALUES (?, ?, ?)",
            (patient["patient_id"], slot, kind),
        )
        return {"appointment_id": cursor.lastrowid, "start": slot, "weekday": _weekday(slot), "kind": kind}

    def _free_or_refuse(self, start: str) -> None:
        """Refuse a slot that is taken or closed, naming the nearest free times of that day: the
        agent can offer them at once instead of asking the caller to pick again blind."""
        free = self.free(date.fromisoformat(start[:10]))
        if start[11:] in free:
            return
        weekday = _weekday(start)
        if not free:
            raise CalendarError(
                f"{start} is not free: the clinic has no free time on {weekday}",
                say=f"I'm sorry, there is no free time on {weekday}. Would another day suit you?",
            )
        wanted = _minutes(start[11:])
        nearest = sorted(sorted(free, key=lambda t: abs(_minutes(t) - wanted))[:NEAREST_OFFERED])
        raise CalendarError(
            f"{start} is not free; the nearest free times on {weekday}: {', '.join(nearest)}",
            say=f"I'm sorry, {weekday} at {spoken_times([start[11:]])} is taken. "
            f"I have {spoken_times(nearest)}. Which would suit you?",
        )

    def _own(self, appointment_id: int, phone: str) -> sqlite3.Row:
        """The appointment, if it is the caller's: a caller's words never reach someone else's."""
        row = self.appointment(appointment_id)
        patient = self.patient(phone)
        if (
            row is None
            or row["status"] != "booked"
            or patient is None
            or row["patient_id"] != patient["patient_id"]
        ):
            raise CalendarError(f"the caller has no appointment {appointment_id}")
        return row

    def row(self, appointment_id: int) -> dict:
        found = self.appointment(appointment_id)
        return dict(found) if found else {}


WEEKDAYS = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]


def resolve_day(text: str, today: date) -> date:
    """A day as callers (and small models) name it: 'friday' (the next one), 'tomorrow', 'today'
    or YYYY-MM-DD."""
    word = text.strip().lower()
    if word in ("today", "tomorrow"):
        return today + timedelta(days=0 if word == "today" else 1)
    for n, name in enumerate(WEEKDAYS):
        if word.startswith(name[:3]) and (word in name or name in word):
            return today + timedelta(days=(n - today.weekday() - 1) % 7 + 1)
    try:
        return date.fromisoformat(word[:10])
    except ValueError:
        raise CalendarError(
            f"{text!r} is not a day: say a weekday, 'tomorrow' or YYYY-MM-DD",
            say="Sorry, which day would you like?",  # the caller's day misheard ("NZ" for "Wednesday")
        ) from None


def _slot(text: str) -> str:
    """A day and a time, the time as people and transcripts write it: 11:30, 11.30, 1130, 11; an
    hour before opening with no am/pm is the afternoon's (a caller's "one thirty", which a small
    model writes 1:30)."""
    day, _, time = text.strip().partition(" ")
    found = re.fullmatch(r"(\d{1,2})(?:[:.]?(\d{2}))?\s*(am|pm|a\.m\.|p\.m\.)?", time.strip().lower())
    try:
        if found is None:
            raise ValueError(time)
        hour, minute = int(found[1]), int(found[2] or 0)
        # no am/pm: an hour before opening is the afternoon's ("one thirty" is 13:30)
        afternoon = found[3].startswith("p") if found[3] else 1 <= hour < int(FIRST[:2])
        if afternoon and hour < 12:
            hour += 12
        at = datetime.strptime(f"{day} {hour:02d}:{minute:02d}", "%Y-%m-%d %H:%M")
    except ValueError:
        raise CalendarError(
            f"{text!r} is not a time like 2026-12-04 11:30", say="Sorry, what time would you like?"
        ) from None
    return at.strftime("%Y-%m-%d %H:%M")


def _minutes(hh_mm: str) -> int:
    hours, minutes = hh_mm.split(":")
    return int(hours) * 60 + int(minutes)


def _weekday(start: str) -> str:
    return datetime.strptime(start[:10], "%Y-%m-%d").strftime("%A")
