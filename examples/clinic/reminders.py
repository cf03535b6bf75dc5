"""The clinic's reminder calls: the day before an appointment, voxbus calls the patient. An example
third party that places calls and follows what became of them.

    python examples/clinic/reminders.py NATS_URL --db clinic.sqlite --uri 'sip:{phone}@pbx.example' \
        [--day YYYY-MM-DD] [--agent reminders] [--creds FILE]

For each booked appointment of the day (default: tomorrow) that has no reminder yet, it asks voxbus
to call the patient (``voxbus.sip.dial``) with the ``reminders`` agent profile, telling the agent
what the call is about (``context``) and what to leave on an answering machine (``voicemail``); it
follows the call's events and writes the outcome into the calendar's ``reminders`` table:
``voicemail``, ``talked`` (a move or a cancellation the patient asked for shows in the appointment
itself, done by the calendar's tools), ``busy``, ``no_answer``, ``failed`` or ``refused`` (voxbus
would not dial: a destination outside ``sip.dial_allow``, the profile's limits). The call id is
made from the appointment and the day: a run repeated the same day calls nobody twice. The bus
credential it needs is an operator's (`voxbus creds operator --user clinic-reminders`): it may dial
and read events, nothing else.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sqlite3
import sys
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

from nats.aio.msg import Msg

sys.path.insert(0, str(Path(__file__).resolve().parent))

from calendar_db import Calendar, _weekday  # noqa: E402

from voxbus.bus import subjects  # noqa: E402
from voxbus.bus.codec import BadMessage, decode, encode  # noqa: E402
from voxbus.bus.connection import Bus  # noqa: E402
from voxbus.schemas.base import Rejected  # noqa: E402
from voxbus.schemas.events import AnsweredBy, CallEnded, DialResult, Event, VoicemailLeft  # noqa: E402
from voxbus.schemas.messages import DialRequest  # noqa: E402

SCHEMA = """
CREATE TABLE IF NOT EXISTS reminders (
    appointment_id INTEGER NOT NULL, day TEXT NOT NULL, call_id TEXT NOT NULL,
    outcome TEXT NOT NULL DEFAULT 'dialling', PRIMARY KEY (appointment_id, day));
"""
CALL_TIMEOUT_S = 600.0  # the longest a reminder call is followed


@dataclass(frozen=True)
class Reminder:
    appointment_id: int
    name: str
    phone: str
    start: str
    kind: str

    def call_id(self, day: date) -> str:
        return f"remind-{self.appointment_id}-{day:%Y%m%d}"

    def context(self) -> str:
        when = f"{_weekday(self.start).capitalize()} at {self.start[11:]}"
        return (
            f"Remind {self.name} of their {self.kind} appointment {when} (appointment "
            f"{self.appointment_id}); they may confirm it, move it or cancel it."
        )

    def voicemail(self) -> str:
        first = self.name.split()[0]
        return (
            f"Hello {first}, this is Bright Smile dental reminding you of your {self.kind} "
            f"tomorrow at {self.start[11:]}. To change it, please call us back. Goodbye."
        )


class ReminderBook:
    """Which appointments are due a reminder, and what became of each call (the calendar's file)."""

    def __init__(self, calendar: Calendar) -> None:
        self.db = calendar.db
        self.db.executescript(SCHEMA)

    def due(self, day: date) -> list[Reminder]:
        rows = self.db.execute(
            "SELECT a.id, p.name, p.phone, a.start, a.kind FROM appointments a"
            " JOIN patients p ON p.id = a.patient_id"
            " WHERE a.status = 'booked' AND a.start LIKE ? AND NOT EXISTS"
            " (SELECT 1 FROM reminders r WHERE r.appointment_id = a.id AND r.day = ?) ORDER BY a.start",
            (f"{day.isoformat()} %", day.isoformat()),
        ).fetchall()
        return [Reminder(*row) for row in rows]

    def record(self, reminder: Reminder, day: date, outcome: str) -> None:
        self.db.execute(
            "INSERT INTO reminders (appointment_id, day, call_id, outcome) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (appointment_id, day) DO UPDATE SET outcome = excluded.outcome",
            (reminder.appointment_id, day.isoformat(), reminder.call_id(day), outcome),
        )

    def outcomes(self, day: date) -> dict[int, str]:
        rows = self.db.execute(
            "SELECT appointment_id, outcome FROM reminders WHERE day = ?", (day.isoformat(),)
        )
        return dict(rows.fetchall())


def outcome_of(events: list[Event]) -> str | None:
    """What became of a reminder call, from its events; None while it is not over."""
    for event in events:
        if isinstance(event, DialResult) and event.result != "answered":
            return event.result
        if isinstance(event, VoicemailLeft):
            return "voicemail"
    if any(isinstance(e, CallEnded) for e in events):
        human = any(isinstance(e, AnsweredBy) and e.answered_by == "human" for e in events)
        return "talked" if human else "ended"
    return None


async def remind(bus: Bus, book: ReminderBook, day: date, uri: str, agent: str) -> dict[int, str]:
    """Call every patient due a reminder on ``day``, one after the other; their outcomes."""
    for reminder in book.due(day):
        request = DialRequest(
            call_id=reminder.call_id(day),
            uri=uri.format(phone=reminder.phone),
            agent=agent,
            context=reminder.context(),
            voicemail=reminder.voicemail(),
        )
        book.record(reminder, day, "dialling")
        outcome = await call(bus, request)
        book.record(reminder, day, outcome)
        print(f"{request.call_id}: {outcome}", flush=True)
    return book.outcomes(day)


async def call(bus: Bus, request: DialRequest) -> str:
    """Place one reminder call and follow its events until it is over: its outcome."""
    events: list[Event] = []
    over = asyncio.Event()

    async def follow(event: Event, _msg: Msg) -> None:
        events.append(event)
        if outcome_of(events) is not None:
            over.set()

    sub = await bus.subscribe(subjects.call_events(request.call_id), None, follow)
    try:
        refusal = await dial(bus, request)
        if refusal is not None:
            print(f"{request.call_id}: refused: {refusal}", flush=True)
            return "refused"
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(over.wait(), CALL_TIMEOUT_S)
        return outcome_of(events) or "unknown"
    finally:
        await sub.unsubscribe()


async def dial(bus: Bus, request: DialRequest) -> str | None:
    """Ask a gateway to place the call: None when it is dialling, else why it will not."""
    reply = await bus.nc.request(subjects.SIP_DIAL, encode(request), timeout=10)
    try:
        return decode(subjects.SIP_DIAL, reply.data, Rejected).reason
    except BadMessage:
        return None  # an Accepted: it has no reason


async def run(url: str, db: Path, uri: str, day: date, agent: str, creds: Path | None) -> None:
    book = ReminderBook(Calendar(db))
    bus = Bus(url, "clinic-reminders", creds=creds)
    await bus.connect(attempts=10)
    try:
        outcomes = await remind(bus, book, day, uri, agent)
    finally:
        await bus.close()
    print(f"reminders for {day}: {outcomes or 'none due'}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description="Call the patients of a day's appointments with a reminder.")
    parser.add_argument("url", help="NATS server URL")
    parser.add_argument("--db", type=Path, default=Path("clinic.sqlite"), help="SQLite calendar file")
    parser.add_argument(
        "--uri", required=True, help="SIP URI to dial, with {phone} (E.164, as the calendar keeps it)"
    )
    parser.add_argument("--day", type=date.fromisoformat, default=date.today() + timedelta(days=1))
    parser.add_argument("--agent", default="reminders", help="the agent profile that talks")
    parser.add_argument("--creds", type=Path, help="bus credentials (`voxbus creds operator ...`)")
    args = parser.parse_args()
    try:
        asyncio.run(run(args.url, args.db, args.uri, args.day, args.agent, args.creds))
    except sqlite3.Error as exc:
        raise SystemExit(f"reminders: {args.db}: {exc}") from None


if __name__ == "__main__":
    main()
