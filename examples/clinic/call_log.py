"""A CRM-style call log that follows voxbus's events: an example third party.

    python examples/clinic/call_log.py NATS_URL --db calls.sqlite [--creds FILE]

It reads the ``VOXBUS_EVENTS`` stream through a *durable* JetStream consumer (``clinic-call-log``):
the server remembers how far it got, so a log that was stopped catches up on what happened
meanwhile, with nothing lost. Each event is written, then acknowledged; the stream sequence of the
last event written is kept in the same transaction, so an event redelivered after a crash is not
written twice. One row per call: caller, number called, start, end, duration, outcome (what the
tools did, or a transfer), and the transcript.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sqlite3
from pathlib import Path

from nats.errors import TimeoutError as NatsTimeout
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from voxbus.bus import subjects
from voxbus.bus.codec import BadMessage, decode_event
from voxbus.bus.connection import Bus
from voxbus.schemas.events import (
    CallEnded,
    CallStarted,
    Event,
    SttFinal,
    ToolResult,
    TransferResult,
    TtsRequested,
)

DURABLE = "clinic-call-log"
OUTCOMES = {"reschedule": "rescheduled", "book": "booked", "cancel": "cancelled"}
SCHEMA = """
CREATE TABLE IF NOT EXISTS calls (
    call_id TEXT PRIMARY KEY, caller TEXT DEFAULT '', started REAL, ended REAL, duration_s REAL,
    outcome TEXT DEFAULT 'answered', transcript TEXT DEFAULT '');
CREATE TABLE IF NOT EXISTS progress (id INTEGER PRIMARY KEY CHECK (id = 1), last_seq INTEGER);
"""


class CallLog:
    def __init__(self, path: Path) -> None:
        self.db = sqlite3.connect(path, isolation_level=None)
        self.db.row_factory = sqlite3.Row
        self.db.executescript(SCHEMA)

    @property
    def last_seq(self) -> int:
        row = self.db.execute("SELECT last_seq FROM progress WHERE id = 1").fetchone()
        return row[0] if row else 0

    def write(self, seq: int, event: Event) -> None:
        """Apply one event and remember its sequence, in one transaction."""
        if seq <= self.last_seq:
            return  # redelivered: already written
        self.db.execute("BEGIN")
        try:
            self._apply(event)
            self.db.execute("INSERT OR REPLACE INTO progress (id, last_seq) VALUES (1, ?)", (seq,))
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise

    def _apply(self, event: Event) -> None:
        call_id = getattr(event, "call_id", None)
        if call_id is None:
            return
        self.db.execute("INSERT OR IGNORE INTO calls (call_id, started) VALUES (?, ?)", (call_id, event.ts))
        match event:
            case CallStarted(caller=caller):
                self.db.execute(
                    "UPDATE calls SET caller = ?, started = ? WHERE call_id = ?", (caller, event.ts, call_id)
                )
            case SttFinal(text=text) if text.strip():
                self._say(call_id, f"caller: {text.strip()}")
            case TtsRequested(text=text) if text.strip():
                self._say(call_id, f"agent: {text.strip()}")
            case ToolResult(name=name) if name in OUTCOMES:
                self.db.execute("UPDATE calls SET outcome = ? WHERE call_id = ?", (OUTCOMES[name], call_id))
            case TransferResult(code=code) if 200 <= code < 300:
                self.db.execute("UPDATE calls SET outcome = 'transferred' WHERE call_id = ?", (call_id,))
            case CallEnded(duration_s=duration):
                self.db.execute(
                    "UPDATE calls SET ended = ?, duration_s = ? WHERE call_id = ?",
                    (event.ts, duration, call_id),
                )

    def _say(self, call_id: str, line: str) -> None:
        self.db.execute(
            "UPDATE calls SET transcript = ltrim(transcript || char(10) || ?, char(10)) WHERE call_id = ?",
            (line, call_id),
        )

    def row(self, call_id: str) -> dict | None:
        found = self.db.execute("SELECT * FROM calls WHERE call_id = ?", (call_id,)).fetchone()
        return dict(found) if found else None


async def follow(bus: Bus, log: CallLog, stop: asyncio.Event) -> None:
    """Fetch, write, acknowledge, until ``stop`` is set."""
    config = ConsumerConfig(
        durable_name=DURABLE,
        deliver_policy=DeliverPolicy.ALL,
        ack_policy=AckPolicy.EXPLICIT,
        filter_subject=subjects.ALL_CALL_EVENTS,
        ack_wait=30,
    )
    sub = await bus.js.pull_subscribe(
        subjects.ALL_CALL_EVENTS, durable=DURABLE, stream=subjects.EVENTS_STREAM, config=config
    )
    try:
        while not stop.is_set():
            try:
                batch = await sub.fetch(64, timeout=0.5)
            except (NatsTimeout, TimeoutError):
                continue
            for msg in batch:
                try:
                    log.write(msg.metadata.sequence.stream, decode_event(msg.subject, msg.data))
                except BadMessage as exc:  # not one of ours: said once, not retried forever
                    print(f"skipping an unreadable event: {exc}", flush=True)
                await msg.ack()
    finally:
        await sub.unsubscribe()  # the durable consumer stays on the server, with its position


async def run(url: str, db: Path, creds: Path | None) -> None:
    bus = Bus(url, name=DURABLE, source=DURABLE, creds=creds)
    await bus.connect(attempts=10)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    print(f"call log following voxbus events into {db}", flush=True)
    await follow(bus, CallLog(db), stop)
    await bus.close()


def main() -> None:
    parser = argparse.ArgumentParser(description="Keep a log of voxbus calls in SQLite.")
    parser.add_argument("url", help="NATS server URL")
    parser.add_argument("--db", type=Path, default=Path("calls.sqlite"))
    parser.add_argument(
        "--creds", type=Path, help="bus credentials (`voxbus creds reader --user clinic-call-log`)"
    )
    args = parser.parse_args()
    asyncio.run(run(args.url, args.db, args.creds))


if __name__ == "__main__":
    main()
