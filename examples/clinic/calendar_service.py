"""The clinic's calendar served to voxbus agents as tools: an example third party.

    python examples/clinic/calendar_service.py NATS_URL --db clinic.sqlite [--creds FILE] [--seed]

Five tools on ``voxbus.tool.<name>`` (one NATS service, ``clinic-calendar``): ``find_patient``
(called by the agent when a call starts: the caller's record and bookings, by their number),
``list_free_slots``, ``reschedule``, ``book`` and ``cancel``. A change applies only to the
caller's own appointments (their number comes with every request, not from their words), and a
retried request changes nothing twice (the helper answers a repeated idempotency key from memory).
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from datetime import date
from pathlib import Path

from pydantic import BaseModel, Field

sys.path.insert(0, str(Path(__file__).parent))
from calendar_db import Calendar, CalendarError, free_ranges, resolve_day, spoken_slot  # noqa: E402

from voxbus.bus.connection import Bus  # noqa: E402
from voxbus.tools.heard import CALLER_SAID  # noqa: E402
from voxbus.tools.service import Answer, ToolContext, ToolError, ToolService  # noqa: E402


class NoArguments(BaseModel):
    pass


class Day(BaseModel):
    day: str = Field(description="a weekday name, 'tomorrow' or YYYY-MM-DD")


# a booking's day and time must have been said in the call: voxbus does not book the model's guess
class Move(BaseModel):
    appointment_id: int
    day: str = Field(description="a weekday name, 'tomorrow' or YYYY-MM-DD", json_schema_extra=CALLER_SAID)
    time: str = Field(description="HH:MM, 24-hour", json_schema_extra=CALLER_SAID)


class Booking(BaseModel):
    day: str = Field(description="a weekday name, 'tomorrow' or YYYY-MM-DD", json_schema_extra=CALLER_SAID)
    time: str = Field(description="HH:MM, 24-hour", json_schema_extra=CALLER_SAID)
    kind: str = Field(default="check-up", description="check-up, cleaning or filling")
    another: bool = Field(
        default=False,
        description="true only if the caller wants this besides an appointment they have",
        json_schema_extra=CALLER_SAID,  # only on the caller's word "another"
    )


class Appointment(BaseModel):
    appointment_id: int


class Cancellation(Appointment):
    # a small model, told to move rather than book, once cancelled the appointment it was asked to
    # move: a cancellation needs the caller's own word "cancel" (voxbus checks a flag marked so)
    cancel: bool = Field(description="true: the caller asked to cancel it", json_schema_extra=CALLER_SAID)


def build_service(calendar: Calendar, delay_s: float = 0.0) -> ToolService:
    """The tools over ``calendar``; ``delay_s``: a slower back end (tests, the demo's holding phrase)."""
    service = ToolService(
        "clinic-calendar", version="1.0.0", description="Bright Smile dental clinic calendar"
    )

    async def act(work, *args):  # type: ignore[no-untyped-def]
        await asyncio.sleep(delay_s)
        try:
            return work(*args)
        except CalendarError as exc:
            raise ToolError(str(exc), say=exc.say) from None

    @service.tool("The caller's patient record and bookings, found by their phone number.")
    async def find_patient(args: NoArguments, ctx: ToolContext) -> dict:
        found = await act(calendar.patient, ctx.caller)
        if found is None:
            return {"error": "no patient with this phone number"}
        return found | {"vocabulary": [found["name"]]}  # the caller may say their name: whisper expects it

    @service.tool("Find the free appointment times on a day. Call it whenever the caller names a day.")
    async def list_free_slots(args: Day, ctx: ToolContext) -> dict:
        day = await act(resolve_day, args.day, date.today())
        free = await act(calendar.free, day)
        return {"date": f"{day}", "weekday": f"{day:%A}", "free": free_ranges(free) if free else "closed"}

    # the changes word the agent's confirmation themselves: said at once, true to the calendar
    @service.tool("Move the caller's appointment to a day and time the caller chose.")
    async def reschedule(args: Move, ctx: ToolContext) -> Answer:
        day = await act(resolve_day, args.day, date.today())
        moved = await act(calendar.move, args.appointment_id, f"{day} {args.time}", ctx.caller)
        return Answer(
            result=moved, say=f"Done: your appointment is now on {spoken_slot(moved['new_start'])}."
        )

    @service.tool("Book a new appointment for the caller on a day and time they chose.")
    async def book(args: Booking, ctx: ToolContext) -> Answer:
        day = await act(resolve_day, args.day, date.today())
        booked = await act(calendar.book, f"{day} {args.time}", args.kind, ctx.caller, args.another)
        return Answer(
            result=booked, say=f"Done: you are booked for a {args.kind} on {spoken_slot(booked['start'])}."
        )

    @service.tool("Cancel the caller's appointment, when the caller asks to cancel it.")
    async def cancel(args: Cancellation, ctx: ToolContext) -> Answer:
        if not args.cancel:
            raise ToolError("not cancelled: cancel only an appointment the caller asked to cancel")
        cancelled = await act(calendar.cancel, args.appointment_id, ctx.caller)
        return Answer(
            result=cancelled,
            say=f"Done: your appointment on {spoken_slot(cancelled['cancelled'])} is cancelled.",
        )

    return service


async def serve(url: str, db: Path, creds: Path | None, seed: bool, delay_s: float) -> None:
    calendar = Calendar(db)
    if seed:
        calendar.seed(date.today())
    bus = Bus(url, name="clinic-calendar", source="clinic-calendar", creds=creds)
    await bus.connect(attempts=10)
    service = build_service(calendar, delay_s)
    await service.start(bus.nc)
    print(f"clinic calendar serving {', '.join(service.tools)} from {db}", flush=True)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    await stop.wait()
    await service.stop()
    await bus.close()


def main() -> None:
    parser = argparse.ArgumentParser(description="Serve the clinic's calendar tools to voxbus agents.")
    parser.add_argument("url", help="NATS server URL")
    parser.add_argument("--db", type=Path, default=Path("clinic.sqlite"), help="SQLite calendar file")
    parser.add_argument(
        "--creds", type=Path, help="bus credentials (`voxbus creds tools --user clinic-calendar`)"
    )
    parser.add_argument("--seed", action="store_true", help="fill an empty calendar with demo patients")
    parser.add_argument("--delay", type=float, default=0.0, help="seconds each tool takes (a slow back end)")
    args = parser.parse_args()
    asyncio.run(serve(args.url, args.db, args.creds, args.seed, args.delay))


if __name__ == "__main__":
    main()
