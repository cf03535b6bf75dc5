"""Reading and erasing the console's call records (the models the CLI and the web API return)."""

from __future__ import annotations

import sqlite3

from pydantic import BaseModel

from voxbus.console.store import CallRecords


class CallSummary(BaseModel):
    call_id: str
    caller: str = ""
    called: str = ""
    agent: str = ""
    transport: str = ""
    language: str = ""
    started: float | None = None
    ended: float | None = None
    duration_s: float | None = None
    cause: str = ""
    hangup_by: str = ""
    outcome: str = ""
    answers: int = 0
    barge_ins: int = 0
    backchannels: int = 0
    tools_ok: int = 0
    tools_failed: int = 0
    transferred: int = 0
    operator_actions: int = 0


class TranscriptLine(BaseModel):
    ts: float
    speaker: str = "caller"
    text: str = ""
    mark: str = ""
    gen: int | None = None


class TurnLatency(BaseModel):
    gen: int
    ts: float
    first_audio_ms: float | None = None
    vad_ms: float | None = None
    stt_ms: float | None = None
    llm_ms: float | None = None
    clause_ms: float | None = None
    tts_ms: float | None = None
    interrupted: bool = False


class CallRecord(BaseModel):
    """One call as kept: its summary, transcript and turns (``voxbus calls show|export``)."""

    call: CallSummary
    transcript: list[TranscriptLine]
    turns: list[TurnLatency]


def _summary(row: sqlite3.Row) -> CallSummary:
    return CallSummary.model_validate({k: row[k] for k in row.keys() if row[k] is not None})  # noqa: SIM118


def list_calls(
    records: CallRecords,
    since: float = 0.0,
    until: float | None = None,
    caller: str | None = None,
    limit: int = 200,
) -> list[CallSummary]:
    """Calls started in [since, until), newest first; ``caller``: only that caller's."""
    query = "SELECT * FROM calls WHERE started >= ? AND started < ?"
    args: list[object] = [since, until if until is not None else float("inf")]
    if caller is not None:
        query += " AND caller = ?"
        args.append(caller)
    rows = records.db.execute(query + " ORDER BY started DESC LIMIT ?", (*args, limit)).fetchall()
    return [_summary(row) for row in rows]


def call_summary(records: CallRecords, call_id: str) -> CallSummary | None:
    row = records.db.execute("SELECT * FROM calls WHERE call_id = ?", (call_id,)).fetchone()
    return _summary(row) if row is not None else None


def call_record(records: CallRecords, call_id: str) -> CallRecord | None:
    summary = call_summary(records, call_id)
    if summary is None:
        return None
    lines = records.db.execute(
        "SELECT ts, speaker, text, mark, gen FROM lines WHERE call_id = ? ORDER BY ts, id", (call_id,)
    ).fetchall()
    turns = records.db.execute("SELECT * FROM turns WHERE call_id = ? ORDER BY ts", (call_id,)).fetchall()
    return CallRecord(
        call=summary,
        transcript=[TranscriptLine.model_validate(dict(line)) for line in lines],
        turns=[TurnLatency.model_validate({k: t[k] for k in t.keys() if k != "call_id"}) for t in turns],  # noqa: SIM118
    )


def turns_between(records: CallRecords, since: float, until: float) -> list[dict[str, float | None]]:
    """Every answered turn of the period with its latency stages (the console's chart)."""
    rows = records.db.execute(
        "SELECT ts, first_audio_ms, stt_ms, llm_ms, tts_ms FROM turns WHERE ts >= ? AND ts < ? ORDER BY ts",
        (since, until),
    )
    return [dict(row) for row in rows]


def calls_of_caller(records: CallRecords, caller: str) -> list[str]:
    return [r[0] for r in records.db.execute("SELECT call_id FROM calls WHERE caller = ?", (caller,))]


def calls_before(records: CallRecords, ts: float) -> list[str]:
    """Calls that started before ``ts`` (the retention limit)."""
    return [r[0] for r in records.db.execute("SELECT call_id FROM calls WHERE started < ?", (ts,))]


def erase_records(records: CallRecords, call_ids: list[str]) -> int:
    """Delete the calls' rows, transcripts and turns; returns how many calls were erased."""
    erased = 0
    records.db.execute("BEGIN")
    try:
        for call_id in call_ids:
            erased += records.db.execute("DELETE FROM calls WHERE call_id = ?", (call_id,)).rowcount
            records.db.execute("DELETE FROM lines WHERE call_id = ?", (call_id,))
            records.db.execute("DELETE FROM turns WHERE call_id = ?", (call_id,))
        records.db.execute("COMMIT")
    except BaseException:
        records.db.execute("ROLLBACK")
        raise
    return erased
