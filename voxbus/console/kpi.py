"""The numbers a contact centre is judged by, for a period, from the call records."""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel, Field

from voxbus.console.store import CallRecords


class Kpis(BaseModel):
    since: float
    until: float
    calls: int = Field(description="calls started in the period")
    ended: int = Field(description="of which ended")
    avg_handling_s: float | None = Field(description="mean duration of the ended calls")
    transfer_rate: float | None = Field(description="ended calls handed to a person")
    resolution_rate: float | None = Field(description="ended calls neither transferred nor abandoned")
    goal_met_rate: float | None = Field(description="ended calls where a tool did the caller's business")
    abandoned: int = Field(description="the caller hung up before any answer")
    barge_ins_per_call: float | None
    latency_p50_ms: float | None = Field(description="perceived: caller stops -> first agent audio")
    latency_p95_ms: float | None
    turns: int = Field(description="answered turns with a measured latency")
    cpu_s_per_call: float | None = Field(description="CPU seconds of all voxbus processes / calls")
    cost_per_call: float | None = Field(description="cpu_s_per_call at console.price_per_core_hour")


def _rate(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def cpu_seconds(records: CallRecords, since: float, until: float) -> float:
    """CPU seconds used by every voxbus process in the period: per process (worker and pid), the
    increase between its first and last sample."""
    rows = records.db.execute(
        "SELECT worker, pid, MAX(cpu_s) - MIN(cpu_s) FROM cpu WHERE ts >= ? AND ts < ? GROUP BY worker, pid",
        (since, until),
    ).fetchall()
    return float(sum(row[2] for row in rows))


def compute_kpis(records: CallRecords, since: float, until: float, price_per_core_hour: float) -> Kpis:
    db = records.db
    calls = db.execute("SELECT * FROM calls WHERE started >= ? AND started < ?", (since, until)).fetchall()
    ended = [c for c in calls if c["ended"] is not None]
    count = len(ended)
    latencies = [
        r[0]
        for r in db.execute(
            "SELECT t.first_audio_ms FROM turns t JOIN calls c USING (call_id) "
            "WHERE c.started >= ? AND c.started < ? AND t.first_audio_ms IS NOT NULL",
            (since, until),
        )
    ]
    cpu = cpu_seconds(records, since, until)
    cpu_per_call = cpu / len(calls) if calls and cpu else None
    return Kpis(
        since=since,
        until=until,
        calls=len(calls),
        ended=count,
        avg_handling_s=float(np.mean([c["duration_s"] or 0.0 for c in ended])) if ended else None,
        transfer_rate=_rate(sum(1 for c in ended if c["outcome"] == "transferred"), count),
        resolution_rate=_rate(sum(1 for c in ended if c["outcome"] == "resolved"), count),
        goal_met_rate=_rate(sum(1 for c in ended if c["tools_ok"] > 0 and c["outcome"] == "resolved"), count),
        abandoned=sum(1 for c in ended if c["outcome"] == "abandoned"),
        barge_ins_per_call=_rate(sum(c["barge_ins"] for c in calls), len(calls)),
        latency_p50_ms=float(np.percentile(latencies, 50)) if latencies else None,
        latency_p95_ms=float(np.percentile(latencies, 95)) if latencies else None,
        turns=len(latencies),
        cpu_s_per_call=cpu_per_call,
        cost_per_call=cpu_per_call / 3600 * price_per_core_hour if cpu_per_call is not None else None,
    )
