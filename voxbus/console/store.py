"""The console's call records in SQLite, written from the event stream.

One row per call (who, when, how it ended, counts the KPIs need), its transcript as lines (who
said what and when, interruptions, backchannels, tool calls and operator actions marked), each
answered turn's latency stages, and the workers' CPU seconds. Every event is applied with its
stream sequence in one transaction, so a consumer restarted anywhere writes nothing twice.
Redaction happens here, before any text reaches the disk.

SQLite from the standard library: one file, no server, readable by any tool an auditor has.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from voxbus.privacy import Redactor
from voxbus.schemas.events import (
    BargeIn,
    CallEnded,
    CallStarted,
    Event,
    LanguageChosen,
    OperatorActed,
    SttFinal,
    ToolFailed,
    ToolResult,
    TransferResult,
    TransferReturned,
    TransferSummary,
    TtsRequested,
    TurnMetrics,
)
from voxbus.schemas.messages import Heartbeat

SCHEMA = """
CREATE TABLE IF NOT EXISTS calls (
    call_id TEXT PRIMARY KEY, caller TEXT DEFAULT '', called TEXT DEFAULT '', agent TEXT DEFAULT '',
    transport TEXT DEFAULT '', language TEXT DEFAULT '', started REAL, ended REAL, duration_s REAL,
    cause TEXT DEFAULT '', hangup_by TEXT DEFAULT '', outcome TEXT DEFAULT '',
    answers INTEGER DEFAULT 0, barge_ins INTEGER DEFAULT 0, backchannels INTEGER DEFAULT 0,
    tools_ok INTEGER DEFAULT 0, tools_failed INTEGER DEFAULT 0, transferred INTEGER DEFAULT 0,
    operator_actions INTEGER DEFAULT 0);
CREATE INDEX IF NOT EXISTS calls_started ON calls (started);
CREATE INDEX IF NOT EXISTS calls_caller ON calls (caller);
CREATE TABLE IF NOT EXISTS lines (
    id INTEGER PRIMARY KEY AUTOINCREMENT, call_id TEXT, ts REAL, speaker TEXT, gen INTEGER,
    text TEXT, mark TEXT DEFAULT '');
CREATE INDEX IF NOT EXISTS lines_call ON lines (call_id, ts);
CREATE TABLE IF NOT EXISTS turns (
    call_id TEXT, gen INTEGER, ts REAL, first_audio_ms REAL, vad_ms REAL, stt_ms REAL, llm_ms REAL,
    clause_ms REAL, tts_ms REAL, interrupted INTEGER, PRIMARY KEY (call_id, gen));
CREATE TABLE IF NOT EXISTS cpu (worker TEXT, pid INTEGER, ts REAL, cpu_s REAL);
CREATE INDEX IF NOT EXISTS cpu_ts ON cpu (ts);
CREATE TABLE IF NOT EXISTS progress (id INTEGER PRIMARY KEY CHECK (id = 1), last_seq INTEGER);
"""


class CallRecords:
    """The store: ``apply`` writes, the query functions in :mod:`voxbus.console.records` read."""

    def __init__(self, path: Path, redact: list[str] | None = None) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.db.row_factory = sqlite3.Row
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.executescript(SCHEMA)
        path.chmod(0o600)  # transcripts are personal data
        self.redact = Redactor(redact)

    def close(self) -> None:
        self.db.close()

    @property
    def last_seq(self) -> int:
        row = self.db.execute("SELECT last_seq FROM progress WHERE id = 1").fetchone()
        return row[0] if row else 0

    def apply(self, seq: int, event: Event) -> None:
        """Write one event and its stream sequence in one transaction (redelivered: skipped)."""
        if seq <= self.last_seq:
            return
        self.db.execute("BEGIN")
        try:
            self._apply(event)
            self.db.execute("INSERT OR REPLACE INTO progress (id, last_seq) VALUES (1, ?)", (seq,))
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise

    def sample_cpu(self, beat: Heartbeat, ts: float) -> None:
        """Remember a worker's CPU seconds (the KPIs take increases between samples)."""
        worker = f"{beat.role}/{beat.worker_id}"
        self.db.execute(
            "INSERT INTO cpu (worker, pid, ts, cpu_s) VALUES (?, ?, ?, ?)", (worker, beat.pid, ts, beat.cpu_s)
        )

    def _count(self, call_id: str, column: str) -> None:
        self.db.execute(f"UPDATE calls SET {column} = {column} + 1 WHERE call_id = ?", (call_id,))

    def _line(
        self, call_id: str, ts: float, speaker: str, text: str, mark: str = "", gen: int | None = None
    ) -> None:
        self.db.execute(
            "INSERT INTO lines (call_id, ts, speaker, gen, text, mark) VALUES (?, ?, ?, ?, ?, ?)",
            (call_id, ts, speaker, gen, self.redact(text), mark),
        )

    def _apply(self, event: Event) -> None:  # noqa: C901 - one case per event type, read top to bottom
        call_id = getattr(event, "call_id", None)
        if not call_id:
            return
        self.db.execute("INSERT OR IGNORE INTO calls (call_id, started) VALUES (?, ?)", (call_id, event.ts))
        match event:
            case CallStarted():
                self.db.execute(
                    "UPDATE calls SET caller = ?, called = ?, agent = ?, transport = ?, started = ? "
                    "WHERE call_id = ?",
                    (event.caller, event.called, event.agent, event.transport, event.ts, call_id),
                )
            case LanguageChosen():
                self.db.execute("UPDATE calls SET language = ? WHERE call_id = ?", (event.language, call_id))
            case SttFinal(text=text) if text.strip():
                self._line(call_id, event.ts, "caller", text.strip(), gen=event.gen)
            case TtsRequested(text=text) if text.strip():
                self._agent_said(call_id, event)
            case BargeIn(decision="interrupt"):
                self._count(call_id, "barge_ins")
                self._interrupted(call_id, event)
            case BargeIn(decision="ignored", text=text):
                self._count(call_id, "backchannels")
                if text.strip():
                    self._line(call_id, event.ts, "caller", text.strip(), "backchannel", event.gen)
            case TurnMetrics():
                self._turn(call_id, event)
            case ToolResult():
                self._count(call_id, "tools_ok")
                self._line(call_id, event.ts, "tool", f"{event.name}: done", "tool", event.gen)
            case ToolFailed():
                self._count(call_id, "tools_failed")
                self._line(call_id, event.ts, "tool", f"{event.name}: {event.failure}", "tool", event.gen)
            case TransferResult(code=code) if 200 <= code < 300:
                self.db.execute("UPDATE calls SET transferred = 1 WHERE call_id = ?", (call_id,))
            case TransferSummary():
                self._line(call_id, event.ts, "handover", event.summary, "transfer", event.gen)
            case TransferReturned():
                what = f"transfer not answered ({event.code} {event.reason}".strip() + "): back to the agent"
                self._line(call_id, event.ts, "handover", what, "transfer", event.gen)
            case OperatorActed():
                self._count(call_id, "operator_actions")
                what = f"{event.action} {event.text}".strip() + (
                    "" if event.ok else f" (refused: {event.reason})"
                )
                self._line(call_id, event.ts, f"operator {event.operator}", what, "operator", event.gen)
            case CallEnded():
                self._ended(call_id, event)

    def _agent_said(self, call_id: str, event: TtsRequested) -> None:
        """An answer's clauses join one agent line per generation."""
        row = self.db.execute(
            "SELECT id FROM lines WHERE call_id = ? AND speaker = 'agent' AND gen = ?", (call_id, event.gen)
        ).fetchone()
        if row is None:
            self._line(call_id, event.ts, "agent", event.text.strip(), gen=event.gen)
        else:
            self.db.execute(
                "UPDATE lines SET text = text || ' ' || ? WHERE id = ?",
                (self.redact(event.text.strip()), row[0]),
            )

    def _interrupted(self, call_id: str, event: BargeIn) -> None:
        """The caller cut the answer off: its line keeps what they heard of it, marked."""
        where = "WHERE call_id = ? AND speaker = 'agent' AND gen = ?"
        self.db.execute(f"UPDATE lines SET mark = 'interrupted' {where}", (call_id, event.gen))
        if event.heard_text is not None:
            heard = self.redact(event.heard_text)
            self.db.execute(f"UPDATE lines SET text = ? {where}", (heard, call_id, event.gen))

    def _turn(self, call_id: str, m: TurnMetrics) -> None:
        if m.first_audio_ms is not None:
            self._count(call_id, "answers")
        self.db.execute(
            "INSERT OR REPLACE INTO turns VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                call_id, m.gen, m.ts, m.first_audio_ms, m.vad_decision_ms, m.stt_final_ms,
                m.llm_first_token_ms, m.first_clause_ms, m.tts_first_frame_ms, int(m.interrupted),
            ),
        )  # fmt: skip

    def _ended(self, call_id: str, event: CallEnded) -> None:
        row = self.db.execute(
            "SELECT answers, transferred FROM calls WHERE call_id = ?", (call_id,)
        ).fetchone()
        if row["transferred"]:
            outcome = "transferred"
        elif row["answers"] == 0 and event.hangup_by == "caller":
            outcome = "abandoned"  # the caller left before the agent answered anything
        else:
            outcome = "resolved"
        self.db.execute(
            "UPDATE calls SET ended = ?, duration_s = ?, cause = ?, hangup_by = ?, outcome = ? "
            "WHERE call_id = ?",
            (event.ts, event.duration_s, event.cause, event.hangup_by, outcome, call_id),
        )
